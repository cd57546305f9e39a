r"""Collapsed log-likelihood of the additive mixed model (value and analytic gradient).

:math:`y \sim N(0, V)`, :math:`V = X D X' + \Sigma`, :math:`D = \mathrm{diag}(s)^2` (prior
variances of the coefficients), :math:`\Sigma` block compound-symmetric
(:math:`\sigma^2 I + \sigma_b^2 11'` per cluster). Everything is computed from sufficient
statistics (:math:`X'X`, :math:`X'y`, cluster sums :math:`S` of :math:`X` and of :math:`y`):
O(K P^2 + P^3) per evaluation, independent of the number of rows. With
:math:`G = X'\Sigma^{-1}X`, :math:`g = X'\Sigma^{-1}y`, :math:`A = I + D^{1/2} G D^{1/2} = LL'`:

.. math::

    \log p(y) = -\tfrac12\big(y'\Sigma^{-1}y - \|L^{-1}D^{1/2}g\|^2 + \log|\Sigma|
        + 2\textstyle\sum \log L_{kk} + n \log 2\pi\big),

and, with :math:`Q = X'V^{-1}X`, :math:`q = X'V^{-1}y`, :math:`r = y - X D^{1/2}A^{-1}D^{1/2} g`,
:math:`\partial/\partial s_k = -s_k(Q_{kk} - q_k^2)`,
:math:`\partial/\partial\sigma^2 = -\tfrac12(\mathrm{tr}\,V^{-1} - \|\Sigma^{-1}r\|^2)`,
:math:`\partial/\partial\sigma_b^2 = -\tfrac12(\mathrm{tr}\,Z'V^{-1}Z - \|Z'\Sigma^{-1}r\|^2)`.

The pytensor Op returns the gradient outputs from the same call (as in
:mod:`hte_mrt.estimators.bayes._op`); no second derivatives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from scipy.linalg import solve_triangular
from scipy.linalg.lapack import dpotrf, dtrtri


@dataclass(frozen=True, eq=False)
class SufficientStats:
    """Sufficient statistics of (X, y, cluster) for the collapsed likelihood."""

    XtX: np.ndarray
    Xty: np.ndarray
    S: np.ndarray  # (K, P) cluster sums of X
    ysum: np.ndarray  # (K,)
    yty: float
    n_j: np.ndarray  # (K,) cluster sizes

    @classmethod
    def from_data(cls, X: np.ndarray, y: np.ndarray, cl: np.ndarray) -> SufficientStats:
        K = int(cl.max()) + 1
        S = np.zeros((K, X.shape[1]))
        np.add.at(S, cl, X)
        return cls(
            XtX=X.T @ X, Xty=X.T @ y, S=S, ysum=np.bincount(cl, weights=y, minlength=K),
            yty=float(y @ y), n_j=np.bincount(cl, minlength=K).astype(float),
        )  # fmt: skip

    @property
    def n(self) -> float:
        return float(self.n_j.sum())

    def sandwich(self, w: np.ndarray) -> np.ndarray:
        """S' diag(w) S."""
        return (self.S.T * w) @ self.S

    def conditional(self, sigma: float, sd_b: float):
        """(G, g, yQy, logdet Sigma, a, c) at the given variance parameters."""
        s2, sb2 = sigma * sigma, sd_b * sd_b
        a = 1.0 / (s2 + self.n_j * sb2)
        c = sb2 * a
        G = (self.XtX - self.sandwich(c)) / s2
        g = (self.Xty - self.S.T @ (c * self.ysum)) / s2
        yqy = (self.yty - np.sum(c * self.ysum**2)) / s2
        logdet = self.n * np.log(s2) + np.sum(np.log1p(self.n_j * sb2 / s2))
        return G, g, yqy, logdet, a, c


def value_and_grad(st: SufficientStats, sigma: float, sd_b: float, s: np.ndarray):
    """(log p(y), d/dsigma, d/dsd_b, d/ds) of the collapsed likelihood."""
    s2 = sigma * sigma
    G, g, yqy, logdet_s, a, c = st.conditional(sigma, sd_b)
    P = len(s)
    Gs = G * s[:, None]  # D^1/2 G
    L, info = dpotrf(np.eye(P) + Gs * s[None, :], lower=1, clean=1)
    if info != 0:
        return -np.inf, np.nan, np.nan, np.full(P, np.nan)
    Li = dtrtri(L, lower=1)[0]
    h = Li @ (s * g)
    lp = -0.5 * (
        yqy - h @ h + logdet_s + 2.0 * np.sum(np.log(np.diag(L))) + st.n * np.log(2 * np.pi)
    )
    Ainv = Li.T @ Li
    w = s * (Li.T @ h)  # posterior mean of the coefficients
    # d/ds_k = -s_k (Q_kk - q_k^2), Q = G - G D^1/2 A^-1 D^1/2 G, q = g - G w
    F = Li @ Gs
    Qdiag = np.diag(G) - np.sum(F * F, axis=0)
    q = g - G @ w
    ds = -s * (Qdiag - q * q)
    # residual r = y - X w through sufficient statistics
    rr = st.yty - 2.0 * st.Xty @ w + w @ st.XtX @ w
    rsum = st.ysum - st.S @ w
    e = 2.0 * c - st.n_j * c * c  # Sigma^-2 = (I - e 11') / s2^2 per cluster
    sAs = Ainv * s[:, None] * s[None, :]
    H = (st.XtX - st.sandwich(e)) / (s2 * s2)
    tr_vinv = (st.n - np.sum(c * st.n_j)) / s2 - np.sum(sAs * H)
    r_s2r = (rr - np.sum(e * rsum**2)) / (s2 * s2)
    d_s2 = -0.5 * (tr_vinv - r_s2r)
    tr_zvz = np.sum(st.n_j * a) - np.sum(sAs * st.sandwich(a * a))
    d_sb2 = -0.5 * (tr_zvz - np.sum((a * rsum) ** 2))
    return lp, 2.0 * sigma * d_s2, 2.0 * sd_b * d_sb2, ds


def draw_coefficients(
    st: SufficientStats, sigma: np.ndarray, sd_b: np.ndarray, s: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:  # fmt: skip
    r"""Exact draws of the coefficients given each draw of the variance parameters:
    :math:`\beta = D^{1/2} L^{-T}(L^{-1}D^{1/2}g + \varepsilon)`,
    :math:`\varepsilon \sim N(0, I)`."""
    nd, P = s.shape
    eps = rng.standard_normal((nd, P))
    out = np.empty((nd, P))
    for i in range(nd):
        G, g, *_ = st.conditional(float(sigma[i]), float(sd_b[i]))
        L = np.linalg.cholesky(np.eye(P) + s[i][:, None] * G * s[i][None, :])
        h = solve_triangular(L, s[i] * g, lower=True, check_finite=False)
        out[i] = s[i] * solve_triangular(L.T, h + eps[i], lower=False, check_finite=False)
    return out


class CollapsedAMMLogp(Op):
    """Inputs sigma, sd_b (scalars), s (P,); outputs (logp, dsigma, dsd_b, ds)."""

    __props__ = ("key",)
    _count = 0

    def __init__(self, stats: SufficientStats) -> None:
        self.stats = stats
        CollapsedAMMLogp._count += 1  # each data set its own Op: never merged with another's
        self.key = CollapsedAMMLogp._count

    def make_node(self, sigma, sd_b, s):
        ins = [pt.cast(pt.as_tensor_variable(x), "float64") for x in (sigma, sd_b, s)]
        outs = [pt.dscalar(), pt.dscalar(), pt.dscalar(), pt.dvector()]
        return Apply(self, ins, outs)

    def perform(self, node, inputs, output_storage):
        sigma, sd_b, s = inputs
        res = value_and_grad(self.stats, float(sigma), float(sd_b), np.asarray(s, dtype=float))
        for store, val in zip(output_storage, res, strict=True):
            store[0] = np.asarray(val, dtype="float64")

    def infer_shape(self, node, input_shapes):
        return [(), (), (), input_shapes[2]]

    def pullback(self, inputs, outputs, cotangents):
        if any(not isinstance(g.type, DisconnectedType) for g in cotangents[1:]):
            raise NotImplementedError("second derivatives of the collapsed log-likelihood")
        g = cotangents[0]
        return [g * o for o in outputs[1:]]
