"""gsplat's SH basis and its gradient at one unit direction, as numba helpers of the projection kernels.

The same functions as ``spherical_harmonics.sh_basis`` (gsplat 1.4.0's basis, degrees 0-4, in the same order),
written out for one direction at a time so that the kernels keep no basis per Gaussian; the gradient is that
of the basis taken as polynomials in x, y and z, the normalization's own left to the caller.
"""

import numba

# gsplat's SH constants, in ``spherical_harmonics.sh_basis``'s order.
C0 = 0.28209479177387814
C1 = 0.4886025119029199
C2 = (1.0925484305920792, 0.31539156525252005, 0.5462742152960396)
C3 = (0.5900435899266435, 2.890611442640554, 0.4570457994644658, 0.3731763325901154, 1.445305721320277)
C4 = (
    2.5033429417967046,
    1.7701307697799304,
    0.9461746957575601,
    0.6690465435572892,
    0.10578554691520431,
    0.47308734787878,
    0.6258357354491763,
)


@numba.njit(cache=True)
def _sh_basis(degree, x, y, z, out):
    """The (degree + 1)^2 basis functions at the unit direction (x, y, z), into ``out``."""
    out[0] = C0
    if degree < 1:
        return
    out[1], out[2], out[3] = -C1 * y, C1 * z, -C1 * x
    if degree < 2:
        return
    xx, yy, zz = x * x, y * y, z * z
    out[4] = C2[0] * x * y
    out[5] = -C2[0] * y * z
    out[6] = C2[1] * (3.0 * zz - 1.0)
    out[7] = -C2[0] * x * z
    out[8] = C2[2] * (xx - yy)
    if degree < 3:
        return
    out[9] = -C3[0] * y * (3.0 * xx - yy)
    out[10] = C3[1] * x * y * z
    out[11] = -C3[2] * y * (5.0 * zz - 1.0)
    out[12] = C3[3] * z * (5.0 * zz - 3.0)
    out[13] = -C3[2] * x * (5.0 * zz - 1.0)
    out[14] = C3[4] * z * (xx - yy)
    out[15] = -C3[0] * x * (xx - 3.0 * yy)
    if degree < 4:
        return
    out[16] = C4[0] * x * y * (xx - yy)
    out[17] = -C4[1] * y * z * (3.0 * xx - yy)
    out[18] = C4[2] * x * y * (7.0 * zz - 1.0)
    out[19] = -C4[3] * y * z * (7.0 * zz - 3.0)
    out[20] = C4[4] * (35.0 * zz * zz - 30.0 * zz + 3.0)
    out[21] = -C4[3] * x * z * (7.0 * zz - 3.0)
    out[22] = C4[5] * (xx - yy) * (7.0 * zz - 1.0)
    out[23] = -C4[1] * x * z * (xx - 3.0 * yy)
    out[24] = C4[6] * (xx * xx - 6.0 * xx * yy + yy * yy)


@numba.njit(cache=True)
def _sh_basis_gradient(degree, x, y, z, w):
    """sum_k w[k] grad(basis_k) at (x, y, z), the basis taken as polynomials in x, y and z (the gradient with
    respect to the normalized direction, before the normalization's own)."""
    gx = gy = gz = 0.0
    if degree < 1:
        return gx, gy, gz
    gx += -C1 * w[3]
    gy += -C1 * w[1]
    gz += C1 * w[2]
    if degree < 2:
        return gx, gy, gz
    xx, yy, zz = x * x, y * y, z * z
    gx += C2[0] * (y * w[4] - z * w[7]) + 2.0 * C2[2] * x * w[8]
    gy += C2[0] * (x * w[4] - z * w[5]) - 2.0 * C2[2] * y * w[8]
    gz += -C2[0] * (y * w[5] + x * w[7]) + 6.0 * C2[1] * z * w[6]
    if degree < 3:
        return gx, gy, gz
    gx += (
        -C3[0] * 6.0 * x * y * w[9]
        + C3[1] * y * z * w[10]
        - C3[2] * (5.0 * zz - 1.0) * w[13]
        + 2.0 * C3[4] * x * z * w[14]
        - C3[0] * 3.0 * (xx - yy) * w[15]
    )
    gy += (
        -C3[0] * 3.0 * (xx - yy) * w[9]
        + C3[1] * x * z * w[10]
        - C3[2] * (5.0 * zz - 1.0) * w[11]
        - 2.0 * C3[4] * y * z * w[14]
        + C3[0] * 6.0 * x * y * w[15]
    )
    gz += (
        C3[1] * x * y * w[10]
        - C3[2] * 10.0 * y * z * w[11]
        + C3[3] * (15.0 * zz - 3.0) * w[12]
        - C3[2] * 10.0 * x * z * w[13]
        + C3[4] * (xx - yy) * w[14]
    )
    if degree < 4:
        return gx, gy, gz
    gx += (
        C4[0] * (3.0 * xx * y - yy * y) * w[16]
        - C4[1] * 6.0 * x * y * z * w[17]
        + C4[2] * y * (7.0 * zz - 1.0) * w[18]
        - C4[3] * z * (7.0 * zz - 3.0) * w[21]
        + C4[5] * 2.0 * x * (7.0 * zz - 1.0) * w[22]
        - C4[1] * 3.0 * z * (xx - yy) * w[23]
        + C4[6] * (4.0 * xx * x - 12.0 * x * yy) * w[24]
    )
    gy += (
        C4[0] * (xx * x - 3.0 * x * yy) * w[16]
        - C4[1] * 3.0 * z * (xx - yy) * w[17]
        + C4[2] * x * (7.0 * zz - 1.0) * w[18]
        - C4[3] * z * (7.0 * zz - 3.0) * w[19]
        - C4[5] * 2.0 * y * (7.0 * zz - 1.0) * w[22]
        + C4[1] * 6.0 * x * y * z * w[23]
        + C4[6] * (4.0 * yy * y - 12.0 * xx * y) * w[24]
    )
    gz += (
        -C4[1] * y * (3.0 * xx - yy) * w[17]
        + C4[2] * 14.0 * x * y * z * w[18]
        - C4[3] * y * (21.0 * zz - 3.0) * w[19]
        + C4[4] * (140.0 * zz * z - 60.0 * z) * w[20]
        - C4[3] * x * (21.0 * zz - 3.0) * w[21]
        + C4[5] * 14.0 * z * (xx - yy) * w[22]
        - C4[1] * x * (xx - 3.0 * yy) * w[23]
    )
    return gx, gy, gz
