"""Official checkpoints: every key accounted for, conversion round trips, safe loading, clear refusals."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers.official_checkpoints import (
    ORIGINAL_CODEBASE_EXTRA,
    load_official_keys,
    meta_state_dict,
    official_checkpoint,
)
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

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def official_keys() -> dict:
    return load_official_keys()


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


@pytest.mark.e2e
def test_official_lightning_checkpoint_loads_without_running_its_code(tmp_path, official_keys):
    torch.manual_seed(0)
    encoder = PixelSplatEncoder(paper()).eval()
    path = tmp_path / "re10k.ckpt"
    torch.save(official_checkpoint(official_keys["keys"], encoder), path)
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
    assert "converted 514 tensors" in result.stdout and "architecture camera-ready (32b1b66)" in result.stdout
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
    read = read_encoder(run / "config.yml")
    assert read.config == tiny() and read.image_shape == (32, 32)
    assert read.state_dict.keys() == encoder.state_dict().keys()


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
    assert "1 missing (pixelsplat-ns names): to_gaussians.1.bias" in message
    assert "unexpected: encoder.surprise.weight" in message, "unexpected weights by the file's own names"
    assert "wrong shapes (the file's != the encoder's): encoder.high_resolution_skip.0.bias [7] != [128]" in message
    assert "512 of the 514 weights it needs are in the file with their shapes" in message


def test_files_that_are_not_encoder_checkpoints_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        read_checkpoint(tmp_path / "missing.ckpt")
    (tmp_path / "notes.ckpt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        read_checkpoint(tmp_path / "notes.ckpt")
    torch.save({"state_dict": {"model.weight": torch.zeros(1)}}, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="none of the encoder files: not an official pixelSplat checkpoint"):
        load_encoder(tmp_path / "other.ckpt")


def test_load_encoder_is_part_of_the_public_api():
    from pixelsplat_ns import load_encoder as public

    assert public is load_encoder


def test_original_codebase_checkpoints_are_recognized_by_their_keys(official_keys):
    shapes = official_keys["keys"] | ORIGINAL_CODEBASE_EXTRA
    config = config_from_official(meta_state_dict(shapes))
    assert (config.architecture, config.num_context_views, config.epipolar.d_mlp) == ("original_codebase", 2, 256)
    renamed = {
        rename_official_key(k): torch.empty(v, device="meta") for k, v in shapes.items() if rename_official_key(k)
    }
    check_state_dict(config, renamed)  # every official weight has its place, with its shape
    assert len(renamed) == 514 + 8
    with pytest.raises(CheckpointError, match="unexpected: epipolar_transformer.layers.0.convs.0.bias"):
        check_state_dict(config_from_official(meta_state_dict(official_keys["keys"])), renamed)
    # Its ablations: no depth encoding and no probabilistic sampling keep the convolutions.
    no_depth = {k: v for k, v in shapes.items() if not k.startswith("epipolar_transformer.depth_encoding.")}
    assert config_from_official(meta_state_dict(no_depth)).architecture == "original_codebase"
    # No official network has both the convolutions and view embeddings.
    with_views = shapes | {"epipolar_transformer.view_embeddings.weight": [3, 128]}
    with pytest.raises(CheckpointError, match="no official pixelSplat network has both"):
        config_from_official(meta_state_dict(with_views))


def test_a_near_miss_is_refused_naming_the_nearest_kind(official_keys):
    weights = {"encoder." + k: torch.empty(v, device="meta") for k, v in official_keys["keys"].items()}
    weights["encoder.epipolar_transformer.transformer.layers.0.1.fn.layers.0.weight"] = torch.empty(
        256, 128, 7, 7, device="meta"
    )  # one layer's first convolution only: a damaged original-codebase file
    with pytest.raises(CheckpointError) as error:
        convert_official({"state_dict": weights})
    message = str(error.value)
    assert "nearest kind: an official pixelSplat checkpoint (original codebase architecture" in message
    assert "missing (pixelsplat-ns names): epipolar_transformer.layers.0.convs.0.bias" in message
    # A damaged original-codebase file (one convolution weight lost) is still seen as one.
    damaged = {"encoder." + k: torch.empty(v, device="meta") for k, v in official_keys["keys"].items()} | {
        "encoder." + k: torch.empty(v, device="meta")
        for k, v in ORIGINAL_CODEBASE_EXTRA.items()
        if k != "epipolar_transformer.transformer.layers.0.1.fn.layers.0.weight"
    }
    with pytest.raises(CheckpointError, match=r"\(original codebase architecture.*521 of the 522 weights.*1 missing"):
        convert_official({"state_dict": damaged})


def test_the_official_encoders_own_state_dict_converts_too(official_keys):
    """Weights saved from the official code's encoder itself (no Lightning, no "encoder." prefix)."""
    shapes = official_keys["keys"] | ORIGINAL_CODEBASE_EXTRA
    config, weights = convert_official(meta_state_dict(shapes))
    assert config.architecture == "original_codebase" and len(weights) == 522
    config, _ = convert_official({"state_dict": meta_state_dict(official_keys["keys"]), "epoch": 1})
    assert config.architecture == "camera_ready"
