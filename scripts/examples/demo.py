"""The per-scene pipeline on the bundled sample scene, through nerfstudio's own commands.

    python scripts/examples/demo.py [--out outputs/demo] [--refine-steps 50] [--separate-processes]

1. ``ns-train pixelsplat --max-num-iterations 0``: the bundled encoder predicts the scene from two views;
   ``ns-eval`` scores it on the held-out views (feed-forward PSNR).
2. The same with ``--refine-steps`` iterations of refinement on the other views, and ``ns-eval`` again.
3. ``ns-export gaussian-splat``: the refined scene as a standard 3DGS .ply.
4. ``ns-render interpolate``: a novel-view video along the training trajectory.

Each command is announced with its step number and the time since the start, and its own output (nerfstudio's
progress) shows live and goes to ``demo.log``. The commands run in this one process (each console script's entry
point with its arguments), so nerfstudio starts once rather than six times; ``--separate-processes`` runs each
as its own process. Re-running the demo replaces its output folder, and says so.
"""

import argparse
import contextlib
import importlib
import json
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_SCENE = ROOT / "pixelsplat_ns" / "sample_scene"
BIN = Path(sys.executable).parent
ENTRYPOINTS = {  # the console scripts' functions (nerfstudio's pyproject.toml)
    "ns-train": "nerfstudio.scripts.train",
    "ns-eval": "nerfstudio.scripts.eval",
    "ns-export": "nerfstudio.scripts.exporter",
    "ns-render": "nerfstudio.scripts.render",
}
STEPS = 6


class Tee:
    """A text stream that writes to the terminal and to the log alike (the commands' own progress shows live)."""

    def __init__(self, *streams) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()

    def isatty(self) -> bool:
        return self.streams[0].isatty()

    def __getattr__(self, name):
        return getattr(self.streams[0], name)


class Demo:
    """Runs the demo's nerfstudio commands one after the other, each announced with its step number and the
    time since the start, with their output shown live and appended to ``log``.

    By default every command runs in this process (its console script's entry point called with its arguments,
    as the shell would): nerfstudio and torch start once instead of once per command (docs/benchmarks.md has
    what each start costs).
    ``separate_processes`` runs each as its own process instead, streaming its output line by line."""

    def __init__(self, log: Path, separate_processes: bool) -> None:
        self.log = log
        self.separate_processes = separate_processes
        self.start = time.perf_counter()
        self.step = 0
        self.durations: list[tuple[str, float]] = []

    def elapsed(self) -> str:
        return f"[{time.perf_counter() - self.start:5.0f} s]"

    def run(self, what: str, *args) -> None:
        """One nerfstudio command (``args[0]`` is its name); a failure stops the demo with the log's path."""
        self.step += 1
        command = [str(a) for a in args]
        print(f"\n{self.elapsed()} step {self.step}/{STEPS}: {what}\n$ {' '.join(command)}", flush=True)
        with open(self.log, "a") as log:
            log.write(f"$ {' '.join(command)}\n")
        started = time.perf_counter()
        ok = self._in_subprocess(command) if self.separate_processes else self._in_process(command)
        if not ok:
            sys.exit(f"{command[0]} failed (step {self.step}/{STEPS}, {what}); full log: {self.log}")
        seconds = time.perf_counter() - started
        self.durations.append((f"{self.step}. {what}", seconds))
        print(f"{self.elapsed()} step {self.step}/{STEPS} done in {seconds:.1f} s", flush=True)

    def _in_process(self, command: list[str]) -> bool:
        entrypoint = importlib.import_module(ENTRYPOINTS[command[0]]).entrypoint
        argv = sys.argv
        with (
            open(self.log, "a") as log,
            contextlib.redirect_stdout(Tee(sys.stdout, log)),
            contextlib.redirect_stderr(Tee(sys.stderr, log)),
        ):
            sys.argv = command
            try:
                entrypoint()
            except SystemExit as error:  # tyro's usage errors, the plugin's input errors
                return error.code in (None, 0)
            except Exception:
                import traceback

                traceback.print_exc()
                return False
            finally:
                sys.argv = argv
        return True

    def _in_subprocess(self, command: list[str]) -> bool:
        process = subprocess.Popen(
            [str(BIN / command[0]), *command[1:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        with open(self.log, "a") as log:
            for line in process.stdout:
                sys.stdout.write(line)
                log.write(line)
        return process.wait() == 0


def train(demo: Demo, out: Path, name: str, steps: int, what: str) -> Path:
    demo.run(
        what,
        "ns-train",
        "pixelsplat",
        "--data",
        SAMPLE_SCENE,
        "--output-dir",
        out,
        "--experiment-name",
        name,
        "--timestamp",
        "run",
        "--vis",
        "tensorboard",
        "--max-num-iterations",
        steps,
    )
    return out / name / "pixelsplat" / "run" / "config.yml"


def evaluate(demo: Demo, config: Path, what: str) -> dict:
    report = config.parent / "eval.json"
    demo.run(what, "ns-eval", "--load-config", config, "--output-path", report)
    return json.loads(report.read_text())["results"]


def clear_earlier_demo(out: Path, log: Path) -> None:
    """Empty ``out`` if it holds an earlier run of this demo (saying so), refuse any other non-empty folder."""
    if not out.exists() or not any(out.iterdir()):
        return
    if not log.is_file():
        sys.exit(f"{out} is not empty and holds no demo.log: give --out a new folder (or an earlier demo's)")
    when = datetime.fromtimestamp(log.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    contents = ", ".join(sorted(p.name for p in out.iterdir()))
    print(f"replacing the earlier demo in {out} (last written {when}: {contents})", flush=True)
    shutil.rmtree(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"), help="folder for everything it writes")
    parser.add_argument("--refine-steps", type=int, default=50, help="refinement iterations on the target views")
    parser.add_argument(
        "--separate-processes",
        action="store_true",
        help="run each nerfstudio command as its own process (slower: nerfstudio starts each time)",
    )
    args = parser.parse_args()
    out = args.out.resolve()
    log = out / "demo.log"
    clear_earlier_demo(out, log)
    out.mkdir(parents=True, exist_ok=True)
    log.touch()
    print(f"demo: {STEPS} steps, output in {out}, every command's output also in {log}", flush=True)
    demo = Demo(log, args.separate_processes)

    feed_forward = train(demo, out, "feed_forward", 0, "predict the scene from two views (feed-forward)")
    before = evaluate(demo, feed_forward, "score the feed-forward scene on the held-out views")
    refined = train(demo, out, "refined", args.refine_steps, f"predict, then refine for {args.refine_steps} steps")
    after = evaluate(demo, refined, "score the refined scene")
    demo.run(
        "export the refined scene as a 3DGS .ply",
        "ns-export",
        "gaussian-splat",
        "--load-config",
        refined,
        "--output-dir",
        out / "export",
    )
    video = out / "novel_views.mp4"
    demo.run(
        "render a novel-view video",
        "ns-render",
        "interpolate",
        "--load-config",
        refined,
        "--output-path",
        video,
        "--pose-source",
        "train",
        "--interpolation-steps",
        2,
        "--frame-rate",
        12,
    )

    print(f"\nsample scene: {SAMPLE_SCENE}")
    print(f"eval PSNR feed-forward:          {before['psnr']:.2f} dB  (SSIM {before['ssim']:.3f})")
    print(f"eval PSNR after {args.refine_steps:3d} refine steps: {after['psnr']:.2f} dB  (SSIM {after['ssim']:.3f})")
    print(f"runs (config.yml for ns-viewer): {feed_forward}\n                                 {refined}")
    print(f"splat (.ply, 3DGS layout):       {out / 'export' / 'splat.ply'}")
    print(f"novel-view video:                {video}")
    print(f"log of every command:            {log}")
    print(f"view it: {BIN / 'ns-viewer'} --load-config {refined}")
    print("time per step: " + ", ".join(f"{name.split('.')[0]}: {seconds:.0f} s" for name, seconds in demo.durations))
    print(f"done in {time.perf_counter() - demo.start:.0f} s")


if __name__ == "__main__":
    main()
