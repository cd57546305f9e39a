"""The re-randomization test's result: the observed WCLS fit and the null distribution of t."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from hte_mrt._contract import Result, read_sidecar
from hte_mrt.data.checks import check_path
from hte_mrt.results.frequentist import ExcursionResult


@dataclass(eq=False, repr=False)
class RandomizationResult(Result):
    """Observed WCLS fit plus the re-randomization distribution of each effect's t statistic
    (from :func:`hm.randomization_test <hte_mrt.randomization_test>`).

    ``table(conf_level=None)`` has the observed fit's columns ``term``, ``estimate``, ``se``,
    ``lcl``, ``ucl``, ``t``, ``df``, ``p`` (the model-based t test) and then
    ``p_randomization`` = (1 + #{r : |t*_r| >= |t_obs|}) / (R + 1) and
    ``share_significant``, the share of re-randomized analyses with model-based p < ``alpha``
    (near ``alpha`` when the t test is calibrated).

    Attributes
    ----------
    observed : ExcursionResult
        The WCLS fit on the observed treatments.
    t_null, estimates_null : numpy.ndarray
        t statistics and estimates of the effect terms in each redraw (resamples x terms).
    alpha : float
        Level of the "significant" share.
    scheme : {"redraw", "permute"}
    seed : int or None
    """

    observed: ExcursionResult
    t_null: np.ndarray = field(repr=False)
    estimates_null: np.ndarray = field(repr=False)
    alpha: float = 0.05
    scheme: str = "redraw"
    seed: int | None = None

    _kind: ClassVar[str] = "re-randomization test of WCLS excursion effects"
    _format: ClassVar[str] = "hte_mrt.RandomizationResult/1"

    @property
    def conf_level(self) -> float:
        """The observed fit's interval level."""
        return self.observed.conf_level

    @property
    def n_resamples(self) -> int:
        """Number of re-randomizations."""
        return int(self.t_null.shape[0])

    def _table(self, conf_level: float) -> pd.DataFrame:
        tab = self.observed.table(conf_level)
        t_obs = tab["t"].to_numpy()
        exceed = (np.abs(self.t_null) >= np.abs(t_obs)[None, :] - 1e-12).sum(axis=0)
        p_null = 2 * stats.t.sf(np.abs(self.t_null), self.observed.df)
        tab["p_randomization"] = (1 + exceed) / (1 + self.n_resamples)
        tab["share_significant"] = (p_null < self.alpha).mean(axis=0)
        undefined = ~np.isfinite(t_obs)  # e.g. a constant outcome: the summary says why
        tab.loc[undefined, ["p_randomization", "share_significant"]] = np.nan
        return tab

    def _summary_parts(self) -> tuple[str, dict, list[str]]:
        info = {
            "resamples": self.n_resamples,
            "scheme": self.scheme,
            "seed": self.seed,
            "alpha": f"{self.alpha:g}",
            "participants": self.observed.n,
        }
        notes = (
            [str(self.observed.info["degenerate"])] if self.observed.info.get("degenerate") else []
        )
        notes += [
            "p is the model-based t test; p_randomization compares |t| with its "
            "re-randomization distribution; share_significant is the share of redraws with "
            f"p < {self.alpha:g}."
        ]
        return f"Re-randomization test ({self.observed.method})", info, notes

    def _repr_extra(self) -> str:
        return f"{self.n_resamples} resamples, {self.scheme}"

    def _sidecar_meta(self) -> dict:
        return {
            "alpha": float(self.alpha),
            "scheme": self.scheme,
            "seed": self.seed
            if self.seed is None or isinstance(self.seed, int)
            else str(self.seed),
            "observed": self.observed._sidecar_meta(),
        }

    @classmethod
    def from_netcdf(cls, path: str | Path, data: Any = None) -> RandomizationResult:
        """Restore a result saved by ``to_netcdf`` (the observed fit and the null draws).

        ``data`` (the trial) rebuilds the observed fit's design, as for
        :meth:`ExcursionResult.from_netcdf <hte_mrt.ExcursionResult.from_netcdf>`. A file that
        is not a saved RandomizationResult raises :class:`~hte_mrt.errors.DataError`.
        """
        check_path(path)
        meta = read_sidecar(path, "RandomizationResult")
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            t_null = ds["t_null"].to_numpy().copy()
            est_null = ds["estimates_null"].to_numpy().copy()
            theta = ds["theta"].to_numpy().copy()
            cov_theta = ds["cov_theta"].to_numpy().copy()
        observed = ExcursionResult._from_parts(meta["observed"], theta, cov_theta, data, path)
        seed = meta.get("seed")
        return cls(
            observed,
            t_null,
            est_null,
            alpha=float(meta["alpha"]),
            scheme=str(meta["scheme"]),
            seed=seed,
        )

    def to_xarray(self) -> xr.Dataset:
        """The table's columns (dim ``term``) plus ``t_null`` and ``estimates_null`` (dims
        ``resample``, ``term``)."""
        tab = self.table().set_index("term")
        ds = xr.Dataset.from_dataframe(tab)
        ds["t_null"] = (("resample", "term"), self.t_null)
        ds["estimates_null"] = (("resample", "term"), self.estimates_null)
        obs = self.observed.to_xarray()
        ds["theta"] = obs["theta"]
        ds["cov_theta"] = obs["cov_theta"]
        ds.attrs = {
            "scheme": self.scheme,
            "alpha": self.alpha,
            "seed": -1 if self.seed is None else int(self.seed),
            "hte_mrt_class": type(self).__name__,
        }
        return ds
