"""The one door through which the project reads a torch file: ``read_checkpoint``, and ``check_state_dict``,
which says whether weights fit the encoder.

Loading never executes code from a file: ``torch.load(weights_only=True)`` first; Lightning checkpoints
that pickle other objects (configs, callbacks) are read with an unpickler that turns every class outside
torch's tensor-rebuilding allowlist into an inert placeholder.
"""

import pickle
from pathlib import Path
from typing import Union

import torch
from torch import Tensor

from pixelsplat_ns.core.errors import InputError
from pixelsplat_ns.core.inert_unpickling import read_inert
from pixelsplat_ns.core.torch_versions import load_tensor_file
from pixelsplat_ns.encoder.config import EncoderConfig
from pixelsplat_ns.encoder.encoder import PixelSplatEncoder


class CheckpointError(InputError):
    """A checkpoint that is not, or not entirely, a pixelSplat encoder."""


def read_checkpoint(path: Union[str, Path]) -> dict:
    """The dictionary a torch file holds (an official Lightning checkpoint, a nerfstudio checkpoint, the
    project's converted file), its tensors on the CPU, as stored: keys and nesting are not interpreted here.

    Never runs code from the file: ``torch.load(weights_only=True)`` first; when the file pickles objects
    beyond tensors and plain containers (Lightning's configs, callbacks), it is read again with an unpickler
    that resolves only torch's tensor-rebuilding functions, storages, ``torch.Size`` and ``OrderedDict`` and
    turns every other class or function the file names into an inert placeholder: none of them is imported or
    called.

    Raises ``FileNotFoundError`` when ``path`` is not a file, and ``CheckpointError`` (an ``InputError``) when
    ``torch.load`` cannot read it (its first line of error quoted) or it holds something other than a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        refused: set[str] = set()
        try:
            data = load_tensor_file(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:  # pickled objects beyond tensors: read them as inert placeholders
            data = read_inert(path, refused)
    except Exception as error:
        reason = (str(error).splitlines() or [""])[0].rstrip(".")
        named = f"; it names {', '.join(sorted(refused)[:5])}, which was not run" if refused else ""
        raise CheckpointError(
            f"{path} is not a readable torch checkpoint (torch.load: {type(error).__name__} {reason}{named})"
        ) from error
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} holds a {type(data).__name__}, not a checkpoint dictionary")
    return data


def expected_shapes(config: EncoderConfig) -> dict[str, torch.Size]:
    """The encoder's state-dict keys and shapes for ``config``, built on the meta device (no memory, no
    initialization)."""
    with torch.device("meta"):
        return {k: v.shape for k, v in PixelSplatEncoder(config).state_dict().items()}


def check_state_dict(config: EncoderConfig, state_dict: dict[str, Tensor]) -> None:
    """Refuse a wrong or partial state dict, naming what is missing, unexpected or misshapen."""
    expected = expected_shapes(config)
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    misshapen = sorted(k for k in set(expected) & set(state_dict) if tuple(state_dict[k].shape) != tuple(expected[k]))
    if missing or unexpected or misshapen:
        lines = [
            f"{len(missing)} missing: {', '.join(missing[:20])}" if missing else "",
            f"{len(unexpected)} unexpected: {', '.join(unexpected[:20])}" if unexpected else "",
            "wrong shapes: "
            + ", ".join(f"{k} {list(state_dict[k].shape)} != {list(expected[k])}" for k in misshapen[:20])
            if misshapen
            else "",
        ]
        raise CheckpointError(
            "the checkpoint does not match the pixelSplat encoder: " + "; ".join(line for line in lines if line)
        )
