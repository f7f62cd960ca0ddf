"""Real spherical harmonics in gsplat's basis (degrees 0-4), the colour model of every rasterize call.

The basis is the one of the 3DGS / gsplat renderers: real SH with the Condon-Shortley phase, ordered
m = -l..l within each degree, evaluated at the normalized viewing direction (Gaussian minus camera centre).
"""

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
    degree: int, dirs: Float[Tensor, "*batch 3"], coeffs: Float[Tensor, "*batch K 3"]
) -> Float[Tensor, "*batch 3"]:
    """Colour before gsplat's +0.5 offset; coefficients beyond ``degree`` are ignored, as gsplat does."""
    basis = sh_basis(degree, dirs)
    return torch.einsum("...k,...kc->...c", basis, coeffs[..., : basis.shape[-1], :])
