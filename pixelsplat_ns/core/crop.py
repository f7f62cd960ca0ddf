"""The crop shim: an image resized and centre-cropped to the encoder's input size, the intrinsics following.

Used wherever images reach the encoder: chunk frames (``pixelsplat_ns.data``) and the per-scene method's
context views. Intrinsics are normalized (``pixelsplat_ns.core.conventions``).
"""

from typing import Literal

import numpy as np
import torch
from einops import rearrange
from jaxtyping import Float
from PIL import Image
from torch import Tensor

CropIntrinsics = Literal["exact", "official"]


def resize_and_crop(
    frame: Image.Image,
    intrinsics: Float[Tensor, "3 3"],
    shape: tuple[int, int],
    crop_intrinsics: CropIntrinsics = "exact",
) -> tuple[Float[Tensor, "3 height width"], Float[Tensor, "3 3"]]:
    """Scale the frame (PIL LANCZOS) so that it covers ``shape`` (for a square target: the shorter side
    becomes the target), then centre-crop, as the official crop shim does.

    Normalized intrinsics do not change under resizing (PIL maps image border to image border). The crop
    scales fx, fy by scaled / cropped size and moves the principal point: ``cx' = (cx * w_scaled - col) /
    w_out``. ``crop_intrinsics="official"`` keeps cx, cy as they are, which is what the official code does:
    it equals "exact" when the principal point is centred and the crop margin is even; with an odd margin
    (360x640 -> 256x256 scales to 256x455, margin 199) the official cx is half a pixel off, and for an
    off-centre principal point it is off by ``(cx - 0.5) * (w_scaled - w_out)`` pixels.
    """
    h_out, w_out = shape
    w_in, h_in = frame.size
    scale = max(h_out / h_in, w_out / w_in)
    h_scaled, w_scaled = round(h_in * scale), round(w_in * scale)
    if (h_scaled, w_scaled) != (h_in, w_in):
        frame = frame.resize((w_scaled, h_scaled), Image.Resampling.LANCZOS)
    row, col = (h_scaled - h_out) // 2, (w_scaled - w_out) // 2
    pixels = np.asarray(frame)[row : row + h_out, col : col + w_out] / 255.0  # float64, as the official code
    image = rearrange(torch.from_numpy(pixels).float(), "h w c -> c h w")

    intrinsics = intrinsics.clone()
    intrinsics[0, 0] *= w_scaled / w_out
    intrinsics[1, 1] *= h_scaled / h_out
    if crop_intrinsics == "exact":
        intrinsics[0, 1] *= w_scaled / w_out
        intrinsics[0, 2] = (intrinsics[0, 2] * w_scaled - col) / w_out
        intrinsics[1, 2] = (intrinsics[1, 2] * h_scaled - row) / h_out
    return image, intrinsics
