"""The epipolar transformer: each low-resolution pixel's ray attends to features sampled along its epipolar
segment in the other views, with each sample's triangulated depth encoded into its key.

With ``exact_rewrites`` the same function is computed with far less arithmetic:
- keys and values are never materialized: q . W_k (f + e) = (W_k^T q) . (f + e), and the attention-weighted
  sum of W_v (f + e) is W_v applied to the weighted sum of (f + e);
- the upscaler (ConvTranspose 4x4, stride 4) and the first 7x7 refinement conv compose into a single 3x3
  convolution on the low-resolution grid with 16 output phases and a pixel shuffle;
- at inference on CPU, on large images, the second 7x7 refinement conv runs in the Fourier domain
  (``fast_routes.layers.FourierConv2d``).
"""

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from einops import rearrange
from jaxtyping import Bool, Float
from torch import Tensor, nn

from pixelsplat_ns.core.geometry import image_grid, project_segments, triangulate_depth, world_rays
from pixelsplat_ns.encoder.attention import scaled_dot_product_attention
from pixelsplat_ns.encoder.config import Architecture, EpipolarConfig, ImageSelfAttentionConfig
from pixelsplat_ns.encoder.depth import depth_to_relative_disparity
from pixelsplat_ns.encoder.random_draws import Generators, permutations
from pixelsplat_ns.fast_routes.derived_weights import DerivedWeights
from pixelsplat_ns.fast_routes.layers import FourierConv2d, Linear


def positional_encoding(x: Float[Tensor, "*batch d"], num_octaves: int) -> Float[Tensor, "*batch e"]:
    """sin(2 pi 2^f x + phase), phase in {0, pi/2}, ordered (dimension, octave, phase) as pixelSplat."""
    frequencies = 2 * torch.pi * 2 ** torch.arange(num_octaves, device=x.device, dtype=x.dtype)
    phases = torch.tensor([0.0, 0.5 * torch.pi], device=x.device, dtype=x.dtype)
    angles = x[..., :, None, None] * frequencies[:, None] + phases
    return rearrange(torch.sin(angles), "... d f p -> ... (d f p)")


def other_views(v: int) -> Tensor:
    """For each view, the indices of all other views in increasing order: [v, v - 1]."""
    index = torch.arange(v).repeat(v, 1)
    return index[~torch.eye(v, dtype=torch.bool)].view(v, v - 1)


@dataclass
class EpipolarSamples:
    """For every ray of every view (b, v, r) and every other view (ov): samples along its epipolar segment."""

    xy: Float[Tensor, "b v ov r s 2"]  # normalized image coordinates in the other view
    valid: Bool[Tensor, "b v ov r"]  # whether the segment is visible in the other view
    features: Float[Tensor, "b v ov r s c"]  # sampled features, zero on invalid segments; stored as (b v r s ov c)
    depths: Float[Tensor, "b v ov r s"]  # triangulated depth along the ray, clamped to [near, far]


def sample_epipolar(
    features: Float[Tensor, "b v c h w"],
    extrinsics: Float[Tensor, "b v 4 4"],
    intrinsics: Float[Tensor, "b v 3 3"],
    near: Float[Tensor, "b v"],
    far: Float[Tensor, "b v"],
    num_samples: int,
) -> EpipolarSamples:
    """For the ray through every pixel centre of every view's feature map, ``num_samples`` features sampled
    along its epipolar segment in each other view, as the official
    ``src/model/encoder/epipolar/epipolar_sampler.py`` samples them, with the depth each sample triangulates
    to, as the official ``epipolar_transformer.py`` computes it before its depth encoding.

    ``features`` ``[b, v, c, h, w]`` (the low-resolution feature maps); ``extrinsics`` camera-to-world in OpenCV
    axes, ``intrinsics`` normalized; ``near`` and ``far`` per view, distances along the ray (unit directions)
    in the extrinsics' units. Each ray's segment [near, far] is projected into the other views (in increasing
    view order, ``other_views``) and clipped to their images (``core.geometry.project_segments``); samples sit
    at the centres of ``num_samples`` equal steps along it, in normalized image coordinates, and are read by
    bilinear interpolation with zeros outside the image (``grid_sample``, ``align_corners=False``). Segments not
    visible in a view (``valid`` False) give zero features. ``depths`` is the distance from the ray's origin to
    the least-squares intersection with the sample's ray in the other view (``core.geometry.triangulate_depth``),
    clamped to [near, far]. Returns ``EpipolarSamples`` (rays r = h * w, row-major); raises nothing of its own.
    """
    b, v, c, h, w = features.shape
    others = other_views(v).to(features.device)
    xy_ray = rearrange(image_grid(h, w, features.device, features.dtype), "h w xy -> (h w) xy")
    origins, directions = world_rays(xy_ray, extrinsics[:, :, None], intrinsics[:, :, None])  # [b v r 3]

    other_extrinsics = extrinsics[:, others][:, :, :, None]  # [b v ov 1 4 4]
    other_intrinsics = intrinsics[:, others][:, :, :, None]
    start, end, valid = project_segments(
        origins[:, :, None],
        directions[:, :, None],
        other_extrinsics,
        other_intrinsics,
        near[:, :, None, None],
        far[:, :, None, None],
    )
    start = start.nan_to_num(posinf=0, neginf=0) * valid[..., None]
    end = end.nan_to_num(posinf=0, neginf=0) * valid[..., None]
    steps = (torch.arange(num_samples, device=features.device, dtype=features.dtype) + 0.5) / num_samples
    xy = start[..., None, :] + steps[:, None] * (end - start)[..., None, :]  # [b v ov r s 2]

    other_features = rearrange(features[:, others], "b v ov c h w -> (b v ov) c h w")
    sampled = F.grid_sample(
        other_features,
        rearrange(2 * xy - 1, "b v ov r s xy -> (b v ov) r s xy"),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    # Stored ray-major and channels-last (b v r s ov c), the layout the cross attention reads its keys and
    # values in: one transposing copy, and what follows (the mask, the depth encoding) works in place on it.
    sampled = rearrange(sampled, "(b v ov) c r s -> b v r s ov c", b=b, v=v).contiguous()
    sampled = rearrange(sampled, "b v r s ov c -> b v ov r s c").mul_(valid[..., None, None])

    sample_origins, sample_directions = world_rays(
        xy, other_extrinsics[..., None, :, :], other_intrinsics[..., None, :, :]
    )
    depths = triangulate_depth(
        origins[:, :, None, :, None], directions[:, :, None, :, None], sample_origins, sample_directions
    )
    depths = torch.minimum(torch.maximum(depths, near[..., None, None, None]), far[..., None, None, None])
    return EpipolarSamples(xy=xy, valid=valid, features=sampled, depths=depths)


class PreNormCrossAttention(nn.Module):
    """Queries are layer-normed, keys/values are not; to_q and to_kv without bias, to_out with."""

    def __init__(self, dim: int, num_heads: int, d_dot: int) -> None:
        super().__init__()
        self.num_heads, self.scale = num_heads, d_dot**-0.5
        self.norm = nn.LayerNorm(dim)
        self.to_q = Linear(dim, num_heads * d_dot, bias=False)
        self.to_kv = Linear(dim, 2 * num_heads * d_dot, bias=False)
        self.to_out = Linear(num_heads * d_dot, dim)

    def forward(
        self, x: Float[Tensor, "n c"], kv: Float[Tensor, "n s c"], exact_rewrites: bool
    ) -> Float[Tensor, "n c"]:
        q = rearrange(self.to_q(self.norm(x)), "n (h d) -> n h d", h=self.num_heads)
        w_k, w_v = rearrange(self.to_kv.weight, "(two h d) c -> two h d c", two=2, h=self.num_heads)
        if exact_rewrites:
            # Attention in feature space: keys and values are linear in kv, so fold W_k into q and apply W_v
            # after the weighted sum, instead of projecting every sample.
            q_feature = torch.einsum("nhd,hdc->nhc", q, w_k) * self.scale
            attention = torch.softmax(torch.einsum("nhc,nsc->nhs", q_feature, kv), dim=-1)
            out = torch.einsum("nhc,hdc->nhd", torch.einsum("nhs,nsc->nhc", attention, kv), w_v)
        else:
            k, v = torch.einsum("nsc,hdc->nhsd", kv, w_k), torch.einsum("nsc,hdc->nhsd", kv, w_v)
            attention = torch.softmax(torch.einsum("nhd,nhsd->nhs", q, k) * self.scale, dim=-1)
            out = torch.einsum("nhs,nhsd->nhd", attention, v)
        return self.to_out(rearrange(out, "n h d -> n (h d)"))


class TransformerBlock(nn.Module):
    """Pre-norm self-attention (to_qkv without bias) and a GELU MLP, each with a residual."""

    def __init__(self, dim: int, num_heads: int, d_dot: int, d_mlp: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.attention_norm = nn.LayerNorm(dim)
        self.to_qkv = Linear(dim, 3 * num_heads * d_dot, bias=False)
        self.to_out = Linear(num_heads * d_dot, dim)
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(Linear(dim, d_mlp), nn.GELU(), Linear(d_mlp, dim))

    def forward(self, x: Float[Tensor, "n t c"]) -> Float[Tensor, "n t c"]:
        q, k, v = rearrange(
            self.to_qkv(self.attention_norm(x)), "n t (three h d) -> three n h t d", three=3, h=self.num_heads
        )
        x = x + self.to_out(rearrange(scaled_dot_product_attention(q, k, v), "n h t d -> n t (h d)"))
        return x + self.mlp(self.mlp_norm(x))


class ImageSelfAttention(nn.Module):
    """Self-attention over a view's patches: 4x4 patches -> tokens with a 2D positional encoding ->
    transformer -> transposed conv back to the input resolution."""

    def __init__(self, config: ImageSelfAttentionConfig, dim: int) -> None:
        super().__init__()
        self.num_octaves = config.num_octaves
        self.positional_encoding = Linear(2 * 2 * config.num_octaves, dim)
        self.patch_embedder = nn.Conv2d(dim, dim, config.patch_size, config.patch_size)
        self.blocks = nn.ModuleList(
            [TransformerBlock(dim, config.num_heads, config.d_dot, config.d_mlp) for _ in range(config.num_layers)]
        )
        self.resampler = nn.ConvTranspose2d(dim, dim, config.patch_size, config.patch_size)

    def forward(self, image: Float[Tensor, "n c h w"]) -> Float[Tensor, "n c h w"]:
        tokens = torch.relu(self.patch_embedder(image))
        nh, nw = tokens.shape[-2:]
        position = self.positional_encoding(
            positional_encoding(image_grid(nh, nw, image.device, image.dtype), self.num_octaves)
        )
        tokens = rearrange(tokens + rearrange(position, "h w c -> c h w"), "n c h w -> n (h w) c")
        for block in self.blocks:
            tokens = block(tokens)
        return self.resampler(rearrange(tokens, "n (h w) c -> n c h w", h=nh))


class EpipolarLayer(nn.Module):
    """Cross-attention along epipolar samples, then (in place of a feed-forward) image self-attention.

    The official wrapper adds its layer-normed input back, so the second step is x + SA(LN(x)) + LN(x) in the
    camera-ready architecture and x + convs(SA(LN(x)) + LN(x)) in the original codebase's (its
    ``ConvFeedForward``: 7x7 conv, GELU, 7x7 conv; its dropout layers are identities at rate 0)."""

    def __init__(self, config: EpipolarConfig, dim: int, architecture: Architecture) -> None:
        super().__init__()
        self.cross_attention = PreNormCrossAttention(dim, config.num_heads, config.d_dot)
        self.image_norm = nn.LayerNorm(dim)
        self.image_attention = ImageSelfAttention(config.self_attention, dim)
        self.convs = (
            nn.Sequential(nn.Conv2d(dim, config.d_mlp, 7, 1, 3), nn.GELU(), nn.Conv2d(config.d_mlp, dim, 7, 1, 3))
            if architecture == "original_codebase"
            else None
        )

    def forward(
        self, x: Float[Tensor, "b v c h w"], kv: Float[Tensor, "n s c"], exact_rewrites: bool
    ) -> Float[Tensor, "b v c h w"]:
        b, v, c, h, w = x.shape
        tokens = rearrange(x, "b v c h w -> (b v h w) c")
        tokens = tokens + self.cross_attention(tokens, kv, exact_rewrites)
        image = rearrange(self.image_norm(tokens), "(n h w) c -> n c h w", h=h, w=w)
        feed_forward = self.image_attention(image) + image
        if self.convs is not None:
            feed_forward = self.convs(feed_forward)
        return rearrange(tokens, "(b v h w) c -> b v c h w", b=b, v=v, h=h) + rearrange(
            feed_forward, "(b v) c h w -> b v c h w", b=b
        )


class Upscaler(nn.Module):
    """ConvTranspose 4x4 stride 4, then ``refinement(x) + x`` with Conv 7x7 -> GELU -> Conv 7x7."""

    def __init__(self, dim: int, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.expand = nn.ConvTranspose2d(dim, dim, factor, factor)
        self.refinement = nn.Sequential(nn.Conv2d(dim, 2 * dim, 7, 1, 3), nn.GELU(), FourierConv2d(2 * dim, dim, 7))
        self._derived = DerivedWeights()

    def forward(self, x: Float[Tensor, "n c h w"], exact_rewrites: bool) -> Float[Tensor, "n c H W"]:
        upscaled = self.expand(x)
        if not exact_rewrites:
            return self.refinement(upscaled) + upscaled
        first, activation, second = self._refinement_layers()
        parameters = (self.expand.weight, _bias(self.expand), first.weight, _bias(first))
        weight, bias = self._derived("composed first conv", parameters, self._composed_first_conv)
        ones = x.new_ones(x.shape[0], 1, *x.shape[2:])
        with_ones = torch.cat([x, ones], 1).contiguous(memory_format=torch.channels_last)
        phases = F.conv2d(with_ones, weight, bias, padding=weight.shape[-1] // 2)
        del with_ones
        hidden = activation(F.pixel_shuffle(phases, self.factor))
        del phases  # full-resolution tensors: keep one alive at a time
        return second.fourier(hidden) + upscaled

    def _composed_first_conv(self) -> tuple[Float[Tensor, "k c_plus_1 i j"], Float[Tensor, " k"]]:
        """conv7x7(upscale(x)) as one 3x3 conv on the low-resolution grid with factor^2 output phases, taking
        x and a constant ones channel, which carries the upscaler's bias and is zero-padded like the features
        (so the 7x7 conv's zero padding never sees that bias outside the image)."""
        conv, f = self._refinement_layers()[0], self.factor
        radius = conv.kernel_size[0] // 2
        cells = -(-radius // f)  # how many low-resolution cells a kernel reaches on each side
        bias = _bias(self.expand)[None, :, None, None].expand(1, -1, f, f)
        transposed = torch.cat([self.expand.weight, bias], 0)  # [in + 1, out, f, f]
        # Every (7x7 tap, upscaler phase) product, then summed into (output phase, cell offset) per axis:
        # tap d seen from output phase a reads phase (a + d - radius) mod f of cell (a + d - radius) // f.
        products = torch.einsum("ocyx,kcpq->okypxq", conv.weight, transposed)
        select = _phase_selector(conv.kernel_size[0], f, radius, cells).to(products)  # [(y p), (a i)]
        products = rearrange(products, "o k y p x q -> o k (y p) (x q)")
        kernel = torch.einsum("okYX,YA,XB->oAkB", products, select, select)
        kernel = rearrange(kernel, "o (a i) k (b j) -> (o a b) k i j", a=f, b=f)
        return kernel, _bias(conv).repeat_interleave(f * f)

    def _refinement_layers(self) -> tuple[nn.Conv2d, nn.Module, FourierConv2d]:
        """The refinement's conv, activation and Fourier conv (one ``nn.Sequential``, for the official
        state-dict keys ``refinement.0`` and ``refinement.2``; indexing it gives untyped modules)."""
        first, activation, second = self.refinement
        return cast(nn.Conv2d, first), activation, cast(FourierConv2d, second)


def _bias(layer: nn.Conv2d | nn.ConvTranspose2d) -> Tensor:
    """The layer's bias: the upscaler's layers are all built with one."""
    if layer.bias is None:
        raise ValueError(f"the upscaler's {layer} has no bias; it needs one")
    return layer.bias


def _phase_selector(taps: int, factor: int, radius: int, cells: int) -> Tensor:
    """S[(tap, source phase), (output phase, cell offset)] = 1 where output phase a, through kernel tap d,
    reads the upscaled pixel of source phase (a + d - radius) mod f in cell (a + d - radius) // f."""
    selector = torch.zeros(taps, factor, factor, 2 * cells + 1)
    for a in range(factor):
        for d in range(taps):
            cell, phase = divmod(a + d - radius, factor)
            selector[d, phase, a, cell + cells] = 1.0
    return rearrange(selector, "y p a i -> (y p) (a i)")


class EpipolarTransformer(nn.Module):
    def __init__(self, config: EpipolarConfig, dim: int, num_views: int, architecture: Architecture) -> None:
        super().__init__()
        if num_views > 2 and architecture == "original_codebase":
            raise ValueError(
                f"the original codebase's epipolar transformer takes 2 context views, not {num_views} (it has no "
                "view embeddings): use the camera-ready architecture for more"
            )
        self.config = config
        self.downscaler = nn.Conv2d(dim, dim, config.downscale, config.downscale)
        self.depth_encoding = Linear(2 * config.num_octaves, dim) if config.num_octaves > 0 else None
        self.layers = nn.ModuleList([EpipolarLayer(config, dim, architecture) for _ in range(config.num_layers)])
        self.view_embeddings = nn.Embedding(num_views, dim) if num_views > 2 else None
        self.upscaler = Upscaler(dim, config.downscale)

    def forward(
        self,
        features: Float[Tensor, "b v c h w"],
        extrinsics: Float[Tensor, "b v 4 4"],
        intrinsics: Float[Tensor, "b v 3 3"],
        near: Float[Tensor, "b v"],
        far: Float[Tensor, "b v"],
        exact_rewrites: bool = True,
        generator: Generators = None,
    ) -> Float[Tensor, "b v c h w"]:
        b, v = features.shape[:2]
        features = rearrange(
            self.downscaler(rearrange(features, "b v c h w -> (b v) c h w")), "(b v) c h w -> b v c h w", b=b
        )
        samples = sample_epipolar(features, extrinsics, intrinsics, near, far, self.config.num_samples)
        kv = samples.features
        if self.depth_encoding is not None:
            relative = depth_to_relative_disparity(
                samples.depths, near[..., None, None, None], far[..., None, None, None]
            )
            kv += self.depth_encoding(positional_encoding(relative[..., None], self.config.num_octaves))
        if v > 2:
            if self.view_embeddings is None:
                raise ValueError(f"this epipolar transformer was built for 2 views and cannot take {v}")
            # The other views get the learned embeddings in a random order, as in pixelSplat (one order for the
            # batch; one per example with per-example generators).
            shuffle = permutations(b, v - 1, kv.device, generator)
            kv = kv + rearrange(self.view_embeddings(shuffle), "b ov c -> b () ov () () c")
        kv = rearrange(kv, "b v ov r s c -> (b v r) (s ov) c")
        del samples
        for layer in self.layers:
            features = layer(features, kv, exact_rewrites)
        del kv  # with the samples, the transformer's largest tensors, not needed by the upscaler
        upscaled = self.upscaler(rearrange(features, "b v c h w -> (b v) c h w"), exact_rewrites)
        return rearrange(upscaled, "(b v) c h w -> b v c h w", b=b)
