"""Encoder Gaussians <-> the parameters of a nerfstudio splat model (splatfacto's layout).

pixelSplat predicts covariances, linear opacities and SH in gsplat's basis; splatfacto stores means, log
scales, wxyz quaternions, logit opacities and the SH split into DC and rest. The covariance is decomposed
exactly (eigen-decomposition, so ``R diag(s^2) R^T`` gives it back to float32 rounding), which is what lets
the viewer, ``ns-export gaussian-splat`` and ``ns-render`` use the predicted scene unchanged.
"""

import torch
from jaxtyping import Float
from scipy.spatial.transform import Rotation
from torch import Tensor

from pixelsplat_ns.encoder import Gaussians

OPACITY_EPS = 1e-6
"""Opacities are clamped to [eps, 1 - eps] before the logit, so that 0 and 1 stay finite."""
MIN_SCALE = 1e-12
"""Smallest standard deviation kept before the log (eigenvalues can round to zero or just below)."""


def scale_gaussians(gaussians: Gaussians, scale: float) -> Gaussians:
    """The same Gaussians in a world scaled by ``scale`` (means x s, covariances x s^2; colours unchanged)."""
    return Gaussians(gaussians.means * scale, gaussians.covariances * scale**2, gaussians.opacities,
                     gaussians.harmonics)


def decompose_covariances(
    covariances: Float[Tensor, "n 3 3"],
) -> tuple[Float[Tensor, "n 3"], Float[Tensor, "n 4"]]:
    """Log standard deviations and wxyz unit quaternions with ``R diag(exp(2 log_s)) R^T = covariance``."""
    eigenvalues, eigenvectors = torch.linalg.eigh(covariances.double())
    # eigh may return a reflection; flipping one axis makes it a rotation with the same product.
    flip = torch.linalg.det(eigenvectors) < 0
    eigenvectors[flip, :, 0] *= -1
    quats = Rotation.from_matrix(eigenvectors.cpu().numpy()).as_quat(scalar_first=True)
    log_scales = 0.5 * eigenvalues.clamp(min=MIN_SCALE**2).log()
    return log_scales.to(covariances), torch.from_numpy(quats).to(covariances)


def splat_parameters(gaussians: Gaussians, sh_degree: int) -> dict[str, Float[Tensor, "n ..."]]:
    """splatfacto's ``gauss_params`` for the Gaussians of one scene (batch size 1), keeping SH up to
    ``sh_degree`` (the paper renders degrees 0-3 of the predicted 0-4)."""
    if gaussians.means.shape[0] != 1:
        raise ValueError(f"one scene at a time: got a batch of {gaussians.means.shape[0]}")
    num_bases = (sh_degree + 1) ** 2
    if gaussians.harmonics.shape[2] < num_bases:
        raise ValueError(f"SH degree {sh_degree} needs {num_bases} coefficients, the Gaussians have "
                         f"{gaussians.harmonics.shape[2]}")
    log_scales, quats = decompose_covariances(gaussians.covariances[0])
    opacities = gaussians.opacities[0].clamp(OPACITY_EPS, 1 - OPACITY_EPS)
    harmonics = gaussians.harmonics[0, :, :num_bases]
    return {
        "means": gaussians.means[0],
        "scales": log_scales,
        "quats": quats,
        "features_dc": harmonics[:, 0],
        "features_rest": harmonics[:, 1:],
        "opacities": torch.logit(opacities)[:, None],
    }
