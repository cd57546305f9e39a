"""Validation checks shared by the MRT and CRT data models (one wording, one behaviour)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hte_mrt._util import first_ids, fmt_ids
from hte_mrt.errors import MissingColumnError, OutcomeTypeError


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
