"""Cross-check posterior summaries against WCLS (and a Bayesian bootstrap of WCLS).

For every excursion-effect term and requested linear combination c'beta:

    z = (posterior mean - WCLS estimate) / WCLS standard error,

flagged when |z| > ``threshold`` (default 1). WCLS is consistent for the marginal causal
excursion effect whatever the outcome model; a hierarchical model estimates the same quantity
only when its assumptions hold (e.g. no endogenous time-varying covariates: Qian, Klasnja &
Murphy 2020, Statistical Science 35:375). A flag means "the two estimands have come apart:
look at the model", not "the posterior is wrong".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from hte_mrt.errors import DesignError
from hte_mrt.results.frequentist import ExcursionResult


def _as_draws(posterior: Any) -> xr.DataArray:
    """Effect draws with a ``term`` dim and one stacked ``sample`` dim."""
    draws = posterior.effect_draws() if hasattr(posterior, "effect_draws") else posterior
    if not isinstance(draws, xr.DataArray) or "term" not in draws.dims:
        raise DesignError("crosscheck needs a posterior result or a DataArray with a 'term' dim.")
    sample_dims = [d for d in draws.dims if d != "term"]
    return draws.stack(sample=sample_dims).transpose("sample", "term")


def crosscheck(
    posterior: Any,
    wcls_fit: ExcursionResult,
    *,
    lincombs: Mapping[str, Mapping[str, float]] | None = None,
    bootstrap: xr.DataArray | None = None,
    threshold: float = 1.0,
    prob: float = 0.95,
) -> pd.DataFrame:
    """One row per effect term (and linear combination): WCLS vs posterior (vs bootstrap).

    Parameters
    ----------
    posterior
        A Bayesian result with ``effect_draws()`` or a DataArray of draws (dims ..., term) whose
        terms are named as the WCLS effect terms.
    wcls_fit
        The WCLS (or EMEE, for log-RR posteriors) fit of the same estimand.
    lincombs
        ``{name: {term: weight}}`` extra linear combinations to compare.
    bootstrap
        Optional Bayesian-bootstrap draws (:func:`hte_mrt.estimators.bootstrap.bayesian_bootstrap`).
    threshold
        Flag when |posterior mean - WCLS| exceeds this many WCLS standard errors.
    prob
        Interval probability for the WCLS CI and the equal-tailed credible intervals.
    """
    post = _as_draws(posterior)
    terms = list(wcls_fit.names_effect)
    missing = [t for t in terms if t not in post["term"].values]
    if missing:
        raise DesignError(
            f"Posterior lacks effect term(s) {missing}; fit both with the same moderator formula."
        )
    post = post.sel(term=terms)
    L = np.eye(len(terms))
    names = list(terms)
    for name, w in (lincombs or {}).items():
        unknown = set(w) - set(terms)
        if unknown:
            raise DesignError(f"lincomb {name!r}: unknown term(s) {sorted(unknown)}.")
        L = np.vstack([L, [float(w.get(t, 0.0)) for t in terms]])
        names.append(name)
    w_tab = wcls_fit.lincomb(L, names=names, conf_level=prob)
    p = post.to_numpy() @ L.T
    lo, hi = (1 - prob) / 2, (1 + prob) / 2
    tab = pd.DataFrame(
        {
            "term": names,
            "wcls_estimate": w_tab["estimate"].to_numpy(),
            "wcls_se": w_tab["se"].to_numpy(),
            "wcls_lcl": w_tab["lcl"].to_numpy(),
            "wcls_ucl": w_tab["ucl"].to_numpy(),
            "posterior_mean": p.mean(axis=0),
            "posterior_sd": p.std(axis=0, ddof=1),
            "posterior_lcl": np.quantile(p, lo, axis=0),
            "posterior_ucl": np.quantile(p, hi, axis=0),
        }
    )
    tab["difference_in_wcls_se"] = (tab["posterior_mean"] - tab["wcls_estimate"]) / tab["wcls_se"]
    tab["sd_ratio"] = tab["posterior_sd"] / tab["wcls_se"]
    if bootstrap is not None:
        bb = _as_draws(bootstrap).sel(term=terms).to_numpy() @ L.T
        tab["bootstrap_mean"] = bb.mean(axis=0)
        tab["bootstrap_lcl"] = np.quantile(bb, lo, axis=0)
        tab["bootstrap_ucl"] = np.quantile(bb, hi, axis=0)
    tab["flag"] = tab["difference_in_wcls_se"].abs() > threshold
    tab.attrs["threshold"] = threshold
    return tab
