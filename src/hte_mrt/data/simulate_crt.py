r"""Simulated cluster-randomized trials (TASSH-like) with a known CATE.

:class:`CRTSimulation` generates seeded, reproducible two-arm CRTs in which whole clusters are
randomized, for the evaluation of CATE learners (see :mod:`hte_mrt.studies.crt_simulation`).
The factors and their levels (the simulation-study design) are the class fields.

Data-generating process
-----------------------
Clusters :math:`j = 1..K` (``n_clusters``, even), half per arm: :math:`A_j = 1` for the first
:math:`K/2` clusters of a seeded random permutation. Cluster sizes :math:`n_j`:

* ``sizes="uniform"``: :math:`n_j \sim \mathrm{DiscreteUniform}\{15, \dots, 35\}` (mean 25,
  CV 0.24);
* ``sizes="variable"``: :math:`n_j = 5 + N_j`, :math:`N_j \sim \mathrm{NegBin}(r, p)` with
  :math:`r = 225/129 \approx 1.744` and :math:`p = r / (r + 15) \approx 0.104` (mean 15,
  variance :math:`15 + 15^2/r = 144`), so :math:`E[n_j] = 20`, :math:`\mathrm{sd}(n_j) = 12`,
  CV = 0.6 exactly (right-skewed, minimum 5).

Covariates (individual :math:`x_{ij}`, cluster :math:`v_j`):

.. math::

    x_{1ij} &= 0.3\,a_{1j} + \sqrt{0.91}\,\varepsilon_{1ij}, \quad
    x_{2ij} = 0.3\,a_{2j} + \sqrt{0.91}\,\varepsilon_{2ij}, \quad a, \varepsilon \sim N(0, 1)
    \quad (\mathrm{var}\ 1,\ \text{within-cluster correlation } 0.09)\\
    x_{3ij} &\sim \mathrm{Bernoulli}(0.6), \quad
    x_{4ij} \in \{a, b, c\} \text{ w.p. } (0.3, 0.3, 0.4), \quad
    x_{5ij} \sim U(0, 1) \ \text{(noise)}\\
    v_{1j} &\sim \mathrm{Bernoulli}(0.45), \quad v_{2j}, v_{3j} \sim N(0, 1)
    \ (v_3 \text{ noise}), \qquad g(x_4) = (2, -1, -4)[x_4] / 4.

Control mean :math:`\mu(x, v)` (``mu``):

* ``"linear"``: :math:`0.5 x_1 - 0.6 x_2 + 0.3 x_3 + g(x_4) + 0.4 v_1 + 0.3 v_2`;
* ``"nonlinear"``: :math:`-0.6 |x_2 - 0.5| + 0.8 \sin x_1 + 0.5 x_1 x_3 + g(x_4)
  + 0.4 v_1 1(x_2 > 0) + 0.3 v_2^2`.

CATE :math:`\tau(x, v)` (``tau``):

* ``"homogeneous"``: :math:`-0.2`;
* ``"individual"``: :math:`-0.2 - 0.15 x_2 + 0.1 x_3`;
* ``"individual_cluster"``: :math:`-0.2 - 0.15 x_2 + 0.1 x_3 - 0.15 v_1 + 0.1 x_2 v_1`;
* ``"nonlinear"``: :math:`-0.2 - 0.25\,1(x_2 > 0.5) + 0.15 \sin(2 x_1) - 0.15 v_1`.

Outcome, with total residual variance 1 split by the ICC :math:`\rho` (``icc``):

.. math::

    Y_{ij} = \mu(x_{ij}, v_j) + A_j\,\tau(x_{ij}, v_j) + b_j + A_j u_j + e_{ij}, \qquad
    e_{ij} \sim N(0, 1 - \rho), \quad \mathrm{var}(b_j) = \rho.

Random intercept :math:`b_j` (``intercept``, the misspecification factor): ``"normal"``
:math:`N(0, \rho)`; ``"t3"`` a :math:`t_3` variable scaled to variance :math:`\rho`
(:math:`\sqrt{\rho/3}\,t_3`); ``"mixture"`` :math:`\pm\sqrt{\rho}` with probability 1/2 each.
Random treatment slope :math:`u_j \sim N(0, \sigma_u^2)` (``random_slope=True``, else 0) with
:math:`\sigma_u = 0.5\,\mathrm{sd}(\tau)`, the sd of :math:`\tau(x, v)` over a fixed reference
sample of 200,000 covariate draws; for ``tau="homogeneous"`` (sd 0) :math:`\sigma_u = 0.5
\times 0.1 = 0.05` (see :attr:`CRTSimulation.sd_slope`).

Estimand
--------
The CATE :math:`\tau(x, v) = E[Y(1) - Y(0) \mid x, v]` is marginal over :math:`b_j` and
:math:`u_j` (:math:`E[u_j] = 0`, independent of the covariates): column ``tau`` excludes
:math:`u_j` (which is in column ``u``). :math:`\mu` (column ``mu``) is the control mean
marginal over :math:`b_j` (column ``b``).

Random numbers
--------------
``simulate(seed)`` draws, in a fixed order, cluster sizes, the arm permutation, then uniform /
standard-normal innovations for every cluster and individual, and only then applies the factor
levels (the random intercept by the inverse-CDF of one uniform per cluster). So configurations
with the same K and size distribution share common random numbers for the same seed (they
differ only through ICC, mu, tau, the intercept distribution and the slope).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from hte_mrt.data.crt import CRTData
from hte_mrt.errors import DataError, DesignError

SeedLike = int | np.random.SeedSequence | np.random.Generator | None


def _rng(seed: SeedLike) -> np.random.Generator:
    """The generator of a seed (None, a non-negative int, a SeedSequence or a Generator)."""
    ok = seed is None or isinstance(seed, np.random.SeedSequence | np.random.Generator)
    ok = ok or (isinstance(seed, int | np.integer) and not isinstance(seed, bool) and seed >= 0)
    if not ok:
        raise DesignError(
            f"CRTSimulation: seed must be None or a non-negative integer, got {seed!r}; pass "
            "e.g. seed=1 (None draws fresh entropy)."
        )
    return np.random.default_rng(seed)


K_LEVELS = (16, 32, 60, 100)
"""Numbers of clusters in the study design (any even K >= 4 is accepted)."""
SIZES_LEVELS = ("uniform", "variable")
ICC_LEVELS = (0.01, 0.05, 0.20)
"""ICCs in the study design (any value in [0, 1) is accepted)."""
MU_LEVELS = ("linear", "nonlinear")
TAU_LEVELS = ("homogeneous", "individual", "individual_cluster", "nonlinear")
INTERCEPT_LEVELS = ("normal", "t3", "mixture")
SLOPE_LEVELS = (False, True)

INDIVIDUAL = ("x1", "x2", "x3", "x4", "x5")
CLUSTER = ("v1", "v2", "v3")
X4_LEVELS = ("a", "b", "c")
X4_PROBS = (0.3, 0.3, 0.4)
X4_EFFECT = (0.5, -0.25, -1.0)  # g(x4) = (2, -1, -4)[x4] / 4

# variable sizes: 5 + NegBin(r, p), mean 15 and variance 144 -> sizes mean 20, CV 0.6
NB_R = 225.0 / 129.0
NB_P = NB_R / (NB_R + 15.0)

HOMOGENEOUS_SD = 0.1
"""sd(tau) used for the random-slope sd when tau is homogeneous (sigma_u = 0.5 * 0.1)."""
REFERENCE_N = 200_000
REFERENCE_SEED = 20260


def _g(x4) -> np.ndarray:
    idx = pd.Index(X4_LEVELS).get_indexer(np.asarray(x4, dtype=object))
    if (idx < 0).any():
        raise DataError(f"x4 must take the levels {X4_LEVELS}.", column="x4")
    return np.asarray(X4_EFFECT)[idx]


def _col(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        raise DataError(f"Column '{name}' is needed for the true CATE / mean.", column=name)
    return frame[name].to_numpy(dtype=float)


def tau_function(kind: str, x1, x2, x3, v1) -> np.ndarray:
    """The CATE tau(x, v) of ``tau=kind`` (arrays broadcast)."""
    x1, x2, x3, v1 = (np.asarray(a, dtype=float) for a in (x1, x2, x3, v1))
    shape = np.broadcast_shapes(x1.shape, x2.shape, x3.shape, v1.shape)
    if kind == "homogeneous":
        t = np.full(shape, -0.2)
    elif kind == "individual":
        t = -0.2 - 0.15 * x2 + 0.1 * x3
    elif kind == "individual_cluster":
        t = -0.2 - 0.15 * x2 + 0.1 * x3 - 0.15 * v1 + 0.1 * x2 * v1
    elif kind == "nonlinear":
        t = -0.2 - 0.25 * (x2 > 0.5) + 0.15 * np.sin(2.0 * x1) - 0.15 * v1
    else:
        raise DesignError(f"tau must be one of {TAU_LEVELS}, got {kind!r}.")
    return np.broadcast_to(t, shape).astype(float)


def mu_function(kind: str, x1, x2, x3, x4, v1, v2) -> np.ndarray:
    """The control mean mu(x, v) of ``mu=kind`` (arrays of equal length)."""
    x1, x2, x3, v1, v2 = (np.asarray(a, dtype=float) for a in (x1, x2, x3, v1, v2))
    g = _g(x4)
    if kind == "linear":
        return 0.5 * x1 - 0.6 * x2 + 0.3 * x3 + g + 0.4 * v1 + 0.3 * v2
    if kind == "nonlinear":
        return (
            -0.6 * np.abs(x2 - 0.5)
            + 0.8 * np.sin(x1)
            + 0.5 * x1 * x3
            + g
            + 0.4 * v1 * (x2 > 0)
            + 0.3 * v2**2
        )
    raise DesignError(f"mu must be one of {MU_LEVELS}, got {kind!r}.")


@cache
def reference_tau_sd(kind: str) -> float:
    """sd of tau(x, v) over a fixed reference sample of covariates (REFERENCE_N draws).

    Individuals are drawn from the covariates' marginal distribution (x1, x2 ~ N(0, 1),
    x3 ~ Bernoulli(0.6), v1 ~ Bernoulli(0.45)); the within-cluster correlation does not change
    the marginal sd.
    """
    rng = np.random.default_rng(REFERENCE_SEED)
    n = REFERENCE_N
    x1, x2 = rng.standard_normal(n), rng.standard_normal(n)
    x3 = (rng.random(n) < 0.6).astype(float)
    v1 = (rng.random(n) < 0.45).astype(float)
    return float(np.std(tau_function(kind, x1, x2, x3, v1)))


@dataclass(frozen=True)
class CRTSimulation:
    """A TASSH-like cluster-randomized trial with a known CATE.

    See the module docstring for the model. Factors (study levels in brackets):

    Parameters
    ----------
    n_clusters
        K, even, at least 4 [16, 32, 60, 100]; K/2 clusters per arm.
    sizes
        ``"uniform"`` (DiscreteUniform{15..35}) or ``"variable"`` (5 + NegBin, mean 20, CV 0.6).
    icc
        Intraclass correlation rho in [0, 1) [0.01, 0.05, 0.20]: var(b) = rho, var(e) = 1 - rho.
    mu
        Control mean: ``"linear"`` or ``"nonlinear"``.
    tau
        CATE: ``"homogeneous"``, ``"individual"``, ``"individual_cluster"`` or ``"nonlinear"``.
    intercept
        Random-intercept distribution: ``"normal"``, ``"t3"`` or ``"mixture"`` (two-point).
    random_slope
        Add a random treatment slope u_j ~ N(0, sd_slope^2) (the CATE stays marginal over it).

    Examples
    --------
    >>> import hte_mrt as hm
    >>> sim = hm.CRTSimulation(n_clusters=16, tau="individual")
    >>> data = sim.crt_data(seed=1)
    >>> data.n_clusters, len(data.frame)
    (16, 404)
    >>> sim.true_tau(data.frame)[:3].round(3).tolist()   # the known CATE of the first rows
    [-0.168, 0.049, -0.21]
    >>> len(sim.new_clusters(seed=2))                     # fresh clusters for evaluation
    1000
    """

    n_clusters: int = 32
    sizes: Literal["uniform", "variable"] = "uniform"
    icc: float = 0.05
    mu: Literal["linear", "nonlinear"] = "linear"
    tau: Literal["homogeneous", "individual", "individual_cluster", "nonlinear"] = "individual"
    intercept: Literal["normal", "t3", "mixture"] = "normal"
    random_slope: bool = False

    def __post_init__(self) -> None:
        def need(ok: bool, arg: str, msg: str) -> None:
            if not ok:
                raise DesignError(
                    f"CRTSimulation: {arg} {msg}, got {getattr(self, arg)!r}; pass a value as "
                    "stated."
                )

        k = self.n_clusters
        need(
            isinstance(k, int | np.integer) and not isinstance(k, bool) and k >= 4 and k % 2 == 0,
            "n_clusters",
            "must be an even integer >= 4 (half of the clusters per arm)",
        )
        need(self.sizes in SIZES_LEVELS, "sizes", f"must be one of {SIZES_LEVELS}")
        ok = isinstance(self.icc, int | float | np.floating) and not isinstance(self.icc, bool)
        need(ok and 0.0 <= float(self.icc) < 1.0, "icc", "must be a number in [0, 1)")
        need(self.mu in MU_LEVELS, "mu", f"must be one of {MU_LEVELS}")
        need(self.tau in TAU_LEVELS, "tau", f"must be one of {TAU_LEVELS}")
        need(self.intercept in INTERCEPT_LEVELS, "intercept", f"must be one of {INTERCEPT_LEVELS}")
        need(isinstance(self.random_slope, bool | np.bool_), "random_slope", "must be True/False")

    # ------------------------------------------------------------------ description
    def factors(self) -> dict:
        """The factor levels as a dict (field name -> value)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def label(self) -> str:
        """Compact description, e.g. ``K=32,sizes=uniform,icc=0.05,mu=linear,...``."""
        f = self.factors()
        return (
            f"K={f['n_clusters']},sizes={f['sizes']},icc={float(f['icc']):g},mu={f['mu']},"
            f"tau={f['tau']},intercept={f['intercept']},random_slope={f['random_slope']}"
        )

    # ------------------------------------------------------------------ truth
    @property
    def sd_b(self) -> float:
        """sd of the random intercept, sqrt(icc)."""
        return float(np.sqrt(self.icc))

    @property
    def sd_e(self) -> float:
        """sd of the individual error, sqrt(1 - icc)."""
        return float(np.sqrt(1.0 - self.icc))

    @property
    def sd_slope(self) -> float:
        """sd of the random treatment slope u_j: 0.5 sd(tau) (0.05 when tau is homogeneous),
        0 without ``random_slope``."""
        if not self.random_slope:
            return 0.0
        if self.tau == "homogeneous":
            return 0.5 * HOMOGENEOUS_SD
        return 0.5 * reference_tau_sd(self.tau)

    def true_tau(self, frame: pd.DataFrame) -> np.ndarray:
        """tau(x, v) for the rows of ``frame`` (columns x1, x2, x3, v1)."""
        return tau_function(self.tau, *(_col(frame, c) for c in ("x1", "x2", "x3", "v1")))

    def true_mu(self, frame: pd.DataFrame) -> np.ndarray:
        """mu(x, v), the control mean marginal over b_j, for the rows of ``frame``."""
        if "x4" not in frame.columns:
            raise DataError("Column 'x4' is needed for the true mean.", column="x4")
        x1, x2, x3, v1, v2 = (_col(frame, c) for c in ("x1", "x2", "x3", "v1", "v2"))
        return mu_function(self.mu, x1, x2, x3, frame["x4"].to_numpy(), v1, v2)

    # ------------------------------------------------------------------ simulation
    def _sizes(self, rng: np.random.Generator, k: int) -> np.ndarray:
        if self.sizes == "uniform":
            return rng.integers(15, 36, size=k)
        return 5 + rng.negative_binomial(NB_R, NB_P, size=k)

    def _generate(self, rng: np.random.Generator, sizes: np.ndarray) -> pd.DataFrame:
        k = len(sizes)
        perm = rng.permutation(k)
        arm_c = np.zeros(k, dtype=np.int64)
        arm_c[perm[: k // 2]] = 1
        # cluster-level innovations (fixed order)
        a1, a2 = rng.standard_normal(k), rng.standard_normal(k)
        v1 = (rng.random(k) < 0.45).astype(np.int64)
        v2, v3 = rng.standard_normal(k), rng.standard_normal(k)
        u_b = rng.random(k)
        z_u = rng.standard_normal(k)
        # individual-level innovations
        n = int(sizes.sum())
        e1, e2 = rng.standard_normal(n), rng.standard_normal(n)
        u3, u4 = rng.random(n), rng.random(n)
        x5 = rng.random(n)
        z_e = rng.standard_normal(n)

        u_b = np.clip(u_b, 1e-12, 1.0 - 1e-12)
        if self.intercept == "normal":
            b_c = self.sd_b * stats.norm.ppf(u_b)
        elif self.intercept == "t3":
            b_c = self.sd_b / np.sqrt(3.0) * stats.t.ppf(u_b, df=3)
        else:
            b_c = self.sd_b * np.where(u_b < 0.5, -1.0, 1.0)
        u_c = self.sd_slope * z_u + 0.0  # + 0.0: no negative zeros without a slope

        cl = np.repeat(np.arange(k), sizes)
        s91 = np.sqrt(0.91)
        x1 = 0.3 * a1[cl] + s91 * e1
        x2 = 0.3 * a2[cl] + s91 * e2
        x3 = (u3 < 0.6).astype(np.int64)
        x4_idx = np.searchsorted(np.cumsum(X4_PROBS)[:-1], u4, side="right")
        x4 = np.asarray(X4_LEVELS, dtype=object)[x4_idx]
        frame = pd.DataFrame(
            {
                "cluster": cl,
                "arm": arm_c[cl],
                "y": np.zeros(n),
                "x1": x1,
                "x2": x2,
                "x3": x3,
                "x4": x4,
                "x5": x5,
                "v1": v1[cl],
                "v2": v2[cl],
                "v3": v3[cl],
            }
        )
        tau = self.true_tau(frame)
        mu = self.true_mu(frame)
        z = frame["arm"].to_numpy(dtype=float)
        frame["y"] = mu + z * tau + b_c[cl] + z * u_c[cl] + self.sd_e * z_e
        frame["tau"] = tau
        frame["mu"] = mu
        frame["b"] = b_c[cl]
        frame["u"] = u_c[cl]
        return frame

    def simulate(self, seed: SeedLike = None) -> pd.DataFrame:
        """One trial, one row per individual.

        Columns: ``cluster`` (0..K-1), ``arm`` (0/1), ``y``, ``x1``..``x5`` (``x4`` the strings
        "a", "b", "c"), ``v1``..``v3``, and the truth: ``tau`` (CATE), ``mu`` (control mean),
        ``b`` (random intercept), ``u`` (random slope, 0 without ``random_slope``).
        ``seed`` is None, a non-negative int, a SeedSequence or a Generator.
        """
        rng = _rng(seed)
        sizes = self._sizes(rng, int(self.n_clusters))
        return self._generate(rng, sizes)

    def new_clusters(self, seed: SeedLike = None, n_clusters: int = 50, size: int = 20):
        """Fresh clusters (``n_clusters`` of ``size`` individuals, arms balanced) from the same
        model, for out-of-sample evaluation; same columns as :meth:`simulate`."""
        for name, v in (("n_clusters", n_clusters), ("size", size)):
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise DesignError(
                    f"new_clusters: {name} must be a whole number >= 1, got {v!r}; pass e.g. "
                    f"{name}={50 if name == 'n_clusters' else 20}."
                )
        rng = _rng(seed)
        return self._generate(rng, np.full(int(n_clusters), int(size)))

    def crt_data(self, seed: SeedLike = None) -> CRTData:
        """One simulated trial as validated :class:`CRTData`."""
        return self.to_crt_data(self.simulate(seed))

    @staticmethod
    def to_crt_data(frame: pd.DataFrame) -> CRTData:
        """Wrap a frame from :meth:`simulate`: cluster ``cluster``, arm ``arm``, outcome ``y``,
        individual covariates x1..x5 (x4 categorical), cluster covariates v1..v3."""
        return CRTData(
            frame,
            cluster="cluster",
            arm="arm",
            outcome="y",
            individual=list(INDIVIDUAL),
            cluster_covariates=list(CLUSTER),
        )


__all__ = [
    "CLUSTER",
    "ICC_LEVELS",
    "INDIVIDUAL",
    "INTERCEPT_LEVELS",
    "K_LEVELS",
    "MU_LEVELS",
    "SIZES_LEVELS",
    "SLOPE_LEVELS",
    "TAU_LEVELS",
    "CRTSimulation",
    "mu_function",
    "reference_tau_sd",
    "tau_function",
]
