"""The per-scene pipeline on the bundled sample scene, through nerfstudio's own commands.

    python scripts/demo.py [--out outputs/demo] [--refine-steps 50]

1. ``ns-train pixelsplat --max-num-iterations 0``: the bundled encoder predicts the scene from two views;
   ``ns-eval`` scores it on the held-out views (feed-forward PSNR).
2. The same with ``--refine-steps`` iterations of refinement on the other views, and ``ns-eval`` again.
3. ``ns-export gaussian-splat``: the refined scene as a standard 3DGS .ply.
4. ``ns-render interpolate``: a novel-view video along the training trajectory.
"""

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_SCENE = ROOT / "pixelsplat_ns" / "sample_scene"
BIN = Path(sys.executable).parent


def run(*args) -> None:
    """One nerfstudio command; its output goes to the log, and a failure stops the demo with the log's tail."""
    command = [str(BIN / str(args[0])), *map(str, args[1:])]
    print("$", Path(command[0]).name, *command[1:], flush=True)
    result = subprocess.run(command, capture_output=True, text=True)
    with open(LOG, "a") as log:
        log.write(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        sys.exit(f"{Path(command[0]).name} failed:\n{(result.stdout + result.stderr)[-3000:]}\n(full log: {LOG})")


def train(out: Path, name: str, steps: int) -> Path:
    run("ns-train", "pixelsplat", "--data", SAMPLE_SCENE, "--output-dir", out, "--experiment-name", name,
        "--timestamp", "run", "--vis", "tensorboard", "--max-num-iterations", steps)
    return out / name / "pixelsplat" / "run" / "config.yml"


def evaluate(config: Path) -> dict:
    report = config.parent / "eval.json"
    run("ns-eval", "--load-config", config, "--output-path", report)
    return json.loads(report.read_text())["results"]


def main() -> None:
    global LOG
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"), help="folder for everything it writes")
    parser.add_argument("--refine-steps", type=int, default=50, help="refinement iterations on the target views")
    args = parser.parse_args()
    out = args.out.resolve()
    LOG = out / "demo.log"
    if out.exists() and any(out.iterdir()):
        if not LOG.is_file():
            sys.exit(f"{out} is not empty and holds no demo.log: give --out a new folder (or an earlier demo's)")
        shutil.rmtree(out)  # an earlier run of this demo
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    feed_forward = train(out, "feed_forward", 0)
    before = evaluate(feed_forward)
    refined = train(out, "refined", args.refine_steps)
    after = evaluate(refined)
    run("ns-export", "gaussian-splat", "--load-config", refined, "--output-dir", out / "export")
    video = out / "novel_views.mp4"
    run("ns-render", "interpolate", "--load-config", refined, "--output-path", video, "--pose-source", "train",
        "--interpolation-steps", 2, "--frame-rate", 12)

    print(f"\nsample scene: {SAMPLE_SCENE}")
    print(f"eval PSNR feed-forward:          {before['psnr']:.2f} dB  (SSIM {before['ssim']:.3f})")
    print(f"eval PSNR after {args.refine_steps:3d} refine steps: {after['psnr']:.2f} dB  (SSIM {after['ssim']:.3f})")
    print(f"runs (config.yml for ns-viewer): {feed_forward}\n                                 {refined}")
    print(f"splat (.ply, 3DGS layout):       {out / 'export' / 'splat.ply'}")
    print(f"novel-view video:                {video}")
    print(f"log of every command:            {LOG}")
    print(f"view it: {BIN / 'ns-viewer'} --load-config {refined}")
    print(f"done in {time.perf_counter() - start:.0f} s")


LOG: Path

if __name__ == "__main__":
    main()
