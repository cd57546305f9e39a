r"""The standardized proximal effect over time (Luers et al. 2019; MRTAnalysis 0.4
``calculate_mrt_effect_size()``), with a participant bootstrap.

At each decision point t (each distinct value of the time column):

1. b(t): the coefficient of A in the weighted least-squares fit of Y on (1, A, controls) over
   the rows at t, weights W = I / p if A = 1 and I / (1 - p) if A = 0 (unavailable rows get
   weight 0): the inverse-probability-weighted, covariate-adjusted difference in mean
   proximal outcome between treated and untreated available decision points.
2. s(t): the pooled standard deviation of the outcome,
   s^2 = {(n_0 - 1) s_0^2 + (n_1 - 1) s_1^2} / (n_0 + n_1 - 2), with s_a^2 the W-weighted
   unbiased variance (sum w (y - ybar_w)^2 / (sum w - sum w^2 / sum w)) of the outcome among
   available rows with A = a, and n_a their number. Not the residual sd: standardizing by the
   residual sd would mix treatment efficacy with the covariates' explanatory power
   (Feingold 2009; Luers et al. 2019).
3. Both series are smoothed over decision points by LOESS (R's ``loess(y ~ t, span, degree,
   surface = "direct")``: tricube weights on the ``floor(n span)`` nearest decision points,
   local polynomial of the given degree), and the standardized effect is their ratio
   d(t) = b~(t) / s~(t).

Intervals: participants are resampled with replacement ``n_boot`` times and the whole
computation repeated; equal-tailed percentile intervals at ``conf_level`` computed exactly as
R's ``boot.ci(type = "perc")`` (order statistic of rank (R + 1) alpha, interpolated on the
normal-quantile scale). The replicates themselves differ from R's (different random numbers).

With a constant randomization probability the weights are constant within arm, so s_a is the
plain sample sd and b(t) (without controls) the plain difference in means among available
rows, which is what both MRTAnalysis versions compute.
"""

from __future__ import annotations

import numpy as np
from formulaic import model_matrix

from hte_mrt._contract import check_conf_level
from hte_mrt._util import tqdm
from hte_mrt.data.checks import check_bool, check_int, check_number, check_seed
from hte_mrt.data.schema import MRTData
from hte_mrt.errors import DataError, DesignError, FormulaError
from hte_mrt.results.effect_size import EffectSizeResult


def loess(
    x: np.ndarray, y: np.ndarray, span: float = 0.25, degree: int = 1, at: np.ndarray | None = None
) -> np.ndarray:
    """R's ``predict(loess(y ~ x, span=, degree=, surface="direct"), at)`` for one predictor.

    For each evaluation point x0 the ``q = floor(n span)`` nearest x (n finite pairs) get
    tricube weights (1 - (d / h)^3)^3, h the distance of the q-th nearest (times
    sqrt(span) when span > 1, as R's squared-distance code does), and a weighted polynomial of
    ``degree`` in (x - x0) gives the value at x0. Missing y are left out of the fit (R's
    ``na.omit``) but are still evaluation points.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    at = x if at is None else np.asarray(at, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    xs, ys = x[ok], y[ok]
    n = xs.shape[0]
    q = min(n, int(np.floor(n * span + 1e-5)))
    if q < degree + 1:
        raise DesignError(
            f"loess: span={span:g} keeps {q} of {n} decision points, fewer than degree + 1 = "
            f"{degree + 1}; use a larger span (e.g. 0.5) or a lower degree."
        )
    out = np.empty(at.shape[0])
    for j, x0 in enumerate(at):
        dist = np.abs(xs - x0)
        order = np.argsort(dist, kind="stable")[:q]
        h2 = dist[order[-1]] ** 2 * max(1.0, span)
        if h2 <= 0:
            out[j] = np.mean(ys[order])
            continue
        u = np.sqrt(dist[order] ** 2 / h2)
        w = np.sqrt(np.clip(1.0 - u**3, 0.0, None) ** 3)
        B = np.vander(xs[order] - x0, degree + 1, increasing=True) * w[:, None]
        coef, *_ = np.linalg.lstsq(B, ys[order] * w, rcond=None)
        out[j] = coef[0]
    return out


def loess_matrix(x: np.ndarray, span: float = 0.25, degree: int = 1) -> np.ndarray:
    """The LOESS smoother as a matrix L: ``loess(x, y, span, degree) == L @ y`` for every y
    without missing values (LOESS is linear in y), so many series are smoothed at once."""
    x = np.asarray(x, dtype=float)
    eye = np.eye(x.shape[0])
    return np.column_stack([loess(x, eye[:, j], span, degree) for j in range(x.shape[0])])


def _controls_matrix(data: MRTData, controls: str) -> np.ndarray:
    if not isinstance(controls, str) or not controls.strip().startswith("~"):
        raise FormulaError(
            f"controls must be a one-sided formula such as '~ 1' or '~ x1 + x2', got {controls!r}."
        )
    try:
        mm = model_matrix(controls, data.frame, na_action="raise")
    except Exception as e:  # formulaic raises several types
        raise FormulaError(
            f"controls={controls!r} could not be built from the data's columns: {e}. Name "
            "columns of the data frame (e.g. controls='~ x1 + x2')."
        ) from None
    X = np.asarray(mm, dtype=float)
    keep = [i for i, c in enumerate(mm.columns) if c != "Intercept"]
    return X[:, keep]


def _series(
    y: np.ndarray,
    a: np.ndarray,
    w: np.ndarray,
    Z: np.ndarray,
    groups: list[np.ndarray],
    counts: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """b(t), s(t) for every replicate: counts (B x n_rows) are frequency weights of the rows
    (participants' bootstrap multiplicities; ones for the estimate)."""
    B = counts.shape[0]
    T = len(groups)
    b, s = np.full((B, T), np.nan), np.full((B, T), np.nan)
    for k, rows in enumerate(groups):
        yy, aa, ww, ZZ, cc = y[rows], a[rows], w[rows], Z[rows], counts[:, rows]
        X = np.column_stack([np.ones(len(rows)), aa, ZZ])
        cw = cc * ww  # B x r
        XtX = np.einsum("br,ri,rj->bij", cw, X, X)
        Xty = np.einsum("br,ri,r->bi", cw, X, yy)
        with np.errstate(invalid="ignore", divide="ignore"):
            try:  # all replicates at once; a singular one (e.g. no treated row) one by one
                b[:, k] = np.linalg.solve(XtX, Xty[..., None])[:, 1, 0]
            except np.linalg.LinAlgError:
                for r in range(B):
                    if np.linalg.matrix_rank(XtX[r]) == X.shape[1]:
                        b[r, k] = np.linalg.solve(XtX[r], Xty[r])[1]
            num, den = np.zeros(B), np.zeros(B)
            for arm in (0, 1):
                m = (aa == arm) & (ww > 0)
                c, wv, yv = cc[:, m], ww[m], yy[m]
                sw = c @ wv
                sw2 = c @ wv**2
                mu = (c @ (wv * yv)) / sw
                ss = np.einsum("br,r,br->b", c, wv, (yv[None, :] - mu[:, None]) ** 2)
                var = ss / (sw - sw2 / sw)
                n_a = c.sum(axis=1)
                num += (n_a - 1) * var
                den += n_a
            s[:, k] = np.sqrt(num / (den - 2))
    return b, s


def effect_size(
    data: MRTData,
    controls: str = "~ 1",
    *,
    smooth: bool = True,
    span: float = 0.25,
    degree: int = 1,
    n_boot: int = 1000,
    seed: int | None = None,
    conf_level: float = 0.95,
    progress: bool = True,
) -> EffectSizeResult:
    r"""Standardized proximal effect over time with participant-bootstrap intervals.

    The estimand at decision point t is the standardized causal excursion effect

    .. math::

        d(t) = \frac{E[Y_{t+1}(1) - Y_{t+1}(0) \mid I_t = 1]}{\sigma(t)}, \qquad
        \sigma^2(t) = \frac{(n_0 - 1)\,\sigma_0^2(t) + (n_1 - 1)\,\sigma_1^2(t)}{n_0 + n_1 - 2},

    sigma_a^2(t) the variance of the proximal outcome among available decision points at t
    that received a (Luers et al. 2019; MRTAnalysis 0.4 ``calculate_mrt_effect_size()``).
    Numerator and denominator are estimated at every decision point (inverse-probability
    weighted, optionally covariate-adjusted), smoothed over time by LOESS and divided; see
    :mod:`hte_mrt.estimators.effect_size` for the computation.

    Parameters
    ----------
    data : MRTData
        A trial with a binary treatment and a continuous proximal outcome.
    controls : str
        Covariates adjusting b(t) (R's ``covariates``), e.g. ``"~ x1 + x2"``.
    smooth : bool
        Smooth b(t) and s(t) by LOESS before dividing (R's ``smooth``).
    span, degree : float, int
        LOESS span and local polynomial degree (R's ``loess_span`` = 0.25,
        ``loess_degree`` = 1).
    n_boot : int
        Participant-bootstrap replicates (R's ``boot_replications``); 0 for none.
    seed : int, optional
        Seed of the bootstrap.
    conf_level : float
        Level of the percentile intervals (R's ``1 - confidence_alpha``).
    progress : bool
        Show a progress bar over the bootstrap.

    Returns
    -------
    EffectSizeResult
        ``table()``: one row per decision point (the time column, ``estimate`` d(t), ``se``
        (bootstrap sd), ``lcl``, ``ucl``, ``raw_effect`` b~(t), ``scale`` s~(t)).

    Raises
    ------
    DataError
        Categorical treatment, or a decision point without an available treated or untreated
        row (no effect or scale there).
    DesignError, FormulaError
        Bad arguments, named.

    Examples
    --------
    >>> import hte_mrt as hm
    >>> sim = hm.MRTSimulation(n_participants=40, n_decisions=30, endogenous=False)
    >>> res = hm.effect_size(sim.mrt_data(seed=1), n_boot=50, seed=1, progress=False)
    >>> res
    <EffectSizeResult: standardized effect over time, 30 decision points, 50 replicates>
    >>> res.table().columns.tolist()
    ['t', 'estimate', 'se', 'lcl', 'ucl', 'raw_effect', 'scale']
    """
    if not isinstance(data, MRTData):
        raise DataError(
            f"effect_size needs MRTData, got {type(data).__name__}: wrap the frame with "
            "hm.MRTData(frame, id=..., time=..., treatment=..., outcome=..., prob=...)."
        )
    if not data.is_binary:
        raise DataError(
            f"effect_size needs a binary treatment; column '{data.roles.treatment}' has levels "
            f"{data.treatment_labels}. Recode it to 0/1 (one level against the reference)."
        )
    smooth = check_bool("smooth", smooth)
    span = check_number("span", span, low=0.0, example="0.25")
    degree = check_int("degree", degree, 0)
    if degree > 2:
        raise DesignError(f"degree must be 0, 1 or 2 (R's loess), got {degree}.")
    n_boot = check_int("n_boot", n_boot, 0)
    check_seed(seed)
    level = check_conf_level(conf_level)
    check_bool("progress", progress)
    Z = _controls_matrix(data, controls)

    avail = data.available.astype(bool)
    a = data.a_index.astype(int)
    p1 = data.probs[:, 1]
    w = np.where(avail, np.where(a == 1, 1.0 / p1, 1.0 / (1.0 - p1)), 0.0)
    y = np.where(avail, data.y, 0.0)
    tcol = data.roles.time
    tvals = data.frame[tcol].to_numpy()
    times = np.unique(tvals)
    groups = [np.flatnonzero(tvals == tv) for tv in times]
    q = min(len(times), int(np.floor(len(times) * span + 1e-5)))
    if smooth and q < degree + 1:
        raise DesignError(
            f"span={span:g} keeps {q} of {len(times)} decision points in each LOESS window, "
            f"fewer than degree + 1 = {degree + 1}; use a larger span (e.g. 0.5), a lower "
            "degree, or smooth=False."
        )
    bad = [tv.item() if hasattr(tv, "item") else tv for tv, rows in zip(times, groups, strict=True)
           if min(((a[rows] == arm) & avail[rows]).sum() for arm in (0, 1)) < 2]  # fmt: skip
    if bad:
        raise DataError(
            f"Decision point(s) {bad[:5]} of column '{tcol}' have fewer than two available "
            "treated or untreated rows: no effect or pooled sd there. Drop those decision "
            "points, or pool decision points into coarser times (e.g. days)."
        )
    ids = data.id_codes
    n = data.n_participants

    tx = times.astype(float)
    L = loess_matrix(tx, span, degree) if smooth else np.eye(len(times))

    def curve(b: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, ...]:
        """Smoothed effect and scale of series (replicates x times) and their ratio."""
        b, s = np.atleast_2d(b).copy(), np.atleast_2d(s).copy()
        if smooth:
            ok = np.isfinite(b).all(axis=1) & np.isfinite(s).all(axis=1)
            for arr in (b, s):
                bad = arr[~ok]
                arr[ok] = arr[ok] @ L.T
                for r, row in zip(np.flatnonzero(~ok), bad, strict=True):
                    arr[r] = loess(tx, row, span, degree)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = b / s
        d[~np.isfinite(d)] = np.nan  # a replicate without spread at some decision point
        return d, b, s

    b0, s0 = _series(y, a, w, Z, groups, np.ones((1, len(y))))
    est, raw, scale = (v[0] for v in curve(b0, s0))
    boot = np.empty((n_boot, len(times)))
    if n_boot:
        rng = np.random.default_rng(seed)
        chunk = 50
        bar = tqdm(total=n_boot, disable=not progress, desc="bootstrap")
        for start in range(0, n_boot, chunk):
            m = min(chunk, n_boot - start)
            cnt = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(m)])
            bb, ss = _series(y, a, w, Z, groups, cnt[:, ids].astype(float))
            boot[start : start + m] = curve(bb, ss)[0]
            bar.update(m)
        bar.close()
    return EffectSizeResult(
        time=tcol,
        times=times,
        estimate=est,
        raw_effect=raw,
        scale=scale,
        boot=boot,
        conf_level=level,
        seed=seed if isinstance(seed, int) or seed is None else None,
        settings={
            "controls": controls,
            "smooth": smooth,
            "span": span,
            "degree": degree,
            "n_participants": n,
            "outcome": data.roles.outcome,
        },
    )


__all__ = ["effect_size", "loess", "loess_matrix"]
