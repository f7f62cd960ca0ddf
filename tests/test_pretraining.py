"""ns-train pixelsplat-pretrain and ns-eval through the real CLI, on a generated dataset, on the CPU."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from helpers.cli import evaluate, ns
from helpers.pretraining import SMALL, pretrain
from pixelsplat_ns import load_encoder
from pixelsplat_ns.checkpoints import CheckpointError, read_encoder, save_converted
from pixelsplat_ns.core.errors import InputError
from pixelsplat_ns.data.synthetic import SyntheticConfig, write_synthetic_dataset
from pixelsplat_ns.encoder import PixelSplatEncoder, tiny
from pixelsplat_ns.evaluation import EvaluationConfig
from pixelsplat_ns.evaluation import evaluate as evaluate_index
from pixelsplat_ns.pretraining.config import PretrainModelConfig
from pixelsplat_ns.pretraining.loss import LossConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.e2e
def test_pretrain_then_evaluate(tmp_path):
    data = tmp_path / "data"
    write_synthetic_dataset(data, num_scenes=4, seed=1, config=SyntheticConfig(height=48, width=80), test_fraction=0.5)
    pretrain(data, tmp_path / "out", "--max-num-iterations", "3", "--steps-per-save", "2")
    config = next((tmp_path / "out").rglob("config.yml"))
    assert list(config.parent.rglob("*.ckpt")), "the trainer saves checkpoints"
    results = evaluate(config)
    index = json.loads((data / "evaluation_index.json").read_text())
    assert results["scenes"] == sum(entry is not None for entry in index.values())
    assert 0 < results["psnr"] < 60 and -1 <= results["ssim"] <= 1

    exported = tmp_path / "encoder.pt"
    ns("pixelsplat-export-encoder", "--load-config", config, "--output-path", exported, cwd=tmp_path)
    encoder = load_encoder(exported)
    last = sorted(config.parent.rglob("step-*.ckpt"))[-1]
    pipeline = torch.load(last, map_location="cpu", weights_only=False)["pipeline"]
    for key, value in encoder.state_dict().items():
        assert torch.equal(pipeline["_model.encoder." + key], value), key
    exported_file = read_encoder(exported)
    assert exported_file.image_shape == (32, 32), "the export records the training image size"
    assert exported_file.kind == "converted" and exported_file.step == int(last.stem.split("-")[1])
    assert exported_file.data == str(data), "the export records the run's training data"
    info = ns("pixelsplat-checkpoint-info", config.parent, cwd=tmp_path).stdout  # the run's folder will do
    assert "ns-train pixelsplat-pretrain run" in info and f"training data  {data}" in info
    assert f"weights        {last}" in info and f"training step  {int(last.stem.split('-')[1])}" in info

    # ns-eval scores the checkpoint's encoder exactly as pixelsplat-evaluate's protocol does.
    library = evaluate_index(
        encoder, data, data / "evaluation_index.json", EvaluationConfig(image_shape=(32, 32), crop_intrinsics="exact")
    )["mean"]
    assert abs(library["psnr"] - results["psnr"]) < 1e-4 and abs(library["ssim"] - results["ssim"]) < 1e-4

    # The per-scene method takes the run itself too: its config.yml or one of its checkpoints.
    for source in (config, last):
        run_file = read_encoder(source)
        assert run_file.image_shape == (32, 32) and run_file.config == encoder.config
        assert run_file.kind == "pretraining_run" and run_file.data == str(data)
        assert all(torch.equal(run_file.state_dict[k], v) for k, v in encoder.state_dict().items())


@pytest.mark.e2e
def test_ablation_script_runs_end_to_end(tmp_path):
    """Two steps per variant, whatever the machine's load (a time budget of seconds trained nothing on a busy
    machine); the budget's own stop is tested by test_a_run_stopped_by_its_time_budget_saves_the_step_it_trained."""
    data = tmp_path / "data"
    write_synthetic_dataset(data, num_scenes=4, seed=5, config=SyntheticConfig(height=48, width=80), test_fraction=0.5)
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts/benchmarks/ablation_synthetic.py"),
            "--data",
            str(data),
            "--budget-minutes",
            "30",
            "--train-args",
            "--max-num-iterations 2",
            "--output-dir",
            str(tmp_path / "ablation"),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads((tmp_path / "ablation" / "ablation.json").read_text())
    assert set(rows) == {"pixelSplat (tiny)", "no epipolar transformer", "copy nearest context view"}
    assert all(0 < row["psnr"] < 60 for row in rows.values())
    assert all(row["steps"] >= 1 for name, row in rows.items() if name != "copy nearest context view")
    assert "full - no epipolar" in result.stdout


@pytest.mark.e2e
def test_resumed_training_continues_exactly(tmp_path):
    """4 steps in one run and 2 + 2 steps with a resume in between end with bit-identical weights: same data
    order, same depth-bin draws, same optimizer and scheduler state."""
    data = tmp_path / "data"
    write_synthetic_dataset(data, num_scenes=6, seed=2, config=SyntheticConfig(height=48, width=80), test_fraction=0.2)

    def train(name: str, steps: int, *extra) -> Path:
        pretrain(
            data,
            tmp_path / name,
            "--timestamp",
            "run",
            "--max-num-iterations",
            steps,
            "--pipeline.datamanager.num-workers",
            "2",
            *extra,
        )
        return next((tmp_path / name).rglob("nerfstudio_models"))

    def last(models: Path) -> dict:
        return torch.load(sorted(models.glob("step-*.ckpt"))[-1], map_location="cpu", weights_only=False)

    uninterrupted = last(train("uninterrupted", 4))
    first_half = train("resumed", 2)
    resumed = last(train("resumed", 2, "--load-dir", str(first_half)))
    assert uninterrupted["step"] == resumed["step"] == 3
    for key, value in uninterrupted["pipeline"].items():
        assert torch.equal(value, resumed["pipeline"][key]), key


@pytest.mark.e2e
def test_a_run_stopped_by_its_time_budget_saves_the_step_it_trained(tmp_path):
    """nerfstudio advances its step before it sees the stop flag; the checkpoint must name the step trained
    last, or a resumed run would skip a batch."""
    data = tmp_path / "data"
    write_synthetic_dataset(data, num_scenes=2, seed=3, config=SyntheticConfig(height=48, width=80), test_fraction=0.5)
    pretrain(data, tmp_path / "out", "--max-num-iterations", "50", "--pipeline.time-budget-minutes", "0.00001")
    checkpoints = sorted((tmp_path / "out").rglob("step-*.ckpt"))
    assert [c.name for c in checkpoints] == ["step-000000000.ckpt"]
    assert torch.load(checkpoints[0], map_location="cpu", weights_only=False)["step"] == 0


def _pretrain_model(**model_options):
    from nerfstudio.data.scene_box import SceneBox

    config = PretrainModelConfig(**{"encoder": tiny(), "loss": LossConfig(lpips_weight=0.0), **model_options})
    model = config.setup(scene_box=SceneBox(aabb=torch.tensor([[-1.0] * 3, [1.0] * 3])), num_train_data=1)
    model.initialize_encoder()  # as the pipeline of a training run does
    return model


def test_the_models_encoder_computes_with_the_runs_compute_options():
    from pixelsplat_ns.encoder import ComputeOptions
    from pixelsplat_ns.fast_routes.layers import Linear

    assert _pretrain_model().encoder.compute_options == ComputeOptions()
    options = ComputeOptions(exact_rewrites=False, linear_as_convolution=False)
    encoder = _pretrain_model(encoder_compute=options).encoder
    assert encoder.compute_options == options
    assert not any(m.via_convolution for m in encoder.modules() if isinstance(m, Linear))


def test_encoder_init_is_read_by_training_runs_only(tmp_path):
    """ns-eval, the viewer and resumed runs build the model too: they load their checkpoint, never the init file
    (which may have moved since)."""
    from nerfstudio.data.scene_box import SceneBox

    config = PretrainModelConfig(encoder=tiny(), loss=LossConfig(lpips_weight=0.0), encoder_init=tmp_path / "gone.pt")
    config.setup(scene_box=SceneBox(aabb=torch.tensor([[-1.0] * 3, [1.0] * 3])), num_train_data=1)


def test_encoder_init_starts_from_the_given_weights(tmp_path):
    torch.manual_seed(0)
    source = PixelSplatEncoder(tiny())
    save_converted(tmp_path / "start.pt", tiny(), source.state_dict(), image_shape=(64, 64))
    torch.manual_seed(1)  # a different random initialization, which encoder_init must replace
    model = _pretrain_model(encoder_init=tmp_path / "start.pt")
    for key, value in source.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[key], value), key
    torch.manual_seed(1)
    random = _pretrain_model().encoder.state_dict()
    assert any(not torch.equal(random[key], value) for key, value in source.state_dict().items())


def test_encoder_init_takes_an_encoder_of_another_colour_convention(tmp_path):
    """Converted official checkpoints use the official coefficient 14; the weights still fit."""
    official = replace(tiny(), sh_coefficient_14="official_forward_kernel")
    source = PixelSplatEncoder(official)
    save_converted(tmp_path / "official.pt", official, source.state_dict())
    model = _pretrain_model(encoder_init=tmp_path / "official.pt")
    assert all(torch.equal(model.encoder.state_dict()[k], v) for k, v in source.state_dict().items())


def test_encoder_init_takes_the_original_codebase_architecture_when_the_run_is_built_for_it(tmp_path):
    original = replace(tiny(), architecture="original_codebase")
    source = PixelSplatEncoder(original)
    save_converted(tmp_path / "original.pt", original, source.state_dict())
    with pytest.raises(
        CheckpointError,
        match="original_codebase != camera_ready.*give --pipeline.model.encoder.architecture original_codebase",
    ):
        _pretrain_model(encoder_init=tmp_path / "original.pt")
    model = _pretrain_model(encoder=original, encoder_init=tmp_path / "original.pt")
    assert all(torch.equal(model.encoder.state_dict()[k], v) for k, v in source.state_dict().items())


def test_encoder_init_refuses_another_architecture(tmp_path):
    other = replace(tiny(), d_feature=16)
    save_converted(tmp_path / "other.pt", other, PixelSplatEncoder(other).state_dict())
    with pytest.raises(CheckpointError, match="d_feature: 16 != 32"):
        _pretrain_model(encoder_init=tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="encoder-init .*missing.pt: no checkpoint .*Give an official"):
        _pretrain_model(encoder_init=tmp_path / "missing.pt")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="encoder-init .*notes.txt: .*Give an official"):
        _pretrain_model(encoder_init=tmp_path / "notes.txt")
    with pytest.raises(InputError, match="give one"):
        _pretrain_model(encoder_init=tmp_path / "other.pt", dino_init=True)


@pytest.mark.e2e
def test_three_view_pretraining_takes_both_flags_or_none(tmp_path):
    """The encoder's views and the sampler's must agree: one flag alone is refused before the run's folder is
    written; both train and export a 3-view encoder."""
    data = tmp_path / "data"
    write_synthetic_dataset(data, num_scenes=2, seed=2, config=SyntheticConfig(height=48, width=80), test_fraction=0.5)
    encoder_views = ["--pipeline.model.encoder.num-context-views", "3"]
    refused = ns(
        "ns-train", "pixelsplat-pretrain", "--data", data, "--output-dir", tmp_path / "refused", *SMALL, *encoder_views,
        cwd=tmp_path, check=False,
    )  # fmt: skip
    output = " ".join((refused.stdout + refused.stderr).split())
    assert refused.returncode != 0 and "--pipeline.datamanager.sampler.num-context-views 2 differ" in output, output
    assert "Traceback" not in output and not (tmp_path / "refused").exists()
    sampler_views = ["--pipeline.datamanager.sampler.num-context-views", "3"]
    pretrain(data, tmp_path / "out", "--max-num-iterations", "1", *encoder_views, *sampler_views)
    assert read_encoder(next((tmp_path / "out").rglob("config.yml"))).config.num_context_views == 3
