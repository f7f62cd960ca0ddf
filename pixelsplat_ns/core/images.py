"""Images as the user sees them: every file that enters the project is read here.

- EXIF orientation is applied first, so an image is the picture every image viewer shows, and its cameras
  (``transforms.json``, a cameras JSON, a chunk's cameras) describe that picture: its width, height and
  intrinsics are those of the image as displayed.
- Every Pillow mode becomes 8-bit RGB, or RGBA where the image has transparency, without losing the picture:
  16-bit and 32-bit integer grey are scaled to 8 bits (nerfstudio's own loader keeps the low byte, which turns
  detail into noise), palettes are expanded, CMYK and YCbCr converted. What cannot be shown faithfully in 8 bits
  (floating-point images outside [0, 1], colour spaces without a conversion) is refused with a reason.
"""

import io
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps

from pixelsplat_ns.core.errors import InputError

ORIENTATION = 0x0112
"""The EXIF tag: 1 is upright; 2-8 mirror and/or rotate the stored pixels for display."""
SWAPS_SIDES = {5, 6, 7, 8}
"""Orientations that turn the image by 90 degrees: the displayed width is the stored height."""
Source = Union[str, Path, bytes]


class ImageError(InputError):
    """An image that cannot be read, or not as the picture it shows."""


COMMON_PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".avif", ".tif", ".tiff", ".bmp", ".gif")
"""The formats named first in messages (photos come in these); ``readable_suffixes`` has the full list."""


def readable_suffixes() -> frozenset[str]:
    """The file suffixes (lower case, with the dot) that this installation's Pillow opens: what every door that
    picks image files by name accepts, the same set that ``open_image`` reads (AVIF where Pillow has it)."""
    Image.init()  # registers every plugin Pillow has; on first call only
    return frozenset(
        suffix for suffix, image_format in Image.registered_extensions().items() if image_format in Image.OPEN
    )


def _name(source: Source, name: str | None) -> str:
    return name or (str(source) if not isinstance(source, bytes) else "an image")


def unreadable(where: str, error: Exception) -> ImageError:
    """The error for a file that does not open as an image, with what to do about it."""
    if isinstance(error, FileNotFoundError):
        fix = "the file is missing: restore it, or correct or remove the frame that names it"
    else:
        fix = "save it again as PNG or JPEG, or remove the frame that names it"
    return ImageError(f"{where} is not a readable image ({type(error).__name__}: {error}): {fix}")


def open_image(source: Source, name: str | None = None) -> Image.Image:
    """The image at ``source`` (a path or the file's bytes) as displayed, fully loaded, in mode "RGB" or "RGBA"
    (8 bits per channel). Raises ``ImageError`` naming ``name`` (default: the path) for a file that is not a
    readable image, or whose pixels cannot be shown in 8 bits without losing them."""
    where = _name(source, name)
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise unreadable(where, error) from error
    return to_8bit(image, where)


def to_8bit(image: Image.Image, where: str) -> Image.Image:
    """``image`` in mode "RGB" or "RGBA", its picture kept (see the module's docstring)."""
    mode = image.mode
    if mode in ("RGB", "RGBA"):
        return image
    if mode in ("1", "L", "CMYK", "YCbCr"):
        return image.convert("RGB")
    if mode in ("LA", "La", "RGBa", "PA"):
        return image.convert("RGBA")
    if mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(image).astype(np.int64)
        if values.min() < 0 or values.max() > 65535:
            raise ImageError(
                f"{where}: a {mode} image with values from {values.min()} to {values.max()}, outside "
                "the 16-bit range: save it as 8- or 16-bit PNG"
            )
        return Image.fromarray(np.round(values / 257).astype(np.uint8), "L").convert("RGB")
    if mode == "F":
        values = np.asarray(image)
        if not (np.isfinite(values).all() and values.min() >= 0 and values.max() <= 1):
            raise ImageError(
                f"{where}: a floating-point image with values outside [0, 1] (from {values.min():g} to "
                f"{values.max():g}): save it as an 8- or 16-bit image"
            )
        return Image.fromarray(np.round(values * 255).astype(np.uint8), "L").convert("RGB")
    raise ImageError(f"{where}: image mode {mode} has no faithful 8-bit RGB conversion here: save it as RGB")


def displayed_size(path: Source, name: str | None = None) -> tuple[tuple[int, int], tuple[int, int], int]:
    """((width, height) as displayed, (width, height) as stored, EXIF orientation), from the file's header.
    Raises ``ImageError`` for a file that is not a readable image."""
    where = _name(path, name)
    try:
        with Image.open(io.BytesIO(path) if isinstance(path, bytes) else path) as image:
            stored = image.size
            orientation = int(image.getexif().get(ORIENTATION, 1))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise unreadable(where, error) from error
    displayed = stored[::-1] if orientation in SWAPS_SIDES else stored
    return displayed, stored, orientation
