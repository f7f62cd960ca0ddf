"""Real spherical harmonics in gsplat's basis (degrees 0-4), the colour model of every rasterize call.

The basis is the one of the 3DGS / gsplat renderers: real SH with the Condon-Shortley phase, ordered
m = -l..l within each degree, evaluated at the normalized viewing direction (Gaussian minus camera centre).
"""

from functools import lru_cache

import torch
from jaxtyping import Float
from torch import Tensor

MAX_SH_DEGREE = 4


def num_sh_bases(degree: int) -> int:
    return (degree + 1) ** 2


def sh_basis(degree: int, dirs: Float[Tensor, "*batch 3"]) -> Float[Tensor, "*batch K"]:
    """The (degree + 1)^2 basis functions at the normalized ``dirs``."""
    if not 0 <= degree <= MAX_SH_DEGREE:
        raise ValueError(f"sh_degree must be between 0 and {MAX_SH_DEGREE}, got {degree}")
    x, y, z = torch.nn.functional.normalize(dirs, dim=-1).unbind(-1)
    bases = [torch.full_like(x, 0.28209479177387814)]
    if degree >= 1:
        bases += [-0.4886025119029199 * y, 0.4886025119029199 * z, -0.4886025119029199 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        bases += [
            1.0925484305920792 * x * y,
            -1.0925484305920792 * y * z,
            0.31539156525252005 * (3 * zz - 1),
            -1.0925484305920792 * x * z,
            0.5462742152960396 * (xx - yy),
        ]
    if degree >= 3:
        bases += [
            -0.5900435899266435 * y * (3 * xx - yy),
            2.890611442640554 * x * y * z,
            -0.4570457994644658 * y * (5 * zz - 1),
            0.3731763325901154 * z * (5 * zz - 3),
            -0.4570457994644658 * x * (5 * zz - 1),
            1.445305721320277 * z * (xx - yy),
            -0.5900435899266435 * x * (xx - 3 * yy),
        ]
    if degree >= 4:
        bases += [
            2.5033429417967046 * x * y * (xx - yy),
            -1.7701307697799304 * y * z * (3 * xx - yy),
            0.9461746957575601 * x * y * (7 * zz - 1),
            -0.6690465435572892 * y * z * (7 * zz - 3),
            0.10578554691520431 * (35 * zz * zz - 30 * zz + 3),
            -0.6690465435572892 * x * z * (7 * zz - 3),
            0.47308734787878 * (xx - yy) * (7 * zz - 1),
            -1.7701307697799304 * x * z * (xx - 3 * yy),
            0.6258357354491763 * (xx * xx - 6 * xx * yy + yy * yy),
        ]
    return torch.stack(bases, dim=-1)


def evaluate_sh(
    degree: int, dirs: Float[Tensor, "*#batch 3"], coeffs: Float[Tensor, "*#batch K 3"]
) -> Float[Tensor, "*#batch 3"]:
    """Colour before gsplat's +0.5 offset; coefficients beyond ``degree`` are ignored, as gsplat does. The batch
    dimensions of ``dirs`` and ``coeffs`` broadcast."""
    basis = sh_basis(degree, dirs)
    return torch.einsum("...k,...kc->...c", basis, coeffs[..., : basis.shape[-1], :])


def fitting_directions(count: int = 64) -> Float[Tensor, "count 3"]:
    """Well-spread unit directions (a Fibonacci sphere) on which the rotated basis is fitted."""
    i = torch.arange(count, dtype=torch.float64) + 0.5
    polar = torch.acos(1 - 2 * i / count)
    azimuth = torch.pi * (1 + 5**0.5) * i
    return torch.stack(
        [torch.sin(polar) * torch.cos(azimuth), torch.sin(polar) * torch.sin(azimuth), torch.cos(polar)], -1
    )


def sh_rotation_matrix(degree: int, rotation: Float[Tensor, "*batch 3 3"]) -> Float[Tensor, "*batch K K"]:
    """The block-diagonal M with basis(R d) = M basis(d), in gsplat's basis.

    Coefficients c describe the colour function d -> c . basis(d); the function d -> c . basis(R d), the
    same colours seen through R, has coefficients M^T c. M is found exactly (up to float64 rounding) by least
    squares on a fixed set of directions, since the rotated basis is a linear map of the original one.
    """
    directions, basis_inverse = (t.to(rotation.device) for t in _fitting_basis(degree))
    rotated = sh_basis(degree, torch.einsum("...ij,dj->...di", rotation.double(), directions))  # [..., D, K]
    solution = basis_inverse @ rotated  # [..., K, K] = M^T
    return solution.transpose(-1, -2).to(rotation.dtype)


@lru_cache(maxsize=MAX_SH_DEGREE + 1)
def _fitting_basis(degree: int) -> tuple[Float[Tensor, "D 3"], Float[Tensor, "K D"]]:
    """The fitting directions and the pseudo-inverse of the basis on them (float64, CPU; computed once)."""
    directions = fitting_directions()
    return directions, torch.linalg.pinv(sh_basis(degree, directions))
