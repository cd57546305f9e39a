"""Causal excursion effects and the design matrices that estimate them.

For a treatment with reference level 0 and levels k = 1..K-1, the (lag-``lag``) causal excursion
effect moderated by S is

    beta_k(t; s) = E[ Y_{t+lag}(A_t = k) - Y_{t+lag}(A_t = 0) | S_t = s, I_t = 1 ],

marginal over past randomizations, modelled as f(S_t)' beta_k (additive scale) or as a log
relative risk for binary outcomes. WCLS uses, on available rows, the working model

    Y = g_t' alpha + sum_k (1[A_t = k] - pt_k) f_t' beta_k,

with g = control terms + every moderator main effect (as R's ``*`` adds them), numerator
probabilities pt_k that may depend only on S_t, and weights W = pt_{A_t} / p_{A_t}.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from formulaic import Formula, model_matrix
from formulaic.errors import FormulaicError
from formulaic.transforms import TRANSFORMS

from hte_mrt._util import first_ids, fmt_ids, release_arrow_memory
from hte_mrt.data.schema import PROB_TOL, MRTData
from hte_mrt.errors import (
    DataError,
    DesignError,
    FormulaError,
    MissingColumnError,
    MissingValueError,
    TreatmentError,
)

NumeratorSpec = float | str | Mapping[Any, float | str] | None


def _rhs(formula: str) -> str:
    """'~ a + b' or 'a + b' -> 'a + b'; '~ 1' -> '1'."""
    f = formula.strip()
    if "~" in f:
        lhs, _, rhs = f.partition("~")
        if lhs.strip():
            raise FormulaError(
                f"Formula {formula!r} has a left-hand side; moderator and control formulas look "
                "like '~ 1' or '~ day + location'."
            )
        f = rhs.strip()
    return f or "1"


#: estimator name -> fit function ``fn(data, estimand, **options)``; filled by the estimator
#: modules at import (``hte_mrt.estimators.wcls`` registers "wcls", ...), so this room never
#: imports an estimator.
_ESTIMATORS: dict[str, Callable[..., Any]] = {}
#: estimator name -> the options its fit accepts (None: not known, passed on unchecked)
_OPTIONS: dict[str, tuple[str, ...] | None] = {}
#: what the estimand itself fixes: never an option of ``fit``
_ESTIMAND_ARGS = ("data", "moderators", "controls", "lag", "numerator", "estimand")


def register_estimator(
    name: str, fit: Callable[..., Any], options_of: Callable[..., Any] | None = None
) -> None:
    """Make ``ExcursionEffect(...).fit(data, estimator=name)`` call ``fit(data, estimand,
    **options)``. Estimator modules call this at import; ``options_of`` is the public function
    whose keyword arguments (less the estimand's own) are the accepted options."""
    _ESTIMATORS[name.lower()] = fit
    opts = None
    if options_of is not None:
        import inspect

        opts = tuple(p for p in inspect.signature(options_of).parameters if p not in _ESTIMAND_ARGS)
    _OPTIONS[name.lower()] = opts


def _check_options(name: str, options: Mapping[str, Any], accepted: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(accepted))
    if not unknown:
        return
    fixed = [k for k in unknown if k in _ESTIMAND_ARGS]
    hint = (
        f" {', '.join(fixed)} belong(s) to the estimand: hm.ExcursionEffect(moderators, "
        "controls, lag=..., numerator=...)."
        if fixed
        else ""
    )
    raise DesignError(
        f"Unknown option(s) {', '.join(repr(k) for k in unknown)} for estimator {name!r}; it "
        f"takes {', '.join(accepted) or 'no options'}.{hint}"
    )


def registered_estimators() -> list[str]:
    """Names accepted by ``ExcursionEffect.fit(estimator=...)``."""
    return sorted(_ESTIMATORS)


@dataclass(frozen=True)
class ExcursionEffect:
    r"""What to estimate: the moderated, possibly lagged, causal excursion effect.

    One estimand, several estimators: :meth:`fit` estimates it by WCLS (additive scale;
    Boruvka et al. 2018), EMEE (log relative risk of a binary outcome; Qian et al. 2021), a
    Bayesian bootstrap of WCLS, or a model object such as :class:`hm.BayesMRT
    <hte_mrt.BayesMRT>`, and every result can be compared with :func:`hm.crosscheck
    <hte_mrt.crosscheck>`. For a treatment with reference level 0 and level k,

    .. math::

        \beta_k(t + \ell; s) = E\left[Y_{t+\ell}(A_t = k) - Y_{t+\ell}(A_t = 0)
        \mid S_t = s, I_t = 1\right] = f(s)^\top \beta_k

    on the additive scale (WCLS), or
    :math:`\log E[Y_{t+\ell}(1) \mid S_t = s, I_t = 1] - \log E[Y_{t+\ell}(0) \mid S_t = s,
    I_t = 1] = f(s)^\top \beta` for a binary outcome (EMEE), marginal over past
    randomizations and over everything in the history not in S.

    Parameters
    ----------
    moderators : str
        Formula of f(S): ``"~ 1"`` (marginal effect), ``"~ day"``, ``"~ C(location)"`` ...
    controls : str
        Formula of the control terms g (an intercept is included; WCLS adds the moderator
        main effects automatically).
    lag : int
        Effect of A_t on the outcome ``lag`` decision points later (0 = proximal). Counted in
        decision points, i.e. rows in time order within participant, whatever the unit of the
        time column (with time in days and five decisions a day, ``lag=1`` is the next
        decision, not the next day); a row removed by ``missing="drop"`` keeps its place. The
        data therefore need a row for every decision point, unavailable ones included.
    numerator : float, str, dict or None
        Numerator probability pt: ``None`` uses the stated probability when it is constant on
        available rows (and asks you to choose otherwise); a constant (P(A=1) for a binary
        treatment), a column name, or ``{level: constant or column}`` for categorical treatments.
        It may depend only on the moderators.

    Examples
    --------
    >>> import hte_mrt as hm
    >>> trial = hm.load_dataset("heartsteps", as_data=True)
    >>> effect = hm.ExcursionEffect("~ 1", "~ jbsteps30pre_log")
    >>> fit = effect.fit(trial, estimator="wcls")
    >>> round(float(fit.params["Intercept"]), 4)
    0.1312
    >>> fit.table().equals(hm.wcls(trial, "~ 1", "~ jbsteps30pre_log").table())
    True
    >>> boot = effect.fit(trial, estimator="bayesian_bootstrap", n_boot=500, seed=1,
    ...                   progress=False)
    >>> hm.crosscheck(fit, boot).flagged
    []
    """

    moderators: str = "~ 1"
    controls: str = "~ 1"
    lag: int = 0
    numerator: NumeratorSpec = None

    def __post_init__(self) -> None:
        for name in ("moderators", "controls"):
            v = getattr(self, name)
            if not isinstance(v, str):
                raise FormulaError(
                    f"{name} must be a formula string such as '~ 1' or '~ day + location', "
                    f"got {v!r}."
                )
        if isinstance(self.lag, bool | np.bool_) or not isinstance(self.lag, int | np.integer):
            hint = (
                " (fractional lags are not rounded)"
                if isinstance(self.lag, float | np.floating)
                else ""
            )
            raise DesignError(
                f"lag must be a whole number of decision points (0 = proximal, 1 = the next "
                f"decision point, ...), got {self.lag!r}{hint}."
            )
        if self.lag < 0:
            raise DesignError(
                f"lag must be >= 0 decision points (0 = proximal), got {self.lag!r}: an effect "
                "on an earlier outcome is not an excursion effect."
            )
        _check_numerator_spec(self.numerator)

    def fit(self, data: MRTData, estimator: Any = "wcls", **options: Any) -> Any:
        """Estimate this effect on ``data``.

        Parameters
        ----------
        data : MRTData
            The validated trial.
        estimator : str or estimator object, default "wcls"
            ``"wcls"`` (:func:`hm.wcls <hte_mrt.wcls>`), ``"emee"`` / ``"emee2"``
            (:func:`hm.emee <hte_mrt.emee>`), ``"bayesian_bootstrap"``
            (:func:`hm.bayesian_bootstrap <hte_mrt.bayesian_bootstrap>`), or an object with
            ``fit(data, estimand=...)`` such as ``hm.BayesMRT(...)``: its ``fit`` is called with
            this estimand (moderators, controls, lag and numerator come from here).
        **options
            Passed on to the estimator (e.g. ``small_sample=False``, ``conf_level=0.9``).

        Returns
        -------
        The estimator's result: an :class:`~hte_mrt.ExcursionResult` for WCLS / EMEE, a
        bootstrap result, a :class:`~hte_mrt.BayesResult` for ``BayesMRT``.
        """
        check_mrt_data(data, "ExcursionEffect.fit", large=True)
        if isinstance(estimator, str):
            fn = _ESTIMATORS.get(estimator.lower())
            if fn is None:
                raise DesignError(
                    f"Unknown estimator {estimator!r}; choose one of "
                    f"{', '.join(repr(n) for n in registered_estimators())}, or pass an "
                    "estimator object with a fit(data, estimand=...) method (e.g. "
                    "hm.BayesMRT(...))."
                )
            accepted = _OPTIONS.get(estimator.lower())
            if accepted is not None:
                _check_options(estimator, options, accepted)
            return fn(data, self, **options)
        if not callable(getattr(estimator, "fit", None)):
            raise DesignError(
                f"estimator must be a name ({', '.join(registered_estimators())}) or an object "
                f"with a fit(data, estimand=...) method; got {type(estimator).__name__}."
            )
        if options:
            import inspect

            params = inspect.signature(estimator.fit).parameters
            if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
                accepted = tuple(p for p in params if p not in ("data", "estimand"))
                try:
                    _check_options(type(estimator).__name__, options, accepted)
                except DesignError as e:
                    raise DesignError(
                        f"{e} Settings of a model object (draws, tune, chains, seed, ...) are "
                        f"arguments of its constructor, e.g. hm.BayesMRT(draws=500, seed=1)."
                    ) from None
        return estimator.fit(data, estimand=self, **options)


def _check_numerator_spec(spec: Any) -> None:
    """numerator= is None, a number in (0, 1), a column name, or {level: number or column}."""

    def one(v: Any, where: str) -> None:
        if isinstance(v, str):
            return
        if isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.number):
            raise DesignError(
                f"{where} must be a probability in (0, 1) such as 0.5, or the name of a column, "
                f"got {v!r}."
            )
        if not 0.0 < float(v) < 1.0:
            raise DesignError(
                f"{where} must lie strictly in (0, 1) (a numerator probability, e.g. 0.5), "
                f"got {v!r}."
            )

    if spec is None:
        return
    if isinstance(spec, Mapping):
        for k, v in spec.items():
            one(v, f"numerator[{k!r}]")
        return
    one(spec, "numerator")


def check_mrt_data(data: Any, where: str, *, large: bool = False) -> None:
    """Refuse anything but :class:`MRTData` with a :class:`DataError` saying how to wrap it
    (``large``: a partitioned :class:`~hte_mrt.data.large.LargeMRTData` is accepted too)."""
    if isinstance(data, MRTData):
        return
    from hte_mrt.data.large import LargeMRTData

    if isinstance(data, LargeMRTData):
        if large:
            return
        raise DataError(
            f"{where} does not run on partitioned data (LargeMRTData) yet: use hm.wcls, "
            "hm.emee, hm.randomization_test or hm.BayesMRT (collapsed Gaussian), or load a "
            "trial that fits in memory with data.to_memory()."
        )
    if isinstance(data, pd.DataFrame):
        raise DataError(
            f"{where} needs validated trial data, got a pandas DataFrame: wrap it first, e.g. "
            "hm.MRTData(frame, id=..., time=..., treatment=..., outcome=..., prob=..., "
            "availability=...)."
        )
    raise DataError(
        f"{where} needs an hm.MRTData (data=), got {type(data).__name__}: build it with "
        "hm.MRTData(frame, id=..., time=..., treatment=..., outcome=..., prob=...)."
    )


def outcome_degeneracy(design: Design, outcome: str, *, binary: bool = False) -> str | None:
    """Why the outcome carries no information on the analysed rows (or None).

    A constant outcome makes the effect 0 with standard error 0 (t, p and intervals undefined);
    a binary outcome that never varies leaves the log relative risk at 0 (always 1) or
    undefined (always 0).
    """
    y = design.y
    if len(y) == 0 or np.ptp(y) > 0:
        return None
    return degeneracy_message(float(y[0]), len(y), outcome, binary=binary)


def degeneracy_message(v: float, n_rows: int, outcome: str, *, binary: bool = False) -> str:
    """The note of :func:`outcome_degeneracy` for an outcome equal to ``v`` on all ``n_rows``
    analysed rows (also used by the partitioned path, which never holds every row)."""
    if binary and v == 0.0:
        return (
            f"Column '{outcome}' (outcome) is 0 on all {n_rows} analysed decision points: "
            "the risk is 0 under both treatments, so the log relative risk is undefined and "
            "is reported as NaN. Check the outcome coding (1 = event), or analyse a more "
            "common event."
        )
    return (
        f"Column '{outcome}' (outcome) is constant (= {v:g}) on all {n_rows} analysed decision "
        "points: the estimated effect is exactly 0 with standard error 0, so t and p are "
        "undefined (NaN) and the interval is the single point 0. Check that outcome= names the "
        "right column and that the outcome was recorded."
    )


@dataclass
class Design:
    """Design arrays on the analysed rows (available, outcome present), participant-sorted."""

    y: np.ndarray
    G: np.ndarray
    F: np.ndarray
    a_index: np.ndarray
    prob: np.ndarray
    num: np.ndarray
    group: np.ndarray
    n_groups: int
    group_values: pd.Index
    g_names: list[str]
    f_names: list[str]
    levels: list[str]
    f_spec: Any
    g_spec: Any
    rows: np.ndarray
    n_participants_total: int
    exclusions: pd.DataFrame = field(repr=False)
    #: participants of the data with no analysed decision point (never available, or every
    #: outcome lost to the lag)
    participants_without_rows: list = field(default_factory=list, repr=False)

    @property
    def n_levels(self) -> int:
        return self.prob.shape[1]

    @property
    def effect_names(self) -> list[str]:
        """Names of the beta entries: f names, prefixed by the level for categorical A."""
        if len(self.levels) == 1 and self.levels[0] == "1":
            return list(self.f_names)
        return [f"{lev}:{f}" for lev in self.levels for f in self.f_names]

    @property
    def dim(self) -> int:
        return self.G.shape[1] + self.F.shape[1] * (self.n_levels - 1)

    def x_for(self, level: np.ndarray | int) -> np.ndarray:
        """Rows x_t = [g_t; (1[A=k] - pt_k) f_t for k >= 1] with A set to ``level``."""
        lev = np.broadcast_to(np.asarray(level), self.y.shape)
        parts = [self.G]
        for k in range(1, self.n_levels):
            c = (lev == k).astype(float) - self.num[:, k]
            parts.append(c[:, None] * self.F)
        return np.hstack(parts)

    def w_for(self, level: np.ndarray | int) -> np.ndarray:
        """WCLS weight pt_A / p_A with A set to ``level``."""
        lev = np.broadcast_to(np.asarray(level), self.y.shape)
        idx = np.arange(len(self.y))
        return self.num[idx, lev] / self.prob[idx, lev]

    def x_block(self, lo: int, hi: int) -> np.ndarray:
        """Rows lo:hi of :attr:`X` (the observed treatment), without building all of X."""
        lev = self.a_index[lo:hi]
        parts = [self.G[lo:hi]]
        for k in range(1, self.n_levels):
            c = (lev == k).astype(float) - self.num[lo:hi, k]
            parts.append(c[:, None] * self.F[lo:hi])
        return np.hstack(parts)

    def w_block(self, lo: int, hi: int) -> np.ndarray:
        """Rows lo:hi of :attr:`W`."""
        lev = self.a_index[lo:hi]
        idx = np.arange(hi - lo)
        return self.num[lo:hi][idx, lev] / self.prob[lo:hi][idx, lev]

    @property
    def X(self) -> np.ndarray:
        return self.x_for(self.a_index)

    @property
    def W(self) -> np.ndarray:
        return self.w_for(self.a_index)

    def f_matrix(self, newdata: pd.DataFrame) -> np.ndarray:
        """f(s) for new moderator values (e.g. a grid for an effect curve)."""
        needed = sorted(str(v) for v in getattr(self.f_spec, "required_variables", ()))
        absent = [v for v in needed if v not in newdata.columns]
        if absent:
            raise MissingColumnError(
                f"The grid lacks the moderator column(s) {absent}: give one column per "
                f"variable of the moderator formula ({needed}).",
                column=absent[0],
            )
        for v in needed:
            if newdata[v].isna().any():
                raise MissingValueError(
                    f"Column '{v}' of the grid has {int(newdata[v].isna().sum())} missing "
                    "value(s): give a value of every moderator on every grid row.",
                    column=v,
                )
        try:
            with np.errstate(all="ignore"):
                mm = self.f_spec.get_model_matrix(newdata, na_action="raise")
        except (FormulaicError, ValueError) as e:
            raise FormulaError(
                f"Cannot build the moderator terms on the new data: {e} Give the grid's "
                f"moderator columns ({needed}) the types and levels used in the fit, with values "
                "the formula's transformations accept."
            ) from e
        return np.asarray(mm, dtype=float)


def _required_columns(formula: Formula) -> set[str]:
    """Data columns a formula reads.

    formulaic's ``required_variables`` loses the arguments of stateful transforms (``center(x)``,
    ``scale(x)``, ``bs(x, df=3)``) when they are not yet defined, so the bare names of every
    Python factor are added (transform and builtin names excepted).
    """
    needed = {str(v) for v in formula.required_variables}
    for term in formula:
        for factor in term.factors:
            try:
                tree = ast.parse(factor.expr, mode="eval")
            except SyntaxError:  # a quoted column name: already in required_variables
                continue
            needed |= {
                node.id
                for node in ast.walk(tree)
                if isinstance(node, ast.Name)
                and node.id not in TRANSFORMS
                and not hasattr(builtins, node.id)
            }
    return needed


def _model_matrix(rhs: str, frame: pd.DataFrame, role: str, key_frame: pd.DataFrame, key):
    try:
        needed = _required_columns(Formula(rhs))
    except FormulaicError as e:
        raise FormulaError(
            f"Cannot parse the {role} formula '~ {rhs}': {e} Write it like '~ 1' or "
            "'~ day + C(location)'."
        ) from e
    absent = sorted(v for v in needed if v not in frame.columns)
    if absent:
        raise MissingColumnError(
            f"The {role} formula '~ {rhs}' names column(s) not in the data: "
            f"{', '.join(repr(a) for a in absent)}. Check the spelling or add the column.",
            column=absent[0],
        )
    for v in sorted(needed):
        bad = frame[v].isna().to_numpy()
        col = frame[v]
        if pd.api.types.is_complex_dtype(col):
            raise DataError(
                f"Column '{v}' (in the {role} formula '~ {rhs}') holds complex numbers (dtype "
                f"{col.dtype}); a moderator or control must be real. Use its real part "
                "(np.real) or modulus (np.abs) as a new column.",
                column=v,
            )
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            inf = np.isinf(col.to_numpy(dtype=float, na_value=np.nan))
            if inf.any():
                ex = first_ids(key_frame, inf, [*key, v])
                raise DataError(
                    f"Column '{v}' (in the {role} formula) has {inf.sum()} infinite value(s) on "
                    f"the analysed rows, e.g. {fmt_ids(ex, [*key, v])}. Transform it without "
                    "infinities (e.g. log(x + 0.5) rather than log(x)), or remove those rows.",
                    column=v,
                    n_rows=int(inf.sum()),
                    examples=ex,
                )
        if bad.any():
            ex = first_ids(key_frame, bad, key)
            raise MissingValueError(
                f"Column '{v}' (in the {role} formula) is missing on {bad.sum()} analysed "
                f"row(s), e.g. {fmt_ids(ex, key)}. Impute it, or restrict the analysis.",
                column=v,
                n_rows=int(bad.sum()),
                examples=ex,
            )
    try:
        with np.errstate(all="ignore"):  # e.g. log(0): reported below, not as a numpy warning
            mm = model_matrix(rhs, frame, na_action="raise")
    except (FormulaicError, ValueError) as e:  # formulaic raises ValueError on NaN after transforms
        raise FormulaError(
            f"Cannot build the {role} formula '~ {rhs}': {e} Check that every transformation "
            "is defined on the analysed rows (e.g. log of a value <= 0 is not), and that "
            "each term varies."
        ) from e
    return np.asarray(mm, dtype=float), list(mm.model_spec.column_names), mm.model_spec


def _check_role_columns(rhs: str, role: str, data: MRTData) -> None:
    """Refuse the outcome, treatment, availability (and, as moderator, the randomization
    probability) columns in a moderator or control formula.

    The outcome and the treatment are not pre-treatment variables (the outcome would be
    regressed on itself, the treatment is already in the model); availability is 1 on every
    analysed row. The randomization probability is measured before treatment, so it may be a
    control (WCLS controls may include any pre-treatment variable).
    """
    r = data.roles
    banned = {r.outcome: "outcome", r.treatment: "treatment"}
    if r.availability is not None:
        banned[r.availability] = "availability"
    if role == "moderator":
        for col in getattr(data, "prob_columns", []):
            banned.setdefault(col, "randomization probability")
    try:
        needed = _required_columns(Formula(rhs))
    except FormulaicError:
        return  # reported with its parse error by _model_matrix
    arg = {"outcome": "outcome", "treatment": "treatment", "availability": "availability",
           "randomization probability": "prob"}  # fmt: skip
    for col in sorted(c for c in needed if c in banned):
        what = banned[col]
        why = {
            "outcome": "the outcome cannot explain itself",
            "treatment": "the treatment is already in the model (its effect is the estimand)",
            "availability": "it is 1 on every analysed row (only available decision points "
            "are analysed), so it carries no information",
            "randomization probability": "the effect is averaged over the randomization, not "
            "moderated by it; use it as a control (controls=) if needed",
        }[what]
        raise FormulaError(
            f"The {role} formula '~ {rhs}' uses column '{col}', which is the {what} "
            f"({arg[what]}= of MRTData): {why}. Remove '{col}' from the {role} formula; "
            "moderators and controls must be measured before treatment.",
            column=col,
        )


#: rows per block of the blockwise QR in :func:`_check_rank`
_QR_ROWS = 100_000


def _check_rank(
    M: np.ndarray,
    names: list[str],
    role: str,
    *,
    scale: np.ndarray | None = None,
    n_rows: int | None = None,
) -> None:
    """Refuse collinear columns, naming those that are combinations of the others.

    ``scale`` and ``n_rows`` are given when M is already scaled (:func:`check_rank_gram`)."""
    from scipy.linalg import qr

    if M.shape[1] == 0:
        return
    if scale is None:
        n_rows = len(M)
        scale = np.sqrt(np.einsum("ij,ij->j", M, M) / n_rows)
        s = np.where(scale > 0, scale, 1.0)
        # tall M: the R factors of row blocks, stacked (TSQR). Orthogonal transforms keep
        # column norms and inner products, so the pivoted QR of the stacked R has the pivots
        # and |R| of M's own, without M-sized copies (the QR's workspace and Q)
        Ms = np.vstack(
            [np.linalg.qr(M[i : i + _QR_ROWS] / s, mode="r") for i in range(0, n_rows, _QR_ROWS)]
        )
    else:
        Ms = M
    _, R, piv = qr(Ms, mode="economic", pivoting=True)
    diag = np.abs(np.diag(R))
    big = max(M.shape) if n_rows is None else max(n_rows, M.shape[1])
    rank = int((diag > diag[0] * 1e-9 * big).sum()) if diag.size else 0
    if np.any(scale == 0) or rank < M.shape[1]:
        bad = [names[j] for j in piv[rank:]] or [
            n for n, sc in zip(names, scale, strict=True) if sc == 0
        ]
        raise DesignError(
            f"The {role} terms are collinear on the analysed rows: {bad} can be written as a "
            f"combination of the other terms {[n for n in names if n not in bad]}. Remove it "
            "(e.g. a linear term of a variable that also has a spline, a constant column, or "
            "overlapping dummies)."
        )


def check_rank_gram(gram: np.ndarray, n: int, names: list[str], role: str) -> None:
    """:func:`_check_rank` from the cross-product M'M of the n x d matrix M (partitioned data:
    M is never held whole). A pivoted QR of any A with A'A = M'M has the same R as M's, so
    the symmetric square root of the scaled Gram stands in for M."""
    d = gram.shape[0]
    if d == 0:
        return
    scale = np.sqrt(np.clip(np.diag(gram), 0.0, None) / n)
    s = np.where(scale > 0, scale, 1.0)
    gs = gram / n / np.outer(s, s)
    lam, U = np.linalg.eigh((gs + gs.T) / 2)
    A = (U * np.sqrt(np.clip(lam, 0.0, None))) @ U.T
    _check_rank(A, names, role, scale=scale, n_rows=n)


def numerator_varies_error() -> DesignError:
    return DesignError(
        "The randomization probability varies across available decision points, so the "
        "numerator probability must be chosen explicitly: numerator=<constant>, a column "
        "that depends only on the moderators, or {level: ...}. (MRTAnalysis silently uses "
        "0.5; pass numerator=0.5 to reproduce it.)"
    )


def _resolve_numerator(data: MRTData, spec: NumeratorSpec, used: np.ndarray) -> np.ndarray:
    """Numerator probabilities (n_used x K)."""
    probs = data.probs[used]
    K = probs.shape[1]
    if spec is None:
        spread = probs.max(axis=0) - probs.min(axis=0)
        if np.any(spread > PROB_TOL):
            raise numerator_varies_error()
        return np.broadcast_to(probs[:1], probs.shape).copy()
    frame = data.frame
    n_used = int(np.count_nonzero(used))

    def one(v: float | str, lev: object) -> np.ndarray:
        if isinstance(v, str):
            if v not in frame.columns:
                raise MissingColumnError(
                    f"Numerator probability column '{v}' (level {lev!r}) is not in the data. "
                    "Add the column, or give a constant such as numerator=0.5.",
                    column=v,
                )
            x = pd.to_numeric(frame[v][used], errors="coerce").to_numpy(dtype=float)
        else:
            x = np.full(n_used, float(v))
        if np.any(np.isnan(x)) or np.any((x <= 0) | (x >= 1)):
            raise DesignError(
                f"Numerator probability for level {lev!r} must lie in (0, 1) on every analysed "
                f"row (got {v!r}); fix the column or give a constant such as numerator=0.5."
            )
        return x

    if isinstance(spec, Mapping):
        keys = {str(k): v for k, v in spec.items()}
        labels = data.treatment_labels
        missing = [lab for lab in labels[1:] if lab not in keys]
        if missing:
            raise DesignError(f"numerator= lacks level(s) {missing}; give one value per level.")
        num = np.empty_like(probs)
        for k in range(1, K):
            num[:, k] = one(keys[labels[k]], labels[k])
        num[:, 0] = one(keys[labels[0]], labels[0]) if labels[0] in keys else 1 - num[:, 1:].sum(1)
        if np.any(num[:, 0] <= 0):
            raise DesignError("Numerator probabilities of the treated levels sum to 1 or more.")
        return num
    if K != 2:
        raise DesignError(
            "A categorical treatment needs numerator={level: probability, ...} (or None)."
        )
    p1 = one(spec, data.level_values[1])
    return np.column_stack([1 - p1, p1])


def no_available_error(col: str | None) -> DesignError:
    return DesignError(
        f"Column '{col}' (availability) is 0 on every row: no decision point was "
        "randomized, so there is nothing to analyse. Check that availability= names the "
        "right column and that 1 means available."
    )


def lag_too_long_error(lag: int, n_dec: int) -> DesignError:
    return DesignError(
        f"lag={lag} decision points is longer than the trial: no participant has "
        f"more than {n_dec} decision points, so no outcome lies {lag} decision "
        f"point(s) after a treatment. Use a lag below {n_dec}."
    )


def lag_loses_all_error(lag: int) -> DesignError:
    return DesignError(
        f"lag={lag}: no available decision point has an outcome {lag} decision "
        "point(s) later (each participant's last decision points have none). Use a "
        "smaller lag."
    )


def treatment_constant_error(treatment: str, absent: list[str]) -> TreatmentError:
    return TreatmentError(
        f"Column '{treatment}' (treatment) does not vary among the available decision "
        f"points analysed: level(s) {absent} never occur, so no treatment effect can be "
        "estimated. Check that treatment= names the randomized treatment and that "
        "availability= marks the decision points that were randomized.",
        column=treatment,
    )


def too_few_participants_error(n_groups: int, dim: int, q: int) -> DesignError:
    return DesignError(
        f"{n_groups} participants contribute available decision points, but the model "
        f"has {dim} parameters ({q} control + {dim - q} effect). WCLS "
        "needs more participants than parameters (its t tests use n - dim degrees of freedom): "
        "simplify the moderator or control formula."
    )


def analysed_rows(
    data: MRTData, lag: int, *, partial: bool = False
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame | None]:
    """The analysed rows (available, with an outcome ``lag`` decision points later), the
    (lagged) outcome and the record of rows lost to the lag (None without a lag).

    ``partial``: ``data`` is one partition of a larger trial (whole participants), so the
    trial-wide checks (any available row, lag shorter than the trial) are left to the caller.
    """
    r = data.roles
    df = data.frame
    y = data.y.copy()
    used = data.available.copy()
    lost_rows = None
    if not used.any() and not partial:
        raise no_available_error(r.availability)
    if lag:
        # lag counts decision points (rows in time order within participant), not units of
        # the time column: the outcome of the decision point ``lag`` positions later
        pos = data.decision_index
        n_dec = int(pos.max()) + 1
        if lag >= n_dec and not partial:
            raise lag_too_long_error(lag, n_dec)
        lookup = pd.Series(data.y, index=pd.MultiIndex.from_arrays([data.id_codes, pos]))
        target = pd.MultiIndex.from_arrays([data.id_codes, pos + lag])
        y = lookup.reindex(target).to_numpy(dtype=float)
        lost = used & np.isnan(y)
        lost_rows = df.loc[lost, ["_row", r.id, r.time]].rename(columns={"_row": "row"})
        lost_rows["reason"] = f"no outcome {lag} decision point(s) later (lag {lag})"
        used &= ~np.isnan(y)
        if not used.any() and not partial:
            raise lag_loses_all_error(lag)
    return used, y, lost_rows


def build_design(
    data: MRTData,
    est: ExcursionEffect,
    *,
    add_moderator_main_effects: bool = True,
    partial: bool = False,
) -> Design | None:
    """Rows, outcome, control/moderator matrices and probabilities for an excursion effect.

    ``add_moderator_main_effects`` (WCLS) puts every moderator term into g as R's ``*`` does;
    EMEE uses the control formula exactly as given.

    ``partial``: ``data`` is one partition (whole participants) of a partitioned trial. The
    trial-wide checks (treatment levels seen, rank, participants > parameters, a constant
    stated probability for ``numerator=None``) are the caller's, done on the reduced
    statistics; the numerator must then be resolved (not None); a partition without an
    analysed row gives None.
    """
    check_mrt_data(data, "build_design")
    if not partial:
        release_arrow_memory()  # e.g. a deleted Parquet-read frame, before the design's arrays
    r = data.roles
    df = data.frame
    key = [r.id, r.time]
    if not isinstance(est, ExcursionEffect):
        raise DesignError(
            f"estimand must be an hm.ExcursionEffect(moderators, controls, lag=...), got "
            f"{type(est).__name__}."
        )
    if len(df) == 0:
        raise DataError("The trial has no rows left to analyse.")
    used, y, lost_rows = analysed_rows(data, est.lag, partial=partial)
    if partial and not used.any():
        return None
    excl = [data.exclusions]
    if lost_rows is not None and len(lost_rows):
        excl.append(lost_rows)
    rows = np.flatnonzero(used)
    mod_rhs, ctl_rhs = _rhs(est.moderators), _rhs(est.controls)
    # only the columns the formulas read (and the keys for messages) are copied to the
    # analysed rows: memory does not grow with the width of the frame
    try:
        needed = _required_columns(Formula(mod_rhs)) | _required_columns(Formula(ctl_rhs))
        cols = [c for c in df.columns if c in needed or c in (r.id, r.time, "_row")]
    except FormulaicError:  # reported with its parse error by _model_matrix
        cols = list(df.columns)
    sub = df[cols].iloc[rows]
    _check_role_columns(mod_rhs, "moderator", data)
    _check_role_columns(ctl_rhs, "control", data)
    seen = np.unique(data.a_index[rows])
    if len(seen) < len(data.level_values) and not partial:
        absent = [data.treatment_labels[k] for k in range(len(data.level_values)) if k not in seen]
        raise treatment_constant_error(r.treatment, absent)
    F, f_names, f_spec = _model_matrix(mod_rhs, sub, "moderator", sub, key)
    g_rhs = f"{ctl_rhs} + {mod_rhs}" if add_moderator_main_effects else ctl_rhs
    G, g_names, g_spec = _model_matrix(g_rhs, sub, "control", sub, key)
    num = _resolve_numerator(data, est.numerator, used)
    codes, uniq = pd.factorize(sub[r.id], sort=False)
    labels = data.treatment_labels
    levels = labels[1:] if not data.is_binary else ["1"]
    design = Design(
        y=y[rows],
        G=G,
        F=F,
        a_index=data.a_index[rows],
        prob=data.probs[rows],
        num=num,
        group=codes.astype(np.int64),
        n_groups=len(uniq),
        group_values=pd.Index(uniq, name=r.id),
        g_names=g_names,
        f_names=f_names,
        levels=levels,
        f_spec=f_spec,
        g_spec=g_spec,
        rows=rows,
        n_participants_total=data.n_participants,
        exclusions=pd.concat([e for e in excl if len(e)], ignore_index=True)
        if any(len(e) for e in excl)
        else data.exclusions,
        participants_without_rows=list(data.id_values[~data.id_values.isin(uniq)]),
    )
    if partial:
        return design
    _check_rank(G, g_names, "control (controls + moderator main effects)")
    _check_rank(F, f_names, "moderator")
    dim = design.dim
    if design.n_groups <= dim:
        raise too_few_participants_error(design.n_groups, dim, len(g_names))
    return design
