"""The official code's view-dependent colour, reproduced exactly: the forward kernel's coefficient 14 and its
rotation, and the frame-independent alternative."""

import pytest
import torch

from pixelsplat_ns.checkpoints import config_from_official
from pixelsplat_ns.encoder.official_sh import official_sh_to_gsplat
from pixelsplat_ns.render.spherical_harmonics import sh_basis

pytestmark = pytest.mark.smoke  # also run in the nerfstudio user's environment (CI's second run)

e3nn = pytest.importorskip("e3nn.o3", reason="e3nn (a dev dependency) rotates coefficients as the official code")

C0 = 0.28209479177387814
C1 = 0.4886025119029199
C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)


def official_forward_kernel(sh: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """diff-gaussian-rasterization-modified's computeColorFromSH (forward.cu), degrees 0-3, written out term
    by term (before its +0.5 and clamp): e3nn's axis order, and ``z * (zz - xx)`` for coefficient 14."""
    x, y, z = torch.nn.functional.normalize(directions, dim=-1).unbind(-1)
    xx, yy, zz, zx, xy, zy = x * x, y * y, z * z, z * x, x * y, z * y
    terms = [
        C0 * torch.ones_like(x),
        -C1 * x,
        C1 * y,
        -C1 * z,
        C2[0] * zx,
        C2[1] * xy,
        C2[2] * (2 * yy - zz - xx),
        C2[3] * zy,
        C2[4] * (zz - xx),
        C3[0] * x * (3 * zz - xx),
        C3[1] * zx * y,
        C3[2] * x * (4 * yy - zz - xx),
        C3[3] * y * (2 * yy - 3 * zz - 3 * xx),
        C3[4] * z * (4 * yy - zz - xx),
        C3[5] * z * (zz - xx),
        C3[6] * z * (zz - 3 * xx),
    ]
    return torch.stack(terms, dim=-1) @ sh[:16]


def random_rotation(seed: int) -> torch.Tensor:
    q = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)))[0]
    return q * torch.sign(torch.det(q))


def official_world_coefficients(camera: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """The official ``rotate_sh``: e3nn's Wigner D matrices of the camera-to-world rotation, degree by degree."""
    angles = e3nn.matrix_to_angles(rotation)
    return torch.cat([e3nn.wigner_D(d, *angles).double() @ camera[d * d : (d + 1) ** 2] for d in range(5)])


def gsplat_colour(coefficients: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """What ``rasterize`` draws with sh_degree=3 (before +0.5): gsplat's basis, degrees 0-3."""
    return sh_basis(3, directions) @ coefficients[:16]


DIRECTIONS = torch.nn.functional.normalize(
    torch.randn(1000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)), dim=-1
)


@pytest.mark.parametrize("seed", range(5))
def test_the_forward_kernel_colours_are_reproduced_over_many_directions(seed):
    camera = torch.randn(25, dtype=torch.float64, generator=torch.Generator().manual_seed(10 + seed))
    camera[14] = 3.0  # a large coefficient 14 shows the typo plainly
    rotation = random_rotation(seed)
    official = official_forward_kernel(official_world_coefficients(camera, rotation), DIRECTIONS)
    ours = gsplat_colour(official_sh_to_gsplat(4, rotation, "official", "official_forward_kernel") @ camera, DIRECTIONS)
    assert float((ours - official).abs().max()) < 1e-5  # e3nn's Wigner matrices are float32
    consistent = gsplat_colour(official_sh_to_gsplat(4, rotation, "official", "consistent") @ camera, DIRECTIONS)
    assert float((consistent - official).abs().max()) > 0.1, "the consistent basis differs where 14 is large"


def test_the_typo_changes_coefficient_14_alone():
    """In the camera's own frame only coefficient 14 is drawn differently; rotated, the official code mixes
    degree 3 into coefficient 14 first, so every degree-3 coefficient is touched, and no other degree."""
    for rotation, touched in ((torch.eye(3, dtype=torch.float64), {14}), (random_rotation(7), set(range(9, 16)))):
        typo = official_sh_to_gsplat(4, rotation, "official", "official_forward_kernel")
        consistent = official_sh_to_gsplat(4, rotation, "official", "consistent")
        differs = {k for k in range(25) if not torch.allclose(typo[:, k], consistent[:, k], atol=1e-12)}
        assert differs == touched


@pytest.mark.parametrize("coefficient_14", ["official_forward_kernel", "consistent"])
def test_frame_independent_colours_depend_only_on_the_direction_from_the_camera(coefficient_14):
    """The same camera in two world frames (the second rotated by Q): frame-independent colours agree on the
    same physical direction; the official ones do not, and in the camera's own frame the two modes agree."""
    camera = torch.randn(25, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    r1, q = random_rotation(4), random_rotation(5)
    r2 = q @ r1
    colours = {}
    for mode in ("frame_independent", "official"):
        in_world_1 = gsplat_colour(official_sh_to_gsplat(4, r1, mode, coefficient_14) @ camera, DIRECTIONS)
        in_world_2 = gsplat_colour(official_sh_to_gsplat(4, r2, mode, coefficient_14) @ camera, DIRECTIONS @ q.T)
        colours[mode] = float((in_world_1 - in_world_2).abs().max())
    assert colours["frame_independent"] < 1e-10 and colours["official"] > 1e-2, colours
    identity = torch.eye(3, dtype=torch.float64)
    assert torch.allclose(
        official_sh_to_gsplat(4, identity, "official", coefficient_14),
        official_sh_to_gsplat(4, identity, "frame_independent", coefficient_14),
        atol=1e-12,
    )


def test_official_checkpoints_draw_what_the_paper_measured():
    config = config_from_official({"epipolar_transformer.depth_encoding.1.weight": torch.zeros(1)})
    assert (config.sh_rotation, config.sh_coefficient_14) == ("official", "official_forward_kernel")
