"""Forward/backward time and peak memory of the CPU rasterizer backends (pure torch and numba) side by side.

393,216 pixel-aligned Gaussians (2 context views x 256 x 256 x 3 per pixel, degree-3 SH) rendered into 1 and
4 target views of 256 x 256, on this machine's CPU; times are the whole ``rasterize`` call (projection, SH and
compositing: in torch for the torch backend, in numba kernels for the numba one) and the whole backward pass.
Each case runs in a fresh process so that its peak resident memory is its own. Also reports numba's first-call
compile time, without and with its disk cache.

Targets: numba forward <= 0.25x torch forward, numba backward <= 2x numba forward, peak memory <= 2 GB.

    python scripts/benchmarks/benchmark_render.py [--repeats 2] [--threads N] [--backends torch numba]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

from pixelsplat_ns.core.process_memory import peak_resident_bytes


def run_case(views: int, backend: str, repeats: int) -> dict:
    from pixelsplat_ns.render import rasterize
    from pixelsplat_ns.synthetic_gaussians import orbit_c2w, pixel_aligned_scene

    warm_up_s = None
    if backend == "numba":
        from pixelsplat_ns.fast_routes.numba_cache import warm_up

        warm_up_s = warm_up()  # compile or load the kernels before timing
    scene = pixel_aligned_scene(size=256, views=2, per_pixel=3)
    viewmats = torch.linalg.inv(orbit_c2w(scene, views))
    Ks = scene.K.expand(views, 3, 3)
    params = [t.clone().requires_grad_() for t in (scene.means, scene.quats, scene.scales, scene.opacities, scene.sh)]
    baseline_rss = peak_resident_bytes() / 2**30
    forward, backward = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        image, alpha, _ = rasterize(*params, viewmats, Ks, scene.width, scene.height, sh_degree=3, backend=backend)
        forward.append(time.perf_counter() - start)
        loss = (image * torch.rand_like(image)).sum() + alpha.sum()
        start = time.perf_counter()
        loss.backward()
        backward.append(time.perf_counter() - start)
        for p in params:
            p.grad = None
    return {
        "views": views,
        "backend": backend,
        "gaussians": scene.means.shape[0],
        "forward_s": min(forward),
        "backward_s": min(backward),
        "baseline_rss_gb": baseline_rss,
        "peak_rss_gb": peak_resident_bytes() / 2**30,
        "threads": torch.get_num_threads(),
        "warm_up_s": warm_up_s,
    }


def compile_seconds(cache_dir: str = None) -> float:
    """numba's first-call time in a fresh process: compiling (``cache_dir`` empty) or loading from a cache."""
    env = dict(os.environ, **({"NUMBA_CACHE_DIR": cache_dir} if cache_dir else {}))
    code = "from pixelsplat_ns.fast_routes.numba_cache import warm_up; print(warm_up())"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env)
    return float(out.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2, help="runs per case; the fastest is reported")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--backends", nargs="+", default=["torch", "numba"], choices=["torch", "numba"])
    parser.add_argument("--case", type=str, default=None, help=argparse.SUPPRESS)  # child process: views,backend
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.case is not None:
        views, backend = args.case.split(",")
        print(json.dumps(run_case(int(views), backend, args.repeats)))
        return

    if "numba" in args.backends:
        with tempfile.TemporaryDirectory() as empty:
            cold = compile_seconds(empty)
        compile_seconds()  # make sure the disk cache holds the kernels
        warm = compile_seconds()
        print(
            f"numba first call (float32 kernels, the encoder's included): {cold:.1f} s compiling, "
            f"{warm:.2f} s from the disk cache"
        )

    print(
        f"{'views':>5} {'backend':>7} {'forward s':>9} {'s/view':>7} {'backward s':>10} {'bwd/fwd':>7} "
        f"{'fwd/torch':>9} {'bwd/torch':>9} {'peak GB':>7} {'(before render)':>15}"
    )
    for views in (1, 4):
        results = {}
        for backend in args.backends:
            command = [sys.executable, __file__, "--case", f"{views},{backend}", "--repeats", str(args.repeats)]
            if args.threads:
                command += ["--threads", str(args.threads)]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            r = results[backend] = json.loads(out.splitlines()[-1])
            torch_r = results.get("torch")
            fwd_ratio = f"{r['forward_s'] / torch_r['forward_s']:.2f}" if torch_r else "-"
            bwd_ratio = f"{r['backward_s'] / torch_r['backward_s']:.2f}" if torch_r else "-"
            print(
                f"{views:>5} {backend:>7} {r['forward_s']:>9.3f} {r['forward_s'] / views:>7.3f} "
                f"{r['backward_s']:>10.3f} {r['backward_s'] / r['forward_s']:>7.2f} {fwd_ratio:>9} {bwd_ratio:>9} "
                f"{r['peak_rss_gb']:>7.2f} {r['baseline_rss_gb']:>15.2f}",
                flush=True,
            )
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; targets: numba "
        "forward <= 0.25x torch, numba backward <= 2x its forward, peak <= 2 GB"
    )


if __name__ == "__main__":
    main()
