"""Draw-based results: the Bayesian bootstrap of WCLS, and summaries of any effect draws.

:func:`draws_table` summarizes draws of effect terms (or of linear combinations of them) with
the package's columns: ``estimate`` (mean of the draws), ``se`` (their sd), equal-tailed
``lcl`` / ``ucl`` and ``pr_positive`` (share of draws above 0). :func:`hte_mrt.crosscheck` uses
it for linear combinations of posterior or bootstrap draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from hte_mrt._contract import Result, check_conf_level, read_sidecar
from hte_mrt.data.checks import check_path
from hte_mrt.results.frequentist import contrast_matrix


def stack_draws(draws: xr.DataArray) -> np.ndarray:
    """Draws with a ``term`` dim as an array (samples x terms), every other dim stacked."""
    other = [d for d in draws.dims if d != "term"]
    return draws.transpose(*other, "term").to_numpy().reshape(-1, draws.sizes["term"])


def draws_table(draws: np.ndarray, names: Sequence[str], conf_level: float) -> pd.DataFrame:
    """term, estimate (mean), se (sd), lcl, ucl (equal-tailed), pr_positive of draws
    (samples x terms)."""
    level = check_conf_level(conf_level)
    lo, hi = (1 - level) / 2, (1 + level) / 2
    return pd.DataFrame(
        {
            "term": list(names),
            "estimate": draws.mean(axis=0),
            "se": draws.std(axis=0, ddof=1),
            "lcl": np.quantile(draws, lo, axis=0),
            "ucl": np.quantile(draws, hi, axis=0),
            "pr_positive": (draws > 0).mean(axis=0),
        }
    )


@dataclass(eq=False, repr=False)
class BootstrapResult(Result):
    r"""Bayesian-bootstrap draws of the WCLS coefficients (from :func:`hm.bayesian_bootstrap
    <hte_mrt.bayesian_bootstrap>`).

    ``table(conf_level=None)`` has the columns ``term``, ``estimate`` (mean of the draws),
    ``se`` (their sd), ``lcl``, ``ucl`` (equal-tailed percentile interval) and ``pr_positive``
    (share of draws above 0); ``effect_draws()`` gives the effect terms' draws (dims ``draw``,
    ``term``) and ``draws`` every requested term (``control:`` prefix for control terms).

    Examples
    --------
    >>> import hte_mrt as hm
    >>> trial = hm.load_dataset("heartsteps", as_data=True)
    >>> boot = hm.bayesian_bootstrap(trial, "~ 1", "~ jbsteps30pre_log", n_boot=1000, seed=1,
    ...                              progress=False)
    >>> boot
    <BootstrapResult: Bayesian bootstrap of WCLS, 1 term, 1000 replicates>
    >>> boot.table().columns.tolist()
    ['term', 'estimate', 'se', 'lcl', 'ucl', 'pr_positive']
    """

    draws: xr.DataArray
    method: str = "Bayesian bootstrap of WCLS"
    conf_level: float = 0.95
    n: int = 0
    seed: int | None = None
    notes: list[str] = field(default_factory=list)
    estimand: Any = field(default=None, repr=False)

    _format: ClassVar[str] = "hte_mrt.BootstrapResult/1"
    _kind: ClassVar[str] = "Bayesian bootstrap of WCLS"

    @property
    def n_boot(self) -> int:
        """Number of bootstrap draws."""
        return int(self.draws.sizes["draw"])

    @property
    def names_effect(self) -> list[str]:
        """Effect terms (the terms without a ``control:`` prefix)."""
        return [str(t) for t in self.draws["term"].values if not str(t).startswith("control:")]

    def effect_draws(self) -> xr.DataArray:
        """Draws of the effect terms, dims ``(draw, term)``."""
        return self.draws.sel(term=self.names_effect)

    def _table(self, conf_level: float) -> pd.DataFrame:
        terms = [str(t) for t in self.draws["term"].values]
        return draws_table(stack_draws(self.draws), terms, conf_level)

    def lincomb(
        self, weights: Any, names: Sequence[str] | None = None, conf_level: float | None = None
    ) -> pd.DataFrame:
        """Draw-by-draw linear combinations c'beta of the effect terms.

        ``weights`` as for :meth:`hte_mrt.ExcursionResult.lincomb`; returns term, estimate, se,
        lcl, ucl, pr_positive.
        """
        L = contrast_matrix(weights, self.names_effect, names)
        d = stack_draws(self.effect_draws()) @ L.to_numpy().T
        return draws_table(d, list(L.index), self._level(conf_level))

    def _summary_parts(self) -> tuple[str, dict, list[str]]:
        info = {"participants": self.n, "replicates": self.n_boot, "seed": self.seed}
        notes = [
            *self.notes,
            "Dirichlet(1, ..., 1) weights over participants; percentile intervals; "
            "no outcome model.",
        ]
        return self.method, info, notes

    def _repr_extra(self) -> str:
        k = len(self.names_effect)
        return f"{k} term{'s' if k != 1 else ''}, {self.n_boot} replicates"

    def to_xarray(self) -> xr.Dataset:
        """The draws (variable ``draws``, dims ``draw``, ``term``)."""
        ds = self.draws.rename("draws").to_dataset()
        ds.attrs = {"method": self.method, "hte_mrt_class": type(self).__name__}
        return ds

    def _sidecar_meta(self) -> dict:
        return {
            "method": self.method,
            "conf_level": self.conf_level,
            "n": self.n,
            "seed": self.seed,
            "notes": list(self.notes),
        }

    @classmethod
    def from_netcdf(cls, path: str | Path) -> BootstrapResult:
        """Restore a result saved by ``to_netcdf``."""
        check_path(path)
        meta = read_sidecar(path, "BootstrapResult")
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            draws = ds["draws"].load()
        draws = draws.assign_coords(term=[str(t) for t in draws["term"].values])
        draws.name = "bayesian_bootstrap"
        draws.attrs = {}
        return cls(
            draws=draws,
            method=meta["method"],
            conf_level=float(meta["conf_level"]),
            n=int(meta["n"]),
            seed=meta.get("seed"),
            notes=list(meta.get("notes") or []),
        )
