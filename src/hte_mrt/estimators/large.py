"""WCLS, EMEE and the randomization test on partitioned trials (:class:`LargeMRTData`), as
map-reduce over partitions of whole participants.

Every statistic these estimators need is a sum of per-participant pieces:

* WCLS: B = sum_i X_i'W_i X_i and b = sum_i X_i'W_i y_i give theta = B^-1 b; the meat
  sum_i s_i s_i' (s_i = b_i - C_i theta) and the exact Mancl-DeRouen form
  sum_i u_i u_i', u_i = (B - C_i)^-1 s_i (:mod:`.sandwich`), are per-participant too once B and
  theta are known. One pass over the data builds C_i, b_i, kept on the workers; a second pass
  over those (not the data) sums the meat.
* EMEE: every damped Newton step is one map-reduce of the estimating function U and its
  Jacobian J (and one of U per step-halving) over the partitions' designs, built once and
  kept on the workers for the fit (about the size of the analysed columns); the sandwich as
  for WCLS.
* Randomization test: the redraws of every row come from the same random stream as in memory
  (PCG64 jumped ahead to the row's place), so the same seed gives the same numbers.

A first pass per lag (cached on the data) does the trial-wide checks the in-memory
:func:`~hte_mrt.estimands.excursion.build_design` does on the whole trial (analysed rows,
treatment levels seen, a constant probability for the default numerator), and fixes the
levels of text columns to those on the analysed rows; the rank checks run on the reduced
cross-products. Results are the in-memory result objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from hte_mrt.data.large import LargeMRTData, used_scan
from hte_mrt.data.schema import PROB_TOL, MRTData
from hte_mrt.errors import DesignError, EstimationError
from hte_mrt.estimands.excursion import (
    Design,
    ExcursionEffect,
    analysed_rows,
    build_design,
    check_rank_gram,
    degeneracy_message,
    lag_loses_all_error,
    lag_too_long_error,
    no_available_error,
    numerator_varies_error,
    too_few_participants_error,
    treatment_constant_error,
)
from hte_mrt.estimators.sandwich import group_crossprod, group_starts


@dataclass
class LargeDesign:
    """What a result keeps of the design of a partitioned fit: names, encodings, counts (the
    rows stay in the partitions). ``f_matrix`` and ``effect_names`` work as in :class:`Design`."""

    g_names: list[str]
    f_names: list[str]
    levels: list[str]
    f_spec: Any
    g_spec: Any
    n_groups: int
    n_rows: int
    n_participants_total: int
    n_partitions: int
    exclusions: pd.DataFrame = field(repr=False)
    participants_without_rows: list = field(default_factory=list, repr=False)
    #: Bayesian model only: participants (analysed, in id order), the mean f(S) of each, and
    #: the means / standard deviations of y, G, F (default priors, centring)
    group_values: pd.Index | None = field(default=None, repr=False)
    fbar: np.ndarray | None = field(default=None, repr=False)
    moments: dict | None = field(default=None, repr=False)

    f_matrix = Design.f_matrix
    effect_names = Design.effect_names

    @property
    def n_levels(self) -> int:
        return len(self.levels) + 1

    @property
    def dim(self) -> int:
        return len(self.g_names) + len(self.f_names) * len(self.levels)


# ---------------------------------------------------------------------------- first pass
def _lag_scan(part: MRTData, lag: int, cat_cols: list[str]) -> dict:
    used, _, lost = analysed_rows(part, lag, partial=True)
    return used_scan(part, used, lost, cat_cols)


@dataclass
class _LagInfo:
    n_groups: int
    n_rows: int
    categories: dict
    lost: pd.DataFrame | None
    without: list
    first_probs: np.ndarray


def lag_info(data: LargeMRTData, lag: int) -> _LagInfo:
    """Trial-wide facts of the analysed rows at this lag (cached on the data)."""
    if lag in data._scans:
        return data._scans[lag]
    scans = data._lag_scans.get(lag)
    if scans is None:
        scans = data.map(_lag_scan, lag, list(data.categories))
    r = data.roles
    if sum(s["n_avail"] for s in scans) == 0:
        raise no_available_error(r.availability)
    if lag:
        n_dec = 1 + max(s["max_decision"] for s in scans)
        if lag >= n_dec:
            raise lag_too_long_error(lag, n_dec)
        if sum(s["n_used"] for s in scans) == 0:
            raise lag_loses_all_error(lag)
    live = [s for s in scans if s["n_used"]]
    seen = np.unique(np.concatenate([s["seen"] for s in live]))
    K = len(data.level_values)
    if len(seen) < K:
        absent = [data.treatment_labels[k] for k in range(K) if k not in seen]
        raise treatment_constant_error(r.treatment, absent)
    p_min = np.min([s["p_min"] for s in live], axis=0)
    p_max = np.max([s["p_max"] for s in live], axis=0)
    cats = {}
    for col, levels in data.categories.items():
        present = set().union(*(s["cats"].get(col, set()) for s in live))
        cats[col] = [v for v in levels if v in present]
    lost = [s["lost"] for s in scans if s["lost"] is not None and len(s["lost"])]
    first = min((s["first"] for s in live), key=lambda f: _sort_key(f[0]))
    info = _LagInfo(
        n_groups=int(sum(s["n_groups"] for s in live)),
        n_rows=int(sum(s["n_used"] for s in live)),
        categories=cats,
        lost=pd.concat(lost, ignore_index=True) if lost else None,
        without=sorted((i for s in scans for i in s["without"]), key=_sort_key),
        first_probs=first[1] if np.all(p_max - p_min <= PROB_TOL) else None,
    )
    data._scans[lag] = info
    return info


def _sort_key(v: Any) -> Any:
    return (0, v) if isinstance(v, int | float | np.number) else (1, str(v))


def resolve_numerator(data: LargeMRTData, est: ExcursionEffect, info: _LagInfo):
    """The estimand with ``numerator=None`` replaced by the (constant) stated probabilities,
    as :func:`~hte_mrt.estimands.excursion._resolve_numerator` takes them on the whole trial."""
    if est.numerator is not None:
        return est
    if info.first_probs is None:
        raise numerator_varies_error()
    p = info.first_probs
    if data.is_binary:
        return replace(est, numerator=float(p[1]))
    return replace(est, numerator={lab: float(p[k]) for k, lab in enumerate(data.treatment_labels)})


def _names_meta(design: Design) -> dict:
    return {
        "g_names": design.g_names,
        "f_names": design.f_names,
        "levels": design.levels,
        "stateful": bool(
            getattr(design.g_spec, "transform_state", None)
            or getattr(design.f_spec, "transform_state", None)
        ),
    }


def _check_names(metas: list[dict], data: LargeMRTData) -> dict:
    """Every partition encodes the formulas alike; no transform fitted per partition."""
    live = [m for m in metas if m is not None]
    m0 = live[0]
    if any(m["stateful"] for m in live):
        raise DesignError(
            "A moderator or control formula uses a transformation fitted on the data (center(), "
            "scale(), bs(), ...): on partitioned data each partition would fit its own. Compute "
            "the transformed column beforehand (e.g. x - mean(x) with the trial's mean) and use "
            "it in the formula."
        )
    for m in live[1:]:
        for key in ("g_names", "f_names"):
            if m[key] != m0[key]:
                diff = sorted(set(m[key]) ^ set(m0[key]))
                raise DesignError(
                    f"The partitions encode the formulas differently: terms {diff} appear in "
                    "some partitions only. A number column used as a category (C(x)) takes "
                    "its levels from each partition: store it as text (categorical levels are "
                    "fixed over the whole trial in a first pass)."
                )
    return m0


def _design_of(part: MRTData, est: ExcursionEffect, add_main: bool) -> Design | None:
    return build_design(part, est, add_moderator_main_effects=add_main, partial=True)


def _global_checks(s: dict, info: _LagInfo, meta: dict) -> None:
    n = info.n_rows
    check_rank_gram(s["GG"], n, meta["g_names"], "control (controls + moderator main effects)")
    check_rank_gram(s["FF"], n, meta["f_names"], "moderator")
    dim = len(meta["g_names"]) + len(meta["f_names"]) * len(meta["levels"])
    if info.n_groups <= dim:
        raise too_few_participants_error(info.n_groups, dim, len(meta["g_names"]))


def _large_design(data: LargeMRTData, info: _LagInfo, meta: dict, spec_part: dict) -> LargeDesign:
    excl = [data.exclusions]
    if info.lost is not None:
        excl.append(info.lost)
    return LargeDesign(
        g_names=meta["g_names"],
        f_names=meta["f_names"],
        levels=meta["levels"],
        f_spec=spec_part["f_spec"],
        g_spec=spec_part["g_spec"],
        n_groups=info.n_groups,
        n_rows=info.n_rows,
        n_participants_total=data.n_participants,
        n_partitions=data.n_partitions,
        exclusions=pd.concat([e for e in excl if len(e)], ignore_index=True)
        if any(len(e) for e in excl)
        else data.exclusions,
        participants_without_rows=info.without,
    )


def _sum(parts: list[dict], key: str) -> Any:
    vals = [p[key] for p in parts if p is not None]
    out = vals[0].copy() if isinstance(vals[0], np.ndarray) else vals[0]
    for v in vals[1:]:
        out = out + v
    return out


def _sandwich(meats: list, bread: np.ndarray, small: bool, failed: str) -> np.ndarray:
    """The sandwich covariance from the partitions' ``meats`` and the summed ``bread`` (stacked
    over leading axes allowed); with ``small`` the meats are already Mancl-DeRouen corrected
    covariances. A partition whose correction failed (``meat`` None) raises ``failed``."""
    if any(m is not None and m["meat"] is None for m in meats):
        raise EstimationError(failed)
    meat = _sum(meats, "meat")
    if small:
        return meat
    inv = np.linalg.inv(bread)
    return inv @ meat @ np.swapaxes(inv, -1, -2)


# ---------------------------------------------------------------------------- WCLS
def _wcls_part(part: MRTData, est: ExcursionEffect) -> dict | None:
    design = _design_of(part, est, True)
    if design is None:
        return None
    X, W, y = design.X, design.W, design.y
    C, b = group_crossprod(X, W, y, group_starts(design.group))
    return {
        "C": C,
        "b": b,
        **_part_summary(design),
        "y_abs": float(np.abs(y).max()),
        "x_abs": float(np.abs(X).max()),
    }


def _part_summary(design: Design) -> dict:
    """What every estimator's first pass takes from a partition's design: the names, the
    formula specs, G'G and F'F (for the trial-wide rank checks) and the outcome's range."""
    return {
        "meta": _names_meta(design),
        "specs": {"f_spec": design.f_spec, "g_spec": design.g_spec},
        "GG": design.G.T @ design.G,
        "FF": design.F.T @ design.F,
        "y_min": float(design.y.min()),
        "y_max": float(design.y.max()),
    }


def _wcls_summary(res: dict | None) -> dict | None:
    if res is None:
        return None
    return {k: v for k, v in res.items() if k not in ("C", "b")} | {
        "B": res["C"].sum(axis=0),
        "bsum": res["b"].sum(axis=0),
    }


def _meat(s: np.ndarray, bread: np.ndarray, pieces: np.ndarray, small: bool) -> dict:
    """A partition's meat from its participants' scores ``s`` (n x d): sum s_i s_i', or with
    ``small`` the Mancl-DeRouen sum u_i u_i' with u_i = (bread - pieces_i)^-1 s_i (``meat``
    None when a participant's bread is singular)."""
    if small:
        try:
            u = np.linalg.solve(bread[None] - pieces, s[..., None])[..., 0]
        except np.linalg.LinAlgError:
            return {"meat": None}
        return {"meat": u.T @ u}
    return {"meat": s.T @ s}


def _wcls_meat(res: dict | None, theta: np.ndarray, B: np.ndarray, small: bool):
    if res is None:
        return None
    C, b = res["C"], res["b"]
    return _meat(b - np.einsum("nij,j->ni", C, theta), B, C, small)


def wcls_large(data: LargeMRTData, est: ExcursionEffect, small_sample: Any, conf_level: float):
    """:func:`hm.wcls <hte_mrt.wcls>` on a :class:`LargeMRTData` (see the module doc)."""
    import warnings

    from hte_mrt.errors import DegenerateDataWarning
    from hte_mrt.estimators.wcls import _check_finite_fit, excursion_result, resolve_small_sample

    info = lag_info(data, est.lag)
    est_p = resolve_numerator(data, est, info)
    handles = data.map(_wcls_part, est_p, categories=info.categories, keep=True)
    try:
        parts = data.map_handles(_wcls_summary, handles)
        meta = _check_names([p and p["meta"] for p in parts], data)
        sums = {k: _sum(parts, k) for k in ("GG", "FF", "B", "bsum")}
        _global_checks(sums, info, meta)
        y_min = min(p["y_min"] for p in parts if p)
        y_max = max(p["y_max"] for p in parts if p)
        note = None
        if y_min == y_max:
            note = degeneracy_message(y_min, info.n_rows, data.roles.outcome)
            warnings.warn(note, DegenerateDataWarning, stacklevel=3)
        n = info.n_groups
        small = resolve_small_sample(small_sample, n)
        B = sums["B"]
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                theta = np.linalg.solve(B, sums["bsum"])
            except np.linalg.LinAlgError:
                raise EstimationError(
                    "The weighted design is singular (collinear control/moderator terms, or a "
                    "term constant on the analysed rows): drop or recode the offending term."
                ) from None
            meats = data.map_handles(_wcls_meat, handles, theta, B, small)
            cov = _sandwich(
                meats, B, small,
                "The Mancl-DeRouen correction needs the model to be identified without any "
                "single participant (B - C_i invertible); a term is driven by one "
                "participant. Use small_sample=False or drop that term.",
            )  # fmt: skip
    finally:
        data.release(handles)
    spec0 = next(p["specs"] for p in parts if p)
    design = _large_design(data, info, meta, spec0)
    _check_finite_fit(
        design,
        theta,
        cov,
        y_max=max(p["y_abs"] for p in parts if p),
        x_max=max(p["x_abs"] for p in parts if p),
    )
    res = excursion_result(
        "WCLS", "difference", design, n, conf_level, small, est, theta, cov,
        {"lag": est.lag, "partitions": data.n_partitions},
    )  # fmt: skip
    if note:
        from hte_mrt.estimators.wcls import exact_constant_fit

        exact_constant_fit(res)
        res.info["degenerate"] = note
    return res


# ---------------------------------------------------------------------------- EMEE
def _emee_check(part: MRTData, est: ExcursionEffect) -> dict | None:
    design = _design_of(part, est, False)
    if design is None:
        return None
    from hte_mrt.estimators.emee import check_binary_outcome

    check_binary_outcome(design.y, part.roles.outcome)
    return _part_summary(design)


def _emee_design(part: MRTData, est: ExcursionEffect) -> Design | None:
    return _design_of(part, est, False)


def _emee_UJ(design: Design | None, variant: str, theta: np.ndarray, jac: bool):
    from hte_mrt.estimators.emee import _pieces

    if design is None:
        return None
    D, r, dr, dD_r = _pieces(design, theta, variant)
    out = {"U": D.T @ r, "finite": bool(np.all(np.isfinite(r)))}
    if jac:
        out["J"] = dD_r + D.T @ dr
    return out


def _emee_sK(design: Design | None, variant: str, theta: np.ndarray) -> Any:
    from hte_mrt.estimators.emee import _pieces

    if design is None:
        return None
    D, r, dr, _ = _pieces(design, theta, variant)
    starts = group_starts(design.group)
    s = np.add.reduceat(D * r[:, None], starts, axis=0)
    K = np.add.reduceat(D[:, :, None] * dr[:, None, :], starts, axis=0)
    return {"s": s, "K": K}


def _emee_meat(res: Any, J: np.ndarray, small: bool) -> Any:
    if res is None:
        return None
    return _meat(res["s"], J, res["K"], small)


def emee_large(
    data: LargeMRTData,
    est: ExcursionEffect,
    design_est: ExcursionEffect,
    variant: str,
    small_sample: bool,
    conf_level: float,
    start: Any,
    tol: float,
    maxiter: int,
):
    """:func:`hm.emee <hte_mrt.emee>` on a :class:`LargeMRTData`: Newton steps as map-reduce."""
    import warnings

    from hte_mrt.errors import DegenerateDataWarning
    from hte_mrt.estimators.emee import newton
    from hte_mrt.estimators.wcls import excursion_result

    info = lag_info(data, est.lag)
    est_p = resolve_numerator(data, design_est, info)
    cats = info.categories
    parts = data.map(_emee_check, est_p, categories=cats)
    meta = _check_names([p and p["meta"] for p in parts], data)
    sums = {k: _sum(parts, k) for k in ("GG", "FF")}
    _global_checks(sums, info, meta)
    spec0 = next(p["specs"] for p in parts if p)
    design = _large_design(data, info, meta, spec0)
    y_min = min(p["y_min"] for p in parts if p)
    y_max = max(p["y_max"] for p in parts if p)
    note = None
    if y_min == y_max:
        note = degeneracy_message(y_min, info.n_rows, data.roles.outcome, binary=True)
        warnings.warn(note, DegenerateDataWarning, stacklevel=3)
    n = data.n_participants
    d = design.dim
    result = partial(
        excursion_result, variant.upper(), "log_rr", design, n, conf_level, small_sample, est
    )
    if note is not None and y_min == 0.0:
        return result(
            np.full(d, np.nan),
            np.full((d, d), np.nan),
            {"lag": est.lag, "newton_steps": 0, "degenerate": note},
        )

    # the partitions' designs stay on the workers for the Newton steps (each step is then a
    # map-reduce over them, not over the files)
    designs = data.map(_emee_design, est_p, categories=cats, keep=True)

    def eval_UJ(theta):
        res = data.map_handles(_emee_UJ, designs, variant, theta, True)
        return _sum(res, "U"), _sum(res, "J")

    def eval_U(theta):
        res = data.map_handles(_emee_UJ, designs, variant, theta, False)
        return _sum(res, "U"), all(p["finite"] for p in res if p)

    try:
        names = [*design.g_names, *design.effect_names]
        theta, n_iter = newton(eval_UJ, eval_U, d, names, n, start, tol, maxiter)
        _, J = eval_UJ(theta)
        handles = data.map_handles(_emee_sK, designs, variant, theta, keep=True)
        try:
            meats = data.map_handles(_emee_meat, handles, J, small_sample)
        finally:
            data.release(handles)
    finally:
        data.release(designs)
    cov = _sandwich(
        meats, J, small_sample,
        "Small-sample correction failed: J - K_i is singular for some participant.",
    )  # fmt: skip
    info_d = {"lag": est.lag, "newton_steps": n_iter, "partitions": data.n_partitions}
    if note is not None:
        info_d["degenerate"] = note
    return result(theta, cov, info_d)


# ---------------------------------------------------------------------------- randomization
def _rt_state(part: MRTData, est: ExcursionEffect, scheme: str) -> dict | None:
    """Per-partition statistics of the re-randomization test, built once: the rows' WCLS
    pieces at the reference level (summed per participant) and their changes per level."""
    from hte_mrt.estimators.randomization import _check_permutable, _row_stats

    design = _design_of(part, est, True)
    if design is None:
        return None
    starts = group_starts(design.group)
    ends = np.r_[starts[1:], len(design.y)]
    if scheme == "permute":
        _check_permutable(design, starts)
    phi = _row_stats(design)
    return {
        "base": np.add.reduceat(phi[0], starts, axis=0),
        "delta": phi[1:] - phi[:1],
        "starts": starts,
        "ends": ends,
        "cum": np.cumsum(design.prob, axis=1),
        "a_index": design.a_index,
        "ids": design.group_values.to_numpy(),
        "T": ends - starts,
        "n_levels": design.n_levels,
        "d": design.dim,
    }


def _rt_ids(state: dict | None) -> Any:
    return None if state is None else (state["ids"], state["T"])


def _rt_levels(state: dict, plan: dict, r0: int, nb: int) -> np.ndarray:
    """The redrawn levels of the partition's rows for resamples r0 .. r0 + nb - 1.

    ``redraw``: the uniforms of the in-memory stream (``default_rng(seed).random((R, rows))``,
    row-major, one 64-bit output per double), PCG64 jumped to each run of rows. ``permute``:
    a stream per participant and batch (SeedSequence(seed, spawn_key=(participant, batch)))."""
    rows = len(state["a_index"])
    if plan["scheme"] == "redraw":
        bg = np.random.PCG64(np.random.SeedSequence(plan["entropy"]))
        state0 = bg.state
        gen = np.random.Generator(bg)
        u = np.empty((nb, rows))
        total = plan["total"]
        for r in range(nb):
            for g0, l0, length in plan["runs"]:
                bg.state = state0
                bg.advance((r0 + r) * total + g0)
                u[r, l0 : l0 + length] = gen.random(length)
        out = np.zeros((nb, rows), dtype=np.int8)
        cum = state["cum"]
        for k in range(state["n_levels"] - 1):
            out += u >= cum[None, :, k]
        return out
    out = np.empty((nb, rows), dtype=np.int64)
    a = state["a_index"]
    for gidx, lo, hi in zip(plan["gidx"], state["starts"], state["ends"], strict=True):
        ss = np.random.SeedSequence(plan["entropy"], spawn_key=(int(gidx), int(plan["batch"])))
        rng = np.random.default_rng(ss)
        out[:, lo:hi] = rng.permuted(np.broadcast_to(a[lo:hi], (nb, hi - lo)), axis=1)
    return out


def _rt_batch(item: Any, r0: int, nb: int, batch: int) -> Any:
    state, plan = item
    if state is None:
        return None
    plan = plan | {"batch": batch}
    levels = _rt_levels(state, plan, r0, nb)
    base, delta = state["base"], state["delta"]
    S = np.broadcast_to(base, (nb, *base.shape)).copy()
    for k in range(1, state["n_levels"]):
        ind = (levels == k).astype(float)
        for i, (lo, hi) in enumerate(zip(state["starts"], state["ends"], strict=True)):
            S[:, i, :] += ind[:, lo:hi] @ delta[k - 1, lo:hi]
    return S


def _rt_sums(S: Any, d: int) -> Any:
    if S is None:
        return None
    return {"B": S[..., : d * d].sum(axis=1).reshape(-1, d, d), "b": S[..., d * d :].sum(axis=1)}


def _rt_meat(S: Any, d: int, theta: np.ndarray, B: np.ndarray, small: bool) -> Any:
    if S is None:
        return None
    nb, N = S.shape[:2]
    C = S[..., : d * d].reshape(nb, N, d, d)
    s = S[..., d * d :] - np.einsum("rnij,rj->rni", C, theta)
    if small:
        try:
            u = np.linalg.solve(B[:, None] - C, s[..., None])[..., 0]
        except np.linalg.LinAlgError:
            return {"meat": None}
        return {"meat": np.einsum("rni,rnj->rij", u, u)}
    return {"meat": np.einsum("rni,rnj->rij", s, s)}


def randomization_large(
    data: LargeMRTData,
    est: ExcursionEffect,
    *,
    n_resamples: int,
    scheme: str,
    alpha: float,
    small_sample: Any,
    conf_level: float,
    seed: int | None,
    progress: bool,
):
    """:func:`hm.randomization_test <hte_mrt.randomization_test>` on a :class:`LargeMRTData`.

    ``scheme="redraw"`` gives the in-memory numbers for the same seed (the same uniforms reach
    the same rows, whatever the partitioning); ``scheme="permute"`` draws one stream per
    participant (reproducible and independent of the partitioning, but not the in-memory
    stream)."""
    from hte_mrt._util import tqdm
    from hte_mrt.estimators.wcls import resolve_small_sample
    from hte_mrt.results.randomization import RandomizationResult

    observed = wcls_large(data, est, small_sample, conf_level)
    note = observed.info.get("degenerate")
    info = lag_info(data, est.lag)
    est_p = resolve_numerator(data, est, info)
    design = observed.design
    d, q, N = design.dim, len(design.g_names), design.n_groups
    small = resolve_small_sample(small_sample, N)
    entropy = seed if seed is not None else np.random.SeedSequence().entropy
    states = data.map(_rt_state, est_p, scheme, categories=info.categories, keep=True)
    t_all = np.empty((n_resamples, d - q))
    est_all = np.empty((n_resamples, d - q))
    try:
        id_T = data.map_handles(_rt_ids, states)
        # every participant's first analysed row in the in-memory (id-sorted) order
        all_ids = np.concatenate([x[0] for x in id_T if x is not None])
        all_T = np.concatenate([x[1] for x in id_T if x is not None])
        order = sorted(range(len(all_ids)), key=lambda i: _sort_key(all_ids[i]))
        offset = np.empty(len(all_ids), dtype=np.int64)
        offset[order] = np.r_[0, np.cumsum(all_T[order])[:-1]]
        rank = np.empty(len(all_ids), dtype=np.int64)
        rank[order] = np.arange(len(all_ids))
        plans, k0 = [], 0
        for x in id_T:
            if x is None:
                plans.append(None)
                continue
            n_p = len(x[0])
            go, T = offset[k0 : k0 + n_p], x[1]
            lo = np.r_[0, np.cumsum(T)[:-1]]
            runs: list[list[int]] = []
            for g0, l0, t in zip(go, lo, T, strict=True):
                if runs and runs[-1][0] + runs[-1][2] == g0 and runs[-1][1] + runs[-1][2] == l0:
                    runs[-1][2] += int(t)
                else:
                    runs.append([int(g0), int(l0), int(t)])
            plans.append(
                {
                    "scheme": scheme,
                    "entropy": entropy,
                    "total": info.n_rows,
                    "runs": runs,
                    "gidx": rank[k0 : k0 + n_p],
                }
            )
            k0 += n_p
        n_max = max(len(x[0]) for x in id_T if x is not None)
        r_max = max(int(x[1].sum()) for x in id_T if x is not None)
        per_draw = 8 * (n_max * (d * d + d) * 3 + r_max * (design.n_levels + 2))
        batch = int(max(1, min(n_resamples, 150e6 // per_draw)))
        items = list(zip(states, plans, strict=True))
        bar = tqdm(total=n_resamples, disable=not progress, desc="Re-randomizing", unit="fit")
        for j, r0 in enumerate(range(0, n_resamples, batch)):
            nb = min(batch, n_resamples - r0)
            S = data.map_handles(_rt_batch, items, r0, nb, j, keep=True)
            try:
                sums = data.map_handles(_rt_sums, S, d)
                B = _sum(sums, "B")
                with np.errstate(over="ignore", invalid="ignore"):
                    try:
                        theta = np.linalg.solve(B, _sum(sums, "b")[..., None])[..., 0]
                    except np.linalg.LinAlgError:
                        raise EstimationError(
                            "The weighted design is singular in a re-randomized trial "
                            "(a term constant on the analysed rows): drop or recode it."
                        ) from None
                    meats = data.map_handles(_rt_meat, S, d, theta, B, small)
                    cov = _sandwich(
                        meats, B, small,
                        "The Mancl-DeRouen correction needs the model to be identified "
                        "without any single participant (B - C_i invertible); use "
                        "small_sample=False or drop that term.",
                    )  # fmt: skip
                    se = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
                    est_all[r0 : r0 + nb] = theta[:, q:]
                    with np.errstate(divide="ignore", invalid="ignore"):
                        t_all[r0 : r0 + nb] = theta[:, q:] / se[:, q:]
            finally:
                data.release(S)
            bar.update(nb)
        bar.close()
    finally:
        data.release(states)
    if note:
        est_all[:] = 0.0
        t_all[:] = np.nan
    return RandomizationResult(observed, t_all, est_all, alpha=alpha, scheme=scheme, seed=seed)


# ---------------------------------------------------------------------------- BayesMRT
def _moments(M: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(n, column means, column sums of squared deviations) for Chan's parallel combination."""
    m = M.mean(axis=0)
    return len(M), m, ((M - m) ** 2).sum(axis=0)


def _combine(a: tuple, b: tuple) -> tuple:
    na, ma, Ma = a
    nb, mb, Mb = b
    n = na + nb
    delta = mb - ma
    return n, ma + delta * (nb / n), Ma + Mb + delta**2 * (na * nb / n)


def _bayes_part(part: MRTData, est: ExcursionEffect, slope: bool, use_cluster: bool) -> Any:
    """A partition's per-participant sufficient statistics of the collapsed Gaussian model
    (:func:`~hte_mrt.estimators.bayes.collapsed.collapsed_stats`), the mean f(S) of each
    participant, and the moments of y, G, F."""
    from hte_mrt.estimators.bayes.collapsed import collapsed_stats

    design = _design_of(part, est, True)
    if design is None:
        return None
    X, y = design.X, design.y
    at = (design.a_index == 1).astype(float) - design.num[:, 1] if slope else np.zeros(len(y))
    st = collapsed_stats(X, at, y, design.group)
    starts = group_starts(design.group)
    counts = np.diff(np.r_[starts, len(y)])
    cl = None
    if use_cluster:
        cl = part.frame[part.roles.cluster].to_numpy()[design.rows][starts]
    return {
        "ids": design.group_values.to_numpy(),
        "cluster": cl,
        "stats": {k: getattr(st, k) for k in ("T", "ZZ", "XZ", "Zy", "XX", "Xy", "yy")},
        "fbar": np.add.reduceat(design.F, starts, axis=0) / counts[:, None],
        "y": _moments(y[:, None]),
        "G": _moments(design.G),
        "F": _moments(design.F),
        "xx": (X * X).sum(axis=0),
        "meta": _names_meta(design),
        "specs": {"f_spec": design.f_spec, "g_spec": design.g_spec},
        "GG": design.G.T @ design.G,
        "FF": design.F.T @ design.F,
    }


def bayes_inputs(data: LargeMRTData, est: ExcursionEffect, slope: bool, use_cluster: bool):
    """What :class:`hm.BayesMRT <hte_mrt.BayesMRT>` needs of a partitioned trial: a
    :class:`LargeDesign` (names, moments, participants, mean f(S)), the collapsed model's
    sufficient statistics over all participants (in the in-memory order: ids ascending), the
    cluster labels and each participant's cluster code. The sampler never sees a row."""
    from hte_mrt.estimators.bayes.collapsed import CollapsedStats

    info = lag_info(data, est.lag)
    est_p = resolve_numerator(data, est, info)
    parts = [p for p in data.map(_bayes_part, est_p, slope, use_cluster,
                                 categories=info.categories) if p is not None]  # fmt: skip
    meta = _check_names([p["meta"] for p in parts], data)
    _global_checks({k: _sum(parts, k) for k in ("GG", "FF")}, info, meta)
    ids = np.concatenate([p["ids"] for p in parts])
    order = np.array(sorted(range(len(ids)), key=lambda i: _sort_key(ids[i])), dtype=np.int64)
    cat = {
        k: np.concatenate([p["stats"][k] for p in parts])[order]
        for k in ("T", "ZZ", "XZ", "Zy", "XX", "Xy", "yy")
    }
    mom = {}
    for key in ("y", "G", "F"):
        acc = parts[0][key]
        for p in parts[1:]:
            acc = _combine(acc, p[key])
        mom[key] = (acc[1], np.sqrt(acc[2] / acc[0]))
    n_obs = int(cat["T"].sum())
    cluster_values = cluster_of = None
    if use_cluster:
        cl = np.concatenate([p["cluster"] for p in parts])[order]
        cluster_values, cluster_of = np.unique(cl, return_inverse=True)
        cluster_values = list(cluster_values)
    g_names, f_names, levels = meta["g_names"], meta["f_names"], meta["levels"]
    effect_names = (
        list(f_names)
        if len(levels) == 1 and levels[0] == "1"
        else [f"{lev}:{f}" for lev in levels for f in f_names]
    )
    y_sd = float(mom["y"][1][0])
    stats = CollapsedStats(
        n_obs=n_obs,
        groups=np.arange(len(ids)),
        cluster=None if cluster_of is None else cluster_of.astype(np.int64),
        cluster_labels=None if cluster_of is None else np.arange(len(cluster_values)),
        coef_names=tuple([f"control:{n}" for n in g_names] + effect_names),
        y_mean=float(mom["y"][0][0]),
        y_sd=y_sd if n_obs > 1 and y_sd > 0 else 1.0,
        x_rms=np.sqrt(_sum(parts, "xx") / n_obs),
        **cat,
    )
    design = _large_design(data, info, meta, parts[0]["specs"])
    design.group_values = pd.Index(ids[order], name=data.roles.id)
    design.fbar = np.concatenate([p["fbar"] for p in parts])[order]
    design.moments = {
        "y_mean": float(mom["y"][0][0]),
        "y_sd": float(mom["y"][1][0]),
        "G_mean": mom["G"][0],
        "G_sd": mom["G"][1],
        "F_mean": mom["F"][0],
        "F_sd": mom["F"][1],
    }
    return design, stats, cluster_values, cluster_of
