r"""Bayesian additive mixed model for CATEs in cluster-randomized trials (the default learner).

Model, on the standardized outcome :math:`\tilde y = (y - \bar y)/s_y` and standardized
features :math:`w` (individual and cluster covariates, encoded):

.. math::

    \tilde y_{ij} = \underbrace{a + w_{ij}'\beta + \sum_k f_k(w_{ijk})
        + \sum_{k<l} \eta_{kl} w_{ijk} w_{ijl}}_{\mu(w_{ij})}
        + z_j \underbrace{\Big(\tau_0 + w_{ij}'\gamma
        + \sum_{k \in T} g_k(w_{ijk})\Big)}_{\tau(w_{ij})}
        + b_j + e_{ij},
    \qquad b_j \sim N(0, \sigma_b^2),\; e_{ij} \sim N(0, \sigma^2).

* :math:`f_k, g_k` are penalized cubic B-splines in mixed-model form (the constant and linear
  parts are carried by the linear terms; the wiggly part has coefficients
  :math:`N(0, \lambda_k^2)` with the smoothness :math:`\lambda_k` learned).
* :math:`\eta_{kl}` are pairwise interactions in :math:`\mu` (standardized products),
  :math:`\eta_{kl} \sim N(0, s_\eta^2)` with one learned scale.
* Shrinkage on the treatment moderators (default, a regularized horseshoe with slab sd 1):
  :math:`\gamma_k \sim N(0, \tilde\ell_k^2)`,
  :math:`\tilde\ell_k^2 = s_\gamma^2\ell_k^2 / (1 + s_\gamma^2\ell_k^2)`,
  :math:`\ell_k \sim C^+(0, 1)`, :math:`s_\gamma \sim C^+(0, g_0)`,
  :math:`g_0 = p_0 / \max(p - p_0, 1) / \sqrt{K}` (Piironen & Vehtari 2017, with the K clusters
  as the sample size, p moderators and :math:`p_0 = \min(2, p/2)`; the max keeps a single
  moderator's scale at :math:`0.5/\sqrt{K}`): noise moderators are
  pulled to 0 and their intervals collapse, real ones escape through the heavy tails.
  ``shrinkage="global"`` instead uses one scale, :math:`\gamma_k \sim N(0, s_\gamma^2)`,
  :math:`s_\gamma \sim \text{HalfNormal}(0.5)`.
* Optionally (``prob_homogeneous`` :math:`= \pi_0 > 0`) a point mass on "no heterogeneity":
  with prior probability :math:`\pi_0` every moderator coefficient of :math:`\tau` is exactly
  0, so :math:`\tau(x, v) = \tau_0`; otherwise they follow the prior above. The indicator is
  summed out of the likelihood (a two-component mixture) and drawn exactly given each draw of
  the variance parameters; ``prob_homogeneous_`` is its posterior probability
  :math:`P(\tau \text{ constant} \mid y)`.

Every coefficient is Gaussian given the variance parameters
:math:`\theta = (\sigma, \sigma_b, s_\gamma, \ell, s_\eta, \lambda)`, and so is :math:`b`.
The variance parameters are therefore drawn alone, with the coefficients and the cluster
intercepts integrated out exactly: by default from a Laplace approximation of
:math:`p(\log\theta \mid y)` (``sampler="laplace"``,
:mod:`~hte_mrt.estimators.learners._bamm_laplace`; about a second), or by NUTS
(``sampler="nutpie"``). On TASSH the two give ATE -1.85 (-6.64, 2.73) and -1.79 (-6.47, 2.53)
mmHg, and posterior probabilities of no heterogeneity 0.32 and 0.31. The collapsed likelihood is
:math:`\tilde y \sim N(0, X D_\theta X' + \Sigma_\theta)`, :math:`\Sigma_\theta` block
compound-symmetric. The likelihood needs only :math:`X'X`, cluster sums of :math:`X` and
:math:`\tilde y` and one :math:`P \times P` Cholesky factor per evaluation (P coefficients);
the coefficients are then drawn exactly from their Gaussian conditional posterior for every
draw of :math:`\theta` (Rao-Blackwellised, no funnel geometry). The data enter the compiled
log-density only through the likelihood Op and one shared scale, so later fits of the same
structure (same features, splines and priors; any data) reuse it instead of recompiling.

The CATE :math:`\tau(x, v) = s_y(\tau_0 + w'\gamma + \sum_{k \in T} g_k(w_k))` does not involve
:math:`b_j`: it is defined for new clusters. Priors (standardized scale): :math:`a \sim N(0, 5^2)`,
:math:`\beta \sim N(0, 1)`, :math:`\tau_0 \sim N(0, s_0^2)` with :math:`s_0 = 1` by default
(``ate_prior_sd``), :math:`\sigma \sim \text{HalfNormal}(1)`,
:math:`\sigma_b \sim \text{HalfNormal}(0.5)`, :math:`s_\eta \sim \text{HalfNormal}(0.25)`,
:math:`\lambda_k \sim \text{HalfNormal}(0.5)` (mu)
and :math:`\text{HalfNormal}(0.25)` (tau).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import ClassVar, Literal

import numpy as np

from hte_mrt.errors import DesignError
from hte_mrt.estimators.bayes.model import _pspline_bases
from hte_mrt.estimators.learners._bamm_op import (
    CollapsedAMMLogp,
    SufficientStats,
    draw_coefficients,
    mixture_value_and_grad,
)
from hte_mrt.estimators.learners.base import CRTLearner, check_int

LAM_TAU_SCALE = 0.1
"""Prior scale of the smoothness of tau's spline terms (half-normal, standardized outcome)."""
ETA_TAU_SCALE = 0.1
"""Prior scale of the one shrinkage scale of tau's interaction terms (half-normal)."""


class _Spline:
    """Cubic B-spline basis on equally spaced knots over the training range, reduced to the
    penalized (wiggly) part of a second-difference penalty, centred on the training rows."""

    def __init__(self, x: np.ndarray, n_basis: int) -> None:
        lo, hi = float(np.min(x)), float(np.max(x))
        k = 3
        inner = np.linspace(lo, hi, n_basis - k + 1)
        step = inner[1] - inner[0]
        self.knots = np.r_[lo - step * np.arange(k, 0, -1), inner, hi + step * np.arange(1, k + 1)]
        self.lo, self.hi = lo, hi
        # range space of the second-difference penalty, scaled: coefficients ~ N(0, s^2)
        self.P = _pspline_bases(n_basis)[1]
        self.centre = 0.0
        self.centre = self.basis(x).mean(axis=0)

    def basis(self, x: np.ndarray) -> np.ndarray:
        from scipy.interpolate import BSpline

        xc = np.clip(x, self.lo, self.hi)  # constant extrapolation of the wiggly part
        B = BSpline.design_matrix(xc, self.knots, 3).toarray()
        return B @ self.P - self.centre


class BayesianAdditiveMixedModel(CRTLearner):
    """Additive mixed model with linear, spline and interaction terms for mu, linear (and
    optionally spline) moderators of tau with shrinkage, and a cluster random intercept; the
    sampler runs on the variance parameters only (see the module docstring).

    Parameters
    ----------
    smooth
        Features with a spline term in mu: ``"auto"`` (numeric features, individual or cluster,
        with at least 10 distinct values in training), a list of feature names, or ``None``.
    smooth_tau
        Also give those features a spline term in tau (default True; the smoothness scale of
        each has a half-normal prior with scale 0.1, so tau stays near linear unless the data
        say otherwise). False: linear moderators only.
    interactions
        Pairwise interactions of the features in mu, with one learned shrinkage scale
        (``"auto"``: when there are at most 12 features; True / False to force).
    interactions_tau
        Pairwise interaction terms in tau with one learned scale (half-normal prior, scale
        0.1): False (default), True / ``"auto"`` (all pairs; "auto" at most 12 features) or
        ``"cross"`` (only individual x cluster covariate pairs). On the package's randomized
        CRT benchmark they cost more PEHE on trials without such terms than they gained on
        trials with them, so they are off by default.
    shrinkage, global_scale
        Prior on tau's linear moderators: ``"horseshoe"`` (default; ``global_scale`` the scale
        of its global half-Cauchy, ``"auto"`` for g0 in the module docstring) or ``"global"``
        (one half-normal scale).
    n_basis
        B-spline basis size per smooth term (the penalized part has ``n_basis - 2`` columns).
    prob_homogeneous
        Prior probability that tau has no moderators at all (default 0.25; 0: no such point
        mass). The posterior can then put its weight on a constant effect, whose CATE
        intervals are the ATE's, and ``prob_homogeneous_`` reports the posterior probability of
        no heterogeneity. On the package's randomized benchmark of 100 CRT designs
        (``benchmarks/results/crt_random/candidates.md``) 0.25 lowered the PEHE below stochtree
        BCF's in 68% of designs (0: 54%, 0.5: 70%) with median CATE coverage 0.967 (0: 0.978,
        0.5: 0.947); the price is coverage where heterogeneity is real but weak (designs
        covering at least 0.90: 77%; 0: 82%, 0.5: 71%).
    ate_prior_sd
        Prior sd :math:`s_0` of :math:`\tau_0`, the CATE at the covariate means, in outcome sds
        (default 1: weakly informative). A small value is a sceptical prior (Spiegelhalter,
        Freedman & Parmar 1994) that pulls the treatment effect toward 0; it trades bias in
        the ATE for a smaller error when the trial is small. In a pilot on the package's
        simulated CRTs (``benchmarks/results/crt_bamm_pilot``, 20 replicates, 5 scenarios)
        0.25 lowered the PEHE by 2-10% and moved CATE coverage by at most 0.012; 0.1 covered
        tau only 0.86 where the effect is larger (true ATE -0.34).
    sampler
        How the variance parameters are drawn; the coefficients are then drawn exactly given
        each draw. ``"laplace"`` (default): a Laplace approximation of their exact posterior on
        the log scale (:mod:`~hte_mrt.estimators.learners._bamm_laplace`; about a second at
        TASSH's size), calibrated by simulation (CATE coverage on the randomized benchmark,
        ``benchmarks/results/crt_random``) rather than exact. ``"nutpie"``: NUTS on them (exact,
        15-30 s; nutpie when installed, else PyMC's NUTS).
    draws, tune, chains, target_accept, seed, progress
        Sampler settings: with ``"laplace"`` ``draws`` is the number of posterior draws in all
        and ``tune``, ``chains``, ``target_accept`` are unused; with ``"nutpie"`` ``draws`` per
        chain. ``progress`` shows NUTS's progress bar.
    n_jobs
        Chains sampled at once, in threads (the likelihood kernel releases the GIL); ``None``
        (default): min(chains, CPU count); 1 runs them one after another. Seeded draws do not
        depend on it.

    Attributes
    ----------
    draws_ : dict
        After :meth:`fit`: posterior draws of ``sigma``, ``sd_b``, ``tau0``, ``gamma``, ...
        (:meth:`cate` gives the posterior CATEs as a :class:`CATEResult`).
    idata_ : arviz.InferenceData
        The sampler's output (variance parameters).
    diagnostics_ : dict
        NUTS: ``max_r_hat`` and ``divergences``; Laplace: ``converged`` (the mode search) and
        ``max_grad`` (the largest gradient entry at the mode).
    prob_homogeneous_ : float or None
        Posterior probability of no heterogeneity (with ``prob_homogeneous > 0``).

    Examples
    --------
    A quick fit (few draws: for a report use the defaults, 1000 draws):

    >>> import hte_mrt as hm
    >>> data = hm.CRTSimulation(n_clusters=16).crt_data(seed=1)
    >>> bamm = hm.BayesianAdditiveMixedModel(draws=100, seed=1, progress=False).fit(data)
    >>> res = bamm.cate()
    >>> res.interval, res.draws.shape
    ('posterior', (100, 404))
    >>> round(float(res.ate()["estimate"]), 2)
    -0.01
    """

    name: ClassVar[str] = "bamm"
    bayesian: ClassVar[bool] = True

    def __init__(
        self,
        smooth: Literal["auto"] | Sequence[str] | None = "auto",
        smooth_tau: bool = True,
        interactions: bool | Literal["auto"] = "auto",
        interactions_tau: bool | Literal["auto"] = False,
        shrinkage: Literal["horseshoe", "global"] = "horseshoe",
        global_scale: float | Literal["auto"] = "auto",
        n_basis: int = 8,
        prob_homogeneous: float = 0.25,
        ate_prior_sd: float = 1.0,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        target_accept: float = 0.9,
        seed: int | None = None,
        progress: bool = True,
        n_jobs: int | None = None,
        sampler: Literal["laplace", "nutpie"] = "laplace",
    ) -> None:
        self.smooth = smooth
        self.smooth_tau = smooth_tau
        self.interactions = interactions
        self.interactions_tau = interactions_tau
        self.sampler = sampler
        self.shrinkage = shrinkage
        self.global_scale = global_scale
        self.n_basis = n_basis
        self.prob_homogeneous = prob_homogeneous
        self.ate_prior_sd = ate_prior_sd
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.target_accept = target_accept
        self.seed = seed
        self.progress = progress
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ design
    def _smooth_columns(self, W: np.ndarray) -> list[int]:
        names = getattr(self, "feature_names_", [f"w{k}" for k in range(W.shape[1])])
        if self.smooth is None:
            return []
        if isinstance(self.smooth, str):
            if self.smooth != "auto":
                raise DesignError(
                    f"smooth must be 'auto', a list of feature names or None, got {self.smooth!r}."
                )
            return [k for k in range(W.shape[1]) if len(np.unique(W[:, k])) >= 10]
        cols = []
        for s in self.smooth:
            if s not in names:
                raise DesignError(
                    f"smooth: '{s}' is not a feature (features: {', '.join(names)}); pass "
                    "smooth= as names from that list, 'auto' or None."
                )
            cols.append(names.index(s))
        return cols

    def _check_params(self) -> None:
        owner = type(self).__name__
        for p, lo in (("n_basis", 5), ("draws", 1), ("tune", 1), ("chains", 1)):
            check_int(owner, p, getattr(self, p), lo)
        if self.n_jobs is not None:
            check_int(owner, "n_jobs (or None)", self.n_jobs, 1)
        ta = self.target_accept
        if isinstance(ta, bool) or not isinstance(ta, int | float) or not 0.5 <= ta < 1.0:
            raise DesignError(
                f"{owner}: target_accept must be a number in [0.5, 1), got {ta!r}; pass e.g. "
                "target_accept=0.9 (0.95-0.99 if there are divergences)."
            )
        gs = self.global_scale
        if gs != "auto" and not (
            isinstance(gs, int | float) and not isinstance(gs, bool) and 0 < gs < np.inf
        ):
            raise DesignError(
                f"{owner}: global_scale must be 'auto' or a positive number, got {gs!r}; pass "
                "global_scale='auto' (the default) or e.g. 0.1."
            )
        ph = self.prob_homogeneous
        if isinstance(ph, bool) or not isinstance(ph, int | float) or not 0 <= ph < 1:
            raise DesignError(
                f"{owner}: prob_homogeneous must be a number in [0, 1), got {ph!r}; pass e.g. "
                "prob_homogeneous=0.5 (0: no point mass)."
            )
        s0 = self.ate_prior_sd
        if isinstance(s0, bool) or not isinstance(s0, int | float) or not 0 < s0 < np.inf:
            raise DesignError(
                f"{owner}: ate_prior_sd must be a positive number (outcome SD units), got "
                f"{s0!r}; pass e.g. ate_prior_sd=1.0."
            )
        if self.shrinkage not in ("horseshoe", "global"):
            raise DesignError(
                f"{owner}: shrinkage must be 'horseshoe' or 'global', got {self.shrinkage!r}; "
                "pass one of those."
            )
        for name, strs in (("interactions", ("auto",)), ("interactions_tau", ("auto", "cross"))):
            ia = getattr(self, name)
            if not (isinstance(ia, bool | np.bool_) or (isinstance(ia, str) and ia in strs)):
                raise DesignError(
                    f"{owner}: {name} must be True, False or "
                    f"{' or '.join(repr(x) for x in strs)}, got {ia!r}; pass one of those (a "
                    "string such as 'no' would count as True)."
                )
        if self.sampler not in ("laplace", "nutpie"):
            raise DesignError(
                f"{owner}: sampler must be 'laplace' or 'nutpie', got {self.sampler!r}; pass "
                "one of those."
            )

    def _tau_global_scale(self, p: int, n_clusters: int) -> float:
        """Scale of the horseshoe's global shrinkage, after Piironen & Vehtari (2017):
        g0 = p0 / max(p - p0, 1) / sqrt(K), with p0 = min(2, p/2) expected moderators and K
        clusters (the randomized units, whose count bounds the information on cluster-level
        moderators; sqrt(n individuals) would shrink a clinic-level moderator away)."""
        if self.global_scale != "auto":
            return float(self.global_scale)
        p0 = min(2.0, p / 2.0)
        return p0 / max(p - p0, 1.0) / np.sqrt(n_clusters)

    def _pairs(self, Ws: np.ndarray, which: str = "interactions") -> list[tuple[int, int]]:
        p = Ws.shape[1]
        opt = getattr(self, which)
        use = opt if opt not in ("auto", "cross") else (opt == "cross" or p <= 12)
        if not use:
            return []
        pairs = []
        n_ind = getattr(self, "n_individual_", p)
        for i in range(p):
            for j in range(i + 1, p):
                if opt == "cross" and not (i < n_ind <= j):
                    continue  # cross-level pairs only: individual x cluster covariate
                if np.std(Ws[:, i] * Ws[:, j]) > 1e-8:  # e.g. two levels of one factor: 0
                    pairs.append((i, j))
        return pairs

    def _blocks(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(M, T): the mu design [1, w, splines, interactions] and the tau design
        [1, w, tau splines] for rows W (training standardization)."""
        Ws = (W - self.w_mean_) / self.w_sd_
        bases = [sp.basis(Ws[:, k]) for k, sp in zip(self.smooth_cols_, self.splines_, strict=True)]
        one = np.ones((len(W), 1))
        mu = [one, Ws, *bases]
        if self.pairs_:
            ii, jj = np.array(self.pairs_).T
            mu.append((Ws[:, ii] * Ws[:, jj] - self.int_mean_) / self.int_sd_)
        tau = [one, Ws, *(bases if self.smooth_tau else [])]
        if self.pairs_tau_:
            ii, jj = np.array(self.pairs_tau_).T
            tau.append((Ws[:, ii] * Ws[:, jj] - self.int_tau_mean_) / self.int_tau_sd_)
        return np.hstack(mu), np.hstack(tau)

    # ------------------------------------------------------------------ fitting
    def _model(self, stats: SufficientStats, p: int, n_s: int, nb: int, null: np.ndarray):
        """(PyMC model, the horseshoe's global scale as a shared variable).
        Only the structure (p, n_s, nb, number of pairs, shrinkage, smooth_tau, the point mass
        on no heterogeneity, tau0's prior sd) enters the graph; the data enter through the Op
        (:meth:`CollapsedAMMLogp.rebind`) and the shared scale."""
        import pymc as pm
        import pytensor
        import pytensor.tensor as pt

        g0 = pytensor.shared(np.float64(1.0), name="bamm_global_scale")
        op = CollapsedAMMLogp(stats, null, float(self.prob_homogeneous))
        with pm.Model() as model:
            sigma = pm.HalfNormal("sigma", 1.0)
            sd_b = pm.HalfNormal("sd_b", 0.5)
            if p and self.shrinkage == "horseshoe":
                s_gamma = pm.HalfCauchy("s_gamma", g0)
            elif p:
                s_gamma = pm.HalfNormal("s_gamma", 0.5)
            # prior sds of the coefficients, in the column order of X
            parts = [pt.as_tensor(np.r_[5.0, np.ones(p)])]
            if n_s:
                lam_mu = pm.HalfNormal("lam_mu", 0.5, shape=n_s)
                parts.append(pt.repeat(lam_mu, nb))
            if self.pairs_:
                s_eta = pm.HalfNormal("s_eta", 0.25)
                parts.append(pt.ones(len(self.pairs_)) * s_eta)
            parts.append(pt.as_tensor(np.array([float(self.ate_prior_sd)])))  # tau0
            if p and self.shrinkage == "horseshoe":
                # regularized horseshoe (slab sd 1 on the standardized scale)
                ell = pm.HalfCauchy("ell_gamma", 1.0, shape=p)
                t = s_gamma * ell
                parts.append(t / pt.sqrt(1.0 + t**2))
            elif p:
                parts.append(pt.ones(p) * s_gamma)
            if n_s and self.smooth_tau:
                lam_tau = pm.HalfNormal("lam_tau", LAM_TAU_SCALE, shape=n_s)
                parts.append(pt.repeat(lam_tau, nb))
            if self.pairs_tau_:
                s_teta = pm.HalfNormal("s_eta_tau", ETA_TAU_SCALE)
                parts.append(pt.ones(len(self.pairs_tau_)) * s_teta)
            dsd = pm.Deterministic("prior_sd", pt.concatenate(parts))
            pm.Potential("loglik", op(sigma, sd_b, dsd)[0])
        return model, g0

    def _fit(self, W, z, y, cluster, rng) -> None:
        from threadpoolctl import threadpool_limits

        self._check_params()
        self.y_mean_, self.y_sd_ = float(y.mean()), float(y.std()) or 1.0
        sd = W.std(axis=0)
        self.w_mean_ = W.mean(axis=0)
        self.w_sd_ = np.where(sd > 0, sd, 1.0)
        Ws = (W - self.w_mean_) / self.w_sd_
        self.smooth_cols_ = self._smooth_columns(W)
        self.splines_ = [_Spline(Ws[:, k], int(self.n_basis)) for k in self.smooth_cols_]
        self.pairs_ = self._pairs(Ws)
        if self.pairs_:
            ii, jj = np.array(self.pairs_).T
            prod = Ws[:, ii] * Ws[:, jj]
            self.int_mean_, self.int_sd_ = prod.mean(axis=0), prod.std(axis=0)
        self.pairs_tau_ = self._pairs(Ws, "interactions_tau")
        if self.pairs_tau_:
            ii, jj = np.array(self.pairs_tau_).T
            prod = Ws[:, ii] * Ws[:, jj]
            self.int_tau_mean_, self.int_tau_sd_ = prod.mean(axis=0), prod.std(axis=0)
        M, T = self._blocks(W)
        self.n_mu_ = M.shape[1]
        X = np.hstack([M, z[:, None] * T])
        ys = (y - self.y_mean_) / self.y_sd_
        _, cl = np.unique(cluster, return_inverse=True)
        stats = SufficientStats.from_data(X, ys, cl)
        p, nb = Ws.shape[1], int(self.n_basis) - 2
        n_s = len(self.smooth_cols_)
        # tau's moderator coefficients (all of tau but tau0): 0 under "no heterogeneity"
        null = np.arange(self.n_mu_ + 1, X.shape[1])
        prob0 = float(self.prob_homogeneous) if len(null) else 0.0
        # what shapes the graph (shrinkage only with moderators, smooth_tau only with splines)
        key = (p, n_s, nb, len(self.pairs_), self.shrinkage if p else None,
               bool(self.smooth_tau and n_s), X.shape[1], prob0,
               float(self.ate_prior_sd), len(self.pairs_tau_))  # fmt: skip
        g0 = self._tau_global_scale(p, len(stats.n_j)) if p else 1.0
        seed = int(rng.integers(2**31)) if self.seed is None else int(self.seed)
        # P x P algebra is too small for threaded BLAS (2.6x slower per evaluation with 2 threads
        # on a busy 2-core machine). threadpoolctl's limit is process-wide while it lasts, so it
        # is set inside the lock: a fit waiting for it would otherwise record (and later
        # restore) another fit's limit. The lock guards the cached compiled models.
        if self.sampler == "laplace":
            with threadpool_limits(limits=1, user_api="blas"):
                sig, sdb, sds, idata = self._sample_laplace(
                    stats, p, n_s, nb, null, prob0, g0, seed
                )
        else:
            with _COMPILED_LOCK, threadpool_limits(limits=1, user_api="blas"):
                idata = _sample_cached(
                    key, lambda: self._model(stats, p, n_s, nb, null), stats, g0,
                    draws=int(self.draws), tune=int(self.tune), chains=int(self.chains),
                    seed=seed, progress=self.progress, target_accept=float(self.target_accept),
                    cores=int(self.n_jobs or min(int(self.chains), os.cpu_count() or 1)),
                )  # fmt: skip
            post = idata["posterior"]

            def flat(name):
                v = post[name].values
                return v.reshape(v.shape[0] * v.shape[1], *v.shape[2:])

            sig, sdb, sds = flat("sigma"), flat("sd_b"), flat("prior_sd")
        with threadpool_limits(limits=1, user_api="blas"):
            if prob0 > 0:
                # no heterogeneity or not, given each draw (its conditional probability r0)
                r0 = np.array([
                    mixture_value_and_grad(stats, a, b, c, null, np.log(prob0), np.log1p(-prob0))[4]
                    for a, b, c in zip(sig, sdb, sds, strict=True)
                ])  # fmt: skip
                homog = np.random.default_rng([seed, 1]).random(len(r0)) < r0
                sds = sds.copy()
                sds[np.ix_(homog, null)] = 0.0
                self.prob_homogeneous_ = float(r0.mean())
            else:
                homog, self.prob_homogeneous_ = np.zeros(len(sds), dtype=bool), None
            coef = draw_coefficients(stats, sig, sdb, sds, np.random.default_rng(seed))
        self.idata_ = idata
        self.draws_ = {
            "sigma": sig, "sd_b": sdb,
            "coef_mu": coef[:, : self.n_mu_], "coef_tau": coef[:, self.n_mu_ :],
        }  # fmt: skip
        self.draws_["tau0"] = self.draws_["coef_tau"][:, 0]
        self.draws_["gamma"] = self.draws_["coef_tau"][:, 1 : p + 1]
        self.draws_["homogeneous"] = homog
        if self.sampler == "laplace":
            self._diagnose_laplace()
        else:
            self._diagnose(idata)

    def _hyper_posterior(self, stats, p: int, n_s: int, nb: int, null, prob0: float, g0: float):
        """The variance parameters' posterior (:class:`_bamm_laplace.HyperPosterior`), with the
        same priors as :meth:`_model` (the NUTS route)."""
        from hte_mrt.estimators.learners._bamm_laplace import HyperPosterior

        P = stats.XtX.shape[0]
        fixed = np.zeros(P)
        fixed[0], fixed[1 : p + 1] = 5.0, 1.0
        fixed[self.n_mu_] = float(self.ate_prior_sd)
        groups = []
        col = 1 + p
        if n_s:
            groups.append(
                (
                    "lam_mu",
                    "halfnormal",
                    0.5,
                    [np.arange(col + k * nb, col + (k + 1) * nb) for k in range(n_s)],
                )
            )
            col += n_s * nb  # fmt: skip
        if self.pairs_:
            groups.append(("s_eta", "halfnormal", 0.25, [np.arange(col, col + len(self.pairs_))]))
        col = self.n_mu_ + 1
        gamma = np.arange(col, col + p)
        horseshoe = None
        if p and self.shrinkage == "horseshoe":
            horseshoe = (float(g0), gamma)
        elif p:
            groups.append(("s_gamma", "halfnormal", 0.5, [gamma]))
        col += p
        if n_s and self.smooth_tau:
            groups.append(
                (
                    "lam_tau",
                    "halfnormal",
                    LAM_TAU_SCALE,
                    [np.arange(col + k * nb, col + (k + 1) * nb) for k in range(n_s)],
                )
            )
            col += n_s * nb  # fmt: skip
        if self.pairs_tau_:
            groups.append(("s_eta_tau", "halfnormal", ETA_TAU_SCALE,
                           [np.arange(col, col + len(self.pairs_tau_))]))  # fmt: skip
        return HyperPosterior(stats, fixed, groups, horseshoe,
                              null if prob0 > 0 else None, prob0)  # fmt: skip

    def _sample_laplace(self, stats, p, n_s, nb, null, prob0, g0, seed):
        """(sigma, sd_b, prior sds, idata) from the Laplace approximation (``_bamm_laplace``)."""
        import arviz as az

        from hte_mrt.estimators.learners import _bamm_laplace

        post = self._hyper_posterior(stats, p, n_s, nb, null, prob0, g0)
        res = _bamm_laplace.sample(post, int(self.draws), np.random.default_rng([seed, 2]))
        sig, sdb, sds = zip(*(post.unpack(th) for th in res.theta), strict=True)
        self.laplace_ = res
        idata = az.from_dict(
            {"posterior": {nm: res.theta[None, :, k] for k, nm in enumerate(post.names)}}
        )
        return np.asarray(sig), np.asarray(sdb), np.vstack(sds), idata

    def _diagnose_laplace(self) -> None:
        import warnings

        from hte_mrt.errors import ConvergenceWarning

        res = self.laplace_
        self.diagnostics_ = {"sampler": "laplace", "converged": res.converged,
                             "max_grad": res.max_grad}  # fmt: skip
        if not res.converged:
            warnings.warn(
                f"{self.name}: the search for the variance parameters' posterior mode did not "
                f"converge (largest gradient {res.max_grad:.2g}); refit with sampler='nutpie'.",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _diagnose(self, idata) -> None:
        import warnings

        import arviz as az

        from hte_mrt.errors import ConvergenceWarning

        # R-hat of what the CATE is made of: the variance parameters sigma, sd_b and the
        # (exactly drawn) coefficients of tau. The horseshoe's local scales are nuisance:
        # heavy-tailed, so their R-hat is noisy, and tau depends on them only through these.
        post = idata["posterior"].to_dataset()
        nc, nd = post.sizes["chain"], post.sizes["draw"]
        coef = self.draws_["coef_tau"].reshape(nc, nd, -1)
        rhat = max(float(az.rhat(post[["sigma", "sd_b"]])[v].max()) for v in ("sigma", "sd_b"))
        if nc > 1:
            rhat = max(rhat, *(float(az.rhat(coef[:, :, k])) for k in range(coef.shape[2])))
        ss = idata["sample_stats"]
        div = int(ss["diverging"].values.sum()) if "diverging" in ss else 0
        self.diagnostics_ = {"max_r_hat": rhat, "divergences": div}
        if div:
            warnings.warn(
                f"{div} divergent transitions in {self.name}: raise target_accept (e.g. 0.95) or "
                "drop smooth terms.",
                ConvergenceWarning,
                stacklevel=4,
            )
        if int(self.chains) > 1 and rhat > 1.01:
            warnings.warn(
                f"R-hat up to {rhat:.3f} (> 1.01) in {self.name}: run more draws and tune.",
                ConvergenceWarning,
                stacklevel=4,
            )

    # ------------------------------------------------------------------ predictions
    def _tau_draws(self, W: np.ndarray) -> np.ndarray:
        _, T = self._blocks(W)
        return self.y_sd_ * (self.draws_["coef_tau"] @ T.T)

    def _tau(self, W: np.ndarray) -> np.ndarray:
        _, T = self._blocks(W)
        return self.y_sd_ * (T @ self.draws_["coef_tau"].mean(axis=0))

    def _mu(self, W: np.ndarray) -> np.ndarray:
        M, _ = self._blocks(W)
        return self.y_mean_ + self.y_sd_ * (M @ self.draws_["coef_mu"].mean(axis=0))


# ---------------------------------------------------------------------------------------------
# compiled models, reused across fits of the same structure
# ---------------------------------------------------------------------------------------------
_COMPILED: dict[tuple, tuple] = {}
_COMPILED_MAX = 8
_COMPILED_LOCK = threading.Lock()


def _sample_cached(key: tuple, build, stats: SufficientStats, g0: float, *, draws: int,
                   tune: int, chains: int, seed: int, progress: bool, target_accept: float,
                   cores: int):  # fmt: skip
    """nutpie draws of the variance parameters, reusing the model compiled for an earlier fit of
    the same structure (``key``): its likelihood Ops are rebound to ``stats`` and the global
    scale set to ``g0`` (about 1 s of PyTensor compilation saved per fit). The caller holds
    ``_COMPILED_LOCK``: one such fit at a time per process; the chains of a fit still run in
    threads. Without nutpie's layout helpers (or nutpie) the model is built and sampled afresh."""
    from importlib.util import find_spec

    from pytensor.compile.mode import Mode

    from hte_mrt.estimators.bayes._nutpie import compile_c, sample_model

    mode = Mode(linker="cvm", optimizer="fast_run")  # Python perform, numba kernel
    kw = dict(draws=draws, tune=tune, chains=chains, seed=seed)
    entry = _COMPILED.get(key)
    if entry is None:
        model, g0_shared = build()
        g0_shared.set_value(np.float64(g0))
        compiled = compile_c(model, mode=mode) if find_spec("nutpie") else None
        if compiled is None:
            return sample_model(model, **kw, progress=progress, target_accept=target_accept,
                                cores=cores, mode=mode)  # fmt: skip
        ops = {
            node.op
            for fn in (compiled.logp_fn, compiled.expand_fn)
            for node in fn.maker.fgraph.apply_nodes
            if isinstance(node.op, CollapsedAMMLogp)
        }
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.pop(next(iter(_COMPILED)))
        entry = _COMPILED[key] = (compiled, ops, g0_shared)
    compiled, ops, g0_shared = entry
    for op in ops:
        op.rebind(stats)
    g0_shared.set_value(np.float64(g0))
    import nutpie

    return nutpie.sample(
        compiled.nutpie_model(), **kw, progress_bar=progress, save_warmup=False,
        target_accept=target_accept, cores=cores,
    )  # fmt: skip
