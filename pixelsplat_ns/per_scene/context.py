"""The context views of a nerfstudio dataset: the checks that make the training cameras safe to use
(``check_cameras``), and the conversion of the chosen views to the encoder's ``Views`` (``context_views``,
with ``encoder_shape`` and ``to_pil``). Which views they are is chosen elsewhere: geometrically by
``context_groups``, once per run by ``context_plan``.

nerfstudio hands over camera-to-world matrices in OpenGL axes and pixel intrinsics, at whatever size the
images have. The images are resized to the encoder's input size here; the cameras are converted by
``pixelsplat_ns.core.conventions`` and the paper's input rules applied by ``prepare_views``. The Gaussians the
encoder predicts come back to the dataparser's frame by the returned scale (``Gaussians.scaled``).
"""

import math
from typing import Optional, Sequence, Union

import numpy as np
import torch
from jaxtyping import Float, UInt8
from PIL import Image
from torch import Tensor

from pixelsplat_ns.core.bounds import at_one_position
from pixelsplat_ns.core.conventions import from_nerfstudio
from pixelsplat_ns.core.crop import resize_and_crop
from pixelsplat_ns.core.errors import InputError
from pixelsplat_ns.core.views import DegenerateBaseline, Views, prepare_views
from pixelsplat_ns.encoder.config import paper, size_multiple

SIZE_MULTIPLE = size_multiple(paper())
"""What the encoder needs image sides to be multiples of, for the paper's and the tiny preset (16); the
pipeline passes its encoder's own."""


class ContextError(InputError):
    """Context views the encoder cannot use; the message says what is wrong and how to fix it."""


def encoder_shape(height: int, width: int, short_side: int, multiple: int = SIZE_MULTIPLE) -> tuple[int, int]:
    """Image size for the encoder: the shorter side becomes ``short_side``, the longer one keeps the aspect
    ratio rounded down to a multiple of ``multiple`` (the rest is cropped, centred)."""
    if short_side % multiple or short_side <= 0:
        raise ContextError(f"the context image side must be a positive multiple of {multiple}, got {short_side}")
    long_side = max(multiple, math.floor(max(height, width) * short_side / min(height, width) / multiple) * multiple)
    return (short_side, long_side) if height <= width else (long_side, short_side)


def check_cameras(
    camera_to_worlds: Float[Tensor, "n 3 4"],
    camera_types: Sequence[str],
    names: Sequence[str],
    total: Optional[int] = None,
) -> None:
    """Refuse sets of training cameras the encoder cannot use, naming the frames at fault; ``total`` is the
    number of images in the dataset, the eval split's included (default: only these)."""
    if len(names) < 2:
        total = len(names) if total is None else total
        fix = (
            "add views"
            if total < 2
            else f"the dataset has {total} images, the others are held out for "
            "evaluation: train on every image (nerfstudio-data: end the command with `nerfstudio-data "
            "--eval-mode all`)"
        )
        raise ContextError(f"pixelsplat needs at least two training images, found {len(names)}: {fix}")
    bad = [name for name, c2w in zip(names, camera_to_worlds) if not torch.isfinite(c2w).all()]
    if bad:
        raise ContextError(
            f"{len(bad)} camera pose(s) contain NaN or infinite values after parsing, e.g. "
            f"{', '.join(bad[:5])}: fix the poses in the dataset (nerfstudio's auto-orientation "
            "spreads a bad pose to every camera, so look for the one bad transform_matrix)"
        )
    origins = camera_to_worlds[:, :3, 3].double()
    if at_one_position(float(torch.cdist(origins, origins).max()), origins):
        raise ContextError(
            f"all {len(names)} training views are taken from the same position: pixelSplat needs two "
            "views from different positions (check that the poses are not all the same matrix)"
        )
    not_pinhole = sorted({t for t in camera_types if t != "PERSPECTIVE"})
    if not_pinhole:
        raise ContextError(
            f"pixelsplat needs pinhole (perspective) cameras; this dataset has {', '.join(not_pinhole)}: "
            "undistort the images first (e.g. COLMAP's image_undistorter) and give pinhole intrinsics"
        )


def to_pil(
    image: Union[Float[Tensor, "h w c"], UInt8[Tensor, "h w c"]], background: Float[Tensor, " 3"]
) -> Image.Image:
    """A nerfstudio image (float in [0, 1] or uint8, RGB or RGBA) as an 8-bit RGB image, alpha composited
    onto ``background`` (pixelSplat's is black)."""
    if image.dtype == torch.uint8:
        image = image.float() / 255
    rgb = image[..., :3]
    if image.shape[-1] == 4:
        rgb = rgb * image[..., 3:] + (1 - image[..., 3:]) * background.to(image)
    pixels = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(pixels))


def context_views(
    images: Sequence[Union[Float[Tensor, "_h _w c"], UInt8[Tensor, "_h _w c"]]],  # each view at its own size
    camera_to_worlds: Float[Tensor, "v 3 4"],
    intrinsics: Float[Tensor, "v 3 3"],
    short_side: int,
    background: Optional[Float[Tensor, " 3"]] = None,
    names: Optional[Sequence[str]] = None,
    multiple: int = SIZE_MULTIPLE,
) -> tuple[Views, float]:
    """The encoder's context (a batch of one scene) from views as nerfstudio has them (OpenGL camera-to-world,
    pixel intrinsics for each image's own size), and the scale back to the dataparser's frame.

    Each image is composited onto ``background``, resized so that its shorter side is ``short_side`` and
    centre-cropped to multiples of ``multiple`` (``encoder_shape``), with the intrinsics following exactly
    (off-centre principal points and non-square pixels included); ``prepare_views`` then scales the scene so
    that the context baseline is 1. Raises ``ContextError`` for views of different sizes or at one position."""
    names = names or [f"view {i}" for i in range(len(images))]
    sizes = {(int(image.shape[0]), int(image.shape[1])) for image in images}
    if len(sizes) != 1:
        listed = ", ".join(f"{name}: {image.shape[1]}x{image.shape[0]}" for name, image in zip(names, images))
        raise ContextError(
            f"the context views have different sizes ({listed}); pixelSplat encodes views of one "
            "size: give the images one size, or choose other views (--pipeline.datamanager."
            "context-views for one pair, another --pipeline.datamanager.context-pairs N for several)"
        )
    ((height, width),) = sizes
    shape = encoder_shape(height, width, short_side, multiple)
    background = torch.zeros(3) if background is None else background
    extrinsics, normalized = from_nerfstudio(camera_to_worlds.float(), intrinsics.float(), width, height)
    resized, cropped = zip(
        *(
            resize_and_crop(to_pil(image, background), k, shape, crop_intrinsics="exact")
            for image, k in zip(images, normalized)
        )
    )
    try:
        views, scale = prepare_views(torch.stack(resized), extrinsics, torch.stack(cropped), range(len(images)))
    except DegenerateBaseline as error:
        raise ContextError(
            f"the context views {', '.join(names)} are taken from the same position (baseline "
            f"{error.baseline:.3g}): "
            "pixelSplat needs two views from different positions; choose others with "
            "--pipeline.datamanager.context-views I J"
        ) from error
    return views.batched(), scale
