"""``PixelSplatModel``: the Gaussians pixelSplat predicts for one scene, as a nerfstudio splat model.

It subclasses splatfacto's model so that everything nerfstudio does with a splat model (the viewer,
``ns-export gaussian-splat``, ``ns-render``, ``ns-eval``) works on it unchanged. What differs:
- the Gaussians come from the encoder (``set_gaussians``; ``PixelSplatPipeline`` calls it), not from
  SfM points, and are refined by plain gradient descent on the target views: no densification or culling;
  or, with ``refine_encoder``, the encoder's weights are refined and the Gaussians predicted anew each step;
- rendering goes through ``pixelsplat_ns.render.rasterize`` (gsplat on CUDA, pure torch elsewhere): no
  ``.cuda()``, no ``torch.compile``;
- the loss is the paper's (MSE) and the metrics are the paper's (``pixelsplat_ns.metrics``); LPIPS needs
  VGG weights on disk and is left out, with a warning, when they are absent.
"""

import logging
from typing import Optional

import torch
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.models.splatfacto import SplatfactoModel
from nerfstudio.utils.colors import get_color

from pixelsplat_ns.data.cameras import convert_c2w_opengl_opencv, homogeneous
from pixelsplat_ns.encoder import Gaussians
from pixelsplat_ns.metrics import load_lpips_vgg, lpips_distance, psnr, ssim
from pixelsplat_ns.render import rasterize
from pixelsplat_ns.splats import splat_parameters

LOGGER = logging.getLogger(__name__)

NEAR_PLANE = 0.01
"""Gaussians closer to the camera than this (dataparser units) are not drawn, as in splatfacto."""


class PixelSplatModel(SplatfactoModel):
    def populate_modules(self) -> None:
        """An empty scene: ``set_gaussians`` fills it after prediction, and the post-training tools resize it
        to the checkpoint's Gaussians (``SplatfactoModel.load_state_dict``)."""
        num_bases = (self.config.sh_degree + 1) ** 2
        shapes = {"means": (0, 3), "scales": (0, 3), "quats": (0, 4), "features_dc": (0, 3),
                  "features_rest": (0, num_bases - 1, 3), "opacities": (0, 1)}
        self.gauss_params = torch.nn.ParameterDict({k: torch.nn.Parameter(torch.zeros(s)) for k, s in shapes.items()})
        self.camera_optimizer = self.config.camera_optimizer.setup(num_cameras=self.num_train_data, device="cpu")
        self.crop_box = None
        self.step = 0
        self.background_color = get_color(self.config.background_color)
        self._lpips: Optional[torch.nn.Module] = None
        self._lpips_checked = False
        self.scene_encoder: Optional[torch.nn.Module] = None
        self._last_prediction: Optional[Gaussians] = None

    def set_gaussians(self, gaussians: Gaussians) -> None:
        """Make the predicted Gaussians (one scene, the dataparser's frame) the model's parameters."""
        device = self.device
        for name, value in splat_parameters(gaussians, self.config.sh_degree).items():
            self.gauss_params[name] = torch.nn.Parameter(value.detach().to(device).contiguous())

    def attach_scene_encoder(self, scene_encoder: torch.nn.Module) -> None:
        """Refine the encoder instead of the Gaussians: ``scene_encoder()`` predicts them (see per_scene)."""
        self.scene_encoder = scene_encoder.eval()  # batch norm keeps its statistics: two views are no batch

    def train(self, mode: bool = True):
        super().train(mode)
        if self.scene_encoder is not None:
            self.scene_encoder.eval()
        return self

    def load_state_dict(self, state_dict, **kwargs):
        """The post-training tools build an empty model, which splatfacto resizes to the checkpoint's
        Gaussians. A resumed run already holds them, and the optimizer holds those very tensors, so their
        values are copied in place (splatfacto's resize would leave Adam stepping stale tensors: it only
        gets back in step when it densifies, which refinement never does). A refined encoder's weights are
        left out unless the model carries the encoder (resuming its refinement)."""
        if self.scene_encoder is None:
            state_dict = {k: v for k, v in state_dict.items() if not k.startswith("scene_encoder.")}
        if state_dict["gauss_params.means"].shape == self.means.shape:
            return torch.nn.Module.load_state_dict(self, state_dict, **kwargs)
        return super().load_state_dict(state_dict, **kwargs)

    def get_training_callbacks(self, training_callback_attributes: TrainingCallbackAttributes) -> list[TrainingCallback]:
        """The step counter, and the refined encoder's latest prediction kept as the scene's Gaussians.
        Refinement keeps the predicted set of Gaussians: no densify or cull."""
        return [
            TrainingCallback([TrainingCallbackLocation.BEFORE_TRAIN_ITERATION], self.step_cb,
                             args=[training_callback_attributes.optimizers]),
            TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION], self._keep_last_prediction),
        ]

    def _keep_last_prediction(self, step: int) -> None:
        if self._last_prediction is not None:
            self.set_gaussians(self._last_prediction)
            self._last_prediction = None

    def get_param_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        if self.scene_encoder is not None:
            groups = {"encoder": list(self.scene_encoder.parameters())}
        else:
            groups = self.get_gaussian_param_groups()
        self.camera_optimizer.get_param_groups(param_groups=groups)
        return groups

    def _splats(self) -> dict[str, Optional[torch.Tensor]]:
        """What to draw, as ``rasterize`` arguments: the refined encoder's prediction while refining it,
        otherwise the parameters (cropped to the viewer's box outside training)."""
        num_bases = (self.config.sh_degree + 1) ** 2
        if self.training and self.scene_encoder is not None:
            predicted = self.scene_encoder()
            self._last_prediction = Gaussians(*(t.detach() for t in (
                predicted.means, predicted.covariances, predicted.opacities, predicted.harmonics)))
            return {"means": predicted.means[0], "quats": None, "scales": None, "covars": predicted.covariances[0],
                    "opacities": predicted.opacities[0], "colors": predicted.harmonics[0, :, :num_bases]}
        params = dict(self.gauss_params)
        if self.crop_box is not None and not self.training:
            inside = self.crop_box.within(params["means"]).squeeze()
            params = {k: v[inside] for k, v in params.items()}
        return {"means": params["means"], "quats": params["quats"], "scales": torch.exp(params["scales"]),
                "covars": None, "opacities": torch.sigmoid(params["opacities"])[:, 0],
                "colors": torch.cat([params["features_dc"][:, None], params["features_rest"]], dim=1)}

    def _get_downscale_factor(self) -> int:
        """Refinement renders at full resolution from the first step (no coarse-to-fine schedule)."""
        return 1

    def _get_background_color(self) -> torch.Tensor:
        """The configured background while training; outside it, the one the viewer may have set."""
        if not self.training:
            return self.background_color.to(self.device)
        if self.config.background_color == "random":
            return torch.rand(3, device=self.device)
        return get_color(self.config.background_color).to(self.device)

    def get_outputs(self, camera: Cameras) -> dict[str, torch.Tensor]:
        if not isinstance(camera, Cameras):
            raise TypeError(f"{type(self).__name__} renders Cameras, got {type(camera).__name__}")
        if camera.shape[0] != 1:
            raise ValueError(f"one camera at a time, got {camera.shape[0]}")
        splats = self._splats()
        width, height = int(camera.width.item()), int(camera.height.item())
        self.last_size = (height, width)
        background = self._get_background_color()
        if splats["means"].shape[0] == 0:
            return self.get_empty_outputs(width, height, background)

        c2w = self.camera_optimizer.apply_to_camera(camera) if self.training else camera.camera_to_worlds
        viewmats = torch.linalg.inv(convert_c2w_opengl_opencv(homogeneous(c2w)))
        render_mode = "RGB+ED" if self.config.output_depth_during_training or not self.training else "RGB"
        render, alpha, _ = rasterize(
            splats["means"], splats["quats"], splats["scales"], splats["opacities"], splats["colors"],
            viewmats, camera.get_intrinsics_matrices().to(self.device), width, height,
            near_plane=NEAR_PLANE, sh_degree=self.config.sh_degree, render_mode=render_mode, covars=splats["covars"],
        )
        rgb = torch.clamp(render[..., :3] + (1 - alpha) * background, 0.0, 1.0)
        outputs = {"rgb": rgb[0], "accumulation": alpha[0], "background": background, "depth": None}
        if render_mode == "RGB+ED":
            depth = render[..., 3:4]
            outputs["depth"] = torch.where(alpha > 0, depth, depth.detach().max())[0]
        if not self.training:
            outputs["background"] = background.expand(height, width, 3)
        return outputs

    def get_metrics_dict(self, outputs, batch) -> dict[str, torch.Tensor]:
        target = self.composite_with_background(self.get_gt_img(batch["image"]), outputs["background"])
        rendered = outputs["rgb"].detach()
        return {"psnr": psnr(target.permute(2, 0, 1)[None], rendered.permute(2, 0, 1)[None])[0],
                "gaussian_count": self.num_points}

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> dict[str, torch.Tensor]:
        """The paper's reconstruction loss (MSE) on the target view (inside its mask, when the dataset has
        masks), plus the camera optimizer's regularizer when it is on."""
        target = self.composite_with_background(self.get_gt_img(batch["image"]), outputs["background"])
        rendered = outputs["rgb"]
        if "mask" in batch:
            mask = batch["mask"].to(self.device)
            target, rendered = target * mask, rendered * mask
        losses = {"mse": torch.nn.functional.mse_loss(rendered, target)}
        if self.training:
            self.camera_optimizer.get_loss_dict(losses)
        return losses

    def _lpips_model(self) -> Optional[torch.nn.Module]:
        if not self._lpips_checked:
            self._lpips_checked = True
            try:
                self._lpips = load_lpips_vgg().to(self.device)
            except RuntimeError as error:
                LOGGER.warning("LPIPS left out of the metrics: %s", error)
        return self._lpips

    def get_image_metrics_and_images(self, outputs, batch):
        """The paper's PSNR, SSIM and (when VGG weights are on disk) LPIPS, and ground truth | render."""
        target = self.composite_with_background(self.get_gt_img(batch["image"]), outputs["background"])
        rendered = outputs["rgb"]
        pair = [image.permute(2, 0, 1)[None] for image in (target, rendered)]
        metrics = {"psnr": float(psnr(*pair)[0]), "ssim": float(ssim(*pair)[0])}
        lpips = self._lpips_model()
        if lpips is not None:
            metrics["lpips"] = float(lpips_distance(lpips, *pair)[0])
        return metrics, {"img": torch.cat([target, rendered], dim=1)}
