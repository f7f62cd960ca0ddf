"""Encoder Gaussians <-> the parameters of a nerfstudio splat model (splatfacto's layout), and either as the
arguments of ``render_views``.

pixelSplat predicts covariances, linear opacities and SH in gsplat's basis; splatfacto stores means, log
scales, wxyz quaternions, logit opacities and the SH split into DC and rest. The covariance is decomposed
exactly (eigen-decomposition, so ``R diag(s^2) R^T`` gives it back to float32 rounding), which is what lets
the viewer, ``ns-export gaussian-splat`` and ``ns-render`` use the predicted scene unchanged.
"""

from typing import Optional, TypedDict

import torch
from jaxtyping import Float
from torch import Tensor

from pixelsplat_ns.core.conventions import matrix_to_quaternion, opacity_to_logit, variance_to_log_scale
from pixelsplat_ns.core.gaussians import Gaussians
from pixelsplat_ns.render.spherical_harmonics import num_sh_bases


class Splats(TypedDict):
    """What to draw, as the keyword arguments of ``render_views``: means, quats, scales, covars, opacities,
    colors (either quats and scales or covars; the others None)."""

    means: Tensor
    quats: Optional[Tensor]
    scales: Optional[Tensor]
    covars: Optional[Tensor]
    opacities: Tensor
    colors: Tensor


def decompose_covariances(
    covariances: Float[Tensor, "n 3 3"],
) -> tuple[Float[Tensor, "n 3"], Float[Tensor, "n 4"]]:
    """Log standard deviations and wxyz unit quaternions with ``R diag(exp(2 log_s)) R^T = covariance``."""
    eigenvalues, eigenvectors = torch.linalg.eigh(covariances.double())
    # eigh may return a reflection; flipping one axis makes it a rotation with the same product.
    flip = torch.linalg.det(eigenvectors) < 0
    eigenvectors[flip, :, 0] *= -1
    return variance_to_log_scale(eigenvalues).to(covariances), matrix_to_quaternion(eigenvectors).to(covariances)


def splat_parameters(gaussians: Gaussians, sh_degree: int) -> dict[str, Float[Tensor, "n ..."]]:
    """splatfacto's ``gauss_params`` for the Gaussians of one scene (batch size 1), keeping SH up to
    ``sh_degree`` (the paper renders degrees 0-3 of the predicted 0-4)."""
    if gaussians.means.shape[0] != 1:
        raise ValueError(f"one scene at a time: got a batch of {gaussians.means.shape[0]}")
    num_bases = num_sh_bases(sh_degree)
    if gaussians.harmonics.shape[2] < num_bases:
        raise ValueError(
            f"SH degree {sh_degree} needs {num_bases} coefficients, the Gaussians have {gaussians.harmonics.shape[2]}"
        )
    log_scales, quats = decompose_covariances(gaussians.covariances[0])
    harmonics = gaussians.harmonics[0, :, :num_bases]
    return {
        "means": gaussians.means[0],
        "scales": log_scales,
        "quats": quats,
        "features_dc": harmonics[:, 0],
        "features_rest": harmonics[:, 1:],
        "opacities": opacity_to_logit(gaussians.opacities[0])[:, None],
    }


def parameter_splats(params: dict[str, Tensor]) -> Splats:
    """splatfacto's parameters as ``render_views`` arguments (scales and opacities activated)."""
    return {
        "means": params["means"],
        "quats": params["quats"],
        "scales": torch.exp(params["scales"]),
        "covars": None,
        "opacities": torch.sigmoid(params["opacities"])[:, 0],
        "colors": torch.cat([params["features_dc"][:, None], params["features_rest"]], dim=1),
    }


def prediction_splats(gaussians: Gaussians, sh_degree: int) -> Splats:
    """The encoder's Gaussians of one scene (batch size 1) as ``render_views`` arguments, SH up to ``sh_degree``."""
    return {
        "means": gaussians.means[0],
        "quats": None,
        "scales": None,
        "covars": gaussians.covariances[0],
        "opacities": gaussians.opacities[0],
        "colors": gaussians.harmonics[0, :, : num_sh_bases(sh_degree)],
    }
