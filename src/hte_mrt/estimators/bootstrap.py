"""Bayesian bootstrap of the WCLS estimating equation (a robust 'posterior').

Rubin's (1981) Bayesian bootstrap over participants: for draw r, weights
w_r ~ Dirichlet(1, ..., 1) * n, and theta_r solves the weighted estimating equation
sum_i w_ri X_i' W_i (y_i - X_i theta) = 0, i.e.

    theta_r = (sum_i w_ri C_i)^-1 sum_i w_ri b_i,   C_i = X_i'W_i X_i, b_i = X_i'W_i y_i.

With per-participant cross-products precomputed, all draws are one batched solve. The draws
approximate the sampling distribution of the WCLS estimate without any outcome model, so they
are a model-free reference column for the posterior cross-check.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import xarray as xr

from hte_mrt.data.schema import MRTData
from hte_mrt.errors import DesignError
from hte_mrt.estimands.excursion import Design, ExcursionEffect, NumeratorSpec, build_design
from hte_mrt.estimators.sandwich import group_crossprod, group_starts


def bayesian_bootstrap(
    data: MRTData | Design,
    moderators: str = "~ 1",
    controls: str = "~ 1",
    *,
    numerator: NumeratorSpec = None,
    lag: int = 0,
    draws: int = 4000,
    seed: int | None = None,
    which: Literal["effect", "all"] = "effect",
) -> xr.DataArray:
    """Bayesian-bootstrap draws of the WCLS coefficients, dims ``(draw, term)``.

    ``data`` may be an :class:`MRTData` (then the formulas build the design) or a prepared
    :class:`Design` (reused as is). ``which="all"`` includes the control coefficients.
    """
    if draws < 1:
        raise DesignError(f"draws must be positive, got {draws}.")
    design = (
        data
        if isinstance(data, Design)
        else build_design(data, ExcursionEffect(moderators, controls, lag, numerator))
    )
    C, b = group_crossprod(design.X, design.W, design.y, group_starts(design.group))
    rng = np.random.default_rng(seed)
    out = np.empty((draws, design.dim))
    step = max(1, int(2e7 // (design.n_groups * design.dim**2)))
    for r0 in range(0, draws, step):
        nb = min(step, draws - r0)
        w = rng.dirichlet(np.ones(design.n_groups), size=nb)
        B = np.einsum("rn,nij->rij", w, C)
        out[r0 : r0 + nb] = np.linalg.solve(B, np.einsum("rn,ni->ri", w, b)[..., None])[..., 0]
    q = design.G.shape[1]
    names = [f"control:{n}" for n in design.g_names] + design.effect_names
    if which == "effect":
        out, names = out[:, q:], names[q:]
    return xr.DataArray(
        out,
        dims=("draw", "term"),
        coords={"draw": np.arange(draws), "term": names},
        name="bayesian_bootstrap",
        attrs={"method": "Bayesian bootstrap of WCLS (Dirichlet weights over participants)"},
    )
