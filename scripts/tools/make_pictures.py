"""The pictures of the README and the docs, made again from the project's own commands.

    python scripts/tools/make_pictures.py [--out docs/pictures] [--work outputs/pictures] [--refine-steps 100]

1. ``sample_scene.png``: the bundled sample scene, two context views in, held-out views rendered (predicted and
   refined) next to the photographs (``ns-train pixelsplat``, as a user runs it).
2. ``middlebury_pair.png``: a real pair with no camera information (Middlebury's motorcycle, shipped with
   scikit-image): ``pixelsplat-process-data pair``, ``ns-train pixelsplat``, then views between and beside the
   two photos.
The plot of a capture predicted from more and more pairs is made by ``scripts/benchmarks/benchmark_fusion.py``.
Each run of ``ns-train`` is a subprocess with the flags a user would type; the views are rendered from the run's
checkpoint through nerfstudio's ``eval_setup``, as ``ns-render`` does.
"""

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SAMPLE = ROOT / "pixelsplat_ns" / "sample_scene"
LABEL_HEIGHT = 18


def run(*command) -> None:
    """A console command of this environment, its output shown; stops the script when it fails."""
    print("$", " ".join(map(str, command)), flush=True)
    subprocess.run([str(BIN / str(command[0])), *map(str, command[1:])], check=True)


def predict(data: Path, out: Path, *flags) -> Path:
    """``ns-train pixelsplat`` on ``data`` (tensorboard, no viewer); the run's config.yml."""
    run("ns-train", "pixelsplat", "--data", data, "--output-dir", out, "--vis", "tensorboard", *flags)
    return max(out.rglob("config.yml"), key=lambda path: path.stat().st_mtime)


def load(config: Path):
    """The run's pipeline with its checkpoint's Gaussians (nerfstudio's ``eval_setup``)."""
    from nerfstudio.utils.eval_utils import eval_setup

    _, pipeline, _, _ = eval_setup(config, test_mode="inference")
    return pipeline


def render(pipeline, cameras) -> list[np.ndarray]:
    """Each camera's view, as 8-bit RGB."""
    views = []
    with torch.no_grad():
        for i in range(len(cameras)):
            rgb = pipeline.model.get_outputs_for_camera(cameras[i : i + 1].to(pipeline.device))["rgb"]
            views.append((rgb.clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8))
    return views


def photo(dataset, index: int) -> np.ndarray:
    return (dataset.get_image_float32(index).numpy()[..., :3] * 255).round().astype(np.uint8)


def grid(rows: list[tuple[str, list[Optional[np.ndarray]]]], column_labels: list[str], gap: int = 4) -> Image.Image:
    """Rows of equal-size images (None: an empty place), each row and column labelled."""
    height, width = next(image for _, images in rows for image in images if image is not None).shape[:2]
    label_width = 150
    columns = max(len(images) for _, images in rows)
    canvas = Image.new(
        "RGB",
        (label_width + columns * (width + gap), LABEL_HEIGHT + len(rows) * (height + gap)),
        "white",
    )
    draw = ImageDraw.Draw(canvas)
    for c, label in enumerate(column_labels):
        draw.text((label_width + c * (width + gap) + 4, 3), label, fill="black")
    for r, (label, images) in enumerate(rows):
        top = LABEL_HEIGHT + r * (height + gap)
        draw.text((4, top + height // 2 - 6), label, fill="black")
        for c, image in enumerate(images):
            if image is None:
                continue
            canvas.paste(Image.fromarray(image), (label_width + c * (width + gap), top))
    return canvas


def sample_scene_picture(work: Path, out: Path, refine_steps: int) -> None:
    context = (0, 10)
    flags = ["--pipeline.datamanager.context-views", *context, "nerfstudio-data", "--eval-mode", "interval"]
    predicted = load(predict(SAMPLE, work / "sample_predicted", *flags))
    refined = load(
        predict(SAMPLE, work / "sample_refined", "--max-num-iterations", refine_steps, *flags[:3], *flags[3:])
    )
    train, held_out = predicted.datamanager.train_dataset, predicted.datamanager.eval_dataset
    names = [Path(name).name for name in train.image_filenames]
    context_row = [photo(train, names.index(Path(train.image_filenames[i]).name)) for i in context]
    targets = list(range(len(held_out)))
    rows: list[tuple[str, list[Optional[np.ndarray]]]] = [
        ("input: 2 context views", list(context_row)),
        ("held-out photographs", [photo(held_out, i) for i in targets]),
        ("predicted", list(render(predicted, held_out.cameras))),
        (f"refined, {refine_steps} steps", list(render(refined, held_out.cameras))),
    ]
    grid(rows, []).save(out / "sample_scene.png")


def middlebury_picture(work: Path, out: Path) -> None:
    from skimage import data as skimage_data

    photos = work / "middlebury_photos"
    photos.mkdir(parents=True, exist_ok=True)
    left, right, _ = skimage_data.stereo_motorcycle()
    Image.fromarray(left).save(photos / "left.png")
    Image.fromarray(right).save(photos / "right.png")
    scene = work / "middlebury_scene"
    run("pixelsplat-process-data", "pair", "--data", photos, "--output-dir", scene, "--force")
    pipeline = load(predict(scene, work / "middlebury_run", "--pipeline.model.context-short-side", "256"))
    cameras = pipeline.datamanager.train_dataset.cameras
    # Views along the baseline: beyond the left photo, at it, halfway, at the right one, beyond it; half size.
    start, end = cameras.camera_to_worlds[0], cameras.camera_to_worlds[1]
    novel = cameras[torch.zeros(5, dtype=torch.long)]
    for i, t in enumerate((-0.5, 0.0, 0.5, 1.0, 1.5)):
        novel.camera_to_worlds[i, :, 3] = (1 - t) * start[:, 3] + t * end[:, 3]
    novel.rescale_output_resolution(0.5)
    views: list[Optional[np.ndarray]] = list(render(pipeline, novel))
    height, width = views[0].shape[:2]  # type: ignore[union-attr]
    photos_row = [None, *(np.asarray(Image.fromarray(i).resize((width, height))) for i in (left, right)), None]
    photos_row.insert(2, None)
    rows = [("input: 2 photos", photos_row), ("rendered (bundled encoder)", views)]
    labels = ["beyond left", "left camera", "halfway", "right camera", "beyond right"]
    grid(rows, labels).save(out / "middlebury_pair.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "pictures")
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "pictures")
    parser.add_argument("--refine-steps", type=int, default=100)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sample_scene_picture(args.work, args.out, args.refine_steps)
    middlebury_picture(args.work, args.out)
    print(f"pictures in {args.out}")


if __name__ == "__main__":
    main()
