"""From raw MCMC draws to a :class:`~hte_mrt.results.bayes.BayesResult` (the estimation work
after sampling).

Added to the sampler's posterior: ``alpha`` / ``beta`` on the data scale (dims
``control_term`` / ``term``), the named variance parameters, the random effects ``b``, ``u``,
``c`` (exact draws from their conditional posteriors for the collapsed Gaussian model),
``participant_effect`` (each participant's average excursion effect
mean_t f_it' beta + u_i over their available decision points) and, for binary outcomes,
``log_rr`` / ``risk_difference`` standardized over the available decision points.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import xarray as xr

from hte_mrt._util import tqdm
from hte_mrt.estimators.bayes.collapsed import (
    draw_cluster_effects,
    draw_random_effects,
    draw_unit_effects,
    subset_stats,
)
from hte_mrt.results.bayes import PARTICIPANT_DRAWS_MAX, SUMMARY_PROBS, BayesResult

#: elements of the (draws x participants) temporaries of the exact random-effect draws
_RE_CHUNK = 2_000_000
#: the same for the blocks whose draws are summarized, over all threads: small, so a block's
#: ~25 temporaries stay in the CPU cache (at 50,000 participants x 4,000 draws, 24 s against
#: 53 s with 1M-element blocks) and the peak stays low
_SUMMARY_CHUNK = 160_000
#: elements of the (draws x rows) temporaries of the standardization
_STD_CHUNK = 20_000_000


def _draw_all(stats, params: dict, rng: np.random.Generator, S: int) -> dict[str, np.ndarray]:
    """b, u (S, N) and c (S, K): exact draws, chunked over posterior draws."""
    # the exact conditional draws need ~20 (draws x participants) temporaries, which must not
    # all be alive at once for large trials; each chunk's draws go straight into the
    # (draws x participants) arrays (memory: one copy, not two)
    step = max(1, int(_RE_CHUNK // max(1, stats.n_units)))
    re: dict[str, np.ndarray] = {}
    for s0 in range(0, S, step):
        chunk = draw_random_effects(stats, {k: v[s0 : s0 + step] for k, v in params.items()}, rng)
        for k, v in chunk.items():
            if k not in re:
                re[k] = np.empty((S, *v.shape[1:]), dtype=v.dtype)
            re[k][s0 : s0 + len(v)] = v
        del chunk
    return re


#: most threads for the blockwise summaries; each block holds _SUMMARY_CHUNK / this elements,
#: whatever the number of threads, so the draws do not depend on the machine
_MAX_THREADS = 4


def _summary_threads() -> int:
    """Threads for the blockwise summaries (numpy releases the GIL in their array work)."""
    return max(1, min(_MAX_THREADS, os.cpu_count() or 1))


def _run_blocks(fn, starts: list[int], rng: np.random.Generator, threads: int, bar) -> None:
    """``fn(start, generator)`` for every block, ticking ``bar``. One block uses ``rng`` itself
    (the same numbers as drawing everything at once); several get generators spawned from it in
    block order, so the draws do not depend on the number of threads or their scheduling."""

    def one(s0: int, gen: np.random.Generator) -> None:
        fn(s0, gen)
        bar.update(1)

    if len(starts) == 1:
        one(starts[0], rng)
        return
    gens = rng.spawn(len(starts))
    if threads == 1:
        for s0, g in zip(starts, gens, strict=True):
            one(s0, g)
        return
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, starts, gens))


def _draw_summarized(
    stats,
    params: dict,
    rng: np.random.Generator,
    S: int,
    beta: np.ndarray,
    fbar: np.ndarray,
    slope: bool,
    progress: bool = False,
) -> tuple[dict[str, np.ndarray], xr.Dataset]:
    """Exact draws of c (S, K) kept; b, u and the participant effect drawn in blocks of
    participants and reduced to their posterior mean, sd and P(> 0), and the participant
    effect's quantiles (:data:`SUMMARY_PROBS`, its intervals), so memory is O(draws x block),
    not O(draws x participants).
    Blocks (a quarter of :data:`_SUMMARY_CHUNK` each) run on up to four threads."""
    N = stats.n_units
    threads = _summary_threads()
    chunk = max(1, _SUMMARY_CHUNK // _MAX_THREADS)
    clustered = params.get("sd_c") is not None and stats.cluster is not None
    step = max(1, int(chunk // max(1, N)))  # draws per block of the cluster stage
    block = max(1, int(chunk // max(1, S)))  # participants per block of the unit stage
    c_starts = list(range(0, S, step)) if clustered else []
    u_starts = list(range(0, N, block))
    bar = tqdm(
        total=len(c_starts) + len(u_starts),
        disable=not progress,
        desc="participant summaries",
        unit="block",
    )
    re: dict[str, np.ndarray] = {}
    c_units = None
    if clustered:
        c = np.empty((S, stats.n_clusters))

        def cluster_chunk(s0: int, gen: np.random.Generator) -> None:
            sub = {k: v[s0 : s0 + step] for k, v in params.items()}
            c[s0 : s0 + step] = draw_cluster_effects(stats, sub, gen)

        _run_blocks(cluster_chunk, c_starts, rng, threads, bar)
        re["c"] = c
        c_units = c
    names = ["b", "u", "participant_effect"] if slope else ["b", "participant_effect"]
    probs = np.asarray(SUMMARY_PROBS)
    mean = np.empty((len(names), N))
    sd = np.empty((len(names), N))
    pr = np.empty((len(names), N))
    qs = np.empty((N, len(probs)))  # of the participant effect only (its intervals)

    def unit_block(j0: int, gen: np.random.Generator) -> None:
        idx = np.arange(j0, min(N, j0 + block))
        cu = None if c_units is None else c_units[:, stats.cluster[idx]]
        out = draw_unit_effects(subset_stats(stats, idx), params, gen, c_units=cu)
        pe = beta @ fbar[idx].T
        if slope:
            pe += out["u"]
        values = {"b": out["b"], "u": out["u"], "participant_effect": pe}
        for k, name in enumerate(names):
            v = values[name]
            mean[k, idx] = v.mean(axis=0)
            sd[k, idx] = v.std(axis=0, ddof=1)
            pr[k, idx] = (v > 0).mean(axis=0)
        qs[idx] = np.quantile(pe, probs, axis=0).T

    _run_blocks(unit_block, u_starts, rng, threads, bar)
    bar.close()
    summary = xr.Dataset(
        {
            "mean": (("quantity", "participant"), mean),
            "sd": (("quantity", "participant"), sd),
            "pr_positive": (("quantity", "participant"), pr),
            "quantile": (("participant", "prob"), qs),
        },
        coords={"quantity": names, "prob": probs},
        attrs={"draws": int(S), "quantile_of": "participant_effect"},
    )
    return re, summary


def _expit(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def posterior_result(
    idata: xr.DataTree,
    built: Any,
    *,
    seed: int | None,
    sampler: str,
    target_accept: float | None = None,
) -> BayesResult:
    """Attach random effects, participant effects and standardized effects to the draws of a
    built model (``BayesMRT.build``) and wrap them in a :class:`BayesResult`."""
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
    p = len(design.f_names)
    fbar = getattr(design, "fbar", None)  # partitioned trials: reduced per participant
    if fbar is None:
        starts = np.r_[0, np.flatnonzero(np.diff(design.group)) + 1]
        counts = np.diff(np.r_[starts, len(design.group)])
        fbar = np.add.reduceat(design.F, starts, axis=0) / counts[:, None]
    keep = built.config.get("participant_draws")
    if keep is None:
        keep = S * design.n_groups <= PARTICIPANT_DRAWS_MAX
    summary = None
    if built.stats is not None:  # collapsed Gaussian model: draw b, u, c exactly
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
        rng = np.random.default_rng(seed)
        if keep:
            re = _draw_all(built.stats, params, rng, S)
        else:
            re, summary = _draw_summarized(
                built.stats,
                params,
                rng,
                S,
                flat["beta"][:, :p],
                fbar,
                "sd_u" in flat,
                progress=bool(built.config.get("progress")),
            )
        if "b" in re:
            post["b"] = (("chain", "draw", "participant"), re["b"].reshape(chains, draws, -1))
        if "u" in re and "sd_u" in flat:
            post["u"] = (("chain", "draw", "participant"), re["u"].reshape(chains, draws, -1))
        if "c" in re:
            post["c"] = (("chain", "draw", "cluster"), re["c"].reshape(chains, draws, -1))
        flat.update({k: post[k].values.reshape(S, -1) for k in ("b", "u", "c") if k in post})
    if summary is None:
        # participant average effect (first treated level)
        pe = flat["beta"][:, :p] @ fbar.T
        if "u" in flat:
            pe += flat["u"]  # in place: the same sums, one (draws x participants) array fewer
        post["participant_effect"] = (
            ("chain", "draw", "participant"),
            pe.reshape(chains, draws, -1),
        )
    if built.config["family"] == "bernoulli":
        lrr, rd = standardized_effects(flat, design, built.cluster_of)
        post["log_rr"] = (("chain", "draw"), lrr.reshape(chains, draws))
        post["risk_difference"] = (("chain", "draw"), rd.reshape(chains, draws))
    if "participant" in post.dims:
        post = post.assign_coords(participant=np.asarray(design.group_values))
    if "cluster" in post.dims and built.cluster_values is not None:
        post = post.assign_coords(cluster=[str(c) for c in built.cluster_values])
    idata["posterior"] = xr.DataTree(post)
    if summary is not None:
        summary = summary.assign_coords(participant=np.asarray(design.group_values))
        idata["participant_summary"] = xr.DataTree(summary)
    meta = {
        "seed": seed,
        "sampler": sampler,
        "target_accept": target_accept,
        "n_participants": int(design.n_groups),
        "n_rows": int(getattr(design, "n_rows", None) or len(design.y)),
        "effect_names": list(design.effect_names),
        "control_names": list(design.g_names),
        "f_names": list(design.f_names),
        "levels": list(design.levels),
    }
    return BayesResult(idata=idata, config=built.config, design=design, meta=meta)


def standardized_effects(
    flat: dict, design: Any, cluster_of: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Marginal log RR and risk difference over the available decision points, per draw."""
    theta = np.concatenate([flat["alpha"], flat["beta"]], axis=1)
    S = theta.shape[0]
    x1, x0 = design.x_for(1), design.x_for(0)
    at1 = 1.0 - design.num[:, 1]
    at0 = -design.num[:, 1]
    lrr, rd = np.empty(S), np.empty(S)
    step = max(1, int(_STD_CHUNK // max(1, len(design.y))))
    for s0 in range(0, S, step):
        sl = slice(s0, min(S, s0 + step))
        re = flat["b"][sl][:, design.group]
        if "c" in flat and cluster_of is not None:
            re = re + flat["c"][sl][:, cluster_of[design.group]]
        e1 = theta[sl] @ x1.T + re
        e0 = theta[sl] @ x0.T + re
        if "u" in flat:
            uu = flat["u"][sl][:, design.group]
            e1, e0 = e1 + uu * at1, e0 + uu * at0
        m1, m0 = _expit(e1).mean(axis=1), _expit(e0).mean(axis=1)
        lrr[sl], rd[sl] = np.log(m1) - np.log(m0), m1 - m0
    return lrr, rd
