"""EMEE: causal excursion effects on the log relative-risk scale for binary outcomes.

Qian, Yoo, Klasnja, Almirall & Murphy (2021, Biometrika 108:507), as MRTAnalysis ``emee()`` /
``emee2()`` compute them. The estimand is

    log RR(s) = log E[Y(1) | S = s, I = 1] - log E[Y(0) | S = s, I = 1] = f(s)' beta.

``emee`` (default) solves, over available rows,
    sum_t W_t exp(-A_t f_t'beta) (Y_t - exp(g_t'alpha + A_t f_t'beta)) [g_t ; (A_t - pt_t) f_t] = 0
with weights W_t = (pt/p)^A ((1-pt)/(1-p))^(1-A) and numerator probability pt.
``emee2`` centres A by the randomization probability p inside the residual (no weights):
    sum_t (exp(-(A_t - p_t) f_t'beta) Y_t - exp(g_t'alpha)) [g_t ; (A_t - p_t) f_t] = 0.

The control design g is used exactly as given (no automatic moderator terms). The equation is
solved by damped Newton steps with the analytic Jacobian to |U|/n < 1e-12; the variance is the
sandwich with the Mancl-DeRouen correction always applied (computed exactly, see
:mod:`.sandwich`); inference uses t with df = n - p - q, n = all participants.

Deviation from MRTAnalysis, on purpose: ``emee2``'s hat matrix there also mixes in unavailable
decision points; here both estimators use available decision points only.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import numpy as np

from hte_mrt._contract import check_conf_level
from hte_mrt.data.checks import check_bool, check_int, check_number
from hte_mrt.data.large import LargeMRTData
from hte_mrt.data.schema import MRTData
from hte_mrt.errors import DesignError, EstimationError, OutcomeTypeError
from hte_mrt.estimands.excursion import (
    Design,
    ExcursionEffect,
    NumeratorSpec,
    build_design,
    check_mrt_data,
    register_estimator,
)
from hte_mrt.estimators.sandwich import corrected_cov, group_starts, plain_cov
from hte_mrt.estimators.wcls import (
    degenerate_outcome_note,
    excursion_result,
    resolve_estimand,
)
from hte_mrt.results.frequentist import ExcursionResult


def _pieces(design: Design, theta: np.ndarray, variant: str):
    """Row-level D (n x d), r (n), dr/dtheta (n x d) and the dD/dtheta * r term (d x d)."""
    Z, X, y = design.G, design.F, design.y
    q = Z.shape[1]
    a = (design.a_index == 1).astype(float)
    alpha, beta = theta[:q], theta[q:]
    xb = X @ beta
    if variant == "emee":
        W = design.W
        ct = a - design.num[:, 1]
        mu = np.exp(Z @ alpha + a * xb)
        r = y - mu
        pre = np.exp(-a * xb) * W
        D = pre[:, None] * np.hstack([Z, ct[:, None] * X])
        dr = -mu[:, None] * np.hstack([Z, a[:, None] * X])
        dD_r = np.zeros((len(theta), len(theta)))
        dD_r[:, q:] = -(D * (a * r)[:, None]).T @ X
    else:  # emee2
        ca = a - design.prob[:, 1]
        e_neg = np.exp(-ca * xb)
        ez = np.exp(Z @ alpha)
        r = e_neg * y - ez
        D = np.hstack([Z, ca[:, None] * X])
        dr = np.hstack([-ez[:, None] * Z, -(e_neg * y * ca)[:, None] * X])
        dD_r = np.zeros((len(theta), len(theta)))
    return D, r, dr, dD_r


def _solve(design: Design, variant: str, start: np.ndarray | None, tol: float, maxiter: int):
    d = design.dim
    names = [*design.g_names, *design.effect_names]
    n = design.n_participants_total

    def eval_UJ(th: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        D, r, dr, dD_r = _pieces(design, th, variant)
        return D.T @ r, dD_r + D.T @ dr

    def eval_U(th: np.ndarray) -> tuple[np.ndarray, bool]:
        Dc, rc, _, _ = _pieces(design, th, variant)
        return Dc.T @ rc, bool(np.all(np.isfinite(rc)))

    return newton(eval_UJ, eval_U, d, names, n, start, tol, maxiter)


def newton(eval_UJ, eval_U, d: int, names: list[str], n: int, start, tol: float, maxiter: int):
    """Damped Newton on the estimating function U (``eval_UJ(theta) -> (U, J)``,
    ``eval_U(theta) -> (U, all residuals finite)``): in memory, or map-reduced over partitions."""
    try:
        theta = np.zeros(d) if start is None else np.array(start, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise DesignError(
            f"start must be {d} numbers (controls then effects: {names}), got {start!r}."
        ) from None
    if theta.shape != (d,) or isinstance(start, str):
        raise DesignError(
            f"start needs {d} values (controls then effects: {names}), got {theta.size}."
        )
    if not np.all(np.isfinite(theta)):
        raise DesignError(f"start must be finite numbers (controls then effects: {names}).")
    for it in range(maxiter):
        U, J = eval_UJ(theta)
        if np.max(np.abs(U)) / n < tol:
            return theta, it
        try:
            step = np.linalg.solve(J, U)
        except np.linalg.LinAlgError:
            raise EstimationError(
                "EMEE: singular Jacobian (collinear control/moderator terms?)."
            ) from None
        norm0, lam = np.linalg.norm(U), 1.0
        while lam > 1e-8:  # damped Newton: accept the first step that reduces |U|
            cand = theta - lam * step
            Uc, finite = eval_U(cand)
            if finite and np.linalg.norm(Uc) < norm0:
                break
            lam /= 2
        theta = cand
    raise EstimationError(
        f"EMEE did not converge in {maxiter} Newton steps (|U|/n = {np.max(np.abs(U)) / n:.2e}). "
        "Try start= values, or a simpler control/moderator model (rare outcomes make log-RR "
        "models hard to fit)."
    )


def emee(
    data: MRTData | LargeMRTData,
    moderators: str = "~ 1",
    controls: str = "~ 1",
    *,
    numerator: NumeratorSpec = None,
    lag: int = 0,
    variant: Literal["emee", "emee2"] = "emee",
    small_sample: bool = True,
    conf_level: float = 0.95,
    start: np.ndarray | None = None,
    tol: float = 1e-12,
    maxiter: int = 100,
    estimand: ExcursionEffect | None = None,
) -> ExcursionResult:
    r"""Estimate the log relative-risk causal excursion effect of a binary outcome (EMEE).

    The estimator of Qian, Yoo, Klasnja, Almirall & Murphy (2021, Biometrika 108:507), as
    MRTAnalysis ``emee()`` / ``emee2()`` compute it. The estimand is the causal excursion
    effect on the log relative-risk scale,

    .. math::

        \beta(t; s) = \log \frac{E[Y_{t+\ell}(1) \mid S_t = s, I_t = 1]}
        {E[Y_{t+\ell}(0) \mid S_t = s, I_t = 1]} = f(s)^\top \beta,

    solved from
    :math:`\sum_t W_t e^{-A_t f_t^\top \beta} (Y_t - e^{g_t^\top \alpha + A_t f_t^\top
    \beta}) [g_t;\ (A_t - \tilde p_t) f_t] = 0` over available rows by damped Newton steps;
    the variance is the participant-level sandwich, inference uses t with df = n - p - q.
    The control formula is used as given (no automatic moderator terms).

    This is the short form of ``hm.ExcursionEffect(...).fit(data, estimator="emee")``.

    Parameters
    ----------
    data : MRTData or LargeMRTData
        A validated trial with a binary (0/1) outcome and a binary treatment; a partitioned
        trial (:meth:`hm.MRTData.from_parquet <hte_mrt.MRTData.from_parquet>`) runs each
        Newton step as a map-reduce on its Dask cluster.
    moderators, controls : str
        Formulas of f(S) and of the control terms g.
    numerator : float, str or None
        Numerator probability :math:`\tilde p` (as for :func:`hm.wcls <hte_mrt.wcls>`).
    lag : int, default 0
        Outcome ``lag`` decision points after the treatment (rows in time order within
        participant, whatever the unit of the time column).
    variant : {"emee", "emee2"}, default "emee"
        ``"emee2"`` centres the treatment by p inside the residual (no weights), the
        estimator behind MRTSampleSizeBinary.
    small_sample : bool, default True
        Mancl-DeRouen correction (on by default, as in MRTAnalysis).
    conf_level : float, default 0.95
        Level of the reported confidence intervals.
    start : array, optional
        Starting values (controls then effects) for the Newton iterations.
    tol, maxiter
        Convergence: ``max|U| / n < tol`` within ``maxiter`` Newton steps.
    estimand : ExcursionEffect, optional
        Alternatively, a ready estimand, instead of the formulas, ``numerator`` and ``lag``
        (giving both, with different values, raises :class:`~hte_mrt.errors.DesignError`).

    Warns
    -----
    DegenerateDataWarning
        The binary outcome never varies on the analysed rows: always 1 gives a log relative
        risk of exactly 0 with standard error 0 (t, p NaN); always 0 leaves it undefined (NaN).
        ``summary()`` says why.

    Returns
    -------
    ExcursionResult
        On the log relative-risk scale (``scale="log_rr"``); ``table()`` has the columns term,
        estimate, se, lcl, ucl, t, df, p.

    Examples
    --------
    >>> import numpy as np
    >>> import hte_mrt as hm
    >>> frame = hm.load_dataset("heartsteps")
    >>> frame["active"] = (frame["jbsteps30_zero"] > 100).astype(int)  # > 100 steps in 30 min
    >>> trial = hm.MRTData(frame, id="user", time="decision_index_nogap", treatment="send",
    ...                    outcome="active", availability="avail", prob="rand_prob")
    >>> fit = hm.emee(trial, "~ 1", "~ jbsteps30pre_log")
    >>> fit.table()[["term", "estimate", "se", "p"]].round(3)
            term  estimate     se      p
    0  Intercept     0.047  0.029  0.116
    >>> round(float(np.exp(fit.params["Intercept"])), 3)  # the risk ratio
    1.048
    """
    check_mrt_data(data, "emee", large=True)
    check_conf_level(conf_level)
    small_sample = check_bool("small_sample", small_sample)
    check_number("tol", tol, low=0.0, example="1e-12")
    maxiter = check_int("maxiter", maxiter, 1)
    est = resolve_estimand(estimand, moderators, controls, lag, numerator)
    lag = est.lag
    if not data.is_binary:
        raise DesignError(
            "EMEE handles a binary treatment; for a categorical treatment analyse one level "
            "against the reference at a time (subset the data), or use WCLS."
        )
    if not isinstance(variant, str) or variant not in ("emee", "emee2"):
        raise DesignError(f"variant must be 'emee' or 'emee2', got {variant!r}.")
    design_est = est
    if variant == "emee2" and est.numerator is None:
        design_est = replace(est, numerator=0.5)  # unused by emee2
    if not isinstance(data, MRTData):  # partitioned (LargeMRTData): map-reduce on Dask
        from hte_mrt.estimators.large import emee_large

        return emee_large(
            data, est, design_est, variant, small_sample, conf_level, start, tol, maxiter
        )
    design = build_design(data, design_est, add_moderator_main_effects=False)
    check_binary_outcome(design.y, data.roles.outcome)
    note = degenerate_outcome_note(design, data, binary=True)
    n = design.n_participants_total
    if note is not None and design.y[0] == 0.0:
        # never an event: log E[Y] = -inf, the log relative risk is undefined (said in the note)
        nan = np.full(design.dim, np.nan)
        return excursion_result(
            variant.upper(), "log_rr", design, n, conf_level, small_sample, est, nan,
            np.full((design.dim, design.dim), np.nan),
            {"lag": lag, "newton_steps": 0, "degenerate": note},
        )  # fmt: skip
    theta, n_iter = _solve(design, variant, start, tol, maxiter)
    D, r, dr, dD_r = _pieces(design, theta, variant)
    J = dD_r + D.T @ dr
    starts = group_starts(design.group)
    s = np.add.reduceat(D * r[:, None], starts, axis=0)
    if small_sample:
        K = np.add.reduceat(D[:, :, None] * dr[:, None, :], starts, axis=0)
        cov = corrected_cov(J, K, s)
    else:
        cov = plain_cov(J, s)
    info = {"lag": lag, "newton_steps": n_iter}
    if note is not None:
        info["degenerate"] = note
    return excursion_result(
        variant.upper(), "log_rr", design, n, conf_level, small_sample, est, theta, cov, info
    )


def check_binary_outcome(y: np.ndarray, col: str) -> None:
    """EMEE's outcome ``y`` (the analysed rows of column ``col``) must be 0/1."""
    bad = ~np.isin(y, (0.0, 1.0))
    if bad.any():
        raise OutcomeTypeError(
            f"Column '{col}' (outcome) must be 0/1 for EMEE; {bad.sum()} analysed row(s) are not "
            f"(e.g. {y[bad][0]:g}). Use wcls() for continuous outcomes.",
            column=col,
            n_rows=int(bad.sum()),
        )


def _fit_estimand(data: MRTData, estimand: ExcursionEffect, **options) -> ExcursionResult:
    return emee(data, estimand=estimand, **options)


def _fit_estimand2(data: MRTData, estimand: ExcursionEffect, **options) -> ExcursionResult:
    return emee(data, estimand=estimand, **({"variant": "emee2"} | options))


register_estimator("emee", _fit_estimand, emee)
register_estimator("emee2", _fit_estimand2, emee)
