"""Nuisance learners of the distal and mediated excursion-effect estimators (as MRTAnalysis).

A learner is given as

* ``"lm"``: ordinary least squares (R ``lm``), whatever the target;
* ``"glm"``: least squares for a continuous target, logistic regression for a binary one where R
  uses ``glm(family = binomial)`` (fitted by R's own IRLS iteration, so the numbers agree with R);
* ``"gam"``: penalized regression splines (cubic B-splines with a second-difference penalty,
  the smoothing parameter chosen by generalized cross-validation) for the ``s(x)`` terms of the
  formula, the other terms linear (so ``"gam"`` without ``s()`` terms is ``"lm"``/``"glm"``, as
  in mgcv); logistic (penalized IRLS) for a binary target;
* ``"rf"``: scikit-learn random forest (regression: 200 trees, leaves of at least 5 rows, a third
  of the features per split, as R's randomForest; a classifier for a binary target);
* ``"gb"``: scikit-learn gradient boosting (100 depth-2 trees, learning rate 0.1, leaves of at
  least 10 rows);
* any scikit-learn style estimator (an object with ``fit`` and ``predict``; ``predict_proba``
  is used for a binary target where it exists), cloned before each fit.

Probabilities from a classifier's ``predict_proba`` are clipped to [0.01, 0.99] (a tree's pure
leaf would otherwise give 0 or 1, and the mediation estimator divides by them); ``"glm"`` and
``"gam"`` probabilities are not clipped.

Formulas are read by formulaic; ``s(x)`` marks a smooth term for ``"gam"`` only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hte_mrt.errors import DesignError, EstimationError, FormulaError

LEARNER_NAMES = ("lm", "glm", "gam", "rf", "gb")
#: probabilities from classifiers (trees: leaves can be pure) are kept inside [c, 1 - c]
PROB_CLIP = 0.01
_SMOOTH = re.compile(r"\bs\(\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(?:,[^()]*)?\)")


@dataclass
class Learner:
    """A resolved learner: its name (for summaries) and how to fit it."""

    name: str
    estimator: Any = None  # a scikit-learn style object (custom learners)
    params: dict = field(default_factory=dict)


def resolve_learner(spec: Any, where: str = "learner") -> Learner:
    """A :class:`Learner` from a name or an estimator object, else :class:`DesignError`."""
    if isinstance(spec, str):
        if spec not in LEARNER_NAMES:
            raise DesignError(
                f"{where} must be one of {', '.join(map(repr, LEARNER_NAMES))} or a "
                f"scikit-learn style estimator (with fit and predict), got {spec!r}."
            )
        return Learner(spec)
    if isinstance(spec, type):
        raise DesignError(
            f"{where} is the class {spec.__name__}, not an estimator: pass an instance, e.g. "
            f"{spec.__name__}()."
        )
    if callable(getattr(spec, "fit", None)) and callable(getattr(spec, "predict", None)):
        return Learner(type(spec).__name__, estimator=spec)
    raise DesignError(
        f"{where} must be one of {', '.join(map(repr, LEARNER_NAMES))} or an estimator with "
        f"fit(X, y) and predict(X) methods; got a {type(spec).__name__} without them."
    )


def split_smooth(rhs: str, learner_names: list[str], where: str) -> tuple[str, set[str]]:
    """``'s(x) + z'`` -> (``'x + z'``, ``{'x'}``); ``s()`` terms only for ``"gam"``."""
    smooth = set(_SMOOTH.findall(rhs))
    if smooth and any(n != "gam" for n in learner_names):
        raise FormulaError(
            f"The {where} formula '~ {rhs}' has s() smooth terms, which only learner='gam' "
            f"fits (learner here: {', '.join(sorted(set(learner_names)))}); write the "
            "variables plainly, or use learner='gam'."
        )
    return _SMOOTH.sub(lambda m: m.group(1), rhs), smooth


def is_binary(y: np.ndarray) -> bool:
    """True if every value is 0 or 1 (and both occur or not: a 0/1 target)."""
    return bool(y.size) and bool(np.all((y == 0) | (y == 1)))


# ----------------------------------------------------------------------------- linear models
def ols(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares coefficients (minimum norm where X is rank deficient)."""
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    return coef


def logistic_irls(X: np.ndarray, y: np.ndarray, maxit: int = 25, eps: float = 1e-8) -> np.ndarray:
    """Logistic regression by R's ``glm.fit`` iteration (same start, same stopping rule).

    Start: mu = (y + 0.5) / 2; iterate weighted least squares on the working response until
    |dev - dev_old| / (|dev| + 0.1) < eps (R's ``glm.control(epsilon = 1e-8, maxit = 25)``).
    """
    mu = (y + 0.5) / 2.0
    eta = np.log(mu / (1 - mu))
    dev_old = _binom_dev(y, mu)
    coef = np.zeros(X.shape[1])
    for _ in range(maxit):
        w2 = mu * (1 - mu)
        z = eta + (y - mu) / w2
        w = np.sqrt(w2)
        coef, *_ = np.linalg.lstsq(X * w[:, None], z * w, rcond=None)
        eta = X @ coef
        mu = _expit(eta)
        dev = _binom_dev(y, mu)
        if abs(dev - dev_old) / (abs(dev) + 0.1) < eps:
            break
        dev_old = dev
    return coef


def _expit(eta: np.ndarray) -> np.ndarray:
    # R's plogis with its thresholds (mu kept inside (eps, 1 - eps))
    e = np.finfo(float).eps
    eta = np.clip(eta, -30.0, 30.0)
    mu = 1.0 / (1.0 + np.exp(-eta))
    return np.clip(mu, e, 1 - e)


def _binom_dev(y: np.ndarray, mu: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(y > 0, y * np.log(y / mu), 0.0)
        b = np.where(y < 1, (1 - y) * np.log((1 - y) / (1 - mu)), 0.0)
    return float(2 * np.sum(a + b))


# ----------------------------------------------------------------------------- penalized splines
class _SplineBasis:
    """Cubic B-spline basis of one variable (8 interior knots at quantiles; linear extrapolation),
    one column dropped so that it is identifiable beside an intercept; second-difference
    penalty."""

    def __init__(self, x: np.ndarray, n_knots: int = 10) -> None:
        from sklearn.preprocessing import SplineTransformer

        n_knots = int(min(n_knots, max(3, np.unique(x).size - 2)))
        self.tr = SplineTransformer(
            n_knots=n_knots, degree=3, knots="uniform", extrapolation="linear"
        ).fit(x[:, None])
        k = self.tr.n_features_out_
        D = np.diff(np.eye(k), n=2, axis=0)
        P = D.T @ D
        self.P = P[1:, 1:]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.tr.transform(x[:, None])[:, 1:]


class _Gam:
    """Penalized regression splines with GCV (Gaussian) or penalized IRLS with a GCV-like score
    on the working model (binomial)."""

    LAMBDAS = np.logspace(-4, 8, 25)

    def __init__(self, smooth_cols: list[int], binary: bool) -> None:
        self.smooth_cols = smooth_cols
        self.binary = binary

    def _design(self, X: np.ndarray) -> np.ndarray:
        lin = [j for j in range(X.shape[1]) if j not in self.smooth_cols]
        parts = [X[:, lin]] + [
            b(X[:, j]) for j, b in zip(self.smooth_cols, self.bases, strict=True)
        ]
        return np.hstack(parts)

    def fit(self, X: np.ndarray, y: np.ndarray) -> _Gam:
        self.bases = [_SplineBasis(X[:, j]) for j in self.smooth_cols]
        B = self._design(X)
        n_lin = X.shape[1] - len(self.smooth_cols)
        P = np.zeros((B.shape[1], B.shape[1]))
        pos = n_lin
        for b in self.bases:
            k = b.P.shape[0]
            P[pos : pos + k, pos : pos + k] = b.P
            pos += k
        scale = float(np.mean(B**2)) or 1.0
        best = None
        for lam in self.LAMBDAS:
            coef, score = self._fit_one(B, y, lam * scale * P)
            if best is None or score < best[1]:
                best = (coef, score)
        self.coef = best[0]
        return self

    def _fit_one(self, B: np.ndarray, y: np.ndarray, S: np.ndarray) -> tuple[np.ndarray, float]:
        n = len(y)
        if not self.binary:
            A = B.T @ B + S
            coef = np.linalg.lstsq(A, B.T @ y, rcond=None)[0]
            edf = float(np.trace(np.linalg.lstsq(A, B.T @ B, rcond=None)[0]))
            rss = float(np.sum((y - B @ coef) ** 2))
            return coef, n * rss / max(n - edf, 1.0) ** 2
        mu = (y + 0.5) / 2.0
        eta = np.log(mu / (1 - mu))
        coef = np.zeros(B.shape[1])
        for _ in range(50):
            w = mu * (1 - mu)
            z = eta + (y - mu) / w
            A = (B * w[:, None]).T @ B + S
            new = np.linalg.lstsq(A, (B * w[:, None]).T @ z, rcond=None)[0]
            done = np.max(np.abs(new - coef)) < 1e-8 * (1 + np.max(np.abs(new)))
            coef = new
            eta = B @ coef
            mu = _expit(eta)
            if done:
                break
        w = mu * (1 - mu)
        A = (B * w[:, None]).T @ B + S
        edf = float(np.trace(np.linalg.lstsq(A, (B * w[:, None]).T @ B, rcond=None)[0]))
        return coef, n * _binom_dev(y, mu) / max(n - edf, 1.0) ** 2

    def predict(self, X: np.ndarray) -> np.ndarray:
        eta = self._design(X) @ self.coef
        return _expit(eta) if self.binary else eta


# ----------------------------------------------------------------------------- fitting
def fit_predict(
    learner: Learner,
    X_fit: np.ndarray,
    y_fit: np.ndarray,
    X_pred: np.ndarray,
    *,
    binomial: bool | None,
    names: list[str],
    smooth: set[str],
    seed: int | None,
    where: str,
) -> np.ndarray:
    """Fit ``learner`` on (X_fit, y_fit) and predict at X_pred (probabilities for a binary
    target of a classifier).

    ``X_*`` carry the formula's columns (an ``Intercept`` column first where the formula has
    one). ``binomial``: True / False fixes the family of "glm" and "gam" (MRTAnalysis: binomial
    for treatment models, Gaussian for outcome models); None infers it from the target.
    """
    if len(y_fit) == 0:
        raise EstimationError(
            f"{where}: no decision points to fit this nuisance model on (e.g. no treated or no "
            "untreated decision point in a cross-fitting fold); use fewer folds (cross_fit=) "
            "or check the treatment column."
        )
    binary = is_binary(y_fit) if binomial is None else binomial
    name = learner.name
    if learner.estimator is None and name in ("lm", "glm"):
        if name == "glm" and binary:
            if np.all(y_fit == y_fit[0]):
                return np.full(len(X_pred), float(y_fit[0]))
            return _expit(X_pred @ logistic_irls(X_fit, y_fit))
        return X_pred @ ols(X_fit, y_fit)
    if learner.estimator is None and name == "gam":
        cols = [j for j, n in enumerate(names) if n in smooth]
        if not cols:  # mgcv without s() terms: a (generalized) linear model
            return fit_predict(
                Learner("glm"),
                X_fit,
                y_fit,
                X_pred,
                binomial=binary,
                names=names,
                smooth=smooth,
                seed=seed,
                where=where,
            )
        if binary and np.all(y_fit == y_fit[0]):
            return np.full(len(X_pred), float(y_fit[0]))
        return _Gam(cols, binary).fit(X_fit, y_fit).predict(X_pred)
    # tree learners and user estimators: no intercept column
    keep = [j for j, n in enumerate(names) if n != "Intercept"]
    Xf, Xp = X_fit[:, keep], X_pred[:, keep]
    if Xf.shape[1] == 0:  # '~ 1': the mean
        return np.full(len(X_pred), float(np.mean(y_fit)))
    est = _make_estimator(learner, binary, seed)
    if binary and np.all(y_fit == y_fit[0]):
        return np.full(len(X_pred), float(y_fit[0]))
    try:
        est.fit(Xf, y_fit.astype(int) if binary and _is_classifier(est) else y_fit)
        if binary and callable(getattr(est, "predict_proba", None)):
            classes = list(getattr(est, "classes_", [0, 1]))
            prob = np.asarray(est.predict_proba(Xp), dtype=float)[:, classes.index(1)]
            return np.clip(prob, PROB_CLIP, 1 - PROB_CLIP)
        return np.asarray(est.predict(Xp), dtype=float).ravel()
    except (ValueError, TypeError) as e:
        raise EstimationError(f"{where}: the learner {name} failed: {e}") from e


def _is_classifier(est: Any) -> bool:
    return getattr(est, "_estimator_type", None) == "classifier" or callable(
        getattr(est, "predict_proba", None)
    )


def _make_estimator(learner: Learner, binary: bool, seed: int | None) -> Any:
    from sklearn.base import clone

    if learner.estimator is not None:
        try:
            est = clone(learner.estimator)
        except (TypeError, RuntimeError):
            import copy

            est = copy.deepcopy(learner.estimator)
        if seed is not None and hasattr(est, "random_state") and est.random_state is None:
            est.random_state = seed
        return est
    if learner.name == "rf":
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        if binary:
            return RandomForestClassifier(n_estimators=200, min_samples_leaf=5, random_state=seed)
        return RandomForestRegressor(
            n_estimators=200, min_samples_leaf=5, max_features=1 / 3, random_state=seed
        )
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

    cls = GradientBoostingClassifier if binary else GradientBoostingRegressor
    return cls(
        n_estimators=100, learning_rate=0.1, max_depth=2, min_samples_leaf=10, random_state=seed
    )


def fold_assignment(n: int, k: int, seed: Any) -> np.ndarray:
    """Cross-fitting folds 0..k-1 for n participants (balanced, seeded)."""
    rng = np.random.default_rng(seed)
    return rng.permutation(np.arange(n) % k)
