"""Per-participant sufficient statistics and (small-sample-corrected) sandwich variances.

For an M-estimator with estimating function sum_i D_i' r_i(theta), write J = sum_i J_i for the
derivative of the estimating function and K_i = D_i' dr_i/dtheta' for participant i's "hat" part.
The Mancl-DeRouen (2001) correction replaces r_i by (I - H_ii)^-1 r_i with
H_ii = dr_i/dtheta' J^-1 D_i'. By the push-through identity
(I - U V)^-1 = I + U (I - V U)^-1 V, the corrected score is

    e_i = D_i' (I - H_ii)^-1 r_i = J (J - K_i)^-1 s_i,     s_i = D_i' r_i,

so the corrected sandwich J^-1 (sum e_i e_i') J^-T equals sum_i u_i u_i' with
u_i = (J - K_i)^-1 s_i. This is exact, costs O(n d^3) instead of a T_i x T_i solve per
participant, and vectorizes over many refits (the randomization test).
For WCLS, J = -sum X_i'W_i X_i and K_i = -X_i'W_i X_i.
"""

from __future__ import annotations

import numpy as np

from hte_mrt.errors import EstimationError

_CHUNK = 20_000_000  # elements per temporary outer-product block


def group_starts(group: np.ndarray) -> np.ndarray:
    """Start offsets of the contiguous runs of ``group`` (rows must be grouped)."""
    return np.flatnonzero(np.r_[True, group[1:] != group[:-1]])


def group_crossprod(
    X: np.ndarray, W: np.ndarray, y: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-group C_i = X_i' diag(W_i) X_i  (N, d, d) and b_i = X_i' diag(W_i) y_i  (N, d)."""
    n, d = X.shape
    XW = X * W[:, None]
    b = np.add.reduceat(XW * y[:, None], starts, axis=0)
    if n * d * d <= _CHUNK:
        C = np.add.reduceat(XW[:, :, None] * X[:, None, :], starts, axis=0)
        return C, b
    ends = np.r_[starts[1:], n]
    C = np.empty((len(starts), d, d))
    step = max(1, int(_CHUNK // (d * d * max(1, n // len(starts)))))
    for g0 in range(0, len(starts), step):
        g1 = min(len(starts), g0 + step)
        lo, hi = starts[g0], ends[g1 - 1]
        sub = starts[g0:g1] - lo
        C[g0:g1] = np.add.reduceat(XW[lo:hi, :, None] * X[lo:hi, None, :], sub, axis=0)
    return C, b


#: rows per block of participants when statistics are built from a design in bounded memory
BLOCK_ELEMENTS = 4_000_000


def participant_blocks(starts: np.ndarray, n: int, width: int) -> list[tuple[int, int]]:
    """Consecutive ranges (g0, g1) of participants whose rows hold about
    ``BLOCK_ELEMENTS / width`` rows (at least one participant each)."""
    rows = max(1, BLOCK_ELEMENTS // max(1, width))
    ends = np.r_[starts[1:], n]
    out, g0 = [], 0
    N = len(starts)
    while g0 < N:
        g1 = int(np.searchsorted(ends, starts[g0] + rows, side="right"))
        g1 = max(g1, g0 + 1)
        out.append((g0, min(g1, N)))
        g0 = min(g1, N)
    return out


def design_crossprod(design, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`group_crossprod` of the design's X, W, y, built block by block of participants
    (bounded memory: X is never held whole). Each participant's sums are those of the whole
    computation, bit for bit."""
    n, d = len(design.y), design.dim
    ends = np.r_[starts[1:], n]
    C = np.empty((len(starts), d, d))
    b = np.empty((len(starts), d))
    for g0, g1 in participant_blocks(starts, n, d * d + 2 * d):
        lo, hi = int(starts[g0]), int(ends[g1 - 1])
        C[g0:g1], b[g0:g1] = group_crossprod(
            design.x_block(lo, hi), design.w_block(lo, hi), design.y[lo:hi], starts[g0:g1] - lo
        )
    return C, b


def wls_sandwich(C: np.ndarray, b: np.ndarray, small_sample: bool) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares and its cluster sandwich from per-participant statistics.

    ``C`` (..., N, d, d) and ``b`` (..., N, d); leading axes are independent fits.
    Returns theta (..., d) and cov (..., d, d).
    """
    B = C.sum(axis=-3)
    try:
        theta = np.linalg.solve(B, b.sum(axis=-2)[..., None])[..., 0]
    except np.linalg.LinAlgError:
        raise EstimationError(
            "The weighted design is singular (collinear control/moderator terms, or a term "
            "constant on the analysed rows): drop or recode the offending term."
        ) from None
    s = b - np.einsum("...nij,...j->...ni", C, theta)
    if small_sample:
        try:
            u = np.linalg.solve(B[..., None, :, :] - C, s[..., None])[..., 0]
        except np.linalg.LinAlgError:
            raise EstimationError(
                "The Mancl-DeRouen correction needs the model to be identified without any single "
                "participant (B - C_i invertible); a term is driven by one participant. Use "
                "small_sample=False or drop that term."
            ) from None
        cov = np.einsum("...ni,...nj->...ij", u, u)
    else:
        Binv = np.linalg.inv(B)
        meat = np.einsum("...ni,...nj->...ij", s, s)
        cov = Binv @ meat @ np.swapaxes(Binv, -1, -2)
    return theta, cov


def corrected_cov(J: np.ndarray, K: np.ndarray, s: np.ndarray) -> np.ndarray:
    """General Mancl-DeRouen sandwich sum_i u_i u_i', u_i = (J - K_i)^-1 s_i (see module doc)."""
    try:
        u = np.linalg.solve(J[None] - K, s[..., None])[..., 0]
    except np.linalg.LinAlgError:
        raise EstimationError(
            "Small-sample correction failed: J - K_i is singular for some participant."
        ) from None
    return u.T @ u


def plain_cov(J: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Uncorrected sandwich J^-1 (sum s_i s_i') J^-T."""
    Jinv = np.linalg.inv(J)
    return Jinv @ (s.T @ s) @ Jinv.T
