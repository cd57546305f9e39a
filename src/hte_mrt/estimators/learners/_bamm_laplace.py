r"""Laplace approximation of the additive mixed model's variance parameters (the default).

The additive mixed model's coefficients are Gaussian given the variance parameters
:math:`\theta`, so its posterior is :math:`p(\theta \mid y)\,p(\beta \mid \theta, y)`, the
second factor exact (:func:`~hte_mrt.estimators.learners._bamm_op.draw_coefficients`) and the
first known up to a constant from the collapsed likelihood. Instead of running NUTS on
:math:`\theta` (``sampler="nutpie"``, seconds to minutes), ``sampler="laplace"`` approximates
:math:`p(u \mid y)`, :math:`u = \log\theta`, by a Gaussian at its mode, as INLA does for
hyperparameters (Rue, Martino & Chopin 2009, JRSS-B 71:319; here without INLA's skewness
corrections):

1. the mode :math:`\hat u` of the exact log density (priors and the log-Jacobian included) by
   L-BFGS with the analytic gradient;
2. the Hessian there by central differences of the analytic gradient; eigenvalues below 0.25
   (flat directions, e.g. a local scale the data say nothing about) are raised to 0.25, so the
   approximation is never narrower than a N(0, 2^2) in that direction;
3. :math:`\theta = \exp(u)`, :math:`u \sim N(\hat u, H^{-1})`, then the coefficients exactly
   given each :math:`\theta`.

It is an approximation: the variance parameters' posterior is skewed on the log scale (an
importance-sampling check with this Gaussian as proposal gives Pareto :math:`\hat k > 1` on
TASSH), so exactness is not claimed. Its calibration is measured instead: CATE and ATE
interval coverage on the package's randomized CRT benchmark and its 14-scenario study
(``benchmarks/results/crt_random``, ``crt_study``). ``sampler="nutpie"`` gives the exact posterior.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

from hte_mrt.estimators.learners._bamm_op import (
    SufficientStats,
    mixture_value_and_grad,
    value_and_grad,
)


@dataclass
class HyperPosterior:
    """The log posterior of :math:`u = \\log\\theta` and its gradient.

    ``groups``: ``(name, prior, scale, blocks)`` with ``prior`` "halfnormal" or "halfcauchy"
    and ``blocks`` one index array (into the coefficient prior sds ``s``) per parameter of the
    group: each parameter is the prior sd of its block. ``horseshoe``: ``(global_scale, idx)``
    for a regularized horseshoe (slab 1) on the coefficients ``idx`` (parameters: the global
    scale, then one local scale per coefficient). ``fixed``: prior sds of the other
    coefficients. ``null`` / ``prob_null``: the point mass on "no heterogeneity".
    """

    stats: SufficientStats
    fixed: np.ndarray
    groups: list[tuple[str, str, float, list[np.ndarray]]]
    horseshoe: tuple[float, np.ndarray] | None = None
    null: np.ndarray | None = None
    prob_null: float = 0.0
    names: list[str] = field(init=False)

    def __post_init__(self) -> None:
        names = ["sigma", "sd_b"]
        for name, _, _, blocks in self.groups:
            names += [name] if len(blocks) == 1 else [f"{name}[{k}]" for k in range(len(blocks))]
        if self.horseshoe is not None:
            names += ["s_gamma"] + [f"ell_gamma[{k}]" for k in range(len(self.horseshoe[1]))]
        self.names = names
        self._log_w = (
            (np.log(self.prob_null), np.log1p(-self.prob_null))
            if self.null is not None and self.prob_null > 0
            else None
        )

    @property
    def dim(self) -> int:
        return len(self.names)

    def start(self) -> np.ndarray:
        """A starting point: sigma 0.8, sd_b 0.2, every scale at its prior scale, local
        horseshoe scales 1."""
        u = [np.log(0.8), np.log(0.2)]
        for _, _, scale, blocks in self.groups:
            u += [np.log(scale)] * len(blocks)
        if self.horseshoe is not None:
            u += [np.log(self.horseshoe[0])] + [0.0] * len(self.horseshoe[1])
        return np.asarray(u, dtype=float)

    def unpack(self, th: np.ndarray) -> tuple[float, float, np.ndarray]:
        """(sigma, sd_b, s) of one parameter vector on the natural scale."""
        s = self.fixed.copy()
        k = 2
        for _, _, _, blocks in self.groups:
            for b in blocks:
                s[b] = th[k]
                k += 1
        if self.horseshoe is not None:
            idx = self.horseshoe[1]
            t = th[k] * th[k + 1 : k + 1 + len(idx)]
            s[idx] = t / np.sqrt(1.0 + t * t)
        return float(th[0]), float(th[1]), s

    def logp_grad(self, u: np.ndarray) -> tuple[float, np.ndarray]:
        """log p(u | y) + const and its gradient."""
        u = np.asarray(u, dtype=float)
        if not np.all(np.isfinite(u)) or np.any(np.abs(u) > 30):
            return -np.inf, np.zeros_like(u)
        th = np.exp(u)
        sigma, sd_b, s = self.unpack(th)
        if self._log_w is None:
            lp, d_sig, d_sb, ds = value_and_grad(self.stats, sigma, sd_b, s)
        else:
            lp, d_sig, d_sb, ds, _ = mixture_value_and_grad(
                self.stats, sigma, sd_b, s, self.null, *self._log_w
            )
        if not np.isfinite(lp):
            return -np.inf, np.zeros_like(u)
        g = np.zeros(len(u))
        g[0], g[1] = d_sig, d_sb
        # priors: sigma ~ HalfNormal(1), sd_b ~ HalfNormal(0.5)
        lp += -0.5 * th[0] ** 2 - 0.5 * (th[1] / 0.5) ** 2
        g[0] += -th[0]
        g[1] += -th[1] / 0.25
        k = 2
        for _, prior, scale, blocks in self.groups:
            for b in blocks:
                g[k] += ds[b].sum()
                lp, g[k] = _prior(prior, scale, th[k], lp, g[k])
                k += 1
        if self.horseshoe is not None:
            g0, idx = self.horseshoe
            ell = th[k + 1 : k + 1 + len(idx)]
            t = th[k] * ell
            g_t = ds[idx] * (1.0 + t * t) ** -1.5
            g[k] += np.sum(g_t * ell)
            g[k + 1 : k + 1 + len(idx)] += g_t * th[k]
            lp, g[k] = _prior("halfcauchy", g0, th[k], lp, g[k])
            lp += float(np.sum(-np.log1p(ell * ell)))
            g[k + 1 : k + 1 + len(idx)] += -2.0 * ell / (1.0 + ell * ell)
        # u = log theta: chain rule and the log-Jacobian
        return float(lp + u.sum()), g * th + 1.0


def _prior(kind: str, scale: float, x: float, lp: float, g: float) -> tuple[float, float]:
    if kind == "halfnormal":
        return lp - 0.5 * (x / scale) ** 2, g - x / scale**2
    return lp - np.log1p((x / scale) ** 2), g - 2.0 * x / (scale**2 + x * x)


def _mode(post: HyperPosterior) -> tuple[np.ndarray, bool]:
    def f(u):
        lp, g = post.logp_grad(u)
        if not np.isfinite(lp):
            return 1e300, np.zeros_like(u)
        return -lp, -g

    res = optimize.minimize(f, post.start(), jac=True, method="L-BFGS-B",
                            options={"maxiter": 2000, "gtol": 1e-5})  # fmt: skip
    # a flat posterior can stop L-BFGS early ("ABNORMAL"); accept a small gradient anyway
    ok = bool(res.success) or float(np.max(np.abs(res.jac))) < 1e-3
    return res.x, ok


def _neg_hessian(post: HyperPosterior, u: np.ndarray, h: float = 1e-4) -> np.ndarray:
    d = len(u)
    H = np.empty((d, d))
    for j in range(d):
        e = np.zeros(d)
        e[j] = h
        H[:, j] = -(post.logp_grad(u + e)[1] - post.logp_grad(u - e)[1]) / (2 * h)
    H = 0.5 * (H + H.T)
    w, V = np.linalg.eigh(H)
    # flat or non-convex directions (e.g. an unidentified local scale): a wide proposal there
    w = np.maximum(w, 0.25)
    return (V * w) @ V.T


@dataclass
class LaplaceDraws:
    """Draws of the variance parameters (natural scale) and the mode search's outcome."""

    theta: np.ndarray  # (draws, dim)
    mode: np.ndarray
    converged: bool
    max_grad: float


def sample(post: HyperPosterior, draws: int, rng: np.random.Generator) -> LaplaceDraws:
    """``draws`` parameter vectors from the Laplace approximation of ``post``."""
    u0, converged = _mode(post)
    max_grad = float(np.max(np.abs(post.logp_grad(u0)[1])))
    cov = np.linalg.inv(_neg_hessian(post, u0))
    U = rng.multivariate_normal(u0, cov, size=int(draws), method="eigh")
    U = np.clip(U, -30.0, 30.0)
    return LaplaceDraws(theta=np.exp(U), mode=np.exp(u0), converged=bool(converged),
                         max_grad=max_grad)  # fmt: skip
