"""Posterior results of the Bayesian MRT model: one canonical ArviZ / xarray container.

The posterior (an xarray DataTree, groups ``posterior`` and ``sample_stats``) carries named dims
``term`` (effect terms beta), ``control_term``, ``participant``, ``cluster``, with the random
effects ``b``, ``u``, ``c``, ``participant_effect`` (each participant's average excursion effect
over their available decision points) and, for binary outcomes, ``log_rr`` /
``risk_difference`` (standardized over available decision points); the estimator
(:mod:`hte_mrt.estimators.bayes.posterior`) computes them. Saved as NetCDF with the model
configuration as JSON (never pickle).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from hte_mrt._contract import (
    Result,
    Style,
    check_conf_level,
    paper_table,
    read_sidecar,
    sidecar,
)
from hte_mrt._util import check_ax, json_default, output_path
from hte_mrt.data.checks import check_grid, check_path
from hte_mrt.errors import ConvergenceWarning, DesignError

#: ``BayesMRT(participant_draws=None)``: participant-level draws are kept up to this many
#: (posterior draws x participants) elements (160 MB per array); above it, their summaries
PARTICIPANT_DRAWS_MAX = 20_000_000
#: probabilities of the posterior quantiles kept per participant when their draws are not
#: (intervals at conf_level 0.5, 0.8, 0.9, 0.95 and 0.99)
SUMMARY_PROBS = (0.005, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975, 0.995)

SAMPLE_DIMS = ("chain", "draw")
#: variance parameters reported after the effect terms, in this order
VARIANCE_PARAMS = ("sigma", "sd_b", "sd_u", "sd_c", "rho", "smooth_sd")


def _bounds(x: np.ndarray, conf_level: float, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed interval of the draws along ``axis``."""
    lo, hi = (1 - conf_level) / 2, (1 + conf_level) / 2
    return np.quantile(x, lo, axis=axis), np.quantile(x, hi, axis=axis)


@dataclass(repr=False, eq=False)
class BayesResult(Result):
    r"""Posterior of a :class:`~hte_mrt.BayesMRT` fit.

    ``table()`` gives one row per effect term (then the variance parameters ``sigma``,
    ``sd_b``, ``sd_u``, ``sd_c``, ``rho``, ``smooth_sd`` the model has) with the columns
    term, estimate (posterior mean), se (posterior sd), lcl, ucl (equal-tailed interval at
    ``conf_level``), pr_positive (posterior Pr(> 0)), r_hat, ess_bulk, ess_tail.
    :meth:`hdi` gives highest-density intervals, :meth:`summary` the table with the sampler
    diagnostics, :meth:`effect_curve_summary` and :meth:`participant_effects` the effect over a
    grid of moderator values and per participant (same column names).

    Attributes
    ----------
    idata : xarray.DataTree
        The draws (groups ``posterior`` and ``sample_stats``).
    config : dict
        The model and sampler configuration (``BayesMRT.from_config(config)`` rebuilds it).
    design : Design or None
        The design on the analysed rows (None after :meth:`from_netcdf` without ``data``).
    meta : dict
        Seed, sampler, participants, rows and the term names.

    Examples
    --------
    >>> import hte_mrt as hm
    >>> data = hm.MRTSimulation(n_participants=20, n_decisions=20).mrt_data(seed=1)
    >>> res = hm.BayesMRT("~ 1", "~ S", draws=300, tune=300, chains=2, progress=False,
    ...                   seed=1).fit(data)
    >>> list(res.table().columns)
    ['term', 'estimate', 'se', 'lcl', 'ucl', 'pr_positive', 'r_hat', 'ess_bulk', 'ess_tail']
    >>> res.table(style="paper").columns[1]
    'Estimate (95% CI)'
    >>> list(res.hdi(0.9).columns)
    ['term', 'lcl', 'ucl']
    >>> print(res.summary())  # doctest: +ELLIPSIS
    Bayesian causal excursion effect (gaussian outcome, collapsed model)
    participants: 20, rows: ..., chains x draws: 2 x 300, divergences: 0, ...
    >>> res.participant_effects().shape
    (20, 6)
    """

    idata: xr.DataTree
    config: dict
    design: Any = field(default=None)
    meta: dict = field(default_factory=dict)

    _kind = "Bayesian causal excursion effect"
    _format = "hte_mrt.BayesResult/1"

    # ------------------------------------------------------------------ draws
    @property
    def posterior(self) -> xr.Dataset:
        """The posterior draws (dims chain, draw and term, control_term, participant, ...)."""
        return self.idata["posterior"].to_dataset()

    def effect_draws(self, scale: str | None = None) -> xr.DataArray:
        """Draws of the excursion-effect terms, dims (chain, draw, term).

        ``scale``: ``"difference"`` (beta; Gaussian default), ``"log_rr"`` or
        ``"risk_difference"`` (binary outcomes, standardized marginal effect, term "Intercept").
        """
        fam = self.config["family"]
        scale = scale or ("log_rr" if fam == "bernoulli" else "difference")
        post = self.posterior
        if scale == "difference":
            return post["beta"]
        if scale in ("log_rr", "risk_difference") and scale in post:
            return post[scale].expand_dims(term=["Intercept"], axis=-1)
        avail = ["difference"] + [s for s in ("log_rr", "risk_difference") if s in post]
        raise DesignError(
            f"scale {scale!r} is not available for family {fam!r}; use one of "
            f"{', '.join(repr(s) for s in avail)}."
        )

    # ------------------------------------------------------------------ tables
    def _draws_by_term(self, scale: str | None) -> list[xr.DataArray]:
        """Effect draws, then each variance parameter, every one with a ``term`` dim."""
        parts = [self.effect_draws(scale)]
        post = self.posterior
        parts += [post[v].expand_dims(term=[v], axis=-1) for v in VARIANCE_PARAMS if v in post]
        return parts

    def _table(self, conf_level: float, scale: str | None = None) -> pd.DataFrame:
        return pd.concat(
            [self._summarize(da, conf_level) for da in self._draws_by_term(scale)],
            ignore_index=True,
        )

    def table(
        self, conf_level: float | None = None, style: Style = "tidy", *, scale: str | None = None
    ) -> pd.DataFrame:
        """Posterior summaries: effect terms first, then the variance parameters.

        Parameters
        ----------
        conf_level : float, optional
            Level of the equal-tailed credible intervals (default 0.95).
        style : {"tidy", "paper"}
            ``"paper"``: "Estimate (95% CI)" cells and human headers.
        scale : str, optional
            ``"difference"`` (beta; the Gaussian default), ``"log_rr"`` (the Bernoulli default)
            or ``"risk_difference"`` (binary outcomes; see :meth:`effect_draws`).

        Returns
        -------
        pandas.DataFrame
            term, estimate (posterior mean), se (posterior sd), lcl, ucl, pr_positive
            (posterior Pr(> 0); trivially 1 for the scale parameters), r_hat, ess_bulk, ess_tail.
        """
        level = self._level(conf_level)
        tab = self._table(level, scale)
        if style == "tidy":
            return tab
        if style == "paper":
            return paper_table(tab, level)
        raise DesignError(f"style must be 'tidy' or 'paper', got {style!r}.")

    def hdi(self, conf_level: float = 0.95, *, scale: str | None = None) -> pd.DataFrame:
        """Highest-density intervals (columns term, lcl, ucl), rows as in :meth:`table`."""
        import arviz as az

        level = check_conf_level(conf_level)
        frames = []
        for da in self._draws_by_term(scale):
            h = np.asarray(az.hdi(da, prob=level).values)
            frames.append(
                pd.DataFrame(
                    {
                        "term": [str(t) for t in da["term"].values],
                        "lcl": h[..., 0],
                        "ucl": h[..., 1],
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)

    @staticmethod
    def _summarize(da: xr.DataArray, conf_level: float) -> pd.DataFrame:
        import arviz as az

        x = da.values.reshape(-1, da.shape[-1])
        lcl, ucl = _bounds(x, conf_level, axis=0)
        ds = da.to_dataset(name="v")
        with warnings.catch_warnings():
            # a parameter held fixed by its prior (dist "fixed") has constant draws: no r_hat
            warnings.filterwarnings("ignore", "invalid value", RuntimeWarning)
            r_hat = np.atleast_1d(az.rhat(ds)["v"].values)
        return pd.DataFrame(
            {
                "term": [str(t) for t in da["term"].values],
                "estimate": x.mean(axis=0),
                "se": x.std(axis=0, ddof=1),
                "lcl": lcl,
                "ucl": ucl,
                "pr_positive": (x > 0).mean(axis=0),
                "r_hat": r_hat,
                "ess_bulk": np.atleast_1d(az.ess(da, method="bulk").values),
                "ess_tail": np.atleast_1d(az.ess(da, method="tail").values),
            }
        )

    def _summary_parts(self) -> tuple[str, dict, list[str]]:
        cfg = self.config
        collapsed = cfg.get("method") == "collapsed" and cfg["family"] == "gaussian"
        title = (
            f"Bayesian causal excursion effect ({cfg['family']} outcome, "
            f"{'collapsed' if collapsed else 'row-level'} model)"
        )
        d = self.diagnostics()
        info = {
            "participants": self.meta.get("n_participants"),
            "rows": self.meta.get("n_rows"),
            "chains x draws": f"{d['chains']} x {d['total_draws'] // max(1, d['chains'])}",
            "divergences": d["divergences"],
            "max r_hat": round(d["max_r_hat"], 3),
            "min ESS": round(d["min_ess_bulk"]),
        }
        notes = list(d["messages"])
        fixed = [v for v in self._fixed_params() if v in self.posterior]
        if fixed:
            notes.append(f"{', '.join(fixed)} held fixed by the priors (posterior sd 0, no r_hat).")
        if cfg["family"] == "bernoulli":
            notes.insert(
                0,
                "Effect on the log relative-risk scale, standardized over the available decision "
                "points (table(scale='risk_difference') for the risk difference).",
            )
        return title, info, notes

    def _repr_extra(self) -> str:
        post = self.posterior
        return (
            f"{self.config['family']}, {self.meta.get('n_participants')} participants, "
            f"{post.sizes['chain']} x {post.sizes['draw']} draws"
        )

    def to_xarray(self) -> xr.Dataset:
        """The posterior draws as an xarray Dataset (dims chain, draw, term, ...)."""
        return self.posterior

    def _f_matrix(self, grid: pd.DataFrame) -> np.ndarray:
        check_grid(grid)
        if self.design is not None:
            return self.design.f_matrix(grid)
        from formulaic import Formula, model_matrix
        from formulaic.errors import FormulaicError

        from hte_mrt.errors import FormulaError, MissingColumnError
        from hte_mrt.estimands.excursion import _required_columns, _rhs

        rhs = _rhs(self.config["moderators"])
        needed = sorted(_required_columns(Formula(rhs)))
        absent = [v for v in needed if v not in grid.columns]
        if absent:
            raise MissingColumnError(
                f"The grid lacks the moderator column(s) {absent}: give one column per "
                f"variable of the moderator formula ({needed}).",
                column=absent[0],
            )
        try:
            mm = model_matrix(rhs, grid, na_action="raise")
        except (FormulaicError, ValueError) as e:
            raise FormulaError(
                f"Cannot build the moderator terms on the grid: {e} Give the grid's moderator "
                f"columns ({needed}) complete values of the types used in the fit."
            ) from e
        if list(mm.model_spec.column_names) != self.meta["f_names"]:
            raise DesignError(
                "This saved result's moderator terms need the original data to be rebuilt "
                "(stateful transforms such as bs()): use BayesResult.from_netcdf(path, data=...)."
            )
        return np.asarray(mm, dtype=float)

    def effect_curve(self, grid: pd.DataFrame) -> xr.DataArray:
        """Draws of beta(t; s) = f(s)' beta on a grid: dims (chain, draw, [level,] point)."""
        F = self._f_matrix(grid)
        beta = self.posterior["beta"].values
        p = F.shape[1]
        levels = self.meta["levels"]
        out = np.stack([beta[..., j * p : (j + 1) * p] @ F.T for j in range(len(levels))], axis=2)
        coords = {"level": levels, "point": np.arange(len(grid))}
        for c in grid.columns:
            coords[c] = ("point", grid[c].to_numpy())
        da = xr.DataArray(
            out, dims=("chain", "draw", "level", "point"), coords=coords, name="effect"
        )
        return da if len(levels) > 1 else da.isel(level=0, drop=True)

    def effect_curve_summary(self, grid: pd.DataFrame, conf_level: float = 0.95) -> pd.DataFrame:
        """The effect at each grid point: the grid's columns ([level,]) then estimate (posterior
        mean), se (posterior sd), lcl, ucl (equal-tailed at ``conf_level``), pr_positive."""
        level = check_conf_level(conf_level)
        da = self.effect_curve(grid)
        x = da.stack(sample=SAMPLE_DIMS).transpose(..., "sample").values
        levels = self.meta["levels"]
        frames = []
        xs = x if len(levels) > 1 else x[None]
        for j, lev in enumerate(levels):
            f = grid.reset_index(drop=True).copy()
            if len(levels) > 1:
                f.insert(0, "level", lev)
            v = xs[j]
            f["estimate"], f["se"] = v.mean(axis=1), v.std(axis=1, ddof=1)
            f["lcl"], f["ucl"] = _bounds(v, level, axis=1)
            f["pr_positive"] = (v > 0).mean(axis=1)
            frames.append(f)
        return pd.concat(frames, ignore_index=True)

    def participant_effects(self, conf_level: float = 0.95) -> pd.DataFrame:
        """Each participant's average excursion effect over their available decision points.

        Columns participant, estimate (posterior mean), se (posterior sd), lcl, ucl,
        pr_positive; with a random slope, ``attrs["sd_u"]`` holds the posterior mean and
        interval of the between-participant sd (keys estimate, lcl, ucl).
        """
        level = check_conf_level(conf_level)
        if "participant_effect" in self.posterior:
            da = self.posterior["participant_effect"]
            x = da.stack(sample=SAMPLE_DIMS).transpose("participant", "sample").values
            lcl, ucl = _bounds(x, level, axis=1)
            tab = pd.DataFrame(
                {
                    "participant": da["participant"].values,
                    "estimate": x.mean(axis=1),
                    "se": x.std(axis=1, ddof=1),
                    "lcl": lcl,
                    "ucl": ucl,
                    "pr_positive": (x > 0).mean(axis=1),
                }
            )
        else:
            tab = self._participant_summary_table(level)
        if "sd_u" in self.posterior:
            s = self.posterior["sd_u"].values.ravel()
            lo, hi = _bounds(s, level, axis=0)
            tab.attrs["sd_u"] = {"estimate": float(s.mean()), "lcl": float(lo), "ucl": float(hi)}
        return tab

    def _participant_summary_table(self, level: float) -> pd.DataFrame:
        """participant_effects() from the kept summaries (``participant_draws=False``)."""
        if "participant_summary" not in self.idata.children:
            raise DesignError(
                "This result has neither participant-level draws nor their summaries; refit "
                "with BayesMRT(participant_draws=True)."
            )
        summ = self.idata["participant_summary"].to_dataset()
        probs = summ["prob"].values
        lo, hi = (1.0 - level) / 2.0, 1.0 - (1.0 - level) / 2.0
        k_lo, k_hi = np.flatnonzero(np.isclose(probs, lo)), np.flatnonzero(np.isclose(probs, hi))
        if not (len(k_lo) and len(k_hi)):
            pairs = [q for q in probs if q < 0.5 and np.isclose(probs, 1.0 - q).any()]
            kept = sorted({round(1.0 - 2.0 * q, 6) for q in pairs})
            raise DesignError(
                f"conf_level={level}: participant-level draws were not kept (participant_draws="
                f"False, or more than {PARTICIPANT_DRAWS_MAX:,} draws x participants), only "
                f"intervals at conf_level {', '.join(str(v) for v in kept)}; use one of those, "
                "or refit with BayesMRT(participant_draws=True)."
            )
        q = summ["quantile"].values  # (participant, prob), of the participant effect
        one = summ.sel(quantity="participant_effect")
        return pd.DataFrame(
            {
                "participant": summ["participant"].values,
                "estimate": one["mean"].values,
                "se": one["sd"].values,
                "lcl": q[:, k_lo[0]],
                "ucl": q[:, k_hi[0]],
                "pr_positive": one["pr_positive"].values,
            }
        )

    # ------------------------------------------------------------------ diagnostics
    def diagnostics(self) -> dict:
        """Divergences, worst R-hat and ESS over the main parameters, BFMI per chain."""
        import arviz as az

        post = self.posterior
        names = [
            v
            for v in ("alpha", "beta", "sigma", "sd_b", "sd_u", "sd_c", "rho", "smooth_sd")
            if v in post and v not in self._fixed_params()
        ]
        ds = post[names]
        rhat = az.rhat(ds)
        ess_b = az.ess(ds, method="bulk")
        ess_t = az.ess(ds, method="tail")
        ss = (
            self.idata["sample_stats"].to_dataset()
            if "sample_stats" in self.idata.children
            else None
        )
        n_div = int(ss["diverging"].sum()) if ss is not None and "diverging" in ss else 0
        bfmi = None
        if ss is not None and "energy" in ss:
            e = ss["energy"].values
            bfmi = (np.square(np.diff(e, axis=1)).mean(axis=1) / e.var(axis=1)).tolist()
        out = {
            "total_draws": int(post.sizes["chain"] * post.sizes["draw"]),
            "chains": int(post.sizes["chain"]),
            "divergences": n_div,
            "max_r_hat": float(max(float(rhat[v].max()) for v in names)),
            "min_ess_bulk": float(min(float(ess_b[v].min()) for v in names)),
            "min_ess_tail": float(min(float(ess_t[v].min()) for v in names)),
            "bfmi": bfmi,
        }
        out["messages"] = self._messages(out)
        return out

    def _fixed_params(self) -> list[str]:
        """Standard deviations held at a value by their prior (``{"dist": "fixed"}``)."""
        pri = self.config.get("priors") or {}
        return [k for k, v in pri.items() if isinstance(v, dict) and v.get("dist") == "fixed"]

    @staticmethod
    def _messages(d: dict) -> list[str]:
        msgs = []
        if d["divergences"]:
            msgs.append(
                f"{d['divergences']} divergent transitions: the sampler could not explore part of "
                "the posterior, so estimates may be biased. Raise target_accept (0.95-0.99) or "
                "simplify the random-effects structure."
            )
        if d["chains"] > 1 and d["max_r_hat"] > 1.01:
            msgs.append(
                f"R-hat up to {d['max_r_hat']:.3f} (> 1.01): chains disagree; run longer "
                "(more tune and draws) before trusting the summaries."
            )
        if d["min_ess_bulk"] < min(400, 0.1 * d["total_draws"]):
            msgs.append(
                f"Effective sample size as low as {d['min_ess_bulk']:.0f}: Monte Carlo error is "
                "large; draw more samples."
            )
        if d["bfmi"] and min(d["bfmi"]) < 0.3:
            msgs.append(
                f"Low energy BFMI ({min(d['bfmi']):.2f} < 0.3): heavy-tailed or poorly scaled "
                "posterior; consider reparameterizing."
            )
        return msgs

    def warn_if_unreliable(self) -> None:
        for m in self.diagnostics()["messages"]:
            warnings.warn(m, ConvergenceWarning, stacklevel=3)

    # ------------------------------------------------------------------ saving
    def _sidecar_meta(self) -> dict:
        return {"config": self.config, "meta": self.meta}

    def to_netcdf(self, path: str | Path) -> Path:
        """Write the draws (NetCDF, h5netcdf; every group of :attr:`idata`) and the
        configuration (JSON, in the file and in the sidecar ``x.json`` beside ``x.nc``)."""
        path = output_path(path, "to_netcdf", ".nc")
        if path.suffix == ".json":
            raise DesignError(f"to_netcdf: {path} ends in .json, the sidecar's suffix; use '.nc'.")
        meta = {"format": self._format, **self._sidecar_meta()}
        dt = self.idata.copy()
        dt.attrs["hte_mrt"] = json.dumps(meta, default=json_default)
        dt.to_netcdf(path, engine="h5netcdf")
        sidecar(path).write_text(json.dumps(meta, indent=2, default=json_default))
        return path

    @classmethod
    def from_netcdf(cls, path: str | Path, data: Any = None) -> BayesResult:
        """Load a result saved by :meth:`to_netcdf`.

        Pass the trial's ``data`` to rebuild the design (needed for effect curves of moderators
        with stateful transforms such as ``bs()``). A file that is not a saved BayesResult
        raises :class:`~hte_mrt.errors.DataError`.
        """
        check_path(path)
        meta = read_sidecar(path, "BayesResult")
        dt = xr.open_datatree(Path(path), engine="h5netcdf").load()
        design = None
        if data is not None:
            from hte_mrt.estimands.excursion import ExcursionEffect, build_design, check_mrt_data

            check_mrt_data(data, "BayesResult.from_netcdf(data=...)")

            c = meta["config"]
            design = build_design(
                data,
                ExcursionEffect(c["moderators"], c["controls"], c.get("lag") or 0, c["numerator"]),
            )
        return cls(idata=dt, config=meta["config"], design=design, meta=meta["meta"])

    # ------------------------------------------------------------------ plots
    def plot_effect_curve(
        self, grid: pd.DataFrame, x: str | None = None, wcls: Any = None, ax=None
    ):
        """Posterior mean and 95% band of beta(t; s) over ``grid[x]``; optional WCLS overlay."""
        import matplotlib.pyplot as plt

        check_ax(ax, "BayesResult.plot_effect_curve")
        check_grid(grid)
        if x is None:
            x = grid.columns[0]
        if not isinstance(x, str) or x not in grid.columns:
            raise DesignError(
                f"plot_effect_curve: x={x!r} is not a column of the grid "
                f"({', '.join(map(str, grid.columns))}); pass x= one of those (the moderator "
                "on the horizontal axis)."
            )
        if wcls is not None and not callable(getattr(wcls, "effect_curve", None)):
            raise DesignError(
                f"plot_effect_curve: wcls must be a fitted hm.wcls(...) result (an "
                f"ExcursionResult) to overlay, or None; got {type(wcls).__name__}."
            )
        s = self.effect_curve_summary(grid)
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        for lev, sub in s.groupby("level", sort=False) if "level" in s else [(None, s)]:
            lab = "posterior" if lev is None else f"posterior ({lev})"
            ax.fill_between(sub[x], sub["lcl"], sub["ucl"], alpha=0.25)
            ax.plot(sub[x], sub["estimate"], label=lab)
        if wcls is not None:
            w = wcls.effect_curve(grid)
            for lev, sub in w.groupby("level", sort=False) if "level" in w else [(None, w)]:
                lab = "WCLS" if lev is None else f"WCLS ({lev})"
                ax.plot(sub[x], sub["estimate"], "k--", lw=1, label=lab)
                ax.plot(sub[x], sub["lcl"], "k:", lw=0.8)
                ax.plot(sub[x], sub["ucl"], "k:", lw=0.8)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_xlabel(x)
        ax.set_ylabel("causal excursion effect")
        ax.legend(frameon=False)
        ax.figure.tight_layout()
        return ax

    def plot_participants(self, ax=None):
        """Caterpillar plot of participants' average effects with 95% intervals."""
        import matplotlib.pyplot as plt

        check_ax(ax, "BayesResult.plot_participants")

        t = self.participant_effects().sort_values("estimate").reset_index(drop=True)
        if ax is None:
            _, ax = plt.subplots(figsize=(6, max(3, 0.12 * len(t))))
        ax.errorbar(
            t["estimate"],
            np.arange(len(t)),
            xerr=[t["estimate"] - t["lcl"], t["ucl"] - t["estimate"]],
            fmt="o",
            ms=3,
            lw=0.8,
        )
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_yticks(np.arange(len(t)), [str(p) for p in t["participant"]], fontsize=6)
        ax.set_xlabel("participant's average excursion effect")
        ax.figure.tight_layout()
        return ax
