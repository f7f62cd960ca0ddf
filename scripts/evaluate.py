"""Evaluate an encoder checkpoint the way the paper does, over an evaluation index.

    python scripts/evaluate.py --checkpoint re10k.ckpt --data datasets/re10k \
        --index ../shared/reference/evaluation_index_re10k.json --output outputs/eval_re10k.json

Takes an official Lightning checkpoint or a converted one. Renders every target of every indexed scene,
writes per-scene and mean metrics to JSON and prints the paper's table (PSNR, SSIM, LPIPS, encode and
render seconds, peak memory). LPIPS needs torchvision's VGG-16 weights; offline, --skip-lpips reports
PSNR and SSIM only.
"""

import argparse
import json
from pathlib import Path

import torch
from tqdm import tqdm

from pixelsplat_ns.checkpoints import load_encoder
from pixelsplat_ns.evaluation import EvaluationConfig, evaluate
from pixelsplat_ns.metrics import load_lpips_vgg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="dataset root with <split>/*.torch and index.json")
    parser.add_argument("--index", type=Path, required=True, help="evaluation index JSON (official format)")
    parser.add_argument("--output", type=Path, default=Path("outputs/evaluation.json"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--image-size", type=int, nargs=2, default=(256, 256), metavar=("H", "W"))
    parser.add_argument("--crop-intrinsics", choices=("official", "exact"), default="official")
    parser.add_argument("--deterministic", action="store_true", help="most likely depth bin instead of sampling")
    parser.add_argument("--limit", type=int, default=None, help="only the first N scenes")
    parser.add_argument("--skip-lpips", action="store_true", help="report PSNR and SSIM only")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    args = parser.parse_args()
    if args.output.exists() and not args.force:
        parser.error(f"{args.output} exists; pass --force to overwrite it")

    encoder = load_encoder(args.checkpoint, device=args.device)
    lpips_model = None if args.skip_lpips else load_lpips_vgg(args.device)
    config = EvaluationConfig(image_shape=tuple(args.image_size), split=args.split, crop_intrinsics=args.crop_intrinsics,
                              deterministic=args.deterministic, limit=args.limit)
    results = evaluate(encoder, args.data, args.index, config, lpips_model,
                       progress=lambda items: tqdm(items, desc="scenes", unit="scene"))
    results["settings"] = {k: str(v) for k, v in vars(args).items()}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))

    mean = results["mean"]
    show = lambda value, digits: "-" if value is None else f"{value:.{digits}f}"  # noqa: E731
    print(f"{'scenes':>6} {'images':>6} {'PSNR':>7} {'SSIM':>6} {'LPIPS':>6} {'encode s':>9} {'render s':>9} {'memory GB':>9}")
    print(f"{mean['scenes']:>6} {mean['images']:>6} {show(mean['psnr'], 2):>7} {show(mean['ssim'], 3):>6} "
          f"{show(mean['lpips'], 3):>6} {show(mean['encode_seconds'], 3):>9} {show(mean['render_seconds'], 3):>9} "
          f"{results['peak_memory_gb']:>9.2f}")
    print(f"per-scene results: {args.output}")


if __name__ == "__main__":
    main()
