r"""Results of the distal (DCEE) and mediated (NDEE / NIEE) excursion-effect estimators.

:class:`DistalResult` follows the package's results contract (``table``, ``summary``,
``conf_int``, ``lincomb``, ``joint_test``, ``effect_curve``, ``to_xarray``, NetCDF round trip)
with an ``effect`` column: "distal" for DCEE rows, "direct" (NDEE, alpha) and "indirect" (NIEE,
beta) for mediation rows. Inference is t with the estimator's df (MRTAnalysis: n - dim(beta) for
DCEE, n - 2 dim(f) for mediation); joint tests use Hotelling's T^2 as
:meth:`hte_mrt.ExcursionResult.joint_test` does.

:meth:`DistalResult.bayesian_bootstrap` draws Rubin's Bayesian bootstrap of the stage-2
estimating equation: participant weights w ~ n Dirichlet(1, ..., 1) and
theta_w = (sum_i w_i B_i)^-1 sum_i w_i b_i with the per-participant pieces kept by the fit (the
nuisance predictions held fixed, as the sandwich does), so its spread matches the sandwich's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from hte_mrt._contract import Result, read_sidecar
from hte_mrt._util import tqdm
from hte_mrt.data.checks import check_bool, check_grid, check_int, check_path, check_seed
from hte_mrt.errors import DesignError, FormulaError
from hte_mrt.results.bootstrap import BootstrapResult
from hte_mrt.results.frequentist import (
    JointTest,
    _hotelling_test,
    _lincomb_table,
    _t_table,
    contrast_matrix,
)

_KINDS = {
    "DCEE": "distal causal excursion effect",
    "MCEE": "natural direct and indirect excursion effects (NDEE, NIEE)",
}


@dataclass(eq=False, repr=False)
class DistalResult(Result):
    r"""A distal causal excursion effect (:func:`hm.dcee <hte_mrt.dcee>`) or natural direct and
    indirect excursion effects (:func:`hm.mcee <hte_mrt.mcee>`).

    ``table(conf_level=None, style="tidy")`` has the columns ``term``, ``effect``
    ("distal", or "direct" / "indirect"), ``estimate``, ``se``, ``lcl``, ``ucl``, ``t``,
    ``df``, ``p`` (t intervals, two-sided p). Mediation terms are named ``direct:<basis term>``
    and ``indirect:<basis term>``; ``lincomb`` and ``joint_test`` take weights over all terms
    (e.g. ``{"direct:Intercept": 1, "indirect:Intercept": -1}``). ``effect_curve()`` gives the
    effect(s) over the decision points (or a grid of moderator values); for mediation also the
    total effect (direct + indirect). ``bayesian_bootstrap()`` gives draws for
    :func:`hm.crosscheck <hte_mrt.crosscheck>`. ``nuisance_values`` holds the stage-1 values
    (DCEE: mu0, mu1; mediation: p1, q1, eta1, eta0, mu1, mu0, nu1, nu0; indexed by input row,
    so it can be passed back as ``nuisance=``). ``small_sample`` is True when the covariance is
    the Mancl-DeRouen corrected sandwich (MRTAnalysis: never). ``to_netcdf`` /
    ``DistalResult.from_netcdf`` save and restore the estimates (not the bootstrap pieces or
    nuisance values).

    Examples
    --------
    >>> import hte_mrt as hm
    >>> sim = hm.MRTSimulation(n_participants=30, n_decisions=10)
    >>> frame = sim.simulate(seed=1).rename(columns={"t": "decision"})
    >>> frame["y_distal"] = frame.groupby("id")["y"].transform("mean")
    >>> trial = hm.MRTData(frame, id="id", time="decision", treatment="A",
    ...                    outcome="y_distal", prob="prob", availability="avail")
    >>> fit = hm.dcee(trial, "~ decision", "~ S")
    >>> fit
    <DistalResult: distal causal excursion effect, 2 terms, n = 30>
    >>> fit.effect_curve().columns.tolist()
    ['decision', 'effect', 'estimate', 'se', 'lcl', 'ucl', 't', 'df', 'p']
    >>> boot = fit.bayesian_bootstrap(n_boot=200, seed=1, progress=False)
    >>> boot.table().columns.tolist()
    ['term', 'estimate', 'se', 'lcl', 'ucl', 'pr_positive']
    """

    method: str
    terms: list[str]
    effects: list[str]
    basis: list[str]
    theta: np.ndarray
    cov_theta: np.ndarray
    df: int
    n: int
    conf_level: float = 0.95
    small_sample: bool = False
    info: dict = field(default_factory=dict)
    spec: Any = field(default=None, repr=False)
    pieces: Any = field(default=None, repr=False)
    nuisance_values: pd.DataFrame | None = field(default=None, repr=False)

    _format: ClassVar[str] = "hte_mrt.DistalResult/1"

    # ------------------------------------------------------------ contract
    @property
    def _kind(self) -> str:  # type: ignore[override]
        return _KINDS.get(self.method, self.method)

    def _repr_extra(self) -> str:
        k = len(self.terms)
        return f"{k} term{'s' if k != 1 else ''}, n = {self.n}"

    def _table(self, conf_level: float) -> pd.DataFrame:
        tab = _t_table(self.terms, self.theta, self.bse.to_numpy(), self.df, conf_level)
        tab.insert(1, "effect", list(self.effects))
        return tab

    def _summary_parts(self) -> tuple[str, dict, list[str]]:
        info = {
            "participants": self.n,
            "df": self.df,
            "variance": (
                "sandwich (participants; nuisance held fixed), Mancl-DeRouen small-sample corrected"
                if self.small_sample
                else "sandwich (participants; nuisance held fixed), uncorrected (as MRTAnalysis)"
            ),
            "learner": _learner_text(self.info.get("learner")),
            "cross-fit folds": self.info.get("cross_fit") or "none",
        }
        notes = [f"Moderators {self.info.get('moderators', '')}."]
        if self.method == "MCEE":
            notes.append(
                f"Mediator '{self.info.get('mediator')}'; direct = NDEE (alpha), indirect = "
                "NIEE (beta); direct + indirect = the total excursion effect."
            )
        if self.info.get("known"):
            notes.append(f"Known nuisance values: {', '.join(self.info['known'])}.")
        return f"{self.method}: {self._kind}", info, notes

    # ------------------------------------------------------------ labelled parameters
    @property
    def label(self) -> str:
        """The estimator's name ("DCEE" or "MCEE"), e.g. in :func:`hm.crosscheck
        <hte_mrt.crosscheck>` tables."""
        return self.method

    @property
    def names_effect(self) -> list[str]:
        """The terms (every row of ``table()``)."""
        return list(self.terms)

    @property
    def params(self) -> pd.Series:
        """Estimates, labelled by term."""
        return pd.Series(np.asarray(self.theta, float), index=self.terms, name="estimate")

    @property
    def bse(self) -> pd.Series:
        """Standard errors, labelled by term."""
        return pd.Series(np.sqrt(np.diag(self.cov_theta)), index=self.terms, name="se")

    @property
    def cov(self) -> pd.DataFrame:
        """Sandwich covariance of all terms."""
        return pd.DataFrame(self.cov_theta, index=self.terms, columns=self.terms)

    # ------------------------------------------------------------ contrasts
    def lincomb(
        self, weights: Any, names: Sequence[str] | None = None, conf_level: float | None = None
    ) -> pd.DataFrame:
        """t(df) inference for linear combinations c'theta of the terms.

        ``weights`` as for :meth:`hte_mrt.ExcursionResult.lincomb` ({term: weight}, a list of
        them, an array with one entry per term, a matrix or a DataFrame). Returns term,
        estimate, se, lcl, ucl, t, df, p.
        """
        L = contrast_matrix(weights, self.terms, names)
        return _lincomb_table(
            L, np.asarray(self.theta, float), self.cov_theta, self.df, self._level(conf_level)
        )

    def joint_test(self, weights: Any = None) -> JointTest:
        """Hotelling T^2 test that every listed combination is 0 (default: every term)."""
        if weights is None:
            weights = np.eye(len(self.terms))
        L = contrast_matrix(weights, self.terms, None)
        return _hotelling_test(L, np.asarray(self.theta, float), self.cov_theta, self.df,
                               self.method)  # fmt: skip

    def effect_curve(
        self, grid: pd.DataFrame | None = None, conf_level: float | None = None
    ) -> pd.DataFrame:
        """The effect f(s)'theta with pointwise t intervals on a grid of moderator values.

        Parameters
        ----------
        grid : pandas.DataFrame, optional
            Moderator values, one output row per grid row (and effect). Default: the trial's
            decision points, when the moderators are a function of the decision point only.
        conf_level : float, optional
            Interval level (default: the result's).

        Returns
        -------
        pandas.DataFrame
            The grid columns, ``effect`` ("distal"; or "direct", "indirect", "total"), then
            estimate, se, lcl, ucl, t, df, p.
        """
        grid = self._grid(grid)
        F = self._f_matrix(grid)
        p = len(self.basis)
        blocks = (
            {"distal": [F]}
            if self.method == "DCEE"
            else {
                "direct": [F, np.zeros_like(F)],
                "indirect": [np.zeros_like(F), F],
                "total": [F, F],
            }
        )
        out = []
        for eff, parts in blocks.items():
            M = np.hstack(parts)
            assert M.shape[1] == len(self.terms) and F.shape[1] == p
            tab = self.lincomb(M, names=[str(i) for i in range(len(grid))], conf_level=conf_level)
            tab = pd.concat([grid.reset_index(drop=True), tab.drop(columns="term")], axis=1)
            tab.insert(grid.shape[1], "effect", eff)
            out.append(tab)
        return pd.concat(out, ignore_index=True)

    def _grid(self, grid: pd.DataFrame | None) -> pd.DataFrame:
        time = self.info.get("time", "t")
        if grid is not None:
            check_grid(grid)
            return grid
        needed = self._moderator_columns()
        if needed <= {time}:
            return pd.DataFrame({time: self.info.get("decision_points") or [0.0]})
        raise DesignError(
            f"effect_curve: the moderators {self.info.get('moderators')} use "
            f"{sorted(needed - {time})} besides the decision point '{time}'; give grid= (a "
            f"DataFrame with the columns {sorted(needed)})."
        )

    def _moderator_columns(self) -> set[str]:
        from formulaic import Formula

        from hte_mrt.estimands.excursion import _required_columns

        rhs = str(self.info.get("moderators", "~ 1")).split("~", 1)[-1].strip() or "1"
        return _required_columns(Formula(rhs))

    def _f_matrix(self, grid: pd.DataFrame) -> np.ndarray:
        from formulaic import model_matrix
        from formulaic.errors import FormulaicError

        missing = sorted(self._moderator_columns() - set(grid.columns))
        if missing:
            raise DesignError(
                f"grid lacks the moderator column(s) {missing} of {self.info.get('moderators')}."
            )
        try:
            if self.spec is not None:
                mm = self.spec.get_model_matrix(grid, na_action="raise")
            else:
                rhs = str(self.info.get("moderators", "~ 1")).split("~", 1)[-1].strip() or "1"
                mm = model_matrix(rhs, grid, na_action="raise")
        except (FormulaicError, ValueError) as e:
            raise FormulaError(f"Cannot build the moderator terms on the grid: {e}") from e
        cols = list(mm.model_spec.column_names)
        if cols != list(self.basis):
            raise FormulaError(
                f"The grid gives the moderator terms {cols}, the fit has {self.basis}: give the "
                "grid's moderator columns the types and levels of the trial."
            )
        return np.asarray(mm, dtype=float)

    # ------------------------------------------------------------ robust posterior
    def bayesian_bootstrap(
        self,
        n_boot: int = 2000,
        *,
        seed: Any = None,
        conf_level: float | None = None,
        progress: bool = True,
    ) -> DistalBootstrapResult:
        r"""Bayesian bootstrap of the stage-2 estimating equation (a robust posterior).

        Draw r: participant weights :math:`w_r \sim n\,\mathrm{Dirichlet}(1, \dots, 1)` and
        :math:`\theta_r = (\sum_i w_{ri} B_i)^{-1} \sum_i w_{ri} b_i`, with :math:`B_i`,
        :math:`b_i` participant i's bread and right-hand side (the nuisance predictions held
        fixed, as in the sandwich). Compare with the sandwich by
        ``hm.crosscheck(fit, fit.bayesian_bootstrap(...))``.

        Parameters
        ----------
        n_boot : int
            Number of draws.
        seed : int, optional
            Seed of the Dirichlet weights.
        conf_level : float, optional
            Default interval level of the result (default: the fit's).
        progress : bool
            Show a progress bar over batches of draws.

        Returns
        -------
        DistalBootstrapResult
            A :class:`~hte_mrt.BootstrapResult` (draws over ``draw`` x ``term``).
        """
        n_boot = check_int("n_boot", n_boot, 2)
        seed = check_seed(seed)
        progress = check_bool("progress", progress)
        level = self._level(conf_level)
        if self.pieces is None:
            raise DesignError(
                "bayesian_bootstrap needs the fit's per-participant pieces, which are not saved "
                "with the result: refit (hm.dcee / hm.mcee) on the trial, then bootstrap."
            )
        Ai, bi = self.pieces
        n, p, k = bi.shape
        rng = np.random.default_rng(seed)
        draws = np.empty((n_boot, p * k))
        batch = 1000
        with tqdm(
            total=n_boot, disable=not progress, desc="Bayesian bootstrap", unit="draw"
        ) as bar:
            for start in range(0, n_boot, batch):
                nb = min(batch, n_boot - start)
                w = rng.dirichlet(np.ones(n), size=nb) * n
                Aw = np.einsum("bi,ipq->bpq", w, Ai)
                bw = np.einsum("bi,ipk->bpk", w, bi)
                coef = np.linalg.solve(Aw, bw)  # nb x p x k
                draws[start : start + nb] = coef.transpose(0, 2, 1).reshape(nb, -1)
                bar.update(nb)
        da = xr.DataArray(
            draws,
            dims=("draw", "term"),
            coords={"draw": np.arange(n_boot), "term": list(self.terms)},
            name="bayesian_bootstrap",
        )
        return DistalBootstrapResult(
            draws=da,
            method=f"Bayesian bootstrap of {self.method}",
            conf_level=level,
            n=self.n,
            seed=seed if isinstance(seed, int | type(None)) else None,
            notes=["Nuisance predictions held fixed (stage 2 reweighted)."],
        )

    # ------------------------------------------------------------ saving
    def to_xarray(self) -> xr.Dataset:
        """Estimates, standard errors and covariance over ``term`` (with each term's
        ``effect`` as a coordinate)."""
        return xr.Dataset(
            {
                "estimate": ("term", np.asarray(self.theta, float)),
                "se": ("term", self.bse.to_numpy()),
                "cov": (("term", "term2"), np.asarray(self.cov_theta, float)),
            },
            coords={
                "term": list(self.terms),
                "term2": list(self.terms),
                "effect": ("term", list(self.effects)),
            },
            attrs={
                "method": self.method,
                "df": int(self.df),
                "n": int(self.n),
                "small_sample": int(bool(self.small_sample)),
                "hte_mrt_class": type(self).__name__,
            },
        )

    def _sidecar_meta(self) -> dict:
        return {
            "method": self.method,
            "terms": list(self.terms),
            "effects": list(self.effects),
            "basis": list(self.basis),
            "df": int(self.df),
            "n": int(self.n),
            "conf_level": float(self.conf_level),
            "small_sample": bool(self.small_sample),
            "info": self.info,
        }

    @classmethod
    def from_netcdf(cls, path: str | Path) -> DistalResult:
        """Restore a result saved by ``to_netcdf`` (estimates, covariance, df, settings;
        ``effect_curve`` rebuilds the moderator terms from the saved formula)."""
        check_path(path)
        meta = read_sidecar(path, "DistalResult")
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            theta = ds["estimate"].to_numpy().copy()
            cov = ds["cov"].to_numpy().copy()
        return cls(
            method=meta["method"],
            terms=list(meta["terms"]),
            effects=list(meta["effects"]),
            basis=list(meta["basis"]),
            theta=theta,
            cov_theta=cov,
            df=int(meta["df"]),
            n=int(meta["n"]),
            conf_level=float(meta["conf_level"]),
            small_sample=bool(meta.get("small_sample", False)),
            info=dict(meta.get("info") or {}),
        )


def _learner_text(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}: {x}" for k, x in v.items())
    return str(v)


@dataclass(eq=False, repr=False)
class DistalBootstrapResult(BootstrapResult):
    """Bayesian-bootstrap draws of a DCEE or mediation fit (from
    :meth:`DistalResult.bayesian_bootstrap`): a :class:`~hte_mrt.BootstrapResult` (table with
    pr_positive, ``effect_draws``, ``lincomb``, NetCDF round trip) that says what it bootstraps.

    Examples
    --------
    >>> import hte_mrt as hm
    >>> sim = hm.MRTSimulation(n_participants=30, n_decisions=10)
    >>> frame = sim.simulate(seed=1).rename(columns={"t": "decision"})
    >>> frame["y_distal"] = frame.groupby("id")["y"].transform("mean")
    >>> trial = hm.MRTData(frame, id="id", time="decision", treatment="A",
    ...                    outcome="y_distal", prob="prob", availability="avail")
    >>> fit = hm.dcee(trial, "~ 1", "~ S")
    >>> boot = fit.bayesian_bootstrap(n_boot=500, seed=1, progress=False)
    >>> boot
    <DistalBootstrapResult: Bayesian bootstrap of DCEE, 1 term, 500 replicates>
    >>> cc = hm.crosscheck(fit, boot)
    >>> cc.flagged
    []
    """

    @property
    def _kind(self) -> str:  # type: ignore[override]
        return self.method
