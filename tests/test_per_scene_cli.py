"""ns-train pixelsplat, then ns-eval, ns-export gaussian-splat and ns-render, through the real CLI on the CPU,
on the bundled sample scene and on broken copies of it."""

import re
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from plyfile import PlyData

from helpers.cli import (
    BIN,
    ENV,
    SAMPLE,
    SMALL_CONTEXT,
    evaluate,
    gaussians,
    last_checkpoint,
    ns,
    scene_copy,
    train,
    train_command,
    train_run,
)
from helpers.file_systems import mounted_tmpfs

pytestmark = pytest.mark.e2e
LOGIT_1_OVER_255 = -5.5373  # ns-export leaves out Gaussians below this opacity: they can never be drawn


SAMPLE_FEED_FORWARD_PSNR = 28.09
"""dB, ns-eval of ns-train pixelsplat on the sample scene at full size (2 eval views)."""


@pytest.fixture(scope="module")
def feed_forward(tmp_path_factory) -> Path:
    return train(SAMPLE, tmp_path_factory.mktemp("feed_forward") / "outputs", full_size=True)


@pytest.mark.smoke
def test_feed_forward_scene_scores_well_on_the_eval_views(feed_forward):
    params = gaussians(feed_forward)
    # Two 256 x 144 views at the bundled encoder's training size (short side 144): 3 Gaussians per pixel.
    assert params["means"].shape == (2 * 144 * 256 * 3, 3) and params["features_rest"].shape[1:] == (15, 3)
    results = evaluate(feed_forward)
    # The bundled encoder's score on the sample scene (the demo's, docs/benchmarks.md), in every environment CI
    # runs this in: the nerfstudio user's (torch 2.1.2, the dependencies' floors) gives the main one's figure.
    assert results["psnr"] == pytest.approx(SAMPLE_FEED_FORWARD_PSNR, abs=0.01), results
    assert set(results) >= {"psnr", "ssim"}


def test_ns_eval_refuses_an_output_path_it_cannot_write_before_evaluating(feed_forward, tmp_path):
    with mounted_tmpfs(tmp_path / "read_only", size_kb=64, read_only=True) as read_only:
        output = read_only / "eval.json"
        result = ns("ns-eval", "--load-config", feed_forward, "--output-path", output, cwd=tmp_path, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    message = result.stderr.replace("\n", " ")
    assert re.search(r"CannotWrite: cannot write \S*eval\.json: .*read-only", message), result.stderr


def test_refinement_updates_the_predicted_gaussians(feed_forward, tmp_path):
    refined = train(SAMPLE, tmp_path / "outputs", 3, full_size=True)  # compared with the full-size prediction
    before, after = gaussians(feed_forward), gaussians(refined)
    assert (refined.parent / "nerfstudio_models" / "step-000000002.ckpt").exists()
    assert before["means"].shape == after["means"].shape, "refinement neither densifies nor culls"
    assert torch.allclose(before["means"], after["means"], atol=1e-2) and not torch.equal(
        before["means"], after["means"]
    )


def test_ctrl_c_saves_the_refinement_and_the_printed_command_goes_on(tmp_path):
    """Ctrl-C in the middle of a refinement (300 steps planned, none saved yet: --steps-per-save is 500): the step
    in progress finishes, the run is saved, and the printed flags resume it, optimizing the Gaussians further."""
    command = [
        BIN / "ns-train",
        *train_command(SAMPLE, tmp_path / "outputs", "--timestamp", "run", "--max-num-iterations", 300)[1:],
        *SMALL_CONTEXT,
        "--logging.steps-per-log",
        "1",
    ]
    env = dict(ENV, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [str(a) for a in command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env=env
    )
    assert process.stdout is not None
    seen = ""
    for line in process.stdout:  # nerfstudio's table logs each step as "<step> (<percent>%)"
        seen += line
        if any(int(step) >= 2 for step in re.findall(r"(\d+) \(\d+\.\d+%\)", line)):
            process.send_signal(signal.SIGINT)
            break
    seen += process.communicate(timeout=120)[0]
    assert process.returncode == 130, seen[-3000:]
    compact = re.sub(r"\s+", "", seen)
    assert "SIGINT:stoppingoncestep" in compact and "Traceback" not in seen, seen[-3000:]
    stopped = re.search(
        r"stopped\(SIGINT\)afterstep(\d+);saved.*--max-num-iterations(\d+)and--load-dir(\S+?nerfstudio_models)", compact
    )
    assert stopped, seen[-3000:]
    step, remaining, models = int(stopped[1]), int(stopped[2]), Path(stopped[3])
    assert step >= 2 and step + remaining == 299, "the printed flags go on to the planned last step"
    assert [p.name for p in models.iterdir()] == [f"step-{step:09d}.ckpt"]

    resumed = train(SAMPLE, tmp_path / "resumed", 2, "--load-dir", models)
    assert (resumed.parent / "nerfstudio_models" / f"step-{step + 2:09d}.ckpt").exists()
    interrupted = next((tmp_path / "outputs").rglob("config.yml"))
    assert not torch.equal(gaussians(interrupted)["means"], gaussians(resumed)["means"]), "the resumed steps moved them"


def test_ctrl_c_during_the_prediction_ends_the_run_in_one_line_leaving_no_run_folder(tmp_path):
    """Ctrl-C while the scene is read and predicted (before training): one line, the signal's exit status, and
    no run folder holding a config.yml and nothing to resume (a traceback, status 0 and the folder before)."""
    command = [BIN / "ns-train", *train_command(SAMPLE, tmp_path / "outputs", "--timestamp", "run")[1:]]
    process = subprocess.Popen(
        [str(a) for a in command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env=dict(ENV, PYTHONUNBUFFERED="1"),
    )
    assert process.stdout is not None
    seen = ""
    for line in process.stdout:  # logged in the set-up, as the encoder is read: the prediction follows
        seen += line
        if "encoder: " in line:
            process.send_signal(signal.SIGINT)
            break
    seen += process.communicate(timeout=120)[0]
    assert process.returncode == 130, seen[-3000:]
    assert "SIGINT before training started: stopped, with nothing to save" in seen and "Traceback" not in seen
    assert not list((tmp_path / "outputs").rglob("config.yml"))


def test_encoder_refinement_predicts_the_kept_gaussians_anew(feed_forward, tmp_path):
    refined = train(SAMPLE, tmp_path / "outputs", 2, "--pipeline.model.refine-encoder", "True", full_size=True)
    state = last_checkpoint(refined)
    encoder_keys = [k for k in state["pipeline"] if ".scene_encoder.encoder." in k]
    assert encoder_keys and "encoder" in state["optimizers"], "the encoder is what was optimized"
    before, after = gaussians(feed_forward), gaussians(refined)
    assert before["means"].shape == after["means"].shape and not torch.equal(before["means"], after["means"])
    assert evaluate(refined)["psnr"] > 22.0, "the tools load the Gaussians and leave the encoder out"


def test_export_writes_the_model_gaussians_as_standard_3dgs_ply(feed_forward, tmp_path):
    ns("ns-export", "gaussian-splat", "--load-config", feed_forward, "--output-dir", tmp_path, cwd=tmp_path)
    ply = PlyData.read(str(tmp_path / "splat.ply"))["vertex"]
    params = gaussians(feed_forward)
    keep = params["opacities"][:, 0] >= LOGIT_1_OVER_255

    def column(*names):
        return torch.from_numpy(np.stack([np.asarray(ply[name]) for name in names], axis=-1))

    assert len(ply["x"]) == int(keep.sum())
    assert torch.allclose(column("x", "y", "z"), params["means"][keep])
    assert torch.allclose(column("f_dc_0", "f_dc_1", "f_dc_2"), params["features_dc"][keep])
    # 3DGS layout: f_rest_* is channel-major (all of red's 15 coefficients, then green's, then blue's).
    rest = column(*[f"f_rest_{i}" for i in range(45)]).reshape(-1, 3, 15).transpose(1, 2)
    assert torch.allclose(rest, params["features_rest"][keep])
    assert torch.allclose(column("opacity")[:, 0], params["opacities"][keep, 0])
    assert torch.allclose(column("scale_0", "scale_1", "scale_2"), params["scales"][keep])
    assert torch.allclose(column("rot_0", "rot_1", "rot_2", "rot_3"), params["quats"][keep])


def test_render_draws_the_eval_views(feed_forward, tmp_path):
    ns(
        "ns-render",
        "dataset",
        "--load-config",
        feed_forward,
        "--output-path",
        tmp_path,
        "--split",
        "test",
        "--rendered-output-names",
        "rgb",
        cwd=tmp_path,
    )
    rendered = sorted(tmp_path.rglob("*.jpg")) + sorted(tmp_path.rglob("*.png"))
    assert rendered, "ns-render wrote no images"
    image = np.asarray(Image.open(rendered[0]).convert("RGB"), dtype=np.float32) / 255
    assert image.shape == (144, 256, 3) and image.std() > 0.05, "a drawn scene, not a blank image"


def test_exactly_two_images_train_and_evaluate_on_what_exists(tmp_path):
    config = train(scene_copy(tmp_path, [0, 20]), tmp_path / "outputs")
    results = evaluate(config)
    assert results["psnr"] > 25.0, results  # the context views themselves


def _same_pose(transforms, _):
    transforms["frames"][1]["transform_matrix"] = transforms["frames"][0]["transform_matrix"]


def _other_size(transforms, data):
    frame = transforms["frames"][1]
    Image.open(data / frame["file_path"]).resize((200, 120)).save(data / frame["file_path"])
    frame.update(
        w=200,
        h=120,
        fl_x=frame["fl_x"] * 200 / 256,
        fl_y=frame["fl_y"] * 120 / 144,
        cx=frame["cx"] * 200 / 256,
        cy=frame["cy"] * 120 / 144,
    )


def _fisheye(transforms, _):
    transforms["camera_model"] = "OPENCV_FISHEYE"


def _nan_pose(transforms, _):
    transforms["frames"][1]["transform_matrix"][0][3] = float("nan")


CHOOSE_0_1 = ("--pipeline.datamanager.context-views", "0", "1")


@pytest.mark.parametrize(
    "frames, edit, args, message",
    [
        ([0], None, (), "at least two training images, found 1"),
        ([0, 20], _same_pose, (), "all 2 training views are taken from the same position"),
        ([0, 5, 20], _same_pose, CHOOSE_0_1, "context views frame_00000.jpg, frame_00005.jpg are taken from the same"),
        ([0, 20], _other_size, (), "different sizes"),
        ([0, 20], _fisheye, (), "pinhole .*FISHEYE"),
        ([0, 20], _nan_pose, (), "NaN or infinite values .*frame_00020.jpg"),
        (
            [0, 20],
            None,
            ("--pipeline.datamanager.context-views", "0", "7"),
            "give two .* indices of training images, 0 to 1",
        ),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(tmp_path, frames, edit, args, message):
    data = scene_copy(tmp_path, frames, edit)
    command = train_command(data, tmp_path / "outputs", *args, "nerfstudio-data", "--eval-mode", "all")
    result = ns(*command, cwd=tmp_path, check=False)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert "ContextError" in output and re.search(message, output), output[-3000:]
    assert not list(tmp_path.rglob("*.ckpt"))


def test_an_encoder_of_the_original_codebase_architecture_predicts_the_scene(tmp_path):
    """--pipeline.model.encoder-checkpoint takes both official architectures and says which it found."""
    from dataclasses import replace

    from pixelsplat_ns.checkpoints import save_converted
    from pixelsplat_ns.encoder import PixelSplatEncoder, tiny

    config = replace(tiny(), architecture="original_codebase", epipolar=replace(tiny().epipolar, d_mlp=16))
    torch.manual_seed(0)
    save_converted(tmp_path / "original.pt", config, PixelSplatEncoder(config).state_dict(), image_shape=(144, 256))
    run, result = train_run(
        SAMPLE, tmp_path / "outputs", 0, "--pipeline.model.encoder-checkpoint", tmp_path / "original.pt"
    )
    output = " ".join(result.stdout.split())
    assert "pixelsplat-ns encoder file, architecture original codebase (787a889), 2 context views" in output, output[
        -3000:
    ]
    assert gaussians(run)["means"].shape[0] > 0


def test_missing_encoder_checkpoint_is_named(tmp_path):
    command = train_command(SAMPLE, tmp_path / "outputs", "--pipeline.model.encoder-checkpoint", tmp_path / "nope.ckpt")
    result = ns(*command, cwd=tmp_path, check=False)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0 and "encoder-checkpoint" in output and "nope.ckpt does not exist" in output, output
    assert not (tmp_path / "outputs").exists(), "refused before nerfstudio writes the run's folder"


def test_a_per_scene_run_is_not_taken_for_an_encoder(feed_forward, tmp_path):
    result = ns("pixelsplat-checkpoint-info", feed_forward, cwd=tmp_path, check=False)
    assert result.returncode == 1 and "is a run of ns-train pixelsplat: one scene's Gaussians, not an encoder" in (
        " ".join(result.stderr.split())
    )
