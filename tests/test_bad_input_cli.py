"""Bad input, through the real CLI, never ends in a silent wrong scene: each kind of fault is refused with what
is wrong and how to fix it (no traceback), or handled so that the result is right."""

import json
import re
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.cli import SAMPLE, evaluate, gaussians, ns, scene_copy, train, train_command
from pixelsplat_ns.checkpoints import save_converted
from pixelsplat_ns.core.errors import InputError
from pixelsplat_ns.data.synthetic import SyntheticConfig, write_synthetic_dataset
from pixelsplat_ns.encoder import tiny

pytestmark = pytest.mark.e2e
ALL = list(range(21))


def refused(tmp_path, command: str, *args) -> str:
    """Run an ns-* command that must fail on its input: its output, checked for a clean refusal."""
    result = ns(command, *args, cwd=tmp_path, check=False)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert not list(tmp_path.rglob("*.ckpt"))
    return output


def refused_in_process(monkeypatch, command: str, *args) -> str:
    """As ``refused``, for an ``ns-train`` refusal: its entry point called in this process, the command line's
    whole path but the interpreter's start-up (``refused`` checks the one-line report of the real process)."""
    from nerfstudio.scripts.train import entrypoint

    assert command == "ns-train"
    monkeypatch.setattr(sys, "argv", [command, *map(str, args)])
    with pytest.raises(InputError) as error:
        entrypoint()
    return " ".join(str(error.value).split())


def _normalized_intrinsics(transforms, _):
    for frame in transforms["frames"]:
        frame.update(
            fl_x=frame["fl_x"] / frame["w"],
            cx=frame["cx"] / frame["w"],
            fl_y=frame["fl_y"] / frame["h"],
            cy=frame["cy"] / frame["h"],
        )


def _resized_on_disk(transforms, data):
    path = data / transforms["frames"][1]["file_path"]
    Image.open(path).resize((200, 120)).save(path)


def _scaled_rotation(transforms, _):
    matrix = np.array(transforms["frames"][1]["transform_matrix"])
    matrix[:3, :3] *= 1.5
    transforms["frames"][1]["transform_matrix"] = matrix.tolist()


@pytest.mark.parametrize(
    "edit, message",
    [
        (_normalized_intrinsics, r"CameraError: frame frame_00000.jpg: fl_x=0\.\d+.*look normalized"),
        (
            _resized_on_disk,
            r"ImageError: 1 image\(s\) do not have the size their camera says, e.g. frame_00010.jpg is "
            r"200x120, its camera 256x144",
        ),
        (_scaled_rotation, r"CameraError: frame frame_00010.jpg: the camera's 3x3 rotation is not a rotation"),
    ],
)
def test_implausible_cameras_and_mismatched_images_are_refused(tmp_path, edit, message):
    data = scene_copy(tmp_path, [0, 10, 20], edit)
    output = refused(tmp_path, *train_command(data, tmp_path / "outputs"))
    assert re.search(message, output), output[-3000:]


def test_exif_rotated_photos_are_used_as_displayed(tmp_path):
    """JPEGs stored turned, with EXIF orientation 6 to display them upright, as phones write them: their
    cameras describe the upright picture, and the scene is as good as from upright files."""

    def turn(transforms, data):
        exif = Image.Exif()
        exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
        for frame in transforms["frames"]:
            path = data / frame["file_path"]
            upright = Image.open(path)
            upright.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif, quality=95)

    # At the encoder's full size: at 64 pixels JPEG re-encoding alone shifts the score by about the tolerance.
    upright = evaluate(train(scene_copy(tmp_path / "a", ALL), tmp_path / "a" / "outputs", full_size=True))
    turned = evaluate(train(scene_copy(tmp_path / "b", ALL, turn), tmp_path / "b" / "outputs", full_size=True))
    assert abs(turned["psnr"] - upright["psnr"]) < 0.3, (turned, upright)  # JPEG re-encoding only


def test_16_bit_grey_images_are_read_as_the_picture(tmp_path):
    """16-bit grey PNGs with detail in the low byte score like their 8-bit versions (nerfstudio's reader
    keeps the low byte: noise, PSNR about 10)."""

    def grey(bits):
        def edit(transforms, data):
            for frame in transforms["frames"]:
                path = data / frame["file_path"]
                values = np.asarray(Image.open(path).convert("L")).astype(np.uint16)
                image = Image.fromarray(values * 256 + 137) if bits == 16 else Image.fromarray(values.astype(np.uint8))
                path.unlink()
                frame["file_path"] = frame["file_path"].replace(".jpg", ".png")
                image.save(data / frame["file_path"])

        return edit

    eight = evaluate(train(scene_copy(tmp_path / "a", ALL, grey(8)), tmp_path / "a" / "outputs"))
    sixteen = evaluate(train(scene_copy(tmp_path / "b", ALL, grey(16)), tmp_path / "b" / "outputs"))
    assert eight["psnr"] > 20 and abs(sixteen["psnr"] - eight["psnr"]) < 0.1, (sixteen, eight)


def test_the_scene_is_the_same_at_any_scale(tmp_path):
    """Translations x 1e-3 and 1e3, kept as they are (--auto-scale-poses False): the same Gaussians in their
    own units, and the same renders (an absolute near plane made x 1e-3 black)."""

    def scaled(factor):
        def edit(transforms, _):
            for frame in transforms["frames"]:
                matrix = np.array(frame["transform_matrix"])
                matrix[:3, 3] *= factor
                frame["transform_matrix"] = matrix.tolist()

        return edit

    results = {}
    for factor in (1e-3, 1e3):  # six orders of magnitude apart: each is the other's check
        root = tmp_path / f"x{factor:g}"
        config = train(
            scene_copy(root, ALL, scaled(factor)), root / "outputs", 0, "nerfstudio-data", "--auto-scale-poses", "False"
        )
        results[factor] = (evaluate(config), gaussians(config))
    reference_metrics, reference = results[1e-3]
    reference_means = reference["means"] / 1e-3
    assert reference_metrics["psnr"] > 20
    for factor, (metrics, params) in results.items():
        assert abs(metrics["psnr"] - reference_metrics["psnr"]) < 1e-2, (factor, metrics, reference_metrics)
        # The same Gaussians in their own units, but for a few depth-bin draws that float rounding tips over.
        same = torch.isclose(params["means"] / factor, reference_means, rtol=1e-3, atol=1e-4).all(dim=-1)
        assert params["means"].shape == reference["means"].shape and float(same.float().mean()) > 0.999


def test_wrong_kinds_of_data_point_to_the_right_tool(tmp_path, monkeypatch):
    chunks = tmp_path / "chunks"
    write_synthetic_dataset(
        chunks, num_scenes=2, seed=0, config=SyntheticConfig(height=32, width=48), test_fraction=0.5
    )
    output = refused(tmp_path, *train_command(chunks, tmp_path / "outputs"))
    assert "RealEstate10k-format dataset" in output and "pixelsplat-process-data re10k" in output
    output = refused_in_process(
        monkeypatch, "ns-train", "pixelsplat-pretrain-tiny", "--data", SAMPLE, "--output-dir", tmp_path / "outputs"
    )
    assert "is a nerfstudio dataset" in output and "pixelsplat-to-chunks" in output
    output = refused_in_process(monkeypatch, *train_command(tmp_path / "missing", tmp_path / "nothing"))
    assert "--data " in output and "missing does not exist: give a nerfstudio scene folder" in output
    assert not (tmp_path / "nothing").exists(), "a run that cannot start leaves no run folder behind"
    output = refused_in_process(
        monkeypatch,
        "ns-train",
        "pixelsplat-pretrain-tiny",
        "--data",
        tmp_path / "missing",
        "--output-dir",
        tmp_path / "none",
    )
    assert "missing does not exist: give a dataset folder of .torch chunks" in output
    assert not (tmp_path / "none").exists()
    photos = tmp_path / "photos"  # photos not yet made into a scene (no transforms.json), and a scene's images/
    photos.mkdir()
    for name in ("frame_00000.jpg", "frame_00005.jpg"):
        (photos / name).write_bytes((SAMPLE / "images" / name).read_bytes())
    for folder in (photos, SAMPLE / "images"):
        output = refused_in_process(monkeypatch, *train_command(folder, tmp_path / "outputs"))
        assert f"--data {folder} is not a scene that nerfstudio's NerfstudioDataParser reads" in output, output
        assert "transforms.json" in output and "pixelsplat-process-data pair --data PHOTOS" in output


def test_a_batch_too_large_for_memory_is_refused_before_the_first_step(tmp_path):
    data = tmp_path / "data"
    write_synthetic_dataset(data, num_scenes=2, seed=0, config=SyntheticConfig(height=48, width=80), test_fraction=0.0)
    output = refused(
        tmp_path,
        "ns-train",
        "pixelsplat-pretrain-tiny",
        "--data",
        data,
        "--output-dir",
        tmp_path / "outputs",
        "--pipeline.datamanager.batch-size",
        "1000000",
        "--pipeline.datamanager.num-workers",
        "0",
    )
    assert re.search(
        r"OutOfMemory: a training step at batch 1000000 needs about [\d.]+ GB .* per scene, measured on "
        r"this machine.* GB are available: use --pipeline.datamanager.batch-size \d+, or the CPU preset",
        output,
    ), output[-3000:]


def test_a_three_view_encoder_says_what_the_automatic_choice_gave(tmp_path):
    config = tiny()
    config.num_context_views = 3
    from pixelsplat_ns.encoder import PixelSplatEncoder

    save_converted(tmp_path / "three.pt", config, PixelSplatEncoder(config).state_dict(), (64, 64))
    command = train_command(SAMPLE, tmp_path / "outputs", "--pipeline.model.encoder-checkpoint", tmp_path / "three.pt")
    output = refused(tmp_path, *command)
    assert "takes 3 context views; 2 were chosen automatically" in output
    assert "--pipeline.datamanager.context-views 0 1 2" in output


def test_resuming_skips_a_damaged_checkpoint(tmp_path):
    first = train(SAMPLE, tmp_path / "outputs", 2)
    models = first.parent / "nerfstudio_models"
    saved = sorted(models.glob("step-*.ckpt"))
    (models / "step-000000099.ckpt").write_bytes(saved[-1].read_bytes()[:1000])  # as a kill mid-save would leave
    resumed = train(SAMPLE, tmp_path / "resumed", 2, "--load-dir", models)
    log = json.dumps(sorted(p.name for p in (resumed.parent / "nerfstudio_models").glob("*.ckpt")))
    assert (resumed.parent / "nerfstudio_models" / "step-000000003.ckpt").exists(), log


def test_an_image_cache_on_the_cpu_needs_no_nvidia_driver(tmp_path):
    """nerfstudio pins its CPU image cache (--pipeline.datamanager.cache-images cpu, and by itself for over 500
    training images), which fails without an NVIDIA driver; on a CPU run the cache is kept unpinned."""
    run = train(SAMPLE, tmp_path / "outputs", 0, "--pipeline.datamanager.cache-images", "cpu")
    assert len(gaussians(run)["means"]) > 0


@pytest.mark.parametrize("orientation", [[], ["--orientation-method", "none"]])
def test_a_nan_pose_in_an_eval_frame_is_named(tmp_path, orientation):
    """nerfstudio-data holds out frames 9 and 19 of 21 for evaluation; a NaN in frame 9's pose became every
    training camera's through the auto-orientation (or, without it, failed in ns-eval naming no frame)."""

    def nan_pose(transforms, _):
        transforms["frames"][9]["transform_matrix"][0][3] = float("nan")

    data = scene_copy(tmp_path, list(range(21)), nan_pose)
    output = refused(tmp_path, *train_command(data, tmp_path / "outputs", "nerfstudio-data", *orientation))
    assert "1 frame(s) have NaN or infinite values in their pose (transform_matrix): frame_00009.jpg" in output
