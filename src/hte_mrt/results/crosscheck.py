r"""Cross-check two (or more) results of the same estimand: WCLS, EMEE, a Bayesian bootstrap,
a posterior.

For every effect term and requested linear combination c'beta, each result's estimate is
compared with the reference result's (by default the first frequentist one, e.g. WCLS):

.. math::

    z = \frac{\hat\beta_{\mathrm{other}} - \hat\beta_{\mathrm{ref}}}{\mathrm{SE}_{\mathrm{ref}}},

flagged when :math:`|z|` exceeds ``threshold`` (default 1). WCLS is consistent for the marginal
causal excursion effect whatever the outcome model; a hierarchical model estimates the same
quantity only when its assumptions hold (e.g. no endogenous time-varying covariates: Qian,
Klasnja & Murphy 2020, Statistical Science 35:375). A flag means "the two estimates have come
apart: look at the model", not "the posterior is wrong".

Results are compared through their tidy tables (``table(conf_level)``: term, estimate, se,
lcl, ucl, and pr_positive where present); linear combinations come from ``effect_draws()``
(draw by draw, equal-tailed intervals) where a result has draws, else from its ``lincomb``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from hte_mrt._contract import Result, check_conf_level, paper_table, read_sidecar
from hte_mrt.data.checks import check_path
from hte_mrt.errors import DesignError
from hte_mrt.results.bootstrap import BootstrapResult, draws_table, stack_draws
from hte_mrt.results.frequentist import ExcursionResult, contrast_matrix

_BASE = ["term", "estimate", "se", "lcl", "ucl"]
_SCALES = {"difference": "additive", "log_rr": "log relative risk"}


def _label(res: Any) -> str:
    lab = getattr(res, "label", None)
    if isinstance(lab, str) and lab:
        return lab
    if isinstance(res, ExcursionResult):
        return res.method
    if isinstance(res, BootstrapResult):
        return "Bayesian bootstrap" if res.method.startswith("Bayesian bootstrap") else res.method
    name = type(res).__name__
    return "BayesMRT" if name == "BayesResult" else name.removesuffix("Result") or name


def _as_result(res: Any, i: int) -> Any:
    if isinstance(res, xr.DataArray):
        if "term" not in res.dims:
            raise DesignError(f"crosscheck: result {i + 1} is a DataArray without a 'term' dim.")
        flat = xr.DataArray(
            stack_draws(res),
            dims=("draw", "term"),
            coords={"term": [str(t) for t in res["term"].values]},
        )
        return BootstrapResult(draws=flat, method="draws")
    if not (callable(getattr(res, "table", None)) or callable(getattr(res, "effect_draws", None))):
        raise DesignError(
            f"crosscheck compares results with a table(conf_level) method (ExcursionResult, "
            f"BayesResult, BootstrapResult, ...); argument {i + 1} is a {type(res).__name__}."
        )
    return res


def _numerator_key(v: Any) -> Any:
    if isinstance(v, Mapping):
        return tuple(sorted((str(k), _numerator_key(x)) for k, x in v.items()))
    if isinstance(v, bool) or not isinstance(v, int | float | np.number):
        return v
    return float(v)


def _record(res: Any) -> dict[str, Any]:
    """What a result records about its estimand and data (None where it does not say):
    scale, lag, numerator, participants, rows, effect terms."""
    rec: dict[str, Any] = dict.fromkeys(
        ("scale", "lag", "numerator", "participants", "rows", "terms")
    )
    est = None
    if isinstance(res, ExcursionResult):
        est = res.estimand
        rec["scale"] = res.scale
        rec["lag"] = res.info.get("lag") if isinstance(res.info, Mapping) else None
        rec["participants"] = res.n or None
        if res.design is not None and getattr(res.design, "y", None) is not None:
            rec["participants"] = int(res.design.n_groups)  # analysed (EMEE's n counts all)
            rec["rows"] = len(res.design.y)
        rec["terms"] = list(res.names_effect)
    elif isinstance(res, BootstrapResult):
        est = getattr(res, "estimand", None)
        if res.method.startswith("Bayesian bootstrap"):
            rec["scale"] = "difference"
            rec["participants"] = res.n or None
        rec["terms"] = list(res.names_effect)
    elif isinstance(getattr(res, "config", None), Mapping):  # BayesResult
        cfg, meta = res.config, getattr(res, "meta", None) or {}
        rec["scale"] = {"gaussian": "difference", "bernoulli": "log_rr"}.get(cfg.get("family"))
        rec["lag"] = cfg.get("lag") or 0
        rec["numerator"] = cfg.get("numerator")
        rec["participants"] = meta.get("n_participants")
        rec["rows"] = meta.get("n_rows")
    if est is not None:
        if rec["lag"] is None:
            rec["lag"] = getattr(est, "lag", None)
        rec["numerator"] = getattr(est, "numerator", None)
    if rec["terms"] is None and callable(getattr(res, "effect_draws", None)):
        rec["terms"] = [str(t) for t in res.effect_draws()["term"].values]
    rec["numerator"] = _numerator_key(rec["numerator"])  # None: the default (not compared)
    return rec


_WHAT = {
    "scale": "the effect scale",
    "lag": "the lag",
    "numerator": "the numerator probability",
    "participants": "the number of analysed participants",
    "rows": "the number of analysed decision points",
}


def _check_same_estimand(results: list[Any], labs: list[str], ref: int) -> None:
    """DesignError unless every result records the reference's estimand and data."""
    recs = [_record(r) for r in results]
    base, blab = recs[ref], labs[ref]
    problems = []
    for rec, lab in zip(recs, labs, strict=True):
        if rec is base:
            continue
        for key, what in _WHAT.items():
            a, b = base[key], rec[key]
            if a is None or b is None or a == b:
                continue
            if key == "scale":
                a, b = _SCALES.get(a, a), _SCALES.get(b, b)
            problems.append(f"{what} ({key}: {blab} {a!r}, {lab} {b!r})")
        if base["terms"] is not None and rec["terms"] is not None:
            missing = [t for t in base["terms"] if t not in rec["terms"]]
            extra = [t for t in rec["terms"] if t not in base["terms"]]
            if missing or extra:
                parts = ([f"lacks effect term(s) {missing}"] if missing else []) + (
                    [f"has effect term(s) {extra} that {blab} lacks"] if extra else []
                )
                raise DesignError(
                    f"{lab} {' and '.join(parts)} ({blab}'s terms: {base['terms']}); fit every "
                    "result with the same moderator formula."
                )
    if problems:
        raise DesignError(
            "crosscheck compares estimates of ONE estimand on the same data, but the results "
            "differ in " + "; ".join(problems) + ". Refit them with the same scale (wcls for "
            "the difference, emee / a Bernoulli BayesMRT for the log relative risk), lag=, "
            "numerator= and data, then cross-check."
        )


def _draws(res: Any, terms: list[str]) -> np.ndarray | None:
    if not callable(getattr(res, "effect_draws", None)):
        return None
    d = res.effect_draws()
    missing = [t for t in terms if t not in [str(v) for v in d["term"].values]]
    if missing:
        raise DesignError(
            f"{_label(res)} lacks effect term(s) {missing}; fit every result with the same "
            "moderator formula."
        )
    return stack_draws(d.sel(term=terms))


def _term_rows(res: Any, terms: list[str], level: float) -> pd.DataFrame:
    """term, estimate, se, lcl, ucl (+ pr_positive) of ``terms`` from the result's table."""
    if callable(getattr(res, "table", None)):
        tab = res.table(level)
    else:  # draws only
        tab = draws_table(_draws(res, terms), terms, level)
    if not set(_BASE) <= set(tab.columns):
        raise DesignError(
            f"{_label(res)}.table() lacks the columns {sorted(set(_BASE) - set(tab.columns))}."
        )
    tab = tab.assign(term=tab["term"].astype(str)).set_index("term")
    missing = [t for t in terms if t not in tab.index]
    if missing:
        raise DesignError(
            f"{_label(res)} lacks effect term(s) {missing} (its terms: {list(tab.index)}); fit "
            "every result with the same moderator formula."
        )
    cols = _BASE[1:] + (["pr_positive"] if "pr_positive" in tab.columns else [])
    return tab.loc[terms, cols].reset_index()


def _lincomb_rows(res: Any, L: pd.DataFrame, level: float) -> pd.DataFrame:
    terms, names = list(L.columns), list(L.index)
    d = _draws(res, terms)
    if d is not None:
        return draws_table(d @ L.to_numpy().T, names, level)
    if callable(getattr(res, "lincomb", None)):
        tab = res.lincomb(L.to_numpy(), names=names, conf_level=level)
        return tab[[c for c in [*_BASE, "pr_positive"] if c in tab.columns]]
    raise DesignError(
        f"{_label(res)} has neither effect_draws() nor lincomb(): linear combinations cannot "
        "be compared; drop lincombs=."
    )


@dataclass
class _SavedEstimator:
    """Stands in for a compared result in a loaded :class:`CrossCheck` (only its label and
    the saved level are known)."""

    label: str
    conf_level: float

    def refuse(self) -> None:
        raise DesignError(
            f"This cross-check was loaded from a file, which holds its table at conf_level="
            f"{self.conf_level:g} only: use table() (or conf_level={self.conf_level:g}), or "
            f"rerun hm.crosscheck(...) on the fitted results for another level."
        )


@dataclass(eq=False, repr=False)
class CrossCheck(Result):
    """Two or more results of one estimand side by side (from :func:`crosscheck`).

    ``table(conf_level=None)`` is tidy: one row per term (and linear combination) and result,
    grouped by term, with the columns ``term``, ``estimator`` (the result's label), ``estimate``,
    ``se``, ``lcl``, ``ucl``, ``pr_positive`` (when a result has it), ``difference`` (estimate
    minus the reference's), ``difference_in_se`` (that difference in units of the reference's
    SE), ``se_ratio`` (SE over the reference's SE) and ``flag`` (|difference_in_se| >
    ``threshold``); the reference's own rows have empty differences and no flag.
    ``table(style="paper")`` puts the results side by side: one "label (95% CI)" column per
    result, then the differences in reference SEs and the flag.

    Attributes
    ----------
    results : list
        The compared results, in order.
    labels : list of str
        Their labels (``estimator`` column).
    reference : str
        The reference's label (the unit of ``difference_in_se``).
    threshold : float
    lincombs : pandas.DataFrame
        The linear combinations' weights (rows: names; columns: effect terms).
    """

    results: list[Any]
    labels: list[str]
    ref: int
    terms: list[str]
    lincombs: pd.DataFrame
    threshold: float = 1.0
    conf_level: float = 0.95
    _cache: dict = field(default_factory=dict)

    _kind: ClassVar[str] = "cross-check of one estimand's estimates"
    _format: ClassVar[str] = "hte_mrt.CrossCheck/1"

    @property
    def reference(self) -> str:
        """Label of the reference result."""
        return self.labels[self.ref]

    def _table(self, conf_level: float) -> pd.DataFrame:
        if conf_level in self._cache:
            return self._cache[conf_level].copy()
        for res in self.results:
            if isinstance(res, _SavedEstimator):
                res.refuse()
        parts = []
        for res, lab in zip(self.results, self.labels, strict=True):
            rows = _term_rows(res, self.terms, conf_level)
            if len(self.lincombs):
                rows = pd.concat(
                    [rows, _lincomb_rows(res, self.lincombs, conf_level)], ignore_index=True
                )
            rows.insert(1, "estimator", lab)
            parts.append(rows)
        ref = parts[self.ref].set_index("term")
        order = {t: k for k, t in enumerate(ref.index)}
        out = []
        for i, rows in enumerate(parts):
            rows = rows.copy()
            r_est = ref.loc[rows["term"], "estimate"].to_numpy()
            r_se = ref.loc[rows["term"], "se"].to_numpy()
            diff = rows["estimate"].to_numpy() - r_est
            if i == self.ref:
                nan = np.full(len(rows), np.nan)
                rows["difference"], rows["difference_in_se"], rows["se_ratio"] = nan, nan, nan
                rows["flag"] = False
            else:
                rows["difference"] = diff
                rows["difference_in_se"] = diff / r_se
                rows["se_ratio"] = rows["se"].to_numpy() / r_se
                rows["flag"] = np.abs(rows["difference_in_se"].to_numpy()) > self.threshold
            rows["_pos"], rows["_res"] = rows["term"].map(order), i
            out.append(rows)
        tab = pd.concat(out, ignore_index=True).sort_values(["_pos", "_res"], kind="stable")
        tab = tab.drop(columns=["_pos", "_res"]).reset_index(drop=True)
        cols = [c for c in tab.columns if c != "pr_positive"]
        if "pr_positive" in tab.columns:
            cols.insert(cols.index("ucl") + 1, "pr_positive")
        tab = tab[cols]
        tab["flag"] = tab["flag"].astype(bool)
        self._cache[conf_level] = tab
        return tab.copy()

    def table(self, conf_level: float | None = None, style: str = "tidy") -> pd.DataFrame:
        """The tidy comparison (``style="tidy"``) or a side-by-side publication table
        (``style="paper"``)."""
        if style != "paper":
            return super().table(conf_level, style)  # type: ignore[arg-type]
        level = self._level(conf_level)
        tab = self._table(level)
        pct = f"{100 * level:g}%"
        out = pd.DataFrame({"Term": list(dict.fromkeys(tab["term"]))})
        for i, lab in enumerate(self.labels):
            sub = tab[tab["estimator"] == lab].set_index("term").loc[out["Term"]]
            cell = paper_table(sub.reset_index()[["term", "estimate", "lcl", "ucl"]], level)
            out[f"{lab} ({pct} CI)"] = cell[f"Estimate ({pct} CI)"].to_numpy()
            if i != self.ref:
                z = sub["difference_in_se"].to_numpy()
                out[f"{lab} - {self.reference} (SEs)"] = [f"{v:+.2f}" for v in z]
        flagged = tab.groupby("term", sort=False)["flag"].any()
        out["Flag"] = ["yes" if flagged[t] else "" for t in out["Term"]]
        return out

    def rows(self, estimator: str, conf_level: float | None = None) -> pd.DataFrame:
        """One result's rows of ``table()``, indexed by term (e.g. ``rows("BayesMRT")``)."""
        if estimator not in self.labels:
            raise DesignError(f"estimator must be one of {self.labels}, got {estimator!r}.")
        tab = self.table(conf_level)
        return tab[tab["estimator"] == estimator].drop(columns="estimator").set_index("term")

    def plot(self, ax: Any = None, conf_level: float | None = None) -> Any:
        """Forest plot: each term (and linear combination) with every result's estimate and
        interval side by side; flagged terms are marked with an asterisk.

        Examples
        --------
        >>> import hte_mrt as hm
        >>> data = hm.MRTSimulation(n_participants=30, n_decisions=20).mrt_data(seed=1)
        >>> w = hm.wcls(data, "~ S", "~ S")
        >>> b = hm.bayesian_bootstrap(data, "~ S", "~ S", seed=1, n_boot=200, progress=False)
        >>> ax = hm.crosscheck(w, b).plot()
        >>> [t.get_text() for t in ax.get_yticklabels()]
        ['Intercept', 'S']
        """
        import matplotlib.pyplot as plt

        from hte_mrt._util import check_ax

        check_ax(ax, "CrossCheck.plot")
        tab = self.table(conf_level)
        terms = list(dict.fromkeys(tab["term"]))
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 1.2 + 0.5 * len(terms) * max(1, len(self.labels) / 2)))
        n = len(self.labels)
        offsets = (np.arange(n) - (n - 1) / 2) * (0.6 / max(n, 1))
        pos = {t: len(terms) - 1 - k for k, t in enumerate(terms)}  # first term at the top
        for i, lab in enumerate(self.labels):
            sub = tab[tab["estimator"] == lab]
            y = sub["term"].map(pos).to_numpy() + offsets[i]
            est = sub["estimate"].to_numpy()
            ax.errorbar(
                est,
                y,
                xerr=[est - sub["lcl"].to_numpy(), sub["ucl"].to_numpy() - est],
                fmt="os^dv"[i % 5],
                ms=4,
                lw=1,
                capsize=2,
                label=lab,
            )
        flagged = set(self.flagged)
        ax.set_yticks([pos[t] for t in terms], [f"{t} *" if t in flagged else t for t in terms])
        ax.axvline(0, color="grey", lw=0.5)
        level = self._level(conf_level)
        ax.set_xlabel(f"estimate and {100 * level:g}% interval")
        ax.legend(frameon=False, fontsize=8)
        ax.figure.tight_layout()
        return ax

    @property
    def flagged(self) -> list[str]:
        """Terms (and linear combinations) on which some result is flagged."""
        tab = self.table()
        return list(dict.fromkeys(tab.loc[tab["flag"], "term"]))

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """``lcl``, ``ucl`` indexed by (term, estimator); ``alpha=0.05`` gives 95%."""
        from hte_mrt._contract import alpha_to_level

        return self.table(alpha_to_level(alpha)).set_index(["term", "estimator"])[["lcl", "ucl"]]

    def to_xarray(self) -> xr.Dataset:
        """The tidy table as a Dataset with dims ``term`` and ``estimator``."""
        ds = xr.Dataset.from_dataframe(self.table().set_index(["term", "estimator"]))
        ds.attrs = {
            "reference": self.reference,
            "threshold": self.threshold,
            "hte_mrt_class": type(self).__name__,
        }
        return ds

    def _sidecar_meta(self) -> dict:
        tab = self.table()
        return {
            "labels": self.labels,
            "reference": self.reference,
            "threshold": self.threshold,
            "conf_level": self.conf_level,
            "terms": list(self.terms),
            "lincombs": {str(k): dict(v) for k, v in self.lincombs.iterrows()},
            "rows": [[str(t), str(e)] for t, e in zip(tab["term"], tab["estimator"], strict=True)],
        }

    @classmethod
    def from_netcdf(cls, path: str | Path) -> CrossCheck:
        """Restore a cross-check saved by ``to_netcdf``: its table at the saved ``conf_level``
        (the compared results themselves are not saved; ``table()`` at another level raises
        :class:`~hte_mrt.errors.DesignError`). A file that is not a saved CrossCheck raises
        :class:`~hte_mrt.errors.DataError`."""
        check_path(path)
        meta = read_sidecar(path, "CrossCheck")
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            flat = ds.load().to_dataframe().reset_index()
        order = pd.MultiIndex.from_tuples([tuple(r) for r in meta["rows"]])
        tab = flat.set_index(["term", "estimator"]).loc[order].reset_index()
        tab["flag"] = tab["flag"].astype(bool)
        level = float(meta["conf_level"])
        labels = list(meta["labels"])
        saved = [_SavedEstimator(lab, level) for lab in labels]
        lincombs = pd.DataFrame.from_dict(meta.get("lincombs") or {}, orient="index")
        cc = cls(
            results=saved,
            labels=labels,
            ref=labels.index(meta["reference"]),
            terms=list(meta["terms"]),
            lincombs=lincombs.reindex(columns=list(meta["terms"])).astype(float),
            threshold=float(meta["threshold"]),
            conf_level=level,
        )
        cc._cache[level] = tab
        return cc

    def _summary_parts(self) -> tuple[str, dict, list[str]]:
        flagged = self.flagged
        info = {
            "reference": self.reference,
            "threshold": f"{self.threshold:g} {self.reference} SE",
            "flagged": ", ".join(flagged) if flagged else "none",
        }
        notes = []
        if flagged:
            notes.append(
                f"{', '.join(flagged)}: estimates differ by more than {self.threshold:g} "
                f"{self.reference} SE. The estimands may have come apart (e.g. a moderator that "
                "responds to past treatment): look at the model before reporting it."
            )
        return "Cross-check: " + " vs ".join(self.labels), info, notes

    def _repr_extra(self) -> str:
        return " vs ".join(self.labels) + f", {len(self.flagged)} flagged"


def crosscheck(
    a: Any,
    b: Any,
    *more: Any,
    lincombs: Mapping[str, Mapping[str, float]] | None = None,
    threshold: float = 1.0,
    conf_level: float = 0.95,
    reference: int | str | None = None,
    labels: Sequence[str] | None = None,
) -> CrossCheck:
    r"""Compare results of the same estimand, per term and linear combination, with a
    disagreement flag.

    Any two (or more) results of one :class:`hm.ExcursionEffect <hte_mrt.ExcursionEffect>`:
    WCLS vs a :class:`~hte_mrt.BayesResult`, WCLS vs EMEE of the same numerator, WCLS vs a
    Bayesian bootstrap, ... For every term and combination :math:`c^\top\beta`,

    .. math::

        z = \frac{\hat\beta_{\mathrm{other}} - \hat\beta_{\mathrm{ref}}}
                 {\mathrm{SE}_{\mathrm{ref}}},

    flagged when :math:`|z| >` ``threshold``. The reference is the first frequentist result
    (WCLS / EMEE) unless ``reference`` says otherwise. A flag means the estimates have come apart
    (e.g. a random-slope model's conditional effect of an endogenous moderator vs the marginal
    excursion effect; Qian, Klasnja & Murphy 2020), not that one of them is wrong.

    Parameters
    ----------
    a, b, *more
        Results with ``table(conf_level)`` (columns term, estimate, se, lcl, ucl), e.g.
        :class:`~hte_mrt.ExcursionResult`, :class:`~hte_mrt.BayesResult`, a bootstrap result,
        or a DataArray of draws with a ``term`` dim. They must estimate ONE estimand on the
        same data: the same effect terms, and, where the results record them, the same
        scale (difference vs log relative risk), lag, numerator and numbers of analysed
        participants and decision points; otherwise :class:`~hte_mrt.errors.DesignError`
        names what differs.
    lincombs : dict, optional
        ``{name: {term: weight}}``: linear combinations to compare as well (from draws where a
        result has ``effect_draws()``, with equal-tailed intervals; else from its
        ``lincomb``).
    threshold : float, default 1.0
        Flag when the absolute difference exceeds this many reference standard errors.
    conf_level : float, default 0.95
        Default interval level of the table.
    reference : int or str, optional
        Position (0 = ``a``) or label of the reference result.
    labels : sequence of str, optional
        Labels of the results (default: "WCLS", "EMEE", "BayesMRT", "Bayesian bootstrap", ...).

    Returns
    -------
    CrossCheck
        ``table()`` with columns term, estimator, estimate, se, lcl, ucl, (pr_positive),
        difference, difference_in_se, se_ratio, flag; ``flagged``; ``rows(label)``;
        ``table(style="paper")`` side by side.

    Examples
    --------
    >>> import hte_mrt as hm
    >>> trial = hm.load_dataset("heartsteps", as_data=True)
    >>> effect = hm.ExcursionEffect("~ study_day_nogap", "~ jbsteps30pre_log")
    >>> fit = effect.fit(trial, estimator="wcls")
    >>> boot = effect.fit(trial, estimator="bayesian_bootstrap", n_boot=1000, seed=1,
    ...                   progress=False)
    >>> cc = hm.crosscheck(fit, boot, lincombs={"day 20": {"Intercept": 1,
    ...                                                    "study_day_nogap": 20}})
    >>> cc
    <CrossCheck: cross-check of one estimand's estimates, WCLS vs Bayesian bootstrap, 0 flagged>
    >>> cc.table()[["term", "estimator", "estimate", "difference_in_se"]].round(2)
                  term           estimator  estimate  difference_in_se
    0        Intercept                WCLS      0.51               NaN
    1        Intercept  Bayesian bootstrap      ...
    2  study_day_nogap                WCLS     -0.02               NaN
    3  study_day_nogap  Bayesian bootstrap     ...
    4           day 20                WCLS      0.14               NaN
    5           day 20  Bayesian bootstrap      ...
    >>> cc.flagged
    []
    """
    results = [_as_result(r, i) for i, r in enumerate((a, b, *more))]
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float | np.number)
        or not np.isfinite(threshold)
        or threshold <= 0
    ):
        raise DesignError(
            f"threshold must be a positive number of reference SEs such as 1.0, got {threshold!r}."
        )
    check_conf_level(conf_level)
    if labels is None:
        labs = [_label(r) for r in results]
    else:
        if isinstance(labels, str) or not all(isinstance(x, str) for x in labels):
            raise DesignError(
                f"labels must be a list of {len(results)} strings, one per result (e.g. "
                f"['WCLS', 'BayesMRT']), got {labels!r}."
            )
        labs = [str(x) for x in labels]
        if len(labs) != len(results):
            raise DesignError(f"labels needs {len(results)} names, got {len(labs)}.")
    seen: dict[str, int] = {}
    for i, lab in enumerate(labs):  # make labels unique: "WCLS", "WCLS (2)"
        seen[lab] = seen.get(lab, 0) + 1
        if seen[lab] > 1:
            labs[i] = f"{lab} ({seen[lab]})"
    if reference is None:
        ref = next((i for i, r in enumerate(results) if isinstance(r, ExcursionResult)), 0)
    elif isinstance(reference, str):
        if reference not in labs:
            raise DesignError(
                f"reference must be one of the labels {labs} (or a position), got {reference!r}."
            )
        ref = labs.index(reference)
    else:
        if isinstance(reference, bool) or not isinstance(reference, int | np.integer):
            raise DesignError(
                f"reference must be a position 0..{len(results) - 1} or one of the labels "
                f"{labs}, got {reference!r}."
            )
        ref = int(reference)
        if not 0 <= ref < len(results):
            raise DesignError(
                f"reference must be a position 0..{len(results) - 1} (or one of the labels "
                f"{labs}), got {reference!r}."
            )
    _check_same_estimand(results, labs, ref)
    base = results[ref]
    if isinstance(base, ExcursionResult | BootstrapResult):
        terms = list(base.names_effect)
    elif callable(getattr(base, "effect_draws", None)):
        terms = [str(t) for t in base.effect_draws()["term"].values]
    else:
        terms = [str(t) for t in base.table(conf_level)["term"]]
    L = pd.DataFrame(columns=terms, dtype=float)
    if lincombs:
        if not isinstance(lincombs, Mapping):
            raise DesignError(
                f"lincombs must be {{name: {{term: weight}}}}, e.g. {{'day 20': "
                f"{{'Intercept': 1, 'day': 20}}}}; got {type(lincombs).__name__}."
            )
        for name, w in lincombs.items():
            if not isinstance(w, Mapping):
                raise DesignError(f"lincombs[{name!r}] must be {{term: weight}}, got {w!r}.")
        L = contrast_matrix(list(lincombs.values()), terms, names=list(lincombs))
    cc = CrossCheck(
        results=results,
        labels=labs,
        ref=ref,
        terms=terms,
        lincombs=L,
        threshold=float(threshold),
        conf_level=float(conf_level),
    )
    cc.table()  # fail early on mismatched terms
    return cc
