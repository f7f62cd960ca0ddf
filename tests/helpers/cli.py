"""Running the real ``ns-*`` commands on the bundled sample scene, and reading back what they wrote."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from pixelsplat_ns.nerfstudio_compat.checkpoints import nerfstudio_checkpoint_globals

BIN = Path(sys.executable).parent
SAMPLE = Path(__file__).resolve().parents[2] / "pixelsplat_ns" / "sample_scene"
ENV = dict(os.environ, PYTHONWARNINGS="ignore")
# The bundled encoder at a 64-pixel short side (43,008 Gaussians on the sample scene, a fifth of the full size's):
# tests of the tools around the prediction run at this size; the full size has its own test.
SMALL_CONTEXT = ("--pipeline.model.context-short-side", "64")


def ns(command: str, *args, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run the console command ``command`` of this environment; with ``check``, fail showing its output's end."""
    result = subprocess.run(
        [str(BIN / command), *map(str, args)], capture_output=True, text=True, cwd=cwd, env=ENV, timeout=600
    )
    if check:
        assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result


def train_command(data: Path, out: Path, *args) -> list:
    """The command line of ``ns-train pixelsplat`` on ``data`` into ``out``, logging to tensorboard (no viewer);
    ``args`` follow (flags, then a dataparser subcommand if any). For ``ns(*train_command(...), cwd=...)``."""
    return ["ns-train", "pixelsplat", "--data", data, "--output-dir", out, "--vis", "tensorboard", *args]


def train_run(
    data: Path, out: Path, iterations: int = 0, *extra, full_size: bool = False
) -> tuple[Path, subprocess.CompletedProcess]:
    """``train``, giving back the finished ns-train process too (its stdout holds what the run logged)."""
    result = ns(
        *train_command(
            data,
            out,
            "--timestamp",
            "run",
            "--max-num-iterations",
            iterations,
            *(() if full_size else SMALL_CONTEXT),
            *extra,
        ),
        cwd=out.parent,
    )
    return next(out.rglob("config.yml")), result


def train(data: Path, out: Path, iterations: int = 0, *extra, full_size: bool = False) -> Path:
    """``ns-train pixelsplat`` on ``data`` into ``out`` for ``iterations`` steps; returns the run's config.yml."""
    return train_run(data, out, iterations, *extra, full_size=full_size)[0]


def last_checkpoint(config: Path) -> dict:
    """The run's last nerfstudio checkpoint (step, pipeline, optimizers, ...), read as the ns-* commands read it:
    torch's safe loading with the numpy scalars nerfstudio's schedulers leave allowed, for this read only."""
    checkpoint = sorted((config.parent / "nerfstudio_models").glob("step-*.ckpt"))[-1]
    if not hasattr(torch.serialization, "safe_globals"):  # torch < 2.5: the ns-* commands' plain torch.load
        return torch.load(checkpoint, map_location="cpu", weights_only=False)
    with torch.serialization.safe_globals(nerfstudio_checkpoint_globals()):
        return torch.load(checkpoint, map_location="cpu", weights_only=True)


def gaussians(config: Path) -> dict[str, torch.Tensor]:
    """The splat parameters (means, scales, quats, opacities, features_dc, features_rest) of the run's last
    checkpoint, by their short names."""
    state = last_checkpoint(config)["pipeline"]
    return {k.split(".")[-1]: v for k, v in state.items() if ".gauss_params." in k}


def evaluate(config: Path) -> dict:
    """``ns-eval`` on the run: its results (psnr, ssim, ...)."""
    report = config.parent / "eval.json"
    ns("ns-eval", "--load-config", config, "--output-path", report, cwd=config.parent)
    return json.loads(report.read_text())["results"]


def scene_copy(tmp_path: Path, frames: list[int], edit=None) -> Path:
    """A copy of the sample scene with some of its frames; ``edit(transforms, folder)`` breaks it."""
    data = tmp_path / "scene"
    (data / "images").mkdir(parents=True)
    transforms = json.loads((SAMPLE / "transforms.json").read_text())
    transforms["frames"] = [transforms["frames"][i] for i in frames]
    for frame in transforms["frames"]:
        shutil.copy(SAMPLE / frame["file_path"], data / frame["file_path"])
    if edit is not None:
        edit(transforms, data)
    (data / "transforms.json").write_text(json.dumps(transforms))
    return data


def blender_scene(out: Path, instant_ngp: bool = False) -> Path:
    """The sample scene in the format of Blender's synthetic scenes (``transforms_{train,val,test}.json``: the field
    of view as ``camera_angle_x``, ``file_path`` without its .png), or with ``instant_ngp`` in instant-ngp's (one
    transforms.json, ``camera_angle_x``); returns ``out``."""
    import math

    from PIL import Image

    transforms = json.loads((SAMPLE / "transforms.json").read_text())
    width = transforms["frames"][0].get("w", transforms.get("w"))
    focal = transforms["frames"][0].get("fl_x", transforms.get("fl_x"))
    (out / "train").mkdir(parents=True)
    frames = []
    for i, frame in enumerate(transforms["frames"]):
        Image.open(SAMPLE / frame["file_path"]).save(out / "train" / f"r_{i}.png")
        frames.append({"file_path": f"./train/r_{i}", "transform_matrix": frame["transform_matrix"]})
    fov = {"camera_angle_x": 2 * math.atan(width / (2 * focal))}
    if instant_ngp:
        (out / "transforms.json").write_text(json.dumps({**fov, "frames": frames}))
    else:
        for split, chosen in (("train", frames), ("val", frames[9::10]), ("test", frames[9::10])):
            (out / f"transforms_{split}.json").write_text(json.dumps({**fov, "frames": chosen}))
    return out
