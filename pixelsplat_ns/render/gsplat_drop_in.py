"""``rasterization``: gsplat's ``rasterization`` call as nerfstudio's splatfacto makes it, run by ``rasterize``.

For code written against gsplat that should run where gsplat's CUDA kernels cannot (splatfacto on a CPU, for
comparisons: ``scripts/benchmarks/splatfacto_cpu.py``). Only what ``rasterize`` implements is accepted:
classic, unpacked rasterization without absgrad or sparse gradients; anything else is refused.
"""

from pixelsplat_ns.render.rasterize import rasterize


def rasterization(
    means,
    quats,
    scales,
    opacities,
    colors,
    viewmats,
    Ks,
    width,
    height,
    near_plane=0.01,
    far_plane=1e10,
    sh_degree=None,
    backgrounds=None,
    render_mode="RGB",
    packed=False,
    sparse_grad=False,
    absgrad=False,
    rasterize_mode="classic",
    **ignored,
):
    """gsplat 1.4.0's ``rasterization(...)`` signature; returns ``(colors, alphas, meta)`` as ``rasterize`` does.

    Raises ``ValueError`` for ``packed``, ``sparse_grad``, ``absgrad`` or ``rasterize_mode="antialiased"``;
    other keyword arguments (``tile_size``, ...) are ignored."""
    if packed or sparse_grad or absgrad or rasterize_mode != "classic":
        raise ValueError(
            "the CPU splatfacto supports classic, unpacked rasterization without absgrad; got "
            f"packed={packed}, sparse_grad={sparse_grad}, absgrad={absgrad}, mode={rasterize_mode}"
        )
    return rasterize(
        means,
        quats,
        scales,
        opacities,
        colors,
        viewmats,
        Ks,
        width,
        height,
        near_plane=near_plane,
        far_plane=far_plane,
        sh_degree=sh_degree,
        backgrounds=backgrounds,
        render_mode=render_mode,
    )
