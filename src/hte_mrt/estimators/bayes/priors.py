"""Priors as data: weakly informative defaults scaled to the outcome, overridable by a dict.

Gaussian outcome with spread s_y = sd(y) and mean m_y (available rows), each column x_j of the
control design g and f of the moderator design (scale s_j = sd of the column; 1 for constants):

    alpha_0 ~ N(m_y, (2.5 s_y)^2)          control intercept
    alpha_j ~ N(0, (2.5 s_y / s_j)^2)      control terms
    beta_j  ~ N(0, (s_y / s_j)^2)          excursion-effect terms (A~ has sd <= 0.5)
    spline block of beta (terms 'bs(...)'): second-order random walk with sd ``smooth_sd``
    sd_b, sd_c, sd_u ~ HalfNormal(s_y)     participant / cluster intercepts, effect slopes
    sigma ~ HalfNormal(s_y);  smooth_sd ~ HalfNormal(s_y);  corr(b, u) from LKJ(eta = 2)

Bernoulli outcome (logit scale): the same with s_y = 1 and m_y = logit(mean y).

Override any entry with ``{"beta": {"dist": "normal", "mu": 0, "sigma": 0.5}, ...}``; values are
absolute (not rescaled). Distributions: normal, student_t (nu, mu, sigma), halfnormal (sigma),
halfstudent_t (nu, sigma), exponential (lam), lkj (eta, for "corr"), and, for a standard
deviation only, fixed (value): a point mass that holds it at ``value`` (e.g. a known variance
in a sensitivity analysis or a conjugate reference check; reported with posterior sd 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from hte_mrt.errors import PriorError

PRIOR_KEYS = ("intercept", "alpha", "beta", "sd_b", "sd_c", "sd_u", "sigma", "smooth_sd", "corr")
DISTS: dict[str, tuple[str, ...]] = {
    "normal": ("mu", "sigma"),
    "student_t": ("nu", "mu", "sigma"),
    "halfnormal": ("sigma",),
    "halfstudent_t": ("nu", "sigma"),
    "exponential": ("lam",),
    "lkj": ("eta",),
    "fixed": ("value",),
}
POSITIVE = {"sigma", "nu", "lam", "eta", "value"}
SCALE_KEYS = {"sd_b", "sd_c", "sd_u", "sigma", "smooth_sd"}


def validate_priors(priors: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Check a user prior dict; raise :class:`PriorError` naming the offending key."""
    out: dict[str, dict[str, Any]] = {}
    for key, spec in (priors or {}).items():
        if key not in PRIOR_KEYS:
            raise PriorError(
                f"Unknown prior key {key!r}; use one of the known keys: {', '.join(PRIOR_KEYS)}.",
                key=key,
            )
        if not isinstance(spec, Mapping) or "dist" not in spec:
            raise PriorError(
                f"Prior {key!r} must be a mapping with a 'dist' entry, e.g. "
                "{'dist': 'normal', 'mu': 0, 'sigma': 1}.",
                key=key,
            )
        dist = spec["dist"]
        if dist not in DISTS:
            raise PriorError(
                f"Prior {key!r}: unknown distribution {dist!r}; use one of {', '.join(DISTS)}.",
                key=key,
            )
        if key in SCALE_KEYS and dist in ("normal", "student_t"):
            raise PriorError(
                f"Prior {key!r} is a standard deviation: use a positive distribution "
                "(halfnormal, halfstudent_t, exponential).",
                key=key,
            )
        if dist == "fixed" and key not in SCALE_KEYS:
            raise PriorError(
                f"Prior {key!r}: 'fixed' holds a standard deviation "
                f"({', '.join(sorted(SCALE_KEYS))}) at a value; give {key!r} a distribution "
                "such as 'normal' instead.",
                key=key,
            )
        if (key == "corr") != (dist == "lkj"):
            raise PriorError(f"Prior {key!r}: 'lkj' is the prior for 'corr' only.", key=key)
        params = {k: v for k, v in spec.items() if k != "dist"}
        extra = set(params) - set(DISTS[dist])
        lacking = set(DISTS[dist]) - set(params)
        if extra or lacking:
            raise PriorError(
                f"Prior {key!r} ({dist}) takes parameters {DISTS[dist]}; got {sorted(params)}.",
                key=key,
            )
        for name, value in params.items():
            flat = list(np.ravel(np.asarray(value, dtype=object)))
            if any(isinstance(x, str | bytes | bool | np.bool_) for x in flat):
                raise PriorError(
                    f"Prior {key!r}: parameter {name!r} must be a number (or a list of numbers), "
                    f"got {value!r}; write it without quotes.",
                    key=key,
                )
            try:
                v = np.asarray(value, dtype=float)
            except (TypeError, ValueError):
                raise PriorError(
                    f"Prior {key!r}: parameter {name!r} must be numeric, got {value!r}.", key=key
                ) from None
            if not np.all(np.isfinite(v)):
                raise PriorError(
                    f"Prior {key!r}: parameter {name!r} is not finite ({value!r}); give a finite "
                    "number.",
                    key=key,
                )
            if name in POSITIVE and np.any(v <= 0):
                raise PriorError(
                    f"Prior {key!r}: parameter {name!r} must be positive, got {value!r}.", key=key
                )
        out[key] = {"dist": dist, **params}
    return out


def default_priors(
    y: np.ndarray,
    G: np.ndarray,
    g_names: list[str],
    F: np.ndarray,
    family: str = "gaussian",
    *,
    moments: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Weakly informative defaults (module docstring), as plain data (JSON-serializable).

    ``moments``: the means and (population) standard deviations of y, G and F
    (``y_mean``, ``y_sd``, ``G_sd``, ``F_sd``) when the rows are not at hand (partitioned
    trials); ``y``, ``G`` and ``F`` are then ignored."""
    if moments is not None:
        y_mean, y_sd = float(moments["y_mean"]), float(moments["y_sd"])
        G_sd, F_sd = np.asarray(moments["G_sd"]), np.asarray(moments["F_sd"])
    else:
        y_mean, y_sd = float(np.mean(y)), float(np.std(y))
        G_sd, F_sd = G.std(axis=0), F.std(axis=0)
    if family == "bernoulli":
        m = float(np.clip(y_mean, 1e-3, 1 - 1e-3))
        sy, my = 1.0, math.log(m / (1 - m))
    else:
        sy, my = y_sd or 1.0, y_mean

    def col_sd(s: np.ndarray) -> list[float]:
        return [float(v) if v > 1e-12 else 1.0 for v in s]

    keep = [j for j, n in enumerate(g_names) if n != "Intercept"]
    g_sd = col_sd(G_sd[keep]) if keep else []
    f_sd = col_sd(F_sd)
    return {
        "intercept": {"dist": "normal", "mu": my, "sigma": 2.5 * sy},
        "alpha": {"dist": "normal", "mu": 0.0, "sigma": [2.5 * sy / s for s in g_sd]},
        "beta": {"dist": "normal", "mu": 0.0, "sigma": [sy / s for s in f_sd]},
        "sd_b": {"dist": "halfnormal", "sigma": sy},
        "sd_c": {"dist": "halfnormal", "sigma": sy},
        "sd_u": {"dist": "halfnormal", "sigma": sy},
        "sigma": {"dist": "halfnormal", "sigma": sy},
        "smooth_sd": {"dist": "halfnormal", "sigma": sy},
        "corr": {"dist": "lkj", "eta": 2.0},
    }


def resolve_priors(
    user: Mapping[str, Any] | None,
    y: np.ndarray,
    G: np.ndarray,
    g_names: list[str],
    F: np.ndarray,
    family: str,
    moments: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Defaults overridden by the (validated) user entries (``moments``: see
    :func:`default_priors`)."""
    pri = default_priors(y, G, g_names, F, family, moments=moments)
    users = validate_priors(user)
    n_terms = {
        "alpha": sum(n != "Intercept" for n in g_names),
        "beta": int(np.shape(F)[1]) if np.ndim(F) == 2 else 1,
    }
    for key, spec in users.items():
        for name, value in spec.items():
            size = np.size(value) if name != "dist" else 1
            want = n_terms.get(key, 1)
            if np.ndim(value) > 0 and size not in (1, want):
                what = {"alpha": "control", "beta": "effect"}.get(key)
                terms = f"{want} {what} term(s)" if what else "a single parameter"
                raise PriorError(
                    f"Prior {key!r}: parameter {name!r} has {size} values but the model has "
                    f"{terms}; give one number (shared by every term) or one value per term "
                    f"({want}).",
                    key=key,
                )
    pri.update(users)
    return pri


def make_rv(name: str, spec: Mapping[str, Any], shape: int | None = None, dims=None):
    """A PyMC random variable from a prior spec (call inside a model context)."""
    import pymc as pm

    kw = {k: (np.asarray(v) if isinstance(v, list) else v) for k, v in spec.items() if k != "dist"}
    extra: dict[str, Any] = {}
    if dims is not None:
        extra["dims"] = dims
    elif shape is not None:
        extra["shape"] = shape
    dist = spec["dist"]
    if dist == "normal":
        return pm.Normal(name, mu=kw["mu"], sigma=kw["sigma"], **extra)
    if dist == "student_t":
        return pm.StudentT(name, nu=kw["nu"], mu=kw["mu"], sigma=kw["sigma"], **extra)
    if dist == "halfnormal":
        return pm.HalfNormal(name, sigma=kw["sigma"], **extra)
    if dist == "halfstudent_t":
        return pm.HalfStudentT(name, nu=kw["nu"], sigma=kw["sigma"], **extra)
    if dist == "exponential":
        return pm.Exponential(name, lam=kw["lam"], **extra)
    if dist == "fixed":  # a point mass: a constant, recorded with the draws
        import pytensor.tensor as pt

        value = pt.as_tensor_variable(kw["value"])
        if shape is not None:
            value = pt.broadcast_to(value, (shape,))
        return pm.Deterministic(name, value, dims=dims)
    raise PriorError(f"Prior {name!r}: distribution {dist!r} cannot be used here.", key=name)
