"""``PixelSplatModel``: the Gaussians pixelSplat predicts for one scene, as a nerfstudio splat model.

It is a ``SplatfactoModel`` with a ``SplatfactoModelConfig`` (``PixelSplatModelConfig``), so that everything
nerfstudio does with a splat model (the viewer, ``ns-export gaussian-splat``, ``ns-render``, ``ns-eval``)
works on it unchanged. What differs:
- the Gaussians come from the encoder (``set_gaussians``; ``PixelSplatPipeline`` calls it), not from SfM
  points, and refinement (``pixelsplat_ns.per_scene.refinement``) is plain gradient descent on the target
  views, of the Gaussians or of the encoder's weights: no densification or culling;
- rendering goes through ``render_views`` (gsplat on CUDA, pure torch elsewhere): no ``.cuda()``, no
  ``torch.compile``;
- the loss is the paper's (MSE) and the metrics are the paper's (``pixelsplat_ns.metrics``); LPIPS needs
  VGG weights on disk and is left out, with a warning, when they are absent.
"""

import logging
from typing import Optional, cast

import torch
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.models.splatfacto import SplatfactoModel
from nerfstudio.utils.colors import get_color

from pixelsplat_ns.core.camera_checks import CameraError
from pixelsplat_ns.core.conventions import from_nerfstudio
from pixelsplat_ns.core.gaussians import Gaussians
from pixelsplat_ns.metrics import load_lpips_vgg, lpips_distance, psnr, ssim
from pixelsplat_ns.nerfstudio_compat.checkpoints import load_splat_state_in_place
from pixelsplat_ns.render import render_views
from pixelsplat_ns.render.rasterize import RenderMode

from .config import PixelSplatModelConfig
from .cpu_allocator import keep_freed_blocks
from .loss import refinement_loss
from .prediction import SceneEncoder
from .refinement import EncoderRefinement, GaussianRefinement
from .splats import Splats, parameter_splats, splat_parameters

LOGGER = logging.getLogger(__name__)

VIEWER_BACKGROUND = torch.tensor([0.1490, 0.1647, 0.2157])
"""Background of renders outside training with ``background_color="random"``: the viewer's, as splatfacto."""


class PixelSplatModel(SplatfactoModel):
    config: PixelSplatModelConfig
    near_plane: torch.Tensor  # a buffer, registered in populate_modules

    def populate_modules(self) -> None:
        """An empty scene: ``set_gaussians`` fills it after prediction, and the post-training tools resize it
        to the checkpoint's Gaussians (``SplatfactoModel.load_state_dict``)."""
        num_bases = (self.config.sh_degree + 1) ** 2
        shapes = {
            "means": (0, 3),
            "scales": (0, 3),
            "quats": (0, 4),
            "features_dc": (0, 3),
            "features_rest": (0, num_bases - 1, 3),
            "opacities": (0, 1),
        }
        self.gauss_params = torch.nn.ParameterDict({k: torch.nn.Parameter(torch.zeros(s)) for k, s in shapes.items()})
        self.camera_optimizer = self.config.camera_optimizer.setup(num_cameras=self.num_train_data, device="cpu")
        self.crop_box = None
        self.step = 0
        self.background_color = (
            VIEWER_BACKGROUND.clone()
            if self.config.background_color == "random"
            else get_color(self.config.background_color)
        )
        self.refinement: GaussianRefinement | EncoderRefinement = GaussianRefinement()
        # Gaussians nearer to a camera than this (dataparser units) are not drawn; set from the prediction and
        # saved with the Gaussians, so that every tool culls alike at any scene scale.
        self.register_buffer("near_plane", torch.tensor(0.0))
        self._lpips: Optional[torch.nn.Module] = None
        self._lpips_checked = False
        self._still: Optional[tuple[tuple, Splats]] = None  # see _still_splats

    def set_near_plane(self, near_plane: float) -> None:
        """Where rendering culls, in dataparser units (the pipeline sets it from the context's near plane)."""
        self.near_plane.fill_(near_plane)

    def set_gaussians(self, gaussians: Gaussians) -> None:
        """Make the predicted Gaussians (one scene, the dataparser's frame) the model's parameters."""
        device = self.device
        for name, value in splat_parameters(gaussians, self.config.sh_degree).items():
            self.gauss_params[name] = torch.nn.Parameter(value.detach().to(device).contiguous())

    def refine_encoder(self, scene_encoder: SceneEncoder) -> None:
        """Refine the encoder's weights instead of the Gaussians (``EncoderRefinement``)."""
        self.refinement = EncoderRefinement(scene_encoder)

    def load_state_dict(self, state_dict, **kwargs):
        """The Gaussians of a checkpoint (``load_splat_state_in_place``); a refined encoder's weights only
        when this model refines the encoder too (resuming that refinement), never for the post-training tools."""
        own = self.state_dict()
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith("refinement.") or k in own}
        return load_splat_state_in_place(self, state_dict, **kwargs)

    def get_training_callbacks(
        self, training_callback_attributes: TrainingCallbackAttributes
    ) -> list[TrainingCallback]:
        """The step counter and the refinement's own step; no densification or culling."""
        return [
            TrainingCallback(
                [TrainingCallbackLocation.BEFORE_TRAIN_ITERATION],
                self.step_cb,
                args=[training_callback_attributes.optimizers],
            ),
            TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION], self._after_refinement_step),
        ]

    def _after_refinement_step(self, step: int) -> None:
        self.refinement.after_step(self, step)

    def get_param_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        groups = self.refinement.param_groups(self)
        self.camera_optimizer.get_param_groups(param_groups=groups)
        return groups

    def _splats(self) -> Splats:
        """What to draw: the refinement's own while training (a fresh prediction when refining the encoder),
        otherwise the parameters (cropped to the viewer's box outside training)."""
        if self.training:
            splats = self.refinement.training_splats(self)
            if splats is not None:
                return splats
        params = dict(self.gauss_params)
        if self.crop_box is not None and not self.training:
            inside = self.crop_box.within(params["means"]).squeeze()
            params = {k: v[inside] for k, v in params.items()}
            return parameter_splats(params)
        if self.training or torch.is_grad_enabled():
            self._still = None  # a step may follow, and torch's fused Adam updates without a version bump
            return parameter_splats(params)
        return self._still_splats(params)

    def _still_splats(self, params: dict[str, torch.Tensor]) -> Splats:
        """``parameter_splats`` for renders without gradients, kept while the parameters are unchanged: the
        viewer draws the same Gaussians frame after frame, and activating them (the SH concatenation above
        all: 42 MB at 221k Gaussians of degree 3) would otherwise be redone for every frame.

        Dropped whenever the parameters are drawn for training or with gradients (an optimizer step may
        follow: torch's fused Adam changes them in place without bumping their version), and keyed on the
        refinement step, each parameter's storage, version (in-place copies: a loaded checkpoint) and shape."""
        key = (self.step,) + tuple((name, p.data_ptr(), p._version, tuple(p.shape)) for name, p in params.items())
        if self._still is None or self._still[0] != key:
            self._still = (key, parameter_splats(params))
        return self._still[1]

    def _get_background_color(self) -> torch.Tensor:
        """The configured background while training; outside it, the one the viewer may have set."""
        if not self.training:
            return self.background_color.to(self.device)
        if self.config.background_color == "random":
            return torch.rand(3, device=self.device)
        return get_color(self.config.background_color).to(self.device)

    def get_outputs(  # type: ignore[override]  # as splatfacto's: Cameras only, and "depth" may be None
        self, camera: Cameras
    ) -> dict[str, Optional[torch.Tensor]]:
        if not isinstance(camera, Cameras):
            raise TypeError(f"{type(self).__name__} renders Cameras, got {type(camera).__name__}")
        if camera.shape[0] != 1:
            raise ValueError(f"one camera at a time, got {camera.shape[0]}")
        camera_type = CameraType(int(camera.camera_type.flatten()[0]))
        if camera_type != CameraType.PERSPECTIVE:
            raise CameraError(
                f"pixelsplat renders pinhole (perspective) cameras, not {camera_type.name}: give a "
                'perspective camera path (camera_type "perspective" in ns-render\'s camera path)'
            )
        if self.config.cpu_allocator_tuning and self.device.type == "cpu":
            keep_freed_blocks()  # once per process: see cpu_allocator.py
        splats = self._splats()
        width, height = int(camera.width.item()), int(camera.height.item())
        self.last_size = (height, width)
        background = self._get_background_color()
        if splats["means"].shape[0] == 0:
            # Tensors only: nerfstudio annotates it with its get_outputs' Tensor | list.
            return cast(dict[str, Optional[torch.Tensor]], self.get_empty_outputs(width, height, background))

        c2w = self.camera_optimizer.apply_to_camera(camera) if self.training else camera.camera_to_worlds
        extrinsics, intrinsics = from_nerfstudio(c2w, camera.get_intrinsics_matrices().to(self.device), width, height)
        render_mode: RenderMode = "RGB+ED" if self.config.output_depth_during_training or not self.training else "RGB"
        render, alpha, _ = render_views(
            **splats,
            extrinsics=extrinsics,
            intrinsics=intrinsics,
            width=width,
            height=height,
            near_plane=float(self.near_plane),
            sh_degree=self.config.sh_degree,
            render_mode=render_mode,
        )
        rgb = torch.clamp(render[..., :3] + (1 - alpha) * background, 0.0, 1.0)
        outputs = {"rgb": rgb[0], "accumulation": alpha[0], "background": background, "depth": None}
        if render_mode == "RGB+ED":
            depth = render[..., 3:4]
            outputs["depth"] = torch.where(alpha > 0, depth, depth.detach().max())[0]
        if not self.training:
            outputs["background"] = background.expand(height, width, 3)
        return outputs

    def _target(self, batch, outputs) -> torch.Tensor:
        """The ground-truth image composited onto the render's background."""
        return self.composite_with_background(self.get_gt_img(batch["image"]), outputs["background"])

    def get_metrics_dict(self, outputs, batch) -> dict[str, torch.Tensor]:
        target, rendered = self._target(batch, outputs), outputs["rgb"].detach()
        return {
            "psnr": psnr(target.permute(2, 0, 1)[None], rendered.permute(2, 0, 1)[None])[0],
            "gaussian_count": self.num_points,
        }

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> dict[str, torch.Tensor]:
        """``refinement_loss`` on the target view (inside its mask, when the dataset has masks), plus the camera
        optimizer's regularizer when it is on."""
        mask = batch["mask"].to(self.device) if "mask" in batch else None
        losses = refinement_loss(outputs["rgb"], self._target(batch, outputs), mask)
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
        target, rendered = self._target(batch, outputs), outputs["rgb"]
        pair = [image.permute(2, 0, 1)[None] for image in (target, rendered)]
        metrics = {"psnr": float(psnr(*pair)[0]), "ssim": float(ssim(*pair)[0])}
        lpips = self._lpips_model()
        if lpips is not None:
            metrics["lpips"] = float(lpips_distance(lpips, *pair)[0])
        return metrics, {"img": torch.cat([target, rendered], dim=1)}
