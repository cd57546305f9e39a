"""The standardized proximal effect over time and its participant-bootstrap draws."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from hte_mrt._contract import Result, read_sidecar
from hte_mrt.data.checks import check_path
from hte_mrt.errors import DesignError


def boot_percentile(draws: np.ndarray, prob: float) -> np.ndarray:
    """R ``boot.ci(type = "perc")`` bounds, column by column: the order statistic of rank
    (R + 1) prob among the R finite replicates, interpolated on the normal-quantile scale when
    that rank is not an integer (``boot:::norm.inter``; the extreme order statistic when the
    rank falls outside 1..R)."""
    from scipy.stats import norm

    draws = np.atleast_2d(np.asarray(draws, dtype=float))
    out = np.full(draws.shape[1], np.nan)
    for j in range(draws.shape[1]):
        t = np.sort(draws[np.isfinite(draws[:, j]), j])
        R = t.shape[0]
        if R == 0:
            continue
        rk = (R + 1) * prob
        k = int(np.trunc(rk))
        if k <= 0:
            out[j] = t[0]
        elif k >= R:
            out[j] = t[-1]
        elif np.isclose(k, rk, rtol=0, atol=1e-9):
            out[j] = t[k - 1]
        else:
            z, zk, zk1 = norm.ppf(prob), norm.ppf(k / (R + 1)), norm.ppf((k + 1) / (R + 1))
            out[j] = t[k - 1] + (z - zk) / (zk1 - zk) * (t[k] - t[k - 1])
    return out


@dataclass(eq=False, repr=False)
class EffectSizeResult(Result):
    r"""Standardized proximal effect d(t) per decision point (from :func:`hm.effect_size
    <hte_mrt.effect_size>`).

    ``table(conf_level=None)`` has one row per decision point: the time column, ``estimate``
    (d(t) = b~(t) / s~(t)), ``se`` (sd of the bootstrap replicates), ``lcl`` / ``ucl``
    (equal-tailed percentile interval of the replicates at ``conf_level``, computed as R's
    ``boot.ci(type = "perc")``: :func:`boot_percentile`), ``raw_effect``
    (the smoothed effect b~(t) on the outcome's scale) and ``scale`` (the smoothed pooled sd
    s~(t)). Without bootstrap replicates se, lcl and ucl are empty.

    Attributes
    ----------
    time : str
        Name of the time column.
    times, estimate, raw_effect, scale : numpy.ndarray
        Decision points and the curves.
    boot : numpy.ndarray
        Bootstrap replicates of d(t) (replicates x decision points).
    settings : dict
        controls, smooth, span, degree, n_participants, outcome.

    Examples
    --------
    >>> import hte_mrt as hm
    >>> sim = hm.MRTSimulation(n_participants=40, n_decisions=30, endogenous=False)
    >>> res = hm.effect_size(sim.mrt_data(seed=1), n_boot=50, seed=1, progress=False)
    >>> fig = res.plot()
    >>> import matplotlib.pyplot as plt
    >>> plt.close(fig)
    """

    time: str
    times: np.ndarray
    estimate: np.ndarray
    raw_effect: np.ndarray
    scale: np.ndarray
    boot: np.ndarray = field(repr=False)
    conf_level: float = 0.95
    seed: int | None = None
    settings: dict = field(default_factory=dict)

    _kind: ClassVar[str] = "standardized effect over time"
    _format: ClassVar[str] = "hte_mrt.EffectSizeResult/1"

    @property
    def n_boot(self) -> int:
        """Number of bootstrap replicates."""
        return int(self.boot.shape[0])

    def _table(self, conf_level: float) -> pd.DataFrame:
        lo, hi = (1 - conf_level) / 2, (1 + conf_level) / 2
        T = len(self.times)
        if self.n_boot:
            b = self.boot
            with np.errstate(invalid="ignore"):
                se = np.nanstd(b, axis=0, ddof=1)
            lcl, ucl = boot_percentile(b, lo), boot_percentile(b, hi)
        else:
            se = lcl = ucl = np.full(T, np.nan)
        return pd.DataFrame(
            {
                self.time: self.times,
                "estimate": self.estimate,
                "se": se,
                "lcl": lcl,
                "ucl": ucl,
                "raw_effect": self.raw_effect,
                "scale": self.scale,
            }
        )

    def _summary_parts(self) -> tuple[str, dict, list[str]]:
        st = self.settings
        info = {
            "participants": st.get("n_participants", ""),
            "decision points": len(self.times),
            "bootstrap replicates": self.n_boot,
            "smoothing": (
                f"LOESS span {st.get('span')}, degree {st.get('degree')}"
                if st.get("smooth", True)
                else "none"
            ),
            "controls": st.get("controls", "~ 1"),
        }
        notes = [
            "estimate = smoothed IPW effect / smoothed pooled sd of the outcome (Luers et al. "
            "2019); intervals: participant-bootstrap percentiles."
        ]
        return f"Standardized proximal effect of {st.get('outcome', 'the outcome')}", info, notes

    def _repr_extra(self) -> str:
        return f"{len(self.times)} decision points, {self.n_boot} replicates"

    # ------------------------------------------------------------------ figure
    def plot(self, ax: Any = None, truth: Any = None, conf_level: float | None = None) -> Any:
        """The standardized effect over time with its bootstrap band (a matplotlib Figure).

        ``truth`` (optional): an array of true d(t), one per decision point, drawn dashed.
        """
        import matplotlib.pyplot as plt

        tab = self.table(conf_level)
        level = self._level(conf_level)
        if ax is None:
            fig, ax = plt.subplots(figsize=(6, 3.5))
        else:
            fig = ax.figure
        x = tab[self.time].to_numpy(dtype=float)
        if self.n_boot:
            ax.fill_between(x, tab["lcl"], tab["ucl"], alpha=0.25, color="C0",
                            label=f"{100 * level:g}% bootstrap interval")  # fmt: skip
        ax.plot(x, tab["estimate"], color="C0", label="estimate")
        if truth is not None:
            tr = np.asarray(truth, dtype=float)
            if tr.shape != x.shape:
                raise DesignError(
                    f"plot: truth must have one value per decision point ({x.shape[0]}), got "
                    f"shape {tr.shape}."
                )
            ax.plot(x, tr, color="k", ls="--", label="truth")
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_xlabel(self.time)
        ax.set_ylabel("standardized effect d(t)")
        ax.legend(frameon=False, fontsize="small")
        fig.tight_layout()
        return fig

    # ------------------------------------------------------------------ saving
    def to_xarray(self) -> xr.Dataset:
        """Curves (dim ``time``) and bootstrap replicates (dims ``replicate``, ``time``)."""
        ds = xr.Dataset(
            {
                "estimate": ("time", np.asarray(self.estimate, dtype=float)),
                "raw_effect": ("time", np.asarray(self.raw_effect, dtype=float)),
                "scale": ("time", np.asarray(self.scale, dtype=float)),
                "boot": (("replicate", "time"), np.asarray(self.boot, dtype=float)),
            },
            coords={"time": np.asarray(self.times)},
        )
        ds.attrs["hte_mrt_class"] = type(self).__name__
        return ds

    def _sidecar_meta(self) -> dict:
        return {"time": self.time, "conf_level": self.conf_level, "seed": self.seed,
                "settings": self.settings}  # fmt: skip

    @classmethod
    def from_netcdf(cls, path: str | Path) -> EffectSizeResult:
        """Load a result saved with :meth:`to_netcdf`."""
        check_path(path)
        meta = read_sidecar(path, "EffectSizeResult")
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            ds = ds.load()
        return cls(
            time=meta["time"],
            times=ds["time"].to_numpy(),
            estimate=ds["estimate"].to_numpy(),
            raw_effect=ds["raw_effect"].to_numpy(),
            scale=ds["scale"].to_numpy(),
            boot=ds["boot"].to_numpy().reshape(-1, ds.sizes["time"]),
            conf_level=float(meta["conf_level"]),
            seed=meta.get("seed"),
            settings=dict(meta.get("settings", {})),
        )
