"""Frames of RealEstate10k / ACID chunks: JPEG bytes <-> images."""

import io

import numpy as np
import torch
from jaxtyping import UInt8
from PIL import Image
from torch import Tensor


class FrameDecodeError(ValueError):
    """A frame whose bytes are not a readable image."""


def decode_frame(data: UInt8[Tensor, " bytes"]) -> Image.Image:
    """Decode one frame's JPEG bytes to an RGB image (fully loaded, so truncation is caught here)."""
    try:
        with Image.open(io.BytesIO(data.numpy().tobytes())) as image:
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise FrameDecodeError(f"cannot decode frame ({type(error).__name__}: {error})") from error


def encode_jpeg(image: Image.Image | np.ndarray, quality: int = 95) -> UInt8[Tensor, " bytes"]:
    """Encode an RGB image as JPEG bytes in the chunk layout (a flat uint8 tensor)."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)
