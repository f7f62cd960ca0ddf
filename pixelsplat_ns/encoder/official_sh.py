"""The official code's view-dependent colour, mapped exactly into gsplat's SH basis.

The official encoder predicts SH coefficients in the camera frame, rotates them to the world with e3nn's
Wigner matrices (``src/misc/sh_rotation.py``), and its renderer (``diff-gaussian-rasterization-modified``,
``computeColorFromSH`` in ``forward.cu``) evaluates them with the 3DGS formula at the permuted world direction
(x, y, z) := (d.z, d.x, d.y). Two quirks of that code decide what its colours are:

1. **Coefficient 14.** The forward kernel evaluates degree-3 coefficient 14 as ``C * z * (zz - xx)`` where its
   backward kernel, the original 3DGS formula and e3nn have ``C * y * (zz - xx)``. The checkpoints were trained
   through that forward kernel and the paper's numbers measured with it. A cubic on the sphere lies in the span
   of degrees 1 and 3, so the typo'd function is exactly a combination of gsplat's basis functions:
   ``coefficient_14="official_forward_kernel"`` uses it, ``"consistent"`` the consistent function.
2. **The rotation.** e3nn's Wigner matrices rotate coefficients of e3nn's basis, which is the permuted 3DGS
   basis up to the signs (-1)^k of coefficient k; the renderer leaves the signs out, so the official product is
   not a rotation of the colour function, and the colours depend on the world frame the encoder runs in.
   ``rotation="official"`` reproduces that (in whatever frame the cameras are given); ``"frame_independent"``
   rotates the camera-frame colour function to the world exactly, so the colours depend only on the direction
   relative to the camera. In the camera's own frame the two agree.

Either way the result is one matrix per view: gsplat coefficients = A @ official camera coefficients.
"""

from functools import lru_cache
from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor

from pixelsplat_ns.render.spherical_harmonics import fitting_directions, num_sh_bases, sh_basis, sh_rotation_matrix

ShRotation = Literal["official", "frame_independent"]
Coefficient14 = Literal["official_forward_kernel", "consistent"]

PERMUTATION = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
"""P with P d = (d.z, d.x, d.y): the direction at which the official renderer evaluates the 3DGS formula."""
TYPO_COEFFICIENT = 14
SH_C3_5 = 1.445305721320277
"""The 3DGS constant of degree-3 coefficient 14 (``SH_C3[5]``)."""


def official_forward_kernel_14(directions: Float[Tensor, "*batch 3"]) -> Float[Tensor, " *batch"]:
    """Coefficient 14's basis function as the official forward kernel evaluates it at world directions d
    (normalized): ``SH_C3[5] * d.z * (d.z^2 - d.x^2)``."""
    x, _, z = torch.nn.functional.normalize(directions, dim=-1).unbind(-1)
    return SH_C3_5 * z * (z * z - x * x)


@lru_cache(maxsize=8)
def official_evaluation_basis(degree: int, coefficient_14: Coefficient14) -> Float[Tensor, "k k"]:
    """E with (official basis functions at d) = E @ (gsplat's basis at d), float64 on the CPU.

    Consistent: E = M(P), since gsplat's basis at P d is M(P) times it at d. With the forward kernel's typo,
    row 14 is the typo'd function's coefficients in gsplat's basis (degrees 1 and 3), found by least squares
    on well-spread directions: exact up to float64 rounding, as the function lies in the basis' span."""
    evaluation = sh_rotation_matrix(degree, PERMUTATION).clone()
    if coefficient_14 == "official_forward_kernel" and degree >= 3:
        directions = fitting_directions()
        solution = torch.linalg.lstsq(sh_basis(degree, directions), official_forward_kernel_14(directions)[:, None])
        evaluation[TYPO_COEFFICIENT] = solution.solution[:, 0]
    return evaluation


@lru_cache(maxsize=8)
def _e3nn_signs(degree: int) -> Float[Tensor, " k"]:
    """(-1)^k: e3nn's basis is the permuted 3DGS basis with these signs."""
    return torch.tensor([(-1.0) ** k for k in range(num_sh_bases(degree))], dtype=torch.float64)


def official_sh_to_gsplat(
    degree: int,
    camera_to_world: Float[Tensor, "*batch 3 3"],
    rotation: ShRotation = "official",
    coefficient_14: Coefficient14 = "consistent",
) -> Float[Tensor, "*batch k k"]:
    """A with gsplat's world coefficients = A @ the official camera-frame coefficients (degrees 0..``degree``),
    on ``camera_to_world``'s device and in its dtype (computed in float64).

    With E the official evaluation basis (``official_evaluation_basis``), M(Q) gsplat's SH rotation matrix and
    S the e3nn signs: "official" is A = E^T S M(P R P^-1) S (e3nn's Wigner matrix of R, then the official
    evaluation); "frame_independent" is A = M(R) E^T (the camera-frame colour function, rotated)."""
    device = camera_to_world.device
    evaluation = official_evaluation_basis(degree, coefficient_14).to(device)
    rotation_matrix = camera_to_world.double()
    if rotation == "frame_independent":
        return (sh_rotation_matrix(degree, rotation_matrix) @ evaluation.T).to(camera_to_world.dtype)
    permutation, signs = PERMUTATION.to(device), _e3nn_signs(degree).to(device)
    wigner = signs[:, None] * sh_rotation_matrix(degree, permutation @ rotation_matrix @ permutation.T) * signs
    return (evaluation.T @ wigner).to(camera_to_world.dtype)
