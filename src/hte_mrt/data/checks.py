"""Validation checks shared by the MRT and CRT data models (one wording, one behaviour)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hte_mrt._util import first_ids, fmt_ids
from hte_mrt.errors import DesignError, MissingColumnError, MissingValueError, OutcomeTypeError


def require_column(frame: pd.DataFrame, col: str, role: str) -> None:
    """Raise :class:`MissingColumnError` naming ``col`` and its role (with a spelling hint)."""
    if not isinstance(col, str) or col not in frame.columns:
        close = [c for c in frame.columns if str(c).lower() == str(col).lower()]
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise MissingColumnError(
            f"Column '{col}' ({role}) is not in the data.{hint} Available columns: "
            f"{', '.join(map(str, frame.columns[:20]))}"
            f"{' ...' if frame.shape[1] > 20 else ''}.",
            column=str(col),
        )


def numeric_outcome(df: pd.DataFrame, outcome: str, key: list[str]) -> np.ndarray:
    """The outcome as float (NaN kept); :class:`OutcomeTypeError` if it is not numeric."""
    y_raw = df[outcome]
    if pd.api.types.is_complex_dtype(y_raw):
        raise OutcomeTypeError(
            f"Column '{outcome}' (outcome) holds complex numbers (dtype {y_raw.dtype}); an "
            "outcome must be real. Keep the real part (np.real) or the modulus (np.abs), or "
            "choose the right column.",
            column=outcome,
        )
    if not (pd.api.types.is_numeric_dtype(y_raw) or pd.api.types.is_bool_dtype(y_raw)):
        conv = pd.to_numeric(y_raw, errors="coerce")
        bad = (conv.isna() & y_raw.notna()).to_numpy()
        ex = first_ids(df, bad, [*key, outcome])
        what = (
            f"{bad.sum()} non-numeric value(s), e.g. {fmt_ids(ex, [*key, outcome])}"
            if bad.any()
            else "numbers stored as text"
        )
        raise OutcomeTypeError(
            f"Column '{outcome}' (outcome) must be numeric, got dtype {y_raw.dtype} with "
            f"{what}. Convert it (pd.to_numeric) or choose the right column.",
            column=outcome,
            n_rows=int(bad.sum()),
            examples=ex,
        )
    return y_raw.to_numpy(dtype=float, na_value=np.nan)


def excluded_rows(df: pd.DataFrame, mask: np.ndarray, key: list[str], reason: str) -> pd.DataFrame:
    """The rows of ``df[mask]`` as an exclusion record: input row, key columns, reason."""
    ex = df.loc[mask, ["_row", *key]].rename(columns={"_row": "row"})
    ex["reason"] = reason
    return ex


def exclusions_table(parts: list[pd.DataFrame], key: list[str]) -> pd.DataFrame:
    """All exclusion records (an empty, correctly labelled table when there are none)."""
    if not parts:
        return pd.DataFrame(columns=["row", *key, "reason"])
    return pd.concat(parts, ignore_index=True)


# ----------------------------------------------------------------------------- argument checks
# Booleans must be bool and numbers must be numbers: a string such as "no" or "200" is refused
# (it would otherwise be taken at its truth value, or fail mid-run).


def check_bool(name: str, value: object, *, allow: tuple = ()) -> object:
    """``value`` if it is True/False (or one of ``allow``, e.g. ``"auto"``), else
    :class:`DesignError` naming ``name``."""
    from hte_mrt.errors import DesignError

    if isinstance(value, bool | np.bool_):
        return bool(value)
    if any(value is a or (isinstance(a, str) and value == a) for a in allow):
        return value
    extra = "".join(f" or {a!r}" for a in allow)
    raise DesignError(
        f"{name} must be True or False{extra}, got {value!r}"
        + (
            " (a string, not a bool: write the bare True or False)"
            if isinstance(value, str)
            else ""
        )
        + "."
    )


def check_int(
    name: str, value: object, minimum: int | None = None, *, none_ok: bool = False
) -> int | None:
    """``value`` as a Python int if it is an integer (not a bool, a float or a string) of at least
    ``minimum``, else :class:`DesignError` naming ``name``."""
    from hte_mrt.errors import DesignError

    if value is None and none_ok:
        return None
    floor = "" if minimum is None else f" >= {minimum}"
    orn = " or None" if none_ok else ""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        hint = ""
        if isinstance(value, str):
            hint = " (a string: pass the number itself, e.g. 200 rather than '200')"
        elif isinstance(value, float | np.floating):
            hint = " (fractional counts are not rounded: pass a whole number)"
        raise DesignError(f"{name} must be an integer{floor}{orn}, got {value!r}{hint}.")
    if minimum is not None and value < minimum:
        raise DesignError(f"{name} must be an integer{floor}{orn}, got {value!r}.")
    return int(value)


def check_number(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = True,
    high_open: bool = True,
    example: str | None = None,
) -> float:
    """``value`` as a float if it is a finite real number within the bounds (open by default),
    else :class:`DesignError` naming ``name``."""
    from hte_mrt.errors import DesignError

    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    low_s = "-inf" if low is None else f"{low:g}"
    high_s = "inf" if high is None else f"{high:g}"
    rng = f" in {lo}{low_s}, {high_s}{hi}"
    eg = f" such as {example}" if example else ""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        hint = " (a string: pass the number itself)" if isinstance(value, str) else ""
        raise DesignError(f"{name} must be a number{rng}{eg}, got {value!r}{hint}.")
    v = float(value)
    if not np.isfinite(v):
        raise DesignError(f"{name} must be a finite number{rng}{eg}, got {value!r}.")
    bad = False
    if low is not None:
        bad |= v < low or (low_open and v == low)
    if high is not None:
        bad |= v > high or (high_open and v == high)
    if bad:
        raise DesignError(f"{name} must be a number{rng}{eg}, got {value!r}.")
    return v


def check_setting(where: str, kind: str, name: str, value: Any, **kw: Any) -> Any:
    """:func:`check_int` (``kind="int"``, ``minimum=`` in ``kw``, default 1) or
    :func:`check_number` (any other kind, bounds in ``kw``) of a simulation setting, the
    message prefixed with ``where`` (the class), e.g. ``"DistalSimulation: prob must be ..."``."""
    try:
        if kind == "int":
            return check_int(name, value, kw.get("minimum", 1))
        return check_number(name, value, **kw)
    except DesignError as e:
        raise DesignError(f"{where}: {e}") from None


def check_seed(value: object, name: str = "seed") -> object:
    """A seed: a non-negative integer, None (fresh entropy), or a NumPy SeedSequence /
    Generator."""
    if isinstance(value, np.random.SeedSequence | np.random.Generator):
        return value
    return check_int(name, value, 0, none_ok=True)


def check_path(path: object, name: str = "path") -> None:
    """A file path (str or os.PathLike), else :class:`DataError` naming ``name``."""
    import os

    from hte_mrt.errors import DataError

    if not isinstance(path, str | os.PathLike):
        raise DataError(
            f"{name} must be the path of a file written by to_netcdf() (a str or Path), got "
            f"{type(path).__name__}."
        )


def check_grid(grid: object) -> None:
    """A grid of moderator values for effect curves: a non-empty pandas DataFrame."""
    if not isinstance(grid, pd.DataFrame):
        raise DesignError(
            f"grid must be a pandas DataFrame of moderator values (one column per moderator, "
            f"e.g. pd.DataFrame({{'day': range(42)}})), got {type(grid).__name__}."
        )
    if len(grid) == 0:
        raise DesignError("grid has no rows: give at least one row of moderator values.")
    for col in grid.columns:
        values = grid[col]
        if isinstance(values, pd.DataFrame):
            raise DesignError(
                f"grid has more than one column named {col!r}: rename or drop the copies."
            )
        missing = values.isna().to_numpy()
        if missing.any():
            raise MissingValueError(
                f"grid column {col!r} has {int(missing.sum())} missing value(s) (first in row "
                f"{grid.index[missing][0]!r}): give a value of every moderator on every grid "
                "row (drop those rows or fill them).",
                column=str(col),
                n_rows=int(missing.sum()),
            )
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            inf = ~np.isfinite(values.to_numpy(dtype=float))
            if inf.any():
                raise DesignError(
                    f"grid column {col!r} has {int(inf.sum())} infinite value(s) (first in row "
                    f"{grid.index[inf][0]!r}): give finite moderator values (drop those rows "
                    "or replace them)."
                )
