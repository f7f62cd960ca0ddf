"""Time of a per-scene refinement step and of a viewer frame on the bundled sample scene, in-process.

Builds what ``ns-train pixelsplat --data pixelsplat_ns/sample_scene --max-num-iterations N`` builds (nerfstudio's
trainer, the bundled encoder's prediction: 221,184 Gaussians at its 144-pixel short side, 43,008 with
``--context-short-side 64``; SH degree 3), then times

* a refinement step: ``Trainer.train_iteration`` (render of one 256 x 144 target view, MSE loss, backward,
  Adam step of every Gaussian parameter), exactly what ns-train runs per iteration;
* a viewer frame: ``model.get_outputs_for_camera`` of a 512 x 512 camera at a training pose (the viewer's call,
  no gradients, RGB and expected depth).

Each figure is the median of ``--repeats`` runs after one warm-up. Targets (set for the 43,008-Gaussian
scene): step <= 0.25 s, frame <= 0.15 s.

    python scripts/benchmarks/benchmark_per_scene.py [--repeats 10] [--profile] [--context-short-side 64]
        [--no-cpu-allocator-tuning]
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_SCENE = ROOT / "pixelsplat_ns" / "sample_scene"
VIEWER_SIZE = 512


def make_trainer(output_dir: Path, iterations: int, context_short_side=None, cpu_allocator_tuning=True):
    """nerfstudio's trainer for ``ns-train pixelsplat`` on the sample scene, set up (the scene predicted)."""
    from pixelsplat_ns.methods import pixelsplat

    config = pixelsplat.config
    config.pipeline.datamanager.data = SAMPLE_SCENE
    config.output_dir = output_dir
    config.vis = "tensorboard"
    config.max_num_iterations = iterations
    config.pipeline.model.context_short_side = context_short_side
    config.pipeline.model.cpu_allocator_tuning = cpu_allocator_tuning
    config.set_timestamp()
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    return trainer


def viewer_camera(trainer, size: int = VIEWER_SIZE):
    """The first training camera, rescaled to a ``size`` x ``size`` image (its field of view kept along x)."""
    from nerfstudio.cameras.cameras import Cameras

    train = trainer.pipeline.datamanager.train_dataset.cameras[0:1]
    scale = size / float(train.width)
    return Cameras(
        camera_to_worlds=train.camera_to_worlds,
        fx=train.fx * scale,
        fy=train.fx * scale,
        cx=torch.full_like(train.cx, size / 2),
        cy=torch.full_like(train.cy, size / 2),
        width=size,
        height=size,
        camera_type=train.camera_type,
    )


def median_seconds(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs, after one untimed warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def profile(fn, label: str, rows: int = 15) -> None:
    """torch's operator profile of one ``fn()`` call, by total CPU time."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    print(f"\n--- profile: {label} ---")
    print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per figure; the median is reported")
    parser.add_argument("--profile", action="store_true", help="also print torch's operator profile of each")
    parser.add_argument(
        "--context-short-side",
        type=int,
        default=None,
        help="encode the context at this short side (default: the encoder's, 144 for the bundled "
        "one; 64 gives 43,008 Gaussians, as many as the earlier 64-px encoder predicted)",
    )
    parser.add_argument(
        "--cpu-allocator-tuning",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the model's cpu_allocator_tuning (glibc keeps freed blocks; on by default)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as output_dir:
        start = time.perf_counter()
        trainer = make_trainer(
            Path(output_dir),
            iterations=args.repeats + 1,
            context_short_side=args.context_short_side,
            cpu_allocator_tuning=args.cpu_allocator_tuning,
        )
        setup_s = time.perf_counter() - start
        model = trainer.pipeline.model
        step_counter = iter(range(10**6))

        def step():
            model.train()
            trainer.train_iteration(next(step_counter))

        camera = viewer_camera(trainer)

        def frame():
            model.eval()
            model.get_outputs_for_camera(camera)

        step_s = median_seconds(step, args.repeats)
        frame_s = median_seconds(frame, args.repeats)
        if args.profile:
            profile(step, "refinement step")
            profile(frame, "viewer frame")

    print(f"sample scene: {model.num_points} Gaussians; trainer setup (nerfstudio + prediction) {setup_s:.1f} s")
    print(f"{'figure':<40} {'median s':>8} {'target s':>8}")
    print(f"{'refinement step (256x144, fwd+bwd+Adam)':<40} {step_s:>8.3f} {0.25:>8.2f}")
    print(f"{'viewer frame (512x512, no grad)':<40} {frame_s:>8.3f} {0.15:>8.2f}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {args.repeats}", file=sys.stderr)


if __name__ == "__main__":
    main()
