"""Encoder hyper-parameters as dataclasses (tyro turns them into CLI flags), with the paper's and a tiny preset.

``paper()`` is the official camera-ready configuration (config/model/encoder/epipolar.yaml with the DINO
backbone); the ablations of the paper are switches on it. ``tiny()`` keeps every part of the architecture
at a width that trains on a CPU. How the encoder computes (the same network with other arithmetic) is not
configured here: see ``pixelsplat_ns.encoder.compute.ComputeOptions``.
"""

import math
from dataclasses import dataclass, field, replace
from typing import Literal, Optional


@dataclass
class ResNetConfig:
    block: Literal["bottleneck", "basic"] = "bottleneck"
    """torchvision block type: bottleneck for ResNet-50 (DINO), basic for the tiny preset."""
    layers: tuple[int, int, int] = (3, 4, 6)
    """Blocks in layer1..layer3; layer4 is never run by pixelSplat, so it is not built."""


@dataclass
class ViTConfig:
    patch_size: int = 8
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    pretrained_grid: int = 28
    """Side of the position-embedding grid the weights were trained with (DINO: 224 / 8 = 28)."""


@dataclass
class BackboneConfig:
    resnet: ResNetConfig = field(default_factory=ResNetConfig)
    vit: ViTConfig = field(default_factory=ViTConfig)
    d_out: int = 512
    """Channels of the summed ResNet and ViT feature maps."""


@dataclass
class ImageSelfAttentionConfig:
    patch_size: int = 4
    num_octaves: int = 10
    num_layers: int = 2
    num_heads: int = 4
    d_dot: int = 128
    d_mlp: int = 256


@dataclass
class EpipolarConfig:
    num_samples: int = 32
    """Samples along each epipolar segment."""
    num_octaves: int = 10
    """Octaves of the depth encoding; 0 removes it (the paper's "no depth encoding" ablation)."""
    num_layers: int = 2
    num_heads: int = 4
    d_dot: int = 128
    downscale: int = 4
    self_attention: ImageSelfAttentionConfig = field(default_factory=ImageSelfAttentionConfig)
    d_mlp: int = 256
    """Hidden channels of the two 7x7 convolutions that follow each layer's image self-attention in the
    original-codebase architecture (official ``EpipolarTransformerCfg.d_mlp``); unused by the camera-ready one."""


FORMER_COMPUTE_FIELDS = ("exact_rewrites", "linear_as_convolution")
"""Fields of ``EncoderConfig`` that became ``pixelsplat_ns.encoder.compute.ComputeOptions`` (how the encoder
computes, not which network it is): files saved before may hold them; they are ignored when read."""


Architecture = Literal["camera_ready", "original_codebase"]
"""The two networks the official checkpoints hold; they differ only in the epipolar transformer's layers
(``git diff 787a889 32b1b66 -- src/model/encoder/epipolar/``):

- ``camera_ready`` (commit 32b1b66): after each layer's cross attention, image self-attention alone; learned
  view embeddings when built for more than two context views;
- ``original_codebase`` (commit 787a889, the first release, whose checkpoints the Hugging Face mirrors hold):
  the same self-attention followed by a 7x7 conv, GELU and a 7x7 conv (its ``ConvFeedForward``); two context
  views only."""

ARCHITECTURE_COMMITS = {"camera_ready": "32b1b66", "original_codebase": "787a889"}
"""The official commit whose code each architecture is."""


@dataclass
class EncoderConfig:
    architecture: Architecture = "camera_ready"
    """Which official network: camera_ready (official commit 32b1b66) or original_codebase (787a889: 7x7
    convolutions after each epipolar layer's self-attention; 2 context views). Checkpoints record it; set it to
    train or fine-tune one."""
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    d_feature: int = 128
    use_epipolar_transformer: bool = True
    """False is the paper's "no epipolar transformer" ablation."""
    epipolar: EpipolarConfig = field(default_factory=EpipolarConfig)
    num_context_views: int = 2
    """Context views the model is built for; more than two adds learned view embeddings."""
    num_depth_bins: int = 32
    gaussians_per_pixel: int = 3
    """1 bin and 1 Gaussian per pixel is the paper's "no probabilistic sampling" ablation."""
    scale_min: float = 0.5
    scale_max: float = 15.0
    sh_degree: int = 4
    sh_rotation: Literal["official", "frame_independent"] = "official"
    """How the camera-frame SH colours are rotated to the world: "official" as the official code does it (the
    colours then depend on the world frame the cameras are given in), "frame_independent" exactly (they
    depend only on the direction relative to the camera); see ``pixelsplat_ns.encoder.official_sh``."""
    sh_coefficient_14: Literal["official_forward_kernel", "consistent"] = "consistent"
    """Degree-3 SH coefficient 14 as the official renderer's forward kernel evaluates it (with its typo: what
    the official checkpoints were trained and the paper measured with; converted official checkpoints use it)
    or as the consistent 3DGS/e3nn basis function."""
    opacity_divided_by_gaussians_per_pixel: bool = True
    """The official code divides opacities by gaussians_per_pixel, also in deterministic mode (1 sample)."""

    def __setstate__(self, state: dict) -> None:
        # nerfstudio's config.yml loader (yaml.Loader) and pickle restore a saved configuration through this:
        # fields that became run-time ComputeOptions are dropped, so that an older file loads as a new one.
        self.__dict__.update({k: v for k, v in state.items() if k not in FORMER_COMPUTE_FIELDS})


def paper() -> EncoderConfig:
    """The official camera-ready encoder (``config/model/encoder/epipolar.yaml``, DINO ResNet-50 + ViT-B/8)."""
    return EncoderConfig()


def tiny() -> EncoderConfig:
    """Every part of the paper's architecture at a width that trains on a CPU (the bundled encoder's)."""
    return EncoderConfig(
        backbone=BackboneConfig(
            resnet=ResNetConfig(block="basic", layers=(1, 1, 1)),
            vit=ViTConfig(embed_dim=96, depth=2, num_heads=3),
            d_out=64,
        ),
        d_feature=32,
        epipolar=EpipolarConfig(
            num_samples=16,
            num_layers=1,
            num_heads=2,
            d_dot=16,
            self_attention=ImageSelfAttentionConfig(num_layers=1, num_heads=2, d_dot=16, d_mlp=64),
        ),
    )


def with_sh_convention(
    config: EncoderConfig,
    rotation: Optional[Literal["official", "frame_independent"]] = None,
    coefficient_14: Optional[Literal["official_forward_kernel", "consistent"]] = None,
) -> EncoderConfig:
    """``config`` with its SH convention replaced where given (None keeps the checkpoint's own)."""
    return replace(
        config, sh_rotation=rotation or config.sh_rotation, sh_coefficient_14=coefficient_14 or config.sh_coefficient_14
    )


def size_multiple(config: EncoderConfig) -> int:
    """Image sides must be multiples of this: the ViT patches and, with the epipolar transformer, its
    downscaling times the self-attention patches (pixelSplat's patch shim)."""
    vit = config.backbone.vit.patch_size
    if not config.use_epipolar_transformer:
        return vit
    return math.lcm(vit, config.epipolar.downscale * config.epipolar.self_attention.patch_size)


def ablation_of(config: EncoderConfig) -> str:
    """Which of the paper's ablations (Table 3, as ``ablation`` makes them) ``config`` is, in words; "none" for the
    full model."""
    if not config.use_epipolar_transformer:
        return "no epipolar transformer"
    if config.epipolar.num_octaves == 0:
        return "no depth encoding"
    if config.num_depth_bins == 1 and config.gaussians_per_pixel == 1:
        return "no probabilistic sampling"
    return "none"


def ablation(config: EncoderConfig, name: Literal["none", "no_epipolar", "no_depth_encoding", "no_sampling"]):
    """The paper's ablations (Table 3) applied to a configuration."""
    if name == "no_epipolar":
        return replace(config, use_epipolar_transformer=False)
    if name == "no_depth_encoding":
        return replace(config, epipolar=replace(config.epipolar, num_octaves=0))
    if name == "no_sampling":
        return replace(config, num_depth_bins=1, gaussians_per_pixel=1)
    return config
