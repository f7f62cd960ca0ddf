"""The pictures of the README and the docs, made again from the project's own commands.

    python scripts/tools/make_pictures.py [--out docs/pictures] [--work outputs/pictures] [--refine-steps 100]
        [--only sample_scene middlebury_pair capture_pairs renderer_speed]

1. ``sample_scene.png``: the bundled sample scene, two context views in, held-out views rendered (predicted and
   refined) next to the photographs (``ns-train pixelsplat``, as a user runs it).
2. ``middlebury_pair.png``: a real pair with no camera information (Middlebury's motorcycle, shipped with
   scikit-image): ``pixelsplat-process-data pair``, ``ns-train pixelsplat``, then views between and beside the
   two photos.
3. ``capture_pairs.png``: the generated 48-view walk of docs/captures.md (``make_sample_scene.py --frames 48``)
   predicted from one context pair and from two pairs fused (``--pipeline.datamanager.context-pairs 2``), the
   same held-out view rendered by both next to the photograph; PSNR as ``ns-eval`` computes it.
4. ``renderer_speed.png``: the CPU renderer's times, drawn from ``RENDERER_SECONDS`` below (figures copied from
   docs/benchmarks.md; nothing is measured here).
The plot of a capture predicted from more and more pairs is made by ``scripts/benchmarks/benchmark_fusion.py``.
Each run of ``ns-train`` is a subprocess with the flags a user would type; the views are rendered from the run's
checkpoint through nerfstudio's ``eval_setup``, as ``ns-render`` does. Pictures over ``MAX_PNG_BYTES`` are saved
with a 256-colour palette.
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
MAX_PNG_BYTES = 300_000

# The picture input of renderer_speed.png, copied from docs/benchmarks.md, section "The renderer on the CPU",
# the rows of 2026-11-30 (commit 4088986, the project's 2-core CPU host, benchmark_render.py): seconds a call,
# 393,216 Gaussians with degree-3 SH into 256 x 256 views, per backend, pass and number of views.
RENDERER_SECONDS = {
    "torch": {"forward, 1 view": 1.43, "backward, 1 view": 2.09, "forward, 4 views": 5.03, "backward, 4 views": 7.84},
    "numba": {"forward, 1 view": 0.13, "backward, 1 view": 0.23, "forward, 4 views": 0.48, "backward, 4 views": 0.72},
}
RENDERER_SOURCE = "docs/benchmarks.md, the renderer on the CPU: 2026-11-30, commit 4088986, 2-core CPU"


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
            views.append(to_8bit(rgb))
    return views


def to_8bit(rgb: torch.Tensor) -> np.ndarray:
    return (rgb.clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)


def save(picture: Image.Image, path: Path) -> None:
    """A PNG, with a 256-colour palette where the full colours would take more than ``MAX_PNG_BYTES``."""
    picture.save(path, optimize=True)
    if path.stat().st_size > MAX_PNG_BYTES:
        palette = picture.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
        palette.save(path, optimize=True)
    print(f"{path}: {path.stat().st_size // 1000} kB", flush=True)


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
    save(grid(rows, []), out / "sample_scene.png")


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
    # Views along the baseline: beyond the left photo, at it, halfway, at the right one, beyond it; 0.4 x size.
    start, end = cameras.camera_to_worlds[0], cameras.camera_to_worlds[1]
    novel = cameras[torch.zeros(5, dtype=torch.long)]
    for i, t in enumerate((-0.5, 0.0, 0.5, 1.0, 1.5)):
        novel.camera_to_worlds[i, :, 3] = (1 - t) * start[:, 3] + t * end[:, 3]
    novel.rescale_output_resolution(0.4)
    views: list[Optional[np.ndarray]] = list(render(pipeline, novel))
    height, width = views[0].shape[:2]  # type: ignore[union-attr]
    photos_row = [None, *(np.asarray(Image.fromarray(i).resize((width, height))) for i in (left, right)), None]
    photos_row.insert(2, None)
    rows = [("input: 2 photos", photos_row), ("rendered (bundled encoder)", views)]
    labels = ["beyond left", "left camera", "halfway", "right camera", "beyond right"]
    save(grid(rows, labels), out / "middlebury_pair.png")


def capture_picture(work: Path, out: Path) -> None:
    """docs/captures.md's generated walk from one context pair and from two pairs fused: the held-out view
    nearest the middle of the walk, with its PSNR (the model's ``get_image_metrics_and_images``, as ns-eval)."""
    scene = work / "capture_walk"
    walk = ROOT / "scripts" / "tools" / "make_sample_scene.py"
    print("$ python", walk.relative_to(ROOT), "--out", scene, "--frames 48 --overwrite", flush=True)
    subprocess.run([sys.executable, str(walk), "--out", str(scene), "--frames", "48", "--overwrite"], check=True)
    runs = {
        "1 pair": load(predict(scene, work / "capture_one_pair")),
        "2 pairs fused": load(predict(scene, work / "capture_two_pairs", "--pipeline.datamanager.context-pairs", 2)),
    }
    held_out = runs["1 pair"].datamanager.eval_dataset
    frames = [int("".join(filter(str.isdigit, Path(name).stem))) for name in held_out.image_filenames]
    index = min(range(len(frames)), key=lambda i: abs(frames[i] - 24))
    images: list[Optional[np.ndarray]] = [photo(held_out, index)]
    labels = [f"photograph ({Path(held_out.image_filenames[index]).name}, held out)"]
    for name, pipeline in runs.items():
        dataset = pipeline.datamanager.eval_dataset
        with torch.no_grad():
            outputs = pipeline.model.get_outputs_for_camera(dataset.cameras[index : index + 1].to(pipeline.device))
            metrics, _ = pipeline.model.get_image_metrics_and_images(outputs, dataset[index])
        images.append(to_8bit(outputs["rgb"]))
        labels.append(f"{name}: {metrics['psnr']:.2f} dB ({pipeline.model.num_points / 1000:.0f}k Gaussians)")
        print(f"capture_pairs.png: {labels[-1]}", flush=True)
    save(grid([("48-view walk", images)], labels), out / "capture_pairs.png")


def renderer_speed_picture(out: Path) -> None:
    """Grouped bars of ``RENDERER_SECONDS``: torch against numba, forward and backward, 1 and 4 views."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(RENDERER_SECONDS["torch"])
    figure, axes = plt.subplots(figsize=(6.4, 3.0))
    width = 0.38
    for offset, (backend, color) in zip((-width / 2, width / 2), (("torch", "tab:gray"), ("numba", "tab:blue"))):
        seconds = [RENDERER_SECONDS[backend][case] for case in cases]
        bars = axes.bar([i + offset for i in range(len(cases))], seconds, width, label=backend, color=color)
        axes.bar_label(bars, labels=[f"{s:.2f}" for s in seconds], fontsize=7, padding=1)
    axes.set_xticks(range(len(cases)), cases, fontsize=8)
    axes.set_ylabel("seconds a call")
    axes.set_title("393,216 Gaussians into 256 x 256 views, on the CPU", fontsize=9)
    axes.legend(title="backend", fontsize=8, title_fontsize=8)
    figure.text(0.99, 0.01, RENDERER_SOURCE, ha="right", fontsize=6, color="gray")
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    path = out / "renderer_speed.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    print(f"{path}: {path.stat().st_size // 1000} kB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "pictures")
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "pictures")
    parser.add_argument("--refine-steps", type=int, default=100)
    pictures = ["sample_scene", "middlebury_pair", "capture_pairs", "renderer_speed"]
    parser.add_argument("--only", nargs="+", choices=pictures, default=pictures, help="make only these pictures")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if "sample_scene" in args.only:
        sample_scene_picture(args.work, args.out, args.refine_steps)
    if "middlebury_pair" in args.only:
        middlebury_picture(args.work, args.out)
    if "capture_pairs" in args.only:
        capture_picture(args.work, args.out)
    if "renderer_speed" in args.only:
        renderer_speed_picture(args.out)
    print(f"pictures in {args.out}")


if __name__ == "__main__":
    main()
