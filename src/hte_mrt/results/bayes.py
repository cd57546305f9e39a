"""Posterior results of the Bayesian MRT model: one canonical ArviZ / xarray container.

The posterior (an xarray DataTree, groups ``posterior`` and ``sample_stats``) carries named dims
``term`` (effect terms beta), ``control_term``, ``participant``, ``cluster``. Added after sampling:
``b``, ``u``, ``c`` (random effects; exact conditional draws for the collapsed model),
``participant_effect`` (each participant's average excursion effect
mean_t f_it' beta + u_i over their available decision points) and, for binary outcomes,
``log_rr`` / ``risk_difference`` (standardized over available decision points).
Saved as NetCDF with the model configuration as JSON (never pickle).
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

from hte_mrt.errors import ConvergenceWarning, DesignError

SAMPLE_DIMS = ("chain", "draw")


def _expit(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


@dataclass
class BayesResult:
    """Posterior of a :class:`~hte_mrt.estimators.bayes.model.BayesMRT` fit."""

    idata: xr.DataTree
    config: dict
    design: Any = field(default=None, repr=False)
    meta: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_fit(cls, idata: xr.DataTree, built: Any, *, seed: int | None, sampler: str):
        """Attach random effects, participant effects and standardized effects to the draws."""
        post = idata["posterior"].to_dataset()
        design = built.design
        chains, draws = post.sizes["chain"], post.sizes["draw"]
        S = chains * draws
        if built.scale_names and "scales" in post:
            for k, n in enumerate(built.scale_names):
                post[n] = post["scales"].isel({post["scales"].dims[-1]: k}, drop=True)
        alpha, beta = built.theta_draws(post)
        post["alpha"] = (("chain", "draw", "control_term"), alpha.reshape(chains, draws, -1))
        post["beta"] = (("chain", "draw", "term"), beta.reshape(chains, draws, -1))
        post = post.assign_coords(control_term=list(design.g_names), term=list(design.effect_names))
        flat = {k: post[k].values.reshape(S, *post[k].shape[2:]) for k in post.data_vars}
        if built.stats is not None:  # collapsed Gaussian model: draw b, u, c exactly
            from hte_mrt.estimators.bayes.collapsed import draw_random_effects

            theta = np.concatenate([flat["alpha"], flat["beta"]], axis=1)
            params = {
                "theta": theta,
                "sd": flat["sigma"],
                "sd_b": flat["sd_b"],
                "sd_u": flat.get("sd_u", np.zeros(S)),
            }
            if "rho" in flat:
                params["rho"] = flat["rho"]
            if "sd_c" in flat:
                params["sd_c"] = flat["sd_c"]
            # chunk over draws: the exact conditional draws need ~20 (draws x participants)
            # temporaries, which must not all be alive at once for large trials
            rng = np.random.default_rng(seed)
            step = max(1, int(2_000_000 // max(1, design.n_groups)))
            chunks = [
                draw_random_effects(
                    built.stats, {k: v[s0 : s0 + step] for k, v in params.items()}, rng
                )
                for s0 in range(0, S, step)
            ]
            re = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
            post["b"] = (("chain", "draw", "participant"), re["b"].reshape(chains, draws, -1))
            if "sd_u" in flat:
                post["u"] = (("chain", "draw", "participant"), re["u"].reshape(chains, draws, -1))
            if "c" in re:
                post["c"] = (("chain", "draw", "cluster"), re["c"].reshape(chains, draws, -1))
            flat.update({k: post[k].values.reshape(S, -1) for k in ("b", "u", "c") if k in post})
        # participant average effect (first treated level)
        p = design.F.shape[1]
        starts = np.r_[0, np.flatnonzero(np.diff(design.group)) + 1]
        counts = np.diff(np.r_[starts, len(design.group)])
        fbar = np.add.reduceat(design.F, starts, axis=0) / counts[:, None]
        pe = flat["beta"][:, :p] @ fbar.T
        if "u" in flat:
            pe = pe + flat["u"]
        post["participant_effect"] = (
            ("chain", "draw", "participant"),
            pe.reshape(chains, draws, -1),
        )
        if built.config["family"] == "bernoulli":
            lrr, rd = cls._standardize(flat, design, built)
            post["log_rr"] = (("chain", "draw"), lrr.reshape(chains, draws))
            post["risk_difference"] = (("chain", "draw"), rd.reshape(chains, draws))
        post = post.assign_coords(participant=np.asarray(design.group_values))
        if "cluster" in post.dims and built.cluster_values is not None:
            post = post.assign_coords(cluster=[str(c) for c in built.cluster_values])
        idata["posterior"] = xr.DataTree(post)
        meta = {
            "seed": seed,
            "sampler": sampler,
            "n_participants": int(design.n_groups),
            "n_rows": len(design.y),
            "effect_names": list(design.effect_names),
            "control_names": list(design.g_names),
            "f_names": list(design.f_names),
            "levels": list(design.levels),
        }
        return cls(idata=idata, config=built.config, design=design, meta=meta)

    @staticmethod
    def _standardize(flat: dict, design: Any, built: Any) -> tuple[np.ndarray, np.ndarray]:
        """Marginal log RR and RD over available decision points, per draw."""
        theta = np.concatenate([flat["alpha"], flat["beta"]], axis=1)
        S = theta.shape[0]
        x1, x0 = design.x_for(1), design.x_for(0)
        at1 = 1.0 - design.num[:, 1]
        at0 = -design.num[:, 1]
        lrr, rd = np.empty(S), np.empty(S)
        step = max(1, int(2e7 // max(1, len(design.y))))
        for s0 in range(0, S, step):
            sl = slice(s0, min(S, s0 + step))
            re = flat["b"][sl][:, design.group]
            if "c" in flat and built.cluster_of is not None:
                re = re + flat["c"][sl][:, built.cluster_of[design.group]]
            e1 = theta[sl] @ x1.T + re
            e0 = theta[sl] @ x0.T + re
            if "u" in flat:
                uu = flat["u"][sl][:, design.group]
                e1, e0 = e1 + uu * at1, e0 + uu * at0
            m1, m0 = _expit(e1).mean(axis=1), _expit(e0).mean(axis=1)
            lrr[sl], rd[sl] = np.log(m1) - np.log(m0), m1 - m0
        return lrr, rd

    # ------------------------------------------------------------------ draws
    @property
    def posterior(self) -> xr.Dataset:
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
        raise DesignError(f"scale {scale!r} is not available for family {fam!r}.")

    # ------------------------------------------------------------------ summaries
    def summary(self, prob: float = 0.95, hdi_prob: float = 0.94, scale: str | None = None):
        """term, mean, sd, equal-tailed interval, HDI, Pr(> 0), R-hat, ESS (bulk, tail).

        Effect terms first, then the variance parameters (for which Pr(> 0) is trivially 1).
        """
        parts = [self._summarize(self.effect_draws(scale), prob, hdi_prob)]
        for v in ("sigma", "sd_b", "sd_u", "sd_c", "rho", "smooth_sd"):
            if v in self.posterior:
                da = self.posterior[v].expand_dims(term=[v], axis=-1)
                parts.append(self._summarize(da, prob, hdi_prob))
        return pd.concat(parts, ignore_index=True)

    @staticmethod
    def _summarize(da: xr.DataArray, prob: float, hdi_prob: float) -> pd.DataFrame:
        import arviz as az

        x = da.values.reshape(-1, da.shape[-1])
        lo, hi = (1 - prob) / 2, (1 + prob) / 2
        hdi = az.hdi(da, prob=hdi_prob).values
        ds = da.to_dataset(name="v")
        rhat = az.rhat(ds)["v"].values
        ess_b = az.ess(da, method="bulk").values
        ess_t = az.ess(da, method="tail").values
        pl, ph = f"{100 * lo:g}%", f"{100 * hi:g}%"
        hl = f"hdi_{100 * (1 - hdi_prob) / 2:g}%"
        hh = f"hdi_{100 * (1 + hdi_prob) / 2:g}%"
        return pd.DataFrame(
            {
                "term": [str(t) for t in da["term"].values],
                "mean": x.mean(axis=0),
                "sd": x.std(axis=0, ddof=1),
                pl: np.quantile(x, lo, axis=0),
                ph: np.quantile(x, hi, axis=0),
                hl: hdi[..., 0],
                hh: hdi[..., 1],
                "p_gt_0": (x > 0).mean(axis=0),
                "r_hat": np.atleast_1d(rhat),
                "ess_bulk": np.atleast_1d(ess_b),
                "ess_tail": np.atleast_1d(ess_t),
            }
        )

    def _f_matrix(self, grid: pd.DataFrame) -> np.ndarray:
        if self.design is not None:
            return self.design.f_matrix(grid)
        from formulaic import model_matrix

        from hte_mrt.estimands.excursion import _rhs

        mm = model_matrix(_rhs(self.config["moderators"]), grid, na_action="raise")
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

    def effect_curve_summary(self, grid: pd.DataFrame, prob: float = 0.95) -> pd.DataFrame:
        """Posterior mean, sd, interval and Pr(> 0) of the effect at each grid point."""
        da = self.effect_curve(grid)
        x = da.stack(sample=SAMPLE_DIMS).transpose(..., "sample").values
        lo, hi = (1 - prob) / 2, (1 + prob) / 2
        levels = self.meta["levels"]
        frames = []
        xs = x if len(levels) > 1 else x[None]
        for j, lev in enumerate(levels):
            f = grid.reset_index(drop=True).copy()
            if len(levels) > 1:
                f.insert(0, "level", lev)
            v = xs[j]
            f["mean"], f["sd"] = v.mean(axis=1), v.std(axis=1, ddof=1)
            f["lcl"], f["ucl"] = np.quantile(v, lo, axis=1), np.quantile(v, hi, axis=1)
            f["p_gt_0"] = (v > 0).mean(axis=1)
            frames.append(f)
        return pd.concat(frames, ignore_index=True)

    def participant_effects(self, prob: float = 0.95) -> pd.DataFrame:
        """Each participant's average excursion effect (posterior); ``attrs['sd_u']`` if fitted."""
        da = self.posterior["participant_effect"]
        x = da.stack(sample=SAMPLE_DIMS).transpose("participant", "sample").values
        lo, hi = (1 - prob) / 2, (1 + prob) / 2
        tab = pd.DataFrame(
            {
                "participant": da["participant"].values,
                "mean": x.mean(axis=1),
                "sd": x.std(axis=1, ddof=1),
                "lcl": np.quantile(x, lo, axis=1),
                "ucl": np.quantile(x, hi, axis=1),
                "p_gt_0": (x > 0).mean(axis=1),
            }
        )
        if "sd_u" in self.posterior:
            s = self.posterior["sd_u"].values.ravel()
            tab.attrs["sd_u"] = {
                "mean": float(s.mean()),
                "lcl": float(np.quantile(s, lo)),
                "ucl": float(np.quantile(s, hi)),
            }
        return tab

    # ------------------------------------------------------------------ diagnostics
    def diagnostics(self) -> dict:
        """Divergences, worst R-hat and ESS over the main parameters, BFMI per chain."""
        import arviz as az

        post = self.posterior
        names = [
            v
            for v in ("alpha", "beta", "sigma", "sd_b", "sd_u", "sd_c", "rho", "smooth_sd")
            if v in post
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
            "n_draws": int(post.sizes["chain"] * post.sizes["draw"]),
            "n_chains": int(post.sizes["chain"]),
            "divergences": n_div,
            "max_rhat": float(max(float(rhat[v].max()) for v in names)),
            "min_ess_bulk": float(min(float(ess_b[v].min()) for v in names)),
            "min_ess_tail": float(min(float(ess_t[v].min()) for v in names)),
            "bfmi": bfmi,
        }
        out["messages"] = self._messages(out)
        return out

    @staticmethod
    def _messages(d: dict) -> list[str]:
        msgs = []
        if d["divergences"]:
            msgs.append(
                f"{d['divergences']} divergent transitions: the sampler could not explore part of "
                "the posterior, so estimates may be biased. Raise target_accept (0.95-0.99) or "
                "simplify the random-effects structure."
            )
        if d["n_chains"] > 1 and d["max_rhat"] > 1.01:
            msgs.append(
                f"R-hat up to {d['max_rhat']:.3f} (> 1.01): chains disagree; run longer "
                "(more tune and draws) before trusting the summaries."
            )
        if d["min_ess_bulk"] < min(400, 0.1 * d["n_draws"]):
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
    def to_netcdf(self, path: str | Path) -> Path:
        """Write the posterior (NetCDF, h5netcdf) and the configuration (JSON sidecar)."""
        path = Path(path)
        meta = {"config": self.config, "meta": self.meta, "format": "hte_mrt.BayesResult/1"}
        dt = self.idata.copy()
        dt.attrs["hte_mrt"] = json.dumps(meta)
        dt.to_netcdf(path, engine="h5netcdf")
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2, default=str))
        return path

    @classmethod
    def from_netcdf(cls, path: str | Path, data: Any = None) -> BayesResult:
        """Load a saved result; pass ``data`` to rebuild the design (needed for bs() curves)."""
        dt = xr.open_datatree(Path(path), engine="h5netcdf").load()
        meta = json.loads(dt.attrs["hte_mrt"])
        design = None
        if data is not None:
            from hte_mrt.estimands.excursion import ExcursionEffect, build_design

            c = meta["config"]
            design = build_design(
                data, ExcursionEffect(c["moderators"], c["controls"], c["lag"], c["numerator"])
            )
        return cls(idata=dt, config=meta["config"], design=design, meta=meta["meta"])

    # ------------------------------------------------------------------ plots
    def plot_effect_curve(
        self, grid: pd.DataFrame, x: str | None = None, wcls: Any = None, ax=None
    ):
        """Posterior mean and 95% band of beta(t; s) over ``grid[x]``; optional WCLS overlay."""
        import matplotlib.pyplot as plt

        x = x or grid.columns[0]
        s = self.effect_curve_summary(grid)
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        for lev, sub in s.groupby("level", sort=False) if "level" in s else [(None, s)]:
            lab = "posterior" if lev is None else f"posterior ({lev})"
            ax.fill_between(sub[x], sub["lcl"], sub["ucl"], alpha=0.25)
            ax.plot(sub[x], sub["mean"], label=lab)
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

        t = self.participant_effects().sort_values("mean").reset_index(drop=True)
        if ax is None:
            _, ax = plt.subplots(figsize=(6, max(3, 0.12 * len(t))))
        ax.errorbar(
            t["mean"],
            np.arange(len(t)),
            xerr=[t["mean"] - t["lcl"], t["ucl"] - t["mean"]],
            fmt="o",
            ms=3,
            lw=0.8,
        )
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_yticks(np.arange(len(t)), [str(p) for p in t["participant"]], fontsize=6)
        ax.set_xlabel("participant's average excursion effect")
        ax.figure.tight_layout()
        return ax
