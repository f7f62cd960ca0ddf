"""The prediction of one scene: the configured encoder bound to the datamanager's context views."""

from pathlib import Path

import torch

from pixelsplat_ns.encoder import Gaussians, PixelSplatEncoder, Views
from pixelsplat_ns.encoder.checkpoints import BUNDLED_TINY_ENCODER, CheckpointError, build_encoder, read_encoder
from pixelsplat_ns.encoder.config import with_sh_convention

from .context import ContextError, context_views


class SceneEncoder(torch.nn.Module):
    """The encoder bound to one scene's context views: calling it predicts the scene's Gaussians in the
    dataparser's frame (differentiably, with the same depth-bin draws every time)."""

    def __init__(self, encoder: PixelSplatEncoder, context: Views, scale: float, deterministic: bool, seed: int):
        super().__init__()
        self.encoder, self.context, self.scale = encoder, context, scale
        self.deterministic, self.seed = deterministic, seed

    def forward(self) -> Gaussians:
        generator = torch.Generator(self.context.images.device).manual_seed(self.seed)
        return self.encoder.encode(self.context, self.deterministic, generator).scaled(self.scale)


def load_scene_encoder(model_config, datamanager, device) -> SceneEncoder:
    """The configured encoder (the bundled one by default) and the datamanager's context views, on ``device``."""
    path = model_config.encoder_checkpoint or BUNDLED_TINY_ENCODER
    try:
        encoder_config, state_dict, trained_shape = read_encoder(path)
    except (FileNotFoundError, CheckpointError) as error:
        raise CheckpointError(f"--pipeline.model.encoder-checkpoint {path}: {error}. Give an official .ckpt, a "
                              "converted .pt or a pixelsplat-pretrain run's config.yml or step-*.ckpt") from error
    encoder_config = with_sh_convention(encoder_config, model_config.sh_rotation, model_config.sh_coefficient_14)
    indices = list(datamanager.context_indices)
    wanted = encoder_config.num_context_views
    if len(indices) != wanted:
        how = ("were given with --pipeline.datamanager.context-views" if datamanager.config.context_views
               else "were chosen automatically (the automatic choice picks a pair)")
        example = " ".join(str(i) for i in range(wanted))
        raise ContextError(f"the encoder in {path} takes {wanted} context views; {len(indices)} {how}: give "
                           f"{wanted} indices of training images, e.g. --pipeline.datamanager.context-views {example}")
    encoder = build_encoder(encoder_config, state_dict, device)
    cameras = datamanager.train_dataset.cameras
    context, scale = context_views(
        [datamanager.cached_train[i]["image"] for i in indices],
        cameras.camera_to_worlds[indices],
        cameras.get_intrinsics_matrices()[indices],
        model_config.context_short_side or min(trained_shape),
        background=torch.ones(3) if model_config.background_color == "white" else torch.zeros(3),
        names=[Path(datamanager.train_dataparser_outputs.image_filenames[i]).name for i in indices],
        multiple=encoder.size_multiple,
    )
    return SceneEncoder(encoder, context.to(device), scale, model_config.deterministic, model_config.prediction_seed)
