"""The one door through which the project reads a torch file: ``read_checkpoint``, and ``check_state_dict``,
which says whether weights fit the encoder.

Loading never executes code from a file: ``torch.load(weights_only=True)`` first; Lightning checkpoints
that pickle other objects (configs, callbacks) are read with an unpickler that turns every class outside
torch's tensor-rebuilding allowlist into an inert placeholder.
"""

import pickle
from pathlib import Path
from typing import Optional, Union

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
    not_a_checkpoint(path)
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
            f"{path} is not a readable torch checkpoint (torch.load: {type(error).__name__} {reason}{named}): if it "
            "was downloaded, the download is incomplete or another file; download it again and check it with "
            "pixelsplat-checkpoint-info --expect-sha256"
        ) from error
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} holds a {type(data).__name__}, not a checkpoint dictionary")
    return data


def not_a_checkpoint(path: Path) -> None:
    """Refuse, by their first bytes, files that are plainly no checkpoint: an empty file, and a text or web page
    (what a failed download saves, Google Drive's "virus scan warning" page among them)."""
    with open(path, "rb") as file:
        head = file.read(512)
    if not head:
        raise CheckpointError(f"{path} is empty (0 bytes): a download or save that did not finish; get it again")
    if head.lstrip().lower().startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"{", b"[")):
        kind = "a web page (HTML)" if head.lstrip().startswith(b"<") else "a text (JSON) file"
        raise CheckpointError(
            f"{path} is {kind}, not a checkpoint: a download that saved the server's page instead of the file "
            "(Google Drive answers large files with a confirmation page: download them with gdown, as "
            "docs/checkpoints.md shows)"
        )


def expected_shapes(config: EncoderConfig) -> dict[str, torch.Size]:
    """The encoder's state-dict keys and shapes for ``config``, built on the meta device (no memory, no
    initialization)."""
    with torch.device("meta"):
        return {k: v.shape for k, v in PixelSplatEncoder(config).state_dict().items()}


def state_dict_differences(
    config: EncoderConfig, state_dict: dict[str, Tensor], file_names: Optional[dict[str, str]] = None
) -> list[str]:
    """What keeps ``state_dict`` (our weight names) from fitting the encoder of ``config``, one phrase per kind
    of difference (missing, unexpected, wrong shapes), each naming up to 20 weights; empty when it fits.
    ``file_names`` (ours -> the file's) names unexpected and misshapen weights as the file does; missing ones
    are not in the file and keep our names, said so."""
    expected = expected_shapes(config)
    named = file_names or {}
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(named.get(k, k) for k in set(state_dict) - set(expected))
    misshapen = sorted(k for k in set(expected) & set(state_dict) if tuple(state_dict[k].shape) != tuple(expected[k]))
    phrases = []
    if missing:
        names = " (pixelsplat-ns names)" if file_names else ""
        phrases.append(f"{len(missing)} missing{names}: {', '.join(missing[:20])}")
    if unexpected:
        phrases.append(f"{len(unexpected)} unexpected: {', '.join(unexpected[:20])}")
    if misshapen:
        shapes = ", ".join(
            f"{named.get(k, k)} {list(state_dict[k].shape)} != {list(expected[k])}" for k in misshapen[:20]
        )
        phrases.append(f"wrong shapes (the file's != the encoder's): {shapes}")
    return phrases


def check_state_dict(config: EncoderConfig, state_dict: dict[str, Tensor]) -> None:
    """Refuse a wrong or partial state dict, naming what is missing, unexpected or misshapen (by our weight
    names), and one whose weights are not all finite."""
    differences = state_dict_differences(config, state_dict)
    if differences:
        raise CheckpointError("the checkpoint does not match the pixelSplat encoder: " + "; ".join(differences))
    check_finite(state_dict)


def check_finite(state_dict: dict[str, Tensor]) -> None:
    """Refuse weights holding NaN or infinity (a damaged or diverged checkpoint), naming the first ones: the
    encoder would predict non-finite Gaussians from them."""
    bad = [
        k
        for k, v in state_dict.items()
        if v.is_floating_point() and v.device.type != "meta" and not bool(torch.isfinite(v).all())
    ]
    if bad:
        raise CheckpointError(
            f"{len(bad)} of the checkpoint's weights hold NaN or infinite values ({', '.join(bad[:5])}): the "
            "file is damaged, or was saved from a run that diverged; use another checkpoint"
        )
