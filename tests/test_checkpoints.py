"""Official checkpoints: every key accounted for, conversion round trips, safe loading, clear refusals."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pixelsplat_ns.checkpoints import (
    CheckpointError,
    check_state_dict,
    config_from_official,
    convert_official,
    load_encoder,
    read_checkpoint,
    save_converted,
)
from pixelsplat_ns.checkpoints.official import rename_official_key
from pixelsplat_ns.encoder import PixelSplatEncoder, paper, tiny

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "pixelsplat_official_keys.json"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def official_keys() -> dict:
    if not REFERENCE.is_file():
        pytest.fail(f"the official key list is missing: expected {REFERENCE} (shared/reference beside the repository)")
    return json.loads(REFERENCE.read_text())


def meta_state_dict(shapes: dict) -> dict:
    return {k: torch.empty(v, device="meta") for k, v in shapes.items()}


def test_every_official_key_is_mapped_or_known_unused(official_keys):
    keys = official_keys["keys"]
    assert len(keys) == official_keys["num_keys"] == 574
    renamed = {rename_official_key(k): k for k in keys}
    unused = renamed.pop(None)
    assert all(k.startswith("backbone.resnet_backbone.model.layer4.") for k in [unused]), unused
    assert sum(k.startswith("backbone.resnet_backbone.model.layer4.") for k in keys) == 574 - len(renamed)
    state = {ours: torch.empty(keys[official], device="meta") for ours, official in renamed.items()}
    check_state_dict(paper(), state)  # names and shapes match our paper encoder one to one
    parameters = {k: s for k, s in keys.items() if "running_" not in k and "num_batches_tracked" not in k}
    assert sum(torch.Size(s).numel() for s in parameters.values()) == 118_979_412


def test_ablation_and_three_view_variants_convert(official_keys):
    keys = official_keys["keys"]
    for name, variant in official_keys["variants"].items():
        shapes = {k: v for k, v in keys.items() if k not in variant["missing"]} | variant["extra"]
        config = config_from_official(meta_state_dict(shapes))
        renamed = {rename_official_key(k): torch.empty(v, device="meta") for k, v in shapes.items() if rename_official_key(k)}
        check_state_dict(config, renamed)
        if "three" in name:
            assert config.num_context_views == 3
        else:
            assert not config.use_epipolar_transformer
    # The no-probabilistic-sampling model: one depth bin, one Gaussian per pixel.
    shapes = dict(keys, **{"depth_predictor.projection.1.weight": [2, 128], "depth_predictor.projection.1.bias": [2]})
    config = config_from_official(meta_state_dict(shapes))
    assert (config.num_depth_bins, config.gaussians_per_pixel) == (1, 1)


class Tripwire:
    """Stands for a Lightning hyper-parameter object: unpickling it must never run its code."""

    def __reduce__(self):
        return (Tripwire._explode, ())

    @staticmethod
    def _explode():
        raise AssertionError("checkpoint loading executed code from the file")


def official_checkpoint(official_keys, encoder: PixelSplatEncoder) -> dict:
    """An official-layout Lightning checkpoint holding ``encoder``'s weights (plus a random layer4)."""
    ours = encoder.state_dict()
    weights = {}
    for key, shape in official_keys["keys"].items():
        renamed = rename_official_key(key)
        weights["encoder." + key] = ours[renamed] if renamed else torch.randn(shape) if shape else torch.tensor(0)
    return {"state_dict": weights, "epoch": 3, "global_step": 300000, "hyper_parameters": {"cfg": Tripwire()}}


def test_official_lightning_checkpoint_loads_without_running_its_code(tmp_path, official_keys):
    torch.manual_seed(0)
    encoder = PixelSplatEncoder(paper()).eval()
    path = tmp_path / "re10k.ckpt"
    torch.save(official_checkpoint(official_keys, encoder), path)
    with pytest.raises(AssertionError, match="executed code"):  # what an unrestricted load would do
        torch.load(path, weights_only=False)
    loaded = load_encoder(path)
    for key, value in encoder.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key

    converted = tmp_path / "re10k.pt"
    result = subprocess.run([str(BIN / "pixelsplat-convert-checkpoint"), str(path), str(converted)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "converted 514 tensors" in result.stdout
    again = load_encoder(converted)
    for key, value in encoder.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key
    refused = subprocess.run([str(BIN / "pixelsplat-convert-checkpoint"), str(path), str(converted)],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "--force" in refused.stderr


def test_converted_checkpoint_round_trips_any_configuration(tmp_path):
    config = tiny()
    config.use_epipolar_transformer = False
    encoder = PixelSplatEncoder(config)
    save_converted(tmp_path / "tiny.pt", config, encoder.state_dict())
    loaded = load_encoder(tmp_path / "tiny.pt")
    assert loaded.config == config and loaded.epipolar_transformer is None
    for key, value in encoder.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_partial_checkpoint_is_refused_naming_the_keys(official_keys):
    weights = {"encoder." + k: torch.empty(v, device="meta") for k, v in official_keys["keys"].items()}
    del weights["encoder.to_gaussians.1.bias"]
    weights["encoder.surprise.weight"] = torch.empty(3, device="meta")
    weights["encoder.high_resolution_skip.0.bias"] = torch.empty(7, device="meta")
    with pytest.raises(CheckpointError) as error:
        convert_official({"state_dict": weights})
    message = str(error.value)
    assert "missing: to_gaussians.1.bias" in message
    assert "unexpected: surprise.weight" in message
    assert "high_resolution_skip.0.bias [7] != [128]" in message


def test_files_that_are_not_encoder_checkpoints_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        read_checkpoint(tmp_path / "missing.ckpt")
    (tmp_path / "notes.ckpt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        read_checkpoint(tmp_path / "notes.ckpt")
    torch.save({"state_dict": {"model.weight": torch.zeros(1)}}, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="not an official pixelSplat checkpoint"):
        load_encoder(tmp_path / "other.ckpt")


def test_load_encoder_is_part_of_the_public_api():
    from pixelsplat_ns import load_encoder as public

    assert public is load_encoder
