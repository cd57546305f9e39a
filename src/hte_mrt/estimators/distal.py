r"""Distal and mediated causal excursion effects (MRTAnalysis ``dcee`` and ``mcee``).

Two-stage estimators of effects of A_t on a distal outcome Y (one value per participant):

* **DCEE** (Qian 2025, Biometrics 81(4), doi:10.1093/biomtc/ujaf134): nuisance outcome models
  mu_a(H_t) = E[Y | H_t, A_t = a] (stage 1), then beta solves
  sum_i sum_t omega_t S_t [ I_t (-1)^{1 - A_t} / p_t(A_t) {Y - p_t(0) mu_1 - p_t(1) mu_0}
  - S_t' beta ] = 0.
* **NDEE / NIEE** (Qian et al. 2025, arXiv:2506.20027): nuisance functions p, q, eta, mu, nu;
  per row the pseudo-outcomes phi_11, phi_10, phi_00 and alpha (direct) / beta (indirect) solve
  sum_i sum_t omega_t f_t {phi_10 - phi_00 - f_t' alpha} = 0 and
  sum_i sum_t omega_t f_t {phi_11 - phi_10 - f_t' beta} = 0.

Both are linear in the parameters, so each is one weighted least-squares solve; the variance is
the participant-level sandwich (bread^-1 meat bread^-1 / n, nuisance estimates held fixed), with
t inference on df = n - dim(beta) (DCEE) or n - 2 dim(f) (mediation). MRTAnalysis applies no
small-sample correction; ``small_sample`` (default ``"auto"``: with 50 participants or fewer,
the rule of :func:`hte_mrt.wcls`) adds the Mancl-DeRouen (2001) bias-reduced sandwich of the
stage-2 equation, computed exactly by the push-through identity of
:mod:`hte_mrt.estimators.sandwich` (``_core``); ``small_sample=False`` reproduces MRTAnalysis.
Per-participant pieces are kept for the Bayesian bootstrap
(:meth:`hte_mrt.results.distal.DistalResult.bayesian_bootstrap`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd
from formulaic import Formula
from formulaic.errors import FormulaicError

from hte_mrt._contract import check_conf_level
from hte_mrt._util import first_ids, fmt_ids
from hte_mrt.data.checks import check_int, check_seed, require_column
from hte_mrt.data.schema import MRTData
from hte_mrt.errors import (
    DataError,
    DesignError,
    EstimationError,
    FormulaError,
    HteMrtWarning,
    MissingValueError,
)
from hte_mrt.estimands.excursion import (
    _check_rank,
    _check_role_columns,
    _model_matrix,
    _required_columns,
    _rhs,
    check_mrt_data,
)
from hte_mrt.estimators.nuisance import (
    Learner,
    fit_predict,
    fold_assignment,
    resolve_learner,
    split_smooth,
)
from hte_mrt.estimators.wcls import resolve_small_sample
from hte_mrt.results.distal import DistalResult

MCEE_NUISANCES = ("p", "q", "eta", "mu", "nu")
MCEE_VALUES = ("p1", "q1", "eta1", "eta0", "mu1", "mu0", "nu1", "nu0")
DCEE_VALUES = ("mu0", "mu1")


# ----------------------------------------------------------------------------- shared pieces
class _Trial:
    """The arrays both estimators read from a validated trial (rows sorted by participant)."""

    def __init__(self, data: MRTData, where: str) -> None:
        check_mrt_data(data, where)
        if not data.is_binary:
            raise DataError(
                f"{where} needs a binary 0/1 treatment (MRTAnalysis' dcee / mcee); the trial has "
                f"the {len(data.level_values)}-level treatment '{data.roles.treatment}'. Recode "
                "it as 0/1 (e.g. any treatment vs none) in a new MRTData."
            )
        r = data.roles
        self.data = data
        self.frame = data.frame
        self.key = [r.id, r.time]
        self.codes = data.id_codes
        self.n = data.n_participants
        self.starts = np.flatnonzero(np.r_[True, self.codes[1:] != self.codes[:-1]])
        self.avail = data.available.astype(bool)
        self.A = (data.a_index == 1).astype(float)
        self.p1 = np.where(self.avail, data.probs[:, 1], 1.0)
        self.y = self._distal_outcome(data)

    def _distal_outcome(self, data: MRTData) -> np.ndarray:
        """Y per row, constant within participant (rows without Y get the participant's)."""
        col, idc = data.roles.outcome, data.roles.id
        y = np.asarray(data.y, dtype=float)
        lo = np.fmin.reduceat(np.where(np.isnan(y), np.inf, y), self.starts)
        hi = np.fmax.reduceat(np.where(np.isnan(y), -np.inf, y), self.starts)
        missing = ~np.isfinite(lo)
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            raise MissingValueError(
                f"Column '{col}' (distal outcome) is missing on every row of participant "
                f"{idc}={_plain(data.id_values[i])!r} ({int(missing.sum())} participant(s) in "
                "all): record "
                "each participant's distal outcome (one value, repeated on their rows), or "
                "remove those participants.",
                column=col,
                n_rows=int(missing.sum()),
                examples=[data.id_values[i]],
            )
        varies = hi > lo
        if varies.any():
            i = int(np.flatnonzero(varies)[0])
            raise DataError(
                f"Column '{col}' (distal outcome) varies within participant "
                f"{idc}={_plain(data.id_values[i])!r} (from {lo[i]:.6g} to {hi[i]:.6g}; "
                f"{int(varies.sum())} participant(s) in all): a distal outcome is measured "
                "once per participant and repeated on each of their rows. Give the distal "
                "outcome column as outcome= (not a proximal outcome).",
                column=col,
                n_rows=int(varies.sum()),
                examples=[data.id_values[i]],
            )
        return lo[self.codes]

    def rhs(self, formula: Any, arg: str) -> str:
        if not isinstance(formula, str):
            raise FormulaError(
                f"{arg} must be a formula string such as '~ 1' or '~ X + Z', got "
                f"{type(formula).__name__}."
            )
        return _rhs(formula)

    def matrix(self, rhs: str, role: str) -> tuple[np.ndarray, list[str], Any]:
        _check_role_columns(rhs, role, self.data)
        return _model_matrix(rhs, self.frame, role, self.frame, self.key)

    def row_weights(self, row_weights: Any, default: float) -> np.ndarray:
        m = len(self.frame)
        if row_weights is None:
            return np.full(m, default)
        w = self.per_row(row_weights, "row_weights")
        what = (
            f"Column '{row_weights}' (row_weights)"
            if isinstance(row_weights, str)
            else "row_weights"
        )
        bad = ~np.isfinite(w) | (w < 0)
        if bad.any():
            ex = first_ids(self.frame, bad, self.key)
            raise DataError(
                f"{what} must be finite and >= 0; {int(bad.sum())} row(s) are not, e.g. "
                f"{fmt_ids(ex, self.key)}.",
                column=row_weights if isinstance(row_weights, str) else None,
            )
        if not w.any():
            raise DataError(f"{what} are all 0: give at least one decision point a weight.")
        return w

    def per_row(self, v: Any, what: str) -> np.ndarray:
        """One value per row of the (sorted) frame from a column name, a number, or values in
        the input frame's row order (a Series or DataFrame column is read by its index where
        that holds the input positions)."""
        m = len(self.frame)
        rows = self.frame["_row"].to_numpy()
        n_input = m + len(self.data.exclusions)
        if isinstance(v, str):
            require_column(self.frame, v, what)
            return pd.to_numeric(self.frame[v], errors="coerce").to_numpy(dtype=float)
        if isinstance(v, bool | np.bool_):
            raise DesignError(f"{what} must be numbers or a column name, got {v!r}.")
        if isinstance(v, int | float | np.number):
            return np.full(m, float(v))
        if isinstance(v, pd.Series) and v.index.is_unique and set(rows) <= set(v.index):
            return pd.to_numeric(v.loc[rows], errors="coerce").to_numpy(dtype=float)
        try:
            arr = np.asarray(v, dtype=float).ravel()
        except (TypeError, ValueError):
            raise DesignError(
                f"{what} must be numbers (one per row of the data), a number or a column name; "
                f"got {type(v).__name__}."
            ) from None
        if arr.size != n_input:
            raise DesignError(
                f"{what} needs one value per row of the data ({n_input}), got {arr.size}; or "
                "give the name of a column."
            )
        return arr[rows]

    def folds(self, cross_fit: Any, rng: np.random.Generator) -> np.ndarray | None:
        if cross_fit is False or cross_fit is None:
            return None
        if cross_fit is True:
            raise DesignError(
                "cross_fit must be False or the number of folds K (e.g. cross_fit=5), got True."
            )
        k = check_int("cross_fit", cross_fit, 2)
        if k > self.n:
            raise DesignError(
                f"cross_fit={k} folds need at least {k} participants, but the trial has "
                f"{self.n}: use cross_fit <= {self.n} (5 or 10 is usual), or cross_fit=False."
            )
        return fold_assignment(self.n, k, rng)[self.codes]


def _plain(v: Any) -> Any:
    """A NumPy scalar as the Python value (ids in messages print as 2, not np.int64(2))."""
    return v.item() if isinstance(v, np.generic) else v


def _core(
    F: np.ndarray,
    omega: np.ndarray,
    D: np.ndarray,
    starts: np.ndarray,
    n: int,
    small_sample: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """theta (k p), its sandwich covariance, per-participant bread pieces (n, p, p) and
    right-hand sides (n, p, k) of the k stacked equations sum omega f (d_j - f'theta_j) = 0.

    ``small_sample``: Mancl-DeRouen (2001) bias-reduced sandwich, the residuals of participant
    i replaced by (I - H_ii)^-1 r_i with H_ii = F_i B^-1 F_i' W_i (B = sum_i C_i,
    C_i = F_i' W_i F_i; the pseudo-outcomes, i.e. the nuisance fits, held fixed). By the
    push-through identity (:mod:`hte_mrt.estimators.sandwich`) the corrected score of equation j
    is B u_ij with u_ij = (B - C_i)^-1 s_ij, s_ij = F_i' W_i r_ij, so the covariance is
    sum_i u_i u_i' (u_i stacked over the k equations; they share F and W, so the k x k block
    hat matrix is block diagonal).
    """
    wF = F * omega[:, None]
    Ai = np.add.reduceat(wF[:, :, None] * F[:, None, :], starts, axis=0)
    bi = np.add.reduceat(wF[:, :, None] * D[:, None, :], starts, axis=0)
    S = Ai.sum(axis=0) / n
    if np.linalg.matrix_rank(S) < S.shape[0]:
        raise EstimationError(
            "The effect model's bread matrix is singular (a moderator term is constant or a "
            "combination of others on the weighted rows); simplify moderators= or check "
            "row_weights."
        )
    Sinv = np.linalg.inv(S)
    coef = Sinv @ (bi.sum(axis=0) / n)  # p x k
    resid = D - F @ coef  # rows x k
    U = np.add.reduceat(wF[:, :, None] * resid[:, None, :], starts, axis=0)  # n x p x k
    k = D.shape[1]
    if small_sample:
        B = Ai.sum(axis=0)
        lhs = B[None] - Ai
        if np.any(np.linalg.matrix_rank(lhs) < B.shape[0]):
            raise EstimationError(
                "small_sample: the Mancl-DeRouen correction needs the effect model to be "
                "identified without any single participant (B - C_i invertible), but a "
                "moderator term is driven by one participant's rows. Use small_sample=False, "
                "or simplify moderators= / row_weights."
            )
        u = np.linalg.solve(lhs, U)  # n x p x k
        ustack = u.transpose(0, 2, 1).reshape(n, -1)
        cov = ustack.T @ ustack
    else:
        Ustack = U.transpose(0, 2, 1).reshape(n, -1)  # blocks per equation
        Binv = np.kron(np.eye(k), Sinv)
        meat = Ustack.T @ Ustack / n
        cov = Binv @ meat @ Binv.T / n
    theta = coef.T.reshape(-1)
    return theta, cov, Ai, bi


def _check_seed_conf(seed: Any, conf_level: float) -> np.random.Generator:
    check_conf_level(conf_level)
    return np.random.default_rng(check_seed(seed))


def _learner_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def _setup(
    data: MRTData, where: str, seed: Any, conf_level: float, small_sample: Any
) -> tuple[np.random.Generator, _Trial, bool]:
    """The checks both estimators start with: seed and level, the trial, ``small_sample``."""
    rng = _check_seed_conf(seed, conf_level)
    trial = _Trial(data, where)
    return rng, trial, resolve_small_sample(small_sample, trial.n)


def _moderator_matrix(trial: _Trial, moderators: Any) -> tuple[str, np.ndarray, list[str], Any]:
    """``moderators=`` -> its right-hand side, the full-rank matrix f, its names and spec."""
    mod_rhs = trial.rhs(moderators, "moderators")
    F, f_names, f_spec = trial.matrix(mod_rhs, "moderator")
    _check_rank(F, f_names, "moderator")
    return mod_rhs, F, f_names, f_spec


def _fold_groups(folds: np.ndarray | None, m: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(training rows, held-out rows) per fold; one group of all rows without cross-fitting."""
    if folds is None:
        return [(np.ones(m, bool), np.ones(m, bool))]
    return [(folds != j, folds == j) for j in range(int(folds.max()) + 1)]


def _fit_info(
    trial: _Trial,
    head: dict[str, Any],
    cross_fit: Any,
    folds: np.ndarray | None,
    seed: Any,
    mod_rhs: str,
    controls: Any,
    extra: dict[str, Any],
    known: dict[str, np.ndarray],
) -> dict[str, Any]:
    """The result's ``info``: ``head`` (learners), the fit's settings, ``extra``, the trial."""
    roles = trial.data.roles
    return {
        **head,
        "cross_fit": int(cross_fit) if folds is not None else 0,
        "seed": seed if isinstance(seed, int | type(None)) else str(seed),
        "moderators": f"~ {mod_rhs}",
        "controls": controls,
        **extra,
        "outcome": roles.outcome,
        "time": roles.time,
        "rows": len(trial.frame),
        "known": sorted(known),
        "decision_points": _default_grid(trial),
    }


def _result(
    method: str,
    effects: list[str],
    trial: _Trial,
    f_names: list[str],
    f_spec: Any,
    core: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    conf_level: float,
    small: bool,
    info: dict[str, Any],
    nuisance: dict[str, np.ndarray],
) -> DistalResult:
    """The :class:`DistalResult` of one effect per name in ``effects`` (each with the terms
    ``f_names``, prefixed ``effect:`` when there are several) from :func:`_core`'s output."""
    theta, cov, Ai, bi = core
    p = len(f_names)
    if len(effects) == 1:
        terms = list(f_names)
    else:
        terms = [f"{e}:{t}" for e in effects for t in f_names]
    return DistalResult(
        method=method,
        terms=terms,
        effects=[e for e in effects for _ in range(p)],
        basis=list(f_names),
        theta=theta,
        cov_theta=cov,
        df=trial.n - len(effects) * p,
        n=trial.n,
        conf_level=float(conf_level),
        small_sample=small,
        info=info,
        spec=f_spec,
        pieces=(Ai, bi),
        nuisance_values=pd.DataFrame(nuisance, index=trial.frame["_row"].to_numpy()),
    )


def _fit_rows(
    lrn: Any,
    mat: tuple[np.ndarray, list[str], Any],
    rows: np.ndarray,
    y: np.ndarray,
    pred: np.ndarray,
    binomial: bool | None,
    seed: int,
    where: str,
) -> np.ndarray:
    """One nuisance fit: ``lrn`` on the ``rows`` of ``mat`` = (X, names, smooth terms) and
    ``y``, predicted on the ``pred`` rows."""
    X, names, smooth = mat
    return fit_predict(
        lrn,
        X[rows],
        y[rows],
        X[pred],
        binomial=binomial,
        names=names,
        smooth=smooth,
        seed=seed,
        where=where,
    )


def _known_values(values: Any, names: tuple[str, ...], trial: _Trial) -> dict[str, np.ndarray]:
    """``nuisance=``: a DataFrame or dict of known nuisance values -> {name: row array}."""
    if values is None:
        return {}
    if isinstance(values, pd.DataFrame):
        values = {c: values[c] for c in values.columns}
    if not isinstance(values, Mapping):
        raise DesignError(
            f"nuisance must be a DataFrame or a dict with columns among {list(names)} (one value "
            f"per row of the data, or the name of a column), got {type(values).__name__}."
        )
    unknown = [str(k) for k in values if k not in names]
    if unknown:
        raise DesignError(f"nuisance has unknown name(s) {unknown}; use names among {list(names)}.")
    out = {}
    for k, v in values.items():
        arr = trial.per_row(v, f"nuisance[{k!r}]")
        bad = ~np.isfinite(arr)
        if bad.any():
            ex = first_ids(trial.frame, bad, trial.key)
            raise DataError(
                f"nuisance[{k!r}] has {int(bad.sum())} missing or infinite value(s), e.g. "
                f"{fmt_ids(ex, trial.key)}: give a finite value on every row.",
                column=k,
            )
        out[str(k)] = arr
    return out


def _drop_term(rhs: str, var: str, where: str) -> str:
    """The formula without every term that uses ``var`` (``M``, ``s(M)``, ``M:X``, ...).

    MRTAnalysis drops only the term labelled exactly ``M``; a term such as ``s(M)`` or ``M:X``
    would leave the mediator in the models that must not condition on it (p, eta, nu).
    """
    try:
        terms = list(Formula(rhs))
    except FormulaicError as e:
        raise FormulaError(f"Cannot parse the {where} formula '~ {rhs}': {e}") from e
    kept = []
    for t in terms:
        label = str(t)
        if label != "1" and var in _required_columns(Formula(label)):
            continue
        kept.append(label)
    if not kept:
        return "1"
    if "1" not in kept:
        return "0 + " + " + ".join(kept)
    return " + ".join(["1", *[t for t in kept if t != "1"]])


def _add_mediator(rhs: str, var: str, where: str) -> str:
    """The formula with the mediator ``var`` added as a linear term when no term uses it: the
    models that must condition on the mediator (q, mu) always see it."""
    try:
        used = _required_columns(Formula(split_smooth(rhs, ["gam"], where)[0]))
    except FormulaicError as e:
        raise FormulaError(f"Cannot parse the {where} formula '~ {rhs}': {e}") from e
    if var in used:
        return rhs
    return var if rhs.strip() in ("1", "") else f"{rhs} + {var}"


def _default_grid(trial: _Trial) -> list[float]:
    return sorted(float(v) for v in pd.unique(trial.frame[trial.data.roles.time]))


# ----------------------------------------------------------------------------- DCEE
def dcee(
    data: MRTData,
    moderators: str = "~ 1",
    controls: str = "~ 1",
    *,
    learner: Any = "lm",
    cross_fit: bool | int = False,
    seed: Any = None,
    small_sample: bool | Literal["auto"] = "auto",
    conf_level: float = 0.95,
    row_weights: str | np.ndarray | None = None,
    nuisance: pd.DataFrame | Mapping[str, Any] | None = None,
) -> DistalResult:
    r"""Distal causal excursion effect (DCEE) of a binary treatment on a distal outcome.

    Qian (2025), Biometrics 81(4), doi:10.1093/biomtc/ujaf134; MRTAnalysis ``dcee()``. The
    effect of :math:`A_t = 1` vs :math:`0` at decision point :math:`t` on the distal outcome
    :math:`Y` (measured once per participant), past and future treatments following the
    trial's randomization policy, moderated by :math:`S_t`:

    .. math::

        \beta(t; s) = E\left[Y(\bar A_{t-1}, 1, \underline A_{t+1})
        - Y(\bar A_{t-1}, 0, \underline A_{t+1}) \mid S_t = s, I_t = 1\right]
        = f(s)^\top \beta.

    Stage 1 fits :math:`\mu_a(H_t) = E[Y \mid H_t, A_t = a]` on the rows with
    :math:`A_t = a` (``controls``, ``learner``; optionally cross-fitted over participant folds);
    stage 2 solves :math:`\sum_i \sum_t \omega_t f_t [I_t (-1)^{1 - A_t} / p_t(A_t)
    \{Y - p_t(0)\mu_1 - p_t(1)\mu_0\} - f_t^\top \beta] = 0`. The estimate is consistent
    whatever the nuisance model (the randomization probabilities are known); a better model
    gives a smaller standard error. Variance: participant-level sandwich (nuisance held fixed,
    as MRTAnalysis), Mancl-DeRouen corrected when ``small_sample``; t inference with
    df = n - dim(beta).

    **Deliberate difference from MRTAnalysis**: ``dcee()`` in R uses the plain sandwich, which
    is too small with few participants. In 500 simulated trials of 50 participants
    (``tests/validation/distal_study.py``, moderators ``~ S``, lm nuisance) the plain sandwich
    covered the S coefficient in 0.908 (Monte Carlo SE 0.013) of 95% intervals (SE ratio
    0.92), the corrected one in 0.918 (0.012; SE ratio 0.95), the intercept 0.942 vs 0.956; in
    2000 further trials (seed 20261) 0.933 (0.006) vs 0.939 (0.005), intercept 0.940 vs 0.946,
    SE ratios 0.97-0.98 vs 0.995-1.01. So the correction is the default (``"auto"``: up to
    50 participants); ``small_sample=False`` gives R's numbers exactly.

    Parameters
    ----------
    data : MRTData
        A binary-treatment trial whose ``outcome`` column is the distal outcome (constant
        within participant).
    moderators : str
        Formula of f(S), e.g. ``"~ 1"`` (fully marginal) or ``"~ Z"``.
    controls : str
        Formula of the nuisance models' covariates, e.g. ``"~ X + Z"``; ``s(x)`` marks a smooth
        term for ``learner="gam"``.
    learner : str or estimator
        ``"lm"`` (default), ``"glm"``, ``"gam"``, ``"rf"``, ``"gb"``, or any scikit-learn style
        estimator (see :mod:`hte_mrt.estimators.nuisance`).
    cross_fit : False or int
        Number of participant folds K for cross-fitting (False: fit on all rows).
    seed : int, optional
        Seeds the folds and the random learners.
    small_sample : {"auto", True, False}, default "auto"
        Mancl-DeRouen (2001) bias-reduced sandwich of the stage-2 equation (participant i's
        residuals times :math:`(I - H_{ii})^{-1}`, the nuisance fits held fixed); ``"auto"``
        corrects with n <= 50 participants (as :func:`hte_mrt.wcls`). ``False``: MRTAnalysis'
        plain sandwich. The df are the same either way.
    conf_level : float
        Interval level of ``table()``.
    row_weights : str or array, optional
        Decision-point weights :math:`\omega_t` (a column name or one value per row; default
        equal weights, MRTAnalysis' 1/T).
    nuisance : DataFrame or dict, optional
        Known values of ``mu0`` / ``mu1`` instead of fits: per name a number, a column name, or
        one value per input row (a Series / DataFrame column indexed by input row, e.g. a fit's
        ``nuisance_values``, is read by its index). ``{"mu0": 0, "mu1": 0}`` is MRTAnalysis'
        ``control_reg_method = "set_to_zero"``.

    Returns
    -------
    DistalResult
        ``table()`` (term, effect = "distal", estimate, se, lcl, ucl, t, df, p), ``lincomb``,
        ``joint_test``, ``effect_curve``, ``bayesian_bootstrap``, NetCDF round trip.

    Examples
    --------
    >>> import hte_mrt as hm
    >>> sim = hm.MRTSimulation(n_participants=30, n_decisions=10)
    >>> frame = sim.simulate(seed=1).rename(columns={"t": "decision"})
    >>> frame["y_distal"] = frame.groupby("id")["y"].transform("mean")
    >>> trial = hm.MRTData(frame, id="id", time="decision", treatment="A",
    ...                    outcome="y_distal", prob="prob", availability="avail")
    >>> fit = hm.dcee(trial, "~ 1", "~ S")
    >>> fit.table().columns.tolist()
    ['term', 'effect', 'estimate', 'se', 'lcl', 'ucl', 't', 'df', 'p']
    >>> int(fit.df)
    29
    """
    where = "dcee"
    rng, trial, small = _setup(data, where, seed, conf_level, small_sample)
    mod_rhs, F, f_names, f_spec = _moderator_matrix(trial, moderators)
    known = _known_values(nuisance, DCEE_VALUES, trial)
    if isinstance(learner, Mapping):
        raise DesignError(
            "learner: dcee fits one nuisance learner (for mu0 and mu1); give a name such as "
            "'lm' or an estimator, not a dict."
        )
    lrn = resolve_learner(learner, "learner")
    ctl_rhs = trial.rhs(controls, "controls")
    ctl_plain, smooth = split_smooth(
        ctl_rhs, [lrn.name if lrn.estimator is None else "x"], "control"
    )
    folds = trial.folds(cross_fit, rng)
    lseed = _learner_seed(rng)
    mu = dict(known)
    need = [k for k in DCEE_VALUES if k not in mu]
    if need:
        X, x_names, _ = trial.matrix(ctl_plain, "control")
        y, A = trial.y, trial.A
        pred = {k: np.empty(len(y)) for k in need}
        for j, (train, held) in enumerate(_fold_groups(folds, len(y))):
            for k in need:
                a = 1.0 if k == "mu1" else 0.0
                rows = train & (A == a)
                pred[k][held] = _fit_rows(
                    lrn, (X, x_names, smooth), rows, y, held, None, lseed + j,
                    f"dcee nuisance {k}",
                )  # fmt: skip
        mu |= pred
    p1 = trial.p1
    pA = np.where(trial.A == 1, p1, 1 - p1)
    pA = np.where(trial.avail, pA, 1.0)
    d = np.where(
        trial.avail,
        (2 * trial.A - 1) / pA * (trial.y - (1 - p1) * mu["mu1"] - p1 * mu["mu0"]),
        0.0,
    )
    _finite(d, "the DCEE pseudo-outcome", trial)
    omega = trial.row_weights(row_weights, trial.n / len(trial.frame))
    theta, cov, Ai, bi = _core(F, omega, d[:, None], trial.starts, trial.n, small)
    info = _fit_info(
        trial, {"learner": lrn.name}, cross_fit, folds, seed, mod_rhs, f"~ {ctl_rhs}", {}, known
    )
    return _result(
        "DCEE", ["distal"], trial, f_names, f_spec, (theta, cov, Ai, bi), conf_level, small,
        info, mu,
    )  # fmt: skip


def _finite(v: np.ndarray, what: str, trial: _Trial, hint: str = "") -> None:
    bad = ~np.isfinite(v)
    if bad.any():
        ex = first_ids(trial.frame, bad, trial.key)
        raise EstimationError(
            f"{what} is not finite on {int(bad.sum())} row(s), e.g. {fmt_ids(ex, trial.key)}"
            f"{hint}. Check the nuisance models (a fitted probability of exactly 0 or 1 divides "
            "by zero): a smoother learner or fewer controls usually helps."
        )


# ----------------------------------------------------------------------------- MCEE
def mcee(
    data: MRTData,
    mediator: str = "M",
    moderators: str = "~ 1",
    controls: str | Mapping[str, str] = "~ 1",
    *,
    learner: Any = "glm",
    cross_fit: bool | int = False,
    seed: Any = None,
    small_sample: bool | Literal["auto"] = "auto",
    conf_level: float = 0.95,
    row_weights: str | np.ndarray | None = None,
    nuisance: pd.DataFrame | Mapping[str, Any] | None = None,
) -> DistalResult:
    r"""Natural direct and indirect excursion effects (NDEE, NIEE) on a distal outcome.

    Qian et al. (2025), "Dynamic causal mediation analysis for intensive longitudinal data",
    arXiv:2506.20027; MRTAnalysis ``mcee()``, ``mcee_general()`` and
    ``mcee_userfit_nuisance()``. With the mediator :math:`M_t` that follows :math:`A_t`
    (often the proximal outcome), the total excursion effect of :math:`A_t` on the distal
    :math:`Y` splits into

    .. math::

        \mathrm{NDEE}(t) = E\{Y(A_t{=}1, M_t(0)) - Y(A_t{=}0, M_t(0))\} = f(t)^\top\alpha,
        \qquad
        \mathrm{NIEE}(t) = E\{Y(A_t{=}1, M_t(1)) - Y(A_t{=}1, M_t(0))\} = f(t)^\top\beta,

    other treatments following the trial's policy. Nuisance functions: p (treatment
    probability; known in an MRT), q (treatment given the mediator), eta and mu (outcome
    regressions without / with the mediator) and the cross-world nu; multiply robust
    estimating equations; participant-level sandwich (nuisance held fixed, as MRTAnalysis),
    Mancl-DeRouen corrected when ``small_sample`` (both equations share the design, so the
    correction is per equation); t inference with df = n - 2 dim(f).

    **Deliberate difference from MRTAnalysis**: R's ``mcee()`` uses the plain sandwich. In
    simulated trials of 50 participants (``tests/validation/distal_study.py``, effect ``~ dp``,
    glm nuisance) the corrected intervals covered 0.958-0.970 of the time over the four
    coefficients in 500 trials (plain: 0.954-0.966) and 0.950-0.962 in 2000 further trials
    (plain: 0.945-0.957), with SE ratios 0.98-1.03 (plain 0.96-1.01); the default ``"auto"``
    corrects up to 50 participants, as for :func:`hte_mrt.dcee`. With moderators of the
    decision point only, complete and unweighted, the correction is exactly n / (n - 1) on
    every SE. ``small_sample=False`` gives R's numbers exactly.

    Parameters
    ----------
    data : MRTData
        A binary-treatment trial; ``outcome`` is the distal outcome (constant within
        participant); unavailable rows are never treated.
    mediator : str
        The mediator column (continuous or binary).
    moderators : str
        Formula of f(t), usually of the decision point, e.g. ``"~ 1"`` or ``"~ dp"``.
    controls : str or dict
        Formula of the nuisance covariates, e.g. ``"~ dp + X"`` or ``"~ dp + M + X"``. The
        models that must condition on the mediator (q and mu) always get it: when no term
        uses it, ``M`` is added as a linear term (so the default ``"~ 1"`` means q and mu on
        ``M`` alone, p, eta and nu on an intercept). Every term that uses the mediator (``M``,
        ``s(M)``, ``M:X``, ...) is dropped for p, eta and nu (MRTAnalysis' ``mcee`` drops only
        a term labelled ``M``). Or ``{nuisance: formula}`` per nuisance ("p", "q", "eta",
        "mu", "nu": ``mcee_general``), missing names taking ``controls["default"]`` (with the
        same rules) if given; formulas given per nuisance are used as written, and a warning
        (:class:`~hte_mrt.HteMrtWarning`) says when such a q or mu formula lacks the mediator,
        or a p, eta or nu formula has it.
    learner : str, estimator or dict
        ``"glm"`` (default: logistic for p and q, least squares for eta, mu, nu), ``"lm"``,
        ``"gam"``, ``"rf"``, ``"gb"``, an estimator, or ``{nuisance: learner}`` (others
        ``"glm"``). p is the trial's randomization probability unless ``learner`` names "p".
    cross_fit : False or int
        Number of participant folds for cross-fitting the nuisance models.
    seed : int, optional
        Seeds the folds and the random learners.
    small_sample : {"auto", True, False}, default "auto"
        Mancl-DeRouen (2001) bias-reduced sandwich (nuisance fits held fixed); ``"auto"``
        corrects with n <= 50 participants. ``False``: MRTAnalysis' plain sandwich.
    conf_level : float
        Interval level of ``table()``.
    row_weights : str or array, optional
        Decision-point weights :math:`\omega_t` (default 1; e.g. 1 on chosen decision points
        only, MRTAnalysis' ``specific_dp_only``).
    nuisance : DataFrame or dict, optional
        Known nuisance values (``mcee_userfit_nuisance``): any of p1, q1, eta1, eta0, mu1,
        mu0, nu1, nu0, each a number, a column name or one value per input row (a fit's
        ``nuisance_values`` is read by its index); the rest are fitted. p1 and q1 are set to 1
        on unavailable rows.

    Returns
    -------
    DistalResult
        ``table()`` with rows ``direct:<term>`` (effect "direct", alpha) and
        ``indirect:<term>`` (effect "indirect", beta); ``lincomb`` over all of them;
        ``effect_curve`` (direct, indirect, total over decision points).

    Examples
    --------
    >>> import numpy as np
    >>> import hte_mrt as hm
    >>> sim = hm.MRTSimulation(n_participants=30, n_decisions=10)
    >>> frame = sim.simulate(seed=2).rename(columns={"t": "decision"})
    >>> frame["y_distal"] = frame.groupby("id")["y"].transform("mean")
    >>> frame["m"] = frame["y"]
    >>> trial = hm.MRTData(frame, id="id", time="decision", treatment="A",
    ...                    outcome="y_distal", prob="prob", availability="avail")
    >>> fit = hm.mcee(trial, "m", "~ 1", "~ decision + m + S")
    >>> fit.table()[["term", "effect"]]
                     term    effect
    0    direct:Intercept    direct
    1  indirect:Intercept  indirect
    >>> int(fit.df)
    28
    """
    where = "mcee"
    rng, trial, small = _setup(data, where, seed, conf_level, small_sample)
    if not isinstance(mediator, str):
        raise DesignError(f"mediator must be the name of a column, got {mediator!r}.")
    require_column(trial.frame, mediator, "mediator")
    r = data.roles
    if mediator in (r.outcome, r.treatment, r.id, r.time) or mediator == r.availability:
        raise DesignError(
            f"mediator={mediator!r} is a role column of the trial (outcome, treatment, id, "
            "time or availability); give the mediator's own column."
        )
    mvals = pd.to_numeric(trial.frame[mediator], errors="coerce").to_numpy(dtype=float)
    if (~np.isfinite(mvals)).any():
        bad = ~np.isfinite(mvals)
        ex = first_ids(trial.frame, bad, trial.key)
        raise MissingValueError(
            f"Column '{mediator}' (mediator) is missing or not numeric on {int(bad.sum())} "
            f"row(s), e.g. {fmt_ids(ex, trial.key)}: MRTAnalysis' mediation analysis needs it "
            "on every row; impute or remove those rows.",
            column=mediator,
            n_rows=int(bad.sum()),
            examples=ex,
        )
    mod_rhs, F, f_names, f_spec = _moderator_matrix(trial, moderators)
    known = _known_values(nuisance, MCEE_VALUES, trial)

    # learners per nuisance
    if isinstance(learner, Mapping):
        unknown = [str(k) for k in learner if k not in MCEE_NUISANCES]
        if unknown:
            raise DesignError(
                f"learner has unknown nuisance name(s) {unknown}; use names among "
                f"{list(MCEE_NUISANCES)} (unnamed ones use 'glm')."
            )
        lrns = {
            k: resolve_learner(learner.get(k, "glm"), f"learner[{k!r}]") for k in MCEE_NUISANCES
        }
        fit_p = "p" in learner
    else:
        one = resolve_learner(learner, "learner")
        lrns = dict.fromkeys(MCEE_NUISANCES, one)
        fit_p = False

    # formulas per nuisance
    if isinstance(controls, Mapping):
        unknown = [str(k) for k in controls if k not in (*MCEE_NUISANCES, "default")]
        if unknown:
            raise DesignError(
                f"controls has unknown nuisance name(s) {unknown}; use names among "
                f"{[*MCEE_NUISANCES, 'default']}."
            )
        rhs = {}
        for k in MCEE_NUISANCES:
            if k in controls:
                rhs[k] = trial.rhs(controls[k], f"controls[{k!r}]")
            elif "default" in controls:
                full = trial.rhs(controls["default"], "controls['default']")
                rhs[k] = (
                    _add_mediator(full, mediator, "control")
                    if k in ("q", "mu")
                    else _drop_term(full, mediator, "control")
                )
            else:
                rhs[k] = None
        ctl_text = {k: (f"~ {v}" if v is not None else None) for k, v in rhs.items()}
    else:
        full = _add_mediator(trial.rhs(controls, "controls"), mediator, "control")
        without = _drop_term(full, mediator, "control")
        rhs = {"p": without, "q": full, "eta": without, "mu": full, "nu": without}
        ctl_text = f"~ {full}"

    needed_fits = {
        "p": fit_p and "p1" not in known,
        "q": "q1" not in known,
        "eta": not {"eta1", "eta0"} <= set(known),
        "mu": not {"mu1", "mu0"} <= set(known),
        "nu": not {"nu1", "nu0"} <= set(known),
    }
    _lint_mediator({k: (v if needed_fits[k] else None) for k, v in rhs.items()}, mediator)
    mats: dict[str, tuple[np.ndarray, list[str], set[str]]] = {}
    for k, need in needed_fits.items():
        if not need:
            continue
        if rhs[k] is None:
            raise DesignError(
                f"controls: no formula for the nuisance {k!r}; give controls[{k!r}] (or "
                "controls['default'])."
            )
        lname = lrns[k].name if lrns[k].estimator is None else "estimator"
        plain, smooth = split_smooth(rhs[k], [lname], f"control ({k})")
        X, names, _ = trial.matrix(plain, "control")
        mats[k] = (X, names, smooth)

    folds = trial.folds(cross_fit, rng)
    lseed = _learner_seed(rng)
    values = _mcee_stage1(trial, mats, lrns, known, fit_p, folds, lseed)

    av = trial.avail
    p1 = np.where(av, values["p1"], 1.0)
    p0 = np.where(av, 1.0 - p1, 1.0)
    q1 = np.where(av, values["q1"], 1.0)
    q0 = np.where(av, 1.0 - q1, 1.0)
    for name, v in (("p1", p1), ("q1", q1)):
        bad = av & ((v <= 0) | (v >= 1))
        if bad.any():
            ex = first_ids(trial.frame, bad, trial.key)
            raise EstimationError(
                f"The nuisance {name} is outside (0, 1) on {int(bad.sum())} available row(s), "
                f"e.g. {fmt_ids(ex, trial.key)}; a treatment probability must lie strictly "
                "between 0 and 1. Use learner='glm' (logistic) for it, or check the known "
                "values."
            )
    Y, A = trial.y, trial.A
    ind1 = ((A == 1) | ~av).astype(float)
    ind0 = (A == 0).astype(float)
    eta1, eta0 = values["eta1"], values["eta0"]
    mu1, nu1 = values["mu1"], values["nu1"]
    phi11 = ind1 / p1 * Y - (ind1 - p1) / p1 * eta1
    phi00 = ind0 / p0 * Y - (ind0 - p0) / p0 * eta0
    phi10 = ind1 * q0 * (Y - mu1) / (p0 * q1) + ind0 * (mu1 - nu1) / p0 + nu1
    D = np.column_stack([phi10 - phi00, phi11 - phi10])
    _finite(D.sum(axis=1), "a mediation pseudo-outcome", trial)
    omega = trial.row_weights(row_weights, 1.0)
    theta, cov, Ai, bi = _core(F, omega, D, trial.starts, trial.n, small)
    head = {
        "learner": {k: (v.name) for k, v in lrns.items()}
        if isinstance(learner, Mapping)
        else lrns["q"].name,
        "p": "fitted" if fit_p and "p1" not in known else "known",
    }
    info = _fit_info(
        trial, head, cross_fit, folds, seed, mod_rhs, ctl_text, {"mediator": mediator}, known
    )
    nv = {"p1": p1, "q1": q1} | {k: values[k] for k in ("eta1", "eta0", "mu1", "mu0", "nu1", "nu0")}
    return _result(
        "MCEE", ["direct", "indirect"], trial, f_names, f_spec, (theta, cov, Ai, bi), conf_level,
        small, info, nv,
    )  # fmt: skip


def _lint_mediator(rhs: dict[str, str | None], mediator: str) -> None:
    """Warn (as MRTAnalysis' mcee_general) when the mediator is missing from the q / mu formulas
    (the indirect effect is found through them) or present in the p / eta / nu formulas."""
    uses = {}
    for k, f in rhs.items():
        if f is None:  # not fitted (known values)
            continue
        try:
            uses[k] = mediator in _required_columns(Formula(split_smooth(f, ["gam"], k)[0]))
        except FormulaicError:
            continue  # reported with its parse error when the formula is built
    lacking = [k for k in ("q", "mu") if k in uses and not uses[k]]
    if lacking:
        warnings.warn(
            f"mcee: the mediator '{mediator}' is not in the formula of {' and '.join(lacking)} "
            "(controls=), so the nuisance models cannot see it and the indirect effect is "
            f"estimated as about 0 by construction. Add it, e.g. controls='~ ... + {mediator}'.",
            HteMrtWarning,
            stacklevel=3,
        )
    extra = [k for k in ("p", "eta", "nu") if uses.get(k)]
    if extra:
        warnings.warn(
            f"mcee: the mediator '{mediator}' is in the formula of {', '.join(extra)}, which "
            "must not condition on it (the treatment model and the outcome models without the "
            f"mediator); remove '{mediator}' from controls[{extra[0]!r}].",
            HteMrtWarning,
            stacklevel=3,
        )


def _mcee_stage1(
    trial: _Trial,
    mats: dict,
    lrns: dict[str, Learner],
    known: dict[str, np.ndarray],
    fit_p: bool,
    folds: np.ndarray | None,
    lseed: int,
) -> dict[str, np.ndarray]:
    """Nuisance values on every row (out of fold when cross-fitting), as MRTAnalysis fits them:
    p, q on available rows; eta1, mu1 on treated or unavailable rows, eta0, mu0 on untreated
    rows; nu1 regresses mu1's predictions on the untreated rows, nu0 mu0's on the treated or
    unavailable rows."""
    m = len(trial.frame)
    av, A, Y = trial.avail, trial.A, trial.y
    out = {k: np.array(v, dtype=float) for k, v in known.items()}
    if "p1" not in out:
        out["p1"] = trial.p1.copy()
    todo = [k for k in MCEE_VALUES if k not in known and not (k == "p1" and not fit_p)]
    if not todo:
        return out
    for k in todo:
        out[k] = np.empty(m)
    arm1 = (A == 1) | ~av
    arm0 = A == 0
    groups = _fold_groups(folds, m)

    def fit(
        kind: str,
        rows: np.ndarray,
        y: np.ndarray,
        pred: np.ndarray,
        binom: bool,
        j: int,
        label: str,
    ) -> np.ndarray:
        lrn = lrns[kind]
        fam = (
            binom
            if (lrn.estimator is None and lrn.name in ("glm", "gam"))
            else (True if binom else None)
        )
        return _fit_rows(lrn, mats[kind], rows, y, pred, fam, lseed + j, f"mcee nuisance {label}")

    for j, (train, held) in enumerate(groups):
        if "p1" in todo:
            out["p1"][held] = fit("p", train & av, A, held, True, j, "p")
        if "q1" in todo:
            out["q1"][held] = fit("q", train & av, A, held, True, j, "q")
        for k, arm in (("eta1", arm1), ("eta0", arm0)):
            if k in todo:
                out[k][held] = fit("eta", train & arm, Y, held, False, j, k)
        # mu on the training rows too: nu's target
        both = train | held
        mu_rows = {}
        for k, arm in (("mu1", arm1), ("mu0", arm0)):
            if k in todo:
                mu_rows[k] = fit("mu", train & arm, Y, both, False, j, k)
                out[k][held] = mu_rows[k][held[both]]
            else:
                mu_rows[k] = out[k][both]
        for k, src, arm in (("nu1", "mu1", arm0), ("nu0", "mu0", arm1)):
            if k in todo:
                target = np.zeros(m)
                target[both] = mu_rows[src]
                out[k][held] = fit("nu", train & arm, target, held, False, j, k)
    return out
