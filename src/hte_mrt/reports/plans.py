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
from hte_mrt.reports.plan_schema import SECTIONS

MRT_ROLES = (
    "id",
    "time",
    "treatment",
    "outcome",
    "prob",
    "availability",
    "cluster",
    "levels",
    "missing",
)
CRT_ROLES = (
    "cluster",
    "arm",
    "outcome",
    "individual",
    "cluster_covariates",
    "baseline",
    "categorical",
    "id",
    "missing",
    "dropna_outcome",
)


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


def _display(path: tuple, raw: dict | None = None) -> str:
    """A key path for messages: ``estimands[by_day].moderators``, ``learners.bamm.draws``."""
    out = ""
    node: Any = raw
    for part in path:
        if isinstance(part, int):
            name = (
                node[part].get("name")
                if isinstance(node, list) and isinstance(node[part], dict)
                else None
            )
            out += f"[{name}]" if isinstance(name, str) and name else f"[{part + 1}]"
        else:
            out += ("." if out else "") + str(part)
        try:
            node = node[part] if node is not None else None
        except (KeyError, IndexError, TypeError):
            node = None
    return out


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?")


def _header_path(dotted: str) -> list[str]:
    return [p.strip().strip('"').strip("'") for p in dotted.split(".")]


def locate(text: str, path: tuple) -> int | None:
    """Line of a key path in the TOML text, aware of tables: ``("estimands", 1, "lag")`` is
    the ``lag =`` line inside the second ``[[estimands]]``; a key missing from its table gives
    the table's header line; keys inside inline tables are found on their line."""
    lines = text.splitlines()
    # blocks: (header path with array indices, first line index, end line index)
    blocks: list[tuple[tuple, int, int]] = [((), 0, len(lines))]
    counts: dict[tuple, int] = {}
    for i, ln in enumerate(lines):
        m = _HEADER.match(ln)
        if not m or "=" in ln.split("]")[0]:
            continue
        hp: tuple = tuple(_header_path(m.group(2)))
        if m.group(1) == "[[":
            counts[hp] = counts.get(hp, -1) + 1
            hp = (*hp, counts[hp])
        blocks[-1] = (blocks[-1][0], blocks[-1][1], i)
        blocks.append((hp, i, len(lines)))
    best, best_len = blocks[0], 0
    for b in blocks:
        n = len(b[0])
        if n <= len(path) and tuple(path[:n]) == b[0] and n >= best_len:
            if n > best_len or b is not blocks[0]:
                best, best_len = b, n
    if best_len == 0 and path:
        # a table known only through its sub-tables ([learners.bamm] for "learners")
        sub = next((b for b in blocks if len(b[0]) > len(path) and b[0][: len(path)] == path), None)
        if sub is not None:
            return sub[1] + 1
    hp, start, end = best
    rest = [p for p in path[best_len:] if not isinstance(p, int)]
    found = start if hp else None
    pos = start + (1 if hp else 0)
    for part in rest:
        k = re.escape(str(part))
        pat = re.compile(rf'(^|[\s{{,])["\']?{k}["\']?\s*=')
        hit = next((j for j in range(pos, end) if pat.search(lines[j].split("#")[0])), None)
        if hit is None:
            break
        found, pos = hit, hit
    if found is None:
        return _line(text, ".".join(str(p) for p in path if not isinstance(p, int)))
    return found + 1


def plan_error(text: str, raw: dict | None, problems: list, source: str = "") -> PlanError:
    """One :class:`PlanError` for every problem found: the first names its key and line
    (``.key``, ``.line``); ``.problems`` holds ``(key, line, message)`` for all of them."""
    items = [(_display(path, raw), locate(text, path), msg) for path, msg in problems]
    items.sort(key=lambda it: it[1] if it[1] is not None else 10**9)  # in the file's order
    if len(items) == 1:
        err = PlanError(items[0][2], key=items[0][0], line=items[0][1])
    else:
        head = f"{len(items)} problems in the plan" + (f" {source}" if source else "") + ":"
        body = "\n".join(
            f"  {k}" + (f" (line {ln})" if ln else "") + f": {m}" for k, ln, m in items
        )
        err = PlanError(f"{head}\n{body}")
        err.key, err.line = items[0][0], items[0][1]
    err.problems = items
    return err


def _err(text: str, key: str, msg: str) -> PlanError:
    return PlanError(msg, key=key, line=_line(text, key))


def load_plan(source: str | Path, *, text: str | None = None) -> Plan:
    """Read and validate an analysis plan (a TOML file, ``models/*.toml``).

    Every key is checked against the plan's schema (:mod:`hte_mrt.reports.plan_schema`: one
    dataclass per section and per estimand kind; learners' parameters against the learner's
    constructor): its type, its range, unknown keys (with the closest allowed one), missing
    required keys, formulas, priors and learner parameters. All problems are reported at once.

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
        Invalid TOML, or every unknown / missing / badly typed / out-of-range key; the error
        names the first key and its line (``.key``, ``.line``) and lists all of them
        (``.problems``: ``(key, line, message)``). Columns are checked against the data by
        :func:`~hte_mrt.reports.run.validate` (``hm.validate_plan``).

    Examples
    --------
    >>> import hte_mrt as hm
    >>> text = \'\'\'
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
    ... \'\'\'
    >>> plan = hm.load_plan("primary.toml", text=text)
    >>> plan.name, plan.kind, plan.seed, [e["name"] for e in plan.estimands]
    ('primary', 'mrt', 7, ['marginal'])
    >>> hm.load_plan("bad.toml", text=text.replace("seed = 7", "seed = -7"))
    Traceback (most recent call last):
    ...
    hte_mrt.errors.PlanError: plan.seed (line 5): must be a non-negative integer, got -7 ...
    >>> bad = text.replace("seed = 7", 'seed = "7"').replace('"~ 1"', "1")
    >>> try:
    ...     hm.load_plan("bad.toml", text=bad)
    ... except hm.HteMrtError as e:
    ...     print(e)
    2 problems in the plan bad.toml:
      plan.seed (line 5): must be a non-negative integer, got '7' (a string); write 7 ...
      estimands[marginal].moderators (line 16): must be a one-sided formula ...
    """
    from hte_mrt.reports import plan_schema as sch

    path = None
    if text is None and not isinstance(source, str | Path):
        raise PlanError(
            f"load_plan needs the path of a .toml plan (a str or Path), got "
            f"{type(source).__name__}: e.g. hm.load_plan('models/heartsteps_v1_primary.toml')."
        )
    if text is None:
        path = Path(source)
        if not path.is_file():
            raise PlanError(
                f"plan file {str(path)!r} not found"
                + (" (it is a folder)" if path.is_dir() else "")
                + ": give the path of a .toml plan, e.g. models/heartsteps_v1_primary.toml."
            )
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise PlanError(f"cannot read the plan file {str(path)!r} ({e}).") from e
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise PlanError(
            f"not valid TOML ({e}); fix the syntax (key = value, strings in quotes).",
            key="<file>",
            line=int(m.group(1)) if m else None,
        ) from e
    src = str(source)
    p = raw.get("plan")
    if not isinstance(p, dict):
        raise plan_error(
            text,
            raw,
            [
                (
                    ("plan",),
                    "the [plan] table is missing: start the file "
                    'with [plan] and name = "...", design = "mrt" | "crt" | "samplesize", '
                    "seed = 2026.",
                )
            ],
            src,
        )
    problems = sch.check_table(sch.PlanSection, p, ("plan",))
    kind = p.get("design")
    if kind in SECTIONS:
        problems += sch.check_plan(raw, kind)
        # checks of their own, reported with the schema's problems where their inputs are sound
        bad = {p[:2] for p, _ in problems}
        if kind == "mrt" and ("model", "priors") not in bad and ("model",) not in bad:
            problems += _check_priors(raw)
        if kind in ("mrt", "crt") and isinstance(raw.get("data"), dict):
            problems += _check_data_source(raw["data"], path)
    if problems:
        raise plan_error(text, raw, problems, src)
    plan = Plan(
        path,
        text,
        raw,
        hashlib.sha256(text.encode()).hexdigest(),
        kind,
        str(p["name"]),
        int(p["seed"]),
    )
    plan.estimands = list(raw.get("estimands", []))
    problems = _check_constructors(plan)
    if problems:
        raise plan_error(text, raw, problems, src)
    return plan


def _check_data_source(d: dict, path: Path | None) -> list:
    """A bundled dataset that exists, or a data file that exists (relative to the plan)."""
    from hte_mrt.data.datasets import DATASETS

    if "dataset" in d and "path" in d:
        return []  # the schema says: give one of them

    if isinstance(d.get("dataset"), str) and d["dataset"] not in DATASETS:
        from hte_mrt.reports.plan_schema import suggest

        return [
            (
                ("data", "dataset"),
                f"unknown dataset {d['dataset']!r}"
                f"{suggest(d['dataset'], DATASETS)}; bundled: {', '.join(DATASETS)} (or give "
                'path = "file.csv").',
            )
        ]
    if isinstance(d.get("path"), str):
        base = path.parent if path else Path.cwd()
        if not (base / d["path"]).is_file() and not Path(d["path"]).is_file():
            return [
                (
                    ("data", "path"),
                    f"file {d['path']!r} not found (looked in {base}); give "
                    "a CSV path relative to the plan file.",
                )
            ]
    return []


def _check_priors(raw: dict) -> list:
    from hte_mrt.estimators.bayes.priors import validate_priors

    try:
        validate_priors(raw.get("model", {}).get("priors"))
    except PriorError as e:
        return [(("model", "priors", *([e.key] if e.key else [])), str(e))]
    return []


def _check_constructors(plan: Plan) -> list:
    """Build the objects a run builds (each estimand's Bayesian model; the sample-size design)
    so that their own argument checks run now rather than mid-run."""
    from hte_mrt.errors import HteMrtError

    out: list = []
    if plan.kind == "mrt":
        from hte_mrt.estimators.bayes.model import BayesMRT

        m, s = plan.section("model"), plan.section("sampler")
        for i, e in enumerate(plan.estimands):
            try:
                BayesMRT(
                    moderators=e.get("moderators", "~ 1"),
                    controls=e.get("controls", "~ 1"),
                    family=m.get("family", "gaussian"),
                    random_slope=m.get("random_slope", False),
                    correlated=m.get("correlated", False),
                    cluster_intercept=m.get("cluster_intercept"),
                    lag=e.get("lag", 0),
                    priors=m.get("priors"),
                    method=m.get("method", "collapsed"),
                    draws=s.get("draws", 1000),
                    tune=s.get("tune", 1000),
                    chains=s.get("chains", 4),
                    target_accept=s.get("target_accept"),
                    seed=plan.seed + i,
                )
            except (HteMrtError, TypeError, ValueError) as err:
                out.append(
                    (
                        ("estimands", i),
                        f"the Bayesian model of this estimand cannot be built: {err}",
                    )
                )
    elif plan.kind == "samplesize":
        from hte_mrt.reports.design_plan import build_design

        try:
            build_design(plan)
        except PlanError as err:
            path = tuple(err.key.split(".")) if err.key else ("design",)
            out.append((path, str(err).split(": ", 1)[-1]))
        except (HteMrtError, ValueError) as err:
            out.append((("design",), f"the design cannot be built: {err}"))
    return out


def plan_steps(steps, *, progress: bool = True, desc: str = "plan"):
    """Iterate over a plan's ``(label, step)`` pairs with one tqdm progress bar (``tqdm.auto``:
    a plain bar in a terminal or notebook); ``progress=False`` shows nothing."""
    from hte_mrt._util import tqdm

    bar = tqdm(steps, desc=desc, unit="step", disable=not progress, leave=True)
    for label, step in bar:
        bar.set_postfix_str(label, refresh=True)
        yield label, step
