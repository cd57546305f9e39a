"""Randomization (re-randomization) test for WCLS excursion effects.

Under the sharp null that treatment never changes the outcome, Y is fixed while A could have been
any draw from the known randomization. We redraw A* at each analysed (available) decision point
from its stated probabilities p_t (or permute A within participant), refit WCLS, and compare the
observed |t| of each effect term with its re-randomization distribution:

    p_rand = (1 + #{r : |t*_r| >= |t_obs|}) / (R + 1).

We also report the share of re-randomized analyses "significant" at ``alpha`` by the usual t test:
near ``alpha`` when the model-based test is calibrated.

Only A changes between refits, so every refit is assembled from per-row statistics
Phi_t(k) = [W_t(k) x_t(k) x_t(k)', W_t(k) x_t(k) y_t] precomputed for each level k: per participant
sum_t Phi_t(A*_t) = sum_k 1[A* = k] Phi(k), a matrix product over the batch of redraws; the
(Mancl-DeRouen corrected) sandwich is then solved in batch. Control terms that depend on past
treatment are held at their observed values (conditional on the observed history).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from hte_mrt._contract import check_conf_level
from hte_mrt._util import tqdm
from hte_mrt.data.checks import check_bool, check_int, check_number, check_seed
from hte_mrt.data.large import LargeMRTData
from hte_mrt.data.schema import MRTData
from hte_mrt.errors import DesignError
from hte_mrt.estimands.excursion import (
    Design,
    ExcursionEffect,
    NumeratorSpec,
    build_design,
    check_mrt_data,
)
from hte_mrt.estimators.sandwich import group_starts, wls_sandwich
from hte_mrt.estimators.wcls import (
    degenerate_outcome_note,
    exact_constant_fit,
    fit_design,
    resolve_estimand,
    resolve_small_sample,
)
from hte_mrt.results.randomization import RandomizationResult

_BATCH_BYTES = 150e6


def _row_stats(design: Design) -> np.ndarray:
    """Phi (K, n, d*d + d): per-row WCLS statistics with A set to each level."""
    out = []
    for k in range(design.n_levels):
        X = design.x_for(k)
        W = design.w_for(k)
        XW = X * W[:, None]
        C = (XW[:, :, None] * X[:, None, :]).reshape(len(X), -1)
        out.append(np.hstack([C, XW * design.y[:, None]]))
    return np.stack(out)


def _check_permutable(design: Design, starts: np.ndarray) -> None:
    """scheme='permute' needs each participant's randomization probabilities constant."""
    ends = np.r_[starts[1:], len(design.y)]
    for lo, hi in zip(starts, ends, strict=True):
        if np.ptp(design.prob[lo:hi], axis=0).max() > 1e-12:
            raise DesignError(
                "scheme='permute' needs constant randomization probabilities within each "
                "participant; use scheme='redraw'."
            )


def _draw(
    rng: np.random.Generator, design: Design, n: int, scheme: str, starts: np.ndarray
) -> np.ndarray:
    """n redraws of the level index at every analysed row (n x rows)."""
    rows = len(design.y)
    if scheme == "redraw":
        cum = np.cumsum(design.prob, axis=1)
        u = rng.random((n, rows))
        out = np.zeros((n, rows), dtype=np.int8)
        for k in range(design.n_levels - 1):
            out += u >= cum[None, :, k]
        return out
    out = np.empty((n, rows), dtype=np.int64)
    ends = np.r_[starts[1:], rows]
    for lo, hi in zip(starts, ends, strict=True):
        out[:, lo:hi] = rng.permuted(np.broadcast_to(design.a_index[lo:hi], (n, hi - lo)), axis=1)
    return out


def randomization_test(
    data: MRTData | LargeMRTData,
    moderators: str = "~ 1",
    controls: str = "~ 1",
    *,
    numerator: NumeratorSpec = None,
    lag: int = 0,
    n_resamples: int = 5000,
    scheme: Literal["redraw", "permute"] = "redraw",
    alpha: float = 0.05,
    small_sample: bool | Literal["auto"] = "auto",
    conf_level: float = 0.95,
    seed: int | None = None,
    progress: bool = True,
    estimand: ExcursionEffect | None = None,
) -> RandomizationResult:
    r"""Re-randomization test of WCLS causal excursion effects.

    The effect is WCLS's (Boruvka et al. 2018):
    :math:`\beta(t; s) = E[Y_{t+\ell}(1) - Y_{t+\ell}(0) \mid S_t = s, I_t = 1] = f(s)^\top
    \beta`. Under the sharp null that treatment never changes the outcome, Y is fixed while A
    could have been any draw from the known randomization: A* is redrawn at every analysed
    decision point, WCLS refitted (all refits batched), and each term's observed ``|t|`` compared
    with its re-randomization distribution,

    .. math::

        p_{\mathrm{rand}} = \frac{1 + \#\{r : |t^*_r| \ge |t_{\mathrm{obs}}|\}}{R + 1}.

    Parameters
    ----------
    data : MRTData or LargeMRTData
        A validated trial, or a partitioned one (:meth:`hm.MRTData.from_parquet
        <hte_mrt.MRTData.from_parquet>`): the redraws are made partition by partition on its
        Dask cluster. With ``scheme="redraw"`` every row gets the uniform it gets in memory
        (the generator is jumped to its place), so the same seed gives the same numbers;
        ``scheme="permute"`` then draws one stream per participant (reproducible and
        independent of the partitioning, but not the in-memory permutations).
    moderators, controls, numerator, lag
        The estimand, as for :func:`hm.wcls <hte_mrt.wcls>`.
    n_resamples : int, default 5000
        Number of re-randomizations R.
    scheme : {"redraw", "permute"}, default "redraw"
        ``"redraw"``: A* ~ the stated randomization probabilities at each available decision
        point (the design's own randomization). ``"permute"``: permute A within participant
        (valid when each participant's probabilities are constant).
    alpha : float, default 0.05
        Level at which ``share_significant`` counts redraws with a "significant" t test.
    small_sample : {"auto", True, False}, default "auto"
        Mancl-DeRouen correction of every refit (as for :func:`hm.wcls <hte_mrt.wcls>`).
    conf_level : float, default 0.95
        Level of the observed fit's confidence intervals.
    seed : int, optional
        Seed of the redraws (results are reproducible for a given seed).
    progress : bool, default True
        Show a tqdm progress bar.
    estimand : ExcursionEffect, optional
        Alternatively, a ready estimand, instead of the formulas, ``numerator`` and ``lag``
        (giving both, with different values, raises :class:`~hte_mrt.errors.DesignError`).

    Returns
    -------
    RandomizationResult
        ``table()`` with columns term, estimate, se, lcl, ucl, t, df, p (model-based),
        p_randomization, share_significant; ``t_null`` (resamples x terms).

    Examples
    --------
    >>> import hte_mrt as hm
    >>> trial = hm.load_dataset("heartsteps", as_data=True)
    >>> rt = hm.randomization_test(trial, "~ 1", "~ jbsteps30pre_log", n_resamples=500,
    ...                            seed=1, progress=False)
    >>> rt.table()[["term", "t", "p", "p_randomization"]].round(2)
            term     t     p  p_randomization
    0  Intercept  1.95  0.06             0.07
    """
    check_mrt_data(data, "randomization_test", large=True)
    n_resamples = check_int("n_resamples", n_resamples, 1)
    if not isinstance(scheme, str) or scheme not in ("redraw", "permute"):
        raise DesignError(f"scheme must be 'redraw' or 'permute', got {scheme!r}.")
    alpha = check_number("alpha", alpha, low=0.0, high=1.0, example="0.05")
    check_bool("small_sample", small_sample, allow=("auto",))
    check_conf_level(conf_level)
    check_seed(seed)
    progress = check_bool("progress", progress)
    est = resolve_estimand(estimand, moderators, controls, lag, numerator)
    if not isinstance(data, MRTData):  # partitioned (LargeMRTData): map-reduce on Dask
        from hte_mrt.estimators.large import randomization_large

        return randomization_large(
            data, est, n_resamples=n_resamples, scheme=scheme, alpha=alpha,
            small_sample=small_sample, conf_level=conf_level, seed=seed, progress=progress,
        )  # fmt: skip
    design = build_design(data, est)
    note = degenerate_outcome_note(design, data)
    observed = fit_design(
        design, small_sample=small_sample, conf_level=conf_level, lag=est.lag, estimand=est
    )
    if note:
        exact_constant_fit(observed)
        observed.info["degenerate"] = note
    starts = group_starts(design.group)
    if scheme == "permute":
        _check_permutable(design, starts)
    small = resolve_small_sample(small_sample, design.n_groups)
    phi = _row_stats(design)
    base = np.add.reduceat(phi[0], starts, axis=0)  # all rows at the reference level
    delta = phi[1:] - phi[:1]
    d, q, N = design.dim, design.G.shape[1], design.n_groups
    per_draw = 8 * (N * (d * d + d) * 3 + len(design.y) * (design.n_levels + 2))
    batch = int(max(1, min(n_resamples, _BATCH_BYTES // per_draw)))
    rng = np.random.default_rng(seed)
    ends = np.r_[starts[1:], len(design.y)]
    t_all = np.empty((n_resamples, d - q))
    est_all = np.empty((n_resamples, d - q))
    bar = tqdm(total=n_resamples, disable=not progress, desc="Re-randomizing", unit="fit")
    for r0 in range(0, n_resamples, batch):
        nb = min(batch, n_resamples - r0)
        levels = _draw(rng, design, nb, scheme, starts)
        S = np.broadcast_to(base, (nb, *base.shape)).copy()
        for k in range(1, design.n_levels):
            ind = (levels == k).astype(float)
            for i, (lo, hi) in enumerate(zip(starts, ends, strict=True)):
                S[:, i, :] += ind[:, lo:hi] @ delta[k - 1, lo:hi]
        C = S[..., : d * d].reshape(nb, N, d, d)
        b = S[..., d * d :]
        theta, cov = wls_sandwich(C, b, small)
        se = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
        est_all[r0 : r0 + nb] = theta[:, q:]
        with np.errstate(divide="ignore", invalid="ignore"):
            t_all[r0 : r0 + nb] = theta[:, q:] / se[:, q:]
        bar.update(nb)
    bar.close()
    if note:  # constant outcome: every refit is exact (effects 0, t undefined), not noise
        est_all[:] = 0.0
        t_all[:] = np.nan
    return RandomizationResult(observed, t_all, est_all, alpha=alpha, scheme=scheme, seed=seed)
