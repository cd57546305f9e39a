"""Recovery study for BayesMRT (run by hand; not collected by pytest).

    python tests/validation/bayes_recovery.py --reps 200 --jobs 2

Simulated trials with known truth: participant and cluster random intercepts, random treatment
slopes, a time-varying moderated effect beta0 + beta1 t/T + beta2 S_t (S exogenous here, so the
hierarchical model is correctly specified and targets the marginal excursion effect). For each
replicate: posterior mean, 90% and 95% equal-tailed intervals of every beta; reported: bias
(with its Monte Carlo SE), coverage (with its binomial MC SE) and the mean posterior sd vs the
empirical sd of the posterior means. Results go to benchmarks/out/bayes_recovery.json.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed

SIM = dict(
    n_participants=40,
    n_decisions=60,
    beta=(0.3, -0.2, 0.15),
    endogenous=False,
    baseline=None,
    sd_participant=0.5,
    sd_cluster=0.3,
    n_clusters=8,
    sd_slope=0.3,
    sd_error=1.0,
    prob=0.5,
    availability=0.8,
)


def linear_baseline(s, tfrac):
    return 0.4 * s - 0.3 * tfrac


def one(rep: int, seed: int, draws: int) -> dict:
    from hte_mrt.data.simulate import MRTSimulation
    from hte_mrt.errors import ConvergenceWarning
    from hte_mrt.estimators.bayes.model import BayesMRT

    cfg = dict(SIM, baseline=linear_baseline)
    sim = MRTSimulation(**cfg)
    frame = sim.simulate(seed=np.random.SeedSequence([seed, rep]))
    frame["clinic"] = frame["cluster"]
    from hte_mrt import MRTData

    data = MRTData(
        frame,
        id="id",
        time="t",
        treatment="A",
        outcome="y",
        prob=0.5,
        availability="avail",
        cluster="clinic",
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always", ConvergenceWarning)
        res = BayesMRT(
            "~ tfrac + S",
            "~ tfrac + S",
            random_slope=True,
            correlated=True,
            draws=draws,
            tune=draws,
            chains=2,
            seed=rep,
            progress=False,
        ).fit(data)
    b = res.posterior["beta"].values.reshape(-1, 3)
    q = np.quantile(b, [0.025, 0.05, 0.95, 0.975], axis=0)
    d = res.diagnostics()
    return {
        "mean": b.mean(0).tolist(),
        "sd": b.std(0, ddof=1).tolist(),
        "q": q.tolist(),
        "seconds": time.perf_counter() - t0,
        "divergences": d["divergences"],
        "max_r_hat": d["max_r_hat"],
        "warnings": len(w),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--seed", type=int, default=20261122)
    a = ap.parse_args()
    truth = np.array(SIM["beta"])
    t0 = time.perf_counter()
    out = Parallel(n_jobs=a.jobs)(delayed(one)(r, a.seed, a.draws) for r in range(a.reps))
    mean = np.array([o["mean"] for o in out])
    sd = np.array([o["sd"] for o in out])
    q = np.array([o["q"] for o in out])  # (R, 4, 3)
    cov95 = ((q[:, 0] <= truth) & (truth <= q[:, 3])).mean(0)
    cov90 = ((q[:, 1] <= truth) & (truth <= q[:, 2])).mean(0)
    R = a.reps
    report = {
        "reps": R,
        "truth": truth.tolist(),
        "bias": (mean.mean(0) - truth).tolist(),
        "bias_mcse": (mean.std(0, ddof=1) / np.sqrt(R)).tolist(),
        "coverage95": cov95.tolist(),
        "coverage90": cov90.tolist(),
        "coverage95_mcse": float(np.sqrt(0.95 * 0.05 / R)),
        "coverage90_mcse": float(np.sqrt(0.9 * 0.1 / R)),
        "mean_posterior_sd": sd.mean(0).tolist(),
        "empirical_sd_of_means": mean.std(0, ddof=1).tolist(),
        "median_fit_seconds": float(np.median([o["seconds"] for o in out])),
        "total_seconds": time.perf_counter() - t0,
        "fits_with_divergences": int(sum(o["divergences"] > 0 for o in out)),
        "max_r_hat": float(max(o["max_r_hat"] for o in out)),
    }
    print(json.dumps(report, indent=2))
    Path("benchmarks/out").mkdir(parents=True, exist_ok=True)
    Path("benchmarks/out/bayes_recovery.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
