"""The paper's ablation on the synthetic dataset, on the CPU: the tiny model and its no-epipolar ablation,
each trained for the same time budget, scored on the test split's evaluation index, next to the
"copy the nearest context view" baseline.

    pixelsplat-make-synthetic --output-dir outputs/datasets/synthetic --scenes 200 --seed 0
    python scripts/benchmarks/ablation_synthetic.py --data outputs/datasets/synthetic --budget-minutes 30

Each variant is a ``ns-train pixelsplat-pretrain-tiny`` run (kept in --output-dir), read back as
``pixelsplat-export-encoder`` reads it and evaluated with the paper's protocol (PSNR, SSIM; LPIPS when its
VGG weights are available). Targets: full >= no-epipolar + 1 dB, full >= nearest view + 3 dB.
"""

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

from pixelsplat_ns.checkpoints import build_encoder, read_pretraining_run
from pixelsplat_ns.encoder import PixelSplatEncoder
from pixelsplat_ns.evaluation import EvaluationConfig, evaluate, nearest_view_baseline

VARIANTS = {
    "pixelSplat (tiny)": [],
    "no epipolar transformer": ["--pipeline.model.encoder.use-epipolar-transformer", "False"],
}


def train(name: str, data: Path, output_dir: Path, budget: float, extra: list[str]) -> Path:
    run = output_dir / name.replace(" ", "-").replace("(", "").replace(")", "")
    command = [
        str(Path(sys.executable).with_name("ns-train")),
        "pixelsplat-pretrain-tiny",
        "--data",
        str(data),
        "--output-dir",
        str(run),
        "--timestamp",
        "run",
        "--pipeline.time-budget-minutes",
        str(budget),
        *extra,
    ]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return next(run.rglob("config.yml"))


def load_run(config_path: Path) -> tuple[PixelSplatEncoder, int]:
    run = read_pretraining_run(config_path)
    return build_encoder(run.config, run.state_dict), run.step + 1  # steps trained: the checkpoint's is 0-based


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--index", type=Path, default=None, help="default: <data>/evaluation_index.json")
    parser.add_argument("--budget-minutes", type=float, default=30.0, help="training time per variant")
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/ablation"))
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N indexed scenes")
    parser.add_argument("--train-args", default="", help="more ns-train flags for both variants, as one string")
    args = parser.parse_args()
    index = args.index or args.data / "evaluation_index.json"
    config = EvaluationConfig(image_shape=(64, 64), crop_intrinsics="exact", limit=args.limit)

    rows = {}
    for name, extra in VARIANTS.items():
        run = train(name, args.data, args.output_dir, args.budget_minutes, [*shlex.split(args.train_args), *extra])
        encoder, steps = load_run(run)
        rows[name] = {**evaluate(encoder, args.data, index, config)["mean"], "steps": steps}
    rows["copy nearest context view"] = {**nearest_view_baseline(args.data, index, config)["mean"], "steps": 0}
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "ablation.json").write_text(json.dumps(rows, indent=2))

    show = lambda value, digits: "-" if value is None else f"{value:.{digits}f}"  # noqa: E731
    print(f"synthetic test split, 64 x 64, {args.budget_minutes:g} min of CPU training per model")
    print(f"{'method':<28} {'PSNR':>7} {'SSIM':>6} {'LPIPS':>6} {'steps':>6}")
    for name, row in rows.items():
        print(
            f"{name:<28} {show(row['psnr'], 2):>7} {show(row['ssim'], 3):>6} {show(row['lpips'], 3):>6} "
            f"{row['steps']:>6}"
        )
    full, ablated, nearest = (rows[k]["psnr"] for k in rows)
    print(
        f"full - no epipolar: {full - ablated:+.2f} dB (target >= +1); full - nearest view: {full - nearest:+.2f} dB "
        "(target >= +3)"
    )


if __name__ == "__main__":
    main()
