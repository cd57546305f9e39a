"""Analysis plans: a TOML file that fully determines an analysis (``models/*.toml``).

A plan names its data (a bundled dataset or a CSV path, with column roles), its estimands, the
model and priors, the sampler settings and seed, the WCLS cross-check and the robustness checks.
:func:`load_plan` validates it and raises :class:`~hte_mrt.errors.PlanError` naming the
offending key and its line. Three kinds of plan (``[plan] design``):

* ``"mrt"``: causal excursion effects (WCLS / EMEE and the hierarchical Bayesian model);
* ``"crt"``: CATEs in a cluster-randomized trial (learners, subgroups, projections);
* ``"samplesize"``: an MRT sample-size calculation (no data).

The plan file's SHA-256 is recorded in every report, so a report cites exactly one plan.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hte_mrt.errors import PlanError, PriorError

MRT_ROLES = ("id", "time", "treatment", "outcome", "prob", "availability", "cluster", "levels")
CRT_ROLES = (
    "cluster",
    "arm",
    "outcome",
    "individual",
    "cluster_covariates",
    "baseline",
    "id",
    "missing",
    "dropna_outcome",
)
ESTIMAND_TYPES = {
    "mrt": ("marginal", "moderated", "time_varying", "lagged"),
    "crt": ("cate",),
}
SECTIONS = {
    "mrt": {"plan", "data", "estimands", "model", "sampler", "crosscheck", "robustness", "report"},
    "crt": {"plan", "data", "estimands", "learners", "sampler", "report"},
    "samplesize": {"plan", "design", "report"},
}
KEYS = {
    "plan": {"name", "title", "design", "seed", "description", "citation"},
    "estimand_mrt": {
        "name",
        "label",
        "type",
        "moderators",
        "controls",
        "lag",
        "numerator",
        "primary",
        "curve",
        "lincombs",
        "data",
    },
    "estimand_crt": {
        "name",
        "label",
        "type",
        "subgroups",
        "bands",
        "blp",
        "primary",
        "calibration_splits",
    },
    "model": {"family", "random_slope", "correlated", "cluster_intercept", "method", "priors"},
    "sampler": {"draws", "tune", "chains", "target_accept"},
    "crosscheck": {"threshold", "bootstrap"},
    "robustness": {"randomization_test", "prior_sensitivity"},
    "report": {"out", "formats"},
    "curve": {"variable", "from", "to", "points"},
}


@dataclass
class Plan:
    """A validated analysis plan (the parsed TOML plus where it came from)."""

    path: Path | None
    text: str
    raw: dict[str, Any]
    sha256: str
    kind: str
    name: str
    seed: int
    estimands: list[dict[str, Any]] = field(default_factory=list)

    @property
    def title(self) -> str:
        return self.raw["plan"].get("title", self.name)

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.raw.get(name, {}))


def _line(text: str, key: str) -> int | None:
    """Line of ``key`` in the TOML text: the first ``last =`` (also inside inline tables) or
    table header ``[...last]`` for the key's last dotted part, else for its parents."""
    parts = [p.split("[")[0] for p in key.split(".") if p.split("[")[0]]
    for last in reversed(parts):
        k = re.escape(last)
        pat = re.compile(rf'(^\s*\[+\s*[\w."]*{k}"?\s*\]+)|((^|[\s{{,])"?{k}"?\s*=)', re.M)
        m = pat.search(text)
        if m:
            return text.count("\n", 0, m.start() + (1 if text[m.start()] == "\n" else 0)) + 1
    return None


def _err(text: str, key: str, msg: str) -> PlanError:
    return PlanError(msg, key=key, line=_line(text, key))


def _unknown(text: str, where: str, got: dict, allowed: set[str]) -> None:
    for k in got:
        if k not in allowed:
            raise _err(
                text,
                f"{where}.{k}" if where else k,
                f"unknown key '{k}'; allowed here: {', '.join(sorted(allowed))}.",
            )


def load_plan(source: str | Path, *, text: str | None = None) -> Plan:
    """Read and validate an analysis plan (a TOML file, ``models/*.toml``).

    Parameters
    ----------
    source : str or Path
        The plan file (its path is recorded; a data ``path`` in it is relative to the file).
    text : str, optional
        The plan's TOML text instead of reading ``source`` (``source`` then only names it).

    Returns
    -------
    Plan
        ``name``, ``kind`` (``"mrt"``, ``"crt"`` or ``"samplesize"``), ``seed``, ``estimands``,
        ``sha256`` (of the text, recorded in every report), ``raw`` (the parsed TOML) and
        ``section(name)``.

    Raises
    ------
    PlanError
        Invalid TOML or an unknown / missing / badly typed key; the error names the key and its
        line (``.key``, ``.line``). Columns are checked against the data by
        :func:`~hte_mrt.reports.run.validate` (``hm.validate_plan``).

    Examples
    --------
    >>> import hte_mrt as hm
    >>> text = '''
    ... [plan]
    ... name = "primary"
    ... design = "mrt"
    ... seed = 7
    ... [data]
    ... dataset = "heartsteps"
    ... id = "user"
    ... time = "decision_index_nogap"
    ... treatment = "send"
    ... outcome = "jbsteps30_log"
    ... prob = "rand_prob"
    ... availability = "avail"
    ... [[estimands]]
    ... name = "marginal"
    ... moderators = "~ 1"
    ... controls = "~ jbsteps30pre_log"
    ... '''
    >>> plan = hm.load_plan("primary.toml", text=text)
    >>> plan.name, plan.kind, plan.seed, [e["name"] for e in plan.estimands]
    ('primary', 'mrt', 7, ['marginal'])
    >>> hm.load_plan("bad.toml", text=text.replace("seed = 7", "seed = -7"))
    Traceback (most recent call last):
    ...
    hte_mrt.errors.PlanError: plan.seed (line 5): ...
    """
    path = None
    if text is None:
        path = Path(source)
        if not path.exists():
            raise PlanError(f"plan file {path} not found.")
        text = path.read_text()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise PlanError(
            f"not valid TOML ({e}).", key="<file>", line=int(m.group(1)) if m else None
        ) from e
    if "plan" not in raw:
        raise PlanError("the [plan] table is missing (name, design, seed).", key="plan")
    p = raw["plan"]
    _unknown(text, "plan", p, KEYS["plan"])
    kind = p.get("design")
    if kind not in SECTIONS:
        raise _err(
            text, "plan.design", f"design must be one of {', '.join(SECTIONS)}, got {kind!r}."
        )
    _unknown(text, "", raw, SECTIONS[kind])
    for req in ("name", "seed"):
        if req not in p:
            raise _err(text, "plan", f"[plan] needs '{req}'.")
    if not isinstance(p["seed"], int) or p["seed"] < 0:
        raise _err(text, "plan.seed", f"seed must be a non-negative integer, got {p['seed']!r}.")
    plan = Plan(
        path,
        text,
        raw,
        hashlib.sha256(text.encode()).hexdigest(),
        kind,
        str(p["name"]),
        int(p["seed"]),
    )
    if kind == "samplesize":
        _check_samplesize(plan)
    else:
        _check_data(plan)
        _check_estimands(plan)
        if kind == "mrt":
            _check_mrt_model(plan)
        else:
            _check_learners(plan)
        _check_sampler(plan)
    _unknown(text, "report", plan.section("report"), KEYS["report"])
    return plan


def _check_data(plan: Plan) -> None:
    from hte_mrt.data.datasets import DATASETS

    text, d = plan.text, plan.raw.get("data")
    if not isinstance(d, dict):
        raise _err(text, "data", "the [data] table is missing (dataset = ... or path = ...).")
    roles = MRT_ROLES if plan.kind == "mrt" else CRT_ROLES
    _unknown(text, "data", d, {"dataset", "path", *roles})
    if ("dataset" in d) == ("path" in d):
        raise _err(text, "data", "give exactly one of 'dataset' (bundled) or 'path' (a CSV).")
    if "dataset" in d and d["dataset"] not in DATASETS:
        raise _err(
            text,
            "data.dataset",
            f"unknown dataset {d['dataset']!r}; bundled: {', '.join(DATASETS)}.",
        )
    if "path" in d:
        base = plan.path.parent if plan.path else Path.cwd()
        if not (base / d["path"]).exists() and not Path(d["path"]).exists():
            raise _err(text, "data.path", f"file {d['path']!r} not found.")


def _check_estimands(plan: Plan) -> None:
    text = plan.text
    ests = plan.raw.get("estimands")
    if not isinstance(ests, list) or not ests:
        raise _err(text, "estimands", "at least one [[estimands]] table is needed.")
    types = ESTIMAND_TYPES[plan.kind]
    seen = set()
    for e in ests:
        where = f"estimands[{e.get('name', '?')}]"
        _unknown(text, "estimands", e, KEYS[f"estimand_{plan.kind}"])
        if "name" not in e:
            raise _err(text, "estimands", "every estimand needs a 'name'.")
        if e["name"] in seen:
            raise _err(text, "estimands.name", f"estimand name {e['name']!r} is used twice.")
        seen.add(e["name"])
        t = e.get("type", types[0])
        if t not in types:
            other = "crt" if plan.kind == "mrt" else "mrt"
            hint = (
                f" ('{t}' is a {other.upper()} estimand: this is a {plan.kind.upper()} plan)"
                if t in ESTIMAND_TYPES.get(other, ())
                else ""
            )
            raise _err(
                text,
                "estimands.type",
                f"{where}: type must be one of {', '.join(types)}, got {t!r}{hint}.",
            )
        if "curve" in e:
            _unknown(text, "curve", e["curve"], KEYS["curve"])
        cs = e.get("calibration_splits", 0)
        if isinstance(cs, bool) or not isinstance(cs, int) or cs < 0:
            raise _err(
                text,
                "calibration_splits",
                f"{where}: calibration_splits must be a whole number >= 0 (0: no calibration "
                f"test), got {cs!r}.",
            )
    plan.estimands = ests


def _check_mrt_model(plan: Plan) -> None:
    from hte_mrt.estimators.bayes.priors import validate_priors

    text = plan.text
    m = plan.section("model")
    _unknown(text, "model", m, KEYS["model"])
    if m.get("family", "gaussian") not in ("gaussian", "bernoulli"):
        raise _err(
            text, "model.family", f"family must be gaussian or bernoulli, got {m['family']!r}."
        )
    try:
        validate_priors(m.get("priors"))
    except PriorError as e:
        raise _err(text, f"model.priors.{e.key}", str(e)) from e
    _unknown(text, "crosscheck", plan.section("crosscheck"), KEYS["crosscheck"])
    rob = plan.section("robustness")
    _unknown(text, "robustness", rob, KEYS["robustness"])
    ps = rob.get("prior_sensitivity", {})
    for s in ps.get("scales", []) if isinstance(ps, dict) else []:
        if not (isinstance(s, int | float) and s > 0):
            raise _err(
                text,
                "robustness.prior_sensitivity",
                f"prior scales must be positive numbers, got {s!r}.",
            )


def _check_learners(plan: Plan) -> None:
    from hte_mrt.estimators.learners import LEARNERS

    text = plan.text
    ls = plan.raw.get("learners")
    if not isinstance(ls, dict) or not ls:
        raise _err(text, "learners", "a [learners] table is needed, e.g. [learners.bamm].")
    for name, params in ls.items():
        if name not in LEARNERS:
            raise _err(
                text, f"learners.{name}", f"unknown learner '{name}'; known: {', '.join(LEARNERS)}."
            )
        allowed = set(LEARNERS[name]._param_names())
        _unknown(text, f"learners.{name}", params, allowed)


def _check_sampler(plan: Plan) -> None:
    text = plan.text
    s = plan.section("sampler")
    _unknown(text, "sampler", s, KEYS["sampler"])
    for k in ("draws", "tune", "chains"):
        if k in s and (not isinstance(s[k], int) or s[k] < 1):
            raise _err(text, f"sampler.{k}", f"{k} must be a positive integer, got {s[k]!r}.")


def _check_samplesize(plan: Plan) -> None:
    d = plan.raw.get("design")
    if not isinstance(d, dict):
        raise _err(plan.text, "design", "a [design] table with the calculator's inputs is needed.")


def plan_steps(steps, *, progress: bool = True, desc: str = "plan"):
    """Iterate over a plan's ``(label, step)`` pairs with one tqdm progress bar (``tqdm.auto``:
    a plain bar in a terminal or notebook); ``progress=False`` shows nothing."""
    from tqdm.auto import tqdm

    bar = tqdm(steps, desc=desc, unit="step", disable=not progress, leave=True)
    for label, step in bar:
        bar.set_postfix_str(label, refresh=True)
        yield label, step
