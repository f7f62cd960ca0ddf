"""Encode time and peak memory of the paper-preset encoder at 2 x 256 x 256, on this machine.

Prints, per case: the encode time (fastest of --repeats), the official arithmetic (1,540 GFLOP at 256 x 256)
divided by that time, peak resident memory of a fresh process, and the machine's fp32 matmul rate
measured in the same run, through torch.matmul and through the oneDNN route of ``fast_routes.layers.linear``.
Cases: ours; ours with torch's default linear kernel; ours with the official straightforward arithmetic on
torch's default kernels (the original behaviour); and, given --official-repo and --dino-repo (checkouts of
dcharatan/pixelsplat and facebookresearch/dino), the official encoder itself, for ratios measured in one run.
Random weights: speed does not depend on them. On CUDA (when present) times are synchronized.

    python scripts/benchmarks/benchmark_encoder.py [--official-repo PATH --dino-repo PATH] [--repeats 2]
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from pixelsplat_ns.core.process_memory import peak_resident_bytes

OFFICIAL_GFLOP = 1540.0  # at 2 x 256 x 256: refinement convs 842, ViT-B/8 430, epipolar attention 143, ResNet 84


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run_case(case: str, size: int, repeats: int, device: str, official_repo, dino_repo) -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    from official_encoder import as_views, example_inputs, import_official, randomize_batch_norm

    torch.manual_seed(0)
    if case == "official":
        model = import_official(Path(official_repo), Path(dino_repo), 2)()
        randomize_batch_norm(model)
        model = model.eval().to(device)
    else:
        from pixelsplat_ns.encoder import ComputeOptions, PixelSplatEncoder, paper

        compute = ComputeOptions(exact_rewrites=case != "ours-straightforward", linear_as_convolution=case == "ours")
        model = PixelSplatEncoder(paper(), compute).eval().to(device)
    inputs = {k: v.to(device) for k, v in example_inputs(size, 2).items()}
    baseline = peak_resident_bytes() / 2**30
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            synchronize(device)
            start = time.perf_counter()
            if case == "official":
                model(inputs, 0, deterministic=False)
            else:
                model.encode(as_views(inputs))
            synchronize(device)
            times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else peak_resident_bytes() / 2**30
    return {"case": case, "seconds": min(times), "first_seconds": times[0], "peak_gb": peak, "baseline_gb": baseline}


def matmul_gflops(product, n: int = 4096, repeats: int = 3) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    product(a, b)
    best = min(_timed(lambda: product(a, b)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--official-repo", type=Path, default=None, help="checkout of dcharatan/pixelsplat")
    parser.add_argument("--dino-repo", type=Path, default=None, help="checkout of facebookresearch/dino")
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if (args.official_repo is None) != (args.dino_repo is None):
        parser.error("--official-repo and --dino-repo go together")
    if args.case:
        print(json.dumps(run_case(args.case, args.size, args.repeats, args.device, args.official_repo, args.dino_repo)))
        return

    cases = ["ours", "ours-torch-linear", "ours-straightforward"] + (["official"] if args.official_repo else [])
    results = {}
    for case in cases:
        command = [
            sys.executable,
            __file__,
            "--case",
            case,
            "--size",
            str(args.size),
            "--repeats",
            str(args.repeats),
            "--device",
            args.device,
        ]
        if args.official_repo:
            command += ["--official-repo", str(args.official_repo), "--dino-repo", str(args.dino_repo)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[case] = json.loads(output.strip().splitlines()[-1])
    from pixelsplat_ns.fast_routes.layers import linear

    rate = matmul_gflops(torch.matmul)
    onednn_rate = matmul_gflops(lambda a, b: linear(a, b, None))

    reference = results.get("official", {}).get("seconds")
    print(
        f"encoder at 2 x {args.size} x {args.size} on {args.device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; fp32 matmul {rate:.0f} GFLOP/s (torch.matmul), "
        f"{onednn_rate:.0f} GFLOP/s (fast_routes.layers.linear)"
    )
    print(f"{'case':<22} {'encode s':>9} {'first s':>8} {'GFLOP/s*':>9} {'peak GB':>8} {'vs official':>11}")
    for case, r in results.items():
        flops = OFFICIAL_GFLOP * (args.size / 256) ** 2 / r["seconds"]
        ratio = f"{r['seconds'] / reference:.2f}x" if reference else "-"
        print(
            f"{case:<22} {r['seconds']:>9.2f} {r['first_seconds']:>8.2f} {flops:>9.0f} {r['peak_gb']:>8.2f} {ratio:>11}"
        )
    print(
        "encode s: the fastest of --repeats; first s: the first call, which also prepares kernels (oneDNN's, and "
        "our composed kernel and kernel spectrum, kept while the weights are unchanged)."
    )
    print(
        "* the official arithmetic (1,540 GFLOP at 256 x 256) divided by the time. Targets: <= 0.45x the official "
        "time (give --official-repo to measure it side by side), <= 2.5 GB."
    )


if __name__ == "__main__":
    main()
