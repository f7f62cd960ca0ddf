"""Scaled dot-product attention for the encoder's transformers (DINO's blocks, the epipolar transformer).

torch's fused kernel (``F.scaled_dot_product_attention``) everywhere but one place: torch 2.1's CPU flash
attention corrupts the heap in its bfloat16 backward pass (the process aborts with "double free or corruption";
seen with torch 2.1.2). With reduced precision and gradients on the CPU of a torch older than 2.4 (2.2 and 2.3
were not checked, so they are treated alike), the same formula is computed step by step instead."""

import math

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from pixelsplat_ns.core.torch_versions import TORCH_VERSION

_FUSED_CPU_BACKWARD_SOUND = TORCH_VERSION >= (2, 4)


def scaled_dot_product_attention(
    q: Float[Tensor, "n h t d"], k: Float[Tensor, "n h s d"], v: Float[Tensor, "n h s e"]
) -> Float[Tensor, "n h t e"]:
    """softmax(q k^T / sqrt(d)) v, without masking or dropout (as ``F.scaled_dot_product_attention``)."""
    reduced_precision = q.dtype in (torch.bfloat16, torch.float16)
    needs_backward = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v))
    if _FUSED_CPU_BACKWARD_SOUND or q.device.type != "cpu" or not (reduced_precision and needs_backward):
        return F.scaled_dot_product_attention(q, k, v)
    weights = torch.softmax((q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1]), dim=-1)
    return weights @ v
