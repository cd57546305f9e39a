r"""Tree-ensemble (BART / BCF) learners with a cluster random intercept.

All three learners fit, to the trial's individuals :math:`i` in clusters :math:`j`,

.. math::

    Y_{ij} = \mu(x_{ij}, v_j) + z_j\,\tau(x_{ij}, v_j) + b_j + e_{ij},
    \qquad b_j \sim N(0, \sigma_b^2),\; e_{ij} \sim N(0, \sigma^2),

with :math:`\mu` and :math:`\tau` (or the whole regression function) given sum-of-trees priors.
The estimand is the CATE :math:`\tau(x, v) = E[Y(1) - Y(0) \mid x, v]`, marginal over
:math:`b_j`; predictions are for new clusters (:math:`b = 0`), so they work for any rows.

* :class:`BARTMixed` (``"bart"``): an S-learner, one BART :math:`f(w, z)` of the features and the
  arm, :math:`\tau(w) = f(w, 1) - f(w, 0)` draw by draw (PyMC + pymc-bart).
* :class:`BayesianCausalForestMixed` (``"bcf_pymc"``): multilevel Bayesian causal forest, two BART
  ensembles :math:`\mu(w) + z\,\tau(w)` in one PyMC model, the :math:`\tau` ensemble smaller and
  more strongly regularized (Hahn, Murray & Carvalho 2020).
* :class:`StochtreeBCF` (``"bcf_stochtree"``): stochtree's ``BCFModel`` with an additive random
  intercept per cluster (fast C++ sampler; grow-from-root warm start then MCMC).

pymc-bart notes (0.13, Rust backend ``bartrs``): the PGBART step is subclassed here so that
(i) its particle-Gibbs random numbers are seeded from the chain's generator (upstream always
uses seed 0), and (ii) chains sampled one after another (PyMC's ``cores=1``) each keep their
own trees (upstream only stores the first chain's). Posterior trees are evaluated at new rows with
``bartrs.PosteriorSampler``, draw by draw, aligned with the other posterior draws.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from typing import Any, ClassVar, Literal

import numpy as np

from hte_mrt.errors import ConvergenceWarning, DesignError, EstimationError
from hte_mrt.estimators.learners.base import CRTLearner, check_int, marginal_cluster_loglik

_CHUNK = 200  # posterior draws evaluated at once when predicting from stored trees
# pymc-bart sizes each tree for the depth at which a split has prior probability 1%, but its Rust
# sampler panics (instead of refusing) when a tree would grow past that depth: with a stump
# prior (alpha 0.25, beta 3) that depth is 1 and sampling crashes. Trees get room for this depth.
_MIN_DEPTH = 6


# ---------------------------------------------------------------------------------------------
# parameter checks
# ---------------------------------------------------------------------------------------------
def _float_param(obj: Any, name: str, lo: float, hi: float, *, open_lo: bool = True) -> float:
    value = getattr(obj, name)
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    ok = (v > lo if open_lo else v >= lo) and v < hi
    if not ok:
        bracket = "(" if open_lo else "["
        raise DesignError(
            f"{type(obj).__name__}: {name} must be a number in {bracket}{lo}, {hi}), got "
            f"{value!r}; pass a number in that range."
        )
    return v


# ---------------------------------------------------------------------------------------------
# pymc-bart plumbing
# ---------------------------------------------------------------------------------------------
def _seeded_pgbart_class() -> type:
    """PGBART that reseeds (and resets) its Rust particle-Gibbs sampler for every chain."""
    import numpy as np
    from bartrs import PGBART
    from pymc_bart.pymc_bart import PyBartSettings, PySampler

    class SeededPGBART(PGBART):
        name = "pgbart"

        def setup_chain(self, rng, tune: int, draws: int) -> None:  # type: ignore[override]
            rng = np.random.default_rng(rng)
            params = {
                **self._settings_params,
                "seed": int(rng.integers(2**63)),
                "n_draws": draws,  # pymc-bart's own settings key
                "max_depth": max(int(self._settings_params["max_depth"]), _MIN_DEPTH),
            }
            self._settings_params = params
            self.pg_bart = PySampler.init(
                x=np.asfortranarray(self.X),
                y=self.bart.Y,
                model=self.compiled_pymc_model.get_function_pointer(),
                settings=PyBartSettings(**params),
            )
            self._non_tune_steps = 0
            self._synced_all_trees = False
            self.tune = tune > 0
            super().setup_chain(rng, tune, draws)

    return SeededPGBART


def _dataset(node):
    """An xarray Dataset from a DataTree node (PyMC >= 6) or a Dataset."""
    return node.to_dataset() if hasattr(node, "to_dataset") else node


@contextmanager
def _quiet_pymc(progress: bool):
    """Silence PyMC's INFO chatter (step assignment, timings; ``progress`` shows the bar, not
    these) and the fork warning of the multiprocessing Manager that pymc-bart starts for every
    BART."""
    logger = logging.getLogger("pymc")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore",
                message=".*use of fork.* may lead to deadlocks",
                category=DeprecationWarning,
            )
            yield
    finally:
        logger.setLevel(level)


class _PyMCBART(CRTLearner):
    """Shared machinery of the PyMC + pymc-bart learners (sampling, trees, diagnostics)."""

    bayesian: ClassVar[bool] = True
    _continuous: ClassVar[tuple[str, ...]] = ("sigma", "sd_b")

    def _check_common(self) -> None:
        for p, lo in (("draws", 1), ("tune", 0), ("chains", 1), ("num_particles", 2)):
            check_int(type(self).__name__, p, getattr(self, p), lo)
        if self.random_intercept not in ("noncentred", "marginal"):
            raise DesignError(
                f"{type(self).__name__}: random_intercept must be 'noncentred' or 'marginal', "
                f"got {self.random_intercept!r}; pass one of those."
            )

    def _sample(self, model, bart_names: list[str], rng: np.random.Generator):
        import pymc as pm

        PG = _seeded_pgbart_class()
        seed = int(rng.integers(2**31 - 1))
        with model, _quiet_pymc(bool(self.progress)):
            steps = [PG([model[n]], num_particles=int(self.num_particles)) for n in bart_names]
            try:
                idata = pm.sample(
                    draws=int(self.draws), tune=int(self.tune), chains=int(self.chains), cores=1,
                    step=steps, random_seed=seed, progressbar=bool(self.progress),
                    compute_convergence_checks=False, var_names=list(self._continuous),
                )  # fmt: skip
            except BaseException as exc:
                # Rust panics surface as pyo3_runtime.PanicException (a BaseException)
                panic = type(exc).__name__ == "PanicException"
                if not (panic or isinstance(exc, (ValueError, RuntimeError, FloatingPointError))):
                    raise
                raise EstimationError(f"{type(self).__name__}: sampling failed ({exc}).") from exc
        self._samplers = {n: self._take_trees(model[n]) for n in bart_names}
        return idata

    def _take_trees(self, rv) -> list:
        """Prediction-only samplers (one per chain) from the trees stored on a BART variable."""
        from pymc_bart.pymc_bart import PosteriorSampler

        op = rv.owner.op
        history = list(op.all_trees)
        if len(history) != int(self.chains):
            raise EstimationError(
                f"{type(self).__name__}: pymc-bart stored trees for {len(history)} of "
                f"{self.chains} chains; the posterior trees cannot be evaluated at new rows."
            )
        samplers = [
            PosteriorSampler.from_history(b, base, op.m, op.n_outputs) for base, b in history
        ]
        # each BART variable owns a multiprocessing Manager (a server process): stop it
        try:
            op.all_trees._manager.shutdown()
        except Exception:  # pragma: no cover - private API of multiprocessing proxies
            pass
        return samplers

    def _forest(self, name: str, X: np.ndarray) -> np.ndarray:
        """(n_draws, n) posterior draws of the sum of trees ``name`` at rows ``X``, chain-major
        (the order of the posterior draws of the other parameters)."""
        X = np.ascontiguousarray(np.asarray(X, dtype=np.float64))
        out = []
        for s in self._samplers[name]:
            for start in range(0, s.n_draws, _CHUNK):
                idx = list(range(start, min(start + _CHUNK, s.n_draws)))
                out.append(np.asarray(s.sample_posterior(X, idx, None))[:, 0, :])
        return np.concatenate(out, axis=0)

    def _diagnose(self, idata) -> None:
        import arviz as az

        post = _dataset(idata["posterior"])
        names = [v for v in self._continuous if v in post]
        ss = _dataset(idata["sample_stats"])
        div = int(ss["diverging"].values.sum()) if "diverging" in ss else 0
        rhat = max(float(az.rhat(post[names])[v].max()) for v in names)
        self.diagnostics_ = {"max_r_hat": rhat, "divergences": div}
        if div:
            warnings.warn(
                f"{div} divergent transitions in {self.name} (NUTS on sigma, sd_b and the cluster "
                "effects): run more tune iterations.",
                ConvergenceWarning,
                stacklevel=4,
            )
        if int(self.chains) > 1 and rhat > 1.01:
            warnings.warn(
                f"R-hat of sigma / sd_b up to {rhat:.3f} (> 1.01) in {self.name}: run more draws "
                "and tune.",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _store_continuous(self, idata) -> None:
        post = _dataset(idata["posterior"])
        self.idata_ = idata
        self.draws_ = {v: post[v].values.reshape(-1) for v in self._continuous if v in post}

    def _likelihood(self, mean, y: np.ndarray, cluster: np.ndarray, sd_y: float) -> None:
        """Add ``y ~ N(mean + b_j, sigma^2)`` with the cluster intercept ``b_j ~ N(0, sd_b^2)``
        and the priors ``sd_b, sigma ~ HalfNormal(sd_y)`` to the model in context.

        ``random_intercept="noncentred"``: ``b_j = sd_b * u_j``, ``u_j ~ N(0, 1)`` sampled by
        NUTS. ``"marginal"``: ``b_j`` integrated out in closed form (within a cluster the
        residuals are N(0, sigma^2 I + sd_b^2 11')), so the trees never condition on ``b``.
        """
        import pymc as pm

        _, cl = np.unique(cluster, return_inverse=True)
        K = int(cl.max()) + 1
        sd_b = pm.HalfNormal("sd_b", sd_y)
        sigma = pm.HalfNormal("sigma", sd_y)
        if self.random_intercept == "noncentred":
            u = pm.Normal("u", 0.0, 1.0, shape=K)
            pm.Normal("y", mean + (sd_b * u)[cl], sigma, observed=y)
            return
        pm.Potential("loglik", marginal_cluster_loglik(y - mean, cl, sigma, sd_b))

    def _tau(self, W: np.ndarray) -> np.ndarray:
        return self._tau_draws(W).mean(axis=0)

    def _check_fit_inputs(self, y: np.ndarray) -> float:
        sd = float(np.std(y))
        if not np.isfinite(sd) or sd <= 0:
            raise EstimationError(
                f"{type(self).__name__}: the outcome is constant; nothing to fit."
            )
        return sd


# ---------------------------------------------------------------------------------------------
# BART S-learner
# ---------------------------------------------------------------------------------------------
class BARTMixed(_PyMCBART):
    r"""S-learner BART with a cluster random intercept (PyMC + pymc-bart).

    .. math::

        y_{ij} \sim N\big(f(w_{ij}, z_j) + b_j,\ \sigma^2\big),\quad f \sim \text{BART}(m),\quad
        b_j = \sigma_b u_j,\ u_j \sim N(0, 1),\quad
        \sigma_b \sim \text{HalfNormal}(s_y),\ \sigma \sim \text{HalfNormal}(s_y),

    with :math:`s_y` the outcome's standard deviation and :math:`w = (x, v)` the encoded
    individual and cluster covariates. The CATE, draw by draw and for a new cluster
    (:math:`b = 0`):

    .. math:: \tau(w) = f(w, 1) - f(w, 0).

    The trees are sampled by particle Gibbs (PGBART), the continuous parameters by NUTS, in a
    compound step; chains run one after the other.

    Parameters
    ----------
    n_estimators
        Number of trees :math:`m`.
    draws, tune, chains
        Posterior draws kept per chain, tuning iterations per chain, number of chains.
    num_particles
        Particles of the particle-Gibbs tree sampler.
    alpha, beta
        Tree-depth prior: a node at depth :math:`d` splits with probability
        :math:`\alpha(1 + d)^{-\beta}`.
    random_intercept
        ``"noncentred"``: :math:`b_j = \sigma_b u_j` sampled with the other continuous
        parameters. ``"marginal"``: :math:`b_j` integrated out of the likelihood (cluster
        residuals :math:`N(0, \sigma^2 I + \sigma_b^2 11')`); slower per iteration but the
        trees do not condition on :math:`b`, and :math:`\sigma, \sigma_b` mix much better.
    seed
        Seed (same seed, same draws).
    progress
        Show PyMC's progress bar.

    Notes
    -----
    An S-learner's trees split on the arm only where that pays, so a small effect is shrunk
    toward 0 (regularization-induced confounding; Hahn, Murray & Carvalho 2020, the reason BCF
    gives tau its own forest). In the package's CRT study (``benchmarks/results/
    crt_study_pymc_bart``, first 65 replicates per scenario) its mean ATE sat 36-73% of the way
    from the truth to 0 (in the 11 scenarios with true ATE -0.14: mean -0.04 to -0.09) and
    its 95% CATE intervals covered 0.75-0.95. For effects and intervals prefer
    :class:`BayesianCausalForestMixed` or the additive mixed model.

    Examples
    --------
    A fit compiles a PyMC model (tens of seconds); here the learner is only set up:

    >>> import hte_mrt as hm
    >>> bart = hm.BARTMixed(n_estimators=20, draws=200, tune=200, seed=1)
    >>> bart.get_params()["n_estimators"], bart.bayesian
    (20, True)
    """

    name: ClassVar[str] = "bart"

    def __init__(
        self,
        n_estimators: int = 50,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 2,
        num_particles: int = 10,
        alpha: float = 0.95,
        beta: float = 2.0,
        random_intercept: Literal["noncentred", "marginal"] = "noncentred",
        seed: int | None = None,
        progress: bool = True,
    ) -> None:
        self.n_estimators = n_estimators
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.num_particles = num_particles
        self.alpha = alpha
        self.beta = beta
        self.random_intercept = random_intercept
        self.seed = seed
        self.progress = progress

    def _check_params(self) -> None:
        check_int(type(self).__name__, "n_estimators", self.n_estimators, 1)
        self._check_common()
        _float_param(self, "alpha", 0.0, 1.0)
        _float_param(self, "beta", 0.0, np.inf)

    def _fit(self, W, z, y, cluster, rng) -> None:
        import pymc as pm
        import pymc_bart as pmb

        self._check_params()
        sd_y = self._check_fit_inputs(y)
        Xz = np.column_stack([W, z]).astype(float)
        with _quiet_pymc(bool(self.progress)), pm.Model() as model:
            f = pmb.BART("f", Xz, y, m=int(self.n_estimators), alpha=float(self.alpha),
                         beta=float(self.beta))  # fmt: skip
            self._likelihood(f, y, cluster, sd_y)
        idata = self._sample(model, ["f"], rng)
        self._store_continuous(idata)
        self._diagnose(idata)

    def _tau_draws(self, W: np.ndarray) -> np.ndarray:
        n = len(W)
        X = np.vstack([np.column_stack([W, np.ones(n)]), np.column_stack([W, np.zeros(n)])])
        f = self._forest("f", X)
        return f[:, :n] - f[:, n:]

    def _mu(self, W: np.ndarray) -> np.ndarray:
        return self._forest("f", np.column_stack([W, np.zeros(len(W))])).mean(axis=0)

    def _outcome(self, W: np.ndarray, z: np.ndarray) -> np.ndarray:
        return self._forest("f", np.column_stack([W, z])).mean(axis=0)  # one pass, not three


# ---------------------------------------------------------------------------------------------
# multilevel BCF in PyMC
# ---------------------------------------------------------------------------------------------
class BayesianCausalForestMixed(_PyMCBART):
    r"""Multilevel Bayesian causal forest in one PyMC model (two pymc-bart ensembles).

    .. math::

        y_{ij} \sim N\big(\mu(w_{ij}) + z_j\,\tau(w_{ij}) + b_j,\ \sigma^2\big),\quad
        \mu \sim \text{BART}(m_\mu;\ 0.95, 2),\quad
        \tau \sim \text{BART}(m_\tau;\ \alpha_\tau, \beta_\tau),

    :math:`b_j = \sigma_b u_j`, :math:`u_j \sim N(0, 1)`,
    :math:`\sigma_b, \sigma \sim \text{HalfNormal}(s_y)`. The CATE is :math:`\tau(w)` (new
    cluster, :math:`b = 0`); :math:`\mu(w)` is the control-arm mean.

    The treatment ensemble follows BCF's regularization: fewer trees, a depth prior that favours
    stumps (default :math:`\alpha_\tau = 0.25, \beta_\tau = 3`, as BCF), and a leaf scale such
    that the prior sd of :math:`\tau(w)` is about :math:`s_y/\sqrt{2}` (as stochtree), centred
    at 0 (shrinkage toward no effect). pymc-bart calibrates an ensemble from its response
    argument (leaf sd :math:`\text{sd}(Y)/\sqrt m`, start at :math:`\bar Y`), so the
    :math:`\tau` ensemble is given a centred, rescaled outcome.

    Parameters
    ----------
    mu_trees, tau_trees
        Trees in the prognostic and treatment ensembles.
    tau_alpha, tau_beta
        Depth prior of the treatment ensemble.
    draws, tune, chains, num_particles, random_intercept, seed, progress
        As in :class:`BARTMixed`.

    Examples
    --------
    A fit compiles a PyMC model (tens of seconds); here the learner is only set up:

    >>> import hte_mrt as hm
    >>> bcf = hm.BayesianCausalForestMixed(mu_trees=50, tau_trees=20, draws=200, seed=1)
    >>> {k: bcf.get_params()[k] for k in ("mu_trees", "tau_trees", "draws")}
    {'mu_trees': 50, 'tau_trees': 20, 'draws': 200}
    """

    name: ClassVar[str] = "bcf_pymc"

    def __init__(
        self,
        mu_trees: int = 100,
        tau_trees: int = 50,
        tau_alpha: float = 0.25,
        tau_beta: float = 3.0,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 2,
        num_particles: int = 10,
        random_intercept: Literal["noncentred", "marginal"] = "noncentred",
        seed: int | None = None,
        progress: bool = True,
    ) -> None:
        self.mu_trees = mu_trees
        self.tau_trees = tau_trees
        self.tau_alpha = tau_alpha
        self.tau_beta = tau_beta
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.num_particles = num_particles
        self.random_intercept = random_intercept
        self.seed = seed
        self.progress = progress

    def _check_params(self) -> None:
        check_int(type(self).__name__, "mu_trees", self.mu_trees, 1)
        check_int(type(self).__name__, "tau_trees", self.tau_trees, 1)
        self._check_common()
        _float_param(self, "tau_alpha", 0.0, 1.0)
        _float_param(self, "tau_beta", 0.0, np.inf)

    def _fit(self, W, z, y, cluster, rng) -> None:
        import pymc as pm
        import pymc_bart as pmb

        self._check_params()
        sd_y = self._check_fit_inputs(y)
        # pseudo-response calibrating the tau ensemble: mean 0, sd s_y / sqrt(2)
        y_tau = (y - y.mean()) / np.sqrt(2.0)
        with _quiet_pymc(bool(self.progress)), pm.Model() as model:
            mu = pmb.BART("mu", W, y, m=int(self.mu_trees))
            tau = pmb.BART("tau", W, y_tau, m=int(self.tau_trees), alpha=float(self.tau_alpha),
                           beta=float(self.tau_beta))  # fmt: skip
            self._likelihood(mu + z * tau, y, cluster, sd_y)
        idata = self._sample(model, ["mu", "tau"], rng)
        self._store_continuous(idata)
        self._diagnose(idata)

    def _tau_draws(self, W: np.ndarray) -> np.ndarray:
        return self._forest("tau", W)

    def _mu(self, W: np.ndarray) -> np.ndarray:
        return self._forest("mu", W).mean(axis=0)


# ---------------------------------------------------------------------------------------------
# stochtree BCF
# ---------------------------------------------------------------------------------------------
class StochtreeBCF(CRTLearner):
    r"""Bayesian causal forest with a cluster random intercept (stochtree ``BCFModel``).

    .. math::

        y_{ij} = \mu(w_{ij}) + z_j\,\big(\tau_0 + t(w_{ij})\big) + b_j + e_{ij},\qquad
        b_j \sim N(0, \sigma_b^2),\ e_{ij} \sim N(0, \sigma^2),

    with :math:`\mu` and :math:`t` BART ensembles (stochtree's BCF priors: the treatment forest
    shallow and shrunk toward zero, :math:`\tau_0` a global effect) and :math:`b_j` stochtree's
    additive random effect (group = cluster, basis = 1). The CATE is
    :math:`\tau(w) = \tau_0 + t(w)` (stochtree's ``"cate"`` term), with no random effect: it is
    the effect for a new cluster, so any rows (seen or unseen clusters) can be predicted.

    The trial is randomized, so the known propensity (the share of treated clusters) is passed
    and no propensity model is fitted; being constant, it is not used as a covariate.

    Parameters
    ----------
    mu_trees, tau_trees
        Trees in the prognostic and treatment forests.
    num_gfr, tune, draws
        Grow-from-root warm-start iterations, MCMC burn-in (stochtree's ``num_burnin``) and
        kept MCMC draws (its ``num_mcmc``), per chain.
    chains
        Independent chains (each warm-started from its own grow-from-root forest; needs
        ``num_gfr >= chains``); draws are stacked chain by chain.
    seed
        Seed of stochtree's C++ generator (same seed, same draws).

    Examples
    --------
    >>> import hte_mrt as hm
    >>> data = hm.CRTSimulation(n_clusters=32).crt_data(seed=1)
    >>> bcf = hm.StochtreeBCF(mu_trees=20, tau_trees=10, num_gfr=5, tune=0, draws=20, chains=1,
    ...                       seed=1).fit(data)
    >>> res = bcf.cate()
    >>> res.draws.shape, res.interval
    ((20, 797), 'posterior')
    """

    name: ClassVar[str] = "bcf_stochtree"
    bayesian: ClassVar[bool] = True

    def __init__(
        self,
        mu_trees: int = 200,
        tau_trees: int = 50,
        num_gfr: int = 10,
        tune: int = 500,
        draws: int = 1000,
        chains: int = 2,
        seed: int | None = None,
    ) -> None:
        self.mu_trees = mu_trees
        self.tau_trees = tau_trees
        self.num_gfr = num_gfr
        self.tune = tune
        self.draws = draws
        self.chains = chains
        self.seed = seed

    def _check_params(self) -> None:
        for p, lo in (("mu_trees", 1), ("tau_trees", 1), ("num_gfr", 0), ("tune", 0),
                      ("draws", 1), ("chains", 1)):  # fmt: skip
            check_int(type(self).__name__, p, getattr(self, p), lo)
        if 0 < int(self.num_gfr) < int(self.chains):
            raise DesignError(
                f"StochtreeBCF: num_gfr ({self.num_gfr}) must be >= chains ({self.chains}) (each "
                "chain starts from its own grow-from-root forest), or 0; pass num_gfr >= chains "
                "or num_gfr=0."
            )

    def _fit(self, W, z, y, cluster, rng) -> None:
        from stochtree import BCFModel

        self._check_params()
        n = len(y)
        groups = np.asarray(cluster, dtype=np.int64)
        treated = np.unique(groups[z == 1])
        self.propensity_ = float(len(treated) / len(np.unique(groups)))
        self._group0 = int(groups[0])  # any training id: stochtree wants one even for b = 0
        model = BCFModel()
        try:
            model.sample(
                X_train=np.asarray(W, dtype=float), Z_train=np.asarray(z, dtype=float),
                y_train=np.asarray(y, dtype=float), propensity_train=np.full(n, self.propensity_),
                rfx_group_ids_train=groups, rfx_basis_train=np.ones((n, 1)),
                num_gfr=int(self.num_gfr), num_burnin=int(self.tune),
                num_mcmc=int(self.draws),
                general_params={
                    "random_seed": int(rng.integers(2**31 - 1)), "num_chains": int(self.chains),
                    "propensity_covariate": "none", "num_threads": 1,
                },
                prognostic_forest_params={"num_trees": int(self.mu_trees)},
                treatment_effect_forest_params={"num_trees": int(self.tau_trees)},
                random_effects_params={"model_spec": "custom"},
            )  # fmt: skip
        except (ValueError, RuntimeError) as exc:
            raise EstimationError(f"StochtreeBCF: stochtree failed ({exc}).") from exc
        self.model_ = model
        # stochtree's redundant parameterization: b_j = alpha * xi_j, xi_j ~ N(0, s2_xi), on the
        # standardized outcome scale
        rfx = model.rfx_container.extract_parameter_samples()
        sd_b = np.abs(rfx["alpha_samples"]).ravel() * np.sqrt(rfx["sigma_samples"].ravel())
        self.draws_ = {
            "sigma": np.sqrt(np.asarray(model.global_var_samples, dtype=float)),
            "sd_b": sd_b * float(model.y_std),
        }

    def _predict(self, W: np.ndarray, term: str) -> np.ndarray:
        n = len(W)
        # the "mu" and "cate" terms do not involve the random effect, but stochtree still asks
        # for group ids (and refuses unseen ones): pass a training id, i.e. predict b = 0
        out = self.model_.predict(
            X=np.asarray(W, dtype=float), Z=np.zeros(n), propensity=np.full(n, self.propensity_),
            rfx_group_ids=np.full(n, self._group0, dtype=np.int64), rfx_basis=np.ones((n, 1)),
            type="posterior", terms=term,
        )  # fmt: skip
        return np.asarray(out, dtype=float).reshape(n, -1).T

    def _tau_draws(self, W: np.ndarray) -> np.ndarray:
        return self._predict(W, "cate")

    def _tau(self, W: np.ndarray) -> np.ndarray:
        return self._tau_draws(W).mean(axis=0)

    def _mu(self, W: np.ndarray) -> np.ndarray:
        return self._predict(W, "mu").mean(axis=0)
