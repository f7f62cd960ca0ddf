"""Demo of what pixelsplat-ns runs today: the Gaussian renderer on a generated pixelSplat-like scene.

The per-scene pipeline (two photos -> pretrained encoder -> Gaussians -> nerfstudio) is not in this release
yet; until it is, this renders a procedurally generated scene of 393,216 pixel-aligned Gaussians (the size
pixelSplat predicts from two 256 x 256 views) along a small orbit with ``pixelsplat_ns.render.rasterize``,
and writes colour and depth images.

    python scripts/demo.py [--out outputs/demo] [--frames 8]
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pixelsplat_ns.render import rasterize
from pixelsplat_ns.synthetic_gaussians import orbit_c2w, pixel_aligned_scene


def to_png(image: torch.Tensor, path: Path) -> None:
    Image.fromarray((image.clamp(0, 1).numpy() * 255).round().astype(np.uint8)).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"), help="folder for the images")
    parser.add_argument("--frames", type=int, default=8, help="novel views along the orbit")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    print("pixelsplat-ns demo: the per-scene pipeline is not in this release yet, so this renders a generated")
    print("pixelSplat-like Gaussian scene with the project's renderer (pure torch on CPU, gsplat on CUDA).")
    scene = pixel_aligned_scene(size=256, views=2, per_pixel=3)
    viewmats = torch.linalg.inv(orbit_c2w(scene, args.frames))
    Ks = scene.K.expand(args.frames, 3, 3)
    start = time.perf_counter()
    with torch.no_grad():
        images, alphas, _ = rasterize(
            scene.means, scene.quats, scene.scales, scene.opacities, scene.sh, viewmats, Ks, scene.width,
            scene.height, sh_degree=3, render_mode="RGB+ED", backgrounds=torch.zeros(args.frames, 3),
        )
    seconds = time.perf_counter() - start
    depth = images[..., 3]
    covered = alphas[..., 0] > 0.5
    near, far = depth[covered].min(), depth[covered].max()
    for i in range(args.frames):
        to_png(images[i, ..., :3], args.out / f"color_{i:02d}.png")
        normalized = torch.where(covered[i], (depth[i] - near) / (far - near), torch.zeros_like(depth[i]))
        to_png(normalized[..., None].expand(-1, -1, 3), args.out / f"depth_{i:02d}.png")
    sheet = torch.cat([torch.cat(list(images[:, ..., :3]), dim=1), torch.cat(list(alphas.expand(-1, -1, -1, 3)), 1)])
    to_png(sheet, args.out / "contact_sheet.png")
    print(f"rendered {scene.means.shape[0]:,} Gaussians into {args.frames} views of {scene.width}x{scene.height} "
          f"in {seconds:.2f} s ({seconds / args.frames:.2f} s per view) on {images.device}")
    print(f"mean coverage {alphas.mean():.3f}; expected depth from {near:.2f} to {far:.2f}")
    print(f"images: {args.out.resolve()}/color_*.png, depth_*.png, contact_sheet.png")


if __name__ == "__main__":
    main()
