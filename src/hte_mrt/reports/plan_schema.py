"""The schema of an analysis plan: one dataclass per plan section and per estimand kind.

Every key a plan may hold is a field of one of the dataclasses below; its metadata carries a
*spec* (``Int``, ``Num``, ``Bool``, ``Str``, ``Formula``, ``ListOf``, ``MapOf``, ``AnyOf``,
``Table``) that checks the value's type and range. :func:`check_table` walks a parsed TOML
table against a dataclass and returns EVERY problem (key path + message saying what to do);
:func:`~hte_mrt.reports.plans.load_plan` turns them into one
:class:`~hte_mrt.errors.PlanError` with the line of each key. Learners' parameters are
checked against the learner's constructor signature (names, types from its annotations, and
the ranges of the package's common parameter names).

A plan that passes the schema (and, with data, the column check) runs: the runners only read
keys the schema knows, with the types it enforces.
"""

from __future__ import annotations

# key() returns a dataclass field (like field()), which RUF009 does not know
# ruff: noqa: RUF009
import ast
import difflib
import inspect
import itertools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

Path = tuple[Any, ...]  # key path: section names, estimand indices, keys
Problem = tuple[Path, str]


def _got(v: Any) -> str:
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        type(v), "a list" if isinstance(v, list) else "a table" if isinstance(v, dict) else ""
    )
    return f"got {v!r}" + (f" ({kind})" if kind else "")


def _hint_quotes(v: Any, want: str) -> str:
    """What to write instead of a quoted value (``"200"`` where a number belongs)."""
    if isinstance(v, str):
        s = v.strip().lower()
        if want == "bool" and s in ("true", "false", "yes", "no", "on", "off", "0", "1"):
            t = "true" if s in ("true", "yes", "on", "1") else "false"
            return f"; write {t} without quotes"
        if want in ("int", "num"):
            try:
                float(s)
            except ValueError:
                return ""
            return f"; write {v.strip()} without quotes"
    return ""


# ----------------------------------------------------------------------------- value specs
class Spec:
    """Checks one value; ``what`` says in words what is expected."""

    what = "a value"

    def check(self, v: Any, path: Path) -> list[Problem]:
        raise NotImplementedError


@dataclass(frozen=True)
class Int(Spec):
    min: int | None = None
    max: int | None = None

    @property
    def what(self) -> str:  # type: ignore[override]
        if self.min == 0 and self.max is None:
            return "a non-negative integer"
        if self.min == 1 and self.max is None:
            return "a positive integer"
        if self.max is None:
            return f"an integer >= {self.min}" if self.min is not None else "an integer"
        return f"an integer from {self.min} to {self.max}"

    def check(self, v, path):
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and v.is_integer():
                hint = f"; write {int(v)}"
            elif isinstance(v, float):
                hint = "; a fraction is not allowed here"
            else:
                hint = _hint_quotes(v, "int")
            return [(path, f"must be {self.what}, {_got(v)}{hint}.")]
        if (self.min is not None and v < self.min) or (self.max is not None and v > self.max):
            return [(path, f"must be {self.what}, {_got(v)}.")]
        return []


@dataclass(frozen=True)
class Num(Spec):
    """A real number (integers allowed) in a range; ``open_*``: the bound itself excluded."""

    min: float | None = None
    max: float | None = None
    open_min: bool = False
    open_max: bool = False

    @property
    def what(self) -> str:  # type: ignore[override]
        lo = None if self.min is None else ("> " if self.open_min else ">= ") + f"{self.min:g}"
        hi = None if self.max is None else ("< " if self.open_max else "<= ") + f"{self.max:g}"
        rng = " and ".join(x for x in (lo, hi) if x)
        return "a number" + (f" {rng}" if rng else "")

    def ok(self, v) -> bool:
        if self.min is not None and (v <= self.min if self.open_min else v < self.min):
            return False
        return not (self.max is not None and (v >= self.max if self.open_max else v > self.max))

    def check(self, v, path):
        if isinstance(v, bool) or not isinstance(v, int | float):
            return [(path, f"must be {self.what}, {_got(v)}{_hint_quotes(v, 'num')}.")]
        if not math.isfinite(v) or not self.ok(v):
            return [(path, f"must be {self.what}, {_got(v)}.")]
        return []


@dataclass(frozen=True)
class Bool(Spec):
    what = "true or false"

    def check(self, v, path):
        if not isinstance(v, bool):
            return [(path, f"must be true or false, {_got(v)}{_hint_quotes(v, 'bool')}.")]
        return []


@dataclass(frozen=True)
class Str(Spec):
    choices: tuple[str, ...] = ()
    nonempty: bool = True

    @property
    def what(self) -> str:  # type: ignore[override]
        if self.choices:
            return "one of " + ", ".join(f'"{c}"' for c in self.choices)
        return "a text in quotes"

    def check(self, v, path):
        if not isinstance(v, str):
            return [(path, f"must be {self.what}, {_got(v)}.")]
        if self.choices and v not in self.choices:
            return [(path, f"must be {self.what}, {_got(v)}{suggest(v, self.choices)}.")]
        if self.nonempty and not v.strip():
            return [(path, "must not be empty.")]
        return []


@dataclass(frozen=True)
class Formula(Spec):
    """A one-sided model formula such as ``"~ 1"`` or ``"~ day + steps_pre"``."""

    what = 'a one-sided formula such as "~ 1" or "~ day + steps_pre"'

    def check(self, v, path):
        if not isinstance(v, str):
            return [(path, f"must be {self.what}, {_got(v)}.")]
        lhs, tilde, rhs = v.partition("~")
        if not tilde or lhs.strip():
            return [(path, f"must be {self.what} (starting with '~'), got {v!r}.")]
        if not rhs.strip():
            return [(path, f"has nothing after '~' in {v!r}; write \"~ 1\" for no terms.")]
        depth = 0
        for ch in rhs:
            depth += (ch == "(") - (ch == ")")
            if depth < 0:
                break
        if depth:
            return [(path, f"has unbalanced parentheses in {v!r}: close every '('.")]
        try:
            from formulaic import Formula as _F

            _F(v)
        except Exception as e:  # formulaic raises several exception types for bad syntax
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            return [(path, f'is not a valid formula ({msg}): {v!r}; e.g. "~ day + steps_pre".')]
        return []


@dataclass(frozen=True)
class ListOf(Spec):
    item: Spec
    min_len: int = 0
    max_len: int | None = None
    increasing: bool = False
    unique: bool = False

    @property
    def what(self) -> str:  # type: ignore[override]
        n = (
            f"{self.min_len}"
            if self.max_len == self.min_len
            else (f"at least {self.min_len}" if self.min_len else "")
        )
        return f"a list [ ... ] of {n + ' ' if n else ''}items, each {self.item.what}"

    def check(self, v, path):
        if not isinstance(v, list):
            hint = f"; write [{v!r}]" if isinstance(v, str) and isinstance(self.item, Str) else ""
            hint = hint.replace("'", '"')
            return [(path, f"must be {self.what}, {_got(v)}{hint}.")]
        if len(v) < self.min_len or (self.max_len is not None and len(v) > self.max_len):
            return [(path, f"must be {self.what}, got {len(v)} item(s): {v!r}.")]
        out: list[Problem] = []
        for i, x in enumerate(v):
            out += self.item.check(x, (*path, i))
        if not out and self.increasing and any(b <= a for a, b in itertools.pairwise(v)):
            out.append((path, f"must be strictly increasing, got {v!r}."))
        if not out and self.unique and len(set(map(str, v))) < len(v):
            out.append((path, f"lists an entry twice: {v!r}."))
        return out


@dataclass(frozen=True)
class MapOf(Spec):
    """A table whose keys the user chooses (e.g. linear-combination names)."""

    value: Spec
    min_len: int = 0

    @property
    def what(self) -> str:  # type: ignore[override]
        return f"a table {{ name = value, ... }} whose values are each {self.value.what}"

    def check(self, v, path):
        if not isinstance(v, dict):
            return [(path, f"must be {self.what}, {_got(v)}.")]
        if len(v) < self.min_len:
            return [(path, f"needs at least {self.min_len} entry, got an empty table.")]
        out: list[Problem] = []
        for k, x in v.items():
            out += self.value.check(x, (*path, k))
        return out


@dataclass(frozen=True)
class AnyOf(Spec):
    """The first spec whose type fits decides (e.g. a number or a column name)."""

    specs: tuple[Spec, ...]
    fits: tuple[Callable[[Any], bool], ...]
    label: str = ""

    @property
    def what(self) -> str:  # type: ignore[override]
        return self.label or " or ".join(s.what for s in self.specs)

    def check(self, v, path):
        for spec, fit in zip(self.specs, self.fits, strict=True):
            if fit(v):
                return spec.check(v, path)
        want = "bool" if any(isinstance(s, Bool) for s in self.specs) else "num"
        return [(path, f"must be {self.what}, {_got(v)}{_hint_quotes(v, want)}.")]


@dataclass(frozen=True)
class Table(Spec):
    """A nested table checked against a schema dataclass."""

    schema: type

    @property
    def what(self) -> str:  # type: ignore[override]
        return "a table"

    def check(self, v, path):
        return check_table(self.schema, v, path)


def _is_num(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def key(spec: Spec, default: Any = MISSING, doc: str = "") -> Any:
    """A schema field: its spec, default (none: the key is required) and a short description."""
    return field(default=default, metadata={"spec": spec, "doc": doc})


def suggest(word: str, allowed) -> str:
    """``" (did you mean 'x'?)"`` for the closest allowed word (difflib), else ``""``."""
    close = difflib.get_close_matches(str(word), [str(a) for a in allowed], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


# ----------------------------------------------------------------------------- checking
def schema_fields(schema: type) -> dict[str, tuple[Spec, bool]]:
    """``{key: (spec, required)}`` of a schema dataclass."""
    out = {}
    for f in fields(schema):
        req = f.default is MISSING and f.default_factory is MISSING
        # a Python keyword as a key (curve's "from") is spelled with a trailing underscore
        out[f.name.rstrip("_")] = (f.metadata["spec"], req)
    return out


def check_mapping(
    spec: Mapping[str, tuple[Spec, bool]],
    raw: Any,
    path: Path,
    *,
    where: str,
    example: Mapping[str, str] | None = None,
) -> list[Problem]:
    """Check a table's keys (unknown, missing) and values against ``{key: (spec, required)}``."""
    if not isinstance(raw, dict):
        return [(path, f"must be a table ([{where}] or {{ ... }}), {_got(raw)}.")]
    out: list[Problem] = []
    allowed = list(spec)
    for k in raw:
        if k not in spec:
            out.append(
                (
                    (*path, k),
                    f"unknown key '{k}' in {where}{suggest(k, allowed)}; allowed here: "
                    f"{', '.join(allowed)}.",
                )
            )
    # a misspelt required key is one problem (the unknown key, with its suggestion)
    meant = {suggest(k, allowed)[len(" (did you mean '") : -3] for k in raw if k not in spec}
    for k, (s, req) in spec.items():
        if k in raw:
            out += s.check(raw[k], (*path, k))
        elif req and k not in meant:
            eg = (example or {}).get(k)
            add = f": add {k} = {eg}" if eg else f": add {k} = <value>"
            out.append((path, f"{where} needs '{k}' ({s.what}){add}."))
    return out


def check_table(schema: type, raw: Any, path: Path) -> list[Problem]:
    """Every problem of ``raw`` against the schema dataclass (then its ``rules``)."""
    where = getattr(schema, "where", schema.__name__)
    out = check_mapping(
        schema_fields(schema), raw, path, where=where, example=getattr(schema, "example", None)
    )
    rules = getattr(schema, "rules", None)
    if rules is not None and isinstance(raw, dict):
        bad = {p[len(path)] for p, _ in out if len(p) > len(path)}
        out += rules(raw, path, bad)
    return out


# ----------------------------------------------------------------------------- sections
PLAN_KINDS = ("mrt", "crt", "samplesize")
#: proximal estimands (WCLS / EMEE and the Bayesian model) and the distal kinds (dcee, mcee,
#: effect_size), each with its own keys
MRT_PROXIMAL_TYPES = ("marginal", "moderated", "time_varying", "lagged")
MRT_DISTAL_TYPES = ("distal", "mediation", "effect_size")
MRT_ESTIMAND_TYPES = MRT_PROXIMAL_TYPES + MRT_DISTAL_TYPES
#: nuisance learners a plan may name for dcee / mcee
DISTAL_LEARNERS = ("lm", "glm", "gam", "rf", "gb")
CRT_ESTIMAND_TYPES = ("cate",)


@dataclass(kw_only=True)
class PlanSection:
    """``[plan]``: what the plan is."""

    where = "[plan]"
    example: ClassVar[dict[str, str]] = {"name": '"primary"', "design": '"mrt"', "seed": "2026"}
    name: str = key(Str(), doc="the plan's name (also the default report folder)")
    design: str = key(Str(PLAN_KINDS), doc="kind of plan")
    seed: int = key(Int(0), doc="the seed every random step starts from")
    title: str = key(Str(), None)
    description: str = key(Str(nonempty=False), None)
    citation: str = key(Str(nonempty=False), None)

    @staticmethod
    def rules(raw, path, bad):
        n = raw.get("name")
        if "name" not in bad and isinstance(n, str) and re.search(r"[/\\]", n):
            return [
                ((*path, "name"), f"must not contain '/' or '\\' (it names a folder), got {n!r}.")
            ]
        return []


_COL = Str()
_PROB = AnyOf(
    (Num(0, 1, open_min=True, open_max=True), Str()),
    (_is_num, lambda v: isinstance(v, str)),
    label="a probability strictly between 0 and 1 or the name of a column",
)


@dataclass(kw_only=True)
class MRTDataSection:
    """``[data]`` of an MRT plan: the data and its column roles."""

    where = "[data]"
    example: ClassVar[dict[str, str]] = {
        "id": '"user"',
        "time": '"decision"',
        "treatment": '"send"',
        "outcome": '"y"',
    }
    dataset: str = key(Str(), None, "a bundled dataset (hte-mrt datasets)")
    path: str = key(Str(), None, "a CSV file, relative to the plan file")
    id: str = key(_COL)
    time: str = key(_COL)
    treatment: str = key(_COL)
    outcome: str = key(_COL)
    prob: Any = key(_PROB, None)
    levels: dict = key(MapOf(_PROB, min_len=2), None)
    availability: str = key(_COL, None)
    cluster: str = key(_COL, None)
    missing: str = key(Str(("error", "drop")), None)

    @staticmethod
    def rules(raw, path, bad):
        return _data_source_rules(raw, path) + _prob_rules(raw, path, bad, "[data]")


def _data_source_rules(raw, path) -> list[Problem]:
    if ("dataset" in raw) == ("path" in raw):
        return [
            (
                path,
                "give exactly one of 'dataset' (a bundled dataset, e.g. dataset = \"heartsteps\") "
                "or 'path' (a CSV file, e.g. path = \"trial.csv\").",
            )
        ]
    return []


def _quoted_number(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    try:
        float(v.strip())
    except ValueError:
        return False
    return True


def _prob_rules(raw, path, bad, where) -> list[Problem]:
    quoted = _quoted_prob_rules(raw, path)
    if quoted:
        return quoted
    if "prob" in raw and "levels" in raw:
        return [
            (
                path,
                f"{where} gives both 'prob' and 'levels': keep 'levels' for a multi-level "
                "treatment, 'prob' for a binary one.",
            )
        ]
    if "prob" not in raw and "levels" not in raw:
        return [
            (
                path,
                f"{where} needs 'prob' (a number or a column) or 'levels' "
                "(a table of treatment levels and probabilities).",
            )
        ]
    return []


def _quoted_prob_rules(raw, path) -> list[Problem]:
    """A probability written as a quoted number ("0.6"): a number belongs without quotes."""
    quoted = [("prob",)] if _quoted_number(raw.get("prob")) else []
    levels = raw.get("levels")
    if isinstance(levels, dict):
        quoted += [("levels", k) for k, v in levels.items() if _quoted_number(v)]
    if quoted:
        out = []
        for sub in quoted:
            v = raw["prob"] if sub == ("prob",) else levels[sub[1]]
            out.append(
                (
                    (*path, *sub),
                    f"must be a probability strictly between 0 and 1 or the name of a column, "
                    f"got the quoted number {v!r}; write {v.strip()} without quotes.",
                )
            )
        return out
    return []


@dataclass(kw_only=True)
class MRTRoleOverride:
    """An estimand's ``data = { ... }``: role overrides for this estimand."""

    where = "the estimand's data"
    id: str = key(_COL, None)
    time: str = key(_COL, None)
    treatment: str = key(_COL, None)
    outcome: str = key(_COL, None)
    prob: Any = key(_PROB, None)
    levels: dict = key(MapOf(_PROB, min_len=2), None)
    availability: str = key(_COL, None)
    cluster: str = key(_COL, None)
    missing: str = key(Str(("error", "drop")), None)

    @staticmethod
    def rules(raw, path, bad):
        return _quoted_prob_rules(raw, path)


@dataclass(kw_only=True)
class EffectCurve:
    """``curve = { variable, from, to, points }``: an effect curve over a moderator."""

    where = "curve"
    example: ClassVar[dict[str, str]] = {"variable": '"day"', "from": "0", "to": "41"}
    variable: str = key(_COL)
    from_: float = key(Num())
    to: float = key(Num())
    points: int = key(Int(2), None)

    @staticmethod
    def rules(raw, path, bad):
        if {"from", "to"} & bad or not (_is_num(raw.get("from")) and _is_num(raw.get("to"))):
            return []
        if raw["to"] <= raw["from"]:
            return [((*path, "to"), f"must be larger than from = {raw['from']!r}.")]
        return []


@dataclass(kw_only=True)
class MRTEstimand:
    """One ``[[estimands]]`` table of an MRT plan (the keys every kind shares)."""

    where = "[[estimands]]"
    example: ClassVar[dict[str, str]] = {"name": '"marginal"'}
    name: str = key(Str())
    label: str = key(Str(), None)
    type: str = key(Str(MRT_ESTIMAND_TYPES), None)
    moderators: str = key(Formula(), "~ 1")
    controls: str = key(Formula(), "~ 1")
    lag: int = key(Int(0), 0)
    numerator: Any = key(_PROB, None)
    primary: bool = key(Bool(), False)
    curve: dict = key(Table(EffectCurve), None)
    lincombs: dict = key(MapOf(MapOf(Num(), min_len=1), min_len=1), None)
    data: dict = key(Table(MRTRoleOverride), None)

    @staticmethod
    def rules(raw, path, bad):
        out: list[Problem] = []
        t = raw.get("type")
        mods = raw.get("moderators", "~ 1")
        trivial = isinstance(mods, str) and mods.replace(" ", "") in ("~1", "~")
        if "type" in bad or t is None:
            return out
        if t == "marginal" and "moderators" not in bad and not trivial:
            out.append(
                (
                    (*path, "moderators"),
                    f'a marginal estimand has moderators = "~ 1", got '
                    f'{mods!r}; use type = "moderated" for an effect that varies.',
                )
            )
        if t in ("moderated", "time_varying") and "moderators" not in bad and trivial:
            out.append(
                (
                    (*path, "moderators"),
                    f"a {t} estimand needs a moderator, e.g. "
                    'moderators = "~ day" (or type = "marginal").',
                )
            )
        if t == "lagged" and "lag" not in bad and raw.get("lag", 0) < 1:
            out.append(
                (
                    (*path, "lag"),
                    "a lagged estimand needs lag >= 1 (the outcome that many "
                    "decision points after the treatment): add lag = 1.",
                )
            )
        if t != "lagged" and "lag" not in bad and raw.get("lag", 0) > 0:
            out.append(
                (
                    (*path, "lag"),
                    f"lag = {raw['lag']} makes this a lagged estimand: write "
                    f'type = "lagged" (or remove lag).',
                )
            )
        if "curve" in raw and "curve" not in bad and "moderators" not in bad and trivial:
            out.append(
                (
                    (*path, "curve"),
                    "a curve needs a moderator: set moderators = "
                    '"~ <curve variable>" or remove the curve.',
                )
            )
        return out


_CROSS_FIT = Int(2)


def _curve_needs_moderator(raw, path, bad) -> list[Problem]:
    mods = raw.get("moderators", "~ 1")
    trivial = isinstance(mods, str) and mods.replace(" ", "") in ("~1", "~")
    if "curve" in raw and "curve" not in bad and "moderators" not in bad and trivial:
        return [
            (
                (*path, "curve"),
                "a curve needs a moderator: set moderators = "
                '"~ <curve variable>" or remove the curve.',
            )
        ]
    return []


_SMALL_SAMPLE = AnyOf(
    (Bool(), Str(("auto",))),
    (lambda v: isinstance(v, bool), lambda v: True),
    label='true, false or "auto"',
)


@dataclass(kw_only=True)
class DistalEstimand:
    """``type = "distal"``: the distal causal excursion effect (``hm.dcee``; Qian 2025). The
    distal outcome is the estimand's ``data = { outcome = "<column>" }`` (else the plan's
    outcome), constant within participant."""

    where = 'a "distal" estimand'
    example: ClassVar[dict[str, str]] = {"name": '"distal"'}
    name: str = key(Str())
    label: str = key(Str(), None)
    type: str = key(Str(MRT_ESTIMAND_TYPES))
    moderators: str = key(Formula(), "~ 1", "f(S): moderators of the effect")
    controls: str = key(Formula(), "~ 1", "covariates of the nuisance outcome models")
    learner: str = key(Str(DISTAL_LEARNERS), "lm", "nuisance learner")
    cross_fit: int = key(_CROSS_FIT, None, "participant folds K (absent: no cross-fitting)")
    small_sample: Any = key(_SMALL_SAMPLE, "auto", "Mancl-DeRouen correction (false: as R)")
    primary: bool = key(Bool(), False)
    curve: dict = key(Table(EffectCurve), None)
    lincombs: dict = key(MapOf(MapOf(Num(), min_len=1), min_len=1), None)
    data: dict = key(Table(MRTRoleOverride), None)

    @staticmethod
    def rules(raw, path, bad):
        return _curve_needs_moderator(raw, path, bad)


@dataclass(kw_only=True)
class MediationEstimand:
    """``type = "mediation"``: natural direct and indirect excursion effects through a
    time-varying mediator (``hm.mcee``; Qian et al. 2025, arXiv:2506.20027)."""

    where = 'a "mediation" estimand'
    example: ClassVar[dict[str, str]] = {"name": '"mediation"', "mediator": '"m"'}
    name: str = key(Str())
    label: str = key(Str(), None)
    type: str = key(Str(MRT_ESTIMAND_TYPES))
    mediator: str = key(_COL, doc="the mediator column (often the proximal outcome)")
    moderators: str = key(Formula(), "~ 1", "f(t): moderators of the direct / indirect effects")
    controls: str = key(Formula(), "~ 1", "covariates of the nuisance models")
    learner: str = key(Str(DISTAL_LEARNERS), "glm", "nuisance learner")
    cross_fit: int = key(_CROSS_FIT, None, "participant folds K (absent: no cross-fitting)")
    small_sample: Any = key(_SMALL_SAMPLE, "auto", "Mancl-DeRouen correction (false: as R)")
    primary: bool = key(Bool(), False)
    curve: dict = key(Table(EffectCurve), None)
    lincombs: dict = key(MapOf(MapOf(Num(), min_len=1), min_len=1), None)
    data: dict = key(Table(MRTRoleOverride), None)

    @staticmethod
    def rules(raw, path, bad):
        out = _curve_needs_moderator(raw, path, bad)
        m, o = raw.get("mediator"), (raw.get("data") or {}).get("outcome")
        if "mediator" not in bad and isinstance(m, str) and isinstance(o, str) and m == o:
            out.append(
                (
                    (*path, "mediator"),
                    f"the mediator {m!r} is also the estimand's outcome: the outcome is the "
                    'distal outcome (data = { outcome = "<distal column>" }), the mediator the '
                    "column measured after each decision (often the proximal outcome).",
                )
            )
        return out


@dataclass(kw_only=True)
class EffectSizeEstimand:
    """``type = "effect_size"``: the standardized proximal effect over decision points with
    participant-bootstrap intervals (``hm.effect_size``; Luers et al. 2019)."""

    where = 'an "effect_size" estimand'
    example: ClassVar[dict[str, str]] = {"name": '"effect_size"'}
    name: str = key(Str())
    label: str = key(Str(), None)
    type: str = key(Str(MRT_ESTIMAND_TYPES))
    controls: str = key(Formula(), "~ 1", "covariates adjusting the effect at each decision")
    smooth: bool = key(Bool(), True, "LOESS-smooth effect and scale over decision points")
    span: float = key(Num(0, 1, open_min=True), 0.25, "LOESS span")
    n_boot: int = key(Int(0), 1000, "participant-bootstrap replicates")
    primary: bool = key(Bool(), False)
    data: dict = key(Table(MRTRoleOverride), None)


#: the schema of each estimand kind of an MRT plan (the proximal kinds share MRTEstimand)
DISTAL_SCHEMAS: dict[str, type] = {
    "distal": DistalEstimand,
    "mediation": MediationEstimand,
    "effect_size": EffectSizeEstimand,
}


@dataclass(kw_only=True)
class ModelSection:
    """``[model]`` of an MRT plan: the hierarchical Bayesian model."""

    where = "[model]"
    family: str = key(Str(("gaussian", "bernoulli")), "gaussian")
    random_slope: bool = key(Bool(), False)
    correlated: bool = key(Bool(), False)
    cluster_intercept: bool = key(Bool(), None)
    method: str = key(Str(("collapsed", "rowlevel")), "collapsed")
    priors: dict = key(
        MapOf(
            MapOf(
                AnyOf(
                    (Str(), Num(), ListOf(Num(), min_len=1)),
                    (lambda v: isinstance(v, str), _is_num, lambda v: isinstance(v, list)),
                    label="a distribution name or a number (or list of numbers)",
                )
            )
        ),
        None,
    )

    @staticmethod
    def rules(raw, path, bad):
        if raw.get("correlated") is True and raw.get("random_slope") is not True:
            return [((*path, "correlated"), "correlated = true needs random_slope = true.")]
        return []


@dataclass(kw_only=True)
class SamplerSection:
    """``[sampler]``: NUTS settings of the Bayesian fits."""

    where = "[sampler]"
    draws: int = key(Int(1), 1000)
    tune: int = key(Int(0), 1000)
    chains: int = key(Int(1), 4)
    target_accept: float = key(Num(0, 1, open_min=True, open_max=True), None)


@dataclass(kw_only=True)
class CrosscheckSection:
    """``[crosscheck]``: the comparison of the posterior with WCLS / EMEE."""

    where = "[crosscheck]"
    threshold: float = key(Num(0, open_min=True), 1.0)
    bootstrap: bool = key(Bool(), False)


@dataclass(kw_only=True)
class RandomizationTestSpec:
    where = "randomization_test"
    resamples: int = key(Int(1), 5000)


@dataclass(kw_only=True)
class PriorSensitivitySpec:
    where = "prior_sensitivity"
    scales: list = key(ListOf(Num(0, open_min=True), min_len=1), None)


def _bool_or(schema: type) -> AnyOf:
    return AnyOf(
        (Bool(), Table(schema)),
        (lambda v: not isinstance(v, dict), lambda v: isinstance(v, dict)),
        label="true, false or a table",
    )


@dataclass(kw_only=True)
class RobustnessSection:
    """``[robustness]``: the re-randomization test and the prior sensitivity."""

    where = "[robustness]"
    randomization_test: Any = key(_bool_or(RandomizationTestSpec), None)
    prior_sensitivity: Any = key(_bool_or(PriorSensitivitySpec), None)


@dataclass(kw_only=True)
class ReportSection:
    """``[report]``: where the report goes."""

    where = "[report]"
    out: str = key(Str(), None)


@dataclass(kw_only=True)
class CRTDataSection:
    """``[data]`` of a CRT plan: the data and its column roles."""

    where = "[data]"
    example: ClassVar[dict[str, str]] = {"cluster": '"site"', "arm": '"arm"', "outcome": '"y"'}
    dataset: str = key(Str(), None)
    path: str = key(Str(), None)
    cluster: str = key(_COL)
    arm: str = key(_COL)
    outcome: str = key(_COL)
    individual: list = key(ListOf(_COL, unique=True), None)
    cluster_covariates: list = key(ListOf(_COL, unique=True), None)
    baseline: str = key(_COL, None)
    categorical: list = key(ListOf(_COL, unique=True), None)
    id: str = key(_COL, None)
    missing: str = key(Str(("error", "drop", "indicator")), None)
    dropna_outcome: bool = key(Bool(), None)

    @staticmethod
    def rules(raw, path, bad):
        return _data_source_rules(raw, path)


@dataclass(kw_only=True)
class CATEEstimand:
    """One ``[[estimands]]`` table of a CRT plan (``type = "cate"``)."""

    where = "[[estimands]]"
    example: ClassVar[dict[str, str]] = {"name": '"cate"'}
    name: str = key(Str())
    label: str = key(Str(), None)
    type: str = key(Str(CRT_ESTIMAND_TYPES), None)
    subgroups: list = key(ListOf(_COL, unique=True), None)
    bands: dict = key(MapOf(ListOf(Num(), min_len=2, increasing=True)), None)
    blp: list = key(ListOf(_COL, min_len=1, unique=True), None)
    primary: bool = key(Bool(), False)
    calibration_splits: int = key(Int(0), 0)
    reference_ate: list = key(ListOf(Num(), min_len=3, max_len=3), None)
    reference_label: str = key(Str(), None)


class CurveTable(Spec):
    """A sample-size curve as a table, ``{ shape = "quadratic", initial, mean, turn_day }``:
    its arguments checked against the ``Curve.<shape>`` constructor's signature."""

    what = 'a curve table { shape = "constant" | "linear" | "quadratic", ... }'

    def check(self, v, path):
        return check_curve_args(v, path)


def _curve_spec(lo: float, hi: float, open_lo: bool) -> AnyOf:
    n = Num(lo, hi, open_min=open_lo)
    return AnyOf(
        (n, ListOf(n, min_len=1), CurveTable()),
        (_is_num, lambda v: isinstance(v, list), lambda v: isinstance(v, dict)),
        label=f"{n.what}, a list of them (one per day) or a curve table "
        '{ shape = "constant" | "linear" | "quadratic", ... }',
    )


@dataclass(kw_only=True)
class SampleSizeDesign:
    """``[design]`` of a sample-size plan: the MRT-SS calculator's inputs."""

    where = "[design]"
    example: ClassVar[dict[str, str]] = {
        "days": "42",
        "per_day": "5",
        "prob": "0.4",
        "availability": "0.5",
        "effect": "0.1",
    }
    days: int = key(Int(1))
    per_day: int = key(Int(1))
    prob: Any = key(_curve_spec(0, 1, True))
    availability: Any = key(_curve_spec(0, 1, True))
    effect: Any = key(_curve_spec(-10, 10, False))
    q: int = key(Int(0), 3)
    alpha: float = key(Num(0, 1, open_min=True, open_max=True), 0.05)
    power: float = key(Num(0, 1, open_min=True, open_max=True), 0.8)
    power_table: list = key(ListOf(Int(1), min_len=2, max_len=2), None)

    @staticmethod
    def rules(raw, path, bad):
        out: list[Problem] = []
        pt = raw.get("power_table")
        if "power_table" not in bad and isinstance(pt, list) and len(pt) == 2 and pt[0] > pt[1]:
            out.append(
                ((*path, "power_table"), f"must be [N_MIN, N_MAX] with N_MIN <= N_MAX, got {pt!r}.")
            )
        eff = raw.get("effect")
        shape = eff.get("shape") if isinstance(eff, dict) else "constant"
        p = {"constant": 1, "linear": 2, "quadratic": 3}.get(shape, 1)
        q = raw.get("q", 3)
        if (
            not out
            and not ({"power_table", "q", "effect"} & set(bad))
            and isinstance(pt, list)
            and len(pt) == 2
            and _is_num(q)
            and _is_num(pt[0])
            and pt[0] <= p + q
        ):
            out.append(
                (
                    (*path, "power_table"),
                    f"N_MIN = {pt[0]} is too small: the F test needs N > p + q = {p} + {q} "
                    f"(effect and control parameters); give N_MIN >= {p + q + 1}, e.g. "
                    f"power_table = [{p + q + 1}, {max(pt[1], p + q + 1)}].",
                )
            )
        if "effect" not in bad and _zero_effect(eff):
            out.append(
                (
                    (*path, "effect"),
                    "is zero, so no number of participants reaches the power; give the "
                    "smallest effect worth detecting, e.g. effect = 0.1.",
                )
            )
        return out


def _zero_effect(eff: Any) -> bool:
    if _is_num(eff):
        return eff == 0
    if isinstance(eff, list):
        return bool(eff) and all(_is_num(v) and v == 0 for v in eff)
    if isinstance(eff, dict):
        vals = [eff.get(k) for k in ("value", "mean", "initial") if k in eff]
        return bool(vals) and all(_is_num(v) and v == 0 for v in vals)
    return False


def check_curve_args(spec: dict, path: Path) -> list[Problem]:
    """A curve table's arguments against the ``Curve.<shape>`` constructor's signature."""
    from hte_mrt.design import Curve

    shapes = ("constant", "linear", "quadratic")
    if not isinstance(spec, dict):
        return [(path, f"must be a curve table, {_got(spec)}.")]
    if "shape" not in spec:
        return [(path, f"a curve table needs shape = {' | '.join(map(repr, shapes))}.")]
    shape = spec.get("shape")
    bad = Str(shapes).check(shape, (*path, "shape"))
    if bad:
        return bad
    params = {n: p for n, p in inspect.signature(getattr(Curve, shape)).parameters.items()}
    known = {"shape": (Str(), True)}
    for n, p in params.items():
        known[n] = (annotation_spec(p.annotation, n), p.default is inspect.Parameter.empty)
    return check_mapping(known, spec, path, where=f'a "{shape}" curve')


# ----------------------------------------------------------------------------- learners
#: ranges of the package's common parameter names (conventions.md)
PARAM_RANGES: dict[str, Spec] = {
    "draws": Int(1),
    "tune": Int(0),
    "chains": Int(1),
    "n_estimators": Int(1),
    "max_em_iter": Int(1),
    "n_boot": Int(0),
    "n_basis": Int(1),
    "num_particles": Int(1),
    "mu_trees": Int(1),
    "tau_trees": Int(1),
    "num_gfr": Int(0),
    "cv": Int(2),
    "min_samples_leaf": Int(1),
    "max_leaf_nodes": Int(2),
    "max_depth": Int(1),
    "min_data_in_leaf": Int(1),
    "seed": Int(0),
    "target_accept": Num(0, 1, open_min=True, open_max=True),
    "learning_rate": Num(0, open_min=True),
    "tol": Num(0, open_min=True),
    "prob_homogeneous": Num(0, 1),
    "ate_prior_sd": Num(0, open_min=True),
    "alpha": Num(0, 1, open_min=True, open_max=True),
    "tau_alpha": Num(0, open_min=True),
    "beta": Num(0, open_min=True),
    "tau_beta": Num(0, open_min=True),
}


def _split_top(s: str, sep: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in s:
        depth += ch in "[("
        depth -= ch in "])"
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [*parts, cur]


def annotation_spec(annotation: Any, name: str) -> Spec:
    """A spec from a constructor annotation (a string under ``from __future__ import
    annotations``): ``int``, ``float``, ``bool``, ``str``, ``Literal[...]``, ``Sequence[str]``,
    unions of these; ``None`` is dropped (TOML has no null: leave the key out). Unknown
    annotations accept anything. The ranges of common names (``PARAM_RANGES``) refine it."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    alts = [a.strip() for a in _split_top(text or "", "|") if a.strip() and a.strip() != "None"]
    specs: list[Spec] = []
    fits: list[Callable[[Any], bool]] = []
    for a in alts:
        if a == "bool":
            specs.append(Bool())
            fits.append(lambda v: isinstance(v, bool))
        elif a == "int":
            specs.append(PARAM_RANGES.get(name, Int()))
            fits.append(lambda v: isinstance(v, int) and not isinstance(v, bool))
        elif a == "float":
            rng = PARAM_RANGES.get(name)
            specs.append(rng if isinstance(rng, Num) else Num())
            fits.append(_is_num)
        elif a == "str":
            specs.append(Str())
            fits.append(lambda v: isinstance(v, str))
        elif a.startswith("Literal["):
            try:
                vals = ast.literal_eval("(" + a[len("Literal[") : -1] + ",)")
            except (ValueError, SyntaxError):
                return _ANY
            strs = tuple(v for v in vals if isinstance(v, str))
            specs.append(Str(strs))
            fits.append(lambda v: isinstance(v, str))
        elif re.match(r"(Sequence|list|tuple)\[str", a):
            specs.append(ListOf(Str()))
            fits.append(lambda v: isinstance(v, list))
        else:
            return _ANY
    if not specs:
        return _ANY
    # a float parameter also takes an integer value (handled by Num); order: exact fits first
    return AnyOf(tuple(specs), tuple(fits), label=" or ".join(s.what for s in specs))


class _Any(Spec):
    what = "any value"

    def check(self, v, path):
        return []


_ANY = _Any()


def learner_fields(cls: type) -> dict[str, tuple[Spec, bool]]:
    """``{parameter: (spec, required)}`` of a learner, from its constructor's signature."""
    sig = inspect.signature(cls.__init__)
    out = {}
    for n, p in sig.parameters.items():
        if n == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        out[n] = (annotation_spec(p.annotation, n), p.default is inspect.Parameter.empty)
    return out


def check_learners(raw: Any, path: Path) -> list[Problem]:
    """``[learners.<name>]`` tables: known learner names, parameters by the constructor."""
    from hte_mrt.errors import HteMrtError
    from hte_mrt.estimators.learners import LEARNERS

    if not isinstance(raw, dict) or not raw:
        return [
            (
                path,
                "a CRT plan needs at least one learner: add a [learners.bamm] table "
                f"(learners: {', '.join(LEARNERS)}).",
            )
        ]
    out: list[Problem] = []
    for name, params in raw.items():
        p = (*path, name)
        if name not in LEARNERS:
            out.append(
                (
                    p,
                    f"unknown learner '{name}'{suggest(name, LEARNERS)}; learners: "
                    f"{', '.join(LEARNERS)}.",
                )
            )
            continue
        cls = LEARNERS[name]
        probs = check_mapping(
            learner_fields(cls), params, p, where=f"[learners.{name}] ({cls.__name__})"
        )
        if not probs:
            try:  # the constructor's own checks (constructors only store and check)
                cls(**params)
            except (HteMrtError, TypeError, ValueError) as e:
                probs.append((p, f"{cls.__name__} rejects these parameters: {e}"))
        out += probs
    return out


# ----------------------------------------------------------------------------- whole plans
SECTIONS: dict[str, dict[str, tuple[Any, bool]]] = {
    "mrt": {
        "plan": (PlanSection, True),
        "data": (MRTDataSection, True),
        "estimands": (MRTEstimand, True),
        "model": (ModelSection, False),
        "sampler": (SamplerSection, False),
        "crosscheck": (CrosscheckSection, False),
        "robustness": (RobustnessSection, False),
        "report": (ReportSection, False),
    },
    "crt": {
        "plan": (PlanSection, True),
        "data": (CRTDataSection, True),
        "estimands": (CATEEstimand, True),
        # optional: without it the package default learner (bamm at its defaults) runs;
        # sampler settings go in each [learners.<name>]
        "learners": ("learners", False),
        "report": (ReportSection, False),
    },
    "samplesize": {
        "plan": (PlanSection, True),
        "design": (SampleSizeDesign, True),
        "report": (ReportSection, False),
    },
}
ESTIMAND_TYPES = {"mrt": MRT_ESTIMAND_TYPES, "crt": CRT_ESTIMAND_TYPES}


_ADD = {
    "plan": 'start the file with [plan], name = "...", design = "..." and seed = ...',
    "data": 'add [data] with dataset = "..." or path = "file.csv" and the column roles',
    "estimands": 'add [[estimands]] with at least name = "..."',
    "learners": "add one [learners.<name>] table per learner, e.g. [learners.bamm] (learners: {})",
    "design": "add [design] with days, per_day, prob, availability and effect",
}


def _add(section: str) -> str:
    if section == "learners":
        from hte_mrt.estimators.learners import LEARNERS

        return _ADD[section].format(", ".join(LEARNERS))
    return _ADD[section]


def kind_name(kind: str) -> str:
    """``"an MRT plan"``, ``"a CRT plan"``, ``"a sample-size plan"``."""
    return {"mrt": "an MRT plan", "crt": "a CRT plan"}.get(kind, "a sample-size plan")


def check_plan(raw: dict, kind: str) -> list[Problem]:
    """Every problem of a parsed plan of the given kind (``[plan] design``)."""
    out: list[Problem] = []
    sections = SECTIONS[kind]
    for name in raw:
        if name not in sections:
            other = [k for k in PLAN_KINDS if k != kind and name in SECTIONS[k]]
            hint = f" ([{name}] belongs to {kind_name(other[0])})" if other else ""
            if kind == "crt" and name == "sampler":
                hint = " (give draws, tune and chains in each Bayesian [learners.<name>] table)"
            out.append(
                (
                    (name,),
                    f"unknown section [{name}] in {kind_name(kind)}{hint}"
                    f"{suggest(name, sections)}; sections: {', '.join(sections)}.",
                )
            )
    for name, (schema, required) in sections.items():
        if name not in raw:
            if required:
                what = "[[estimands]]" if name == "estimands" else f"[{name}]"
                out.append(((name,), f"{kind_name(kind)} needs a {what} table: {_add(name)}."))
            continue
        if name == "plan":
            continue  # checked by load_plan before the kind is known
        if name == "learners":
            out += check_learners(raw[name], (name,))
        elif name == "estimands":
            out += check_estimands(raw[name], kind)
        else:
            out += check_table(schema, raw[name], (name,))
    return out


def check_estimands(ests: Any, kind: str) -> list[Problem]:
    schema = MRTEstimand if kind == "mrt" else CATEEstimand
    if not isinstance(ests, list) or not ests or not all(isinstance(e, dict) for e in ests):
        return [
            (
                ("estimands",),
                "estimands must be [[estimands]] tables (at least one), e.g. "
                '[[estimands]] then name = "marginal".',
            )
        ]
    out: list[Problem] = []
    types = ESTIMAND_TYPES[kind]
    other = "crt" if kind == "mrt" else "mrt"
    seen: set = set()
    primaries = 0
    for i, e in enumerate(ests):
        path = ("estimands", i)
        t = e.get("type")
        if t is not None and t not in types and isinstance(t, str):
            if t in ESTIMAND_TYPES[other]:
                out.append(
                    (
                        (*path, "type"),
                        f"'{t}' is {'an' if other == 'mrt' else 'a'} {other.upper()} estimand, and "
                        f"this is "
                        f"{kind_name(kind)}: use type = {' | '.join(map(repr, types))}.",
                    )
                )
                continue
        out += check_table(DISTAL_SCHEMAS.get(t, schema) if kind == "mrt" else schema, e, path)
        n = e.get("name")
        if isinstance(n, str):
            if n in seen:
                out.append(
                    (
                        (*path, "name"),
                        f"estimand name {n!r} is used twice: give each estimand its own name.",
                    )
                )
            seen.add(n)
        primaries += e.get("primary") is True
    if primaries > 1:
        out.append((("estimands",), f"{primaries} estimands say primary = true: mark one."))
    return out
