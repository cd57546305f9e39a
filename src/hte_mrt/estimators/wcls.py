"""Weighted and centred least squares (Boruvka et al. 2018), as MRTAnalysis computes it.

On available rows, with x_it = [g_it ; (1[A_it = k] - pt_itk) f_it for k >= 1] and weights
W_it = pt_{A_it} / p_{A_it}, theta = (alpha, beta) solves sum_i X_i' W_i (y_i - X_i theta) = 0.
beta_k estimates the causal excursion effect f(s)' beta_k = E[Y(k) - Y(0) | S = s, I = 1].

Variance: sandwich B^-1 (sum_i e_i e_i') B^-1 with B = sum_i X_i' W_i X_i, e_i = X_i' W_i r_i, and
by default (n <= 50 participants) the Mancl-DeRouen correction r_i -> (I - H_ii)^-1 r_i,
H_ii = X_i B^-1 X_i' W_i, computed exactly in O(n d^3) (see :mod:`.sandwich`).
Inference: t with df = n - dim(theta), n = participants with an available decision point.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np

from hte_mrt._contract import check_conf_level
from hte_mrt.data.checks import check_bool
from hte_mrt.data.large import LargeMRTData
from hte_mrt.data.schema import MRTData
from hte_mrt.errors import DegenerateDataWarning, DesignError, EstimationError
from hte_mrt.estimands.excursion import (
    Design,
    ExcursionEffect,
    NumeratorSpec,
    build_design,
    check_mrt_data,
    outcome_degeneracy,
    register_estimator,
)
from hte_mrt.estimators.sandwich import design_crossprod, group_starts, wls_sandwich
from hte_mrt.results.frequentist import ExcursionResult

SMALL_SAMPLE_THRESHOLD = 50


def resolve_small_sample(small_sample: bool | Literal["auto"], n: int) -> bool:
    """``"auto"``: correct when n <= 50 participants (MRTAnalysis' rule)."""
    small_sample = check_bool("small_sample", small_sample, allow=("auto",))
    if small_sample == "auto":
        return n <= SMALL_SAMPLE_THRESHOLD
    return bool(small_sample)


def resolve_estimand(
    estimand: ExcursionEffect | None,
    moderators: str,
    controls: str,
    lag: int,
    numerator: NumeratorSpec,
) -> ExcursionEffect:
    """The estimand given, or the one the formulas describe (checked either way)."""
    if estimand is None:
        return ExcursionEffect(moderators, controls, lag, numerator)
    if not isinstance(estimand, ExcursionEffect):
        raise DesignError(
            f"estimand must be an hm.ExcursionEffect(moderators, controls, lag=...), got "
            f"{type(estimand).__name__}."
        )

    def norm(f: Any) -> Any:
        return "".join(f.split()) if isinstance(f, str) else f

    given = {"moderators": moderators, "controls": controls, "lag": lag, "numerator": numerator}
    defaults = {"moderators": "~ 1", "controls": "~ 1", "lag": 0, "numerator": None}
    clash = [
        f"{k}={v!r} (estimand has {getattr(estimand, k)!r})"
        for k, v in given.items()
        if norm(v) != norm(defaults[k]) and norm(v) != norm(getattr(estimand, k))
    ]
    if clash:
        raise DesignError(
            f"Both estimand= and {', '.join(clash)} were given and they differ. Give either "
            "estimand=hm.ExcursionEffect(moderators, controls, lag=..., numerator=...) or the "
            "formulas / lag= / numerator=, not both."
        )
    return estimand


def degenerate_outcome_note(
    design: Design, data: MRTData, *, binary: bool = False, stacklevel: int = 3
) -> str | None:
    """Warn (:class:`DegenerateDataWarning`) and return why the outcome is uninformative on the
    analysed rows (constant; a binary outcome that never varies), or None."""
    note = outcome_degeneracy(design, data.roles.outcome, binary=binary)
    if note is not None:
        warnings.warn(note, DegenerateDataWarning, stacklevel=stacklevel)
    return note


def wcls(
    data: MRTData | LargeMRTData,
    moderators: str = "~ 1",
    controls: str = "~ 1",
    *,
    numerator: NumeratorSpec = None,
    lag: int = 0,
    small_sample: bool | Literal["auto"] = "auto",
    conf_level: float = 0.95,
    estimand: ExcursionEffect | None = None,
) -> ExcursionResult:
    r"""Estimate a (moderated, lagged) causal excursion effect of a continuous outcome by WCLS.

    Weighted and centred least squares (Boruvka, Almirall, Witkiewitz & Murphy 2018, JASA
    113:1112), as MRTAnalysis ``wcls()`` computes it. The estimand is the causal excursion
    effect on the additive scale,

    .. math::

        \beta(t; s) = E\left[Y_{t+\ell}(1) - Y_{t+\ell}(0) \mid S_t = s, I_t = 1\right]
        = f(s)^\top \beta,

    marginal over past randomizations (``lag`` = :math:`\ell`; one :math:`\beta_k` per level
    of a categorical treatment). On available rows, with
    :math:`x_t = [g_t;\ (A_t - \tilde p_t) f_t]` and weights
    :math:`W_t = \tilde p_{A_t} / p_{A_t}`, :math:`(\alpha, \beta)` solves
    :math:`\sum_i \sum_t W_{it} x_{it} (Y_{it} - x_{it}^\top \theta) = 0`; the variance is
    the participant-level sandwich (Mancl-DeRouen corrected when ``small_sample``), and
    inference uses t with df = n - dim(theta).

    This is the short form of ``hm.ExcursionEffect(moderators, controls, lag=lag,
    numerator=numerator).fit(data, estimator="wcls")`` (identical numbers).

    Parameters
    ----------
    data : MRTData or LargeMRTData
        A validated trial (:class:`hm.MRTData <hte_mrt.MRTData>`), or a partitioned one
        (:meth:`hm.MRTData.from_parquet <hte_mrt.MRTData.from_parquet>`): the
        per-participant sums are then computed on its Dask cluster (the same numbers up to
        summation order).
    moderators, controls : str
        Formulas of f(S) and of the control terms g (moderator main effects are added to the
        controls automatically, as R's ``*`` does).
    numerator : float, str, dict or None
        Numerator probability :math:`\tilde p` (see :class:`hm.ExcursionEffect
        <hte_mrt.ExcursionEffect>`); default: the stated probability when it is constant.
        MRTAnalysis' default of 0.5 is *not* copied.
    lag : int, default 0
        Outcome ``lag`` decision points after the treatment (rows in time order within
        participant, whatever the unit of the time column).
    small_sample : {"auto", True, False}, default "auto"
        Mancl-DeRouen correction: ``"auto"`` corrects when n <= 50 participants.
    conf_level : float, default 0.95
        Level of the reported confidence intervals.
    estimand : ExcursionEffect, optional
        Alternatively, a ready estimand, instead of the formulas, ``numerator`` and ``lag``
        (giving both, with different values, raises :class:`~hte_mrt.errors.DesignError`).

    Raises
    ------
    DataError
        ``data`` is not an :class:`hm.MRTData <hte_mrt.MRTData>` (e.g. a DataFrame), or a
        formula column is infinite on an analysed row.
    DesignError
        A bad argument (``conf_level=95``, ``small_sample="no"``, ``lag=1.5``, a lag longer
        than the trial, no available decision point, ...); the message names it.

    Warns
    -----
    DegenerateDataWarning
        The outcome is constant on the analysed rows: the effect is exactly 0 with standard
        error 0, t and p are NaN, and ``summary()`` says why.

    Returns
    -------
    ExcursionResult
        ``table()`` with columns term, estimate, se, lcl, ucl, t, df, p; ``summary()``,
        ``conf_int(alpha)``, ``lincomb()``, ``joint_test()``, ``effect_curve()``,
        ``control_fit()``, ``to_netcdf()``.

    Examples
    --------
    >>> import hte_mrt as hm
    >>> trial = hm.load_dataset("heartsteps", as_data=True)
    >>> fit = hm.wcls(trial, "~ study_day_nogap", "~ jbsteps30pre_log")
    >>> fit.table()[["term", "estimate", "se", "p"]].round(4)
                  term  estimate      se       p
    0        Intercept    0.5074  0.1505  0.0020
    1  study_day_nogap   -0.0185  0.0061  0.0048
    >>> fit.lincomb({"Intercept": 1, "study_day_nogap": 20})[["term", "estimate"]].round(3)
                               term  estimate
    0  Intercept + 20*study_day_nogap     0.138
    """
    check_mrt_data(data, "wcls", large=True)
    check_conf_level(conf_level)
    check_bool("small_sample", small_sample, allow=("auto",))
    est = resolve_estimand(estimand, moderators, controls, lag, numerator)
    if not isinstance(data, MRTData):  # partitioned (LargeMRTData): map-reduce on Dask
        from hte_mrt.estimators.large import wcls_large

        return wcls_large(data, est, small_sample, conf_level)
    design = build_design(data, est)
    note = degenerate_outcome_note(design, data)
    res = fit_design(
        design, small_sample=small_sample, conf_level=conf_level, lag=est.lag, estimand=est
    )
    if note:
        exact_constant_fit(res)
        res.info["degenerate"] = note
    return res


def exact_constant_fit(res: ExcursionResult) -> None:
    """A constant outcome is fitted exactly (effects 0, residuals 0, covariance 0): replace the
    rounding noise of the solve by those exact values, so t and p are NaN (said in the summary)
    rather than ratios of rounding errors."""
    q = len(res.names_control)
    res.theta = np.asarray(res.theta, dtype=float).copy()
    res.theta[q:] = 0.0
    res.cov_theta = np.zeros_like(res.cov_theta)


def fit_design(
    design: Design,
    *,
    small_sample: bool | Literal["auto"] = "auto",
    conf_level: float = 0.95,
    lag: int = 0,
    estimand: ExcursionEffect | None = None,
) -> ExcursionResult:
    """WCLS on a prepared :class:`Design` (reuse the design across refits)."""
    check_conf_level(conf_level)
    starts = group_starts(design.group)
    C, b = design_crossprod(design, starts)
    n = design.n_groups
    small = resolve_small_sample(small_sample, n)
    with np.errstate(over="ignore", invalid="ignore"):
        theta, cov = wls_sandwich(C, b, small)
    _check_finite_fit(design, theta, cov)
    return excursion_result(
        "WCLS", "difference", design, n, conf_level, small, estimand, theta, cov, {"lag": lag}
    )


def excursion_result(
    method: str,
    scale: str,
    design: Any,
    n: int,
    conf_level: float,
    small_sample: bool,
    estimand: ExcursionEffect,
    theta: np.ndarray,
    cov: np.ndarray,
    info: dict,
) -> ExcursionResult:
    """The :class:`ExcursionResult` of a fit on ``design`` (an in-memory or partitioned one:
    its names and dimension) over ``n`` participants (df = n - dim)."""
    return ExcursionResult(
        method=method,
        scale=scale,
        names_control=design.g_names,
        names_effect=design.effect_names,
        theta=theta,
        cov_theta=cov,
        df=n - design.dim,
        n=n,
        conf_level=conf_level,
        small_sample=small_sample,
        design=design,
        info=info,
        estimand=estimand,
    )


def _check_finite_fit(
    design: Any,
    theta: np.ndarray,
    cov: np.ndarray,
    *,
    y_max: float | None = None,
    x_max: float | None = None,
) -> None:
    """An estimate or standard error that overflowed (inf / NaN) is not a result: say which
    scale is to blame and how to fix it (``y_max``, ``x_max``: the largest |y| and |x| when
    the design's rows are not at hand)."""
    se2 = np.diag(cov)
    if np.all(np.isfinite(theta)) and np.all(np.isfinite(se2)):
        return
    if y_max is None:
        y_max = float(np.nanmax(np.abs(design.y))) if design.y.size else 0.0
    if x_max is None:
        x_max = float(np.nanmax(np.abs(design.X))) if design.X.size else 0.0
    if y_max >= x_max:
        what = f"the outcome (largest |value| {y_max:.3g})"
        fix = "Rescale the outcome (e.g. divide it by a power of 10, or take a log)"
    else:
        what = f"a moderator or control term (largest |value| {x_max:.3g})"
        fix = "Rescale or center the large moderator / control columns"
    raise EstimationError(
        f"WCLS estimates or standard errors overflowed to inf/NaN: {what} is on a scale too "
        f"large for floating point (its squares exceed ~1.8e308). {fix}, then refit; the "
        "effects scale back by the same factor."
    )


def _fit_estimand(data: MRTData, estimand: ExcursionEffect, **options) -> ExcursionResult:
    return wcls(data, estimand=estimand, **options)


register_estimator("wcls", _fit_estimand, wcls)
