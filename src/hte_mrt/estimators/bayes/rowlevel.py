"""Row-level reference model: the same hierarchical Gaussian model with the random effects sampled.

y_it ~ N(x_it' theta + b_i + c_k(i) + At_it u_i, sd^2), (b_i, u_i) = L eta_i (non-centred, default)
or (b_i, u_i) ~ N(0, L L') (centred), c_k ~ N(0, sd_c^2). Priors as in
:func:`hte_mrt.estimators.bayes.collapsed._build_collapsed_model`. Cost grows with the number of
rows; meant for validation on small data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hte_mrt.errors import DataError


def _build_rowlevel_model(
    X: np.ndarray,
    At: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    cluster: np.ndarray | None = None,
    *,
    correlated: bool = False,
    centered: bool = False,
    coef_names: Sequence[str] | None = None,
    theta_scale: np.ndarray | float | None = None,
    sd_scale: float | None = None,
):
    """PyMC row-level model. ``cluster``: one label per participant in ``np.unique(groups)`` order.

    Random effects are named ``b``, ``u`` (dims "unit") and ``c`` (dims "cluster").
    """
    import pymc as pm
    import pytensor.tensor as pt

    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    At = np.asarray(At, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    n, d = X.shape
    labels, g = np.unique(np.asarray(groups), return_inverse=True)
    if len(At) != n or len(y) != n or len(g) != n:
        raise DataError("X, At, y and groups must have the same number of rows.")
    sd_y = float(y.std()) if n > 1 and y.std() > 0 else 1.0
    if theta_scale is None:
        rms = np.sqrt(np.mean(X * X, axis=0))
        theta_scale = 2.5 * sd_y / np.where(rms > 0, rms, 1.0)
    if sd_scale is None:
        sd_scale = sd_y
    coords = {
        "coef": list(coef_names) if coef_names is not None else [f"x{j}" for j in range(d)],
        "unit": list(range(len(labels))),
        "re": ["b", "u"],
    }
    cl = None
    if cluster is not None:
        cluster = np.asarray(cluster)
        if len(cluster) != len(labels):
            raise DataError("cluster needs one label per participant.", column="cluster")
        cl_labels, cl = np.unique(cluster, return_inverse=True)
        coords["cluster"] = list(range(len(cl_labels)))
    with pm.Model(coords=coords) as model:
        theta = pm.Normal("theta", 0.0, np.broadcast_to(theta_scale, (d,)), dims="coef")
        sd = pm.HalfNormal("sd", sd_scale)
        sd_b = pm.HalfNormal("sd_b", sd_scale)
        sd_u = pm.HalfNormal("sd_u", sd_scale)
        if correlated:
            r01 = pm.Beta("rho01", 2.0, 2.0)
            rho = pm.Deterministic("rho", 2.0 * r01 - 1.0)
            l21, l22 = rho * sd_u, sd_u * pt.sqrt(1.0 - rho**2)
        else:
            l21, l22 = pt.zeros(()), sd_u
        if centered:
            if correlated:
                chol = pt.stack([pt.stack([sd_b, pt.zeros(())]), pt.stack([l21, l22])])
                bu = pm.MvNormal("bu", mu=np.zeros(2), chol=chol, dims=("unit", "re"))
                b = pm.Deterministic("b", bu[:, 0], dims="unit")
                u = pm.Deterministic("u", bu[:, 1], dims="unit")
            else:
                b = pm.Normal("b", 0.0, sd_b, dims="unit")
                u = pm.Normal("u", 0.0, sd_u, dims="unit")
        else:
            zb = pm.Normal("zb", 0.0, 1.0, dims="unit")
            zu = pm.Normal("zu", 0.0, 1.0, dims="unit")
            b = pm.Deterministic("b", sd_b * zb, dims="unit")
            u = pm.Deterministic("u", l21 * zb + l22 * zu, dims="unit")
        mu = pt.dot(X, theta) + b[g] + At * u[g]
        if cl is not None:
            sd_c = pm.HalfNormal("sd_c", sd_scale)
            if centered:
                c = pm.Normal("c", 0.0, sd_c, dims="cluster")
            else:
                zc = pm.Normal("zc", 0.0, 1.0, dims="cluster")
                c = pm.Deterministic("c", sd_c * zc, dims="cluster")
            mu = mu + c[cl[g]]
        pm.Normal("y", mu, sd, observed=y)
    return model
