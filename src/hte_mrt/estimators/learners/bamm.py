r"""Bayesian additive mixed model for CATEs in cluster-randomized trials (the default learner).

Model, on the standardized outcome :math:`\tilde y = (y - \bar y)/s_y` and standardized
features :math:`w` (individual and cluster covariates, encoded):

.. math::

    \tilde y_{ij} = a + w_{ij}'\beta + \sum_k f_k(w_{ijk})
        + z_j \Big(\tau_0 + w_{ij}'\gamma + \sum_{k \in T} g_k(w_{ijk})\Big) + b_j + e_{ij},
    \qquad b_j \sim N(0, \sigma_b^2),\; e_{ij} \sim N(0, \sigma^2).

* :math:`f_k, g_k` are penalized B-splines in mixed-model form (the constant and linear parts are
  carried by the linear terms; the wiggly part has coefficients :math:`N(0, \lambda_k^2)` with the
  smoothness :math:`\lambda_k` learned).
* Shrinkage on the treatment moderators: :math:`\gamma_k = s_\gamma \gamma^{raw}_k`,
  :math:`\gamma^{raw}_k \sim N(0, 1)`, :math:`s_\gamma \sim \text{HalfNormal}(0.5)`: one learned
  scale pulls all moderator effects toward a homogeneous effect.
* The random intercept is integrated out analytically per cluster (compound symmetry), so the
  sampler never sees :math:`b_j`.

The CATE :math:`\tau(x, v) = s_y(\tau_0 + w'\gamma + \sum_{k \in T} g_k(w_k))` does not involve
:math:`b_j`: it is defined for new clusters. Priors (standardized scale):
:math:`a, \beta, \tau_0 \sim N(0, 1)`, :math:`\sigma \sim \text{HalfNormal}(1)`,
:math:`\sigma_b \sim \text{HalfNormal}(0.5)`, :math:`\lambda_k \sim \text{HalfNormal}(0.5)` (mu)
and :math:`\text{HalfNormal}(0.25)` (tau).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

import numpy as np

from hte_mrt.errors import DesignError
from hte_mrt.estimators.bayes.model import _pspline_bases
from hte_mrt.estimators.learners.base import CRTLearner, marginal_cluster_loglik


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
    """Additive mixed model with linear + spline terms for mu and tau, shrinkage on tau's
    moderators and a cluster random intercept (integrated out). See the module docstring.

    Parameters
    ----------
    smooth
        Features with a spline term in mu: ``"auto"`` (individual-level numeric features with
        at least 10 distinct values), a list of feature names, or ``None``.
    smooth_tau
        Also give those features a spline term in tau (default False: linear moderators).
    n_basis
        B-spline basis size per smooth term (the penalized part has ``n_basis - 2`` columns).
    draws, tune, chains, target_accept, random_state, progress
        Sampler settings (nutpie when installed, else PyMC's NUTS).
    """

    name: ClassVar[str] = "bamm"
    bayesian: ClassVar[bool] = True

    def __init__(
        self,
        smooth: Literal["auto"] | Sequence[str] | None = "auto",
        smooth_tau: bool = False,
        n_basis: int = 8,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        target_accept: float = 0.95,
        random_state: int | None = None,
        progress: bool = False,
    ) -> None:
        self.smooth = smooth
        self.smooth_tau = smooth_tau
        self.n_basis = n_basis
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.target_accept = target_accept
        self.random_state = random_state
        self.progress = progress

    # ------------------------------------------------------------------ fitting
    def _smooth_columns(self, W: np.ndarray) -> list[int]:
        names = getattr(self, "feature_names_", [f"w{k}" for k in range(W.shape[1])])
        if self.smooth is None:
            return []
        if isinstance(self.smooth, str):
            if self.smooth != "auto":
                raise DesignError(
                    f"smooth must be 'auto', a list of feature names or None, got {self.smooth!r}."
                )
            # individual-level numeric features only: a cluster covariate has K values at most
            n_ind = getattr(self, "n_individual_", W.shape[1])
            return [k for k in range(n_ind) if len(np.unique(W[:, k])) >= 10]
        cols = []
        for s in self.smooth:
            if s not in names:
                raise DesignError(f"smooth: '{s}' is not a feature (features: {', '.join(names)}).")
            cols.append(names.index(s))
        return cols

    def _check_params(self) -> None:
        if int(self.n_basis) < 5:
            raise DesignError(f"n_basis must be >= 5, got {self.n_basis}.")
        for p in ("draws", "tune", "chains"):
            if int(getattr(self, p)) < 1:
                raise DesignError(f"{p} must be a positive integer, got {getattr(self, p)}.")
        if not 0.5 <= float(self.target_accept) < 1.0:
            raise DesignError(f"target_accept must be in [0.5, 1), got {self.target_accept}.")

    def _features(self, W: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        Ws = (W - self.w_mean_) / self.w_sd_
        return Ws, [
            sp.basis(Ws[:, k]) for k, sp in zip(self.smooth_cols_, self.splines_, strict=True)
        ]

    def _fit(self, W, z, y, cluster, rng) -> None:
        import pymc as pm
        import pytensor.tensor as pt

        from hte_mrt.estimators.bayes._nutpie import sample_model

        self._check_params()
        self.y_mean_, self.y_sd_ = float(y.mean()), float(y.std()) or 1.0
        sd = W.std(axis=0)
        self.w_mean_ = W.mean(axis=0)
        self.w_sd_ = np.where(sd > 0, sd, 1.0)
        self.smooth_cols_ = self._smooth_columns(W)
        Ws0 = (W - self.w_mean_) / self.w_sd_
        self.splines_ = [_Spline(Ws0[:, k], int(self.n_basis)) for k in self.smooth_cols_]
        Ws, bases = self._features(W)
        ys = (y - self.y_mean_) / self.y_sd_
        _, cl = np.unique(cluster, return_inverse=True)
        p = Ws.shape[1]
        with pm.Model() as model:
            a = pm.Normal("a", 0.0, 1.0)
            beta = pm.Normal("beta", 0.0, 1.0, shape=p)
            tau0 = pm.Normal("tau0", 0.0, 1.0)
            s_gamma = pm.HalfNormal("s_gamma", 0.5)
            g_raw = pm.Normal("gamma_raw", 0.0, 1.0, shape=p)
            gamma = s_gamma * g_raw
            mu = a + pt.dot(Ws, beta)
            tau = tau0 + pt.dot(Ws, gamma)
            for k, B in enumerate(bases):
                lam = pm.HalfNormal(f"lam_mu{k}", 0.5)
                r = pm.Normal(f"r_mu{k}", 0.0, 1.0, shape=B.shape[1])
                mu = mu + pt.dot(B, lam * r)
                if self.smooth_tau:
                    lt = pm.HalfNormal(f"lam_tau{k}", 0.25)
                    rt = pm.Normal(f"r_tau{k}", 0.0, 1.0, shape=B.shape[1])
                    tau = tau + pt.dot(B, lt * rt)
            sigma = pm.HalfNormal("sigma", 1.0)
            sd_b = pm.HalfNormal("sd_b", 0.5)
            # cluster intercept integrated out: y_j ~ N(m_j, s2 I + sb2 11')
            pm.Potential("loglik", marginal_cluster_loglik(ys - mu - z * tau, cl, sigma, sd_b))
        seed = int(rng.integers(2**31)) if self.random_state is None else int(self.random_state)
        idata = sample_model(
            model, draws=int(self.draws), tune=int(self.tune), chains=int(self.chains), seed=seed,
            progress=self.progress, target_accept=float(self.target_accept),
        )  # fmt: skip
        post = idata["posterior"]

        def flat(name):
            v = post[name].values
            return v.reshape(v.shape[0] * v.shape[1], *v.shape[2:])

        self.idata_ = idata
        self.draws_ = {
            "a": flat("a"), "beta": flat("beta"), "tau0": flat("tau0"),
            "gamma": flat("s_gamma")[:, None] * flat("gamma_raw"),
            "sigma": flat("sigma"), "sd_b": flat("sd_b"),
        }  # fmt: skip
        for k in range(len(bases)):
            self.draws_[f"f_mu{k}"] = flat(f"lam_mu{k}")[:, None] * flat(f"r_mu{k}")
            if self.smooth_tau:
                self.draws_[f"f_tau{k}"] = flat(f"lam_tau{k}")[:, None] * flat(f"r_tau{k}")
        self._diagnose(idata)

    def _diagnose(self, idata) -> None:
        import warnings

        import arviz as az

        from hte_mrt.errors import ConvergenceWarning

        post = idata["posterior"].to_dataset()
        names = ["a", "beta", "tau0", "s_gamma", "sigma", "sd_b"]
        rhat = max(float(az.rhat(post[names])[v].max()) for v in names)
        ss = idata["sample_stats"]
        div = int(ss["diverging"].values.sum()) if "diverging" in ss else 0
        self.diagnostics_ = {"max_rhat": rhat, "divergences": div}
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
        Ws, bases = self._features(W)
        d = self.draws_
        t = d["tau0"][:, None] + d["gamma"] @ Ws.T
        if self.smooth_tau:
            for k, B in enumerate(bases):
                t = t + d[f"f_tau{k}"] @ B.T
        return self.y_sd_ * t

    def _tau(self, W: np.ndarray) -> np.ndarray:
        return self._tau_draws(W).mean(axis=0)

    def _mu(self, W: np.ndarray) -> np.ndarray:
        Ws, bases = self._features(W)
        d = self.draws_
        m = d["a"][:, None] + d["beta"] @ Ws.T
        for k, B in enumerate(bases):
            m = m + d[f"f_mu{k}"] @ B.T
        return self.y_mean_ + self.y_sd_ * m.mean(axis=0)
