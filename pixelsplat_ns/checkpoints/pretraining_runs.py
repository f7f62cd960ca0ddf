"""The encoder of a ``ns-train pixelsplat-pretrain`` run: nerfstudio's run layout (``config.yml`` beside
``nerfstudio_models/step-*.ckpt``), read without constructing anything the config names."""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import yaml
from torch import Tensor

from pixelsplat_ns.checkpoints.converted import config_from_dict
from pixelsplat_ns.checkpoints.reading import CheckpointError, check_state_dict, read_checkpoint
from pixelsplat_ns.encoder.config import EncoderConfig


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
    data: Optional[str] = None
    """The run's ``--data``, as its config.yml records it."""


def read_pretraining_run(path: Union[str, Path], step: Optional[int] = None) -> PretrainingRun:
    """A ``pixelsplat-pretrain`` run's encoder, given its config.yml (then the checkpoint of ``step``, by
    default the latest) or one of its ``nerfstudio_models/step-*.ckpt``.

    The run's config.yml is read as plain data: nothing it names is imported or constructed (nerfstudio's own
    loader would construct every class it names). Raises ``CheckpointError`` saying what is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no run config or checkpoint at {path}")
    if path.suffix not in (".yml", ".yaml"):
        return run_of_checkpoint(path, read_checkpoint(path))
    models = path.parent / "nerfstudio_models"
    checkpoints = sorted(models.glob("step-*.ckpt"))
    if step is not None:
        checkpoints = [c for c in checkpoints if c.name == f"step-{step:09d}.ckpt"]
    if not checkpoints:
        saved = sorted(int(c.stem.split("-")[1]) for c in models.glob("step-*.ckpt"))
        which = (
            "the run saved no checkpoint"
            if not saved
            else f"no checkpoint of step {step}; the run saved steps {', '.join(map(str, saved))}"
        )
        raise CheckpointError(f"{models}: {which}")
    return run_of_checkpoint(checkpoints[-1], read_checkpoint(checkpoints[-1]), path)


def run_of_checkpoint(path: Path, checkpoint: dict, config_path: Optional[Path] = None) -> PretrainingRun:
    """The run whose checkpoint ``path`` holds ``checkpoint``; its config.yml is two folders up."""
    config_path = config_path or path.parent.parent / "config.yml"
    if not config_path.is_file():
        raise CheckpointError(
            f"{path} is a nerfstudio checkpoint, but {config_path} (its run's config, which "
            "says which encoder it holds) is missing"
        )
    try:
        run = yaml.load(config_path.read_text(), Loader=_PlainDataLoader)
        if run.get("method_name") == "pixelsplat":
            encoder = _path_text(run["pipeline"]["model"].get("encoder_checkpoint")) or "the bundled tiny encoder"
            raise CheckpointError(
                f"{config_path} is a run of ns-train pixelsplat: one scene's Gaussians, not an encoder (the encoder "
                f"it was given is {encoder})"
            )
        config = config_from_dict(run["pipeline"]["model"]["encoder"])
        image_shape = tuple(run["pipeline"]["datamanager"]["dataset"]["image_shape"])
        data = _path_text(run.get("data"))
    except (yaml.YAMLError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as error:
        raise CheckpointError(f"{config_path} is not the config of a pixelsplat-pretrain run") from error
    return PretrainingRun(
        config, encoder_from_pretraining(checkpoint, config), image_shape, int(checkpoint.get("step", -1)), path, data
    )


def _path_text(value) -> Optional[str]:
    """A path as nerfstudio's config.yml stores it (``!!python/object/apply:pathlib.PosixPath`` with its parts,
    read as a list here) or as a plain string; None when absent."""
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return str(Path(*value)) if value else None
    return value if isinstance(value, str) else None
