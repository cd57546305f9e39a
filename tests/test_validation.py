"""Validation of the MRT data model: one test per error, checking type and message.

Every error must (a) be the documented subclass of :class:`hte_mrt.errors.HteMrtError`, and (b)
name the offending column and, where rows are at fault, an offending participant id.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from hte_mrt import MRTData, wcls
from hte_mrt.errors import (
    DataError,
    DesignError,
    DuplicateRowError,
    HteMrtError,
    MissingColumnError,
    MissingValueError,
    OutcomeTypeError,
    ProbabilityError,
    TreatmentError,
)

N_ID, N_T = 6, 10
LEVELS = {"none": "p_none", "walk": "p_walk", "sed": "p_sed"}
BINARY = {"id": "id", "time": "t", "treatment": "A", "outcome": "y", "prob": "p",
          "availability": "I"}  # fmt: skip
CATEGORICAL = {"id": "id", "time": "t", "treatment": "arm", "outcome": "y", "levels": LEVELS,
               "availability": "I"}  # fmt: skip


@pytest.fixture
def frame() -> pd.DataFrame:
    """6 participants x 10 decision points, some unavailable (treatment 0 / 'none' there)."""
    rng = np.random.default_rng(20240601)
    n = N_ID * N_T
    avail = (rng.random(n) < 0.8).astype(int)
    avail[[0, 1]] = 1  # participant 1 is available at t = 0, 1 (used by several tests)
    avail[2] = 0  # ... and unavailable at t = 2
    a = np.where(avail == 1, rng.binomial(1, 0.6, n), 0)
    arm = np.where(avail == 1, rng.choice(["none", "walk", "sed"], n, p=[0.5, 0.25, 0.25]), "none")
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "id": np.repeat(np.arange(1, N_ID + 1), N_T),
            "t": np.tile(np.arange(N_T), N_ID),
            "A": a,
            "p": 0.6,
            "I": avail,
            "y": 1.0 + 0.5 * x + 0.3 * a + rng.normal(size=n),
            "x": x,
            "y2": rng.normal(size=n),
            "y3": rng.normal(size=n),
            "arm": arm,
            "p_none": 0.5,
            "p_walk": 0.25,
            "p_sed": 0.25,
        }
    )


def raises(exc: type[HteMrtError], frame: pd.DataFrame, spec: dict, **kw) -> str:
    """Build MRTData, expect ``exc`` and return its message (after hierarchy checks)."""
    with pytest.raises(exc) as info:
        MRTData(frame, **{**spec, **kw})
    err = info.value
    assert isinstance(err, HteMrtError)
    return str(err)


def row_of(frame: pd.DataFrame, pid: int, t: int) -> int:
    """Index label of participant ``pid`` at decision point ``t``."""
    return int(frame.index[(frame["id"] == pid) & (frame["t"] == t)][0])


def names_column(msg: str, col: str) -> bool:
    return f"'{col}'" in msg


# --------------------------------------------------------------------------- sanity
def test_fixture_is_valid(frame):
    data = MRTData(frame, **BINARY)
    assert data.n_participants == N_ID
    cat = MRTData(frame, **CATEGORICAL)
    assert cat.level_values == ["none", "walk", "sed"]


def test_hierarchy():
    for exc in (MissingColumnError, MissingValueError, ProbabilityError, TreatmentError,
                DuplicateRowError, OutcomeTypeError):  # fmt: skip
        assert issubclass(exc, DataError)
        assert issubclass(exc, HteMrtError)
    assert issubclass(DesignError, HteMrtError)
    assert issubclass(MissingColumnError, KeyError)


# --------------------------------------------------------------------------- 1. missing columns
@pytest.mark.parametrize(
    ("role", "column"),
    [
        ("id", "id"),
        ("time", "t"),
        ("treatment", "A"),
        ("outcome", "y"),
        ("availability", "I"),
        ("prob", "p"),
    ],
)
def test_missing_column(frame, role, column):
    msg = raises(MissingColumnError, frame.drop(columns=column), BINARY)
    assert names_column(msg, column)
    assert "not in the data" in msg


def test_missing_level_probability_column(frame):
    msg = raises(MissingColumnError, frame.drop(columns="p_walk"), CATEGORICAL)
    assert names_column(msg, "p_walk")
    assert "'walk'" in msg


def test_missing_column_suggests_case_variant(frame):
    msg = raises(MissingColumnError, frame.rename(columns={"y": "Y"}), BINARY)
    assert names_column(msg, "y")
    assert "Did you mean 'Y'" in msg


def test_missing_column_attribute(frame):
    with pytest.raises(MissingColumnError) as info:
        MRTData(frame.drop(columns="A"), **BINARY)
    assert info.value.column == "A"


# --------------------------------------------------------------------------- 2. NaN in roles
@pytest.mark.parametrize("column", ["id", "t"])
def test_nan_in_id_or_time(frame, column):
    df = frame.astype({column: float})
    df.loc[row_of(frame, 3, 4), column] = np.nan
    msg = raises(MissingValueError, df, BINARY)
    assert names_column(msg, column)
    assert "1 missing value" in msg
    assert str(row_of(frame, 3, 4)) in msg  # the input row is reported


def test_nan_treatment_on_available_row(frame):
    df = frame.astype({"A": float})
    df.loc[row_of(frame, 2, 0), "A"] = np.nan
    df.loc[row_of(frame, 2, 0), "I"] = 1
    msg = raises(MissingValueError, df, BINARY)
    assert names_column(msg, "A")
    assert "id=2 t=0" in msg


def test_nan_treatment_on_unavailable_row_is_accepted(frame):
    df = frame.astype({"A": float})
    df.loc[row_of(frame, 1, 2), "A"] = np.nan  # I = 0 there
    data = MRTData(df, **BINARY)
    assert data.a_index[(data.frame["id"] == 1).to_numpy() & (data.frame["t"] == 2).to_numpy()] == 0


def test_nan_probability_on_available_row(frame):
    df = frame.copy()
    df.loc[row_of(frame, 4, 1), ["p", "I"]] = [np.nan, 1]
    df.loc[row_of(frame, 4, 1), "A"] = 0
    msg = raises(MissingValueError, df, BINARY)
    assert names_column(msg, "p")
    assert "id=4 t=1" in msg


def test_nan_probability_on_unavailable_row_is_accepted(frame):
    df = frame.copy()
    df.loc[row_of(frame, 1, 2), "p"] = np.nan
    MRTData(df, **BINARY)


def test_nan_availability(frame):
    df = frame.astype({"I": float})
    df.loc[row_of(frame, 5, 7), "I"] = np.nan
    msg = raises(MissingValueError, df, BINARY)
    assert names_column(msg, "I")
    assert "id=5 t=7" in msg


# --------------------------------------------------------------------------- 3. NaN outcome
def _nan_outcomes(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[int]]:
    """NaN outcome on two available rows and on one unavailable row."""
    df = frame.copy()
    rows = [row_of(frame, 1, 0), row_of(frame, 1, 1)]  # available
    df.loc[rows, "y"] = np.nan
    df.loc[row_of(frame, 1, 2), "y"] = np.nan  # unavailable: kept, not an error
    return df, rows


def test_nan_outcome_on_available_row(frame):
    df, _ = _nan_outcomes(frame)
    msg = raises(MissingValueError, df, BINARY)
    assert names_column(msg, "y")
    assert "2 available decision point" in msg
    assert "id=1 t=0" in msg
    assert "missing='drop'" in msg


def test_nan_outcome_dropped_and_listed(frame):
    df, rows = _nan_outcomes(frame)
    data = MRTData(df, **BINARY, missing="drop")
    ex = data.exclusions
    assert list(ex.columns) == ["row", "id", "t", "reason"]
    assert len(ex) == 2
    assert sorted(ex["row"]) == sorted(rows)
    assert list(ex["id"]) == [1, 1]
    assert sorted(ex["t"]) == [0, 1]
    assert ex["reason"].str.contains("'y'").all()
    assert len(data.frame) == len(frame) - 2
    summary = data.describe()
    assert len(summary.exclusions) == 2
    pd.testing.assert_frame_equal(summary.exclusions, ex)
    assert re.search(r"rows excluded\s+2", str(summary))
    # the unavailable NaN outcome stays, and the analysis runs
    assert ((data.frame["id"] == 1) & (data.frame["t"] == 2)).any()
    fit = wcls(data, "~ 1")
    assert np.all(np.isfinite(fit.theta))


def test_missing_argument_checked(frame):
    msg = raises(DataError, frame, BINARY, missing="impute")
    assert "missing" in msg


# --------------------------------------------------------------------------- 4. probability range
@pytest.mark.parametrize("value", [0.0, 1.0, 1.2, -0.1])
def test_probability_outside_unit_interval(frame, value):
    df = frame.copy()
    df.loc[row_of(frame, 3, 0), "p"] = value
    df.loc[row_of(frame, 3, 0), ["I", "A"]] = [1, 0]
    msg = raises(ProbabilityError, df, BINARY)
    assert names_column(msg, "p")
    assert "id=3 t=0" in msg
    assert "(0, 1)" in msg


@pytest.mark.parametrize("value", [0.0, 1.2])
def test_probability_constant_outside_unit_interval(frame, value):
    msg = raises(ProbabilityError, frame, BINARY, prob=value)
    assert "(0, 1)" in msg
    assert repr(value) in msg


def test_probability_zero_on_unavailable_row_is_accepted(frame):
    df = frame.copy()
    unavailable = df["I"] == 0
    assert unavailable.sum() > 0
    df.loc[unavailable, "p"] = 0.0
    data = MRTData(df, **BINARY)
    p1 = data.probs[:, 1]
    assert np.all((p1[data.available] > 0) & (p1[data.available] < 1))
    assert np.all(p1[~data.available] == 0.0)  # kept as stated, never used


def test_level_probability_outside_unit_interval(frame):
    df = frame.copy()
    df.loc[row_of(frame, 2, 0), ["p_sed", "I"]] = [1.5, 1]
    msg = raises(ProbabilityError, df, CATEGORICAL)
    assert names_column(msg, "p_sed")
    assert "id=2 t=0" in msg


# --------------------------------------------------------------------------- 5. probabilities sum
def test_level_probabilities_do_not_sum_to_one(frame):
    df = frame.copy()
    df.loc[row_of(frame, 6, 0), ["p_none", "I"]] = [0.4, 1]  # 0.4 + 0.25 + 0.25 = 0.9
    msg = raises(ProbabilityError, df, CATEGORICAL)
    for col in ("p_none", "p_walk", "p_sed"):
        assert names_column(msg, col)
    assert "sum to 1" in msg
    assert "id=6 t=0" in msg
    assert "0.9" in msg


def test_level_probabilities_unavailable_rows_need_not_sum(frame):
    df = frame.copy()
    df.loc[df["I"] == 0, "p_none"] = 0.9
    MRTData(df, **CATEGORICAL)


# --------------------------------------------------------------------------- 6. unknown levels
def test_binary_treatment_not_0_1(frame):
    df = frame.copy()
    df.loc[row_of(frame, 4, 0), ["A", "I"]] = [2, 1]
    msg = raises(TreatmentError, df, BINARY)
    assert names_column(msg, "A")
    assert "0/1" in msg
    assert "id=4 t=0 A=2" in msg


def test_categorical_treatment_unknown_level(frame):
    df = frame.copy()
    df.loc[row_of(frame, 5, 0), ["arm", "I"]] = ["run", 1]
    msg = raises(TreatmentError, df, CATEGORICAL)
    assert names_column(msg, "arm")
    assert "id=5 t=0 arm=run" in msg
    assert "'none', 'walk', 'sed'" in msg


# --------------------------------------------------------------------------- 7. treated, unavail.
def test_binary_treatment_while_unavailable(frame):
    df = frame.copy()
    df.loc[row_of(frame, 1, 2), "A"] = 1  # I = 0 there
    msg = raises(TreatmentError, df, BINARY)
    assert names_column(msg, "A")
    assert names_column(msg, "I")
    assert "unavailable" in msg
    assert "id=1 t=2" in msg


def test_categorical_treatment_while_unavailable(frame):
    df = frame.copy()
    df.loc[row_of(frame, 1, 2), "arm"] = "sed"
    msg = raises(TreatmentError, df, CATEGORICAL)
    assert names_column(msg, "arm")
    assert "id=1 t=2" in msg


# --------------------------------------------------------------------------- 8. duplicates
def test_duplicated_decision_point(frame):
    df = pd.concat([frame, frame.iloc[[row_of(frame, 3, 5)]]], ignore_index=True)
    msg = raises(DuplicateRowError, df, BINARY)
    assert names_column(msg, "id")
    assert names_column(msg, "t")
    assert "id=3 t=5" in msg
    assert "2 rows" in msg


# --------------------------------------------------------------------------- 9. outcome type
def test_non_numeric_outcome(frame):
    df = frame.copy()
    df["y"] = df["y"].map(lambda v: f"{v:.3f}")
    df.loc[row_of(frame, 2, 3), "y"] = "high"
    msg = raises(OutcomeTypeError, df, BINARY)
    assert names_column(msg, "y")
    assert "numeric" in msg
    assert "y=high" in msg
    assert "id=2 t=3" in msg


def test_numbers_stored_as_text_outcome(frame):
    df = frame.assign(y=frame["y"].map(lambda v: f"{v:.3f}"))
    msg = raises(OutcomeTypeError, df, BINARY)
    assert names_column(msg, "y")
    assert "stored as text" in msg
    assert "e.g. ." not in msg


def test_non_numeric_probability(frame):
    df = frame.astype({"p": object})
    df.loc[row_of(frame, 3, 1), ["p", "I"]] = ["half", 1]
    msg = raises(ProbabilityError, df, BINARY)
    assert names_column(msg, "p")
    assert "numeric" in msg
    assert "id=3 t=1 p=half" in msg


def test_non_numeric_time(frame):
    df = frame.assign(t=frame["t"].map(lambda v: f"day{v}"))
    msg = raises(DataError, df, BINARY)
    assert names_column(msg, "t")
    assert "numeric" in msg


# --------------------------------------------------------------------------- 10. formula columns
@pytest.mark.parametrize(
    ("moderators", "controls", "role"),
    [("~ x + z", "~ 1", "moderator"), ("~ x", "~ y2 + w", "control")],
)
def test_formula_names_absent_column(frame, moderators, controls, role):
    data = MRTData(frame, **BINARY)
    with pytest.raises(MissingColumnError) as info:
        wcls(data, moderators, controls)
    err = info.value
    assert isinstance(err, DataError) and isinstance(err, HteMrtError)
    absent = "z" if role == "moderator" else "w"
    assert err.column == absent
    msg = str(err)
    assert f"'{absent}'" in msg
    assert role in msg


@pytest.mark.parametrize("moderators", ["~ center(z)", "~ scale(z)", "~ bs(z, df=3)"])
def test_formula_absent_column_inside_stateful_transform(frame, moderators):
    data = MRTData(frame, **BINARY)
    with pytest.raises(MissingColumnError, match="'z'") as info:
        wcls(data, moderators)
    assert info.value.column == "z"


def test_numerator_column_absent(frame):
    data = MRTData(frame, **BINARY)
    with pytest.raises(MissingColumnError, match="'p_tilde'"):
        wcls(data, "~ 1", numerator="p_tilde")


# --------------------------------------------------------------------------- 11. too few ids
def test_fewer_participants_than_parameters(frame):
    data = MRTData(frame[frame["id"] <= 3], **BINARY)
    with pytest.raises(DesignError) as info:
        wcls(data, "~ x", "~ y2 + y3")
    msg = str(info.value)
    assert isinstance(info.value, HteMrtError)
    assert "3 participants" in msg
    assert "6 parameters" in msg  # 1 + y2 + y3 + x control, 1 + x effect


def test_enough_participants_fits(frame):
    fit = wcls(MRTData(frame, **BINARY), "~ x", "~ y2")
    assert fit.n == N_ID
    assert fit.df == N_ID - 5


# --------------------------------------------------------------------------- 12. unsorted input
def test_unsorted_input_is_sorted(frame):
    shuffled = frame.sample(frac=1.0, random_state=7)
    assert not shuffled[["id", "t"]].equals(frame[["id", "t"]])
    data = MRTData(shuffled, **BINARY)
    key = data.frame[["id", "t"]]
    pd.testing.assert_frame_equal(
        key.reset_index(drop=True),
        key.sort_values(["id", "t"]).reset_index(drop=True),
    )
    # '_row' points back at the user's (shuffled) rows
    assert (shuffled["y"].to_numpy()[data.frame["_row"]] == data.frame["y"].to_numpy()).all()
    ref = MRTData(frame, **BINARY)
    fit, fit_ref = wcls(data, "~ x", "~ y2"), wcls(ref, "~ x", "~ y2")
    np.testing.assert_allclose(fit.theta, fit_ref.theta, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fit.cov_theta, fit_ref.cov_theta, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- 13. NaN moderator
@pytest.mark.parametrize(
    ("column", "moderators", "controls"),
    [("x", "~ x", "~ 1"), ("y2", "~ 1", "~ y2"), ("x", "~ center(x)", "~ 1"),
     ("y2", "~ 1", "~ scale(y2)")],
)  # fmt: skip
def test_nan_in_formula_column_on_analysed_row(frame, column, moderators, controls):
    df = frame.copy()
    df.loc[row_of(frame, 2, 1), [column, "I"]] = [np.nan, 1]
    data = MRTData(df, **BINARY)
    with pytest.raises(MissingValueError) as info:
        wcls(data, moderators, controls)
    msg = str(info.value)
    assert names_column(msg, column)
    assert "id=2 t=1" in msg
    assert info.value.column == column


def test_nan_in_formula_column_on_unavailable_row_is_ignored(frame):
    df = frame.copy()
    df.loc[row_of(frame, 1, 2), "x"] = np.nan  # I = 0 there: not analysed
    wcls(MRTData(df, **BINARY), "~ x")


# --------------------------------------------------------------------------- 14. availability
@pytest.mark.parametrize("value", [2, -1, 0.5])
def test_availability_not_binary(frame, value):
    df = frame.astype({"I": float})
    df.loc[row_of(frame, 6, 9), "I"] = value
    msg = raises(DataError, df, BINARY)
    assert names_column(msg, "I")
    assert "0/1" in msg
    assert "id=6 t=9" in msg


# --------------------------------------------------------------------------- 15. numerator
def test_varying_probability_needs_numerator(frame):
    df = frame.copy()
    df["p"] = np.where(df["t"] < N_T // 2, 0.4, 0.6)
    data = MRTData(df, **BINARY)
    with pytest.raises(DesignError, match="numerator") as info:
        wcls(data, "~ 1")
    assert isinstance(info.value, HteMrtError)
    fit = wcls(data, "~ 1", numerator=0.5)
    assert np.all(np.isfinite(fit.theta))


def test_constant_probability_needs_no_numerator(frame):
    df = frame.copy()
    df.loc[df["I"] == 0, "p"] = 0.9  # unavailable rows do not count
    wcls(MRTData(df, **BINARY), "~ 1")


# --------------------------------------------------------------------------- describe()
def test_describe_binary(frame):
    data = MRTData(frame, **BINARY)
    s = data.describe()
    avail = frame["I"] == 1
    assert s.n_participants == N_ID
    assert s.n_rows == len(frame)
    assert s.decision_points == (0.0, N_T - 1.0)
    assert (s.decisions_per_participant == N_T).all()
    assert s.availability_rate == pytest.approx(avail.mean())
    rand = s.randomization
    assert list(rand["level"]) == ["1"]
    assert rand["n_available"].iloc[0] == avail.sum()
    assert rand["observed"].iloc[0] == pytest.approx(frame.loc[avail, "A"].mean(), abs=1e-4)
    assert rand["stated"].iloc[0] == pytest.approx(0.6)
    assert len(s.exclusions) == 0
    text = str(s)
    assert re.search(rf"participants\s+{N_ID}\b", text)
    assert re.search(rf"availability rate\s+{avail.mean():.3f}", text)
    assert "observed vs stated" in text
    assert re.search(r"rows excluded\s+0", text)


def test_describe_categorical(frame):
    data = MRTData(frame, **CATEGORICAL)
    rand = data.describe().randomization.set_index("level")
    avail = frame["I"] == 1
    assert list(rand.index) == ["none", "walk", "sed"]
    for lev, p in [("none", 0.5), ("walk", 0.25), ("sed", 0.25)]:
        observed = (frame.loc[avail, "arm"] == lev).mean()
        assert rand.loc[lev, "observed"] == pytest.approx(observed, abs=1e-4)
        assert rand.loc[lev, "stated"] == pytest.approx(p)
