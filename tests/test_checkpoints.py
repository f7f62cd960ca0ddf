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

pytestmark = pytest.mark.smoke  # also run in the nerfstudio user's environment (CI's second run)

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
        renamed = {
            rename_official_key(k): torch.empty(v, device="meta") for k, v in shapes.items() if rename_official_key(k)
        }
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
    """An official-layout Lightning checkpoint holding ``encoder``'s weights (plus a random layer4).

    The floating-point tensors, ``encoder``'s set to them first, are views of one random vector, each starting one
    element after the last (no two alike, so a swapped key still shows): torch.save writes a storage once, so the
    file and its conversion take megabytes where the paper encoder's own tensors would take half a gigabyte each."""
    ours = encoder.state_dict()
    shapes = official_keys["keys"]
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


@pytest.mark.e2e
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
    result = subprocess.run(
        [str(BIN / "pixelsplat-convert-checkpoint"), str(path), str(converted)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "converted 514 tensors" in result.stdout
    again = load_encoder(converted)
    for key, value in encoder.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key
    refused = subprocess.run(
        [str(BIN / "pixelsplat-convert-checkpoint"), str(path), str(converted)], capture_output=True, text=True
    )
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


def test_files_holding_the_former_compute_fields_load_with_the_default_options(tmp_path):
    """exact_rewrites and linear_as_convolution were EncoderConfig fields, saved in every converted checkpoint
    and pretraining run config: such files still load, their values ignored (ComputeOptions' defaults apply)."""
    from dataclasses import asdict

    import yaml

    from pixelsplat_ns.checkpoints import read_encoder
    from pixelsplat_ns.checkpoints.converted import FORMAT, VERSION
    from pixelsplat_ns.encoder import ComputeOptions
    from pixelsplat_ns.fast_routes.layers import Linear

    encoder = PixelSplatEncoder(tiny())
    old_config = {**asdict(tiny()), "exact_rewrites": False, "linear_as_convolution": False}
    torch.save(
        {"format": FORMAT, "version": VERSION, "config": old_config, "state_dict": encoder.state_dict()},
        tmp_path / "old.pt",
    )
    loaded = load_encoder(tmp_path / "old.pt")
    assert loaded.config == tiny() and loaded.compute_options == ComputeOptions()
    assert all(m.via_convolution for m in loaded.modules() if isinstance(m, Linear))

    # A pixelsplat-pretrain run's config.yml, read as plain data.
    run = tmp_path / "run"
    (run / "nerfstudio_models").mkdir(parents=True)
    tagged = {"pipeline": {"model": {"encoder": old_config}, "datamanager": {"dataset": {"image_shape": [32, 32]}}}}
    (run / "config.yml").write_text(yaml.dump(tagged))
    torch.save(
        {"step": 0, "pipeline": {"_model.encoder." + k: v for k, v in encoder.state_dict().items()}},
        run / "nerfstudio_models" / "step-000000000.ckpt",
    )
    config, state_dict, image_shape = read_encoder(run / "config.yml")
    assert config == tiny() and image_shape == (32, 32) and state_dict.keys() == encoder.state_dict().keys()


def _older_run_config(config, encoder_fields: dict):
    """``config`` as nerfstudio wrote it into a run's config.yml before ComputeOptions: no encoder_compute, and
    ``encoder_fields`` added to its encoder's mapping (where it has one)."""
    import yaml
    from yaml.nodes import ScalarNode

    node = yaml.compose(yaml.dump(config))
    assert any(key.value == "encoder_compute" for key, _ in node.value)
    node.value = [(key, value) for key, value in node.value if key.value != "encoder_compute"]
    for key, value in node.value:
        if key.value == "encoder":
            value.value += [
                (ScalarNode("tag:yaml.org,2002:str", name), ScalarNode("tag:yaml.org,2002:bool", str(flag).lower()))
                for name, flag in encoder_fields.items()
            ]
    return yaml.serialize(node)


@pytest.mark.parametrize("method", ["pretraining", "per_scene"])
def test_run_configs_written_before_the_compute_options_load_with_the_defaults(method):
    """nerfstudio loads a run's config.yml (ns-eval, ns-viewer, a resumed run) with yaml.Loader, constructing the
    classes it names with whatever fields the file has."""
    import yaml

    from pixelsplat_ns.encoder import ComputeOptions
    from pixelsplat_ns.per_scene.config import PixelSplatModelConfig
    from pixelsplat_ns.pretraining.config import PretrainModelConfig

    config = PretrainModelConfig(encoder=tiny()) if method == "pretraining" else PixelSplatModelConfig()
    text = _older_run_config(config, {"exact_rewrites": False, "linear_as_convolution": False})
    assert ("exact_rewrites: false" in text) == (method == "pretraining")
    loaded = yaml.load(text, Loader=yaml.Loader)
    assert type(loaded) is type(config) and loaded.encoder_compute == ComputeOptions()
    if method == "pretraining":
        assert loaded.encoder == tiny() and "exact_rewrites" not in vars(loaded.encoder)
    # Options set for a run are written to its config and read back.
    config.encoder_compute = ComputeOptions(exact_rewrites=False)
    assert yaml.load(yaml.dump(config), Loader=yaml.Loader).encoder_compute == ComputeOptions(exact_rewrites=False)


@pytest.mark.parametrize("method", ["pixelsplat", "pixelsplat-pretrain-tiny"])
def test_the_compute_options_are_flags_of_both_methods(method):
    """--pipeline.model.encoder-compute.* on ns-train's own parser (tyro, flags taking True/False)."""
    import tyro

    from pixelsplat_ns import methods
    from pixelsplat_ns.encoder import ComputeOptions

    default = {"pixelsplat": methods.pixelsplat, "pixelsplat-pretrain-tiny": methods.pixelsplat_pretrain_tiny}[method]
    args = [
        "--pipeline.model.encoder-compute.exact-rewrites",
        "False",
        "--pipeline.model.encoder-compute.linear-as-convolution",
        "False",
    ]
    trainer = tyro.cli(type(default.config), default=default.config, args=args, config=(tyro.conf.FlagConversionOff,))
    assert trainer.pipeline.model.encoder_compute == ComputeOptions(exact_rewrites=False, linear_as_convolution=False)
    assert default.config.pipeline.model.encoder_compute == ComputeOptions()


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
