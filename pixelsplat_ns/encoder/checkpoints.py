"""Encoder checkpoints: reading official pixelSplat Lightning checkpoints, converting them, loading either.

Loading never executes code from a file: ``torch.load(weights_only=True)`` first; Lightning checkpoints
that pickle other objects (configs, callbacks) are read with an unpickler that turns every class outside
torch's tensor-rebuilding allowlist into an inert placeholder.
"""

import pickle
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional, Union

import torch
import yaml
from torch import Tensor

from pixelsplat_ns.encoder.config import (
    BackboneConfig,
    EncoderConfig,
    EpipolarConfig,
    ImageSelfAttentionConfig,
    ResNetConfig,
    ViTConfig,
    ablation,
    paper,
)
from pixelsplat_ns.encoder.encoder import PixelSplatEncoder
from pixelsplat_ns.errors import InputError

FORMAT = "pixelsplat-ns-encoder"
BUNDLED_TINY_ENCODER = Path(__file__).parents[1] / "weights" / "tiny_synthetic.pt"
"""The tiny preset trained on the synthetic dataset on a CPU (README: "The bundled encoder")."""
VERSION = 1
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
    (r"epipolar_transformer\.transformer\.layers\.(\d+)\.0\.fn\.to_out\.0\.", r"epipolar_transformer.layers.\1.cross_attention.to_out."),
    (r"epipolar_transformer\.transformer\.layers\.(\d+)\.0\.fn\.", r"epipolar_transformer.layers.\1.cross_attention."),
    (r"epipolar_transformer\.transformer\.layers\.(\d+)\.0\.norm\.", r"epipolar_transformer.layers.\1.cross_attention.norm."),
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
    (r"epipolar_transformer\.upscaler\.", "epipolar_transformer.upscaler.expand."),
    (r"epipolar_transformer\.upscale_refinement\.", "epipolar_transformer.upscaler.refinement."),
]


class CheckpointError(InputError):
    """A checkpoint that is not, or not entirely, a pixelSplat encoder."""


def rename_official_key(key: str) -> Union[str, None]:
    for pattern, replacement in RENAMES:
        if re.match(pattern, key):
            return None if replacement is UNUSED else re.sub(pattern, replacement, key, count=1)
    return key


class _Inert:
    """Stands in for any pickled object that is not a tensor or a plain container: holds nothing, runs nothing."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __call__(self, *args, **kwargs) -> "_Inert":
        return _Inert()

    def __setstate__(self, state) -> None:
        pass

    def __setitem__(self, key, value) -> None:
        pass

    def append(self, value) -> None:
        pass

    def extend(self, values) -> None:
        pass


class _InertUnpickler(pickle.Unpickler):
    ALLOWED = {
        ("collections", "OrderedDict"),
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_parameter"),
        ("torch", "Size"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED or (module == "torch" and name.endswith("Storage")):
            return super().find_class(module, name)
        return _Inert


class _InertPickle:
    """A ``pickle_module`` for ``torch.load`` whose unpickler cannot construct arbitrary objects."""

    Unpickler = _InertUnpickler
    load = staticmethod(pickle.load)
    __name__ = "pixelsplat_ns_inert_pickle"


def read_checkpoint(path: Union[str, Path]) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:  # pickled objects beyond tensors: read them as inert placeholders
            data = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_InertPickle)
    except Exception as error:
        reason = (str(error).splitlines() or [""])[0].rstrip(".")
        raise CheckpointError(f"{path} is not a readable torch checkpoint (torch.load: {type(error).__name__} "
                              f"{reason})") from error
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} holds a {type(data).__name__}, not a checkpoint dictionary")
    return data


def config_from_official(state_dict: dict[str, Tensor]) -> EncoderConfig:
    """The configuration an official checkpoint was trained with, read from which weights it has; its colours
    as the official renderer drew them in training and in the paper's evaluation (SH coefficient 14 as its
    forward kernel computes it, the official rotation)."""
    config = replace(paper(), sh_coefficient_14="official_forward_kernel")
    if not any(k.startswith("epipolar_transformer.") for k in state_dict):
        config = ablation(config, "no_epipolar")
    elif "epipolar_transformer.depth_encoding.1.weight" not in state_dict:
        config = ablation(config, "no_depth_encoding")
    if "depth_predictor.projection.1.weight" in state_dict and state_dict["depth_predictor.projection.1.weight"].shape[0] == 2:
        config = ablation(config, "no_sampling")
    if "epipolar_transformer.view_embeddings.weight" in state_dict:
        config.num_context_views = state_dict["epipolar_transformer.view_embeddings.weight"].shape[0]
    return config


def convert_official(checkpoint: dict) -> tuple[EncoderConfig, dict[str, Tensor]]:
    """Our configuration and state dict from an official Lightning checkpoint (``state_dict``, ``encoder.``)."""
    if "pipeline" in checkpoint:
        raise CheckpointError("this is a checkpoint of a nerfstudio run, not an official pixelSplat one: export the "
                              "encoder of a pixelsplat-pretrain run with pixelsplat-export-encoder")
    weights = checkpoint.get("state_dict", checkpoint)
    official = {k[len("encoder."):]: v for k, v in weights.items() if isinstance(k, str) and k.startswith("encoder.")}
    if not official:
        raise CheckpointError("no 'encoder.' weights under 'state_dict': this is not an official pixelSplat checkpoint")
    config = config_from_official(official)
    renamed = {}
    for key, value in official.items():
        ours = rename_official_key(key)
        if ours is not None:
            renamed[ours] = value
    check_state_dict(config, renamed)
    return config, renamed


def check_state_dict(config: EncoderConfig, state_dict: dict[str, Tensor]) -> None:
    """Refuse a wrong or partial state dict, naming what is missing, unexpected or misshapen."""
    with torch.device("meta"):  # shapes only: no memory, no initialization
        expected = {k: v.shape for k, v in PixelSplatEncoder(config).state_dict().items()}
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    misshapen = sorted(k for k in set(expected) & set(state_dict) if tuple(state_dict[k].shape) != tuple(expected[k]))
    if missing or unexpected or misshapen:
        lines = [f"{len(missing)} missing: {', '.join(missing[:20])}" if missing else "",
                 f"{len(unexpected)} unexpected: {', '.join(unexpected[:20])}" if unexpected else "",
                 "wrong shapes: " + ", ".join(f"{k} {list(state_dict[k].shape)} != {list(expected[k])}" for k in misshapen[:20])
                 if misshapen else ""]
        raise CheckpointError("the checkpoint does not match the pixelSplat encoder: " + "; ".join(l for l in lines if l))


def encoder_from_pretraining(checkpoint: dict, config: EncoderConfig) -> dict[str, Tensor]:
    """The encoder weights of a ``ns-train pixelsplat-pretrain`` checkpoint (``pipeline`` state dict)."""
    pipeline = checkpoint.get("pipeline")
    if not isinstance(pipeline, dict):
        raise CheckpointError("no 'pipeline' state dict: this is not a nerfstudio checkpoint")
    prefixes = ("_model.encoder.", "_model.module.encoder.")  # the latter when saved from DDP
    state_dict = {k.split(".encoder.", 1)[1]: v for k, v in pipeline.items() if k.startswith(prefixes)}
    if not state_dict:
        raise CheckpointError("the nerfstudio checkpoint holds no encoder weights: is it a pixelsplat-pretrain run?")
    check_state_dict(config, state_dict)
    return state_dict


def save_converted(
    path: Union[str, Path], config: EncoderConfig, state_dict: dict[str, Tensor],
    image_shape: Optional[tuple[int, int]] = None,
) -> None:
    """Write a converted checkpoint; ``image_shape`` (h, w) records the image size it was trained at."""
    extra = {} if image_shape is None else {"image_shape": list(image_shape)}
    torch.save({"format": FORMAT, "version": VERSION, "config": asdict(config), "state_dict": state_dict, **extra},
               path)


def config_from_dict(data: dict) -> EncoderConfig:
    backbone = data["backbone"]
    epipolar = data["epipolar"]
    return EncoderConfig(
        **{k: v for k, v in data.items() if k not in ("backbone", "epipolar")},
        backbone=BackboneConfig(
            resnet=ResNetConfig(block=backbone["resnet"]["block"], layers=tuple(backbone["resnet"]["layers"])),
            vit=ViTConfig(**backbone["vit"]),
            d_out=backbone["d_out"],
        ),
        epipolar=EpipolarConfig(
            **{k: v for k, v in epipolar.items() if k != "self_attention"},
            self_attention=ImageSelfAttentionConfig(**epipolar["self_attention"]),
        ),
    )


class _PlainDataLoader(yaml.SafeLoader):
    """Reads a nerfstudio config.yml as plain data: python object tags become dicts and lists, nothing is
    imported or constructed (unlike nerfstudio's own ``yaml.Loader``)."""


def _plain(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_PlainDataLoader.add_multi_constructor("tag:yaml.org,2002:python/", _plain)


@dataclass
class PretrainingRun:
    """The encoder of a ``ns-train pixelsplat-pretrain`` run at one of its checkpoints."""

    config: EncoderConfig
    state_dict: dict[str, Tensor]
    image_shape: tuple[int, int]
    """(h, w) of the images it was trained on."""
    step: int
    checkpoint: Path


def read_pretraining_run(path: Union[str, Path], step: Optional[int] = None) -> PretrainingRun:
    """A ``pixelsplat-pretrain`` run's encoder, given its config.yml (then the checkpoint of ``step``, by
    default the latest) or one of its ``nerfstudio_models/step-*.ckpt``.

    The run's config.yml is read as plain data: nothing it names is imported or constructed (nerfstudio's own
    loader would construct every class it names). Raises ``CheckpointError`` saying what is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no run config or checkpoint at {path}")
    if path.suffix not in (".yml", ".yaml"):
        return _run_of_checkpoint(path, read_checkpoint(path))
    models = path.parent / "nerfstudio_models"
    checkpoints = sorted(models.glob("step-*.ckpt"))
    if step is not None:
        checkpoints = [c for c in checkpoints if c.name == f"step-{step:09d}.ckpt"]
    if not checkpoints:
        saved = sorted(int(c.stem.split("-")[1]) for c in models.glob("step-*.ckpt"))
        which = ("the run saved no checkpoint" if not saved
                 else f"no checkpoint of step {step}; the run saved steps {', '.join(map(str, saved))}")
        raise CheckpointError(f"{models}: {which}")
    return _run_of_checkpoint(checkpoints[-1], read_checkpoint(checkpoints[-1]), path)


def _run_of_checkpoint(path: Path, checkpoint: dict, config_path: Optional[Path] = None) -> PretrainingRun:
    """The run whose checkpoint ``path`` holds ``checkpoint``; its config.yml is two folders up."""
    config_path = config_path or path.parent.parent / "config.yml"
    if not config_path.is_file():
        raise CheckpointError(f"{path} is a nerfstudio checkpoint, but {config_path} (its run's config, which "
                              "says which encoder it holds) is missing")
    try:
        run = yaml.load(config_path.read_text(), Loader=_PlainDataLoader)
        config = config_from_dict(run["pipeline"]["model"]["encoder"])
        image_shape = tuple(run["pipeline"]["datamanager"]["dataset"]["image_shape"])
    except (yaml.YAMLError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise CheckpointError(f"{config_path} is not the config of a pixelsplat-pretrain run") from error
    return PretrainingRun(config, encoder_from_pretraining(checkpoint, config), image_shape,
                          int(checkpoint.get("step", -1)), path)


def read_encoder(path: Union[str, Path]) -> tuple[EncoderConfig, dict[str, Tensor], tuple[int, int]]:
    """Configuration, weights and training image size (h, w) from any encoder file: a converted checkpoint,
    an official Lightning ``.ckpt``, or a ``pixelsplat-pretrain`` run (its config.yml or a step-*.ckpt).
    Raises ``FileNotFoundError`` or ``CheckpointError`` saying what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint or run config at {path}")
    if path.suffix in (".yml", ".yaml"):
        run = read_pretraining_run(path)
        return run.config, run.state_dict, run.image_shape
    checkpoint = read_checkpoint(path)
    if "pipeline" in checkpoint:
        run = _run_of_checkpoint(path, checkpoint)
        return run.config, run.state_dict, run.image_shape
    if checkpoint.get("format") == FORMAT:
        if checkpoint.get("version") != VERSION:
            raise CheckpointError(f"{path}: converted checkpoint version {checkpoint.get('version')}, expected {VERSION}")
        try:
            config, state_dict = config_from_dict(checkpoint["config"]), checkpoint["state_dict"]
        except (KeyError, TypeError) as error:
            raise CheckpointError(f"{path}: a converted checkpoint without a valid config and state_dict") from error
        check_state_dict(config, state_dict)
        return config, state_dict, tuple(checkpoint.get("image_shape", PAPER_IMAGE_SHAPE))
    return (*convert_official(checkpoint), PAPER_IMAGE_SHAPE)


def build_encoder(
    config: EncoderConfig, state_dict: dict[str, Tensor], device: Union[str, torch.device] = "cpu"
) -> PixelSplatEncoder:
    encoder = PixelSplatEncoder(config)
    encoder.load_state_dict(state_dict)
    return encoder.to(device).eval()


def load_encoder(path: Union[str, Path], device: Union[str, torch.device] = "cpu") -> PixelSplatEncoder:
    """A trained encoder in eval mode, ready for ``encode``.

    ``path``: an official pixelSplat Lightning checkpoint (``re10k.ckpt``, ``acid.ckpt``, the ablations, the
    3-view model), a file converted by ``pixelsplat-convert-checkpoint`` or ``pixelsplat-export-encoder``, or
    a ``ns-train pixelsplat-pretrain`` run (its config.yml or one of its step-*.ckpt). Nothing in the file is
    executed. Raises ``FileNotFoundError``, or ``CheckpointError`` naming the missing and unexpected weights
    of a file that is not, or not entirely, a pixelSplat encoder.

    Example::

        encoder = load_encoder("re10k.ckpt")
        views, scale = prepare_views(images, extrinsics, intrinsics, context=[0, 1])
        gaussians = encoder.encode(views.batched())  # in the views' frame; .scaled(scale) for the input's
    """
    config, state_dict, _ = read_encoder(path)
    return build_encoder(config, state_dict, device)
