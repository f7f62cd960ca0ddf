"""Official-layout checkpoints for the tests: the official key list (shared/reference), the original
codebase's extra keys, and Lightning files holding an encoder's weights under the official names."""

import json
from pathlib import Path

import pytest
import torch

from pixelsplat_ns.checkpoints.official import rename_official_key
from pixelsplat_ns.encoder import PixelSplatEncoder

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "pixelsplat_official_keys.json"


def load_official_keys() -> dict:
    """The official camera-ready encoder's key list: {"keys": {name: shape}, "variants": ...}."""
    if not REFERENCE.is_file():
        pytest.fail(f"the official key list is missing: expected {REFERENCE} (shared/reference beside the repository)")
    return json.loads(REFERENCE.read_text())


ORIGINAL_CODEBASE_EXTRA = {
    f"epipolar_transformer.transformer.layers.{layer}.1.fn.layers.{index}.{name}": shape
    for layer in (0, 1)
    for index, name, shape in (
        (0, "weight", [256, 128, 7, 7]),
        (0, "bias", [256]),
        (3, "weight", [128, 256, 7, 7]),
        (3, "bias", [128]),
    )
}
"""What the original codebase (787a889) has beyond the camera-ready keys (``git diff 787a889 32b1b66 --
src/model/encoder/epipolar/``): each epipolar transformer layer's ConvFeedForward, Sequential(Conv2d(128, 256,
7), GELU, Dropout, Conv2d(256, 128, 7), Dropout)."""


def meta_state_dict(shapes: dict) -> dict:
    return {k: torch.empty(v, device="meta") for k, v in shapes.items()}


class Tripwire:
    """Stands for a Lightning hyper-parameter object: unpickling it must never run its code."""

    def __reduce__(self):
        return (Tripwire._explode, ())

    @staticmethod
    def _explode():
        raise AssertionError("checkpoint loading executed code from the file")


def official_checkpoint(shapes: dict, encoder: PixelSplatEncoder) -> dict:
    """An official-layout Lightning checkpoint of the official weight names and ``shapes`` holding ``encoder``'s
    weights (plus a random layer4).

    The floating-point tensors, ``encoder``'s set to them first, are views of one random vector, each starting one
    element after the last (no two alike, so a swapped key still shows): torch.save writes a storage once, so the
    file and its conversion take megabytes where the paper encoder's own tensors would take half a gigabyte each."""
    ours = encoder.state_dict()
    shared = torch.randn(max(torch.Size(shape).numel() for shape in shapes.values()) + len(shapes))

    def window(offset: int, shape) -> torch.Tensor:
        return shared[offset : offset + torch.Size(shape).numel()].view(shape)

    weights, windows = {}, {}
    for offset, (key, shape) in enumerate(shapes.items()):
        renamed = rename_official_key(key)
        if renamed and ours[renamed].is_floating_point():
            windows[renamed] = weights["encoder." + key] = window(offset, shape)
        elif renamed:
            weights["encoder." + key] = ours[renamed]
        else:
            weights["encoder." + key] = window(offset, shape) if shape else torch.tensor(0)
    encoder.load_state_dict(windows, strict=False)
    return {"state_dict": weights, "epoch": 3, "global_step": 300000, "hyper_parameters": {"cfg": Tripwire()}}
