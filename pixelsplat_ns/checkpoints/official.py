"""Official pixelSplat Lightning checkpoints (``re10k.ckpt``, ``acid.ckpt``, the ablations, the 3-view model):
the map from the official code's weight names to ours, and the configuration read from which weights a file has.
"""

import re
from dataclasses import replace
from typing import Union

from torch import Tensor

from pixelsplat_ns.checkpoints.converted import FORMAT
from pixelsplat_ns.checkpoints.identity import architecture_label
from pixelsplat_ns.checkpoints.reading import CheckpointError, check_finite, expected_shapes, state_dict_differences
from pixelsplat_ns.encoder.config import EncoderConfig, ablation, paper, tiny

PAPER_IMAGE_SHAPE = (256, 256)
"""Image size of the official checkpoints (RealEstate10k and ACID), and of converted files that record none."""
UNUSED = None  # official weights with no counterpart: ResNet's layer4, which pixelSplat never runs

_SELF_ATTENTION = r"epipolar_transformer\.transformer\.layers\.(\d+)\.1\.fn\.self_attention\."
_OURS_SELF_ATTENTION = r"epipolar_transformer.layers.\1.image_attention."
# Official key (after the Lightning prefix "encoder.") -> our key; the first matching rule applies.
RENAMES: list[tuple[str, Union[str, None]]] = [
    (r"backbone\.resnet_backbone\.model\.layer4\.", UNUSED),
    (r"backbone\.resnet_backbone\.model\.", "backbone.resnet."),
    (r"backbone\.resnet_backbone\.projections\.layer(\d)\.", r"backbone.resnet.projections.\1."),
    (r"backbone\.dino\.blocks\.(\d+)\.attn\.", r"backbone.vit.blocks.\1."),
    (r"backbone\.dino\.", "backbone.vit."),
    (r"epipolar_transformer\.depth_encoding\.1\.", "epipolar_transformer.depth_encoding."),
    (
        r"epipolar_transformer\.transformer\.layers\.(\d+)\.0\.fn\.to_out\.0\.",
        r"epipolar_transformer.layers.\1.cross_attention.to_out.",
    ),
    (r"epipolar_transformer\.transformer\.layers\.(\d+)\.0\.fn\.", r"epipolar_transformer.layers.\1.cross_attention."),
    (
        r"epipolar_transformer\.transformer\.layers\.(\d+)\.0\.norm\.",
        r"epipolar_transformer.layers.\1.cross_attention.norm.",
    ),
    (r"epipolar_transformer\.transformer\.layers\.(\d+)\.1\.norm\.", r"epipolar_transformer.layers.\1.image_norm."),
    (_SELF_ATTENTION + r"positional_encoding\.1\.", _OURS_SELF_ATTENTION + "positional_encoding."),
    (_SELF_ATTENTION + r"patch_embedder\.0\.", _OURS_SELF_ATTENTION + "patch_embedder."),
    (_SELF_ATTENTION + r"transformer\.layers\.(\d+)\.0\.norm\.", _OURS_SELF_ATTENTION + r"blocks.\2.attention_norm."),
    (_SELF_ATTENTION + r"transformer\.layers\.(\d+)\.0\.fn\.to_qkv\.", _OURS_SELF_ATTENTION + r"blocks.\2.to_qkv."),
    (_SELF_ATTENTION + r"transformer\.layers\.(\d+)\.0\.fn\.to_out\.0\.", _OURS_SELF_ATTENTION + r"blocks.\2.to_out."),
    (_SELF_ATTENTION + r"transformer\.layers\.(\d+)\.1\.norm\.", _OURS_SELF_ATTENTION + r"blocks.\2.mlp_norm."),
    (_SELF_ATTENTION + r"transformer\.layers\.(\d+)\.1\.fn\.net\.0\.", _OURS_SELF_ATTENTION + r"blocks.\2.mlp.0."),
    (_SELF_ATTENTION + r"transformer\.layers\.(\d+)\.1\.fn\.net\.3\.", _OURS_SELF_ATTENTION + r"blocks.\2.mlp.2."),
    (_SELF_ATTENTION + r"resampler\.", _OURS_SELF_ATTENTION + "resampler."),
    # The original codebase's ConvFeedForward: Sequential(conv, GELU, dropout, conv, dropout); ours has no dropout.
    (
        r"epipolar_transformer\.transformer\.layers\.(\d+)\.1\.fn\.layers\.0\.",
        r"epipolar_transformer.layers.\1.convs.0.",
    ),
    (
        r"epipolar_transformer\.transformer\.layers\.(\d+)\.1\.fn\.layers\.3\.",
        r"epipolar_transformer.layers.\1.convs.2.",
    ),
    (r"epipolar_transformer\.upscaler\.", "epipolar_transformer.upscaler.expand."),
    (r"epipolar_transformer\.upscale_refinement\.", "epipolar_transformer.upscaler.refinement."),
]


def rename_official_key(key: str) -> Union[str, None]:
    """Our state-dict key for an official encoder weight's ``key`` (the official ``src/model/encoder`` module
    names, without Lightning's ``encoder.`` prefix), by the first rule of ``RENAMES`` whose pattern matches its
    start; a key that no rule matches is the same in both. Returns None for official weights with no
    counterpart here (``UNUSED``: ResNet's layer4, which pixelSplat never runs), which conversion drops.
    Raises nothing: whether the renamed weights fit the encoder is ``check_state_dict``'s question."""
    for pattern, replacement in RENAMES:
        if re.match(pattern, key):
            return None if replacement is UNUSED else re.sub(pattern, replacement, key, count=1)
    return key


_ORIGINAL_CODEBASE_CONV = re.compile(r"epipolar_transformer\.transformer\.layers\.\d+\.1\.fn\.layers\.[03]\.weight$")
_OFFICIAL_ONLY = ("backbone.resnet_backbone.", "backbone.dino.", "epipolar_transformer.transformer.")
"""Prefixes of weight names that only the official code uses (ours: backbone.resnet, backbone.vit, ...)."""
_OURS_ONLY = ("backbone.resnet.", "backbone.vit.", "epipolar_transformer.layers.")


def config_from_official(state_dict: dict[str, Tensor]) -> EncoderConfig:
    """The configuration an official checkpoint was trained with, read from which weights it has: the
    architecture (``EncoderConfig.architecture``: the original codebase's layers have 7x7 convs after their
    self-attention), the ablation, the context views (view embeddings); its colours
    as the official renderer drew them in training and in the paper's evaluation (SH coefficient 14 as its
    forward kernel computes it, the official rotation)."""
    config = replace(paper(), sh_coefficient_14="official_forward_kernel")
    if not any(k.startswith("epipolar_transformer.") for k in state_dict):
        config = ablation(config, "no_epipolar")
    elif "epipolar_transformer.depth_encoding.1.weight" not in state_dict:
        config = ablation(config, "no_depth_encoding")
    if (
        "depth_predictor.projection.1.weight" in state_dict
        and state_dict["depth_predictor.projection.1.weight"].shape[0] == 2
    ):
        config = ablation(config, "no_sampling")
    # Any of the original codebase's convolutions decides it (a damaged file may miss some): d_mlp is the first
    # convolution's output channels, or the second's input channels.
    convs = [(k, v) for k, v in state_dict.items() if _ORIGINAL_CODEBASE_CONV.match(k) and v.dim() == 4]
    if convs:
        key, weight = convs[0]
        config.architecture = "original_codebase"
        d_mlp = weight.shape[0] if key.endswith(".fn.layers.0.weight") else weight.shape[1]
        config.epipolar = replace(config.epipolar, d_mlp=d_mlp)
    if "epipolar_transformer.view_embeddings.weight" in state_dict:
        if config.architecture == "original_codebase":
            raise CheckpointError(
                "the checkpoint has both the original codebase's convolutions (787a889) and the camera-ready code's "
                "view embeddings (32b1b66): no official pixelSplat network has both"
            )
        config.num_context_views = state_dict["epipolar_transformer.view_embeddings.weight"].shape[0]
    return config


def convert_official(checkpoint: dict) -> tuple[EncoderConfig, dict[str, Tensor]]:
    """Our configuration and state dict from official weights: a Lightning checkpoint (``state_dict`` with the
    prefix ``encoder.``), or the official encoder's own state dict (its weight names, no prefix). Raises
    ``CheckpointError`` naming the kind the file is nearest to and what differs."""
    if "pipeline" in checkpoint:
        raise CheckpointError(
            "this is a checkpoint of a nerfstudio run, not an official pixelSplat one: export the "
            "encoder of a pixelsplat-pretrain run with pixelsplat-export-encoder"
        )
    weights = checkpoint.get("state_dict", checkpoint)
    if not isinstance(weights, dict):
        raise CheckpointError(f"its 'state_dict' is a {type(weights).__name__}, not a dictionary of weights")
    prefix = "encoder."
    if not any(isinstance(k, str) and k.startswith(prefix) for k in weights):
        if not any(isinstance(k, str) and k.startswith(_OFFICIAL_ONLY) for k in weights):
            raise CheckpointError(_none_of_the_kinds(checkpoint, weights))
        prefix = ""  # the official encoder's state dict itself
    official = {k[len(prefix) :]: v for k, v in weights.items() if isinstance(k, str) and k.startswith(prefix)}
    config = config_from_official(official)
    renamed, file_names = {}, {}
    for key, value in official.items():
        ours = rename_official_key(key)
        if ours is not None:
            renamed[ours], file_names[ours] = value, prefix + key
    differences = state_dict_differences(config, renamed, file_names)
    if differences:
        expected = expected_shapes(config)
        fitting = sum(k in renamed and tuple(renamed[k].shape) == tuple(shape) for k, shape in expected.items())
        raise CheckpointError(
            f"nearest kind: an official pixelSplat checkpoint ({architecture_label(config)} architecture, "
            f"{config.num_context_views} context views), but it does not match that encoder: "
            f"{fitting} of the {len(expected)} weights it needs are in the file with their shapes; "
            + "; ".join(differences)
        )
    check_finite(renamed)
    return config, renamed


def _none_of_the_kinds(checkpoint: dict, weights: dict) -> str:
    """Why a dictionary is none of the encoder files, naming the kind it is nearest to."""
    ours = set(expected_shapes(paper())) | set(expected_shapes(tiny()))
    bare = sum(key in ours for key in weights)
    if any(isinstance(k, str) and k.startswith(_OURS_ONLY) for k in weights) and bare >= 0.5 * len(weights):
        return (
            f"a bare state dict of the pixelsplat-ns encoder ({bare} of its {len(weights)} keys are ours), which "
            "records no configuration: save it with pixelsplat_ns.checkpoints.save_converted, or export the run "
            "with pixelsplat-export-encoder"
        )
    keys = ", ".join(map(str, list(checkpoint)[:8]))
    return (
        f"none of the encoder files: not an official pixelSplat checkpoint (no 'encoder.' weights under "
        f"'state_dict'), not a pixelsplat-ns file (no format '{FORMAT}'), not a nerfstudio run (no "
        f"'pipeline'); its top-level keys are {keys}"
    )
