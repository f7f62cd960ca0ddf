"""The assembled pixelSplat encoder: context images and cameras in, world-space Gaussians out."""

import math
from typing import Optional, cast

import torch
import torch.nn.functional as F
from einops import rearrange
from jaxtyping import Float
from torch import Tensor, nn

from pixelsplat_ns.core.devices import check_device
from pixelsplat_ns.core.gaussians import Gaussians
from pixelsplat_ns.core.geometry import image_grid
from pixelsplat_ns.core.views import Views, image_range, image_range_error
from pixelsplat_ns.encoder.backbone import Backbone
from pixelsplat_ns.encoder.compute import ComputeOptions
from pixelsplat_ns.encoder.config import EncoderConfig, size_multiple
from pixelsplat_ns.encoder.depth import DepthPredictor
from pixelsplat_ns.encoder.epipolar import EpipolarTransformer
from pixelsplat_ns.encoder.gaussian_adapter import to_gaussians
from pixelsplat_ns.encoder.random_draws import Generators
from pixelsplat_ns.fast_routes.layers import Linear
from pixelsplat_ns.render.spherical_harmonics import num_sh_bases


class BackboneProjection(nn.Sequential):
    """ReLU, then Linear from the backbone's channels to the feature width (official ``backbone_projection``),
    applied per pixel as a 1x1 convolution: the same map without moving the largest tensor of the encoder,
    a full-resolution 512-channel map, to channels-last and back. The ReLU runs in place on it."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__(nn.ReLU(), nn.Linear(d_in, d_out))  # the official parameter names

    def forward(self, features: Float[Tensor, "n c h w"]) -> Float[Tensor, "n d h w"]:
        linear = cast(nn.Linear, self[1])  # indexing an nn.Sequential gives an untyped module
        return F.conv2d(torch.relu_(features), linear.weight[:, :, None, None], linear.bias)


class PixelSplatEncoder(nn.Module):
    """pixelSplat's encoder (paper, section 3; official ``src/model/encoder/encoder_epipolar.py``): backbone,
    epipolar transformer, depth distribution and Gaussian adapter. Build it from a configuration
    (``paper()``, ``tiny()``) or load trained weights with ``pixelsplat_ns.load_encoder``. ``compute`` says how
    it computes (``ComputeOptions``, the same function with other arithmetic; None: the defaults);
    ``set_compute_options`` changes it on a built encoder."""

    def __init__(self, config: EncoderConfig, compute: Optional[ComputeOptions] = None) -> None:
        super().__init__()
        self.config = config
        d = config.d_feature
        self.backbone = Backbone(config.backbone)
        self.backbone_projection = BackboneProjection(config.backbone.d_out, d)
        self.epipolar_transformer = (
            EpipolarTransformer(config.epipolar, d, config.num_context_views, config.architecture)
            if config.use_epipolar_transformer
            else None
        )
        self.high_resolution_skip = nn.Sequential(nn.Conv2d(3, d, 7, 1, 3), nn.ReLU())
        self.depth_predictor = DepthPredictor(d, config.num_depth_bins)
        self.to_gaussians = nn.Sequential(nn.ReLU(), Linear(d, 2 + 7 + 3 * num_sh_bases(config.sh_degree)))
        self.set_compute_options(compute or ComputeOptions())

    def set_compute_options(self, compute: ComputeOptions) -> None:
        """Compute with ``compute`` from now on: ``exact_rewrites`` is read by every ``encode``,
        ``linear_as_convolution`` is applied to the linear layers here. The weights are left as they are."""
        if not isinstance(compute, ComputeOptions):
            raise TypeError(
                f"compute options must be ComputeOptions (pixelsplat_ns.encoder.compute), got {type(compute).__name__}"
            )
        self.compute_options = compute
        for module in self.modules():
            if isinstance(module, Linear):
                module.via_convolution = compute.linear_as_convolution

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this (``pixelsplat_ns.encoder.config.size_multiple``)."""
        return size_multiple(self.config)

    def encode(
        self,
        context: Views,
        deterministic: bool = False,
        generator: Generators = None,
    ) -> Gaussians:
        """The Gaussians of a batch of scenes, predicted from their context views (paper, section 3).

        ``context`` is a batch of views made by ``prepare_views`` (``pixelsplat_ns.core.views``): images
        ``[b, v, 3, h, w]`` in [0, 1] with h and w multiples of ``size_multiple``, camera-to-world extrinsics in
        OpenCV axes with the context baseline 1, normalized intrinsics, near and far per view. The Gaussians
        are in the frame of those extrinsics, ordered (view, pixel row-major, sample).

        Stochastic mode (the default, as in training and the paper's evaluation) draws ``gaussians_per_pixel``
        depth bins per pixel from the predicted distribution, with ``generator`` (one for the batch, or one per
        example: ``encoder.random_draws``); ``deterministic`` takes each
        pixel's most likely bin (one Gaussian per pixel). Opacities are divided by ``gaussians_per_pixel`` in
        both modes, as the official code does. Raises ``ValueError`` saying what is wrong with the input: every
        rule is checked here, the values included (``encode_prepared`` leaves out what ``prepare_views`` checked).
        """
        self._check_inputs(context)
        return self._predict(context, deterministic, generator)

    forward = encode

    def encode_prepared(
        self,
        context: Views,
        deterministic: bool = False,
        generator: Generators = None,
    ) -> Gaussians:
        """``encode`` for context views made by ``prepare_views`` and since only batched, moved, selected or
        mirrored (as the library's datasets, evaluation and per-scene method do): the values ``prepare_views``
        checked (context images finite and in [0, 1], cameras finite) are not read again. Their shapes and
        dtypes, what this encoder takes (view count, image size) and near/far are still checked, with
        ``encode``'s errors. Views made any other way go through ``encode``.
        """
        self._check_layout(context)
        self._check_depth_range(context.near, context.far)
        return self._predict(context, deterministic, generator)

    def _predict(self, context: Views, deterministic: bool, generator: Generators) -> Gaussians:
        images, extrinsics, intrinsics = context.images, context.extrinsics, context.intrinsics
        b, v, _, h, w = images.shape
        flat_images = rearrange(images, "b v c h w -> (b v) c h w").contiguous(memory_format=torch.channels_last)
        exact_rewrites = self.compute_options.exact_rewrites
        backbone = self.backbone(flat_images, fused=exact_rewrites)
        features = rearrange(self.backbone_projection(backbone), "(b v) c h w -> b v c h w", b=b)
        if self.epipolar_transformer is not None:
            features = self.epipolar_transformer(
                features, extrinsics, intrinsics, context.near, context.far, exact_rewrites, generator
            )
        features = features + rearrange(self.high_resolution_skip(flat_images), "(b v) c h w -> b v c h w", b=b)
        features = rearrange(features, "b v c h w -> b v (h w) c")

        samples = 1 if deterministic else self.config.gaussians_per_pixel
        depths, probabilities = self.depth_predictor(
            features, context.near, context.far, samples, deterministic, generator
        )
        opacities = probabilities
        if self.config.opacity_divided_by_gaussians_per_pixel:
            opacities = opacities / self.config.gaussians_per_pixel
        return to_gaussians(
            self.to_gaussians(features),
            depths,
            opacities,
            extrinsics,
            intrinsics,
            rearrange(image_grid(h, w, images.device, images.dtype), "h w xy -> (h w) xy"),
            (h, w),
            (self.config.scale_min, self.config.scale_max),
            self.config.sh_degree,
            self.config.sh_rotation,
            self.config.sh_coefficient_14,
        )

    def _check_inputs(self, context: Views) -> None:
        """Every rule of ``encode``'s input: the layout, then the values (one pass over the images)."""
        self._check_layout(context)
        images, extrinsics, intrinsics, near, far = context[:5]
        low, high = image_range(images)  # NaN and infinities show in the extremes
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError("images contains NaN or infinite values")
        for name, tensor in (("extrinsics", extrinsics), ("intrinsics", intrinsics)):
            if not bool(torch.isfinite(tensor).all()):
                raise ValueError(f"{name} contains NaN or infinite values")
        self._check_depth_range(near, far)
        problem = image_range_error(low, high)
        if problem is not None:
            raise ValueError(problem)

    @staticmethod
    def _check_depth_range(near: Tensor, far: Tensor) -> None:
        for name, tensor in (("near", near), ("far", far)):
            if not bool(torch.isfinite(tensor).all()):
                raise ValueError(f"{name} contains NaN or infinite values")
        if bool((near <= 0).any() or (far <= near).any()):
            raise ValueError("need 0 < near < far for every view")

    def _check_layout(self, context: Views) -> None:
        """Types, shapes and dtypes, the view count and the image size: nothing that reads the tensors' data."""
        if not isinstance(context, Views):
            raise TypeError(
                f"encode takes the context as Views (pixelsplat_ns.core.views), got {type(context).__name__}"
            )
        images, extrinsics, intrinsics, near, far = context[:5]
        if images.dim() != 5 or images.shape[2] != 3:
            raise ValueError(f"images must have shape [B, V, 3, H, W], got {list(images.shape)}")
        b, v, _, h, w = images.shape
        if b == 0 or h == 0 or w == 0:
            raise ValueError(f"images must not be empty, got shape {list(images.shape)}")
        check_device(images.device)
        named = (
            ("images", images),
            ("extrinsics", extrinsics),
            ("intrinsics", intrinsics),
            ("near", near),
            ("far", far),
        )
        parameter = next(self.parameters())
        for name, tensor in named:
            if tensor.dtype != parameter.dtype:
                raise ValueError(
                    f"{name} are {tensor.dtype} but the encoder's weights are {parameter.dtype}: convert one to the "
                    f"other (e.g. views.to({parameter.dtype}) or encoder.to({tensor.dtype}))"
                    if tensor.is_floating_point()
                    else f"{name} must be floating point ({parameter.dtype}), got {tensor.dtype}"
                    + (": divide 8-bit images by 255" if name == "images" else "")
                )
        if v < 2:
            raise ValueError(f"pixelSplat needs at least 2 context views, got {v}")
        if v > 2 and (self.epipolar_transformer is None or v > self.config.num_context_views):
            raise ValueError(
                f"this encoder was built for {self.config.num_context_views} context views and cannot take {v} "
                "(more than two views need a model trained with that many, e.g. the official 3-view checkpoint)"
            )
        expected = {
            "extrinsics": (extrinsics, (b, v, 4, 4)),
            "intrinsics": (intrinsics, (b, v, 3, 3)),
            "near": (near, (b, v)),
            "far": (far, (b, v)),
        }
        for name, (tensor, shape) in expected.items():
            if tuple(tensor.shape) != shape:
                raise ValueError(f"{name} must have shape {list(shape)}, got {list(tensor.shape)}")
        multiple = self.size_multiple
        if h % multiple or w % multiple:
            raise ValueError(
                f"images of {h}x{w} pixels: both sides must be multiples of {multiple} "
                f"(crop or resize them, e.g. to {max(multiple, h - h % multiple)}x{max(multiple, w - w % multiple)})"
            )
