"""The project's one Gaussian rasterizer: gsplat on CUDA, the same rules in numba on the CPU and in pure torch
on any device."""

import functools
import math
import numbers
from typing import Literal, Optional, Union

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from pixelsplat_ns.core.devices import check_device
from pixelsplat_ns.render.compositing import TILE_SIZE, composite
from pixelsplat_ns.render.projection import Projection, project_gaussians, quat_scale_to_covar
from pixelsplat_ns.render.spherical_harmonics import MAX_SH_DEGREE, evaluate_sh, num_sh_bases
from pixelsplat_ns.render.untraced import import_untraced, numba_available

RenderMode = Literal["RGB", "D", "ED", "RGB+D", "RGB+ED"]
RENDER_MODES = ("RGB", "D", "ED", "RGB+D", "RGB+ED")
Backend = Literal["auto", "torch", "numba", "gsplat"]
BACKENDS = ("auto", "torch", "numba", "gsplat")
NUMBA_DTYPES = (torch.float32, torch.float64)


def rasterize(
    means: Float[Tensor, "N 3"],
    quats: Optional[Float[Tensor, "N 4"]],
    scales: Optional[Float[Tensor, "N 3"]],
    opacities: Float[Tensor, " N"],
    colors: Tensor,  # [N, D] or [C, N, D]; SH [N, K, 3] or [C, N, K, 3] with sh_degree
    viewmats: Float[Tensor, "C 4 4"],
    Ks: Float[Tensor, "C 3 3"],
    width: Union[int, np.integer],
    height: Union[int, np.integer],
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    sh_degree: Optional[int] = None,
    backgrounds: Optional[Float[Tensor, "C D"]] = None,
    render_mode: RenderMode = "RGB",
    covars: Optional[Float[Tensor, "N 3 3"]] = None,
    backend: Backend = "auto",
) -> tuple[Tensor, Float[Tensor, "C H W 1"], dict]:
    """Render N Gaussians into C cameras with gsplat 1.4.0's ``rasterization`` semantics (classic mode).

    Conventions are gsplat's (``pixelsplat_ns.render.render_views`` takes the project's instead): cameras
    look along +z with +x right and +y down (OpenCV); pixel centres sit at +0.5; quaternions are wxyz and
    need not be normalized; scales and opacities are linear (not log, not logit).

    Args:
        means: ``[N, 3]`` centres in the world frame.
        quats: ``[N, 4]`` wxyz rotations, or None with ``covars``.
        scales: ``[N, 3]`` standard deviations along the rotated axes, or None with ``covars``.
        opacities: ``[N]`` in [0, 1].
        colors: post-activation features ``[N, D]`` or per camera ``[C, N, D]``; with ``sh_degree``, SH
            coefficients in gsplat's basis ``[N, K, 3]`` or ``[C, N, K, 3]`` with K >= (sh_degree + 1)^2,
            evaluated along the direction from each camera centre (colour = SH + 0.5, clamped at 0).
        viewmats: ``[C, 4, 4]`` world-to-camera matrices.
        Ks: ``[C, 3, 3]`` pixel intrinsics.
        width, height: image size in pixels.
        near_plane, far_plane: Gaussians with camera z outside [near_plane, far_plane] are not drawn.
        eps2d: added to the diagonal of each 2D covariance (pixels^2), as gsplat's blur.
        sh_degree: None for plain colours, else 0-4.
        backgrounds: ``[C, D]`` colour behind the Gaussians, D the colours' channels (3 with SH) in every
            render mode (gsplat's rule): the depth modes "D" and "ED" ignore it, "RGB+D" and "RGB+ED" leave
            the depth channel without background; None leaves it black (add ``(1 - alpha) * background``
            yourself to composite later).
        render_mode: "RGB"; "D" the accumulated camera z; "ED" the expected z (divided by alpha); "RGB+D" and
            "RGB+ED" append that channel to the colours.
        covars: ``[N, 3, 3]`` world-frame covariances, in place of ``quats`` and ``scales``.
        backend: "auto" runs gsplat for CUDA tensors, the numba kernels for CPU tensors (when numba
            imports) and the pure-torch rasterizer otherwise (MPS, ...). "torch" (the device-agnostic
            reference), "numba" (CPU tensors; projection, SH and compositing run compiled kernels with
            hand-written backward passes) or "gsplat" (CUDA tensors) choose one; numba and gsplat are
            imported only when used, and numba compiles its kernels on first use (cached on disk, see
            ``pixelsplat_ns.fast_routes.numba_cache.warm_up``).

    Returns:
        ``(colors [C, H, W, X], alphas [C, H, W, 1], meta)``; X is D (3 with SH), 1 or D + 1 by
        ``render_mode``; ``meta`` holds the projection (radii, means2d, depths, conics) as gsplat's does.
        Differentiable with respect to means, quats, scales or covars, opacities and colours.

    Raises:
        ValueError: saying which argument is wrong and how (shapes, devices, NaN, non-positive focal lengths,
            an empty scene, 0 < near_plane < far_plane, ...).

    Example::

        means = torch.tensor([[0.0, 0.0, 2.0]])                      # 2 units in front of the camera
        quats, scales = torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), 0.1)
        colors = torch.tensor([[1.0, 0.5, 0.0]])
        Ks = torch.tensor([[[64.0, 0, 32], [0, 64.0, 32], [0, 0, 1]]])
        image, alpha, _ = rasterize(means, quats, scales, torch.tensor([0.9]), colors, torch.eye(4)[None], Ks,
                                    width=64, height=64)                # image [1, 64, 64, 3]
    """
    _check_inputs(
        means,
        quats,
        scales,
        opacities,
        colors,
        viewmats,
        Ks,
        width,
        height,
        near_plane,
        far_plane,
        sh_degree,
        backgrounds,
        render_mode,
        covars,
        backend,
    )
    width, height = int(width), int(height)  # numpy integers too
    if backend == "gsplat" or (backend == "auto" and means.is_cuda):
        return _rasterize_gsplat(
            means,
            quats,
            scales,
            opacities,
            colors,
            viewmats,
            Ks,
            width,
            height,
            near_plane,
            far_plane,
            eps2d,
            sh_degree,
            backgrounds,
            render_mode,
            covars,
        )
    if backend == "numba" and means.device.type != "cpu":
        raise ValueError(f"rasterize: backend='numba' needs CPU tensors, got {means.device}; use backend='auto'")
    if backend == "numba" and not numba_available():
        raise ValueError(
            "rasterize: backend='numba', but numba does not import here (see `python -c 'import "
            "numba'`); use backend='auto' or 'torch', which need no numba"
        )
    # numba's kernels take float32 and float64; half precision on the CPU stays with torch.
    use_numba = backend == "numba" or (
        backend == "auto" and means.device.type == "cpu" and means.dtype in NUMBA_DTYPES and numba_available()
    )
    return _rasterize_torch(
        means,
        quats,
        scales,
        opacities,
        colors,
        viewmats,
        Ks,
        width,
        height,
        near_plane,
        far_plane,
        eps2d,
        sh_degree,
        backgrounds,
        render_mode,
        covars,
        use_numba,
    )


def _rasterize_gsplat(
    means,
    quats,
    scales,
    opacities,
    colors,
    viewmats,
    Ks,
    width,
    height,
    near_plane,
    far_plane,
    eps2d,
    sh_degree,
    backgrounds,
    render_mode,
    covars,
):
    if not means.is_cuda:
        raise ValueError("backend='gsplat' needs CUDA tensors; use backend='torch' (or 'auto') for CPU tensors")
    gsplat = import_untraced("gsplat")  # imported lazily: gsplat compiles its CUDA code on first use

    return gsplat.rasterization(
        means=means,
        quats=quats,
        scales=scales,
        opacities=opacities,
        colors=colors,
        viewmats=viewmats,
        Ks=Ks,
        width=width,
        height=height,
        near_plane=near_plane,
        far_plane=far_plane,
        eps2d=eps2d,
        sh_degree=sh_degree,
        backgrounds=backgrounds,
        render_mode=render_mode,
        covars=covars,
        rasterize_mode="classic",
    )


def _rasterize_torch(
    means,
    quats,
    scales,
    opacities,
    colors,
    viewmats,
    Ks,
    width,
    height,
    near_plane,
    far_plane,
    eps2d,
    sh_degree,
    backgrounds,
    render_mode,
    covars,
    use_numba=False,
):
    """Projection and SH in torch (autograd), then ``composite``; or with ``use_numba`` both stages in numba
    kernels (``project_and_shade_numba``, ``composite_numba``), keeping the torch projection only when the
    cameras themselves require gradients (the kernels give none to them)."""
    n_cameras = viewmats.shape[0]
    # Depth-only renders never read the colours: no SH to evaluate.
    shade = sh_degree is not None and render_mode not in ("D", "ED")
    if use_numba and not (viewmats.requires_grad or Ks.requires_grad):
        numba_projection = import_untraced("pixelsplat_ns.render.numba_kernels.projection")  # imports numba

        radii, means2d, depths, conics, shaded = numba_projection.project_and_shade_numba(
            means,
            covars,
            colors if shade else None,
            viewmats,
            Ks,
            width,
            height,
            eps2d,
            near_plane,
            far_plane,
            sh_degree,
            quats=quats,
            scales=scales,
        )
        projection = Projection(radii=radii, means2d=means2d, depths=depths, conics=conics)
    else:
        if covars is None:
            covars = quat_scale_to_covar(quats, scales)
        camera_centers = torch.linalg.inv(viewmats)[:, :3, 3] if shade else None
        projection, shaded = _project_and_shade(
            means,
            covars,
            colors if shade else None,
            viewmats,
            Ks,
            camera_centers,
            width,
            height,
            eps2d,
            near_plane,
            far_plane,
            sh_degree,
        )
    if shade:
        colors = shaded
    elif colors.dim() == 2:
        colors = colors.expand(n_cameras, -1, -1)

    depth_channel = projection.depths[..., None]
    if render_mode in ("D", "ED"):
        colors, backgrounds = depth_channel, None
    elif render_mode in ("RGB+D", "RGB+ED"):
        colors = torch.cat([colors, depth_channel], dim=-1)
        if backgrounds is not None:
            backgrounds = torch.cat([backgrounds, backgrounds.new_zeros(n_cameras, 1)], dim=-1)

    opacities = opacities.expand(n_cameras, -1)
    if use_numba:
        numba_compositing = import_untraced("pixelsplat_ns.render.numba_kernels.compositing")  # imports numba
        composite_fn = numba_compositing.composite_numba
    else:
        composite_fn = composite
    render_colors, render_alphas = composite_fn(
        projection.means2d, projection.conics, opacities, colors, projection.depths, projection.radii, width, height
    )
    if backgrounds is not None:
        render_colors = render_colors + (1.0 - render_alphas) * backgrounds[:, None, None, :]
    if render_mode in ("ED", "RGB+ED"):
        expected = render_colors[..., -1:] / render_alphas.clamp(min=1e-10)
        render_colors = torch.cat([render_colors[..., :-1], expected], dim=-1)

    meta = {
        "camera_ids": None,
        "gaussian_ids": None,
        "radii": projection.radii,
        "means2d": projection.means2d,
        "depths": projection.depths,
        "conics": projection.conics,
        "opacities": opacities,
        "tile_width": math.ceil(width / TILE_SIZE),
        "tile_height": math.ceil(height / TILE_SIZE),
        "width": width,
        "height": height,
        "tile_size": TILE_SIZE,
        "n_cameras": n_cameras,
    }
    return render_colors, render_alphas, meta


def _project_and_shade(
    means: Float[Tensor, "N 3"],
    covars: Float[Tensor, "N 3 3"],
    coeffs: Optional[Tensor],
    viewmats: Float[Tensor, "C 4 4"],
    Ks: Float[Tensor, "C 3 3"],
    camera_centers: Optional[Float[Tensor, "C 3"]],
    width: int,
    height: int,
    eps2d: float,
    near_plane: float,
    far_plane: float,
    sh_degree: Optional[int],
) -> tuple[Projection, Optional[Float[Tensor, "C N 3"]]]:
    """Every camera's projection and, given SH ``coeffs`` ([N, K, 3] or per camera [C, N, K, 3]) and the
    ``camera_centers``, the colours ``clamp(SH + 0.5, 0)`` each camera sees (None without ``coeffs``).

    One camera at a time, and with several cameras under autograd each camera's work is checkpointed
    (recomputed in the backward pass): the forward pass keeps only the results, never the per-camera
    intermediates (SH bases, Jacobians, 3x3 covariances, coefficients expanded per camera), and the backward
    pass holds one camera's at a time. Same arithmetic, so the same values and gradients, for the projection
    and SH forward run once more in the backward pass. A single camera (refinement, the viewer) keeps its
    intermediates as usual: they are no larger than one camera's recomputation, which would only cost time."""
    tensors = (means, covars, coeffs, viewmats, Ks, camera_centers)
    recompute = (
        viewmats.shape[0] > 1 and torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
    )
    per_camera = []
    for c in range(viewmats.shape[0]):
        camera_coeffs = coeffs[c] if coeffs is not None and coeffs.dim() == 4 else coeffs
        center = None if camera_centers is None else camera_centers[c]
        args = (
            means,
            covars,
            camera_coeffs,
            viewmats[c : c + 1],
            Ks[c : c + 1],
            center,
            width,
            height,
            eps2d,
            near_plane,
            far_plane,
            sh_degree,
        )
        if recompute:
            per_camera.append(
                checkpoint(_project_and_shade_camera, *args, use_reentrant=False, preserve_rng_state=False)
            )
        else:
            per_camera.append(_project_and_shade_camera(*args))
    radii, means2d, depths, conics, colours = zip(*per_camera)
    shaded = None if colours[0] is None else _join_cameras(colours)
    projection = Projection(
        radii=_join_cameras(radii),
        means2d=_join_cameras(means2d),
        depths=_join_cameras(depths),
        conics=_join_cameras(conics),
    )
    return projection, shaded


def _join_cameras(parts: tuple[Tensor, ...]) -> Tensor:
    """The cameras' [1, ...] results as one [C, ...] tensor (a single camera's as it is, not copied)."""
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _project_and_shade_camera(
    means, covars, coeffs, viewmat, K, center, width, height, eps2d, near_plane, far_plane, sh_degree
):
    """``_project_and_shade`` for one camera (``viewmat`` [1, 4, 4], ``K`` [1, 3, 3], ``coeffs`` [N, K, 3] or
    None, ``center`` [3]): radii, means2d, depths, conics and colours, each [1, N, ...] (colours None
    without ``coeffs``).

    When fewer than half of the Gaussians are drawn (radius > 0), SH is evaluated for those only, the others
    getting colour 0; otherwise for all. Either way the compositing never reads the colour of an undrawn
    Gaussian and gives it no gradient, so this changes neither values nor gradients."""
    projection = project_gaussians(means, covars, viewmat, K, width, height, eps2d, near_plane, far_plane)
    shaded = None
    if coeffs is not None:
        visible = projection.radii[0] > 0
        # Most drawn (a view near the context's): gathering them and scattering back would cost more than
        # shading the few others, whose colours the compositing never reads.
        most = int(visible.sum()) > 0.5 * means.shape[0]
        drawn = slice(None) if most else torch.nonzero(visible).squeeze(1)
        colors = torch.clamp_min(evaluate_sh(sh_degree, means[drawn] - center, coeffs[drawn]) + 0.5, 0.0)
        shaded = (colors if most else colors.new_zeros(means.shape[0], 3).index_put((drawn,), colors))[None]
    return projection.radii, projection.means2d, projection.depths, projection.conics, shaded


def _check_inputs(
    means,
    quats,
    scales,
    opacities,
    colors,
    viewmats,
    Ks,
    width,
    height,
    near_plane,
    far_plane,
    sh_degree,
    backgrounds,
    render_mode,
    covars,
    backend,
):
    """Reject bad input with a message that says what is wrong and how to fix it."""

    def fail(message: str):
        raise ValueError(f"rasterize: {message}")

    if backend not in BACKENDS:
        fail(f"backend must be 'auto', 'torch', 'numba' or 'gsplat', got {backend!r}")
    if render_mode not in RENDER_MODES:
        fail(f"render_mode must be one of {RENDER_MODES}, got {render_mode!r}")
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            fail(f"{name} must be a positive integer, got {value!r}")
    if not (math.isfinite(near_plane) and near_plane > 0 and far_plane > near_plane):
        fail(f"need 0 < near_plane < far_plane, got near_plane={near_plane}, far_plane={far_plane}")

    if not isinstance(means, Tensor) or means.dim() != 2 or means.shape[-1] != 3:
        fail(f"means must be a tensor of shape [N, 3], got {_shape(means)}")
    check_device(means.device)
    n = means.shape[0]
    if n == 0:
        fail("the scene is empty (means has N = 0 Gaussians); give at least one Gaussian")
    if viewmats.dim() != 3 or viewmats.shape[1:] != (4, 4):
        fail(f"viewmats must have shape [C, 4, 4] (world-to-camera), got {_shape(viewmats)}")
    c = viewmats.shape[0]
    if c == 0:
        fail("viewmats holds no camera (C = 0)")
    expected = {"opacities": (opacities, (n,)), "Ks": (Ks, (c, 3, 3))}
    if covars is not None:
        if quats is not None or scales is not None:
            fail("give either covars or quats and scales, not both")
        expected["covars"] = (covars, (n, 3, 3))
    elif quats is None or scales is None:
        fail("quats and scales are required unless covars is given")
    else:
        expected["quats"] = (quats, (n, 4))
        expected["scales"] = (scales, (n, 3))
    for name, (tensor, shape) in expected.items():
        if not isinstance(tensor, Tensor) or tuple(tensor.shape) != shape:
            fail(
                f"{name} must have shape {list(shape)} for N = {n} Gaussians and C = {c} cameras, got {_shape(tensor)}"
            )

    if sh_degree is None:
        if not (colors.dim() == 2 and colors.shape[0] == n) and not (colors.dim() == 3 and colors.shape[:2] == (c, n)):
            fail(
                f"colors must have shape [N, D] or [C, N, D] (N = {n}, C = {c}), got {_shape(colors)}; "
                "pass sh_degree for SH coefficients"
            )
    else:
        if isinstance(sh_degree, bool) or not isinstance(sh_degree, int) or not 0 <= sh_degree <= MAX_SH_DEGREE:
            fail(f"sh_degree must be an integer between 0 and {MAX_SH_DEGREE}, got {sh_degree!r}")
        sh_ok = (colors.dim() == 3 and colors.shape[0] == n) or (colors.dim() == 4 and colors.shape[:2] == (c, n))
        if not sh_ok or colors.shape[-1] != 3 or colors.shape[-2] < num_sh_bases(sh_degree):
            fail(
                f"with sh_degree={sh_degree}, colors must be SH coefficients [N, K, 3] or [C, N, K, 3] with "
                f"K >= {num_sh_bases(sh_degree)} (N = {n}, C = {c}), got {_shape(colors)}"
            )
    if backgrounds is not None:
        channels = 3 if sh_degree is not None else colors.shape[-1]
        if tuple(backgrounds.shape) != (c, channels):
            fail(f"backgrounds must have shape [C, D] = [{c}, {channels}], got {_shape(backgrounds)}")

    named = {
        "means": means,
        "quats": quats,
        "scales": scales,
        "covars": covars,
        "opacities": opacities,
        "colors": colors,
        "viewmats": viewmats,
        "Ks": Ks,
        "backgrounds": backgrounds,
    }
    tensors = {name: t for name, t in named.items() if t is not None}
    devices = {t.device for t in tensors.values()}
    if len(devices) > 1:
        fail(f"all tensors must be on one device, got {sorted(str(d) for d in devices)}")
    for name, tensor in tensors.items():
        if not tensor.is_floating_point():
            fail(f"{name} must be a floating-point tensor, got {tensor.dtype}")
    dtypes = {name: t.dtype for name, t in tensors.items()}
    if len(set(dtypes.values())) > 1:
        listed = ", ".join(f"{name} {str(dtype).removeprefix('torch.')}" for name, dtype in dtypes.items())
        fail(f"all tensors must have one floating-point dtype, got {listed}; convert them with .float() or .double()")
    if backend == "numba" and means.dtype not in NUMBA_DTYPES:
        fail(
            f"backend='numba' computes in float32 or float64, got {means.dtype}; use backend='torch' or convert "
            "with .float()"
        )
    if means.device.type == "cpu" and not _cpu_matmul_takes(means.dtype):
        fail(
            f"this torch ({torch.__version__}) has no {means.dtype} matrix products on the CPU (torch 2.2 added "
            "float16's); convert the tensors with .float()"
        )
    if means.device.type == "meta":
        return  # meta tensors hold no values to check
    for name, tensor in tensors.items():
        # A sum is finite only if every element is (NaN and infinities propagate), and costs one pass without
        # a temporary; a non-finite sum may also be an overflow of finite values, so then check element-wise.
        if not bool(torch.isfinite(tensor.detach().sum())) and not bool(torch.isfinite(tensor).all()):
            fail(f"{name} contains NaN or infinite values")
    if bool((Ks[:, 0, 0] <= 0).any() or (Ks[:, 1, 1] <= 0).any()):
        fail("Ks must have positive focal lengths fx = K[0, 0] and fy = K[1, 1] (in pixels)")


@functools.cache
def _cpu_matmul_takes(dtype: torch.dtype) -> bool:
    """Whether the CPU has batched matrix products in ``dtype`` (not float16 before torch 2.2)."""
    try:
        torch.ones(1, 1, 1, dtype=dtype).bmm(torch.ones(1, 1, 1, dtype=dtype))
    except RuntimeError:
        return False
    return True


def _shape(value) -> str:
    return str(list(value.shape)) if isinstance(value, Tensor) else type(value).__name__
