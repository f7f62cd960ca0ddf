"""Frames of RealEstate10k / ACID chunks: JPEG bytes <-> images."""

import io

import numpy as np
import torch
from jaxtyping import UInt8
from PIL import Image
from torch import Tensor

from pixelsplat_ns.core.errors import InputError
from pixelsplat_ns.core.images import ImageError, open_image


class FrameDecodeError(InputError):
    """A frame whose bytes are not a readable image."""


def decode_frame(data: UInt8[Tensor, " bytes"]) -> Image.Image:
    """Decode one frame's bytes to an RGB image as displayed (``pixelsplat_ns.core.images``; fully loaded, so that
    truncation is caught here)."""
    try:
        return open_image(data.numpy().tobytes(), "frame").convert("RGB")
    except ImageError as error:
        raise FrameDecodeError(f"cannot decode frame ({error})") from error


def encode_jpeg(image: Image.Image | np.ndarray, quality: int = 95) -> UInt8[Tensor, " bytes"]:
    """Encode an RGB image as JPEG bytes in the chunk layout (a flat uint8 tensor)."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)
