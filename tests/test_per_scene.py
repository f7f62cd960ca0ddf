"""The per-scene method's conversions: nerfstudio views -> encoder inputs, and Gaussians -> splat parameters."""

import math

import pytest
import torch

from helpers.scenes import nerfstudio_camera, per_scene_model, random_gaussians, random_scene
from pixelsplat_ns.core.bounds import near_far
from pixelsplat_ns.core.conventions import convert_c2w_opengl_opencv, homogeneous
from pixelsplat_ns.per_scene.context import ContextError, check_cameras, context_views, encoder_shape
from pixelsplat_ns.per_scene.context_groups import choose_context_views
from pixelsplat_ns.per_scene.splats import decompose_covariances, splat_parameters
from pixelsplat_ns.render import rasterize
from pixelsplat_ns.render.projection import quat_scale_to_covar


def test_covariance_decomposition_is_exact():
    covariances = random_gaussians().covariances[0]
    covariances = torch.cat([covariances, torch.diag(torch.tensor([0.04, 0.04, 0.01]))[None]])  # repeated eigenvalue
    log_scales, quats = decompose_covariances(covariances)
    assert torch.allclose(quats.norm(dim=-1), torch.ones(len(quats)), atol=1e-6)
    rebuilt = quat_scale_to_covar(quats, log_scales.exp())
    assert torch.allclose(rebuilt, covariances, rtol=1e-4, atol=1e-7)


def test_splat_parameters_render_like_the_encoder_output():
    """The splat model renders the predicted Gaussians exactly as the encoder's covariances and SH do."""
    gaussians = random_gaussians()
    scene = random_scene()
    params = splat_parameters(gaussians, sh_degree=3)
    assert params["features_rest"].shape == (250, 15, 3) and params["opacities"].shape == (250, 1)
    common = dict(viewmats=scene["viewmats"], Ks=scene["Ks"], width=75, height=45, sh_degree=3)
    expected, _, _ = rasterize(
        gaussians.means[0],
        None,
        None,
        gaussians.opacities[0],
        gaussians.harmonics[0, :, :16],
        covars=gaussians.covariances[0],
        **common,
    )
    colors = torch.cat([params["features_dc"][:, None], params["features_rest"]], dim=1)
    actual, _, _ = rasterize(
        params["means"],
        params["quats"],
        params["scales"].exp(),
        torch.sigmoid(params["opacities"][:, 0]),
        colors,
        **common,
    )
    assert torch.allclose(actual, expected, atol=1e-4)


def test_splat_parameters_keep_opacities_finite():
    gaussians = random_gaussians(n=3)
    gaussians.opacities[0] = torch.tensor([0.0, 1.0, 0.5])
    logits = splat_parameters(gaussians, sh_degree=3)["opacities"][:, 0]
    assert torch.isfinite(logits).all() and abs(float(logits[2])) < 1e-6


def test_scaled_world_renders_the_same_from_scaled_cameras():
    gaussians, scene, scale = random_gaussians(), random_scene(), 2.5
    viewmats = scene["viewmats"].clone()
    viewmats[:, :3, 3] *= scale
    common = dict(Ks=scene["Ks"], width=75, height=45, sh_degree=3)

    def render(g, views):
        return rasterize(
            g.means[0],
            None,
            None,
            g.opacities[0],
            g.harmonics[0, :, :16],
            viewmats=views,
            covars=g.covariances[0],
            near_plane=1e-3,
            **common,
        )[0]

    assert torch.allclose(render(gaussians.scaled(scale), viewmats), render(gaussians, scene["viewmats"]), atol=1e-4)


def test_encoder_shape_keeps_the_aspect_ratio_in_multiples_of_16():
    assert encoder_shape(144, 256, 64) == (64, 112)
    assert encoder_shape(256, 144, 64) == (112, 64)
    assert encoder_shape(360, 640, 256) == (256, 448)
    assert encoder_shape(100, 100, 32) == (32, 32)
    with pytest.raises(ContextError, match="multiple of 16"):
        encoder_shape(144, 256, 60)


def gl_camera(position, yaw_degrees=0.0) -> torch.Tensor:
    """OpenGL camera-to-world [3, 4] at ``position``, turned by ``yaw`` about +y (looking along -z at 0)."""
    yaw = math.radians(yaw_degrees)
    rotation = torch.tensor([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]])
    return torch.cat([rotation, torch.tensor(position, dtype=torch.float32)[:, None]], dim=1)


def test_context_views_convert_cameras_images_and_scale():
    """A 3D point projects to the same image content before and after the resize, crop and conversion."""
    height, width = 90, 200
    k = torch.tensor([[150.0, 0, 110.0], [0, 140.0, 40.0], [0, 0, 1]])  # off-centre, non-square pixels
    c2w_gl = torch.stack([gl_camera([0.0, 0.0, 0.0]), gl_camera([0.4, 0.1, -0.2], 8.0)])
    point = torch.tensor([0.3, -0.2, -3.0])  # in front of both cameras (OpenGL looks along -z)

    # Each image is black with one white pixel where the point projects.
    images = []
    for c2w in c2w_gl:
        w2c = torch.linalg.inv(convert_c2w_opengl_opencv(homogeneous(c2w)))
        camera_point = w2c[:3, :3] @ point + w2c[:3, 3]
        u, v = (k @ camera_point)[:2] / camera_point[2]
        image = torch.zeros(height, width, 3)
        image[int(v), int(u)] = 1.0  # pixel (col, row) contains (u, v)
        images.append(image)
    context, baseline = context_views(images, c2w_gl, k.expand(2, 3, 3), short_side=32)

    assert context.images.shape == (1, 2, 3, 32, 64)
    assert math.isclose(baseline, float((c2w_gl[0, :, 3] - c2w_gl[1, :, 3]).norm()), rel_tol=1e-6)
    extrinsics = context.extrinsics[0]
    assert torch.allclose((extrinsics[0, :3, 3] - extrinsics[1, :3, 3]).norm(), torch.tensor(1.0))
    assert torch.allclose(extrinsics[:, :3, 2], -c2w_gl[:, :3, 2]), "OpenCV +z is OpenGL's -z"
    near, far = near_far(extrinsics, context.intrinsics[0], (32, 64))
    assert torch.allclose(context.near[0], near.expand(2)) and torch.allclose(context.far[0], far.expand(2))

    scaled_point = point / baseline
    for view in range(2):
        w2c = torch.linalg.inv(extrinsics[view])
        camera_point = w2c[:3, :3] @ scaled_point + w2c[:3, 3]
        xy = (context.intrinsics[0, view] @ camera_point)[:2] / camera_point[2]
        column, row = int(xy[0] * 64), int(xy[1] * 32)
        brightest = int(context.images[0, view].sum(0).flatten().argmax())
        assert divmod(brightest, 64) == (row, column), "intrinsics follow the resize and the crop"


def test_context_views_refuse_bad_pairs():
    k = torch.tensor([[50.0, 0, 32], [0, 50.0, 32], [0, 0, 1]]).expand(2, 3, 3)
    same_place = torch.stack([gl_camera([0.0, 0, 0]), gl_camera([0.0, 0, 0], 10.0)])
    with pytest.raises(ContextError, match="same position"):
        context_views([torch.rand(64, 64, 3)] * 2, same_place, k, 32, names=["a.png", "b.png"])
    apart = torch.stack([gl_camera([0.0, 0, 0]), gl_camera([1.0, 0, 0])])
    with pytest.raises(ContextError, match="different sizes .*a.png: 64x64, b.png: 80x64"):
        context_views([torch.rand(64, 64, 3), torch.rand(64, 80, 3)], apart, k, 32, names=["a.png", "b.png"])


def test_rgba_images_are_composited_onto_the_background():
    k = torch.tensor([[50.0, 0, 16], [0, 50.0, 16], [0, 0, 1]]).expand(2, 3, 3)
    apart = torch.stack([gl_camera([0.0, 0, 0]), gl_camera([1.0, 0, 0])])
    transparent = torch.zeros(32, 32, 4)
    transparent[..., 0] = 1.0  # red, fully transparent
    context, _ = context_views([transparent] * 2, apart, k, 32, background=torch.tensor([0.0, 0.0, 1.0]))
    assert torch.allclose(context.images[0, :, 2], torch.ones(2, 32, 32)) and context.images[0, :, 0].max() == 0


def test_uint8_images_convert_like_float_ones():
    k = torch.tensor([[50.0, 0, 16], [0, 50.0, 16], [0, 0, 1]]).expand(2, 3, 3)
    apart = torch.stack([gl_camera([0.0, 0, 0]), gl_camera([1.0, 0, 0])])
    image = torch.randint(0, 256, (32, 32, 3), dtype=torch.uint8)
    as_bytes = context_views([image] * 2, apart, k, 32)[0].images
    as_floats = context_views([image.float() / 255] * 2, apart, k, 32)[0].images
    assert torch.equal(as_bytes, as_floats)


def test_automatic_context_is_the_widest_pair_that_still_overlaps():
    cameras = torch.stack(
        [
            gl_camera([0.0, 0, 0]),
            gl_camera([0.5, 0, 0], 5.0),
            gl_camera([1.0, 0, 0], -10.0),
            gl_camera([3.0, 0, 0], 90.0),  # farthest away, but looking elsewhere
        ]
    )
    assert choose_context_views(cameras, max_angle_degrees=30) == (0, 2)
    assert choose_context_views(cameras, max_angle_degrees=8) == (0, 1)
    # No pair is close enough: the most similar directions.
    assert choose_context_views(cameras[[0, 3]], max_angle_degrees=30) == (0, 1)
    spread = torch.stack([gl_camera([0.0, 0, 0]), gl_camera([1.0, 0, 0], 60.0), gl_camera([2.0, 0, 0], 130.0)])
    assert choose_context_views(spread, max_angle_degrees=30) == (0, 1)
    # The most similar directions at one position lose to a pair that is apart.
    one_place = torch.stack([gl_camera([0.0, 0, 0]), gl_camera([0.0, 0, 0], 40.0), gl_camera([1.0, 0, 0], 100.0)])
    assert choose_context_views(one_place, max_angle_degrees=30) == (1, 2)


def test_camera_checks_name_what_is_wrong():
    good = torch.stack([gl_camera([0.0, 0, 0]), gl_camera([1.0, 0, 0])])
    check_cameras(good, ["PERSPECTIVE"] * 2, ["a", "b"])
    with pytest.raises(ContextError, match="at least two training images, found 1"):
        check_cameras(good[:1], ["PERSPECTIVE"], ["a"])
    bad = good.clone()
    bad[1, 0, 3] = math.nan
    with pytest.raises(ContextError, match="NaN or infinite values .* b"):
        check_cameras(bad, ["PERSPECTIVE"] * 2, ["a", "b"])
    with pytest.raises(ContextError, match="pinhole .* FISHEYE"):
        check_cameras(good, ["PERSPECTIVE", "FISHEYE"], ["a", "b"])


def test_the_viewer_background_never_reaches_the_refinement_loss():
    from nerfstudio.data.scene_box import SceneBox

    from pixelsplat_ns.per_scene.config import PixelSplatModelConfig

    model = PixelSplatModelConfig().setup(scene_box=SceneBox(torch.tensor([[-1.0] * 3, [1.0] * 3])), num_train_data=2)
    grey = torch.tensor([0.149, 0.165, 0.216])
    model.set_background(grey)  # what the viewer does before each render
    model.train()
    assert torch.equal(model._get_background_color(), torch.zeros(3)), "training uses the configured black"
    model.eval()
    assert torch.equal(model._get_background_color(), grey), "the viewer's renders use its colour"


def test_cameras_other_than_pinhole_are_refused_where_they_are_rendered():
    """ns-render's camera paths, the eval cameras and the viewer reach get_outputs: a fisheye or
    equirectangular camera must be refused, not drawn as a pinhole one."""
    from nerfstudio.cameras.cameras import CameraType

    from pixelsplat_ns.core.camera_checks import CameraError

    model = per_scene_model(random_gaussians())

    def camera(kind):
        return nerfstudio_camera(torch.eye(4)[:3], camera_type=kind)

    assert model.get_outputs(camera(CameraType.PERSPECTIVE))["rgb"].shape == (48, 64, 3)
    for kind in (CameraType.FISHEYE, CameraType.EQUIRECTANGULAR):
        with pytest.raises(CameraError, match=f"pinhole .*not {kind.name}"):
            model.get_outputs(camera(kind))


def cpu_has_fused_adam() -> bool:
    """Whether this torch has a fused Adam for CPU tensors (2.4 and newer)."""
    try:
        torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], fused=True)
    except RuntimeError:
        return False
    return True


def test_refinement_uses_torchs_fused_adam_and_the_usual_one_where_there_is_none():
    from pixelsplat_ns.methods import FusedAdamOptimizerConfig, pixelsplat

    optimizers = pixelsplat.config.optimizers
    assert all(isinstance(group["optimizer"], FusedAdamOptimizerConfig) for group in optimizers.values())
    param = torch.nn.Parameter(torch.zeros(3))
    assert FusedAdamOptimizerConfig(lr=1e-3, eps=1e-15).setup([param]).defaults["fused"] is cpu_has_fused_adam()
    adam = torch.optim.Adam

    def without_fused(params, fused=None, **kwargs):
        if fused:
            raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of supported devices")
        return adam(params, **kwargs)

    optimizer = FusedAdamOptimizerConfig(_target=without_fused, lr=1e-3, eps=1e-15).setup([param])
    assert not optimizer.defaults["fused"] and optimizer.defaults["eps"] == 1e-15


def test_renders_without_gradients_reuse_the_activated_parameters_until_one_changes():
    """The viewer's frames share one activation of the parameters (``_still_splats``); an in-place change of
    any parameter, new Gaussians and a fused Adam step each give the render they should."""
    camera = nerfstudio_camera()  # at the origin, looking at the scene along +z
    model = per_scene_model(random_gaussians(seed=1))
    with torch.no_grad():
        first = model.get_outputs(camera)["rgb"]
        splats = model._splats()
        assert model._splats()["colors"] is splats["colors"], "unchanged parameters: activated once"
        model.gauss_params["features_dc"].add_(0.2)  # in place, as an optimizer step
        model.gauss_params["opacities"].sub_(1.0)
        changed = model.get_outputs(camera)["rgb"]
    fresh = per_scene_model(random_gaussians(seed=1))
    with torch.no_grad():
        fresh.gauss_params["features_dc"].add_(0.2)
        fresh.gauss_params["opacities"].sub_(1.0)
        torch.testing.assert_close(changed, fresh.get_outputs(camera)["rgb"], atol=0, rtol=0)
        assert (changed - first).abs().max() > 0.05
        model.set_gaussians(random_gaussians(seed=2))
        other = per_scene_model(random_gaussians(seed=2)).get_outputs(camera)["rgb"]
        torch.testing.assert_close(model.get_outputs(camera)["rgb"], other, atol=0, rtol=0)
    with torch.enable_grad():  # eval with gradients (not the viewer): no cache
        assert model._splats()["colors"] is not model._splats()["colors"]

    # A refinement step with torch's fused Adam (the per-scene optimizer; torch >= 2.4 on the CPU), which updates
    # the parameters in place without bumping their version, between two viewer frames.
    with torch.no_grad():
        model.get_outputs(camera)  # cached
    model.train()
    model.get_outputs(camera)["rgb"].sum().backward()
    torch.optim.Adam(model.gauss_params.values(), lr=0.05, fused=cpu_has_fused_adam()).step()
    model.eval()
    copy = per_scene_model(random_gaussians(seed=2))
    with torch.no_grad():
        for name, value in model.gauss_params.items():
            copy.gauss_params[name].copy_(value)
        torch.testing.assert_close(model.get_outputs(camera)["rgb"], copy.get_outputs(camera)["rgb"], atol=0, rtol=0)
        assert (copy.get_outputs(camera)["rgb"] - other).abs().max() > 0.01, "the step changed the render"


def test_the_per_scene_prediction_reads_the_context_images_once(monkeypatch):
    """The context views' values are checked once, by ``prepare_views`` (``context_views``): predicting the scene
    again, as every step of encoder refinement does, makes no further pass over the images."""
    import pixelsplat_ns.core.views as views_module
    import pixelsplat_ns.encoder.encoder as encoder_module
    from pixelsplat_ns.encoder import PixelSplatEncoder, tiny
    from pixelsplat_ns.per_scene.prediction import SceneEncoder

    passes = []

    def counted(images):
        passes.append(tuple(images.shape))
        return original(images)

    original = views_module.image_range
    monkeypatch.setattr(views_module, "image_range", counted)
    monkeypatch.setattr(encoder_module, "image_range", counted)
    encoder = PixelSplatEncoder(tiny()).eval()
    k = torch.tensor([[50.0, 0, 32], [0, 50.0, 24], [0, 0, 1]]).expand(2, 3, 3)
    cameras = torch.stack([gl_camera([0.0, 0, 0]), gl_camera([0.5, 0, 0], 5.0)])
    context, scale = context_views(
        [torch.rand(48, 64, 3) for _ in range(2)], cameras, k, 32, multiple=encoder.size_multiple
    )
    assert passes == [tuple(context.images.shape[1:])], "prepare_views checks the context images"
    scene = SceneEncoder(encoder, [context], [scale], deterministic=True, seed=0)
    with torch.no_grad():
        first, again = scene(), scene()
    assert len(passes) == 1, "the prediction does not check them again"
    torch.testing.assert_close(first.means, again.means, atol=0, rtol=0)
    with torch.no_grad():
        encoder.encode(context)  # views handed to encode directly are checked: the count sees it
    assert passes[1:] == [tuple(context.images.shape)]


def test_the_configured_encoder_computes_with_the_runs_compute_options():
    from pixelsplat_ns.encoder import ComputeOptions
    from pixelsplat_ns.fast_routes.layers import Linear
    from pixelsplat_ns.per_scene.config import PixelSplatModelConfig
    from pixelsplat_ns.per_scene.prediction import configured_encoder

    assert configured_encoder(PixelSplatModelConfig(), "cpu").encoder.compute_options == ComputeOptions()
    options = ComputeOptions(exact_rewrites=False, linear_as_convolution=False)
    encoder = configured_encoder(PixelSplatModelConfig(encoder_compute=options), "cpu").encoder
    assert encoder.compute_options == options
    assert not any(m.via_convolution for m in encoder.modules() if isinstance(m, Linear))
