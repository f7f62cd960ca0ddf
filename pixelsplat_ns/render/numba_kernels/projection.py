"""Numba CPU kernels for the projection and SH stage, with a hand-written backward pass (the SH basis: ``sh``).

The same arithmetic as the torch backend's ``projection.project_gaussians`` and
``spherical_harmonics.evaluate_sh`` (gsplat 1.4.0's ``fully_fused_projection`` in classic mode, then its SH
colours ``clamp(SH + 0.5, 0)``), one Gaussian at a time instead of through tensors of intermediates: the torch
version under autograd keeps every camera-frame covariance, Jacobian and SH basis for the backward pass and
launches dozens of small batched products; these kernels keep nothing and recompute what the backward pass
needs from the inputs.

Differences, none of result beyond rounding:

* Computed in float64 whatever the input dtype (the outputs are then rounded to it), so the radius
  ``ceil(3 sqrt(lambda))`` may differ from the float32 torch version's where lambda sits on a rounding
  boundary; the compositing's pixel boxes come from the opacity level, not from this radius, away from it.
  The constants (eps2d, the near and far planes) are rounded to the input dtype first, as gsplat holds them.
* SH colours are evaluated for drawn Gaussians only (radius > 0); the others get colour 0, which the
  compositing never reads (it gives them no gradient either).
* Gradients reach means, covariances and SH coefficients; none reach the cameras (``viewmats``, ``Ks``), so
  ``rasterize`` keeps the torch projection when those require gradients.
* Where x / z or y / z equals a limit of the field-of-view clamp exactly, torch's ``minimum``/``maximum``
  pass half the gradient and these kernels none (they pass it strictly inside the limits).

The gradient of each formula is the one autograd takes of ``project_gaussians``'s graph: the culling masks
(``torch.where`` on depth and determinant) stop it where they stop it, the 2D covariance's off-diagonal is
read from its (0, 1) entry only, and a clamped Jacobian term passes none.
"""

import math
from typing import Optional

import numba
import numpy as np
import torch
from jaxtyping import Float, Int
from numba import prange
from torch import Tensor

from pixelsplat_ns.render.numba_compilation import RENDERER, announces_compilation
from pixelsplat_ns.render.numba_kernels.sh import _sh_basis, _sh_basis_gradient
from pixelsplat_ns.render.numba_kernels.tiles import _numpy
from pixelsplat_ns.render.spherical_harmonics import MAX_SH_DEGREE, num_sh_bases
from pixelsplat_ns.render.untraced import untraced

CHUNK = 512  # Gaussians per parallel work item (each item allocates its small scratch arrays once)
QUATERNION_EPS = 1e-8  # ``conventions.quaternion_to_matrix``'s eps
NORMALIZE_EPS = 1e-12  # torch.nn.functional.normalize's default: |d| is clamped to at least this


@numba.njit(cache=True)
def _unit_quaternion(quats, m):
    """(w, x, y, z) of Gaussian m's quaternion divided by max(|q|, 1e-12) (``torch.nn.functional.normalize``),
    and |q|."""
    w, x, y, z = np.float64(quats[m, 0]), np.float64(quats[m, 1]), np.float64(quats[m, 2]), np.float64(quats[m, 3])
    norm = math.sqrt(w * w + x * x + y * y + z * z)
    inv = 1.0 / max(norm, NORMALIZE_EPS)
    return w * inv, x * inv, y * inv, z * inv, norm


@numba.njit(cache=True)
def _rotation(r, i, j, k):
    """``conventions.quaternion_to_matrix`` of (r, i, j, k), row-major, and its ``two_s`` = 2 / (|q|^2 + 1e-8)."""
    two_s = 2.0 / (r * r + i * i + j * j + k * k + QUATERNION_EPS)
    return (
        1.0 - two_s * (j * j + k * k),
        two_s * (i * j - k * r),
        two_s * (i * k + j * r),
        two_s * (i * j + k * r),
        1.0 - two_s * (i * i + k * k),
        two_s * (j * k - i * r),
        two_s * (i * k - j * r),
        two_s * (j * k + i * r),
        1.0 - two_s * (i * i + j * j),
    ), two_s


@numba.njit(cache=True)
def _world_covariance(covars, quats, scales, from_quats, m):
    """Gaussian m's world covariance (row-major, 9 entries): ``covars[m]``, or with ``from_quats``
    ``quat_scale_to_covar``'s R S S^T R^T (M = R diag(s), then M M^T)."""
    if not from_quats:
        s = covars[m]
        return (s[0, 0], s[0, 1], s[0, 2], s[1, 0], s[1, 1], s[1, 2], s[2, 0], s[2, 1], s[2, 2])
    qw, qx, qy, qz, _ = _unit_quaternion(quats, m)
    rot, _ = _rotation(qw, qx, qy, qz)
    s0, s1, s2 = scales[m, 0], scales[m, 1], scales[m, 2]
    m00, m01, m02 = rot[0] * s0, rot[1] * s1, rot[2] * s2
    m10, m11, m12 = rot[3] * s0, rot[4] * s1, rot[5] * s2
    m20, m21, m22 = rot[6] * s0, rot[7] * s1, rot[8] * s2
    c00 = m00 * m00 + m01 * m01 + m02 * m02
    c01 = m00 * m10 + m01 * m11 + m02 * m12
    c02 = m00 * m20 + m01 * m21 + m02 * m22
    c11 = m10 * m10 + m11 * m11 + m12 * m12
    c12 = m10 * m20 + m11 * m21 + m12 * m22
    c22 = m20 * m20 + m21 * m21 + m22 * m22
    return (c00, c01, c02, c01, c11, c12, c02, c12, c22)


@numba.njit(cache=True)
def _quaternion_scale_gradient(quats, scales, m, g, v_rot):
    """d/d quats[m] and d/d scales[m] from ``g``, the gradient of Gaussian m's world covariance (3 x 3): back
    through M M^T, M = R diag(s), ``quaternion_to_matrix`` (with its two_s) and the normalization. ``v_rot``
    (9) is scratch space, the caller's, so that no Gaussian allocates."""
    qw, qx, qy, qz, norm = _unit_quaternion(quats, m)
    rot, two_s = _rotation(qw, qx, qy, qz)
    s = (scales[m, 0], scales[m, 1], scales[m, 2])
    # Sigma = M M^T: dM = (G + G^T) M
    mm = (
        rot[0] * s[0],
        rot[1] * s[1],
        rot[2] * s[2],
        rot[3] * s[0],
        rot[4] * s[1],
        rot[5] * s[2],
        rot[6] * s[0],
        rot[7] * s[1],
        rot[8] * s[2],
    )
    v_s0 = v_s1 = v_s2 = 0.0
    for i in range(3):
        for j in range(3):
            v_m = 0.0
            for k in range(3):
                v_m += (g[i, k] + g[k, i]) * mm[3 * k + j]
            # M[i][j] = R[i][j] s[j]
            v_rot[3 * i + j] = v_m * s[j]
            if j == 0:
                v_s0 += v_m * rot[3 * i]
            elif j == 1:
                v_s1 += v_m * rot[3 * i + 1]
            else:
                v_s2 += v_m * rot[3 * i + 2]
    v00, v01, v02, v10, v11, v12, v20, v21, v22 = (
        v_rot[0],
        v_rot[1],
        v_rot[2],
        v_rot[3],
        v_rot[4],
        v_rot[5],
        v_rot[6],
        v_rot[7],
        v_rot[8],
    )
    r, i, j, k = qw, qx, qy, qz
    v_two_s = (
        -v00 * (j * j + k * k)
        + v01 * (i * j - k * r)
        + v02 * (i * k + j * r)
        + v10 * (i * j + k * r)
        - v11 * (i * i + k * k)
        + v12 * (j * k - i * r)
        + v20 * (i * k - j * r)
        + v21 * (j * k + i * r)
        - v22 * (i * i + j * j)
    )
    through_norm = -two_s * two_s * v_two_s  # d two_s / d q = -two_s^2 q
    v_r = two_s * (-v01 * k + v02 * j + v10 * k - v12 * i - v20 * j + v21 * i) + through_norm * r
    v_i = (
        two_s * (v01 * j + v02 * k + v10 * j - 2.0 * v11 * i - v12 * r + v20 * k + v21 * r - 2.0 * v22 * i)
        + through_norm * i
    )
    v_j = (
        two_s * (-2.0 * v00 * j + v01 * i + v02 * r + v10 * i + v12 * k - v20 * r + v21 * k - 2.0 * v22 * j)
        + through_norm * j
    )
    v_k = (
        two_s * (-2.0 * v00 * k - v01 * r + v02 * i + v10 * r - 2.0 * v11 * k + v12 * j + v20 * i + v21 * j)
        + through_norm * k
    )
    # q / max(|q|, eps): (v - u (u . v)) / |q|
    inv = 1.0 / max(norm, NORMALIZE_EPS)
    dot = (r * v_r + i * v_i + j * v_j + k * v_k) if norm > NORMALIZE_EPS else 0.0
    return (
        (v_r - r * dot) * inv,
        (v_i - i * dot) * inv,
        (v_j - j * dot) * inv,
        (v_k - k * dot) * inv,
        v_s0,
        v_s1,
        v_s2,
    )


@numba.njit(cache=True)
def _camera_frame(means, sigma, rotations, translations, c, m):
    """The mean (x, y, z) and the covariance R Sigma R^T (row-major, 9 entries) in camera c's frame, from the
    world covariance ``sigma`` (row-major, 9 entries)."""
    r = rotations[c]
    mx, my, mz = means[m, 0], means[m, 1], means[m, 2]
    x = r[0, 0] * mx + r[0, 1] * my + r[0, 2] * mz + translations[c, 0]
    y = r[1, 0] * mx + r[1, 1] * my + r[1, 2] * mz + translations[c, 1]
    z = r[2, 0] * mx + r[2, 1] * my + r[2, 2] * mz + translations[c, 2]
    # W = R Sigma, then Sigma_c = W R^T
    w00 = r[0, 0] * sigma[0] + r[0, 1] * sigma[3] + r[0, 2] * sigma[6]
    w01 = r[0, 0] * sigma[1] + r[0, 1] * sigma[4] + r[0, 2] * sigma[7]
    w02 = r[0, 0] * sigma[2] + r[0, 1] * sigma[5] + r[0, 2] * sigma[8]
    w10 = r[1, 0] * sigma[0] + r[1, 1] * sigma[3] + r[1, 2] * sigma[6]
    w11 = r[1, 0] * sigma[1] + r[1, 1] * sigma[4] + r[1, 2] * sigma[7]
    w12 = r[1, 0] * sigma[2] + r[1, 1] * sigma[5] + r[1, 2] * sigma[8]
    w20 = r[2, 0] * sigma[0] + r[2, 1] * sigma[3] + r[2, 2] * sigma[6]
    w21 = r[2, 0] * sigma[1] + r[2, 1] * sigma[4] + r[2, 2] * sigma[7]
    w22 = r[2, 0] * sigma[2] + r[2, 1] * sigma[5] + r[2, 2] * sigma[8]
    s00 = w00 * r[0, 0] + w01 * r[0, 1] + w02 * r[0, 2]
    s01 = w00 * r[1, 0] + w01 * r[1, 1] + w02 * r[1, 2]
    s02 = w00 * r[2, 0] + w01 * r[2, 1] + w02 * r[2, 2]
    s10 = w10 * r[0, 0] + w11 * r[0, 1] + w12 * r[0, 2]
    s11 = w10 * r[1, 0] + w11 * r[1, 1] + w12 * r[1, 2]
    s12 = w10 * r[2, 0] + w11 * r[2, 1] + w12 * r[2, 2]
    s20 = w20 * r[0, 0] + w21 * r[0, 1] + w22 * r[0, 2]
    s21 = w20 * r[1, 0] + w21 * r[1, 1] + w22 * r[1, 2]
    s22 = w20 * r[2, 0] + w21 * r[2, 1] + w22 * r[2, 2]
    return x, y, z, (s00, s01, s02, s10, s11, s12, s20, s21, s22)


@numba.njit(cache=True)
def _jacobian(x, y, z, intrinsics, limits, near, far):
    """gsplat's clamped perspective Jacobian: (in_depth, z_safe, rz, tx, ty, pass_x, pass_y, j00, j02, j11,
    j12), with (tx, ty) = z * clamp(x / z, y / z) and pass whether x / z (y / z) lies strictly inside the
    clamp's limits."""
    fx, fy = intrinsics[0], intrinsics[1]
    in_depth = z >= near and z <= far
    z_safe = z if in_depth else 1.0
    rz = 1.0 / z_safe
    u_x, u_y = x * rz, y * rz
    pass_x = -limits[1] < u_x < limits[0]
    pass_y = -limits[3] < u_y < limits[2]
    tx = z_safe * min(limits[0], max(-limits[1], u_x))
    ty = z_safe * min(limits[2], max(-limits[3], u_y))
    return in_depth, z_safe, rz, tx, ty, pass_x, pass_y, fx * rz, -fx * tx * rz * rz, fy * rz, -fy * ty * rz * rz


@numba.njit(cache=True)
def _covariance_2d(s, j00, j02, j11, j12, eps2d):
    """(a, b, c): J Sigma_c J^T's (0, 0), (0, 1) and (1, 1) entries, the blur added to the diagonal."""
    s00, s01, s02, s10, s11, s12, s20, s21, s22 = s
    a = j00 * (j00 * s00 + j02 * s20) + j02 * (j00 * s02 + j02 * s22) + eps2d
    b = (j00 * s01 + j02 * s21) * j11 + (j00 * s02 + j02 * s22) * j12
    c = j11 * (j11 * s11 + j12 * s21) + j12 * (j11 * s12 + j12 * s22) + eps2d
    return a, b, c


@numba.njit(cache=True)
def _project(means, sigma, rotations, translations, intrinsics, limits, near, far, eps2d, c, m):
    """Gaussian m (world covariance ``sigma``) in camera c, what both kernels start from: the camera-frame mean
    and covariance, ``_jacobian``'s results, the blurred 2D covariance (a, b, c) and whether it is drawn by
    the depth and determinant rules, with the determinant torch divides by (1 where culled)."""
    x, y, z, s = _camera_frame(means, sigma, rotations, translations, c, m)
    in_depth, z_safe, rz, tx, ty, pass_x, pass_y, j00, j02, j11, j12 = _jacobian(
        x, y, z, intrinsics[c], limits[c], near, far
    )
    a, b, cc = _covariance_2d(s, j00, j02, j11, j12, eps2d)
    det = a * cc - b * b
    valid = in_depth and det > 0.0
    return (
        x,
        y,
        z,
        s,
        in_depth,
        z_safe,
        rz,
        tx,
        ty,
        pass_x,
        pass_y,
        j00,
        j02,
        j11,
        j12,
        a,
        b,
        cc,
        det,
        valid,
        det if valid else 1.0,
    )


@numba.njit(parallel=True, cache=True)
def _forward_kernel(
    means,
    covars,
    quats,
    scales,
    from_quats,
    coeffs,
    rotations,
    translations,
    intrinsics,
    limits,
    centers,
    width,
    height,
    eps2d,
    near,
    far,
    degree,
    shade,
    radii,
    means2d,
    depths,
    conics,
    colors,
):
    """Fills radii [C, N], means2d [C, N, 2], depths [C, N], conics [C, N, 3] and, with ``shade``, colours
    [C, N, 3] (coefficients ``coeffs`` [1 or C, N, K, 3]); the covariances are ``covars`` [N, 3, 3] or, with
    ``from_quats``, made from ``quats`` [N, 4] and ``scales`` [N, 3]."""
    n_cameras, n = radii.shape
    n_bases = (degree + 1) * (degree + 1)
    per_camera_coeffs = coeffs.shape[0] > 1
    for chunk in prange((n + CHUNK - 1) // CHUNK):
        basis = np.empty(25)
        for m in range(chunk * CHUNK, min(n, (chunk + 1) * CHUNK)):
            sigma = _world_covariance(covars, quats, scales, from_quats, m)
            for c in range(n_cameras):
                x, y, z, _, _, _, rz, _, _, _, _, _, _, _, _, a, b, cc, det, valid, det_safe = _project(
                    means, sigma, rotations, translations, intrinsics, limits, near, far, eps2d, c, m
                )
                conics[c, m, 0], conics[c, m, 1], conics[c, m, 2] = cc / det_safe, -b / det_safe, a / det_safe
                mean_x = intrinsics[c, 0] * x * rz + intrinsics[c, 2]
                mean_y = intrinsics[c, 1] * y * rz + intrinsics[c, 3]
                means2d[c, m, 0], means2d[c, m, 1] = mean_x, mean_y
                depths[c, m] = z
                half_trace = 0.5 * (a + cc)
                radius = math.ceil(3.0 * math.sqrt(half_trace + math.sqrt(max(half_trace * half_trace - det, 0.01))))
                on_screen = (
                    mean_x + radius > 0 and mean_x - radius < width and mean_y + radius > 0 and mean_y - radius < height
                )
                drawn = valid and on_screen and radius > 0
                radii[c, m] = int(radius) if drawn else 0
                if not shade:
                    continue
                if not drawn:
                    colors[c, m, 0] = colors[c, m, 1] = colors[c, m, 2] = 0.0
                    continue
                dx, dy, dz = means[m, 0] - centers[c, 0], means[m, 1] - centers[c, 1], means[m, 2] - centers[c, 2]
                inv_norm = 1.0 / max(math.sqrt(dx * dx + dy * dy + dz * dz), NORMALIZE_EPS)
                _sh_basis(degree, dx * inv_norm, dy * inv_norm, dz * inv_norm, basis)
                k = coeffs[c if per_camera_coeffs else 0, m]
                for channel in range(3):
                    value = 0.0
                    for i in range(n_bases):
                        value += basis[i] * k[i, channel]
                    colors[c, m, channel] = max(value + 0.5, 0.0)


@numba.njit(parallel=True, cache=True)
def _backward_kernel(
    means,
    covars,
    quats,
    scales,
    from_quats,
    coeffs,
    rotations,
    translations,
    intrinsics,
    limits,
    centers,
    eps2d,
    near,
    far,
    degree,
    shade,
    radii,
    v_means2d,
    v_depths,
    v_conics,
    v_colors,
    v_means,
    v_covars,
    v_quats,
    v_scales,
    v_coeffs,
):
    """Writes the gradients of means [N, 3], covariances [N, 3, 3] (or with ``from_quats`` quats [N, 4] and
    scales [N, 3]) and, with ``shade``, coefficients (``v_coeffs`` shaped like ``coeffs``) from those of the
    outputs, summed over cameras in float64 and written once: the output arrays are fresh memory, and every
    write to it costs (page faults), so each entry is written exactly once and nothing is zero-filled
    beforehand."""
    n_cameras, n = radii.shape
    n_bases = (degree + 1) * (degree + 1)
    n_coeffs = coeffs.shape[2]
    per_camera_coeffs = coeffs.shape[0] > 1
    for chunk in prange((n + CHUNK - 1) // CHUNK):
        basis = np.empty(25)
        weights = np.empty(25)
        g_cov = np.empty((3, 3))
        g_k = np.empty((n_coeffs, 3))
        v_rot = np.empty(9)
        for m in range(chunk * CHUNK, min(n, (chunk + 1) * CHUNK)):
            g_mx = g_my = g_mz = 0.0  # d/d means
            g_cov[:] = 0.0
            if shade:
                g_k[:] = 0.0
            sigma = _world_covariance(covars, quats, scales, from_quats, m)
            for c in range(n_cameras):
                r = rotations[c]
                fx, fy = intrinsics[c, 0], intrinsics[c, 1]
                (
                    x,
                    y,
                    z,
                    s,
                    in_depth,
                    z_safe,
                    rz,
                    tx,
                    ty,
                    pass_x,
                    pass_y,
                    j00,
                    j02,
                    j11,
                    j12,
                    a,
                    b,
                    cc,
                    det,
                    valid,
                    det_safe,
                ) = _project(means, sigma, rotations, translations, intrinsics, limits, near, far, eps2d, c, m)

                # conics = (c, -b, a) / det_safe
                v_ca, v_cb, v_cc = v_conics[c, m, 0], v_conics[c, m, 1], v_conics[c, m, 2]
                inv = 1.0 / det_safe
                v_a, v_b, v_c = v_cc * inv, -v_cb * inv, v_ca * inv
                if valid:
                    v_det = -(v_ca * cc - v_cb * b + v_cc * a) * inv * inv
                    v_a += v_det * cc
                    v_c += v_det * a
                    v_b -= 2.0 * b * v_det

                # J Sigma_c J^T with V = [[v_a, v_b], [0, v_c]]:
                # d Sigma_c = J^T V J, dJ = V J Sigma_c^T + V^T J Sigma_c
                s00, s01, s02, s10, s11, s12, s20, s21, s22 = s
                t00, t01, t02 = j00 * s00 + j02 * s20, j00 * s01 + j02 * s21, j00 * s02 + j02 * s22  # J Sigma_c
                t11, t12 = j11 * s11 + j12 * s21, j11 * s12 + j12 * s22
                u00, u02 = j00 * s00 + j02 * s02, j00 * s20 + j02 * s22  # J Sigma_c^T, the columns J reads
                u10, u12 = j11 * s01 + j12 * s02, j11 * s21 + j12 * s22
                u11 = j11 * s11 + j12 * s12
                v_j00 = v_a * u00 + v_b * u10 + v_a * t00
                v_j02 = v_a * u02 + v_b * u12 + v_a * t02
                v_j11 = v_c * u11 + v_b * t01 + v_c * t11
                v_j12 = v_c * u12 + v_b * t02 + v_c * t12
                # rows of J: p = (j00, 0, j02), q = (0, j11, j12); d Sigma_c = p (v_a p + v_b q)^T + q (v_c q)^T
                e0, e1, e2 = v_a * j00, v_b * j11, v_a * j02 + v_b * j12
                f1, f2 = v_c * j11, v_c * j12
                g00, g01, g02 = j00 * e0, j00 * e1, j00 * e2
                g10, g11, g12 = 0.0, j11 * f1, j11 * f2
                g20, g21, g22 = j02 * e0, j02 * e1 + j12 * f1, j02 * e2 + j12 * f2
                # d Sigma = R^T d Sigma_c R
                for i in range(3):
                    h0 = r[0, i] * g00 + r[1, i] * g10 + r[2, i] * g20
                    h1 = r[0, i] * g01 + r[1, i] * g11 + r[2, i] * g21
                    h2 = r[0, i] * g02 + r[1, i] * g12 + r[2, i] * g22
                    for k in range(3):
                        g_cov[i, k] += h0 * r[0, k] + h1 * r[1, k] + h2 * r[2, k]

                # J's entries: fx rz, -fx tx rz rz, fy rz, -fy ty rz rz
                v_rz = fx * v_j00 + fy * v_j11 - 2.0 * fx * tx * rz * v_j02 - 2.0 * fy * ty * rz * v_j12
                v_tx, v_ty = -fx * rz * rz * v_j02, -fy * rz * rz * v_j12
                # means2d = (fx x rz + cx, fy y rz + cy)
                v_mean_x, v_mean_y = v_means2d[c, m, 0], v_means2d[c, m, 1]
                v_x = fx * rz * v_mean_x
                v_y = fy * rz * v_mean_y
                v_rz += fx * x * v_mean_x + fy * y * v_mean_y
                # t = z_safe * clamp(u), u = x rz
                v_z_safe = v_tx * min(limits[c, 0], max(-limits[c, 1], x * rz)) + v_ty * min(
                    limits[c, 2], max(-limits[c, 3], y * rz)
                )
                if pass_x:
                    v_u = z_safe * v_tx
                    v_x += v_u * rz
                    v_rz += v_u * x
                if pass_y:
                    v_u = z_safe * v_ty
                    v_y += v_u * rz
                    v_rz += v_u * y
                v_z_safe -= v_rz * rz * rz
                v_z = v_depths[c, m] + (v_z_safe if in_depth else 0.0)
                g_mx += r[0, 0] * v_x + r[1, 0] * v_y + r[2, 0] * v_z
                g_my += r[0, 1] * v_x + r[1, 1] * v_y + r[2, 1] * v_z
                g_mz += r[0, 2] * v_x + r[1, 2] * v_y + r[2, 2] * v_z

                if not shade:
                    continue
                if per_camera_coeffs and c > 0:
                    g_k[:] = 0.0
                if radii[c, m] == 0:
                    if per_camera_coeffs:
                        v_coeffs[c, m] = 0.0
                    continue
                dx, dy, dz = means[m, 0] - centers[c, 0], means[m, 1] - centers[c, 1], means[m, 2] - centers[c, 2]
                norm = math.sqrt(dx * dx + dy * dy + dz * dz)
                inv_norm = 1.0 / max(norm, NORMALIZE_EPS)
                ux, uy, uz = dx * inv_norm, dy * inv_norm, dz * inv_norm
                _sh_basis(degree, ux, uy, uz, basis)
                k = coeffs[c if per_camera_coeffs else 0, m]
                v_col = (v_colors[c, m, 0], v_colors[c, m, 1], v_colors[c, m, 2])
                for i in range(n_bases):
                    weights[i] = 0.0
                for channel in range(3):
                    value = 0.0
                    for i in range(n_bases):
                        value += basis[i] * k[i, channel]
                    if value + 0.5 < 0.0:
                        continue  # clamped at 0: no gradient
                    g = v_col[channel]
                    for i in range(n_bases):
                        g_k[i, channel] += basis[i] * g
                        weights[i] += k[i, channel] * g
                gx, gy, gz = _sh_basis_gradient(degree, ux, uy, uz, weights)
                if norm > NORMALIZE_EPS:  # d/dd of d / |d|: (g - u (u . g)) / |d|
                    dot = ux * gx + uy * gy + uz * gz
                    g_mx += (gx - ux * dot) * inv_norm
                    g_my += (gy - uy * dot) * inv_norm
                    g_mz += (gz - uz * dot) * inv_norm
                else:
                    g_mx += gx * inv_norm
                    g_my += gy * inv_norm
                    g_mz += gz * inv_norm
                if per_camera_coeffs:
                    v_coeffs[c, m] = g_k
            if shade and not per_camera_coeffs:
                v_coeffs[0, m] = g_k
            v_means[m, 0], v_means[m, 1], v_means[m, 2] = g_mx, g_my, g_mz
            if from_quats:
                (
                    v_quats[m, 0],
                    v_quats[m, 1],
                    v_quats[m, 2],
                    v_quats[m, 3],
                    v_scales[m, 0],
                    v_scales[m, 1],
                    v_scales[m, 2],
                ) = _quaternion_scale_gradient(quats, scales, m, g_cov, v_rot)
            else:
                v_covars[m] = g_cov


def _cameras(viewmats: Tensor, Ks: Tensor, width: int, height: int, shade: bool):
    """Float64 numpy camera arrays: rotations [C, 3, 3], translations [C, 3], (fx, fy, cx, cy) [C, 4], the
    Jacobian's clamp limits (x+, x-, y+, y-) [C, 4] (1.3x the field of view, as gsplat) and camera centres."""
    viewmats, Ks = viewmats.detach().double(), Ks.detach().double()
    fx, fy, cx, cy = Ks[:, 0, 0], Ks[:, 1, 1], Ks[:, 0, 2], Ks[:, 1, 2]
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    limits = torch.stack(
        [
            (width - cx) / fx + 0.3 * tan_fovx,
            cx / fx + 0.3 * tan_fovx,
            (height - cy) / fy + 0.3 * tan_fovy,
            cy / fy + 0.3 * tan_fovy,
        ],
        dim=-1,
    )
    centers = torch.linalg.inv(viewmats)[:, :3, 3] if shade else viewmats.new_zeros(viewmats.shape[0], 3)
    return tuple(
        t.contiguous().numpy()
        for t in (viewmats[:, :3, :3], viewmats[:, :3, 3], torch.stack([fx, fy, cx, cy], -1), limits, centers)
    )


class _ProjectAndShade(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means, covars, quats, scales, coeffs, viewmats, Ks, width, height, eps2d, near, far, degree):
        shade, from_quats = coeffs is not None, covars is None
        n_cameras, n = viewmats.shape[0], means.shape[0]
        cameras = _cameras(viewmats, Ks, width, height, shade)
        radii = np.empty((n_cameras, n), dtype=np.int32)
        dtype = means.dtype
        means2d, depths = torch.empty(n_cameras, n, 2, dtype=dtype), torch.empty(n_cameras, n, dtype=dtype)
        conics = torch.empty(n_cameras, n, 3, dtype=dtype)
        colors = torch.empty(n_cameras, n if shade else 0, 3, dtype=dtype)
        _forward_kernel(
            *_gaussian_arrays(means, covars, quats, scales, coeffs),
            *cameras,
            width,
            height,
            eps2d,
            near,
            far,
            degree if shade else 0,
            shade,
            radii,
            means2d.numpy(),
            depths.numpy(),
            conics.numpy(),
            colors.numpy(),
        )
        radii = torch.from_numpy(radii)
        ctx.mark_non_differentiable(radii)
        ctx.save_for_backward(means, covars, quats, scales, coeffs)
        ctx.setup = (cameras, radii, eps2d, near, far, degree if shade else 0, shade, from_quats)
        return radii, means2d, depths, conics, colors

    @staticmethod
    @announces_compilation(RENDERER)
    def backward(ctx, _v_radii, v_means2d, v_depths, v_conics, v_colors):
        means, covars, quats, scales, coeffs = ctx.saved_tensors
        cameras, radii, eps2d, near, far, degree, shade, from_quats = ctx.setup
        n_cameras, n = radii.shape
        dtype = means.dtype
        # Upstream gradients that did not arrive are zeros in the inputs' dtype (one compiled signature).
        zeros = lambda *shape: np.zeros(shape, dtype=_numpy(means).dtype)  # noqa: E731
        v_means2d = zeros(n_cameras, n, 2) if v_means2d is None else _numpy(v_means2d)
        v_depths = zeros(n_cameras, n) if v_depths is None else _numpy(v_depths)
        v_conics = zeros(n_cameras, n, 3) if v_conics is None else _numpy(v_conics)
        v_colors = zeros(n_cameras, n if shade else 0, 3) if v_colors is None else _numpy(v_colors)
        arrays = _gaussian_arrays(means, covars, quats, scales, coeffs)
        # Fresh outputs, each entry written once by the kernel (unused ones are one-element placeholders).
        v_means = torch.empty(n, 3, dtype=dtype)
        v_covars = torch.empty((1, 3, 3) if from_quats else (n, 3, 3), dtype=dtype)
        v_quats = torch.empty((n, 4) if from_quats else (1, 4), dtype=dtype)
        v_scales = torch.empty((n, 3) if from_quats else (1, 3), dtype=dtype)
        v_coeffs = torch.empty(arrays[-1].shape if shade else (1, 1, 1, 3), dtype=dtype)
        _backward_kernel(
            *arrays,
            *cameras,
            eps2d,
            near,
            far,
            degree,
            shade,
            radii.numpy(),
            v_means2d,
            v_depths,
            v_conics,
            v_colors,
            v_means.numpy(),
            v_covars.numpy(),
            v_quats.numpy(),
            v_scales.numpy(),
            v_coeffs.numpy(),
        )
        if from_quats:
            v_covars = None
        else:
            v_quats = v_scales = None
        v_coeffs = v_coeffs.view(coeffs.shape) if shade else None
        return v_means, v_covars, v_quats, v_scales, v_coeffs, None, None, None, None, None, None, None, None


def _gaussian_arrays(means, covars, quats, scales, coeffs) -> tuple:
    """The kernels' (means, covars, quats, scales, from_quats, coeffs): numpy arrays of one dtype, with
    one-element placeholders for what is not given (the kernels take one signature); the coefficients as
    [1 or C, N, K, 3]."""
    means = _numpy(means)
    placeholder = lambda *shape: np.zeros(shape, dtype=means.dtype)  # noqa: E731
    from_quats = covars is None
    return (
        means,
        placeholder(1, 3, 3) if from_quats else _numpy(covars),
        _numpy(quats) if from_quats else placeholder(1, 4),
        _numpy(scales) if from_quats else placeholder(1, 3),
        from_quats,
        placeholder(1, 1, 1, 3) if coeffs is None else _numpy(coeffs if coeffs.dim() == 4 else coeffs[None]),
    )


@untraced  # the viewer's interrupts must not land inside a kernel (see untraced.py)
@announces_compilation(RENDERER)
def project_and_shade_numba(
    means: Float[Tensor, "N 3"],
    covars: Optional[Float[Tensor, "N 3 3"]],
    coeffs: Optional[Tensor],  # SH [N, K, 3] or per camera [C, N, K, 3]
    viewmats: Float[Tensor, "C 4 4"],
    Ks: Float[Tensor, "C 3 3"],
    width: int,
    height: int,
    eps2d: float,
    near_plane: float,
    far_plane: float,
    sh_degree: Optional[int],
    quats: Optional[Float[Tensor, "N 4"]] = None,
    scales: Optional[Float[Tensor, "N 3"]] = None,
) -> tuple[
    Int[Tensor, "C N"],
    Float[Tensor, "C N 2"],
    Float[Tensor, "C N"],
    Float[Tensor, "C N 3"],
    Optional[Float[Tensor, "C N 3"]],
]:
    """``project_gaussians`` into every camera and, given SH ``coeffs`` (degree ``sh_degree``, coefficients
    beyond it ignored), the colours ``clamp(SH + 0.5, 0)`` along the direction from each camera centre, on CPU
    tensors (float32 or float64): (radii, means2d, depths, conics, colours or None). The covariances are
    ``covars`` or, when it is None, ``quat_scale_to_covar(quats, scales)`` (wxyz quaternions, normalized here;
    linear scales). Differentiable with respect to means, covars (or quats and scales) and coeffs; ``viewmats``
    and ``Ks`` get no gradient.

    Raises:
        ValueError: for tensors off the CPU, neither or both of covars and quats/scales, or too few SH
            coefficients for ``sh_degree`` (degrees 0-4).
    """
    if means.device.type != "cpu":
        raise ValueError(f"project_and_shade_numba needs CPU tensors, got {means.device}")
    if (covars is None) != (quats is not None and scales is not None) or (
        covars is not None and (quats is not None or scales is not None)
    ):
        raise ValueError("project_and_shade_numba takes covars, or quats and scales, not both")
    if coeffs is not None and not (
        sh_degree is not None and 0 <= sh_degree <= MAX_SH_DEGREE and coeffs.shape[-2] >= num_sh_bases(sh_degree)
    ):
        raise ValueError(
            f"SH degree {sh_degree} needs at least {num_sh_bases(sh_degree or 0)} coefficients per "
            f"Gaussian (degrees 0-{MAX_SH_DEGREE}), got {list(coeffs.shape)}"
        )
    # gsplat and the torch projection hold eps2d and the depth limits in the inputs' dtype (float32: 0.01 is
    # 0.00999999978); the kernels compute in float64, so they get them rounded to it, or a Gaussian lying
    # exactly on a depth limit would be culled here and drawn there.
    eps2d, near_plane, far_plane = torch.tensor([eps2d, near_plane, far_plane], dtype=means.dtype).tolist()
    radii, means2d, depths, conics, colors = _ProjectAndShade.apply(
        means,
        covars,
        quats,
        scales,
        coeffs,
        viewmats,
        Ks,
        int(width),
        int(height),
        eps2d,
        near_plane,
        far_plane,
        sh_degree,
    )
    return radii, means2d, depths, conics, colors if coeffs is not None else None
