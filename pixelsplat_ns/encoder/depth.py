"""The per-pixel depth distribution: bins uniform in disparity between near and far, a pdf over them and
an offset within each bin, sampled so that the pdf learns through the opacity (the paper's
reparameterization) and the offsets through the Gaussians' positions."""

import torch
from einops import rearrange
from jaxtyping import Float, Int64
from torch import Tensor, nn

from pixelsplat_ns.core.geometry import FLOAT32_EPS
from pixelsplat_ns.fast_routes.layers import Linear

from .random_draws import Generators, uniform


def depth_to_relative_disparity(depth: Tensor, near: Tensor, far: Tensor, eps: float = 1e-10) -> Tensor:
    """0 at near, 1 at far, linear in disparity (pixelSplat's conversion, epsilons included)."""
    disp_near, disp_far = 1 / (near + eps), 1 / (far + eps)
    return 1 - (1 / (depth + eps) - disp_far) / (disp_near - disp_far + eps)


def relative_disparity_to_depth(relative: Tensor, near: Tensor, far: Tensor, eps: float = 1e-10) -> Tensor:
    """Depth at a relative disparity (0 at near, 1 at far), with pixelSplat's epsilons."""
    disp_near, disp_far = 1 / (near + eps), 1 / (far + eps)
    return 1 / ((1 - relative) * (disp_near - disp_far) + disp_far + eps)


def sample_bins(
    pdf: Float[Tensor, "b *rest bin"], num_samples: int, deterministic: bool, generator: Generators = None
) -> tuple[Int64[Tensor, "b *rest sample"], Float[Tensor, "b *rest sample"]]:
    """Bins drawn i.i.d. by inverse CDF (or the most likely one) and their probabilities; ``generator``: see
    ``random_draws`` (one per example of ``b``, or one for all)."""
    normalized = pdf / (FLOAT32_EPS + pdf.sum(dim=-1, keepdim=True))
    if deterministic:
        index = pdf.topk(k=num_samples, dim=-1).indices
    else:
        draws = uniform((*pdf.shape[:-1], num_samples), pdf.device, generator)
        index = torch.searchsorted(normalized.cumsum(dim=-1), draws, right=True).clip(max=pdf.shape[-1] - 1)
    return index, normalized.gather(-1, index)


class DepthPredictor(nn.Module):
    def __init__(self, d_in: int, num_bins: int) -> None:
        super().__init__()
        self.num_bins = num_bins
        self.projection = nn.Sequential(nn.ReLU(), Linear(d_in, 2 * num_bins))

    def forward(
        self,
        features: Float[Tensor, "b v r c"],
        near: Float[Tensor, "b v"],
        far: Float[Tensor, "b v"],
        num_samples: int,
        deterministic: bool,
        generator: Generators = None,
    ) -> tuple[Float[Tensor, "b v r s"], Float[Tensor, "b v r s"]]:
        """Depths and the probabilities of their bins; channels interleave (pdf logit, offset logit) per bin."""
        pdf_logits, offset_logits = rearrange(self.projection(features), "... (bin two) -> two ... bin", two=2)
        pdf, offsets = torch.softmax(pdf_logits, dim=-1), torch.sigmoid(offset_logits)
        index, probability = sample_bins(pdf, num_samples, deterministic, generator)
        relative = (index + offsets.gather(-1, index)) / self.num_bins
        depths = relative_disparity_to_depth(relative, near[..., None, None], far[..., None, None])
        return depths, probability
