r"""Randomly drawn cluster-randomized trial designs with a known CATE (an ACIC-style benchmark).

:class:`CRTSimulation` varies one factor at a time around a TASSH-like trial; the learners were
built around it. :class:`RandomCRTDesign` instead draws *whole designs* at random, in the
spirit of the ACIC data challenges (Dorie et al. 2019, Statist. Sci. 34:43), so that a learner
is judged on trials nobody tuned it for. :meth:`RandomCRTDesign.draw` (seeded) draws:

* the **trial**: K clusters (even, 16-100), mean cluster size 8-40 with a coefficient of
  variation 0-0.7 (gamma-Poisson sizes, at least 3), the ICC log-uniform on [0.01, 0.2], the
  random-intercept distribution (normal, :math:`t_3` or two-point) and, in a quarter of the
  designs, a random treatment slope :math:`u_j` (sd half the CATE's sd);
* **covariates**: 2-5 continuous individual covariates (one-factor correlation with loadings
  in [-0.6, 0.6], a within-cluster share 0-0.3, some right-skewed), 0-2 binary ones
  (thresholded correlated latents, prevalence 0.2-0.7), sometimes a 3-level categorical one,
  and 1-3 cluster covariates (continuous or binary, correlated with the cluster means of the
  individual covariates);
* :math:`\mu(x, v)` **and** :math:`\tau(x, v)` **as random smooth functions**: sums of terms
  drawn from linear, sine, quadratic, absolute-value, threshold (step), pairwise products and
  thresholded products, each on randomly chosen covariates; products may pair an individual
  with a cluster covariate (cross-level :math:`x \times v` terms). :math:`\mu` is scaled to an
  sd of 0.2-1 outcome units; :math:`\tau` to an ATE of none to large (0, or
  :math:`\pm`\ 0.05-0.6) and a heterogeneity sd of none (15% of designs) to 0.4;
* **errors**: variance :math:`1 - \rho` on average in the control arm, heteroskedastic in half of
  the designs (log-sd linear in a covariate and, sometimes, in the arm).

The outcome is

.. math::

    Y_{ij} = \mu(x_{ij}, v_j) + A_j \tau(x_{ij}, v_j) + b_j + A_j u_j + \sigma(x_{ij}, A_j)
    \varepsilon_{ij},

and the estimand is :math:`\tau(x, v) = E[Y(1) - Y(0) \mid x, v]`, marginal over the
random effects (column ``tau``). Term scales are fixed on a reference sample of the design's
covariate distribution (20,000 individuals from a fixed seed), so the truth is an exact
function of the covariates. The design itself is a frozen dataclass of plain numbers and
tuples: it pickles, compares equal, and can also be written by hand (tests use fixed designs).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from hte_mrt.data.crt import CRTData
from hte_mrt.errors import DataError, DesignError

SeedLike = int | np.random.SeedSequence | np.random.Generator | None

TERM_KINDS = ("lin", "sin", "quad", "abs", "step", "prod", "stepprod", "cat")
"""Building blocks of mu and tau: ``(kind, i, j, a, b, coef)`` with covariates named by index
into :attr:`RandomCRTDesign.covariates` (``j`` used by the products, ``a``/``b`` the location /
frequency parameters)."""

Term = tuple[str, int, int, float, float, float]

REFERENCE_N = 20_000


def _rng(seed: SeedLike) -> np.random.Generator:
    return np.random.default_rng(seed)


@dataclass(frozen=True)
class RandomCRTDesign:
    """One cluster-randomized trial design with a known CATE; see the module docstring.

    Build random ones with :meth:`draw`; every field can also be given by hand.

    Parameters
    ----------
    n_clusters, mean_size, size_cv
        K (even, >= 4); mean cluster size and its coefficient of variation (0: equal sizes).
    icc
        var(b_j) = icc; the control arm's average error variance is 1 - icc.
    n_cont, n_bin, categorical
        Continuous and binary individual covariates (``x1``.. first the continuous), and a
        3-level categorical one (``xc``, levels "a", "b", "c") when True.
    loadings, within_share, skewed, prevalence
        One-factor loadings of the continuous covariates (their correlation is the product),
        their within-cluster share of variance, which ones are right-skewed (a standardized
        lognormal), and the binary covariates' prevalences.
    n_vcont, n_vbin
        Continuous and binary cluster covariates (``v1``..).
    mu_terms, tau_terms
        Terms ``(kind, i, j, a, b, coef)`` of mu and tau (:data:`TERM_KINDS`; ``i``, ``j``
        index :attr:`covariates`).
    mu_sd, ate, tau_sd
        sd of mu, the mean of tau and its sd over the covariate distribution.
    hetero_var, hetero_x, hetero_arm
        Heteroskedasticity: log sd of the error is
        ``hetero_x * clip(x[hetero_var], -2, 2) + hetero_arm * A`` (before normalizing;
        ``hetero_var`` -1 for none).
    intercept, slope_share
        Random-intercept distribution; random-slope sd as a share of ``tau_sd`` (0: none;
        0.05 absolute when tau is homogeneous).
    name
        A label.

    Examples
    --------
    >>> from hte_mrt.data.simulate_crt_random import RandomCRTDesign
    >>> design = RandomCRTDesign.draw(3)
    >>> frame = design.simulate(seed=1)
    >>> data = design.to_crt_data(frame)
    >>> bool(np.allclose(design.true_tau(frame), frame["tau"]))
    True
    """

    n_clusters: int = 32
    mean_size: int = 20
    size_cv: float = 0.3
    icc: float = 0.05
    n_cont: int = 3
    n_bin: int = 1
    categorical: bool = False
    loadings: tuple[float, ...] = (0.3, 0.3, 0.0)
    within_share: float = 0.1
    skewed: tuple[bool, ...] = (False, False, False)
    prevalence: tuple[float, ...] = (0.5,)
    n_vcont: int = 1
    n_vbin: int = 1
    mu_terms: tuple[Term, ...] = (("lin", 0, 0, 0.0, 0.0, 1.0),)
    tau_terms: tuple[Term, ...] = ()
    mu_sd: float = 0.5
    ate: float = -0.2
    tau_sd: float = 0.0
    hetero_var: int = -1
    hetero_x: float = 0.0
    hetero_arm: float = 0.0
    intercept: Literal["normal", "t3", "mixture"] = "normal"
    slope_share: float = 0.0
    name: str = "design"

    def __post_init__(self) -> None:
        k = self.n_clusters
        if not (isinstance(k, int | np.integer) and k >= 4 and k % 2 == 0):
            raise DesignError(
                f"RandomCRTDesign: n_clusters must be an even integer >= 4, got {k!r}."
            )
        if not 0 <= float(self.icc) < 1:
            raise DesignError(f"RandomCRTDesign: icc must be in [0, 1), got {self.icc!r}.")
        if len(self.loadings) != self.n_cont or len(self.skewed) != self.n_cont:
            raise DesignError("RandomCRTDesign: loadings and skewed need one entry per n_cont.")
        if len(self.prevalence) != self.n_bin:
            raise DesignError("RandomCRTDesign: prevalence needs one entry per binary covariate.")
        n_cov = len(self.covariates)
        for t in (*self.mu_terms, *self.tau_terms):
            if t[0] not in TERM_KINDS or not (0 <= t[1] < n_cov and 0 <= t[2] < n_cov):
                raise DesignError(f"RandomCRTDesign: bad term {t!r} ({n_cov} covariates).")
        if self.intercept not in ("normal", "t3", "mixture"):
            raise DesignError(f"RandomCRTDesign: intercept {self.intercept!r} unknown.")

    # ------------------------------------------------------------------ names
    @property
    def individual(self) -> list[str]:
        """Individual covariate columns."""
        out = [f"x{k + 1}" for k in range(self.n_cont + self.n_bin)]
        return out + (["xc"] if self.categorical else [])

    @property
    def cluster_covariates(self) -> list[str]:
        """Cluster covariate columns."""
        return [f"v{k + 1}" for k in range(self.n_vcont + self.n_vbin)]

    @property
    def covariates(self) -> list[str]:
        """All covariates, in the order term indices refer to."""
        return self.individual + self.cluster_covariates

    def factors(self) -> dict:
        """The design as a dict of its fields."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def label(self) -> str:
        """A compact description (K, sizes, ICC, tau's shape)."""
        kinds = sorted({t[0] for t in self.tau_terms}) or ["none"]
        cross = any(self._cross(t) for t in self.tau_terms)
        return (
            f"{self.name}:K={self.n_clusters},m={self.mean_size},icc={self.icc:.3f},"
            f"ate={self.ate:+.2f},sd_tau={self.tau_sd:.2f},tau={'+'.join(kinds)}"
            + (",cross" if cross else "")
        )

    def _cross(self, t: Term) -> bool:
        n_ind = len(self.individual)
        return t[0] in ("prod", "stepprod") and ((t[1] < n_ind) != (t[2] < n_ind))

    # ------------------------------------------------------------------ random designs
    @classmethod
    def draw(cls, seed: SeedLike = None, name: str | None = None) -> RandomCRTDesign:
        """A design drawn at random (see the module docstring), reproducibly from ``seed``."""
        rng = _rng(seed)
        n_clusters = int(2 * rng.integers(8, 51))
        mean_size = int(rng.integers(8, 41))
        size_cv = float(rng.choice([0.0, rng.uniform(0.1, 0.7)], p=[0.2, 0.8]))
        icc = float(np.exp(rng.uniform(np.log(0.01), np.log(0.2))))
        n_cont = int(rng.integers(2, 6))
        n_bin = int(rng.integers(0, 3))
        categorical = bool(rng.random() < 0.3)
        loadings = tuple(float(x) for x in rng.uniform(-0.6, 0.6, n_cont))
        within_share = float(rng.uniform(0.0, 0.3))
        skewed = tuple(bool(x) for x in rng.random(n_cont) < 0.25)
        prevalence = tuple(float(x) for x in rng.uniform(0.2, 0.7, n_bin))
        n_vcont = int(rng.integers(1, 3))
        n_vbin = int(rng.integers(0, 2))
        n_ind = n_cont + n_bin + int(categorical)
        n_cov = n_ind + n_vcont + n_vbin
        cont = list(range(n_cont)) + list(range(n_ind, n_ind + n_vcont))  # continuous ones
        numeric = [c for c in range(n_cov) if not (categorical and c == n_ind - 1)]
        num_ind = [c for c in numeric if c < n_ind]

        def term(kind: str) -> Term:
            if kind == "cat" and not categorical:
                kind = "lin"
            i = int(rng.choice(cont if kind in ("sin", "quad", "abs") else numeric))
            if kind == "cat":
                i = n_cont + n_bin
            j = i
            if kind in ("prod", "stepprod"):
                # half of the products pair an individual with a cluster covariate
                if rng.random() < 0.5:
                    i = int(rng.choice(num_ind))
                    j = int(rng.integers(n_ind, n_cov))
                else:
                    i, j = (int(x) for x in rng.choice(numeric, 2, replace=False))
            a = float(rng.uniform(-0.8, 0.8))
            b = float(rng.uniform(0.7, 2.0))
            coef = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.5))
            return (kind, i, j, a, b, coef)

        mu_kinds = ["lin", "lin", "sin", "quad", "abs", "step", "prod", "stepprod", "cat"]
        n_mu = int(rng.integers(2, 6))
        mu_terms = tuple(term(str(rng.choice(mu_kinds))) for _ in range(n_mu))
        mu_sd = float(rng.uniform(0.2, 1.0))
        ate = 0.0 if rng.random() < 0.2 else float(rng.choice([-1, 1]) * rng.uniform(0.05, 0.6))
        if rng.random() < 0.15:
            tau_terms: tuple[Term, ...] = ()
            tau_sd = 0.0
        else:
            tau_kinds = ["lin", "lin", "sin", "quad", "abs", "step", "prod", "stepprod", "cat"]
            n_tau = int(rng.integers(1, 4))
            tau_terms = tuple(term(str(rng.choice(tau_kinds))) for _ in range(n_tau))
            if rng.random() < 0.4 and not any(k[0] in ("prod", "stepprod") for k in tau_terms):
                tau_terms = (*tau_terms, term(str(rng.choice(["prod", "stepprod"]))))
            tau_sd = float(rng.uniform(0.05, 0.4))
        hetero = rng.random() < 0.5
        hetero_var = int(rng.choice(cont[:n_cont])) if hetero else -1
        hetero_x = float(rng.uniform(0.1, 0.4)) if hetero else 0.0
        hetero_arm = float(rng.uniform(-0.3, 0.3)) if hetero and rng.random() < 0.5 else 0.0
        intercept = str(rng.choice(["normal", "t3", "mixture"], p=[0.7, 0.15, 0.15]))
        slope_share = 0.5 if rng.random() < 0.25 else 0.0
        return cls(
            n_clusters=n_clusters, mean_size=mean_size, size_cv=size_cv, icc=icc, n_cont=n_cont,
            n_bin=n_bin, categorical=categorical, loadings=loadings, within_share=within_share,
            skewed=skewed, prevalence=prevalence, n_vcont=n_vcont, n_vbin=n_vbin,
            mu_terms=mu_terms, tau_terms=tau_terms, mu_sd=mu_sd, ate=ate, tau_sd=tau_sd,
            hetero_var=hetero_var, hetero_x=hetero_x, hetero_arm=hetero_arm,
            intercept=intercept, slope_share=slope_share,  # type: ignore[arg-type]
            name=name if name is not None else f"design{seed}",
        )  # fmt: skip

    # ------------------------------------------------------------------ covariates
    def _covariates(self, rng: np.random.Generator, sizes: np.ndarray) -> dict[str, np.ndarray]:
        """Covariate columns for clusters of the given sizes (fixed draw order)."""
        k, n = len(sizes), int(sizes.sum())
        cl = np.repeat(np.arange(k), sizes)
        n_lat = self.n_cont + self.n_bin
        a = rng.standard_normal((k, n_lat))  # cluster components
        f = rng.standard_normal(n)  # the common factor
        e = rng.standard_normal((n, n_lat))
        u_cat = rng.random(n)
        vz = rng.standard_normal((k, self.n_vcont + self.n_vbin))
        lo = np.r_[np.asarray(self.loadings, float), np.full(self.n_bin, 0.3)]
        w = float(self.within_share)
        lat = lo * f[:, None] + np.sqrt(1 - lo**2) * (np.sqrt(w) * a[cl] + np.sqrt(1 - w) * e)
        out: dict[str, np.ndarray] = {}
        for c in range(self.n_cont):
            x = lat[:, c]
            if self.skewed[c]:  # standardized lognormal(0, 0.75)
                s = 0.75
                x = (np.exp(s * x) - np.exp(s**2 / 2)) / np.sqrt((np.exp(s**2) - 1) * np.exp(s**2))
            out[f"x{c + 1}"] = x
        for c in range(self.n_bin):
            thr = stats.norm.ppf(1 - self.prevalence[c])
            out[f"x{self.n_cont + c + 1}"] = (lat[:, self.n_cont + c] > thr).astype(np.int64)
        if self.categorical:
            idx = np.searchsorted([0.3, 0.6], u_cat + 0.1 * np.tanh(lat[:, 0]), side="right")
            out["xc"] = np.asarray(["a", "b", "c"], dtype=object)[idx]
        # cluster covariates: correlated with the cluster component of x1
        rho = 0.4
        for c in range(self.n_vcont + self.n_vbin):
            z = rho * a[:, 0] + np.sqrt(1 - rho**2) * vz[:, c]
            v = z if c < self.n_vcont else (z > 0.2).astype(np.int64)
            out[f"v{c + 1}"] = v[cl]
        out["__cluster"] = cl
        return out

    def _binary(self, i: int) -> bool:
        n_ind = len(self.individual)
        return (self.n_cont <= i < self.n_cont + self.n_bin) or i >= n_ind + self.n_vcont

    def _raw_terms(self, cols: dict[str, np.ndarray], terms: tuple[Term, ...]) -> np.ndarray:
        """One column per term (before scaling), on covariate columns ``cols``."""
        names = self.covariates
        n = len(next(iter(cols.values())))
        out = np.empty((n, len(terms)))
        for c, (kind, i, j, a, b, coef) in enumerate(terms):
            if kind == "cat":
                lev = np.asarray(cols[names[i]], dtype=object)
                x = np.select([lev == "a", lev == "b"], [0.0, a], default=b)
            else:
                x = np.asarray(cols[names[i]], dtype=float)
            y = np.asarray(cols[names[j]], dtype=float) if kind in ("prod", "stepprod") else None
            if kind in ("lin", "cat"):
                v = x
            elif kind == "sin":
                v = np.sin(b * x + a)
            elif kind == "quad":
                v = (x - a) ** 2
            elif kind == "abs":
                v = np.abs(x - a)
            elif kind == "step":
                v = (x > (0.5 if self._binary(i) else a)).astype(float)
            elif kind == "prod":
                v = x * y
            else:  # stepprod: a threshold in x times y
                v = (x > (0.5 if self._binary(i) else a)).astype(float) * y
            out[:, c] = coef * v
        return out

    @cached_property
    def scales(self) -> dict[str, tuple[float, float]]:
        """(mean, sd) of the unscaled mu and tau on the reference sample."""
        rng = np.random.default_rng(20261206)
        size = max(int(self.mean_size), 2)
        sizes = np.full(REFERENCE_N // size + 1, size)
        cols = self._covariates(rng, sizes)
        out = {}
        for nm, terms in (("mu", self.mu_terms), ("tau", self.tau_terms)):
            f = self._raw_terms(cols, terms).sum(axis=1)
            sd = float(f.std())
            out[nm] = (float(f.mean()), sd if sd > 1e-12 else 0.0)
        if self.hetero_var >= 0:
            x = np.asarray(cols[self.covariates[self.hetero_var]], float)
            out["hetero"] = (float(np.mean(np.exp(2 * self.hetero_x * np.clip(x, -2, 2)))), 0.0)
        return out

    def _scaled(self, cols: dict[str, np.ndarray], which: str) -> np.ndarray:
        terms = self.mu_terms if which == "mu" else self.tau_terms
        target_mean, target_sd = (0.0, self.mu_sd) if which == "mu" else (self.ate, self.tau_sd)
        n = len(next(iter(cols.values())))
        if not terms:
            return np.full(n, target_mean)
        m, sd = self.scales[which]
        f = self._raw_terms(cols, terms).sum(axis=1)
        return target_mean + (f - m) * (target_sd / sd if sd > 0 else 0.0)

    # ------------------------------------------------------------------ truth
    def _cols(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        missing = [c for c in self.covariates if c not in frame.columns]
        if missing:
            raise DataError(f"Column(s) {missing} are needed for the true CATE.", column=missing[0])
        return {c: frame[c].to_numpy() for c in self.covariates}

    def true_tau(self, frame: pd.DataFrame) -> np.ndarray:
        """tau(x, v) for the rows of ``frame``."""
        return self._scaled(self._cols(frame), "tau")

    def true_mu(self, frame: pd.DataFrame) -> np.ndarray:
        """mu(x, v), the control mean marginal over the random intercept."""
        return self._scaled(self._cols(frame), "mu")

    def basis(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """The true terms of mu and tau as columns (unscaled): the regressors of a correctly
        specified model (an oracle)."""
        cols = self._cols(frame)
        return self._raw_terms(cols, self.mu_terms), self._raw_terms(cols, self.tau_terms)

    @property
    def sd_slope(self) -> float:
        """sd of the random treatment slope."""
        if not self.slope_share:
            return 0.0
        return float(self.slope_share * (self.tau_sd if self.tau_sd > 0 else 0.1))

    # ------------------------------------------------------------------ simulation
    def _sizes(self, rng: np.random.Generator, k: int) -> np.ndarray:
        m, cv = float(self.mean_size), float(self.size_cv)
        if cv <= 0:
            return np.full(k, int(self.mean_size))
        lam = rng.gamma(1 / cv**2, m * cv**2, size=k)
        return np.maximum(rng.poisson(lam), 3)

    def _generate(self, rng: np.random.Generator, sizes: np.ndarray) -> pd.DataFrame:
        k = len(sizes)
        arm_c = np.zeros(k, dtype=np.int64)
        arm_c[rng.permutation(k)[: k // 2]] = 1
        u_b = np.clip(rng.random(k), 1e-12, 1 - 1e-12)
        z_u = rng.standard_normal(k)
        cols = self._covariates(rng, sizes)
        cl = cols.pop("__cluster")
        n = len(cl)
        z_e = rng.standard_normal(n)
        sd_b = np.sqrt(self.icc)
        if self.intercept == "normal":
            b = sd_b * stats.norm.ppf(u_b)
        elif self.intercept == "t3":
            b = sd_b / np.sqrt(3.0) * stats.t.ppf(u_b, df=3)
        else:
            b = sd_b * np.where(u_b < 0.5, -1.0, 1.0)
        u = self.sd_slope * z_u + 0.0
        z = arm_c[cl].astype(float)
        sd_e = np.full(n, np.sqrt(1 - self.icc))
        if self.hetero_var >= 0:
            x = np.asarray(cols[self.covariates[self.hetero_var]], float)
            norm = np.sqrt(self.scales["hetero"][0])
            sd_e = sd_e * np.exp(self.hetero_x * np.clip(x, -2, 2)) / norm
            sd_e = sd_e * np.exp(self.hetero_arm * z)
        frame = pd.DataFrame({"cluster": cl, "arm": arm_c[cl], "y": 0.0, **cols})
        tau = self._scaled(cols, "tau")
        mu = self._scaled(cols, "mu")
        frame["y"] = mu + z * tau + b[cl] + z * u[cl] + sd_e * z_e
        frame["tau"], frame["mu"], frame["b"], frame["u"] = tau, mu, b[cl], u[cl]
        return frame

    def simulate(self, seed: SeedLike = None) -> pd.DataFrame:
        """One trial, one row per individual (covariates, ``cluster``, ``arm``, ``y`` and the
        truth ``tau``, ``mu``, ``b``, ``u``)."""
        rng = _rng(seed)
        return self._generate(rng, self._sizes(rng, int(self.n_clusters)))

    def new_clusters(self, seed: SeedLike = None, n_clusters: int = 50, size: int = 20):
        """Fresh clusters of equal size from the same design, for out-of-sample evaluation."""
        return self._generate(_rng(seed), np.full(int(n_clusters), int(size)))

    def crt_data(self, seed: SeedLike = None) -> CRTData:
        """One simulated trial as validated :class:`CRTData`."""
        return self.to_crt_data(self.simulate(seed))

    def to_crt_data(self, frame: pd.DataFrame) -> CRTData:
        """Wrap a simulated frame as :class:`CRTData`."""
        return CRTData(
            frame, cluster="cluster", arm="arm", outcome="y", individual=self.individual,
            cluster_covariates=self.cluster_covariates,
        )  # fmt: skip


def random_designs(n: int, seed: int = 2026) -> dict[str, RandomCRTDesign]:
    """``n`` designs drawn from ``SeedSequence(seed)`` children, named ``d000``, ``d001``, ..."""
    children = np.random.SeedSequence(seed).spawn(int(n))
    return {
        f"d{r:03d}": RandomCRTDesign.draw(np.random.default_rng(c), name=f"d{r:03d}")
        for r, c in enumerate(children)
    }


__all__ = ["TERM_KINDS", "RandomCRTDesign", "random_designs"]
