"""Collapsed (random effects integrated out) hierarchical Gaussian model for MRTs.

Model, participant i in cluster k(i), available decision t, centred treatment At = A - p:

    y_it = x_it' theta + b_i + c_k + At_it u_i + e_it,
    (b_i, u_i) ~ N(0, D),  D = [[sd_b^2, rho sd_b sd_u], [., sd_u^2]],  c_k ~ N(0, sd_c^2),
    e_it ~ N(0, sd^2).

Participant level. With Z_i = [1, At_i] (T_i x 2), V_i = sd^2 I + Z_i D Z_i'. Write D = L L' with
L the 2x2 lower Cholesky factor (well defined for singular D: sd_u = 0 or |rho| = 1), G_i = Z_i'Z_i
and the symmetric 2x2 matrix S_i = sd^2 I_2 + L' G_i L  (S_i >= sd^2 I, so never singular). Then

    V_i^-1       = (I - Z_i L S_i^-1 L' Z_i') / sd^2                            (Woodbury)
    log|V_i|     = (T_i - 2) log sd^2 + log|S_i|                    (matrix determinant lemma)
    r'V_i^-1 r   = (r'r - w_i' S_i^-1 w_i) / sd^2,   w_i = L' Z_i' r,   r = y_i - X_i theta,

with r'r = y'y - 2 theta'X'y + theta'X'X theta and Z'r = Z'y - Z'X theta. Only the cross-products
X'X, X'y, y'y (summed over everyone), X_i'Z_i (N x d x 2), Z_i'Z_i, Z_i'y_i are needed: one
log-density evaluation costs O(d^2 + N d), independent of the T_i.

Cluster level (nested Woodbury). Within cluster k, V_k = blockdiag(V_i) + sd_c^2 1 1'. With
a_i = 1'V_i^-1 1 = (T_i - h_i'S_i^-1 h_i)/sd^2 and
q_i = 1'V_i^-1 r_i = (1'r_i - h_i'S_i^-1 w_i)/sd^2, h_i = L' Z_i' 1 (first column of G_i),
A_k = sum_{i in k} a_i and Q_k = sum_{i in k} q_i:

    log|V_k|     = sum_i log|V_i| + log(1 + sd_c^2 A_k)
    r'V_k^-1 r   = sum_i r_i'V_i^-1 r_i - sd_c^2 Q_k^2 / (1 + sd_c^2 A_k).

Conditional posterior of the random effects given (theta, sds) (for :func:`draw_random_effects`):
c_k | y ~ N(sd_c^2 Q_k / (1 + sd_c^2 A_k), sd_c^2 / (1 + sd_c^2 A_k)); then, with
(b_i, u_i) = L eta_i, eta_i | c, y ~ N(S_i^-1 w_i~, sd^2 S_i^-1) where w_i~ = L' Z_i'(r_i - c_k 1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from hte_mrt.errors import DataError
from hte_mrt.estimators.sandwich import group_crossprod, group_starts

LOG_2PI = float(np.log(2.0 * np.pi))
_CHUNK = 4_000_000  # elements of the (draws x participants x d) temporaries


@dataclass(frozen=True)
class CollapsedStats:
    """Per-participant sufficient statistics (participants in ``np.unique(groups)`` order)."""

    n_obs: int
    T: np.ndarray  # (N,) decisions per participant
    ZZ: np.ndarray  # (N, 2, 2)   Z_i'Z_i
    XZ: np.ndarray  # (N, d, 2)   X_i'Z_i   (column 0 = X_i'1)
    Zy: np.ndarray  # (N, 2)      Z_i'y_i   (entry 0 = 1'y_i)
    XX: np.ndarray  # (N, d, d)   X_i'X_i   (only needed for pointwise log-likelihoods)
    Xy: np.ndarray  # (N, d)
    yy: np.ndarray  # (N,)
    groups: np.ndarray  # (N,) participant labels
    cluster: np.ndarray | None  # (N,) cluster code 0..K-1 per participant, or None
    cluster_labels: np.ndarray | None
    coef_names: tuple[str, ...]
    y_mean: float
    y_sd: float
    x_rms: np.ndarray  # (d,) root mean square of each column of X

    @property
    def n_units(self) -> int:
        return len(self.T)

    @property
    def n_clusters(self) -> int:
        return 0 if self.cluster is None else len(self.cluster_labels)

    @property
    def d(self) -> int:
        return self.XZ.shape[1]


def _check_finite(X: np.ndarray, At: np.ndarray, y: np.ndarray) -> None:
    for name, arr in (("X", X), ("At", At), ("y", y)):
        bad = ~np.isfinite(arr)
        if bad.any():
            raise DataError(
                f"{name} has {int(bad.any(axis=-1).sum()) if arr.ndim > 1 else int(bad.sum())} "
                "non-finite rows; drop or impute them first.",
                column=name,
            )


def _assemble(
    sums: tuple[np.ndarray, ...],
    labels: np.ndarray,
    cluster: np.ndarray | None,
    coef_names: Sequence[str] | None,
    y: np.ndarray,
    x_rms: Callable[[], np.ndarray],
) -> CollapsedStats:
    """Check ``cluster`` (one label per participant) and ``coef_names`` (one per column of X),
    then the :class:`CollapsedStats` of the per-participant ``sums`` (T, ZZ, XZ, Zy, XX, Xy,
    yy); ``x_rms`` computes the columns' root mean squares."""
    T, ZZ, XZ, Zy, XX, Xy, yy = sums
    n, d = len(y), XZ.shape[1]
    cl = cl_labels = None
    if cluster is not None:
        cluster = np.asarray(cluster)
        if len(cluster) != len(labels):
            raise DataError(
                f"cluster has {len(cluster)} entries but there are {len(labels)} participants; "
                "give one cluster label per participant, in np.unique(groups) order.",
                column="cluster",
            )
        cl_labels, cl = np.unique(cluster, return_inverse=True)
    if coef_names is None:
        coef_names = tuple(f"x{j}" for j in range(d))
    if len(coef_names) != d:
        raise DataError(f"{len(coef_names)} coef_names for {d} columns of X.")
    return CollapsedStats(
        n_obs=n,
        T=T,
        ZZ=ZZ,
        XZ=XZ,
        Zy=Zy,
        XX=XX,
        Xy=Xy,
        yy=yy,
        groups=labels,
        cluster=cl,
        cluster_labels=cl_labels,
        coef_names=tuple(coef_names),
        y_mean=float(y.mean()),
        y_sd=float(y.std()) if n > 1 and y.std() > 0 else 1.0,
        x_rms=x_rms(),
    )


def collapsed_stats(
    X: np.ndarray,
    At: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    cluster: np.ndarray | None = None,
    *,
    coef_names: Sequence[str] | None = None,
) -> CollapsedStats:
    """Sufficient statistics of the collapsed model, computed once.

    X (n, d) fixed-effect design (e.g. [g ; At f]), At (n,) centred treatment, y (n,), groups (n,)
    participant labels (rows need not be sorted). ``cluster`` is one cluster label per participant,
    aligned with ``np.unique(groups)``; None for no cluster level.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    At = np.asarray(At, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    groups = np.asarray(groups)
    n, _ = X.shape
    for name, arr in (("At", At), ("y", y), ("groups", groups)):
        if len(arr) != n:
            raise DataError(f"{name} has {len(arr)} rows but X has {n}.", column=name)
    _check_finite(X, At, y)
    labels, code = np.unique(groups, return_inverse=True)
    order = np.argsort(code, kind="stable")
    code, X, At, y = code[order], X[order], At[order], y[order]
    starts = group_starts(code)
    ones = np.ones(n)
    Z = np.column_stack([ones, At])
    XX, Xy = group_crossprod(X, ones, y, starts)
    XZ = np.add.reduceat(X[:, :, None] * Z[:, None, :], starts, axis=0)
    ZZ, Zy = group_crossprod(Z, ones, y, starts)
    yy = np.add.reduceat(y * y, starts)
    T = np.diff(np.r_[starts, n])
    return _assemble(
        (T, ZZ, XZ, Zy, XX, Xy, yy), labels, cluster, coef_names, y,
        lambda: np.sqrt(np.mean(X * X, axis=0)),
    )  # fmt: skip


def collapsed_stats_design(
    design,
    At: np.ndarray,
    cluster: np.ndarray | None = None,
    *,
    coef_names: Sequence[str] | None = None,
) -> CollapsedStats:
    """:func:`collapsed_stats` of a design's X (participant-sorted rows), built block by block
    of participants so that X and the (rows x d x 2) temporaries are never held whole. The
    numbers are those of ``collapsed_stats(design.X, At, design.y, design.group, ...)``, bit
    for bit: per-participant sums see the same rows in the same order, and the column sums of
    X * X continue numpy's row-by-row accumulation across blocks."""
    from hte_mrt.estimators.sandwich import participant_blocks

    group = np.asarray(design.group)
    y = np.asarray(design.y, dtype=float)
    n, d = len(y), design.dim
    if n == 0 or np.any(np.diff(group) < 0):  # not participant-sorted: the plain path
        return collapsed_stats(design.X, At, y, group, cluster, coef_names=coef_names)
    At = np.asarray(At, dtype=float).ravel()
    starts = group_starts(group)
    ends = np.r_[starts[1:], n]
    N = len(starts)
    T = ends - starts
    ZZ, XZ, Zy = np.empty((N, 2, 2)), np.empty((N, d, 2)), np.empty((N, 2))
    XX, Xy, yy = np.empty((N, d, d)), np.empty((N, d)), np.empty(N)
    xx = None
    for g0, g1 in participant_blocks(starts, n, d * d + 4 * d + 8):
        lo, hi = int(starts[g0]), int(ends[g1 - 1])
        Xb = design.x_block(lo, hi)
        _check_finite(Xb, At[lo:hi], y[lo:hi])
        st = collapsed_stats(Xb, At[lo:hi], y[lo:hi], group[lo:hi])
        ZZ[g0:g1], XZ[g0:g1], Zy[g0:g1] = st.ZZ, st.XZ, st.Zy
        XX[g0:g1], Xy[g0:g1], yy[g0:g1] = st.XX, st.Xy, st.yy
        # collapsed_stats sums X * X of its row-ordered (C-contiguous) copy of X: numpy adds
        # row after row, an accumulation continued here across blocks
        sq = np.ascontiguousarray(Xb * Xb)
        xx = sq.sum(axis=0) if xx is None else np.vstack([xx[None], sq]).sum(axis=0)
    return _assemble(
        (T, ZZ, XZ, Zy, XX, Xy, yy), np.unique(group), cluster, coef_names, y,
        lambda: np.sqrt(xx / n),
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# pytensor log-density
# --------------------------------------------------------------------------------------------


def collapsed_data(stats: CollapsedStats, *, shared: bool = True) -> dict:
    """The statistics the log-density needs, as pytensor shared variables (default) or constants.

    Shared variables keep the data out of the compiled graph, so numba's on-disk cache of the
    compiled log-density is reused for a new data set of the same structure (constants would be
    folded into the fused kernels and force a full recompile, ~10-20 s).
    """
    import pytensor
    import pytensor.tensor as pt

    arrays = {
        "g00": stats.ZZ[:, 0, 0],
        "g01": stats.ZZ[:, 0, 1],
        "g11": stats.ZZ[:, 1, 1],
        "XZ": np.ascontiguousarray(stats.XZ),
        "Zy": np.ascontiguousarray(stats.Zy),
        "XX": stats.XX.sum(axis=0),
        "Xy": stats.Xy.sum(axis=0),
        "yy": np.asarray(stats.yy.sum()),
        "n": np.asarray(float(stats.n_obs)),
    }
    if stats.cluster is not None:
        arrays["cluster"] = stats.cluster.astype("int64")
        arrays["cluster_zeros"] = np.zeros(stats.n_clusters)
    if shared:
        return {k: pytensor.shared(np.asarray(v), name=f"collapsed_{k}") for k, v in arrays.items()}
    return {k: pt.constant(np.asarray(v)) for k, v in arrays.items()}


def packed_data(
    stats: CollapsedStats, theta_scale: np.ndarray | float = 1.0, sd_scale: float = 1.0
) -> np.ndarray:
    """All statistics (and the prior scales) in one float vector, the input of the numba Op."""
    from hte_mrt.estimators.bayes._kernel import pack

    has_cl = stats.cluster is not None
    return pack(
        stats.ZZ[:, 0, 0], stats.ZZ[:, 0, 1], stats.ZZ[:, 1, 1], stats.XZ, stats.Zy,
        stats.cluster if has_cl else np.zeros(stats.n_units, dtype=np.int64),
        stats.n_clusters if has_cl else 1, stats.XX.sum(axis=0), stats.Xy.sum(axis=0),
        float(stats.yy.sum()), float(stats.n_obs), theta_scale, sd_scale,
    )  # fmt: skip


def collapsed_logp(data, theta, sd, sd_b, sd_u, rho=None, sd_c=None):
    """Total marginal log-likelihood as a pytensor scalar.

    ``data``: :class:`CollapsedStats` or the dict from :func:`collapsed_data`. ``theta`` (d,),
    the rest scalars; ``rho`` None means uncorrelated (b_i, u_i), ``sd_c`` None no cluster level.
    """
    import pytensor.tensor as pt

    if isinstance(data, CollapsedStats):
        data = collapsed_data(data, shared=False)
    g00, g01, g11 = data["g00"], data["g01"], data["g11"]

    s2 = sd**2
    l11 = sd_b
    if rho is None:
        l21 = pt.zeros(())
        l22 = sd_u
    else:
        l21 = rho * sd_u
        l22 = sd_u * pt.sqrt(1.0 - rho**2)

    XZ, Zy = data["XZ"], data["Zy"]
    zr0 = Zy[:, 0] - pt.dot(XZ[:, :, 0], theta)
    zr1 = Zy[:, 1] - pt.dot(XZ[:, :, 1], theta)
    # S = sd^2 I + L'GL
    S00 = s2 + l11**2 * g00 + 2.0 * l11 * l21 * g01 + l21**2 * g11
    S01 = l22 * (l11 * g01 + l21 * g11)
    S11 = s2 + l22**2 * g11
    det = S00 * S11 - S01**2
    w0 = l11 * zr0 + l21 * zr1
    w1 = l22 * zr1
    quad_w = (S11 * w0**2 - 2.0 * S01 * w0 * w1 + S00 * w1**2) / det
    rr = data["yy"] - 2.0 * pt.dot(theta, data["Xy"]) + pt.dot(theta, pt.dot(data["XX"], theta))

    logdet = (data["n"] - 2.0 * g00.shape[0]) * pt.log(s2) + pt.sum(pt.log(det))
    quad = (rr - pt.sum(quad_w)) / s2
    if sd_c is not None:
        if "cluster" not in data:
            raise DataError("sd_c given but the statistics have no cluster level.")
        h0 = l11 * g00 + l21 * g01
        h1 = l22 * g01
        hSh = (S11 * h0**2 - 2.0 * S01 * h0 * h1 + S00 * h1**2) / det
        hSw = (S11 * h0 * w0 - S01 * (h0 * w1 + h1 * w0) + S00 * h1 * w1) / det
        a = (g00 - hSh) / s2
        q = (zr0 - hSw) / s2
        idx = data["cluster"]
        A = pt.inc_subtensor(data["cluster_zeros"][idx], a)
        Q = pt.inc_subtensor(data["cluster_zeros"][idx], q)
        sc2 = sd_c**2
        one_p = 1.0 + sc2 * A
        logdet = logdet + pt.sum(pt.log(one_p))
        quad = quad - pt.sum(sc2 * Q**2 / one_p)
    return -0.5 * (data["n"] * LOG_2PI + logdet + quad)


def _build_collapsed_model(
    stats: CollapsedStats,
    *,
    correlated: bool = False,
    clusters: bool | None = None,
    theta_scale: np.ndarray | float | None = None,
    sd_scale: float | None = None,
    impl: str = "kernel",
):
    """PyMC model with the random effects integrated out (a ``pm.Potential`` named ``loglik``).

    A self-contained reference model on the sufficient statistics alone (tests and the
    prototype benchmark compare it with the row-level model); :class:`~hte_mrt.BayesMRT`
    builds its own model with the same likelihood.

    ``impl="kernel"`` (default) evaluates the log-density and its gradient with one numba kernel
    wrapped in a pytensor Op (fast to compile: nutpie compiles in ~5 s instead of ~15 s);
    ``impl="graph"`` uses the pure pytensor graph of :func:`collapsed_logp` (autodiff gradient).

    Priors: theta_j ~ N(0, 2.5 sd_y / rms(x_j)) (rms = root mean square of column j, so 2.5 sd_y
    for an intercept and wider for the At-scaled columns; override with ``theta_scale``),
    sd, sd_b, sd_u, sd_c ~ HalfNormal(sd_y) (``sd_scale``), and, if ``correlated``,
    rho = 2 Beta(2, 2) - 1 (the LKJ(2) marginal for a 2x2 correlation).
    ``clusters`` defaults to whether ``stats`` has a cluster level.
    """
    import pymc as pm
    import pytensor

    if clusters is None:
        clusters = stats.cluster is not None
    if clusters and stats.cluster is None:
        raise DataError("clusters=True but no cluster labels were given to collapsed_stats.")
    sd_y = stats.y_sd
    if theta_scale is None:
        rms = np.where(stats.x_rms > 0, stats.x_rms, 1.0)
        theta_scale = 2.5 * sd_y / rms
    if sd_scale is None:
        sd_scale = sd_y
    theta_scale = np.array(np.broadcast_to(theta_scale, (stats.d,)), dtype=float)
    coords = {"coef": list(stats.coef_names)}
    # All data, prior scales included, live in shared variables rather than constants, so the
    # compiled graph does not depend on the data and numba's on-disk cache stays valid for the
    # next data set (and nutpie's ``CompiledModel.with_data`` can swap data without recompiling).
    if impl == "kernel":
        from hte_mrt.estimators.bayes._kernel import prior_slices
        from hte_mrt.estimators.bayes._op import collapsed_logp_op

        packed = pytensor.shared(packed_data(stats, theta_scale, sd_scale), name="collapsed_data")
        t_sl, s_idx = prior_slices(stats.d)
        tscale, sscale = packed[t_sl], packed[s_idx]
    elif impl == "graph":
        data = collapsed_data(stats, shared=True)
        tscale = pytensor.shared(theta_scale, name="theta_scale")
        sscale = pytensor.shared(np.asarray(float(sd_scale)), name="sd_scale")
    else:
        raise ValueError(f"impl must be 'kernel' or 'graph', not {impl!r}")
    with pm.Model(coords=coords) as model:
        theta = pm.Normal("theta", 0.0, tscale, dims="coef")
        sd = pm.HalfNormal("sd", sscale)
        sd_b = pm.HalfNormal("sd_b", sscale)
        sd_u = pm.HalfNormal("sd_u", sscale)
        rho = None
        if correlated:
            r01 = pm.Beta("rho01", 2.0, 2.0)
            rho = pm.Deterministic("rho", 2.0 * r01 - 1.0)
        sd_c = pm.HalfNormal("sd_c", sscale) if clusters else None
        if impl == "kernel":
            loglik = collapsed_logp_op(packed, theta, sd, sd_b, sd_u, rho, sd_c)
        else:
            loglik = collapsed_logp(data, theta, sd, sd_b, sd_u, rho, sd_c)
        pm.Potential("loglik", loglik)
    return model


# --------------------------------------------------------------------------------------------
# numpy: pointwise log-likelihood and random-effect draws, vectorized over posterior draws
# --------------------------------------------------------------------------------------------


def posterior_params(dt) -> dict[str, np.ndarray]:
    """Flatten (chain, draw) of the model parameters from a DataTree / Dataset posterior."""
    post = dt["posterior"] if "posterior" in getattr(dt, "children", {}) else dt
    out = {}
    for name in ("theta", "sd", "sd_b", "sd_u", "rho", "sd_c"):
        if name in post:
            v = np.asarray(post[name].values)
            out[name] = v.reshape((v.shape[0] * v.shape[1], *v.shape[2:]))
    return out


def _prep(params: Mapping[str, np.ndarray]):
    theta = np.atleast_2d(np.asarray(params["theta"], dtype=float))
    S = theta.shape[0]

    def vec(name, default=None):
        if name not in params or params[name] is None:
            return default
        return np.broadcast_to(np.asarray(params[name], dtype=float).reshape(-1), (S,))

    sd, sd_b, sd_u = vec("sd"), vec("sd_b"), vec("sd_u")
    rho = vec("rho", np.zeros(S))
    sd_c = vec("sd_c")
    l11 = sd_b
    l21 = rho * sd_u
    l22 = sd_u * np.sqrt(np.clip(1.0 - rho**2, 0.0, None))
    return theta, sd**2, l11[:, None], l21[:, None], l22[:, None], sd_c


def _unit_pieces(stats: CollapsedStats, theta, s2, l11, l21, l22):
    """(S, N) arrays: zr0, zr1, S00, S01, S11, det, w0, w1."""
    g00, g01, g11 = stats.ZZ[:, 0, 0], stats.ZZ[:, 0, 1], stats.ZZ[:, 1, 1]
    zr0 = stats.Zy[:, 0] - theta @ stats.XZ[:, :, 0].T
    zr1 = stats.Zy[:, 1] - theta @ stats.XZ[:, :, 1].T
    s2c = s2[:, None]
    S00 = s2c + l11**2 * g00 + 2.0 * l11 * l21 * g01 + l21**2 * g11
    S01 = l22 * (l11 * g01 + l21 * g11)
    S11 = s2c + l22**2 * g11
    det = S00 * S11 - S01**2
    w0 = l11 * zr0 + l21 * zr1
    w1 = l22 * zr1
    return zr0, zr1, S00, S01, S11, det, w0, w1


def _cluster_ah(stats, s2, l11, l21, l22, S00, S01, S11, det, w0, w1, zr0):
    g00, g01 = stats.ZZ[:, 0, 0], stats.ZZ[:, 0, 1]
    h0 = l11 * g00 + l21 * g01
    h1 = l22 * g01
    hSh = (S11 * h0**2 - 2.0 * S01 * h0 * h1 + S00 * h1**2) / det
    hSw = (S11 * h0 * w0 - S01 * (h0 * w1 + h1 * w0) + S00 * h1 * w1) / det
    a = (g00 - hSh) / s2[:, None]
    q = (zr0 - hSw) / s2[:, None]
    return a, q


def _segment_sum(v: np.ndarray, idx: np.ndarray, K: int) -> np.ndarray:
    """Sum the columns of v (S, N) into K clusters -> (S, K) (every cluster is non-empty)."""
    order = np.argsort(idx, kind="stable")
    starts = group_starts(idx[order])
    if len(starts) != K:
        raise DataError(f"{K} clusters expected, {len(starts)} found.", column="cluster")
    return np.add.reduceat(v[:, order], starts, axis=1)


def pointwise_loglik(
    stats: CollapsedStats, params: Mapping[str, np.ndarray], *, by: str | None = None
) -> np.ndarray:
    """Pointwise marginal log-likelihood, (S, N) per participant or (S, K) per cluster.

    ``params``: dict with theta (S, d), sd, sd_b, sd_u, optional rho and sd_c (S,) (e.g. from
    :func:`posterior_params`). With a cluster level (``sd_c`` present) participants in a cluster
    are dependent, so the exchangeable unit is the cluster: ``by`` defaults to "cluster" then,
    to "participant" otherwise.
    """
    theta, s2, l11, l21, l22, sd_c = _prep(params)
    if by is None:
        by = "cluster" if sd_c is not None else "participant"
    if by == "participant" and sd_c is not None:
        raise DataError("per-participant log-likelihoods are not defined with a cluster level.")
    Sdraws, d = theta.shape
    N = stats.n_units
    out = np.empty((Sdraws, N if by == "participant" else stats.n_clusters))
    step = max(1, _CHUNK // max(1, N * d))
    for s0 in range(0, Sdraws, step):
        sl = slice(s0, min(Sdraws, s0 + step))
        th = theta[sl]
        zr0, _, S00, S01, S11, det, w0, w1 = _unit_pieces(
            stats, th, s2[sl], l11[sl], l21[sl], l22[sl]
        )
        rr = (
            stats.yy[None, :]
            - 2.0 * th @ stats.Xy.T
            + np.einsum("sd,nde,se->sn", th, stats.XX, th, optimize=True)
        )
        quad_w = (S11 * w0**2 - 2.0 * S01 * w0 * w1 + S00 * w1**2) / det
        s2c = s2[sl, None]
        ll = -0.5 * (
            stats.T * LOG_2PI + (stats.T - 2) * np.log(s2c) + np.log(det) + (rr - quad_w) / s2c
        )
        if by == "participant":
            out[sl] = ll
            continue
        K = stats.n_clusters
        a, q = _cluster_ah(
            stats, s2[sl], l11[sl], l21[sl], l22[sl], S00, S01, S11, det, w0, w1, zr0
        )
        A = _segment_sum(a, stats.cluster, K)
        Q = _segment_sum(q, stats.cluster, K)
        sc2 = (sd_c[sl] ** 2)[:, None]
        one_p = 1.0 + sc2 * A
        out[sl] = _segment_sum(ll, stats.cluster, K) - 0.5 * (np.log(one_p) - sc2 * Q**2 / one_p)
    return out


def add_log_likelihood(dt, stats: CollapsedStats, *, var_name: str = "y", by: str | None = None):
    """Attach the pointwise marginal log-likelihood as ``dt["log_likelihood"][var_name]``.

    Dims (chain, draw, participant) — or (chain, draw, cluster) with a cluster level — so
    ``az.loo(dt)`` gives leave-one-participant-out (leave-one-cluster-out) LOO. Returns ``dt``.
    """
    import xarray as xr

    post = dt["posterior"]
    params = posterior_params(dt)
    unit = by or ("cluster" if "sd_c" in params else "participant")
    ll = pointwise_loglik(stats, params, by=unit)
    labels = stats.cluster_labels if unit == "cluster" else stats.groups
    C, D = post.sizes["chain"], post.sizes["draw"]
    da = xr.DataArray(
        ll.reshape(C, D, -1),
        dims=("chain", "draw", unit),
        coords={"chain": post["chain"].values, "draw": post["draw"].values, unit: labels},
    )
    if "log_likelihood" in dt.children:
        dt["log_likelihood"][var_name] = da
    else:
        dt["log_likelihood"] = xr.Dataset({var_name: da})
    return dt


def draw_random_effects(
    stats: CollapsedStats,
    params: Mapping[str, np.ndarray],
    rng: np.random.Generator | int | None = None,
) -> dict[str, np.ndarray]:
    """One exact draw of b (S, N), u (S, N) and, with a cluster level, c (S, K) per posterior draw.

    Draws from p(c, b, u | y, theta, sds): first c_k from its marginal (b, u integrated out), then
    (b_i, u_i) | c_k. Together with posterior draws of (theta, sds) these are draws from the joint
    posterior.
    """
    rng = np.random.default_rng(rng)
    out: dict[str, np.ndarray] = {}
    c_units = None
    if params.get("sd_c") is not None and stats.cluster is not None:
        out["c"] = draw_cluster_effects(stats, params, rng)
        c_units = out["c"][:, stats.cluster]  # (S, N)
    out.update(draw_unit_effects(stats, params, rng, c_units=c_units))
    return out


def draw_cluster_effects(
    stats: CollapsedStats, params: Mapping[str, np.ndarray], rng: np.random.Generator
) -> np.ndarray:
    """Exact draws of the cluster intercepts c (S, K) from p(c | y, theta, sds), the participant
    effects integrated out (the first stage of :func:`draw_random_effects`)."""
    theta, s2, l11, l21, l22, sd_c = _prep(params)
    S = theta.shape[0]
    zr0, _, S00, S01, S11, det, w0, w1 = _unit_pieces(stats, theta, s2, l11, l21, l22)
    K = stats.n_clusters
    a, q = _cluster_ah(stats, s2, l11, l21, l22, S00, S01, S11, det, w0, w1, zr0)
    A = _segment_sum(a, stats.cluster, K)
    Q = _segment_sum(q, stats.cluster, K)
    sc2 = (sd_c**2)[:, None]
    one_p = 1.0 + sc2 * A
    return sc2 * Q / one_p + np.sqrt(sc2 / one_p) * rng.standard_normal((S, K))


def draw_unit_effects(
    stats: CollapsedStats,
    params: Mapping[str, np.ndarray],
    rng: np.random.Generator,
    *,
    c_units: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Exact draws of b (S, N) and u (S, N) from p(b, u | c, y, theta, sds), given each
    participant's drawn cluster intercept ``c_units`` (S, N) (the second stage of
    :func:`draw_random_effects`; participants are independent given c, so ``stats`` may hold
    any subset of them)."""
    theta, s2, l11, l21, l22, _ = _prep(params)
    S = theta.shape[0]
    zr0, zr1, S00, S01, S11, det, w0, w1 = _unit_pieces(stats, theta, s2, l11, l21, l22)
    if c_units is not None:
        g00, g01 = stats.ZZ[:, 0, 0], stats.ZZ[:, 0, 1]
        zr0 = zr0 - c_units * g00
        zr1 = zr1 - c_units * g01
        w0 = l11 * zr0 + l21 * zr1
        w1 = l22 * zr1
    # eta | . ~ N(S^-1 w, sd^2 S^-1)
    m0 = (S11 * w0 - S01 * w1) / det
    m1 = (S00 * w1 - S01 * w0) / det
    s2c = s2[:, None]
    C00 = s2c * S11 / det
    C01 = -s2c * S01 / det
    C11 = s2c * S00 / det
    c11 = np.sqrt(C00)
    c21 = C01 / c11
    c22 = np.sqrt(np.clip(C11 - c21**2, 0.0, None))
    z = rng.standard_normal((2, S, stats.n_units))
    e0 = m0 + c11 * z[0]
    e1 = m1 + c21 * z[0] + c22 * z[1]
    return {"b": l11 * e0, "u": l21 * e0 + l22 * e1}


def subset_stats(stats: CollapsedStats, index: np.ndarray) -> CollapsedStats:
    """The statistics of the participants ``index`` (positions), without their cluster level."""
    return replace(
        stats,
        T=stats.T[index],
        ZZ=stats.ZZ[index],
        XZ=stats.XZ[index],
        Zy=stats.Zy[index],
        XX=stats.XX[index],
        Xy=stats.Xy[index],
        yy=stats.yy[index],
        groups=stats.groups[index],
        cluster=None,
        cluster_labels=None,
    )
