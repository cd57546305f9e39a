"""Numba kernel: collapsed marginal log-likelihood and its analytic gradient (one pass per level).

Notation as in :mod:`.collapsed`. Write the log-likelihood as -0.5 (n log 2 pi + B) with

    B = (n - 2N) log s2 + sum_i log|S_i| + (rr - sum_i w_i'P_i w_i) / s2
        + sum_k [log(1 + sc2 A_k) - sc2 Q_k^2 / (1 + sc2 A_k)],

P_i = S_i^-1, m_i = P_i w_i, s2 = sd^2, sc2 = sd_c^2. Matrix differentials (L lower 2x2, D = LL',
G = Z'Z, GL = G L, g0 = first column of G, zr = Z'r):

    d log|S| / dL        = 2 GL P,                d log|S| / ds2 = tr P
    d (w'Pw) / dL        = 2 zr m' - 2 GL m m',   d (w'Pw) / ds2 = -m'm,   d (w'Pw) / dzr = 2 L m
    a = (g00 - h'Ph)/s2, h = L'g0, v = P h:
      da/dL = -(2 g0 v' - 2 GL v v')/s2,  da/ds2 = (v'v - a)/s2
    q = (zr0 - v'w)/s2:
      dq/dL = -(g0 m' + zr v' - GL (m v' + v m'))/s2,  dq/ds2 = (v'm - q)/s2,
      dq/dzr = (e1 - L v)/s2
    d/dA_k = sc2/(1+sc2 A) + sc2^2 Q^2/(1+sc2 A)^2,  d/dQ_k = -2 sc2 Q/(1+sc2 A),
    d/dsc2 = A/(1+sc2 A) - Q^2/(1+sc2 A)^2,

and dzr/dtheta = -X'Z. L = [[sd_b, 0], [rho sd_u, sd_u sqrt(1 - rho^2)]] chains to the sds and rho.
Cost O(N d) per call (plus O(d^2) for the pooled quadratic form).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

LOG_2PI = math.log(2.0 * math.pi)


@njit(cache=True, nogil=True)
def _unit(i, theta, s2, l11, l21, l22, g00, g01, g11, XZ, Zy):
    d = theta.shape[0]
    zr0 = Zy[i, 0]
    zr1 = Zy[i, 1]
    for j in range(d):
        zr0 -= XZ[i, j, 0] * theta[j]
        zr1 -= XZ[i, j, 1] * theta[j]
    a00 = g00[i]
    a01 = g01[i]
    a11 = g11[i]
    GL00 = a00 * l11 + a01 * l21
    GL01 = a01 * l22
    GL10 = a01 * l11 + a11 * l21
    GL11 = a11 * l22
    S00 = s2 + l11 * GL00 + l21 * GL10
    S01 = l11 * GL01 + l21 * GL11
    S11 = s2 + l22 * GL11
    det = S00 * S11 - S01 * S01
    P00 = S11 / det
    P01 = -S01 / det
    P11 = S00 / det
    w0 = l11 * zr0 + l21 * zr1
    w1 = l22 * zr1
    m0 = P00 * w0 + P01 * w1
    m1 = P01 * w0 + P11 * w1
    return zr0, zr1, GL00, GL01, GL10, GL11, det, P00, P01, P11, w0, w1, m0, m1


@njit(cache=True, nogil=True)
def _cluster_aq(zr0, a00, a01, l11, l21, l22, s2, P00, P01, P11, w0, w1):
    h0 = l11 * a00 + l21 * a01
    h1 = l22 * a01
    v0 = P00 * h0 + P01 * h1
    v1 = P01 * h0 + P11 * h1
    a = (a00 - (h0 * v0 + h1 * v1)) / s2
    q = (zr0 - (v0 * w0 + v1 * w1)) / s2
    return a, q, v0, v1


@njit(cache=True, nogil=True)
def value_and_grad(
    theta, sd, sd_b, sd_u, rho, sd_c, correlated, clusters,
    g00, g01, g11, XZ, Zy, cluster, n_clusters, XX, Xy, yy, n_obs,
):  # fmt: skip
    """Returns (logp, dtheta (d,), dsd, dsd_b, dsd_u, drho, dsd_c)."""
    N = g00.shape[0]
    d = theta.shape[0]
    s2 = sd * sd
    l11 = sd_b
    if correlated:
        cr = math.sqrt(1.0 - rho * rho)
        l21 = rho * sd_u
        l22 = sd_u * cr
    else:
        cr = 1.0
        l21 = 0.0
        l22 = sd_u

    # cluster level: A_k, Q_k and the derivative weights alpha_k, beta_k
    sc2 = sd_c * sd_c
    alpha = np.zeros(n_clusters)
    beta = np.zeros(n_clusters)
    B = 0.0
    dB_sc2 = 0.0
    if clusters:
        A = np.zeros(n_clusters)
        Q = np.zeros(n_clusters)
        for i in range(N):
            zr0, zr1, GL00, GL01, GL10, GL11, det, P00, P01, P11, w0, w1, m0, m1 = _unit(
                i, theta, s2, l11, l21, l22, g00, g01, g11, XZ, Zy
            )
            a, q, v0, v1 = _cluster_aq(
                zr0, g00[i], g01[i], l11, l21, l22, s2, P00, P01, P11, w0, w1
            )
            A[cluster[i]] += a
            Q[cluster[i]] += q
        for k in range(n_clusters):
            op = 1.0 + sc2 * A[k]
            B += math.log(op) - sc2 * Q[k] * Q[k] / op
            alpha[k] = sc2 / op + sc2 * sc2 * Q[k] * Q[k] / (op * op)
            beta[k] = -2.0 * sc2 * Q[k] / op
            dB_sc2 += A[k] / op - Q[k] * Q[k] / (op * op)

    F1 = 0.0
    F2 = 0.0
    dB_s2 = 0.0
    dL00 = 0.0
    dL10 = 0.0
    dL11 = 0.0
    dB_th = np.zeros(d)
    for i in range(N):
        zr0, zr1, GL00, GL01, GL10, GL11, det, P00, P01, P11, w0, w1, m0, m1 = _unit(
            i, theta, s2, l11, l21, l22, g00, g01, g11, XZ, Zy
        )
        F1 += math.log(det)
        F2 += w0 * m0 + w1 * m1
        GLm0 = GL00 * m0 + GL01 * m1
        GLm1 = GL10 * m0 + GL11 * m1
        # log|S| and -(w'Pw)/s2
        dB_s2 += P00 + P11 + (m0 * m0 + m1 * m1) / s2
        dL00 += 2.0 * (GL00 * P00 + GL01 * P01) - 2.0 / s2 * (zr0 - GLm0) * m0
        dL10 += 2.0 * (GL10 * P00 + GL11 * P01) - 2.0 / s2 * (zr1 - GLm1) * m0
        dL11 += 2.0 * (GL10 * P01 + GL11 * P11) - 2.0 / s2 * (zr1 - GLm1) * m1
        Lm0 = l11 * m0
        Lm1 = l21 * m0 + l22 * m1
        cz0 = -2.0 / s2 * Lm0  # cz = dB/dzr;  dB/dtheta = -XZ cz
        cz1 = -2.0 / s2 * Lm1
        if clusters:
            k = cluster[i]
            al = alpha[k]
            be = beta[k]
            a, q, v0, v1 = _cluster_aq(
                zr0, g00[i], g01[i], l11, l21, l22, s2, P00, P01, P11, w0, w1
            )
            GLv0 = GL00 * v0 + GL01 * v1
            GLv1 = GL10 * v0 + GL11 * v1
            dB_s2 += al * (v0 * v0 + v1 * v1 - a) / s2 + be * (v0 * m0 + v1 * m1 - q) / s2
            # g0 = (g00, g01)
            c0 = g00[i]
            c1 = g01[i]
            dL00 += -al * 2.0 * (c0 * v0 - GLv0 * v0) / s2
            dL10 += -al * 2.0 * (c1 * v0 - GLv1 * v0) / s2
            dL11 += -al * 2.0 * (c1 * v1 - GLv1 * v1) / s2
            dL00 += -be * (c0 * m0 + zr0 * v0 - GLm0 * v0 - GLv0 * m0) / s2
            dL10 += -be * (c1 * m0 + zr1 * v0 - GLm1 * v0 - GLv1 * m0) / s2
            dL11 += -be * (c1 * m1 + zr1 * v1 - GLm1 * v1 - GLv1 * m1) / s2
            Lv0 = l11 * v0
            Lv1 = l21 * v0 + l22 * v1
            cz0 += be * (1.0 - Lv0) / s2
            cz1 += be * (-Lv1) / s2
        for j in range(d):
            dB_th[j] -= XZ[i, j, 0] * cz0 + XZ[i, j, 1] * cz1

    # pooled r'r
    rr = yy
    for j in range(d):
        rr -= 2.0 * theta[j] * Xy[j]
        XXt = 0.0
        for k in range(d):
            XXt += XX[j, k] * theta[k]
        rr += theta[j] * XXt
        dB_th[j] += 2.0 * (XXt - Xy[j]) / s2
    nm2N = n_obs - 2.0 * N
    B += nm2N * math.log(s2) + F1 + (rr - F2) / s2
    dB_s2 += nm2N / s2 - (rr - F2) / (s2 * s2)

    logp = -0.5 * (n_obs * LOG_2PI + B)
    g_theta = -0.5 * dB_th
    g_sd = -0.5 * dB_s2 * 2.0 * sd
    g_sdb = -0.5 * dL00
    g_sdu = -0.5 * (dL10 * rho + dL11 * cr) if correlated else -0.5 * dL11
    g_rho = -0.5 * (dL10 * sd_u - dL11 * sd_u * rho / cr) if correlated else 0.0
    g_sdc = -0.5 * dB_sc2 * 2.0 * sd_c if clusters else 0.0
    return logp, g_theta, g_sd, g_sdb, g_sdu, g_rho, g_sdc


HEADER = 5  # N, d, K, n_obs, y'y; then the prior scales (d + 1), then the statistics


def pack(g00, g01, g11, XZ, Zy, cluster, K, XX, Xy, yy, n_obs, theta_scale, sd_scale):
    """All data of one model in one float64 vector (one shared variable; see :mod:`._op`).

    Layout: header, theta_scale (d), sd_scale, X'X, X'y, g00, g01, g11, X_i'Z_i, Z_i'y_i, cluster.
    The prior scales sit at fixed positions for a given d, so a data set with another N can be
    swapped in (nutpie ``with_data``) without touching the graph.
    """
    N, d = XZ.shape[0], XZ.shape[1]
    head = np.array([N, d, K, n_obs, yy], dtype=float)
    parts = [head, np.broadcast_to(theta_scale, (d,)).astype(float), np.array([sd_scale], float)]
    parts += [XX.ravel(), Xy, g00, g01, g11, XZ.ravel(), Zy.ravel(), cluster.astype(float)]
    return np.ascontiguousarray(np.concatenate(parts))


def prior_slices(d: int) -> tuple[slice, int]:
    """Positions of theta_scale (slice) and sd_scale (index) in the packed vector."""
    return slice(HEADER, HEADER + d), HEADER + d


@njit(cache=True, nogil=True)
def unpack(p):
    N = int(p[0])
    d = int(p[1])
    K = int(p[2])
    n_obs = p[3]
    yy = p[4]
    o = HEADER + d + 1
    XX = p[o : o + d * d].reshape((d, d))
    o += d * d
    Xy = p[o : o + d]
    o += d
    g00 = p[o : o + N]
    g01 = p[o + N : o + 2 * N]
    g11 = p[o + 2 * N : o + 3 * N]
    o += 3 * N
    XZ = p[o : o + 2 * N * d].reshape((N, d, 2))
    o += 2 * N * d
    Zy = p[o : o + 2 * N].reshape((N, 2))
    o += 2 * N
    cluster = p[o : o + N].astype(np.int64)
    return g00, g01, g11, XZ, Zy, cluster, K, XX, Xy, yy, n_obs


@njit(cache=True, nogil=True)
def value_and_grad_packed(theta, sd, sd_b, sd_u, rho, sd_c, correlated, clusters, packed):
    g00, g01, g11, XZ, Zy, cluster, K, XX, Xy, yy, n_obs = unpack(packed)
    return value_and_grad(
        theta, sd, sd_b, sd_u, rho, sd_c, correlated, clusters,
        g00, g01, g11, XZ, Zy, cluster, K, XX, Xy, yy, n_obs,
    )  # fmt: skip
