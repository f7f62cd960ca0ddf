"""``Gaussians``: what the encoder predicts and the renderer draws, in the world frame of its cameras."""

from dataclasses import dataclass
from typing import Sequence

import torch
from jaxtyping import Float, Int
from torch import Tensor


@dataclass
class Gaussians:
    """A batch of Gaussian scenes, flattened in pixelSplat's order (view, pixel row-major, sample).

    Lengths are in the units of the cameras they were predicted from (the encoder's: context baseline 1)."""

    means: Float[Tensor, "b g 3"]
    covariances: Float[Tensor, "b g 3 3"]
    opacities: Float[Tensor, "b g"]  # linear, in [0, 1]
    harmonics: Float[Tensor, "b g k 3"]  # gsplat's SH basis; the official renderer used degrees 0-3

    def scaled(self, scale: float) -> "Gaussians":
        """The same Gaussians in a world scaled by ``scale``: means x s, covariances x s^2, colours unchanged."""
        return Gaussians(self.means * scale, self.covariances * scale**2, self.opacities, self.harmonics)

    def detach(self) -> "Gaussians":
        """The same Gaussians cut from the autograd graph (``Tensor.detach`` of each field): same shapes, dtype,
        device and values, sharing their storage with these (an in-place change to one shows in the other)."""
        return Gaussians(
            self.means.detach(), self.covariances.detach(), self.opacities.detach(), self.harmonics.detach()
        )

    def select(self, index: Int[Tensor, " k"]) -> "Gaussians":
        """The Gaussians at positions ``index`` (along g) of every scene in the batch."""
        return Gaussians(
            self.means[:, index], self.covariances[:, index], self.opacities[:, index], self.harmonics[:, index]
        )

    @staticmethod
    def concatenate(parts: Sequence["Gaussians"]) -> "Gaussians":
        """One batch of scenes holding each part's Gaussians, in order (along g)."""
        return Gaussians(
            *(
                torch.cat([getattr(p, name) for p in parts], dim=1)
                for name in ("means", "covariances", "opacities", "harmonics")
            )
        )
