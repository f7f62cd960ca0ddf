"""Whole captures: one context pair against N pairs concatenated and N pairs fused, side by side in one run.

Each capture is a generated room seen along a whole forward walk (``synthetic_scene``, 256 x 144, a seed the
bundled encoder never saw), written as a nerfstudio scene; nerfstudio-data holds out 4 of the 48 views for
evaluation, between the training views. For every capture and variant it runs ``ns-train pixelsplat`` (feed
forward, 0 refinement steps) and ``ns-eval``, and prints the held-out PSNR, the number of Gaussians and the
prediction time; one refinement run measures what 100 refinement steps cost on the same machine.

Splatfacto trained from a random initialization on the same training views is the per-scene baseline: its
training loop gets the wall time of the capture's slowest ``ns-train pixelsplat`` command, start-up and image
loading included (times each of ``--splatfacto-factors``; its own start-up is not counted), and runs on
the CPU through ``scripts/benchmarks/splatfacto_cpu.py`` (nerfstudio's splatfacto with the project's rasterizer in place
of gsplat's CUDA one; see there for what else differs).

    .venv/bin/python scripts/benchmarks/benchmark_fusion.py [--seeds 1 2 3] [--frames 48] [--pairs 2 3 4 auto]
        [--tolerances 0.2 1.0] [--encoder CKPT] [--splatfacto-factors 1 10]
"""

import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

import tyro

from pixelsplat_ns.data.nerfstudio_convert import write_nerfstudio_scene
from pixelsplat_ns.data.synthetic import SyntheticConfig, synthetic_scene

BIN = Path(sys.executable).parent


@dataclass
class Args:
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])
    """Synthetic dataset seeds (the bundled encoder was trained on seed 0); scene 0 of each."""
    frames: int = 48
    """Views along the walk."""
    pairs: list[str] = field(default_factory=lambda: ["2", "3", "4", "auto"])
    """Values of --pipeline.datamanager.context-pairs compared with the single pair."""
    tolerances: list[float] = field(default_factory=lambda: [1.0])
    """--pipeline.model.fusion-depth-tolerance values compared (each N fused at each)."""
    refinement_steps: int = 30
    """Refinement steps timed (on the first capture's fused scene) to price 100 of them."""
    encoder: Optional[Path] = None
    """Encoder checkpoint (--pipeline.model.encoder-checkpoint); default: the bundled one."""
    splatfacto_factors: list[float] = field(default_factory=lambda: [1.0, 10.0])
    """Splatfacto's training time in multiples of the capture's slowest ns-train pixelsplat command (none: no
    splatfacto)."""
    output_dir: Path = Path("outputs/benchmark_fusion")
    plot: Path = Path("outputs/benchmark_fusion/fusion_vs_pairs.png")
    """The figure of docs/captures.md: mean held-out PSNR and Gaussians against the number of pairs (numeric N only)."""


def capture(seed: int, frames: int, out: Path) -> Path:
    config = SyntheticConfig(height=144, width=256, min_frames=frames, max_frames=frames, jpeg_quality=92)
    scene = synthetic_scene(seed, 0, config)
    scene = replace(
        scene, timestamps=scene.timestamps[:frames], cameras=scene.cameras[:frames], images=scene.images[:frames]
    )
    return write_nerfstudio_scene(scene, out, overwrite=True)


def train(data: Path, out: Path, *flags: str, steps: int = 0) -> tuple[Path, str, float]:
    started = time.perf_counter()
    result = subprocess.run(
        [
            str(BIN / "ns-train"),
            "pixelsplat",
            "--data",
            str(data),
            "--output-dir",
            str(out),
            "--vis",
            "tensorboard",
            "--timestamp",
            "run",
            "--max-num-iterations",
            str(steps),
            *flags,
        ],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"ns-train failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return next(out.rglob("config.yml")), result.stdout, seconds


def evaluate(config: Path) -> dict:
    report = config.parent / "eval.json"
    subprocess.run(
        [str(BIN / "ns-eval"), "--load-config", str(config), "--output-path", str(report)],
        capture_output=True,
        check=True,
    )
    return json.loads(report.read_text())["results"]


def splatfacto(data: Path, out: Path, seconds: float) -> dict:
    """Held-out PSNR, Gaussians and seconds of splatfacto trained from random points for ``seconds``."""
    result = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).parent / "splatfacto_cpu.py"),
            "--data",
            str(data),
            "--seconds",
            str(seconds),
            "--output-dir",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"splatfacto_cpu failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    score = json.loads(result.stdout.strip().splitlines()[-1])
    return {
        "psnr": score["psnr"],
        "gaussians": score["gaussians"],
        "seconds": score["seconds"],
        "steps": score["steps"],
    }


def splatfacto_name(factor: float) -> str:
    return f"splatfacto, {factor:g}x the time"


def prediction(log: str) -> tuple[int, float]:
    """(Gaussians in the scene, seconds of prediction) from ns-train's log."""
    flat = " ".join(log.split())
    fused = re.search(r"kept (\d+) of \d+ Gaussians \(\d+%\) in ([\d.]+) s", flat)
    if fused:
        return int(fused.group(1)), float(fused.group(2))
    plain = re.search(r"predicted (\d+) Gaussians .*? in ([\d.]+) s", flat)
    return int(plain.group(1)), float(plain.group(2))


def main(args: Args) -> None:
    args.output_dir.mkdir(parents=True, exist_ok=True)
    encoder = ["--pipeline.model.encoder-checkpoint", str(args.encoder)] if args.encoder else []
    variants = [("1 pair", encoder)]
    for pairs in args.pairs:
        flag = encoder + ["--pipeline.datamanager.context-pairs", pairs]
        variants.append((f"{pairs} concatenated", flag + ["--pipeline.model.context-fusion", "concatenate"]))
        variants += [
            (f"{pairs} fused{fused_suffix(args, t)}", flag + ["--pipeline.model.fusion-depth-tolerance", str(t)])
            for t in args.tolerances
        ]
    rows = []
    with tempfile.TemporaryDirectory(dir=args.output_dir) as work:
        for seed in args.seeds:
            data = capture(seed, args.frames, Path(work) / f"capture_{seed}")
            for name, flags in variants:
                out = Path(work) / f"run_{seed}_{name.replace(' ', '_')}"
                config, log, command_seconds = train(data, out, *flags)
                count, seconds = prediction(log)
                groups = re.search(r"context groups: ((?:\([\d ]+\),? ?)+)", " ".join(log.split()))
                rows.append(
                    {
                        "seed": seed,
                        "variant": name,
                        "psnr": evaluate(config)["psnr"],
                        "gaussians": count,
                        "seconds": seconds,
                        "command_seconds": command_seconds,
                        "groups": groups.group(1).strip() if groups else "",
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
            budget = max(r["command_seconds"] for r in rows if r["seed"] == seed)
            for factor in args.splatfacto_factors:
                out = Path(work) / f"splatfacto_{seed}_{factor:g}"
                rows.append(
                    {
                        "seed": seed,
                        "variant": splatfacto_name(factor),
                        **splatfacto(data, out, budget * factor),
                        "groups": "",
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
        # The price of refinement steps on the same machine: the same run with and without them.
        data = Path(work) / f"capture_{args.seeds[0]}"
        fused = encoder + [
            "--pipeline.datamanager.context-pairs",
            args.pairs[0],
            "--pipeline.model.fusion-depth-tolerance",
            str(args.tolerances[0]),
        ]
        *_, without = train(data, Path(work) / "steps_0", *fused)
        *_, with_steps = train(data, Path(work) / "steps_n", *fused, steps=args.refinement_steps)
        step = (with_steps - without) / args.refinement_steps

    print(
        f"\n{len(args.seeds)} captures of {args.frames} views (seeds {args.seeds}), held-out PSNR (dB), "
        "Gaussians, prediction seconds:"
    )
    print("| variant | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean PSNR | mean Gaussians | vs 1 pair |")
    print("|---|" + "---|" * (len(args.seeds) + 3))
    baseline = sum(r["psnr"] for r in rows if r["variant"] == "1 pair") / len(args.seeds)
    for name in [name for name, _ in variants] + [splatfacto_name(f) for f in args.splatfacto_factors]:
        mine = [r for r in rows if r["variant"] == name]
        cells = [f"{r['psnr']:.2f} ({r['gaussians']}, {r['seconds']:.1f} s)" for r in mine]
        mean_psnr = sum(r["psnr"] for r in mine) / len(mine)
        mean_count = sum(r["gaussians"] for r in mine) / len(mine)
        print(
            f"| {name} | " + " | ".join(cells) + f" | {mean_psnr:.2f} | {mean_count:.0f} | "
            f"{mean_psnr - baseline:+.2f} dB |"
        )
    for pairs in args.pairs:
        concatenated = [r for r in rows if r["variant"] == f"{pairs} concatenated"]
        for tolerance in args.tolerances:
            fused = [r for r in rows if r["variant"] == f"{pairs} fused{fused_suffix(args, tolerance)}"]
            share = sum(f["gaussians"] / c["gaussians"] for f, c in zip(fused, concatenated)) / len(fused)
            gap = sum(f["psnr"] - c["psnr"] for f, c in zip(fused, concatenated)) / len(fused)
            print(
                f"{pairs}, tolerance {tolerance:g}: fused keeps {share:.0%} of the concatenated Gaussians, "
                f"{gap:+.2f} dB against them; groups {'; '.join(r['groups'] for r in fused)}"
            )
    plot(rows, args)
    slowest = max(r["seconds"] for r in rows if "command_seconds" in r)  # pixelSplat's predictions
    print(f"one refinement step: {step:.2f} s (100 steps: {100 * step:.0f} s); slowest prediction {slowest:.1f} s")


def fused_suffix(args: Args, tolerance: float) -> str:
    """The fused variants' names carry their tolerance when several are compared."""
    return f" {tolerance:g}" if len(args.tolerances) > 1 else ""


def plot(rows: list[dict], args: Args) -> None:
    """Mean held-out PSNR and Gaussian count against N, fused and concatenated (1 pair is both)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def mean(variant: str, key: str) -> float:
        mine = [r[key] for r in rows if r["variant"] == variant]
        return sum(mine) / len(mine)

    counts = [1] + sorted(int(p) for p in args.pairs if p.isdigit())
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 4.0))
    kinds = [("concatenated", "concatenated", "s--")] + [
        (f"fused{fused_suffix(args, t)}", f"fused, tolerance {t:g}", "o-") for t in args.tolerances
    ]
    for kind, label, style in kinds:
        names = ["1 pair"] + [f"{n} {kind}" for n in counts[1:]]
        left.plot(counts, [mean(n, "psnr") for n in names], style, label=label)
        right.plot(counts, [mean(n, "gaussians") / 1000 for n in names], style, label=label)
    for factor, color in zip(args.splatfacto_factors, ("tab:red", "tab:purple", "tab:brown")):
        left.axhline(
            mean(splatfacto_name(factor), "psnr"),
            color=color,
            linestyle=":",
            label=f"splatfacto, random init, {factor:g}x the time",
        )
    left.set(xlabel="context pairs N", ylabel="held-out PSNR (dB)", xticks=counts)
    right.set(xlabel="context pairs N", ylabel="Gaussians (thousands)", xticks=counts)
    figure.legend(*left.get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=8)
    figure.suptitle(
        f"{len(args.seeds)} generated {args.frames}-view walks (seeds {', '.join(map(str, args.seeds))}), "
        f"feed-forward, {args.encoder.name if args.encoder else 'bundled encoder'}",
        fontsize=10,
    )
    figure.tight_layout(rect=(0, 0.14 if args.splatfacto_factors else 0.08, 1, 1))
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.plot, dpi=110)
    print(f"figure: {args.plot}")


if __name__ == "__main__":
    main(tyro.cli(Args))
