"""The assembled pixelSplat encoder: context images and cameras in, world-space Gaussians out."""

import math
from typing import Optional

import torch
import torch.nn.functional as F
from einops import rearrange
from jaxtyping import Float
from torch import Tensor, nn

from pixelsplat_ns.encoder.backbone import Backbone
from pixelsplat_ns.encoder.config import EncoderConfig
from pixelsplat_ns.encoder.cpu_kernels import Linear
from pixelsplat_ns.encoder.depth import DepthPredictor
from pixelsplat_ns.encoder.epipolar import EpipolarTransformer
from pixelsplat_ns.encoder.gaussian_adapter import Gaussians, to_gaussians
from pixelsplat_ns.geometry import image_grid
from pixelsplat_ns.render.spherical_harmonics import num_sh_bases


class PixelSplatEncoder(nn.Module):
    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_feature
        self.backbone = Backbone(config.backbone)
        self.backbone_projection = nn.Sequential(nn.ReLU(), nn.Linear(config.backbone.d_out, d))
        self.epipolar_transformer = (
            EpipolarTransformer(config.epipolar, d, config.num_context_views) if config.use_epipolar_transformer else None
        )
        self.high_resolution_skip = nn.Sequential(nn.Conv2d(3, d, 7, 1, 3), nn.ReLU())
        self.depth_predictor = DepthPredictor(d, config.num_depth_bins)
        self.to_gaussians = nn.Sequential(nn.ReLU(), Linear(d, 2 + 7 + 3 * num_sh_bases(config.sh_degree)))
        for module in self.modules():
            if isinstance(module, Linear):
                module.via_convolution = config.linear_as_convolution

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this: the ViT patches and, with the epipolar transformer, its
        downscaling times the self-attention patches (pixelSplat's patch shim)."""
        vit = self.config.backbone.vit.patch_size
        if self.epipolar_transformer is None:
            return vit
        return math.lcm(vit, self.config.epipolar.downscale * self.config.epipolar.self_attention.patch_size)

    def encode(
        self,
        images: Float[Tensor, "b v 3 h w"],
        extrinsics: Float[Tensor, "b v 4 4"],
        intrinsics: Float[Tensor, "b v 3 3"],
        near: Float[Tensor, "b v"],
        far: Float[Tensor, "b v"],
        deterministic: bool = False,
        generator: Optional[torch.Generator] = None,
    ) -> Gaussians:
        """Gaussians for a batch of context views.

        ``images`` in [0, 1]; ``extrinsics`` camera-to-world, OpenCV axes; ``intrinsics`` normalized (fx, cx
        divided by the width, fy, cy by the height); ``near``/``far`` the depth range per view (see
        ``pixelsplat_ns.data.bounds`` for the paper's rule). Deterministic mode takes each pixel's most likely
        depth bin (one Gaussian per pixel) instead of drawing ``gaussians_per_pixel`` bins.
        """
        self._check_inputs(images, extrinsics, intrinsics, near, far)
        b, v, _, h, w = images.shape
        flat_images = rearrange(images, "b v c h w -> (b v) c h w").contiguous(memory_format=torch.channels_last)
        # ReLU and Linear over channels, as a 1x1 convolution: the same map without two transposes of a
        # 512-channel full-resolution tensor.
        linear = self.backbone_projection[1]
        backbone = torch.relu_(self.backbone(flat_images))  # in place: the largest tensor of the encoder
        features = F.conv2d(backbone, linear.weight[:, :, None, None], linear.bias)
        features = rearrange(features, "(b v) c h w -> b v c h w", b=b)
        if self.epipolar_transformer is not None:
            features = self.epipolar_transformer(
                features, extrinsics, intrinsics, near, far, self.config.exact_rewrites, generator
            )
        features = features + rearrange(self.high_resolution_skip(flat_images), "(b v) c h w -> b v c h w", b=b)
        features = rearrange(features, "b v c h w -> b v (h w) c")

        samples = 1 if deterministic else self.config.gaussians_per_pixel
        depths, probabilities = self.depth_predictor(features, near, far, samples, deterministic, generator)
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
        )

    forward = encode

    def _check_inputs(self, images, extrinsics, intrinsics, near, far) -> None:
        if images.dim() != 5 or images.shape[2] != 3:
            raise ValueError(f"images must have shape [B, V, 3, H, W], got {list(images.shape)}")
        b, v, _, h, w = images.shape
        if v < 2:
            raise ValueError(f"pixelSplat needs at least 2 context views, got {v}")
        if v > 2 and (self.epipolar_transformer is None or v > self.config.num_context_views):
            raise ValueError(
                f"this encoder was built for {self.config.num_context_views} context views and cannot take {v} "
                "(more than two views need a model trained with that many, e.g. the official 3-view checkpoint)"
            )
        expected = {"extrinsics": (extrinsics, (b, v, 4, 4)), "intrinsics": (intrinsics, (b, v, 3, 3)),
                    "near": (near, (b, v)), "far": (far, (b, v))}
        for name, (tensor, shape) in expected.items():
            if tuple(tensor.shape) != shape:
                raise ValueError(f"{name} must have shape {list(shape)}, got {list(tensor.shape)}")
        multiple = self.size_multiple
        if h % multiple or w % multiple:
            raise ValueError(
                f"images of {h}x{w} pixels: both sides must be multiples of {multiple} "
                f"(crop or resize them, e.g. to {h - h % multiple}x{w - w % multiple})"
            )
        for name, tensor in (("images", images), ("extrinsics", extrinsics), ("intrinsics", intrinsics),
                             ("near", near), ("far", far)):
            if not bool(torch.isfinite(tensor).all()):
                raise ValueError(f"{name} contains NaN or infinite values")
        if bool((near <= 0).any() or (far <= near).any()):
            raise ValueError("need 0 < near < far for every view")
