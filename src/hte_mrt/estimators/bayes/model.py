"""Hierarchical Bayesian causal-excursion-effect models for MRTs (the package's core model).

For participant i in cluster k(i) at an available decision point t, with the centred treatment
A~_it = 1[A_it = level] - pt_it (one column per non-reference level, pt as in WCLS):

    Y_it = g_it' alpha + A~_it f(t, S_it)' beta + b_i + c_k + A~_it u_i + e_it,
    b_i ~ N(0, sd_b^2),  c_k ~ N(0, sd_c^2),  u_i ~ N(0, sd_u^2) (optionally corr(b_i, u_i) = rho),
    e_it ~ N(0, sigma^2).

f(t, S)' beta is the causal excursion effect beta(t; s) (marginal over u_i, whose mean is 0);
g holds the controls plus every moderator main effect, as in WCLS. A ``bs(...)`` term in the
moderator formula is a penalized B-spline: its coefficients follow a second-order random walk
whose scale ``smooth_sd`` is learned (the smoothness of beta(t)).

Gaussian outcomes (``method="collapsed"``, default): b, u and c are integrated out analytically
(:mod:`.collapsed`), so one log-density evaluation costs O(participants x dim^2) whatever the
number of decision points; b, u, c are then drawn from their exact conditional posteriors.
``method="rowlevel"`` samples them (reference implementation, small data).

Binary outcomes (``family="bernoulli"``): logit P(Y_it = 1) = the same linear predictor (b, c, u
sampled). The excursion effect is reported on the log relative-risk and risk-difference scales
by standardizing over the available decision points (comparable with EMEE):

    log RR = log mean_t P(Y_it = 1 | A = 1) - log mean_t P(Y_it = 1 | A = 0).

Only available decision points enter the likelihood (availability is part of the estimand).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from dataclasses import asdict, dataclass, field, replace
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import xarray as xr

from hte_mrt.data.checks import check_bool, check_int
from hte_mrt.data.large import LargeMRTData
from hte_mrt.data.schema import MRTData
from hte_mrt.errors import DesignError, OutcomeTypeError, PriorError
from hte_mrt.estimands.excursion import (
    Design,
    ExcursionEffect,
    NumeratorSpec,
    _rhs,
    build_design,
    check_mrt_data,
)
from hte_mrt.estimators.bayes.priors import make_rv, resolve_priors, validate_priors

if TYPE_CHECKING:
    from hte_mrt.results.bayes import BayesResult

SPLINE_PREFIX = "bs("


class _Shared:
    """Data-dependent constants (prior scales, centring means) as slices of ONE shared vector.

    A compiled model is then refitted to new data of the same structure with nutpie's
    ``with_data`` instead of being recompiled; one vector (not one shared variable per constant)
    keeps compilation fast (each shared variable costs nutpie ~0.5 s of compile time).
    """

    NAME = "model_constants"

    def __init__(self) -> None:
        import pytensor

        self.parts: list[np.ndarray] = []
        self.size = 0
        self.vector = pytensor.shared(np.zeros(0), name=self.NAME)
        self.extra: dict[str, Any] = {}

    def __call__(self, name: str, value: Any):
        """A slice of the constants vector holding ``value`` (scalar or 1-d)."""
        arr = np.asarray(value, dtype=float)
        flat = arr.ravel()
        start = self.size
        self.parts.append(flat)
        self.size += flat.size
        self.vector.set_value(np.concatenate(self.parts))
        if arr.ndim == 0:
            return self.vector[start]
        return self.vector[start : start + flat.size]

    def add_data(self, name: str, value: np.ndarray):
        """A separate shared variable (large data such as the collapsed statistics)."""
        import pytensor

        v = pytensor.shared(np.asarray(value, dtype=float), name=name)
        self.extra[name] = v
        return v

    def rv(self, name: str, spec: dict, n: int | None = None, **kw):
        """``make_rv`` with every numeric parameter taken from the constants vector."""
        out = {"dist": spec["dist"]}
        for k, v in spec.items():
            if k == "dist":
                continue
            arr = np.asarray(v, dtype=float)
            if n is not None and k in ("mu", "sigma") and arr.ndim:
                arr = np.resize(arr, n)
            out[k] = self(f"{name}.{k}", arr)
        if n is not None:
            kw.setdefault("shape", n)
        return make_rv(name, out, **kw)

    def values(self) -> dict[str, np.ndarray]:
        vals = {k: v.get_value() for k, v in self.extra.items()}
        vals[self.NAME] = self.vector.get_value()
        return vals

    def layout(self) -> tuple:
        return tuple(p.size for p in self.parts)


@dataclass
class BuiltModel:
    """A PyMC model with everything needed to interpret its draws."""

    model: Any
    design: Design
    priors: dict
    config: dict
    stats: Any = None
    at: np.ndarray | None = None
    cluster_of: np.ndarray | None = None
    cluster_values: list | None = None
    shared: _Shared | None = None
    key: tuple | None = None
    theta_map: np.ndarray | None = None
    rebuild: list | None = None
    scale_names: list | None = None
    #: every data-dependent input is shared data or digested in ``key``: a compiled model of
    #: the same key is refitted to new data without recompiling (collapsed and Bernoulli models)
    cacheable: bool = False

    def split_scales(self, draws: dict) -> dict:
        """Name the entries of the vector RV ``scales`` (sd_b, sd_u, sd_c, sigma)."""
        if self.scale_names and "scales" in draws:
            v = np.asarray(draws["scales"])
            for k, n in enumerate(self.scale_names):
                draws[n] = v[..., k]
        return draws

    def theta_draws(self, draws: Any) -> tuple[np.ndarray, np.ndarray]:
        """(alpha, beta) on the data scale from raw draws (a Dataset or dict), flattened (S, .)."""
        cols = []
        for var, j, mult in self.rebuild:
            v = np.asarray(draws[var])
            S = v.shape[0] * v.shape[1] if isinstance(draws, xr.Dataset) else v.shape[0]
            v = v.reshape(S, -1)
            col = v[:, 0 if j is None else j]
            if mult is not None:
                col = col * np.asarray(draws[mult]).reshape(S)
            cols.append(col)
        theta = np.column_stack(cols) @ self.theta_map.T
        q = len(self.design.g_names)
        return theta[:, :q], theta[:, q:]


_SAMPLER_FIELDS = (
    "draws",
    "tune",
    "chains",
    "target_accept",
    "n_jobs",
    "progress",
    "seed",
    "sampler",
    "participant_draws",
)


def _formula_key(formula: str) -> str:
    """A formula without its '~' and whitespace, to compare two spellings of one formula."""
    return "".join(_rhs(formula).split())


_INT_HINTS = {
    "draws": "draws kept per chain, e.g. 1000",
    "tune": "warm-up iterations per chain, e.g. 1000 (NUTS needs a warm-up to adapt)",
    "chains": "independent chains, e.g. 4 (at least 2 to compute R-hat)",
    "n_jobs": "chains run at once, or None to let the sampler choose",
    "seed": "a seed such as 1, or None for fresh entropy",
    "lag": "decision points between treatment and outcome, 0 = proximal",
}


def _check_int(name: str, value: Any, minimum: int, *, none_ok: bool = False) -> None:
    try:
        check_int(name, value, minimum, none_ok=none_ok)
    except DesignError as e:
        hint = _INT_HINTS.get(name)
        msg = str(e).rstrip(".")
        raise DesignError(f"{msg}; {name}: {hint}." if hint else f"{msg}.") from None


@dataclass
class BayesMRT:
    r"""Hierarchical Bayesian model of a (moderated, time-varying) causal excursion effect.

    For participant :math:`i` (in cluster :math:`k(i)`) at an available decision point
    :math:`t`, with the centred treatment :math:`\tilde A_{it} = A_{it} - \tilde p_{it}`
    (:math:`\tilde p` the numerator probability, as in WCLS), the Gaussian model is

    .. math::

        Y_{it} = g_{it}^\top \alpha + \tilde A_{it}\, f_{it}^\top \beta + b_i + c_{k(i)}
                 + \tilde A_{it} u_i + \varepsilon_{it},

        b_i \sim N(0, \sigma_b^2),\quad u_i \sim N(0, \sigma_u^2),\quad
        c_k \sim N(0, \sigma_c^2),\quad \varepsilon_{it} \sim N(0, \sigma^2),

    where :math:`f_{it}^\top\beta = \beta(t; s)` is the causal excursion effect (marginal over
    :math:`u_i`, whose mean is 0), :math:`g` holds the controls plus every moderator main
    effect (as in WCLS), :math:`u_i` is the optional participant random effect
    (``random_slope``, correlated with :math:`b_i` if ``correlated``) and :math:`c_k` the
    optional cluster intercept. The random effects are integrated out analytically
    (``method="collapsed"``: one log-density evaluation costs O(participants) whatever the
    number of decision points) and drawn afterwards from their exact conditional posteriors.
    A ``bs(...)`` moderator term is a penalized B-spline whose smoothness is learned.

    For a binary outcome (``family="bernoulli"``) :math:`\operatorname{logit} P(Y_{it}=1)` is
    the same linear predictor (random effects sampled), and the excursion effect is reported as
    a log relative risk by standardization over the available decision points (comparable with
    EMEE):

    .. math::

        \log \mathrm{RR} = \log \overline{P(Y_{it}=1 \mid A_{it}=1)}
                          - \log \overline{P(Y_{it}=1 \mid A_{it}=0)},

    and as a risk difference (``effect_draws("risk_difference")``).

    No work is done until :meth:`fit`.

    Parameters
    ----------
    moderators, controls : str, optional
        Formulas of :math:`f` and of the controls :math:`g` (moderator main effects are added to
        :math:`g`); ``bs(day, df=6)`` in ``moderators`` gives a smooth time-varying effect. Leave
        them out when fitting through an estimand (:meth:`fit` with ``estimand=``); ``controls``
        defaults to ``"~ 1"``.
    family : {"gaussian", "bernoulli"}
        Outcome model (Bernoulli: logit link, effects as log RR and risk difference).
    random_slope, correlated : bool
        Participant random treatment effect :math:`u_i`; correlated with :math:`b_i` if
        ``correlated``.
    cluster_intercept : bool, optional
        Cluster random intercept :math:`c_k`; default: when the data have a cluster column.
    numerator : float, str or dict, optional
        Numerator probability, as in :func:`hte_mrt.wcls`.
    lag : int, optional
        Effect on the outcome ``lag`` decision points later (default 0).
    priors : dict, optional
        Overrides of the default priors (see :mod:`hte_mrt.estimators.bayes.priors`), as data.
    method : {"collapsed", "rowlevel"}
        ``"collapsed"`` (random effects integrated out; Gaussian only, a Bernoulli model always
        samples its random effects) or ``"rowlevel"`` (reference implementation, small data).
    draws, tune, chains : int
        MCMC draws kept per chain, warm-up iterations per chain, chains.
    target_accept : float, optional
        NUTS target acceptance rate; default 0.9, and 0.97 for models with a penalized spline.
    n_jobs : int, optional
        Chains run at once; default: chosen by the sampler and the data size.
    progress : bool
        Show the sampler's progress bar.
    seed : int, optional
        Seed of the sampler and of the random-effect draws (same seed, data and settings: the
        same draws, bit for bit, on one machine and library build, whatever ran before, the
        thread counts and ``n_jobs``); ``None`` draws a seed from fresh entropy and records it
        in ``result.meta["seed"]``.
    sampler : {"auto", "nutpie", "pymc"}
        ``"auto"`` uses nutpie when installed, else PyMC's NUTS.
    participant_draws : bool, optional
        Keep the draws of the participant-level quantities (``b``, ``u`` and
        ``participant_effect`` in the posterior; collapsed Gaussian model). ``False`` keeps, per
        participant, their posterior mean, sd and P(> 0), and the participant effect's
        quantiles (group ``participant_summary``; :meth:`BayesResult.participant_effects` then
        gives intervals at conf_level 0.5, 0.8, 0.9, 0.95 and 0.99), computed from exact draws
        made block by block, so memory no longer grows with draws x participants. Default: keep
        them up to 2 x 10^7 draws x participants (e.g. 5,000 participants at 4,000 draws), else
        summaries. The Bernoulli and row-level models sample their random effects and always
        keep them.

    See Also
    --------
    hte_mrt.BayesResult : what :meth:`fit` returns.
    hte_mrt.crosscheck : compare the posterior with WCLS / EMEE.

    Examples
    --------
    >>> import hte_mrt as hm
    >>> data = hm.MRTSimulation(n_participants=20, n_decisions=20).mrt_data(seed=1)
    >>> model = hm.BayesMRT("~ 1", "~ S", draws=300, tune=300, chains=2, progress=False, seed=1)
    >>> res = model.fit(data)
    >>> res.table()[["term", "estimate", "se"]].round(1)
            term  estimate   se
    0  Intercept       0.3  0.1
    1      sigma       1.0  0.0
    2       sd_b       0.2  0.1

    The same model through an estimand (the formulas then live in the estimand only):

    >>> res = model.fit(data, estimand=hm.ExcursionEffect("~ 1", "~ S"))
    >>> res.config["moderators"], res.config["seed"]
    ('~ 1', 1)
    """

    moderators: str | None = None
    controls: str | None = None
    family: Literal["gaussian", "bernoulli"] = "gaussian"
    random_slope: bool = False
    correlated: bool = False
    cluster_intercept: bool | None = None
    numerator: NumeratorSpec = None
    lag: int | None = None
    priors: dict | None = field(default=None)
    method: Literal["collapsed", "rowlevel"] = "collapsed"
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    target_accept: float | None = None
    n_jobs: int | None = None
    progress: bool = True
    seed: int | None = None
    sampler: Literal["auto", "nutpie", "pymc"] = "auto"
    participant_draws: bool | None = None

    def __post_init__(self) -> None:
        # cheap checks of the sampler settings: a bad value would otherwise surface as a panic
        # inside the (Rust) sampler
        _check_int("draws", self.draws, 1)
        _check_int("tune", self.tune, 1)
        _check_int("chains", self.chains, 1)
        _check_int("n_jobs", self.n_jobs, 1, none_ok=True)
        _check_int("seed", self.seed, 0, none_ok=True)
        _check_int("lag", self.lag, 0, none_ok=True)
        if self.target_accept is not None and (
            isinstance(self.target_accept, bool)
            or not isinstance(self.target_accept, int | float | np.number)
            or not 0.0 < float(self.target_accept) < 1.0
        ):
            raise DesignError(
                f"target_accept must be a number in (0, 1) such as 0.9, or None; "
                f"got {self.target_accept!r}."
            )
        check_bool("progress", self.progress)
        if self.participant_draws is not None:
            check_bool("participant_draws", self.participant_draws, allow=(None,))
            self.participant_draws = bool(self.participant_draws)
            if not self.participant_draws and (
                self.family != "gaussian" or self.method != "collapsed"
            ):
                raise DesignError(
                    "participant_draws=False needs the collapsed Gaussian model (family="
                    "'gaussian', method='collapsed'); the Bernoulli and row-level models sample "
                    "their random effects, so their draws are always kept."
                )
        check_bool("random_slope", self.random_slope)
        check_bool("correlated", self.correlated)
        if self.cluster_intercept is not None:
            check_bool("cluster_intercept", self.cluster_intercept, allow=(None,))
        for name, allowed in (
            ("sampler", ("auto", "nutpie", "pymc")),
            ("family", ("gaussian", "bernoulli")),
            ("method", ("collapsed", "rowlevel")),
        ):
            v = getattr(self, name)
            if not isinstance(v, str) or v not in allowed:
                raise DesignError(
                    f"{name} must be one of {', '.join(repr(a) for a in allowed)}, got {v!r}."
                )
        if self.priors is not None and not isinstance(self.priors, dict):
            raise PriorError(
                f"priors must be a dict such as {{'beta': {{'dist': 'normal', 'mu': 0, "
                f"'sigma': 1}}}}, or None for the defaults; got {type(self.priors).__name__}."
            )
        validate_priors(self.priors)
        if self.lag is not None or self.numerator is not None:
            # the same checks as the estimand's (the formulas are checked when fitting)
            ExcursionEffect("~ 1", "~ 1", self.lag or 0, self.numerator)
        for name in ("moderators", "controls"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, str):
                raise DesignError(f"{name} must be a formula string such as '~ 1', got {v!r}.")
        # plain Python numbers, so the configuration is JSON data
        for name in ("draws", "tune", "chains", "n_jobs", "seed", "lag"):
            v = getattr(self, name)
            if v is not None:
                setattr(self, name, int(v))
        if self.target_accept is not None:
            self.target_accept = float(self.target_accept)
        self.progress = bool(self.progress)
        self.random_slope = bool(self.random_slope)
        self.correlated = bool(self.correlated)
        if self.cluster_intercept is not None:
            self.cluster_intercept = bool(self.cluster_intercept)

    # ------------------------------------------------------------------ configuration
    def config(self) -> dict:
        """The model and sampler configuration as JSON-serializable data (saved with the
        posterior); ``BayesMRT.from_config(cfg)`` rebuilds the model."""
        cfg = asdict(self)
        if isinstance(cfg["numerator"], dict):
            cfg["numerator"] = {str(k): v for k, v in cfg["numerator"].items()}
        json.dumps(cfg)  # fail early if not serializable
        return cfg

    @classmethod
    def from_config(cls, cfg: dict) -> BayesMRT:
        """The model a :meth:`config` describes."""
        return cls(**cfg)

    def _model_key(self) -> str:
        """The configuration without the sampler settings (what the compiled model depends on)."""
        cfg = {k: v for k, v in self.config().items() if k not in _SAMPLER_FIELDS}
        return json.dumps(cfg, sort_keys=True, default=str)

    def _resolve(self, estimand: ExcursionEffect | None) -> BayesMRT:
        """This model with its formulas, lag and numerator taken from ``estimand`` (checked for
        agreement with the constructor's) or completed with their defaults."""
        if estimand is None:
            if self.moderators is None:
                raise DesignError(
                    "BayesMRT has no moderators: pass the formulas to the constructor, e.g. "
                    "hm.BayesMRT(moderators='~ 1', controls='~ x'), or fit it through an "
                    "estimand: hm.ExcursionEffect('~ 1', '~ x').fit(data, estimator=hm.BayesMRT())."
                )
            return replace(self, controls=self.controls or "~ 1", lag=self.lag or 0)
        if not all(hasattr(estimand, k) for k in ("moderators", "controls", "lag", "numerator")):
            raise DesignError(
                f"estimand must be an hm.ExcursionEffect, got {type(estimand).__name__}."
            )
        for name in ("moderators", "controls"):
            mine, theirs = getattr(self, name), getattr(estimand, name)
            if mine is not None and _formula_key(mine) != _formula_key(theirs):
                raise DesignError(
                    f"BayesMRT({name}={mine!r}) disagrees with the estimand's {name} "
                    f"{theirs!r}: give the formulas in one place (the estimand)."
                )
        for name, default in (("lag", None), ("numerator", None)):
            mine, theirs = getattr(self, name), getattr(estimand, name)
            if mine is not default and mine != theirs:
                raise DesignError(
                    f"BayesMRT({name}={mine!r}) disagrees with the estimand's {name} "
                    f"{theirs!r}: set it in one place (the estimand)."
                )
        return replace(
            self,
            moderators=estimand.moderators,
            controls=estimand.controls,
            lag=int(estimand.lag),
            numerator=estimand.numerator,
        )

    def _check(self, data: MRTData) -> None:
        if self.family not in ("gaussian", "bernoulli"):
            raise DesignError(f"family must be 'gaussian' or 'bernoulli', got {self.family!r}.")
        if self.method not in ("collapsed", "rowlevel"):
            raise DesignError(f"method must be 'collapsed' or 'rowlevel', got {self.method!r}.")
        if self.random_slope and not data.is_binary:
            raise DesignError(
                "random_slope needs a binary treatment (one slope per participant); for a "
                "categorical treatment fit one level against the reference at a time."
            )
        if self.correlated and not self.random_slope:
            raise DesignError("correlated=True needs random_slope=True.")
        validate_priors(self.priors)
        cl = data.roles.cluster
        if self.cluster_intercept and cl is None:
            raise DesignError("cluster_intercept=True but the data have no cluster column.")
        large = not isinstance(data, MRTData)
        if large and (self.family != "gaussian" or self.method != "collapsed"):
            raise DesignError(
                "On partitioned data (LargeMRTData) BayesMRT fits the collapsed Gaussian model "
                "(family='gaussian', method='collapsed'): its likelihood needs only "
                "per-participant sums. Use those settings, or load a trial that fits in memory "
                "with data.to_memory()."
            )
        if cl is not None and self.cluster_intercept is not False:
            n_cl = len(data.clusters) if large else data.frame[cl].nunique()
            if n_cl < 2:
                raise DesignError(
                    f"Cluster column '{cl}' has a single cluster: a cluster random intercept is "
                    "not identified. Drop cluster= from MRTData or set cluster_intercept=False."
                )

    # ------------------------------------------------------------------ building
    def build(self, data: MRTData, estimand: ExcursionEffect | None = None) -> BuiltModel:
        """Validate, build the design and the PyMC model (no sampling)."""
        return self._resolve(estimand)._build(data)

    def _build(self, data: MRTData) -> BuiltModel:
        self._check(data)
        use_cluster = data.roles.cluster is not None and self.cluster_intercept is not False
        est = ExcursionEffect(self.moderators, self.controls, self.lag, self.numerator)
        if not isinstance(data, MRTData):  # partitioned: per-participant sums, reduced
            from hte_mrt.estimators.large import bayes_inputs

            design, large_stats, cluster_values, cluster_of = bayes_inputs(
                data, est, self.random_slope, use_cluster
            )
            return self._build_model(data, design, large_stats, cluster_values, cluster_of)
        design = build_design(data, est)
        cluster_of = cluster_values = None
        if use_cluster:
            cl = data.frame[data.roles.cluster].to_numpy()[design.rows]
            first = np.r_[0, np.flatnonzero(np.diff(design.group)) + 1]
            cl_per_part = cl[first]
            cluster_values, cluster_of = np.unique(cl_per_part, return_inverse=True)
            cluster_values = list(cluster_values)
        return self._build_model(data, design, None, cluster_values, cluster_of)

    def _build_model(
        self,
        data: Any,
        design: Any,
        large_stats: Any,
        cluster_values: list | None,
        cluster_of: np.ndarray | None,
    ) -> BuiltModel:
        import pymc as pm
        import pytensor.tensor as pt

        large = large_stats is not None
        y = None if large else design.y
        if self.family == "bernoulli" and not np.isin(y, (0.0, 1.0)).all():
            col = data.roles.outcome
            raise OutcomeTypeError(
                f"Column '{col}' (outcome) must be 0/1 for family='bernoulli'; "
                f"{int((~np.isin(y, (0.0, 1.0))).sum())} analysed rows are not.",
                column=col,
            )
        pri = resolve_priors(
            self.priors,
            y,
            None if large else design.G,
            design.g_names,
            None if large else design.F,
            self.family,
            moments=design.moments if large else None,
        )
        collapsed = self.family == "gaussian" and self.method == "collapsed"
        # the collapsed model builds its statistics block by block: X is never held whole
        X = None if large or collapsed else design.X
        effect_names = design.effect_names
        at = None
        if self.random_slope and not large:
            at = (design.a_index == 1).astype(float) - design.num[:, 1]
        use_cluster = cluster_of is not None
        coords = {
            "control_term": design.g_names,
            "term": effect_names,
            "participant": list(design.group_values),
        }
        if use_cluster:
            coords["cluster"] = [str(c) for c in cluster_values]
        spline = np.array([n.split(":", 1)[-1].startswith(SPLINE_PREFIX) for n in effect_names])
        with pm.Model(coords=coords) as model:
            # sample in a centred parameterization (columns centred within the control block and
            # within each effect block), report alpha and beta on the data scale
            sh = _Shared()
            if not spline.any() and all(
                pri[k]["dist"] == "normal" for k in ("intercept", "alpha", "beta")
            ):
                # all coefficients in one vector RV: a smaller graph compiles faster
                alpha_c, rebuild_a, beta_raw, Tb, rebuild_b = self._coef_vector(
                    pri, design.g_names, len(effect_names), sh
                )
            else:
                alpha_c, rebuild_a = self._alpha(pri, design.g_names, sh)
                beta_raw, Tb, rebuild_b = self._beta(pri, effect_names, spline, sh)
            # theta = T raw: centring and the spline construction are linear maps, so alpha and
            # beta are rebuilt from the raw draws after sampling (no Deterministics to compile)
            T = _theta_map(design, Tb)
            raw = pt.concatenate([alpha_c, beta_raw])
            theta = pt.dot(sh("theta_map", T.ravel()).reshape(T.shape), raw)
            scale_names = ["sd_b"]
            scale_names += ["sd_u"] if self.random_slope else []
            scale_names += ["sd_c"] if use_cluster else []
            scale_names += ["sigma"] if self.family == "gaussian" else []
            if all(pri[n]["dist"] == "halfnormal" for n in scale_names):
                vec = pm.HalfNormal(
                    "scales",
                    sigma=sh("scales.sigma", [pri[n]["sigma"] for n in scale_names]),
                    shape=len(scale_names),
                )
                sc = {n: vec[k] for k, n in enumerate(scale_names)}
            else:
                sc = {n: sh.rv(n, pri[n]) for n in scale_names}
                scale_names = []
            sd_b, sd_u, sd_c = sc["sd_b"], sc.get("sd_u"), sc.get("sd_c")
            rho = None
            if self.correlated:
                eta = pri["corr"]["eta"]
                r01 = pm.Beta("rho01", eta, eta)  # LKJ(eta) marginal for a 2x2 correlation
                rho = pm.Deterministic("rho", 2.0 * r01 - 1.0)
            stats = None
            if self.family == "gaussian" and self.method == "collapsed":
                from hte_mrt.estimators.bayes._op import collapsed_logp_op
                from hte_mrt.estimators.bayes.collapsed import (
                    collapsed_stats_design,
                    packed_data,
                )

                sigma = sc["sigma"]
                if large:
                    stats = large_stats
                else:
                    stats = collapsed_stats_design(
                        design,
                        at if at is not None else np.zeros(len(y)),
                        cluster_of,
                        coef_names=[f"control:{n}" for n in design.g_names] + effect_names,
                    )
                # all statistics travel in one shared vector: the compiled kernel is data-free
                packed = sh.add_data("collapsed_data", packed_data(stats))
                zero = pt.constant(0.0)
                pm.Potential(
                    "loglik",
                    collapsed_logp_op(
                        packed, theta, sigma, sd_b, sd_u if sd_u is not None else zero, rho, sd_c
                    ),
                )
            else:
                mu = pt.dot(pt.as_tensor(X), theta)
                zb = pm.Normal("b_raw", 0.0, 1.0, dims="participant")
                if rho is not None:
                    zu = pm.Normal("u_raw", 0.0, 1.0, dims="participant")
                    b = pm.Deterministic("b", sd_b * zb, dims="participant")
                    u = pm.Deterministic(
                        "u", sd_u * (rho * zb + pt.sqrt(1 - rho**2) * zu), dims="participant"
                    )
                else:
                    b = pm.Deterministic("b", sd_b * zb, dims="participant")
                    u = None
                    if sd_u is not None:
                        zu = pm.Normal("u_raw", 0.0, 1.0, dims="participant")
                        u = pm.Deterministic("u", sd_u * zu, dims="participant")
                mu = mu + b[design.group]
                if u is not None:
                    mu = mu + u[design.group] * at
                if sd_c is not None:
                    zc = pm.Normal("c_raw", 0.0, 1.0, dims="cluster")
                    c = pm.Deterministic("c", sd_c * zc, dims="cluster")
                    mu = mu + c[cluster_of][design.group]
                if self.family == "gaussian":
                    pm.Normal("y", mu, sc["sigma"], observed=y)
                else:
                    # the outcome as shared data: a refit to a new outcome on the same design
                    # (simulation studies, SBC) reuses the compiled model
                    pm.Bernoulli("y", logit_p=mu, observed=sh.add_data("y_obs", y))
        built_map, built_rebuild = T, rebuild_a + rebuild_b
        key = (
            self._model_key(),
            tuple(design.g_names),
            tuple(effect_names),
            use_cluster,
            sh.layout(),
        )
        cacheable = stats is not None
        if stats is None and self.family == "bernoulli":
            # X, the participant and cluster indices and the slope covariate are constants of
            # this graph: a compiled model is reused only for the same design (a digest)
            h = hashlib.sha256()
            for arr in (X, design.group, at, cluster_of):
                if arr is not None:
                    a = np.ascontiguousarray(arr)
                    h.update(str((a.dtype, a.shape)).encode())
                    h.update(a.tobytes())
            key = (*key, len(y), h.hexdigest())
            cacheable = True
        return BuiltModel(
            model,
            design,
            pri,
            self.config(),
            stats,
            at,
            cluster_of,
            cluster_values,
            sh,
            key,
            built_map,
            built_rebuild,
            scale_names,
            cacheable,
        )

    @staticmethod
    def _coef_vector(pri: dict, g_names: list[str], n_beta: int, sh: _Shared):
        """Intercept, controls and effects (all Normal priors) as one RV ``theta_raw``."""
        import pymc as pm

        others = [n for n in g_names if n != "Intercept"]
        a_mu = np.resize(np.asarray(pri["alpha"]["mu"], dtype=float), max(1, len(others)))
        a_sd = np.resize(np.asarray(pri["alpha"]["sigma"], dtype=float), max(1, len(others)))
        mu, sd, j = [], [], 0
        for n in g_names:
            if n == "Intercept":
                mu.append(float(pri["intercept"]["mu"]))
                sd.append(float(pri["intercept"]["sigma"]))
            else:
                mu.append(a_mu[j])
                sd.append(a_sd[j])
                j += 1
        mu += list(np.resize(np.asarray(pri["beta"]["mu"], dtype=float), n_beta))
        sd += list(np.resize(np.asarray(pri["beta"]["sigma"], dtype=float), n_beta))
        raw = pm.Normal(
            "theta_raw", sh("theta_raw.mu", mu), sh("theta_raw.sigma", sd), shape=len(mu)
        )
        q = len(g_names)
        rebuild_a = [("theta_raw", k, None) for k in range(q)]
        rebuild_b = [("theta_raw", q + k, None) for k in range(n_beta)]
        return raw[:q], rebuild_a, raw[q:], np.eye(n_beta), rebuild_b

    @staticmethod
    def _alpha(pri: dict, g_names: list[str], sh: _Shared):
        import pytensor.tensor as pt

        others = [n for n in g_names if n != "Intercept"]
        raw = sh.rv("alpha_raw", pri["alpha"], n=len(others)) if others else None
        elems, rebuild, j = [], [], 0
        for n in g_names:
            if n == "Intercept":
                elems.append(sh.rv("intercept", pri["intercept"]))
                rebuild.append(("intercept", None, None))
            else:
                elems.append(raw[j])
                rebuild.append(("alpha_raw", j, None))
                j += 1
        return pt.stack(elems), rebuild

    @staticmethod
    def _beta(pri: dict, names: list[str], spline: np.ndarray, sh: _Shared):
        """Raw effect parameters r_b (pytensor), the map beta_c = Tb r_b, and how to rebuild r_b
        from posterior draws: a list of (variable, index, multiplier variable or None)."""
        import pymc as pm
        import pytensor.tensor as pt

        spec = dict(pri["beta"])
        n = len(names)
        if not spline.any():
            raw = sh.rv("beta_c", spec, n=n)
            return raw, np.eye(n), [("beta_c", j, None) for j in range(n)]
        sig = np.resize(np.asarray(spec.get("sigma", 1.0), dtype=float), n)
        lin_idx, sp_idx = np.flatnonzero(~spline), np.flatnonzero(spline)
        parts, cols, rebuild = [], [], []
        if len(lin_idx):
            lin_spec = {**spec, "sigma": sig[lin_idx]} if "sigma" in spec else spec
            parts.append(sh.rv("beta_linear", lin_spec, n=len(lin_idx)))
            for j, row in enumerate(lin_idx):
                c = np.zeros(n)
                c[row] = 1.0
                cols.append(c)
                rebuild.append(("beta_linear", j, None))
        # P-spline in mixed-model form: gamma = N a + P (smooth_sd z), where N spans the null
        # space of the second-difference penalty (level, slope over the basis index) and P the
        # eigen-scaled penalized directions, so gamma' D'D gamma = smooth_sd^2 z'z (mgcv-style;
        # far better conditioned for NUTS than a cumulative-sum random walk).
        null, pen = _pspline_bases(len(sp_idx))
        a = pm.Normal(
            "spline_null", 0.0, sh("spline_null_sd", sig[sp_idx].max()), shape=null.shape[1]
        )
        parts.append(a)
        for j in range(null.shape[1]):
            c = np.zeros(n)
            c[sp_idx] = null[:, j]
            cols.append(c)
            rebuild.append(("spline_null", j, None))
        if pen.shape[1]:
            smooth_sd = sh.rv("smooth_sd", pri["smooth_sd"])
            z = pm.Normal("spline_z", 0.0, 1.0, shape=pen.shape[1])
            parts.append(smooth_sd * z)
            for j in range(pen.shape[1]):
                c = np.zeros(n)
                c[sp_idx] = pen[:, j]
                cols.append(c)
                rebuild.append(("spline_z", j, "smooth_sd"))
        return pt.concatenate(parts), np.column_stack(cols), rebuild

    # ------------------------------------------------------------------ fitting
    def fit(
        self, data: MRTData | LargeMRTData, estimand: ExcursionEffect | None = None
    ) -> BayesResult:
        """Sample the posterior of the excursion effect.

        Parameters
        ----------
        data : MRTData or LargeMRTData
            The trial; a partitioned one (:meth:`hm.MRTData.from_parquet
            <hte_mrt.MRTData.from_parquet>`, collapsed Gaussian models only) has its
            per-participant statistics computed on its Dask cluster.
        estimand : ExcursionEffect, optional
            Take the moderators, controls, lag and numerator from this estimand (formulas given
            to the constructor as well must agree with it).

        Returns
        -------
        BayesResult
            The posterior; ``table()`` has the columns term, estimate (posterior mean), se
            (posterior sd), lcl, ucl, pr_positive, r_hat, ess_bulk, ess_tail.

        Warns
        -----
        ConvergenceWarning
            On divergences, R-hat > 1.01, low effective sample sizes or low BFMI.
        """
        import pymc as pm

        from hte_mrt.estimators.bayes.posterior import posterior_result

        check_mrt_data(data, "BayesMRT.fit", large=True)
        model = self._resolve(estimand)
        built = model._build(data)
        target_accept = model.target_accept
        if target_accept is None:
            target_accept = 0.97 if "smooth_sd" in built.model.named_vars else 0.9
        nuts_sampler = model.sampler
        if nuts_sampler == "auto":
            nuts_sampler = "nutpie" if find_spec("nutpie") else "pymc"
        draws, tune, chains = model.draws, model.tune, model.chains
        # seed=None: draw one from fresh entropy and record it (result.meta["seed"]), so an
        # unseeded run can still be repeated; the configuration keeps None
        seed = model.seed if model.seed is not None else fresh_seed()
        if nuts_sampler == "nutpie" and built.cacheable:
            idata = _sample_nutpie_cached(
                built, draws, tune, chains, seed, model.progress, target_accept, model.n_jobs
            )
        else:
            kwargs: dict[str, Any] = {}
            if nuts_sampler == "pymc":
                kwargs["cores"] = model.n_jobs or min(chains, os.cpu_count() or 1)
            elif model.n_jobs is not None:
                kwargs["cores"] = model.n_jobs
            with built.model, warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*tune.*", category=UserWarning)
                idata = pm.sample(
                    draws=draws,
                    tune=tune,
                    chains=chains,
                    random_seed=seed,
                    nuts_sampler=nuts_sampler,
                    progressbar=model.progress,
                    nuts={"target_accept": target_accept},
                    compute_convergence_checks=False,
                    **kwargs,
                )
        result = posterior_result(
            idata, built, seed=seed, sampler=nuts_sampler, target_accept=target_accept
        )
        result.warn_if_unreliable()
        return result

    def prior_predictive(
        self, data: MRTData, estimand: ExcursionEffect | None = None, *, draws: int = 200
    ) -> xr.Dataset:
        """Draws of the effect terms and of y from the prior (row level).

        Parameters
        ----------
        data : MRTData
            The trial (its design and outcome scale set the default priors).
        estimand : ExcursionEffect, optional
            As in :meth:`fit`.
        draws : int
            Prior draws (the model's ``seed`` makes them reproducible).

        Returns
        -------
        xarray.Dataset
            ``y`` (draw, row) and ``beta`` (draw, term); attributes ``observed_mean`` and
            ``observed_sd`` of the analysed outcome.
        """
        import pymc as pm

        _check_int("draws", draws, 1)
        check_mrt_data(data, "BayesMRT.prior_predictive")
        model = self._resolve(estimand)
        built = model._build(data)
        rng = np.random.default_rng(model.seed)
        with built.model, warnings.catch_warnings():
            # the Potential is the (collapsed) likelihood: y is simulated below, row by row
            warnings.filterwarnings("ignore", message=".*Potentials.*", category=UserWarning)
            prior = pm.sample_prior_predictive(draws=draws, random_seed=rng)
        pr = prior["prior"] if "prior" in prior.children else prior
        prd = built.split_scales({k: pr[k].values[0] for k in pr.data_vars})
        alpha, beta = built.theta_draws(prd)
        theta = np.concatenate([alpha, beta], axis=1)
        d = built.design
        mu = theta @ d.X.T
        sd_b = np.asarray(prd["sd_b"]).reshape(draws)
        mu = mu + (sd_b[:, None] * rng.standard_normal((draws, d.n_groups)))[:, d.group]
        if "sd_u" in prd:
            sd_u = np.asarray(prd["sd_u"]).reshape(draws)
            mu = (
                mu
                + (sd_u[:, None] * rng.standard_normal((draws, d.n_groups)))[:, d.group] * built.at
            )
        if "sd_c" in prd and built.cluster_of is not None:
            sd_c = np.asarray(prd["sd_c"]).reshape(draws)
            cl = built.cluster_of[d.group]
            mu = (
                mu
                + (sd_c[:, None] * rng.standard_normal((draws, len(built.cluster_values))))[:, cl]
            )
        if self.family == "gaussian":
            sigma = np.asarray(prd["sigma"]).reshape(draws)
            ysim = mu + sigma[:, None] * rng.standard_normal(mu.shape)
        else:
            ysim = (rng.random(mu.shape) < 1 / (1 + np.exp(-mu))).astype(float)
        return xr.Dataset(
            {
                "y": (("draw", "row"), ysim),
                "beta": (("draw", "term"), beta),
            },
            coords={"term": d.effect_names},
            attrs={"observed_mean": float(d.y.mean()), "observed_sd": float(d.y.std())},
        )


def fresh_seed() -> int:
    """A seed from fresh OS entropy (below 2**31, valid for every sampler)."""
    return int(np.random.SeedSequence().generate_state(1)[0] >> 1)


# Reproducibility of the cache below (tests/test_reproducibility.py): a cached compiled model
# holds no random state. nutpie seeds each chain from (seed, chain index) and jitters the
# chain's initial point with a seed drawn from that chain's stream (the PyMC initial-point
# function is reseeded on every call, under a lock), and every data-dependent constant is
# overwritten by ``set_data`` before sampling. A refit through a warm cache therefore gives
# the same draws, bit for bit, as a cold compile, whatever ran before and however the chain
# threads are scheduled.
_COMPILED: dict[tuple, Any] = {}
_COMPILED_MAX = 8
_COMPILED_LOCK = threading.Lock()
PARALLEL_CHAINS_MIN_PARTICIPANTS = 400
NUMBA_MIN_PARTICIPANTS = 10_000


def _sample_nutpie_cached(built, draws, tune, chains, seed, progress, target_accept, n_jobs=None):
    """nutpie sampling of a collapsed or Bernoulli model, reusing a compiled model of the same key.

    The log-density is compiled by PyTensor (:mod:`._nutpie`; kernels cached on disk, so a
    new process pays ~0.5 s instead of ~9 s of numba compilation). Every data-dependent
    constant is a named shared variable (:class:`_Shared`), so a cached compiled model is
    refitted by overwriting them (no recompilation).
    """
    import nutpie

    from hte_mrt.estimators.bayes._nutpie import compile_c

    n_part = len(built.design.group_values)
    # very large trials: the kernel dominates each evaluation, so nutpie's numba cfunc (no
    # Python in the loop, ~9 s to compile) beats the PyTensor function's per-call overhead
    numba_path = n_part >= NUMBA_MIN_PARTICIPANTS
    key = (*built.key, numba_path)
    compiled = _COMPILED.get(key)
    if compiled is None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)
            compiled = None if numba_path else compile_c(built.model)
            if compiled is None:  # numba cfunc path (also: nutpie without layout helpers)
                compiled = nutpie.compile_pymc_model(built.model, freeze_model=False)
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.pop(next(iter(_COMPILED)))
        _COMPILED[key] = compiled
    kw = dict(draws=draws, tune=tune, chains=chains, seed=seed, progress_bar=progress,
              save_warmup=False, target_accept=target_accept)  # fmt: skip
    if not hasattr(compiled, "set_data"):  # numba cfunc model: data bound by with_data
        return nutpie.sample(compiled.with_data(**built.shared.values()), cores=n_jobs, **kw)
    # The cached functions' shared data are overwritten per fit: one such fit at a time.
    # Python-callable chains share the GIL (only the likelihood kernel releases it), so threads
    # pay off only when the kernel dominates; each chain has its own seeded stream, so the
    # draws do not depend on the thread count.
    with _COMPILED_LOCK:
        compiled.set_data(built.shared.values())
        cores = n_jobs or (1 if n_part < PARALLEL_CHAINS_MIN_PARTICIPANTS else None)
        return nutpie.sample(compiled.nutpie_model(), cores=cores, **kw)


def _pspline_bases(K: int) -> tuple[np.ndarray, np.ndarray]:
    """Null-space and scaled range-space bases of the second-difference penalty on K coefs."""
    if K <= 2:
        return np.eye(K), np.zeros((K, 0))
    D = np.diff(np.eye(K), n=2, axis=0)
    lam, U = np.linalg.eigh(D.T @ D)
    null = U[:, :2]  # eigenvalues 0: constant and linear in the index
    pen = U[:, 2:] / np.sqrt(lam[2:])
    return null, pen


def _theta_map(design: Design, Tb: np.ndarray) -> np.ndarray:
    """T with theta = T [alpha_c; r_b]: uncentring of the control and effect blocks.

    The sampler sees columns centred within the control block and within each effect block
    (x_j = x_cj + m_j), so an intercept absorbs -sum_j m_j coef_j; beta_c = Tb r_b.
    """
    moments = getattr(design, "moments", None)  # partitioned trials: reduced column means
    q = len(design.g_names)
    Ug = np.eye(q)
    if "Intercept" in design.g_names:
        i0 = design.g_names.index("Intercept")
        m = np.array(moments["G_mean"]) if moments else design.G.mean(axis=0)
        m[i0] = 0.0
        Ug[i0] -= m
    pe = Tb.shape[0]
    Uf = np.eye(pe)
    if "Intercept" in design.f_names:
        p = len(design.f_names)
        j0 = design.f_names.index("Intercept")
        m = np.array(moments["F_mean"]) if moments else design.F.mean(axis=0)
        m[j0] = 0.0
        for k in range(len(design.levels)):
            Uf[k * p + j0, k * p : (k + 1) * p] -= m
    T = np.zeros((q + pe, q + Tb.shape[1]))
    T[:q, :q] = Ug
    T[q:, q:] = Uf @ Tb
    return T
