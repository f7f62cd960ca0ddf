"""The refinement loss: the paper's reconstruction loss (MSE) on one target view."""

from typing import Optional

import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor


def refinement_loss(
    rendered: Float[Tensor, "h w 3"], target: Float[Tensor, "h w 3"], mask: Optional[Float[Tensor, "h w 1"]] = None
) -> dict[str, Tensor]:
    """``{"mse": ...}`` between the render and the target view, inside ``mask`` when the dataset has masks."""
    if mask is not None:
        target, rendered = target * mask, rendered * mask
    return {"mse": F.mse_loss(rendered, target)}
