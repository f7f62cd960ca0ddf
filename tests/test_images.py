"""Every image a user may hand in reaches the encoder as the picture the user sees, or is refused with a
reason: EXIF orientation, 8/16/32-bit, grey, RGB, RGBA, palettes, CMYK, floating point."""

import io

import numpy as np
import pytest
from PIL import Image

from pixelsplat_ns.core.images import ImageError, displayed_size, open_image


def picture(height=12, width=20) -> np.ndarray:
    """An 8-bit grey gradient with detail in every value."""
    return (np.arange(height * width).reshape(height, width) * 7 % 256).astype(np.uint8)


def saved(image: Image.Image, format_="PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format_, **options)
    return buffer.getvalue()


def grey_of(image: Image.Image) -> np.ndarray:
    rgb = np.asarray(image)
    assert image.mode == "RGB" and (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    return rgb[..., 0]


def test_16_bit_grey_keeps_its_picture_where_nerfstudio_would_keep_the_low_byte():
    grey = picture()
    wide = grey.astype(np.uint16) * 256 + 100  # detail in the low byte, as a real 16-bit capture has
    data = saved(Image.fromarray(wide))
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    low_byte = np.array(Image.open(io.BytesIO(data)), dtype="uint8")  # what nerfstudio's reader makes of it
    assert np.abs(low_byte.astype(int) - grey).max() > 100, "the reproduction: the low byte is noise"
    assert np.abs(grey_of(open_image(data)).astype(int) - grey).max() <= 1


@pytest.mark.parametrize("mode", ["1", "L", "I", "F"])
def test_grey_modes(mode):
    grey = picture()
    if mode == "1":
        image, expected = Image.fromarray(grey > 127).convert("1"), np.where(grey > 127, 255, 0)
    elif mode == "L":
        image, expected = Image.fromarray(grey), grey
    elif mode == "I":
        image, expected = Image.fromarray(grey.astype(np.int32) * 257, "I"), grey
    else:
        image, expected = Image.fromarray(grey.astype(np.float32) / 255, "F"), grey
    assert np.abs(grey_of(open_image(saved(image, "TIFF"))).astype(int) - expected).max() <= 1


def test_colour_modes_and_transparency():
    rgb = np.stack([picture(), picture()[::-1], 255 - picture()], -1)
    assert np.array_equal(np.asarray(open_image(saved(Image.fromarray(rgb)))), rgb)
    rgba = np.concatenate([rgb, picture()[..., None]], -1)
    opened = open_image(saved(Image.fromarray(rgba, "RGBA")))
    assert opened.mode == "RGBA" and np.array_equal(np.asarray(opened), rgba)
    palette = Image.fromarray(rgb).quantize(16)
    assert np.array_equal(np.asarray(open_image(saved(palette))), np.asarray(palette.convert("RGB")))
    palette.info["transparency"] = 0
    assert open_image(saved(palette, transparency=0)).mode == "RGBA"
    cmyk = Image.fromarray(rgb).convert("CMYK")
    assert np.abs(np.asarray(open_image(saved(cmyk, "TIFF"))).astype(int) - np.asarray(cmyk.convert("RGB"))).max() == 0


def test_exif_orientation_is_applied_first():
    grey = picture(10, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = saved(Image.fromarray(grey), "JPEG", exif=exif, quality=100)
    opened = open_image(data)
    assert opened.size == (10, 30)
    assert np.abs(grey_of(opened).astype(int) - np.rot90(grey, -1)).mean() < 3
    assert displayed_size(data) == ((10, 30), (30, 10), 6)


def test_what_cannot_be_shown_is_refused_with_a_reason():
    with pytest.raises(ImageError, match="not a readable image"):
        open_image(b"not an image", "notes.png")
    with pytest.raises(ImageError, match=r"values outside \[0, 1\]"):
        open_image(saved(Image.fromarray(np.full((4, 4), 7.5, np.float32), "F"), "TIFF"))
    with pytest.raises(ImageError, match="outside the 16-bit range"):
        open_image(saved(Image.fromarray(np.full((4, 4), 100000, np.int32), "I"), "TIFF"))


def test_a_missing_or_unreadable_file_says_what_to_do(tmp_path):
    """From a new user's trial: a frame whose image file was deleted named the file but gave no way forward."""
    for read in (open_image, displayed_size):
        with pytest.raises(
            ImageError, match=r"frame_00004.jpg is not a readable image .*: the file is missing: restore"
        ):
            read(tmp_path / "frame_00004.jpg", "frame_00004.jpg")
        (tmp_path / "notes.jpg").write_text("not an image")
        with pytest.raises(ImageError, match=r"notes.jpg is not a readable image .*: save it again as PNG or JPEG"):
            read(tmp_path / "notes.jpg", "notes.jpg")
