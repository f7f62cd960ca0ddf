"""Forward/backward time and peak memory of the pure-torch rasterizer at pixelSplat's scale.

393,216 pixel-aligned Gaussians (2 context views x 256 x 256 x 3 per pixel, degree-3 SH) rendered into 1 and
4 target views of 256 x 256, on this machine's CPU. Each case runs in a fresh process so that its peak
resident memory is its own. Targets: forward <= 1.5 s per view, backward <= 3x forward, peak memory <= 4 GB.

    python scripts/benchmark_render.py [--repeats 3] [--threads N]
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import torch


def run_case(views: int, repeats: int) -> dict:
    from pixelsplat_ns.render import rasterize
    from pixelsplat_ns.synthetic_gaussians import orbit_c2w, pixel_aligned_scene

    scene = pixel_aligned_scene(size=256, views=2, per_pixel=3)
    viewmats = torch.linalg.inv(orbit_c2w(scene, views))
    Ks = scene.K.expand(views, 3, 3)
    params = [t.clone().requires_grad_() for t in (scene.means, scene.quats, scene.scales, scene.opacities, scene.sh)]
    baseline_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    forward, backward = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        image, alpha, _ = rasterize(*params, viewmats, Ks, scene.width, scene.height, sh_degree=3)
        forward.append(time.perf_counter() - start)
        loss = (image * torch.rand_like(image)).sum() + alpha.sum()
        start = time.perf_counter()
        loss.backward()
        backward.append(time.perf_counter() - start)
        for p in params:
            p.grad = None
    return {
        "views": views,
        "gaussians": scene.means.shape[0],
        "forward_s": min(forward),
        "backward_s": min(backward),
        "baseline_rss_gb": baseline_rss,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs per case; the fastest is reported")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--case", type=int, default=None, help=argparse.SUPPRESS)  # child process: views
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.case is not None:
        print(json.dumps(run_case(args.case, args.repeats)))
        return

    print(f"{'views':>5} {'gaussians':>9} {'forward s':>9} {'s/view':>7} {'backward s':>10} {'bwd/fwd':>7} "
          f"{'peak GB':>7} {'(before render)':>15}")
    for views in (1, 4):
        command = [sys.executable, __file__, "--case", str(views), "--repeats", str(args.repeats)]
        if args.threads:
            command += ["--threads", str(args.threads)]
        r = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        print(f"{r['views']:>5} {r['gaussians']:>9} {r['forward_s']:>9.3f} {r['forward_s'] / views:>7.3f} "
              f"{r['backward_s']:>10.3f} {r['backward_s'] / r['forward_s']:>7.2f} {r['peak_rss_gb']:>7.2f} "
              f"{r['baseline_rss_gb']:>15.2f}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; targets: <= 1.5 s/view forward, "
          "backward <= 3x forward, peak <= 4 GB")


if __name__ == "__main__":
    main()
