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

from hte_mrt._contract import check_conf_level
from hte_mrt._util import tqdm
from hte_mrt.data.checks import check_bool, check_int, check_seed
from hte_mrt.data.schema import MRTData
from hte_mrt.errors import DesignError
from hte_mrt.estimands.excursion import (
    Design,
    ExcursionEffect,
    NumeratorSpec,
    build_design,
    check_mrt_data,
    register_estimator,
)
from hte_mrt.estimators.sandwich import design_crossprod, group_starts
from hte_mrt.estimators.wcls import degenerate_outcome_note, resolve_estimand
from hte_mrt.results.bootstrap import BootstrapResult


def bayesian_bootstrap(
    data: MRTData | Design,
    moderators: str = "~ 1",
    controls: str = "~ 1",
    *,
    numerator: NumeratorSpec = None,
    lag: int = 0,
    n_boot: int = 4000,
    seed: int | None = None,
    which: Literal["effect", "all"] = "effect",
    conf_level: float = 0.95,
    progress: bool = True,
    estimand: ExcursionEffect | None = None,
) -> BootstrapResult:
    r"""Bayesian bootstrap of the WCLS estimating equation: a model-free 'posterior' of the
    causal excursion effect.

    The estimand is WCLS's (Boruvka et al. 2018):
    :math:`\beta(t; s) = E[Y_{t+\ell}(1) - Y_{t+\ell}(0) \mid S_t = s, I_t = 1] = f(s)^\top
    \beta` on the additive scale. Rubin's (1981) Bayesian bootstrap over participants: for
    draw r, :math:`w_r \sim \mathrm{Dirichlet}(1, \ldots, 1)` and

    .. math::

        \theta_r = \Big(\sum_i w_{ri} X_i^\top W_i X_i\Big)^{-1}
        \sum_i w_{ri} X_i^\top W_i y_i,

    all draws in a few batched solves. The draws approximate the sampling distribution of the
    WCLS estimate without any outcome model: a reference for :func:`hm.crosscheck
    <hte_mrt.crosscheck>`.

    Parameters
    ----------
    data : MRTData or Design
        A validated trial (the formulas build the design) or a prepared design (reused as is).
    moderators, controls, numerator, lag
        The estimand, as for :func:`hm.wcls <hte_mrt.wcls>`.
    n_boot : int, default 4000
        Number of bootstrap draws.
    seed : int, optional
        Seed of the Dirichlet weights (results are reproducible for a given seed).
    which : {"effect", "all"}, default "effect"
        ``"all"`` also keeps the control coefficients (terms prefixed ``control:``).
    conf_level : float, default 0.95
        Default level of the percentile intervals of ``table()``.
    progress : bool, default True
        Show a tqdm progress bar over the batches of draws.
    estimand : ExcursionEffect, optional
        Alternatively, a ready estimand, instead of the formulas, ``numerator`` and ``lag``
        (giving both, with different values, raises :class:`~hte_mrt.errors.DesignError`).

    Returns
    -------
    BootstrapResult
        ``table()`` with columns term, estimate (mean of the draws), se (sd), lcl, ucl
        (percentile interval), pr_positive; ``effect_draws()`` (dims draw, term).

    Examples
    --------
    >>> import hte_mrt as hm
    >>> trial = hm.load_dataset("heartsteps", as_data=True)
    >>> boot = hm.bayesian_bootstrap(trial, "~ 1", "~ jbsteps30pre_log", n_boot=2000, seed=1,
    ...                              progress=False)
    >>> boot.table().round(2)
            term  estimate    se   lcl   ucl  pr_positive
    0  Intercept      0.13  0.06  0.01  0.26         0.98
    """
    n_boot = check_int("n_boot", n_boot, 1)
    if n_boot < 2:
        raise DesignError(
            f"n_boot={n_boot}: one replicate has no spread, so no se or interval; pass "
            "n_boot >= 2 (e.g. n_boot=4000)."
        )
    if not isinstance(which, str) or which not in ("effect", "all"):
        raise DesignError(f"which must be 'effect' or 'all', got {which!r}.")
    check_conf_level(conf_level)
    check_seed(seed)
    progress = check_bool("progress", progress)
    notes: list[str] = []
    est = None
    if isinstance(data, Design):
        design = data
    else:
        check_mrt_data(data, "bayesian_bootstrap")
        est = resolve_estimand(estimand, moderators, controls, lag, numerator)
        design = build_design(data, est)
        note = degenerate_outcome_note(design, data)
        if note:
            notes.append(note)
    C, b = design_crossprod(design, group_starts(design.group))
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, design.dim))
    step = max(1, int(2e7 // (design.n_groups * design.dim**2)))
    with tqdm(total=n_boot, disable=not progress, desc="Bayesian bootstrap", unit="draw") as bar:
        for r0 in range(0, n_boot, step):
            nb = min(step, n_boot - r0)
            w = rng.dirichlet(np.ones(design.n_groups), size=nb)
            B = np.einsum("rn,nij->rij", w, C)
            rhs = np.einsum("rn,ni->ri", w, b)[..., None]
            out[r0 : r0 + nb] = np.linalg.solve(B, rhs)[..., 0]
            bar.update(nb)
    q = design.G.shape[1]
    if notes:  # constant outcome: every weighted fit is exact, effects 0 (not rounding noise)
        out[:, q:] = 0.0
    names = [f"control:{n}" for n in design.g_names] + design.effect_names
    if which == "effect":
        out, names = out[:, q:], names[q:]
    draws = xr.DataArray(
        out,
        dims=("draw", "term"),
        coords={"draw": np.arange(n_boot), "term": names},
        name="bayesian_bootstrap",
    )
    return BootstrapResult(
        draws=draws,
        conf_level=conf_level,
        n=design.n_groups,
        seed=seed,
        notes=notes,
        estimand=est,
    )


def _fit_estimand(data: MRTData, estimand: ExcursionEffect, **options) -> BootstrapResult:
    return bayesian_bootstrap(data, estimand=estimand, **options)


register_estimator("bayesian_bootstrap", _fit_estimand, bayesian_bootstrap)
