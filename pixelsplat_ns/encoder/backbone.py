"""pixelSplat's backbone: a DINO ResNet-50 and a DINO ViT-B/8 whose feature maps are summed per pixel.

Images go in as they are, in [0, 1]: the official code applies no ImageNet normalization. Feature maps are
kept channels-last, which oneDNN's convolutions and torch's bilinear upsampling run fastest on.
"""

from collections import OrderedDict

import torch
import torch.nn.functional as F
from einops import rearrange
from jaxtyping import Float
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from pixelsplat_ns.encoder.attention import scaled_dot_product_attention
from pixelsplat_ns.encoder.config import BackboneConfig, ResNetConfig, ViTConfig
from pixelsplat_ns.fast_routes.layers import Linear
from pixelsplat_ns.render.untraced import numba_available


class ResNetTrunk(nn.Module):
    """torchvision's ResNet stem (conv1, bn1, relu; no max-pool) and layer1..layer3, each stage's output
    projected to ``d_out`` channels; ``upsample_and_sum`` then takes them to full resolution (bilinear, corners
    aligned) and sums them.

    Projections of equal resolution (the stem's and layer1's) are summed before upsampling, which is linear:
    one full-resolution upsampling and sum fewer."""

    def __init__(self, config: ResNetConfig, d_out: int) -> None:
        super().__init__()
        block = Bottleneck if config.block == "bottleneck" else BasicBlock
        resnet = ResNet(block, [*config.layers, 1])
        self.conv1, self.bn1 = resnet.conv1, resnet.bn1
        self.layer1, self.layer2, self.layer3 = resnet.layer1, resnet.layer2, resnet.layer3
        widths = [64] + [64 * 2**i * block.expansion for i in range(3)]
        self.projections = nn.ModuleList([nn.Conv2d(width, d_out, 1) for width in widths])

    def forward(self, images: Float[Tensor, "n 3 h w"]) -> list[Float[Tensor, "n d_out _ _"]]:
        """The stages' projections, one map per resolution, finest first."""
        x = torch.relu(self.bn1(self.conv1(images)))  # channels-last images from Backbone: channels-last maps
        by_resolution: dict[tuple[int, int], Tensor] = {}
        for stage, projection in zip((None, self.layer1, self.layer2, self.layer3), self.projections):
            if stage is not None:
                x = stage(x)
            size, projected = (x.shape[-2], x.shape[-1]), projection(x)
            by_resolution[size] = by_resolution[size] + projected if size in by_resolution else projected
        return list(by_resolution.values())


def upsample_and_sum(
    maps: list[Float[Tensor, "n c _ _"]], patches: Float[Tensor, "n rows cols c"], height: int, width: int
) -> Float[Tensor, "n height width c"]:
    """The ResNet's maps upsampled to ``height`` x ``width`` (bilinear, corners aligned) and summed in their
    order, plus each ViT patch token added to its patch's pixels, with torch's operators (autograd, any
    device). The tokens are added patch by patch, never materialized at full resolution."""
    total = None
    for projected in maps:
        upsampled = F.interpolate(projected, (height, width), mode="bilinear", align_corners=True)
        total = upsampled if total is None else total.add_(upsampled)  # in place: one full-size sum alive
    if total is None:
        raise ValueError("upsample_and_sum needs at least one ResNet map")
    pixels = rearrange(total, "n c (h ph) (w pw) -> n h ph w pw c", h=patches.shape[1], w=patches.shape[2])
    return rearrange(pixels.add_(patches[:, :, None, :, None]), "n h ph w pw c -> n (h ph) (w pw) c")


class ViTBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = Linear(dim, dim * 3)
        self.proj = Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(OrderedDict(fc1=Linear(dim, hidden), act=nn.GELU(), fc2=Linear(hidden, dim)))

    def forward(self, x: Float[Tensor, "n token dim"]) -> Float[Tensor, "n token dim"]:
        q, k, v = rearrange(self.qkv(self.norm1(x)), "n t (three h d) -> three n h t d", three=3, h=self.num_heads)
        attended = scaled_dot_product_attention(q, k, v)
        x = x + self.proj(rearrange(attended, "n h t d -> n t (h d)"))
        return x + self.mlp(self.norm2(x))


class DinoViT(nn.Module):
    """DINO's vision transformer: the last block's tokens after the final norm (``get_intermediate_layers``)."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.embed_dim
        # A container, not a plain attribute: DINO's state dict names the convolution ``patch_embed.proj``.
        self.patch_embed = nn.ModuleDict({"proj": nn.Conv2d(3, dim, config.patch_size, config.patch_size)})
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, config.pretrained_grid**2 + 1, dim))
        self.blocks = nn.ModuleList([ViTBlock(dim, config.num_heads, config.mlp_ratio) for _ in range(config.depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def position_embedding(self, rows: int, cols: int) -> Float[Tensor, "1 token dim"]:
        """DINO's resizing of the position embedding: bicubic, with its +0.1 in the scale factor."""
        grid = self.config.pretrained_grid
        if rows * cols == grid * grid and rows == cols:
            return self.pos_embed
        patches = rearrange(self.pos_embed[:, 1:], "() (h w) c -> () c h w", h=grid)
        patches = F.interpolate(patches, scale_factor=((rows + 0.1) / grid, (cols + 0.1) / grid), mode="bicubic")
        if patches.shape[-2:] != (rows, cols):
            raise ValueError(f"position embedding resized to {tuple(patches.shape[-2:])}, expected {(rows, cols)}")
        return torch.cat([self.pos_embed[:, :1], rearrange(patches, "() c h w -> () (h w) c")], dim=1)

    def forward(self, images: Float[Tensor, "n 3 h w"]) -> Float[Tensor, "n token dim"]:
        rows, cols = images.shape[-2] // self.config.patch_size, images.shape[-1] // self.config.patch_size
        tokens = rearrange(self.patch_embed["proj"](images), "n c h w -> n (h w) c")
        tokens = torch.cat([self.cls_token.expand(len(tokens), -1, -1), tokens], dim=1)
        tokens = tokens + self.position_embedding(rows, cols)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)


def token_mlp(dim: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(Linear(dim, dim), nn.ReLU(), Linear(dim, d_out))


class Backbone(nn.Module):
    """ResNet features + ViT patch tokens (each repeated over its patch's pixels) + the ViT class token.

    The class token is added to the patch tokens before they are repeated over the pixels."""

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        self.patch_size = config.vit.patch_size
        self.resnet = ResNetTrunk(config.resnet, config.d_out)
        self.vit = DinoViT(config.vit)
        self.global_token_mlp = token_mlp(config.vit.embed_dim, config.d_out)
        self.local_token_mlp = token_mlp(config.vit.embed_dim, config.d_out)

    def forward(self, images: Float[Tensor, "n 3 h w"], fused: bool = True) -> Float[Tensor, "n d_out h w"]:
        """The per-pixel features; ``fused`` (at inference, with the maps on CPU in float32, where numba
        imports) sums them at full resolution with ``upsampling_numba``'s one-pass kernel instead of torch's
        operators, the same within float rounding."""
        h, w = images.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"image size {h}x{w} must be a multiple of the ViT patch size {self.patch_size}")
        images = images.contiguous(memory_format=torch.channels_last)
        tokens = self.vit(images)
        patches = self.local_token_mlp(tokens[:, 1:]) + self.global_token_mlp(tokens[:, :1])
        patches = rearrange(patches, "n (h w) c -> n h w c", h=h // self.patch_size)
        maps = self.resnet(images)
        # The maps' own dtypes decide: under autocast they are bfloat16 whatever the images are.
        on_cpu_float32 = all(t.device.type == "cpu" and t.dtype == torch.float32 for t in (*maps, patches))
        if fused and not torch.is_grad_enabled() and on_cpu_float32 and numba_available():
            from pixelsplat_ns.fast_routes.upsampling_numba import upsample_and_sum_numba  # numba only where used

            summed = upsample_and_sum_numba(maps, patches, h, w)
        else:
            summed = upsample_and_sum(maps, patches, h, w)
        return rearrange(summed, "n h w c -> n c h w")  # a channels-last view
