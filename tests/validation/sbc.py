"""Simulation-based calibration of BayesMRT (Talts et al. 2018; run by hand, not by pytest).

    nice -n 10 python tests/validation/sbc.py --reps 200            # fit (resumable)
    python tests/validation/sbc.py --report                         # figures and tables only

If the posterior sampler is right, the rank of a parameter value drawn from the prior among L
draws from the posterior given data simulated from it is uniform on {0, ..., L}. For each of
three models (the collapsed Gaussian model, the Bernoulli model and the Gaussian model with a
random treatment slope) and each replicate r:

1. draw every parameter from the prior (the same absolute priors that the fit is given, so the
   data-generating and the fitted prior agree: the default priors scale with the data and
   would break SBC), the random effects from their distributions, and the outcome of a small
   trial (``DESIGN`` participants x decisions; covariate S, treatment and availability from
   ``hm.MRTSimulation``, the same design in every replicate, which SBC allows: it holds
   conditionally on the design);
2. fit BayesMRT (2 chains x ``DRAWS`` draws, thinned by ``THIN`` to L = 99 draws, near
   independence for these small models; the compiled model is reused across fits);
3. record the rank of each true parameter (alpha, beta on the data scale, the variance
   parameters and the first participant's random effects) among the L draws.

Results are appended one line per replicate to ``benchmarks/results/sbc/ranks_<model>.jsonl``
(a rerun skips replicates already there, so the study resumes where it stopped; seeds are
per replicate, so the result does not depend on how often it was interrupted). ``--report``
writes the rank histograms (20 bins, with the band that holds 99% of a uniform histogram's bin
counts) as PNG, ``summary.md`` (parameter, n, chi-square p, KS p) and ``settings.json``.

Fits are never discarded (dropping the ones with warnings would bias the ranks); their
divergences and convergence warnings are recorded and summarized.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "benchmarks" / "results" / "sbc"
SEED = 20181018  # Talts et al., arXiv:1804.06788
DESIGN = dict(n_participants=16, n_decisions=25)
CHAINS, DRAWS, TUNE, THIN = 2, 250, 300, 5
L = 99  # posterior draws per rank (after thinning): ranks in 0..L
BINS = 20  # histogram bins of 5 ranks each

_BASE = {
    "intercept": {"dist": "normal", "mu": 0.0, "sigma": 1.0},
    "alpha": {"dist": "normal", "mu": 0.0, "sigma": 1.0},
    "beta": {"dist": "normal", "mu": 0.0, "sigma": 0.5},
    "sd_b": {"dist": "halfnormal", "sigma": 0.5},
}
MODELS = {
    "gaussian": dict(
        family="gaussian",
        random_slope=False,
        priors={**_BASE, "sigma": {"dist": "halfnormal", "sigma": 1.0}},
    ),
    "random_slope": dict(
        family="gaussian",
        random_slope=True,
        priors={
            **_BASE,
            "sigma": {"dist": "halfnormal", "sigma": 1.0},
            "sd_u": {"dist": "halfnormal", "sigma": 0.5},
        },
    ),
    "bernoulli": dict(
        family="bernoulli",
        random_slope=False,
        priors={**_BASE, "alpha": {"dist": "normal", "mu": 0.0, "sigma": 0.5}},
    ),
}
MODERATORS = CONTROLS = "~ S"


def template():
    """The simulator and the trial design shared by every replicate (outcome replaced)."""
    import hte_mrt as hm

    sim = hm.MRTSimulation(**DESIGN)
    return sim, sim.mrt_data(seed=SEED)


def model_for(name: str, seed: int | None = None):
    from hte_mrt.estimators.bayes.model import BayesMRT

    m = MODELS[name]
    return BayesMRT(
        MODERATORS,
        CONTROLS,
        family=m["family"],
        random_slope=m["random_slope"],
        priors=m["priors"],
        draws=DRAWS,
        tune=TUNE,
        chains=CHAINS,
        progress=False,
        seed=seed,
    )


def _prior_coef(pri: dict, g_names: list[str], n_beta: int) -> tuple[np.ndarray, np.ndarray]:
    """Prior mean and sd of the sampled (centred) coefficient vector, in the model's order."""
    mu, sd = [], []
    for n in g_names:
        key = "intercept" if n == "Intercept" else "alpha"
        mu.append(pri[key]["mu"])
        sd.append(pri[key]["sigma"])
    mu += [pri["beta"]["mu"]] * n_beta
    sd += [pri["beta"]["sigma"]] * n_beta
    return np.asarray(mu, float), np.asarray(sd, float)


def draw_truth(name: str, built, rng: np.random.Generator) -> tuple[dict, np.ndarray]:
    """Parameters from the prior and an outcome on the analysed rows given them.

    The coefficients are drawn where the model puts its prior (the centred parameterization)
    and mapped to the data scale with the model's own linear map, as the fit reports them.
    """
    pri = MODELS[name]["priors"]
    d = built.design
    mu, sd = _prior_coef(pri, d.g_names, len(d.effect_names))
    raw = mu + sd * rng.standard_normal(len(mu))
    theta = built.theta_map @ raw
    q = len(d.g_names)
    truth = {f"alpha:{n}": theta[k] for k, n in enumerate(d.g_names)}
    truth |= {f"beta:{n}": theta[q + k] for k, n in enumerate(d.effect_names)}
    sd_b = abs(rng.normal(0.0, pri["sd_b"]["sigma"]))
    b = sd_b * rng.standard_normal(d.n_groups)
    truth["sd_b"], truth["b[0]"] = sd_b, b[0]
    eta = d.X @ theta + b[d.group]
    if MODELS[name]["random_slope"]:
        sd_u = abs(rng.normal(0.0, pri["sd_u"]["sigma"]))
        u = sd_u * rng.standard_normal(d.n_groups)
        truth["sd_u"], truth["u[0]"] = sd_u, u[0]
        eta = eta + built.at * u[d.group]
    if MODELS[name]["family"] == "gaussian":
        sigma = abs(rng.normal(0.0, pri["sigma"]["sigma"]))
        truth["sigma"] = sigma
        y = eta + sigma * rng.standard_normal(len(eta))
    else:
        y = (rng.random(len(eta)) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
    return {k: float(v) for k, v in truth.items()}, y


def with_outcome(sim, data, rows: np.ndarray, y: np.ndarray):
    """The template trial with its outcome replaced on the analysed rows."""
    frame = data.frame.copy()
    yv = np.zeros(len(frame))
    yv[rows] = y
    frame[data.roles.outcome] = yv
    return sim.to_mrt_data(frame)


def posterior_of(res, key: str, design) -> np.ndarray:
    """Draws (chain, draw) of the parameter named as in :func:`draw_truth`."""
    post = res.posterior
    if key.startswith("alpha:"):
        return post["alpha"].sel(control_term=key[6:]).values
    if key.startswith("beta:"):
        return post["beta"].sel(term=key[5:]).values
    if key.endswith("[0]"):
        return post[key[0]].isel(participant=0).values
    return post[key].values


def one(name: str, rep: int, sim, data, built) -> dict:
    """Fit replicate ``rep`` of model ``name``; the ranks of its true parameters."""
    from hte_mrt.errors import ConvergenceWarning

    rng = np.random.default_rng([SEED, list(MODELS).index(name), rep])
    truth, y = draw_truth(name, built, rng)
    trial = with_outcome(sim, data, built.design.rows, y)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        # last, so it takes precedence (ConvergenceWarning is a UserWarning)
        warnings.simplefilter("always", ConvergenceWarning)
        res = model_for(name, seed=rep).fit(trial)
    secs = time.perf_counter() - t0
    # the refitted design is the template's, and the outcome the simulated one, row by row
    np.testing.assert_array_equal(res.design.X, built.design.X)
    np.testing.assert_array_equal(res.design.y, y)
    ranks, ess = {}, {}
    for key, val in truth.items():
        draws = posterior_of(res, key, built.design)[:, ::THIN].reshape(-1)[:L]
        if len(draws) != L:
            raise RuntimeError(f"{len(draws)} thinned draws, need {L}")
        ranks[key] = int(np.sum(draws < val))
    tab = res.table().set_index("term")
    for key in truth:
        term = key.split(":", 1)[-1] if key.startswith("beta:") else key
        if term in tab.index:
            ess[key] = float(tab.loc[term, "ess_bulk"])
    diag = res.diagnostics()
    return {
        "rep": rep,
        "ranks": ranks,
        "truth": truth,
        "ess_bulk": ess,
        "divergences": int(diag["divergences"]),
        "warnings": [str(w.message)[:200] for w in caught if w.category is ConvergenceWarning],
        "seconds": round(secs, 2),
    }


def _done(path: Path) -> set[int]:
    if not path.exists():
        return set()
    return {json.loads(line)["rep"] for line in path.read_text().splitlines() if line}


def run(names: list[str], reps: int, deadline: float | None, reverse: bool = False) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    sim, data = template()
    for name in names:
        path = OUT / f"ranks_{name}.jsonl"
        done = _done(path)
        todo = [r for r in range(reps) if r not in done][:: -1 if reverse else 1]
        print(f"{name}: {len(done)} done, {len(todo)} to do", flush=True)
        if not todo:
            continue
        tmpl = data
        if MODELS[name]["family"] == "bernoulli":  # a 0/1 outcome to build the model on
            frame = data.frame.copy()
            frame[data.roles.outcome] = (frame[data.roles.outcome] > 0).astype(float)
            tmpl = sim.to_mrt_data(frame)
        built = model_for(name).build(tmpl)
        for rep in todo:
            if deadline is not None and time.time() > deadline:
                print("deadline reached; rerun to resume", flush=True)
                return
            if rep in _done(path):  # done meanwhile by a second process (--reverse)
                continue
            row = one(name, rep, sim, tmpl, built)
            with path.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(f"{name} rep {rep}: {row['seconds']} s, div {row['divergences']}", flush=True)


def uniformity(ranks: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """Chi-square p over BINS equal bins, and KS p of the jittered ranks (rank + U)/(L + 1)."""
    from scipy import stats

    counts = np.bincount(ranks * BINS // (L + 1), minlength=BINS)
    chi2_p = float(stats.chisquare(counts).pvalue)
    jit = (ranks + np.random.default_rng(seed).random(len(ranks))) / (L + 1)
    ks_p = float(stats.kstest(jit, "uniform").pvalue)
    return chi2_p, ks_p


def report() -> list[dict]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import stats

    rows, meta = [], {}
    for name in MODELS:
        path = OUT / f"ranks_{name}.jsonl"
        if not path.exists():
            continue
        recs = {}
        for line in path.read_text().splitlines():  # one record per replicate
            if line:
                rec = json.loads(line)
                recs.setdefault(rec["rep"], rec)
        recs = [recs[k] for k in sorted(recs)]
        if not recs:
            continue
        keys = list(recs[0]["ranks"])
        n = len(recs)
        lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / BINS)
        ncol = min(5, len(keys))
        nrow = -(-len(keys) // ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(2.8 * ncol, 2.6 * nrow + 0.4), squeeze=False)
        for ax in axes.ravel()[len(keys) :]:
            ax.set_visible(False)
        for ax, key in zip(axes.ravel(), keys, strict=False):
            r = np.array([rec["ranks"][key] for rec in recs])
            chi2_p, ks_p = uniformity(r)
            rows.append({"model": name, "parameter": key, "n": n, "chi2_p": chi2_p, "ks_p": ks_p})
            ax.axhspan(lo, hi, color="0.85", zorder=0)
            ax.axhline(n / BINS, color="0.5", lw=0.8)
            ax.hist(r, bins=np.linspace(0, L + 1, BINS + 1), color="C0", edgecolor="white")
            ax.set_title(f"{key}\nchi2 p={chi2_p:.2f}, KS p={ks_p:.2f}", fontsize=9)
            ax.set_xlabel("rank", fontsize=8)
            ax.tick_params(labelsize=7)
        for row in axes:
            row[0].set_ylabel("replicates", fontsize=8)
        fig.suptitle(f"SBC ranks, {name} model (n = {n}; grey: 99% band of a uniform)", fontsize=10)
        fig.tight_layout()
        fig.savefig(OUT / f"sbc_{name}.png", dpi=110)
        plt.close(fig)
        meta[name] = {
            "n_replicates": n,
            "divergent_fits": sum(rec["divergences"] > 0 for rec in recs),
            # the ESS of the reported terms (effects and variances) of each fit; recorded
            # convergence warnings were dropped by a filter before commit 'SBC: warnings'
            "fits_with_ess_below_100": sum(min(rec["ess_bulk"].values()) < 100 for rec in recs),
            "median_seconds": float(np.median([rec["seconds"] for rec in recs])),
            "min_ess_bulk": float(min(min(rec["ess_bulk"].values()) for rec in recs)),
            "priors": MODELS[name]["priors"],
            "random_slope": MODELS[name]["random_slope"],
            "family": MODELS[name]["family"],
        }
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    settings = {
        "seed": SEED,
        "design": DESIGN,
        "moderators": MODERATORS,
        "controls": CONTROLS,
        "chains": CHAINS,
        "draws": DRAWS,
        "tune": TUNE,
        "thin": THIN,
        "L": L,
        "bins": BINS,
        "commit": commit,
        "models": meta,
    }
    (OUT / "settings.json").write_text(json.dumps(settings, indent=2))
    lines = [
        "# Simulation-based calibration of BayesMRT",
        "",
        "Talts et al. (2018). Produced by `tests/validation/sbc.py` (settings in"
        " `settings.json`). Each rank is the number of the L = 99 thinned posterior draws below"
        " the value drawn from the prior; uniform ranks = calibrated posterior. p-values: Pearson"
        f" chi-square over {BINS} equal bins and Kolmogorov-Smirnov of the jittered ranks. With"
        " about 20 tests, one p below 0.05 is expected by chance.",
        "",
        "| model | parameter | n | chi-square p | KS p |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['model']} | {r['parameter']} | {r['n']} | {r['chi2_p']:.3f} | {r['ks_p']:.3f} |"
        for r in rows
    ]
    lines += ["", "| model | replicates | fits with divergences | fits with ESS (bulk) < 100 |"
              " median s / fit | min ESS (bulk) |", "|---|---|---|---|---|---|"]  # fmt: skip
    lines += [
        f"| {k} | {m['n_replicates']} | {m['divergent_fits']} | {m['fits_with_ess_below_100']} |"
        f" {m['median_seconds']:.1f} | {m['min_ess_bulk']:.0f} |"
        for k, m in meta.items()
    ]
    lines += [
        "",
        "ESS: bulk effective sample size of the 500 draws (2 chains x 250) of the terms in"
        " `table()` (for the Bernoulli model: the log relative risk and sd_b). Ranks use every"
        f" {THIN}th draw (L = {L}); where the ESS is below L the thinned draws are still"
        " autocorrelated, which would show as spikes at the extreme ranks"
        " (Talts et al., sec. 5.1).",
        "",
        "Figures: " + ", ".join(f"`sbc_{k}.png`" for k in meta),
        "",
    ]
    (OUT / "summary.md").write_text("\n".join(lines))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--report", action="store_true", help="only write figures and tables")
    ap.add_argument("--until", help="stop starting new fits after this UTC time (HH:MM)")
    ap.add_argument(
        "--reverse", action="store_true", help="last replicates first (a second process)"
    )
    args = ap.parse_args()
    deadline = None
    if args.until:
        import datetime as dt

        now = dt.datetime.now(dt.UTC)
        h, m = map(int, args.until.split(":"))
        deadline = now.replace(hour=h, minute=m, second=0, microsecond=0).timestamp()
    if not args.report:
        run(args.models, args.reps, deadline, args.reverse)
    for r in report():
        print(r)


if __name__ == "__main__":
    main()
