"""The one results contract every result object follows, and the package's naming conventions.

Every result (frequentist, Bayesian, CATE, design, study) subclasses :class:`Result` and so has

* ``table(conf_level=None, style="tidy")``: the tidy DataFrame; the same quantity has the same
  column name everywhere (:data:`COLUMNS`); ``style="paper"`` gives a publication table
  ("estimate (95% CI)" cells, human headers, consistent significant digits, no ``None``);
* ``summary()``: a :class:`Summary` that prints as text, renders as HTML in a notebook and exposes
  ``.table``;
* ``conf_int(alpha=0.05)``: intervals with statsmodels' meaning (``alpha=0.05`` gives 95%);
* ``to_xarray()`` / ``to_netcdf(path)`` (NetCDF + JSON sidecar, never pickle);
* a short ``repr`` and a notebook display (``_repr_html_``).

The names below are the package's one name per idea (the conventions page of the documentation
lists them; ``tests/test_conventions.py`` enforces them on every public signature and table).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import xarray as xr

from hte_mrt._util import json_default, output_path
from hte_mrt.errors import DesignError

#: canonical argument names -> names that must not appear as a second name for the same idea
ARGUMENT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "seed": ("random_state", "random_seed", "rng_seed", "rng"),
    "conf_level": ("level", "hdi_prob", "ci_prob", "ci_level", "confidence"),
    "n_jobs": ("cores", "n_cores", "njobs", "workers", "n_workers"),
    "progress": ("progressbar", "progress_bar", "verbose_progress", "show_progress"),
    "draws": ("n_draws", "samples", "n_samples", "num_mcmc"),
    "tune": ("n_tune", "burnin", "num_burnin", "warmup"),
    "n_estimators": ("n_trees", "num_trees", "num_boost_round", "n_rounds"),
    "max_em_iter": ("em_iter", "n_em", "em_passes"),
    "n_reps": ("n_rep", "n_sims", "n_replicates", "reps", "n_simulations"),
    "sd_slope": ("slope_sd",),
    "sd_cluster": ("cluster_sd",),
}

#: canonical table columns -> names that must not appear as a second name for the same quantity
COLUMN_SYNONYMS: dict[str, tuple[str, ...]] = {
    "estimate": ("mean", "coef", "est", "Estimate", "posterior_mean"),
    "se": ("sd", "std", "std_err", "stderr", "se_est", "posterior_sd"),
    "lcl": ("lower", "2.5%", "ci_lower", "posterior_lcl", "lo", "95% lcl", "hdi_lower"),
    "ucl": ("upper", "97.5%", "ci_upper", "posterior_ucl", "hi", "95% ucl", "hdi_upper"),
    "pr_positive": ("p_gt_0", "pr_gt_0", "prob_positive", "p_positive"),
    "p": ("p_value", "pvalue", "p-value", "Pr(>|t|)"),
    "r_hat": ("rhat", "Rhat"),
}

#: human headers for ``table(style="paper")``
PAPER_HEADERS: dict[str, str] = {
    "term": "Term",
    "quantity": "Quantity",
    "estimate": "Estimate",
    "se": "SE",
    "t": "t",
    "df": "df",
    "p": "p",
    "pr_positive": "Pr(> 0)",
    "r_hat": "R-hat",
    "ess_bulk": "ESS (bulk)",
    "ess_tail": "ESS (tail)",
    "n": "n",
    "level": "Level",
    "effect": "Effect",
    "estimator": "Estimator",
    "power": "Power",
    "target_power": "Target power",
    "analytic_power": "Analytic power",
    "n_reps": "Replicates",
    "observed_rate": "Observed rate",
    "stated_rate": "Stated rate",
    "p_adjusted": "p (adjusted)",
    "p_randomization": "p (randomization)",
    "share_significant": "Share significant",
    "difference_in_se": "Difference (SEs)",
    "se_ratio": "SE ratio",
    "flag": "Flag",
}

Style = Literal["tidy", "paper"]


def check_conf_level(conf_level: Any, name: str = "conf_level") -> float:
    """Validate an interval level in (0, 1) (e.g. 0.95), or raise :class:`DesignError`."""
    if isinstance(conf_level, bool) or not isinstance(conf_level, int | float | np.number):
        raise DesignError(f"{name} must be a number in (0, 1) such as 0.95, got {conf_level!r}.")
    c = float(conf_level)
    if not 0.0 < c < 1.0:
        hint = f" (did you mean {c / 100:g}?)" if 1.0 < c < 100.0 else ""
        raise DesignError(f"{name} must lie in (0, 1), e.g. 0.95; got {conf_level!r}{hint}.")
    return c


def alpha_to_level(alpha: Any) -> float:
    """statsmodels' ``alpha`` (0.05 -> a 95% interval) as an interval level."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float | np.number):
        raise DesignError(f"alpha must be a number in (0, 1) such as 0.05, got {alpha!r}.")
    a = float(alpha)
    if not 0.0 < a < 1.0:
        raise DesignError(
            f"alpha must lie in (0, 1): alpha=0.05 gives a 95% interval; got {alpha!r}."
        )
    return 1.0 - a


# ----------------------------------------------------------------------------------- formatting
def _sig(x: Any, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits (at least as many decimals as that needs); '' for
    missing values (never 'None' or 'nan')."""
    if x is None or (isinstance(x, float | np.floating) and not np.isfinite(x)):
        return "" if x is None or np.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, bool | np.bool_):
        return "yes" if x else "no"
    if isinstance(x, int | np.integer):
        return f"{int(x):d}"
    if not isinstance(x, float | np.floating):
        return str(x)
    x = float(x)
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    decimals = max(0, digits - 1 - mag)
    if abs(x) >= 1e6 or abs(x) < 1e-4:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{decimals}f}"


def _est_ci(est: Any, lo: Any, hi: Any, digits: int = 3) -> str:
    """'est (lcl, ucl)' with one number of decimals for all three: enough for ``digits``
    significant digits of the largest in magnitude."""
    vals = [float(v) for v in (est, lo, hi) if v is not None and pd.notna(v)]
    if not vals:
        return ""
    if pd.isna(lo) or pd.isna(hi):
        return _sig(est, digits)
    big = max(abs(v) for v in vals if np.isfinite(v)) if any(np.isfinite(vals)) else 0.0
    if big == 0 or big >= 1e6 or big < 1e-4:
        return f"{_sig(est, digits)} ({_sig(lo, digits)}, {_sig(hi, digits)})"
    dec = max(0, digits - 1 - math.floor(math.log10(big)))
    return f"{float(est):.{dec}f} ({float(lo):.{dec}f}, {float(hi):.{dec}f})"


def format_p(p: Any) -> str:
    """p-values as papers print them: '<0.001' below 0.001, else 3 decimals."""
    if p is None or (isinstance(p, float | np.floating) and np.isnan(p)):
        return ""
    p = float(p)
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def paper_table(
    tab: pd.DataFrame, conf_level: float = 0.95, digits: int = 3, keep: Iterable[str] = ()
) -> pd.DataFrame:
    """A tidy table as a publication table.

    ``estimate``, ``lcl`` and ``ucl`` become one "Estimate (95% CI)" column; numbers get
    ``digits`` significant digits; p-values print as '<0.001'; missing cells are empty; columns
    get human headers. Columns named in ``keep`` are kept even if the paper style would drop them.
    """
    keep = set(keep)
    out = pd.DataFrame(index=tab.index)
    pct = f"{100 * conf_level:g}%"
    merge = "estimate" in tab.columns and {"lcl", "ucl"} <= set(tab.columns)
    for col in tab.columns:
        if col in ("lcl", "ucl") and merge:
            continue
        if col == "lcl" and "ucl" in tab.columns:  # an interval without an estimate column
            out[f"{pct} CI"] = [
                "" if pd.isna(lo) else f"({_sig(lo, digits)}, {_sig(hi, digits)})"
                for lo, hi in zip(tab["lcl"], tab["ucl"], strict=True)
            ]
            continue
        if col == "ucl" and "lcl" in tab.columns:
            continue
        if col == "estimate" and {"lcl", "ucl"} <= set(tab.columns):
            out[f"Estimate ({pct} CI)"] = [
                _est_ci(e, lo, hi, digits)
                for e, lo, hi in zip(tab["estimate"], tab["lcl"], tab["ucl"], strict=True)
            ]
            continue
        if col in ("ess_bulk", "ess_tail") and col not in keep:
            out[PAPER_HEADERS[col]] = ["" if pd.isna(v) else f"{float(v):.0f}" for v in tab[col]]
            continue
        header = PAPER_HEADERS.get(col, str(col).replace("_", " "))
        if col == "p" or (str(col).startswith("p_") and pd.api.types.is_float_dtype(tab[col])):
            out[header] = [format_p(v) for v in tab[col]]
        elif col == "df":
            out[header] = ["" if pd.isna(v) else _sig(v, digits) for v in tab[col]]
        elif col == "r_hat":
            out[header] = ["" if pd.isna(v) else f"{float(v):.3f}" for v in tab[col]]
        elif col == "pr_positive":
            out[header] = ["" if pd.isna(v) else f"{float(v):.3f}" for v in tab[col]]
        elif pd.api.types.is_numeric_dtype(tab[col]) and not pd.api.types.is_bool_dtype(tab[col]):
            out[header] = [_sig(v, digits) for v in tab[col]]
        else:
            out[header] = [
                "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                for v in tab[col]
            ]
    return out.reset_index(drop=True)


# ------------------------------------------------------------------------------------ Summary
class Summary:
    """What ``summary()`` returns: prints as text, renders as HTML in a notebook.

    Attributes
    ----------
    title : str
        One line saying what was estimated and how.
    table : pandas.DataFrame
        The summary's table (the same as the result's ``table()`` unless stated).
    info : dict
        Key facts shown above the table (participants, df, variance estimator, ...).
    notes : list of str
        Warnings and remarks shown below the table.
    """

    def __init__(
        self,
        title: str,
        table: pd.DataFrame,
        info: Mapping[str, Any] | None = None,
        notes: Iterable[str] = (),
        digits: int = 4,
    ) -> None:
        self.title = title
        self.table = table
        self.info = dict(info or {})
        self.notes = [str(n) for n in notes]
        self.digits = digits

    def _fmt(self, v: Any) -> str:
        return _sig(v, self.digits) if isinstance(v, float | np.floating) else str(v)

    def _shown(self) -> pd.DataFrame:
        """The table as displayed: missing values (None, NaN) as empty cells."""
        tab = self.table
        obj = [c for c in tab.columns if tab[c].dtype == object]
        if obj:
            tab = tab.copy()
            for c in obj:
                tab[c] = tab[c].map(
                    lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else v
                )
        return tab

    def as_text(self) -> str:
        """The summary as plain text (what ``print`` shows)."""
        lines = [self.title]
        if self.info:
            lines.append(", ".join(f"{k}: {self._fmt(v)}" for k, v in self.info.items()))
        with pd.option_context(
            "display.width",
            120,
            "display.max_columns",
            50,
            "display.float_format",
            lambda v: _sig(v, self.digits),
        ):
            lines.append(self._shown().to_string(index=False, na_rep=""))
        lines.extend(f"Note: {n}" for n in self.notes)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.as_text()

    def __repr__(self) -> str:
        return self.as_text()

    def _repr_html_(self) -> str:
        info = ""
        if self.info:
            info = (
                "<p>"
                + "; ".join(
                    f"<b>{html.escape(str(k))}</b>: {html.escape(self._fmt(v))}"
                    for k, v in self.info.items()
                )
                + "</p>"
            )
        body = self._shown().to_html(
            index=False,
            na_rep="",
            float_format=lambda v: _sig(v, self.digits),
            border=0,
            classes="hte-mrt-summary",
        )
        notes = "".join(f"<p><i>Note:</i> {html.escape(n)}</p>" for n in self.notes)
        return (
            f"<div class='hte-mrt'><p><b>{html.escape(self.title)}</b></p>{info}{body}{notes}</div>"
        )

    def __eq__(self, other: object) -> bool:  # convenient in tests
        return isinstance(other, Summary) and self.as_text() == other.as_text()

    __hash__ = None  # type: ignore[assignment]


# ------------------------------------------------------------------------------------ Result
class Result:
    """Base class of every result object: the one contract.

    Subclasses implement :meth:`_table` (the tidy table at an interval level) and
    :meth:`_summary_parts` (title, info, notes); they may override :meth:`to_xarray`.
    ``_default_conf_level`` gives the level used when ``conf_level`` is None.
    """

    #: what the result is, for ``repr`` ("WCLS causal excursion effect", ...)
    _kind: ClassVar[str] = "result"
    #: the JSON sidecar's ``format`` tag (``hte_mrt.<Class>/<version>``)
    _format: ClassVar[str] = ""

    # -------------------------------------------------------------- to implement
    def _table(self, conf_level: float) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    def _summary_parts(self) -> tuple[str, dict, list[str]]:
        return self._kind, {}, []

    @property
    def _default_conf_level(self) -> float:
        return float(getattr(self, "conf_level", 0.95))

    def _level(self, conf_level: float | None) -> float:
        return self._default_conf_level if conf_level is None else check_conf_level(conf_level)

    # -------------------------------------------------------------- the contract
    def table(self, conf_level: float | None = None, style: Style = "tidy") -> pd.DataFrame:
        """The result as a tidy DataFrame (``style="tidy"``) or a publication table
        (``style="paper"``: "estimate (95% CI)" cells, human headers, no empty markers)."""
        level = self._level(conf_level)
        tab = self._table(level)
        if style == "tidy":
            return tab
        if style == "paper":
            return paper_table(tab, level)
        raise DesignError(f"style must be 'tidy' or 'paper', got {style!r}.")

    def summary(self, conf_level: float | None = None) -> Summary:
        """A :class:`Summary`: prints as text, renders as HTML, ``.table`` is the tidy table."""
        title, info, notes = self._summary_parts()
        return Summary(title, self.table(conf_level), info, notes)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Interval bounds ``lcl``, ``ucl`` indexed by the table's first column.

        ``alpha`` has statsmodels' meaning: ``alpha=0.05`` gives 95% intervals.
        """
        tab = self.table(alpha_to_level(alpha))
        if not {"lcl", "ucl"} <= set(tab.columns):
            raise DesignError(f"{type(self).__name__} has no intervals.")
        return tab.set_index(tab.columns[0])[["lcl", "ucl"]]

    def to_xarray(self) -> xr.Dataset:
        """The tidy table as an xarray Dataset (dimension: the table's first column)."""
        tab = self.table()
        ds = xr.Dataset.from_dataframe(tab.set_index(tab.columns[0]))
        ds.attrs["hte_mrt_class"] = type(self).__name__
        return ds

    def _sidecar_meta(self) -> dict:
        """What the JSON sidecar records besides the format tag (override to add more)."""
        return {}

    def to_netcdf(self, path: str | Path) -> Path:
        """Save as NetCDF (h5netcdf) with a JSON sidecar (``x.nc`` -> ``x.json``)."""
        path = output_path(path, "to_netcdf", ".nc")
        if path.suffix == ".json":
            raise DesignError(f"to_netcdf: {path} ends in .json, the sidecar's suffix; use '.nc'.")
        meta = {"format": self._format or f"hte_mrt.{type(self).__name__}/1"}
        meta |= self._sidecar_meta()
        ds = self.to_xarray()
        ds.attrs["hte_mrt"] = json.dumps(meta, default=json_default)
        ds.to_netcdf(path, engine="h5netcdf")
        sidecar(path).write_text(json.dumps(meta, indent=2, default=json_default))
        return path

    # -------------------------------------------------------------- display
    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def _repr_extra(self) -> str:
        return ""

    def __repr__(self) -> str:
        extra = self._repr_extra()
        return f"<{type(self).__name__}: {self._kind}{', ' + extra if extra else ''}>"

    def __str__(self) -> str:
        return str(self.summary())


def sidecar(path: Path) -> Path:
    """The JSON description beside a saved file: ``x.nc`` -> ``x.json``; other names get
    ``.json`` appended (``run.v1`` -> ``run.v1.json``)."""
    path = Path(path)
    return (
        path.with_suffix(".json") if path.suffix == ".nc" else path.with_name(path.name + ".json")
    )


def read_sidecar(path: str | Path, expected: str) -> dict:
    """Read a saved result's JSON metadata (from the NetCDF attribute, else the sidecar) and
    check that it is an hte_mrt file of class ``expected`` (e.g. "ExcursionResult")."""
    from hte_mrt.errors import DataError

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist; give the path of a file written by to_netcdf().")
    meta = None
    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            if "hte_mrt" in ds.attrs:
                meta = json.loads(ds.attrs["hte_mrt"])
    except (OSError, ValueError):
        meta = None
    if meta is None and sidecar(path).exists():
        meta = json.loads(sidecar(path).read_text())
    fmt = (meta or {}).get("format", "")
    if not str(fmt).startswith(f"hte_mrt.{expected}/"):
        raise DataError(
            f"{path} is not a saved hte_mrt {expected} (format tag {fmt or 'missing'!r}); "
            f"load it with the from_netcdf of the class that wrote it."
        )
    return meta
