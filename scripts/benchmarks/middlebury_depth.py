"""Feed-forward depth on a real photograph pair against its ground truth.

Middlebury 2014's motorcycle (shipped with scikit-image as ``data.stereo_motorcycle()``: 741 x 500, f = 994.978
px, left cx = 311.193 px, right cx = left + doffs 31.086 px, cy = 254.877 px, baseline 0.193001 m, ground-truth
disparity of the left view). The encoder predicts the scene from the two photos, once with the calibrated
cameras and once with the cameras ``pixelsplat-process-data pair`` finds from the pixels (baseline 1, scaled
to metres by the known baseline); the expected depth ("ED") is rendered at the left view at full resolution and
compared with the ground-truth depth ``baseline * f / (disparity + doffs)`` where it is known.

    .venv/bin/python scripts/benchmarks/middlebury_depth.py [--encoder PATH] [--short-sides 64 144 256]

Prints, for each camera source and encoder input size: AbsRel (mean |d - d*| / d*), median relative error,
delta < 1.25 (share of pixels within 25%), the correlation of predicted with true depth, and the share of
known pixels the splat covers; and, as a yardstick, the errors of a flat wall at the median true depth.
"""

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import tyro
from PIL import Image
from skimage import data as skimage_data

from pixelsplat_ns.checkpoints import BUNDLED_TINY_ENCODER, build_encoder, read_encoder
from pixelsplat_ns.core.conventions import convert_c2w_opengl_opencv, normalize_intrinsics
from pixelsplat_ns.per_scene.context import context_views, encoder_shape
from pixelsplat_ns.process_data.pair import pair_cameras, read_pair
from pixelsplat_ns.render import render_views

FOCAL_PX = 994.978
LEFT_CX, CY, DOFFS = 311.193, 254.877, 31.086
BASELINE_M = 0.193001


@dataclass
class Args:
    encoder: Optional[Path] = None
    """Encoder checkpoint (default: the bundled one)."""
    short_sides: list[int] = field(default_factory=lambda: [64, 144, 256])
    """Shorter side of the encoder's input (the per-scene flag --pipeline.model.context-short-side; the
    default there is the side the encoder was trained at)."""
    seed: int = 0


def calibrated_cameras() -> tuple[torch.Tensor, torch.Tensor]:
    """Camera-to-world (OpenCV axes) and pixel intrinsics of the left and right views, in metres."""
    c2w = torch.eye(4).repeat(2, 1, 1)
    c2w[1, 0, 3] = BASELINE_M  # the right camera sits along +x, not turned (rectified)
    intrinsics = torch.tensor([[[FOCAL_PX, 0, cx], [0, FOCAL_PX, CY], [0, 0, 1]] for cx in (LEFT_CX, LEFT_CX + DOFFS)])
    return c2w, intrinsics.float()


def estimated_cameras(left: np.ndarray, right: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The pair command's cameras, the baseline scaled from 1 to metres."""
    with tempfile.TemporaryDirectory() as folder:
        for name, pixels in (("left.png", left), ("right.png", right)):
            Image.fromarray(pixels).save(Path(folder) / name)
        cameras = pair_cameras(read_pair(Path(folder)))
    c2w = torch.from_numpy(cameras.camera_to_worlds()).float()
    c2w[:, :3, 3] *= BASELINE_M  # the pair command's baseline is 1
    k = torch.from_numpy(cameras.intrinsics()).float()
    source = cameras.focal_source.split(" (")[0]
    return c2w, k.repeat(2, 1, 1), f"focal {cameras.focal_px:.1f} px, {source}"


def left_view_depth(encoder, images, c2w, intrinsics, short_side: int, seed: int) -> np.ndarray:
    """Expected depth rendered at the left view at the photo's size (NaN where nothing is drawn)."""
    height, width = images[0].shape[:2]
    # context_views takes cameras as nerfstudio has them (OpenGL camera-to-world), as the per-scene method does
    context, scale = context_views(
        images, convert_c2w_opengl_opencv(c2w)[:, :3], intrinsics, short_side, multiple=encoder.size_multiple
    )
    with torch.no_grad():
        gaussians = encoder.encode(context, False, torch.Generator().manual_seed(seed)).scaled(scale)
        depth, alpha, _ = render_views(
            gaussians.means[0],
            None,
            None,
            gaussians.opacities[0],
            torch.zeros_like(gaussians.means[0]),
            c2w[:1],
            normalize_intrinsics(intrinsics[:1], width, height),
            width,
            height,
            near_plane=1e-3 * BASELINE_M,
            covars=gaussians.covariances[0],
            render_mode="ED",
        )
    depth, alpha = depth[0, ..., 0].numpy(), alpha[0, ..., 0].numpy()
    return np.where(alpha > 0.5, depth, np.nan)


def errors(depth: np.ndarray, truth: np.ndarray) -> dict:
    known = np.isfinite(truth)
    drawn = known & np.isfinite(depth)
    relative = np.abs(depth[drawn] - truth[drawn]) / truth[drawn]
    ratio = np.maximum(depth[drawn] / truth[drawn], truth[drawn] / depth[drawn])
    return {
        "abs_rel": relative.mean(),
        "median_rel": np.median(relative),
        "delta_1.25": (ratio < 1.25).mean(),
        "correlation": np.corrcoef(depth[drawn], truth[drawn])[0, 1],
        "covered": drawn.sum() / known.sum(),
    }


def main(args: Args) -> None:
    left, right, disparity = skimage_data.stereo_motorcycle()
    truth = np.where(np.isfinite(disparity), BASELINE_M * FOCAL_PX / (disparity + DOFFS), np.nan)
    images = [torch.from_numpy(pixels).float() / 255 for pixels in (left, right)]
    encoder_file = read_encoder(args.encoder or BUNDLED_TINY_ENCODER)
    config, state_dict, trained_shape = encoder_file.config, encoder_file.state_dict, encoder_file.image_shape
    encoder = build_encoder(config, state_dict, "cpu")
    print(
        f"encoder {args.encoder or 'bundled'} (trained at {trained_shape[0]}x{trained_shape[1]}); ground-truth "
        f"depth {np.nanmin(truth):.2f}-{np.nanmax(truth):.2f} m on {np.isfinite(truth).mean():.0%} of the pixels"
    )
    c2w_estimated, k_estimated, how = estimated_cameras(left, right)
    sources = {"calibrated": calibrated_cameras(), f"estimated, {how}": (c2w_estimated, k_estimated)}
    print("| cameras | encoder input | AbsRel | median rel. error | delta < 1.25 | correlation | covered |")
    print("|---|---|---|---|---|---|---|")
    for name, (c2w, intrinsics) in sources.items():
        for short_side in args.short_sides:
            depth = left_view_depth(encoder, images, c2w, intrinsics, short_side, args.seed)
            shape = "x".join(str(s) for s in encoder_shape(*left.shape[:2], short_side, encoder.size_multiple))
            e = errors(depth, truth)
            print(
                f"| {name} | {shape} | {e['abs_rel']:.3f} | {e['median_rel']:.3f} | {e['delta_1.25']:.3f} | "
                f"{e['correlation']:.2f} | {e['covered']:.1%} |"
            )
    with np.errstate(invalid="ignore"):  # a yardstick that knows nothing of the shape (its correlation is undefined)
        flat = errors(np.full_like(truth, np.nanmedian(truth)), truth)
    print(
        f"(a flat wall at the median true depth: AbsRel {flat['abs_rel']:.3f}, median {flat['median_rel']:.3f}, "
        f"delta < 1.25 {flat['delta_1.25']:.3f})"
    )


def entrypoint() -> None:
    main(tyro.cli(Args))


if __name__ == "__main__":
    entrypoint()
