"""``ns-train pixelsplat``: two views of any nerfstudio dataset in, a Gaussian splat scene out.

The datamanager (``pixelsplat_ns.data.context_datamanager``) picks and checks the context views; the
pipeline predicts the scene with the encoder once, when training starts, and hands the Gaussians to
``PixelSplatModel``. The tools that load a finished run (viewer, ns-render, ns-eval,
ns-export) build the pipeline without predicting and read the Gaussians from the checkpoint.
"""

from pathlib import Path

import torch
from nerfstudio.pipelines.base_pipeline import VanillaPipeline
from nerfstudio.utils.rich_utils import CONSOLE

from pixelsplat_ns.checkpoints import BUNDLED_TINY_ENCODER, CheckpointError, build_encoder, read_encoder
from pixelsplat_ns.data.context import ContextError, ContextViews, context_views
from pixelsplat_ns.data.context_datamanager import PixelSplatDataManager
from pixelsplat_ns.encoder import Gaussians, PixelSplatEncoder
from pixelsplat_ns.splats import scale_gaussians


class SceneEncoder(torch.nn.Module):
    """The encoder bound to one scene's context views: calling it predicts the scene's Gaussians in the
    dataparser's frame (differentiably, with the same depth-bin draws every time)."""

    def __init__(self, encoder: PixelSplatEncoder, context: ContextViews, deterministic: bool, seed: int) -> None:
        super().__init__()
        self.encoder, self.baseline, self.deterministic, self.seed = encoder, context.baseline, deterministic, seed
        for name in ("images", "extrinsics", "intrinsics", "near", "far"):
            self.register_buffer(f"context_{name}", getattr(context, name), persistent=False)

    def forward(self) -> Gaussians:
        generator = torch.Generator(self.context_images.device).manual_seed(self.seed)
        gaussians = self.encoder.encode(self.context_images, self.context_extrinsics, self.context_intrinsics,
                                        self.context_near, self.context_far, self.deterministic, generator)
        return scale_gaussians(gaussians, self.baseline)


def load_scene_encoder(model_config, datamanager: PixelSplatDataManager, device) -> SceneEncoder:
    """The configured encoder (the bundled one by default) and the datamanager's context views."""
    path = model_config.encoder_checkpoint or BUNDLED_TINY_ENCODER
    try:
        encoder_config, state_dict, trained_shape = read_encoder(path)
    except (FileNotFoundError, CheckpointError) as error:
        raise CheckpointError(f"--pipeline.model.encoder-checkpoint {path}: {error}. Give an official .ckpt, a "
                              "converted .pt or a pixelsplat-pretrain run's config.yml or step-*.ckpt") from error
    indices = datamanager.context_indices
    if len(indices) != encoder_config.num_context_views:
        raise ContextError(f"the encoder in {path} takes {encoder_config.num_context_views} context views, "
                           f"{len(indices)} were given (--pipeline.datamanager.context-views)")
    cameras = datamanager.train_dataset.cameras
    names = [Path(datamanager.train_dataparser_outputs.image_filenames[i]).name for i in indices]
    context = context_views(
        [datamanager.cached_train[i]["image"] for i in indices],
        cameras.camera_to_worlds[list(indices)],
        cameras.get_intrinsics_matrices()[list(indices)],
        model_config.context_short_side or min(trained_shape),
        background=torch.zeros(3) if model_config.background_color != "white" else torch.ones(3),
        names=names,
    )
    encoder = build_encoder(encoder_config, state_dict, device)
    return SceneEncoder(encoder, context, model_config.deterministic, model_config.prediction_seed).to(device)


class PixelSplatPipeline(VanillaPipeline):
    """nerfstudio's pipeline that predicts the scene when training starts (``ns-train``, test mode "val"). The
    post-training tools build it in the other modes and read the Gaussians from the checkpoint instead, so
    they need neither the encoder nor its file. A resumed run predicts too, then loads the checkpoint over it."""

    def __init__(self, config, device, test_mode="val", world_size=1, local_rank=0, grad_scaler=None) -> None:
        dataparser = config.datamanager.dataparser
        if getattr(dataparser, "alpha_color", None) is not None:
            # RGBA images reach the model, which composites context, targets and renders on one background.
            CONSOLE.log(f"pixelsplat composites RGBA images onto the model's background "
                        f"({config.model.background_color}), not the dataparser's alpha color ({dataparser.alpha_color})")
            dataparser.alpha_color = None
        super().__init__(config, device, test_mode, world_size, local_rank, grad_scaler)
        if test_mode != "val":  # the post-training tools load the checkpoint's Gaussians
            return
        scene_encoder = load_scene_encoder(self.model.config, self.datamanager, device)
        with torch.no_grad():
            gaussians = scene_encoder()
        images = scene_encoder.context_images
        CONSOLE.log(f"pixelsplat predicted {gaussians.means.shape[1]} Gaussians from "
                    f"{images.shape[-1]}x{images.shape[-2]} context views")
        self.model.set_gaussians(gaussians)
        if self.model.config.refine_encoder:
            self.model.attach_scene_encoder(scene_encoder)
