r"""Sample size and power for a binary proximal outcome (log relative risk).

Cohn, Qian & Murphy (2023, Stat Med; R package MRTSampleSizeBinary). The marginal excursion
effect on the log relative-risk scale is f_t' beta, the null success probability
E[Y_{t+1} | I_t = 1, A_t = 0] = exp(g_t' a) (``null_coef`` = a, alpha in the paper). With
mu0_t = exp(g_t' a) and m_t = f_t' beta,

.. math::

    M &= \sum_t \tau_t p_t (1-p_t)\, e^{p_t m_t} \mu_{0t}\, f_t f_t^\top \quad \text{(bread)}, \\
    S &= \sum_t \tau_t p_t (1-p_t)\, e^{2 p_t m_t} \mu_{0t}
         \big[(1-p_t) e^{-m_t} + p_t - \mu_{0t}\big]\, f_t f_t^\top \quad \text{(meat)}, \\
    \lambda(N) &= N\, \beta^\top (M^{-1} S M^{-1})^{-1} \beta

and the same F(p, N - p - q) test as for a continuous outcome with q = dim g. As in
MRTSampleSizeBinary the sample size solves power(N) = target for real N (``n_exact``) and rounds
up. These are the asymptotic bread and meat of the EMEE2 estimating equation (treatment centred
at p_t inside the residual), see :func:`hte_mrt.emee` with ``variant="emee2"``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import optimize

from hte_mrt.design.base import _DesignBase
from hte_mrt.design.common import (
    DEFAULT_N_MAX,
    DesignWarning,
    _check_range,
    _finite,
    _positive_int,
    _rank_check,
    _where,
)
from hte_mrt.design.results import PowerResult, SampleSizeResult
from hte_mrt.errors import DesignError

__all__ = ["BinaryDesign", "binary_design", "binary_power", "binary_sample_size"]


@dataclass(frozen=True, eq=False)
class BinaryDesign(_DesignBase):
    """A binary-outcome MRT design (Cohn, Qian & Murphy 2023). Build with :func:`binary_design`.

    ``delta = beta' Sigma^{-1} beta`` with Sigma = M^{-1} S M^{-1}: lambda(N) = N delta. Its
    methods: ``power(n)``, ``power_result(n)``, ``power_table(ns)``, ``sample_size(power)``
    (real root, rounded up), ``curves()`` and ``describe()``.
    """

    prob: np.ndarray
    availability: np.ndarray
    f: np.ndarray
    g: np.ndarray
    beta: np.ndarray
    null_coef: np.ndarray
    f_names: tuple[str, ...]
    g_names: tuple[str, ...]
    per_day: int | None = None
    M: np.ndarray = field(init=False, repr=False)
    S: np.ndarray = field(init=False, repr=False)
    sigma: np.ndarray = field(init=False, repr=False)
    delta: float = field(init=False)

    _integer_n = False

    def _solve_n(self, target: float, alpha: float, n_max: int) -> tuple[int, float | None]:
        """Real root of power(N) = target (MRTSampleSizeBinary's ``exact=TRUE``), rounded up."""
        p, q = self.p, self.q
        lo = p + q + 1
        if n_max < lo:
            raise DesignError(f"n_max = {n_max} must exceed p + q = {lo - 1}; raise n_max.")

        def gap(n: float) -> float:
            return self._power(n, alpha) - target

        if gap(float(n_max)) < 0:
            self._unreachable(target, alpha, n_max)
        if gap(float(lo)) >= 0:
            return lo, None
        n_exact = float(optimize.brentq(gap, float(lo), float(n_max), xtol=1e-10, rtol=1e-12))
        n = math.ceil(n_exact - 1e-9)
        if gap(float(n)) < 0:  # guard against the root landing a hair above an integer
            n += 1
        return n, n_exact

    def __post_init__(self) -> None:
        pr, tau, F = self.prob, self.availability, self.f
        m = F @ self.beta
        mu0 = np.exp(self.g @ self.null_coef)
        base = tau * pr * (1 - pr) * mu0
        wm = base * np.exp(pr * m)
        ws = base * np.exp(2 * pr * m) * ((1 - pr) * np.exp(-m) + pr - mu0)
        M = (F * wm[:, None]).T @ F
        S = (F * ws[:, None]).T @ F
        advice = "f needs as many linearly independent rows with positive availability as columns."
        _rank_check(M, "the bread M", advice)
        _rank_check(S, "the meat S", advice)
        Minv = np.linalg.inv(M)
        sigma = Minv @ S @ Minv.T
        delta = float(self.beta @ np.linalg.solve(sigma, self.beta))
        object.__setattr__(self, "M", M)
        object.__setattr__(self, "S", S)
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "delta", delta)

    @property
    def p(self) -> int:
        return self.f.shape[1]

    @property
    def q(self) -> int:
        return self.g.shape[1]

    @property
    def n_decisions(self) -> int:
        return len(self.prob)

    @property
    def outcome(self) -> str:
        return "binary"

    def curves(self) -> pd.DataFrame:
        """One row per decision point: availability, prob, null and treated success prob, RR."""
        m = self.f @ self.beta
        mu0 = np.exp(self.g @ self.null_coef)
        return pd.DataFrame(
            {
                "decision_point": np.arange(1, self.n_decisions + 1),
                "availability": self.availability,
                "prob": self.prob,
                "p_success_control": mu0,
                "p_success_treated": mu0 * np.exp(m),
                "log_rr": m,
            }
        )

    def describe(self) -> str:
        rr = np.exp(self.f @ self.beta)
        pr = f"{self.prob[0]:g}" if np.all(self.prob == self.prob[0]) else "time-varying"
        return (
            f"{self.n_decisions} decision points; randomization probability {pr}; mean "
            f"availability {self.availability.mean():.4g}; relative risk {rr.min():.4g}.."
            f"{rr.max():.4g}; f = ({', '.join(self.f_names)}), p = {self.p}; "
            f"g = ({', '.join(self.g_names)}), q = {self.q}"
        )


def binary_design(
    *,
    prob: float | ArrayLike,
    availability: float | ArrayLike,
    beta: float | ArrayLike,
    null_coef: float | ArrayLike,
    f: ArrayLike | None = None,
    g: ArrayLike | None = None,
    decisions: int | None = None,
    per_day: int | None = None,
) -> BinaryDesign:
    """Validate a binary-outcome MRT design (Cohn, Qian & Murphy 2023).

    Parameters
    ----------
    prob, availability
        Randomization probability in (0, 1) and expected availability in [0, 1]: a number or one
        value per decision point.
    beta
        Coefficients of the log relative risk f_t' beta (p values).
    null_coef
        Coefficients of the log null success probability, log P(Y = 1 | A = 0, I = 1) = g_t' a
        (q values; "alpha" in Cohn et al.).
    f, g
        T x p and T x q matrices (default: a column of ones, i.e. a constant log RR and a constant
        null probability).
    decisions
        Number of decision points T; needed only when every other input is a number.
    per_day
        Optional: decision points per day, only to name the day in error messages.
    """

    def num(x: Any, name: str) -> np.ndarray:
        if isinstance(x, str | bytes | bool | np.bool_):
            raise DesignError(
                f"{name} must be a number or numbers, got {x!r}; pass a number (or one per "
                "decision point)."
            )
        try:
            return np.asarray(x, dtype=float)
        except (TypeError, ValueError):
            raise DesignError(
                f"{name} must be a number or numbers, got {x!r}; pass a number (or one per "
                "decision point)."
            ) from None

    prob, availability = num(prob, "prob"), num(availability, "availability")
    beta, null_coef = num(beta, "beta"), num(null_coef, "null_coef")
    f = None if f is None else num(f, "f")
    g = None if g is None else num(g, "g")
    arrays = [x for x in (prob, availability) if x is not None]
    mats = [x for x in (f, g) if x is not None]
    lengths = {a.size for a in arrays if a.size > 1} | {m.shape[0] for m in mats if m.ndim >= 1}
    if decisions is not None:
        lengths.add(_positive_int(decisions, "decisions"))
    if len(lengths) > 1:
        raise DesignError(
            f"prob, availability, f, g and decisions disagree on the number of decision points "
            f"({sorted(lengths)}); give every per-decision input with the same length."
        )
    if not lengths:
        raise DesignError(
            "decisions: every input is a single number, so the number of decision points is "
            "unknown; pass decisions=T."
        )
    T = lengths.pop()

    def vec(x: Any, name: str) -> np.ndarray:
        v = np.asarray(x, dtype=float).ravel()
        return np.full(T, v[0]) if v.size == 1 else v

    pr, tau = vec(prob, "prob"), vec(availability, "availability")
    _check_range(
        pr,
        "prob",
        0,
        1,
        open_lo=True,
        open_hi=True,
        per_day=per_day,
        hint="Give randomization probabilities strictly between 0 and 1.",
    )
    _check_range(tau, "availability", 0, 1, open_lo=False, open_hi=False, per_day=per_day)
    if tau.sum() <= 0:
        raise DesignError(
            "availability is 0 at every decision point: nobody can be treated; give the "
            "expected availability (e.g. availability=0.7)."
        )

    def mat(x: Any, name: str) -> np.ndarray:
        if x is None:
            return np.ones((T, 1))
        a = np.asarray(x, dtype=float)
        a = a[:, None] if a.ndim == 1 else a
        if a.ndim != 2 or not np.all(np.isfinite(a)):
            raise DesignError(
                f"{name} must be a finite matrix with one row per decision point; pass a "
                "(T x k) array of finite numbers."
            )
        return a

    F, G = mat(f, "f"), mat(g, "g")
    b = np.atleast_1d(np.asarray(beta, dtype=float)).ravel()
    a = np.atleast_1d(np.asarray(null_coef, dtype=float)).ravel()
    if b.size != F.shape[1]:
        raise DesignError(
            f"beta has {b.size} value(s) but f has {F.shape[1]} column(s); give one beta per "
            "column of f."
        )
    if a.size != G.shape[1]:
        raise DesignError(
            f"null_coef has {a.size} value(s) but g has {G.shape[1]} column(s); give one "
            "null_coef per column of g."
        )
    for name, M_ in (("f", F), ("g", G)):
        if np.linalg.matrix_rank(M_) < M_.shape[1]:
            raise DesignError(f"{name} has linearly dependent columns: drop the redundant ones.")
    mu0 = np.exp(G @ a)
    mu1 = mu0 * np.exp(F @ b)
    for arr_, what, fix in (
        (mu0, "null success probability exp(g_t' null_coef)", "null_coef"),
        (mu1, "treated success probability exp(g_t' null_coef + f_t' beta)", "beta"),
    ):
        bad = ~((arr_ > 0) & (arr_ < 1))
        if bad.any():
            t = int(np.nonzero(bad)[0][0])
            raise DesignError(
                f"The {what} is {arr_[t]:.6g} at {_where(t, per_day)}, outside (0, 1) "
                f"({int(bad.sum())} decision point(s)). Change {fix} (or f/g) so every implied "
                f"probability is a probability."
            )
    # Cohn et al.: p_t f_t should lie in the span of g_t, else the estimator is not consistent
    # for the marginal effect and the sample size can be inaccurate.
    for k in range(F.shape[1]):
        col = pr * F[:, k]
        resid = col - G @ np.linalg.lstsq(G, col, rcond=None)[0]
        if np.linalg.norm(resid) > 1e-8 * max(np.linalg.norm(col), 1e-300):
            warnings.warn(
                f"p_t * f_t[:, {k}] is not in the linear span of g: the sample size can be "
                "inaccurate; add columns to g (e.g. g = [f, p f]).",
                DesignWarning,
                stacklevel=3,
            )
    fn = tuple(f"f{k + 1}" for k in range(F.shape[1])) if f is not None else ("1",)
    gn = tuple(f"g{k + 1}" for k in range(G.shape[1])) if g is not None else ("1",)
    return BinaryDesign(pr, tau, F, G, b, a, fn, gn, per_day)


# ---------------------------------------------------------------------------------------------
# public API: the design as keyword arguments
# ---------------------------------------------------------------------------------------------
_DESIGN_PARAMS = """prob, availability : float or array_like
        Randomization probability in (0, 1) and expected availability in [0, 1]: a number or
        one value per decision point.
    beta : float or array_like
        Coefficients of the log relative risk f_t' beta (p values).
    null_coef : float or array_like
        Coefficients of the log null success probability,
        log P(Y = 1 | A = 0, I = 1) = g_t' a (q values; "alpha" in Cohn et al.).
    f, g : array_like, optional
        T x p and T x q matrices (default: a column of ones, i.e. a constant log relative risk
        and a constant null probability).
    decisions : int, optional
        Number of decision points T; needed only when every other input is a number."""


def _doc(fn):
    fn.__doc__ = fn.__doc__.replace("%(design_params)s", _DESIGN_PARAMS)
    return fn


@_doc
def binary_sample_size(
    *,
    prob: float | ArrayLike,
    availability: float | ArrayLike,
    beta: float | ArrayLike,
    null_coef: float | ArrayLike,
    f: ArrayLike | None = None,
    g: ArrayLike | None = None,
    decisions: int | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    n_max: int = DEFAULT_N_MAX,
) -> SampleSizeResult:
    """Sample size for a binary proximal outcome (Cohn, Qian & Murphy 2023).

    Solves power(N) = ``power`` for real N (``n_exact``, MRTSampleSizeBinary's
    ``mrt_binary_ss(..., exact=TRUE)``) and rounds up (``n``); see
    :mod:`hte_mrt.design.binary` for the formulas.

    Parameters
    ----------
    %(design_params)s
    alpha : float, default 0.05
        Significance level of the planned F test.
    power : float, default 0.8
        Target power.
    n_max : int, default 1,000,000
        Largest N searched.

    Returns
    -------
    SampleSizeResult
        ``n``, ``n_exact``, ``power_at_n``, ``design``; ``table()`` has one row with columns
        n, n_exact, power_at_n, power_at_n_minus_1, target_power, alpha, df1, df2 and
        noncentrality.

    Examples
    --------
    A constant relative risk of 1.25 over a null success probability of 0.25, 20 decision
    points:

    >>> import numpy as np
    >>> import hte_mrt as hm
    >>> res = hm.binary_sample_size(prob=0.4, availability=0.8, beta=np.log(1.25),
    ...                             null_coef=np.log(0.25), decisions=20)
    >>> res.n, round(res.n_exact, 2)
    (106, 105.4)
    """
    design = binary_design(
        prob=prob,
        availability=availability,
        beta=beta,
        null_coef=null_coef,
        f=f,
        g=g,
        decisions=decisions,
    )
    return design.sample_size(power=power, alpha=alpha, n_max=n_max)


@_doc
def binary_power(
    n: float,
    *,
    prob: float | ArrayLike,
    availability: float | ArrayLike,
    beta: float | ArrayLike,
    null_coef: float | ArrayLike,
    f: ArrayLike | None = None,
    g: ArrayLike | None = None,
    decisions: int | None = None,
    alpha: float = 0.05,
) -> PowerResult:
    """Power at N participants for a binary proximal outcome (Cohn, Qian & Murphy 2023).

    Parameters
    ----------
    n : float
        Number of participants N (> p + q; may be real, as in MRTSampleSizeBinary).
    %(design_params)s
    alpha : float, default 0.05
        Significance level of the planned F test.

    Returns
    -------
    PowerResult
        ``power``, ``noncentrality``, ``critical_value``, ``design``; ``table()`` has one row
        with columns n, power, alpha, df1, df2, noncentrality and critical_value.

    Examples
    --------
    >>> import numpy as np
    >>> import hte_mrt as hm
    >>> res = hm.binary_power(100, prob=0.4, availability=0.8, beta=np.log(1.25),
    ...                       null_coef=np.log(0.25), decisions=20)
    >>> round(res.power, 3)
    0.779
    """
    design = binary_design(
        prob=prob,
        availability=availability,
        beta=beta,
        null_coef=null_coef,
        f=f,
        g=g,
        decisions=decisions,
    )
    return design.power_result(_finite(n, "n (number of participants)"), alpha)
