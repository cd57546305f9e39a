"""TASSH: Task Shifting and Blood Pressure Control in Ghana, a cluster-randomized trial (CC0).

757 patients with hypertension in 32 community health centres, 16 centres per arm (389 control,
368 intervention: nurse-led task shifting plus health insurance). Primary outcome: change in
systolic blood pressure (SBP) from baseline to 12 months. Published adjusted difference
-3.6 mmHg (95% CI -6.1 to -0.5).

The shipped file (``data/files/tassh_ghana.csv.gz``) keeps the values exactly as published, with
their missing-value codes; :func:`load_tassh` turns the documented codes into NaN and derives the
analysis columns (see :data:`TASSH_COLUMNS`); :func:`tassh` builds the :class:`CRTData`.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

import numpy as np
import pandas as pd

from hte_mrt._util import first_ids, fmt_ids
from hte_mrt.data.crt import CRTData, MissingPolicy
from hte_mrt.errors import DataError, UncleanedCodeError

TASSH_CITATION = (
    "Ogedegbe G, Plange-Rhule J, Gyamfi J, et al. Health insurance coverage with or without a "
    "nurse-led task shifting strategy for hypertension control: a pragmatic cluster randomized "
    "trial in Ghana. PLoS Med 2018;15(5):e1002561. Data: Dryad doi:10.5061/dryad.16c9m51 (CC0)."
)

ID, CLUSTER, ARM, OUTCOME, BASELINE = (
    "Participant_ID",
    "Site_Number",
    "Trt_or_Ctrl",
    "sbp_change_12m",
    "sbp_baseline",
)

#: Missing-value codes of the published file, per column (blank cells are missing too).
TASSH_MISSING_CODES: dict[str, tuple] = {
    "BMI": (0,),
    "BMI_Classification": (0,),
    "Employment_Status": (999,),
    "Smoking": (0,),
    "Education_Level": ("999",),
    "Income": ("0",),
    "CV_Risk": ("999",),
    # not in the data documentation: Age 0 for 2 patients (1310H12, 1405C13) in a trial that
    # enrolled adults aged 40 or more; read as missing
    "Age": (0,),
}
# one CV_Risk entry reads "N/A (No cholesterol value. Pt refused blood draw ...)": missing too
_CV_RISK_NA_PREFIX = "N/A"

_TEXT_COLUMNS = {"Participant_ID": str, "Education_Level": str, "Income": str, "CV_Risk": str}

#: Codes that must not survive in the derived analysis columns either.
_DERIVED_CODES: dict[str, tuple] = {
    "bmi": (0, 999),
    "employed": (999,),
    "sbp_baseline": (0, 999),
    "age": (0, 999),
    "education": ("999",),
    "smoking": (0,),
}

EDUCATION_LEVELS = ("none", "primary", "junior_secondary", "secondary_or_more")
_EDUCATION_MAP = {
    "No Schooling": "none",
    "Primary Schooling (Grades 1 to 6)": "primary",
    "Junior Secondary Schooling (JSS) (Grades 7-8)": "junior_secondary",
    "Secondary School (Grades 9-11)": "secondary_or_more",
    "Completed Secondary School": "secondary_or_more",
    "Technical school certificate": "secondary_or_more",
    "Some college but no degree": "secondary_or_more",
    "Associate degree": "secondary_or_more",
    "Graduate or Professional school (MD, JD, etc.)": "secondary_or_more",
}
SMOKING_LEVELS = ("never", "former", "current")
_SMOKING_MAP = {1: "current", 2: "current", 3: "former", 4: "never"}

#: Individual moderators (``sbp_baseline`` is also the ``baseline`` role).
TASSH_INDIVIDUAL = [
    "age",
    "female",
    "sbp_baseline",
    "education",
    "employed",
    "smoking",
    "physical_activity_kmet",
    "bmi",
]
#: Cluster (health centre) moderators.
TASSH_CLUSTER = ["urban", "doctors", "nurses", "patients_annually_k"]

TASSH_COLUMNS = {
    "sbp_change_12m": "outcome: SBP_12_Months - SBP_Baseline (mmHg); NaN if either is missing",
    "age": "Age, years; 0 -> NaN (2 patients)",
    "female": "Gender (1 = female, 0 = male)",
    "sbp_baseline": "SBP_Baseline, mmHg (also the baseline role)",
    "education": "Education_Level collapsed: none / primary (grades 1-6) / junior_secondary "
    "(JSS, grades 7-8) / secondary_or_more (secondary, technical, college, degree); "
    "'999' -> NaN",
    "employed": "Employment_Status (1 = employed); 999 -> NaN",
    "smoking": "Smoking: never (4) / former (3) / current (1 smoker, 2 occasional); 0 -> NaN",
    "physical_activity_kmet": "Physical_Activity / 1000: thousand MET-min per week",
    "bmi": "BMI, kg/m^2; 0 -> NaN (46% missing: use missing='indicator')",
    "urban": "Rural_Urban (1 = urban health centre)",
    "doctors": "Doctors_Available at the centre",
    "nurses": "Nurses_Available at the centre",
    "patients_annually_k": "Patients_annually / 1000: centre patient volume, thousands a year",
}


def load_tassh(*, raw: bool = False) -> pd.DataFrame:
    """The TASSH trial, one row per patient (757 patients, 32 centres).

    ``raw=True``: the published file exactly (missing codes included). ``raw=False``: the
    documented missing codes (:data:`TASSH_MISSING_CODES`, plus CV_Risk "N/A ...") become NaN in
    the original columns, and the analysis columns of :data:`TASSH_COLUMNS` are added.
    """
    path = resources.files("hte_mrt.data") / "files" / "tassh_ghana.csv.gz"
    with resources.as_file(path) as p:
        df = pd.read_csv(p, compression="gzip", dtype=_TEXT_COLUMNS)
    df.attrs["citation"] = TASSH_CITATION
    if raw:
        return df
    df = clean_tassh(df)
    df.attrs["citation"] = TASSH_CITATION
    return df


def clean_tassh(raw: pd.DataFrame) -> pd.DataFrame:
    """Missing codes to NaN in the original columns, then the derived analysis columns."""
    df = raw.copy()
    for col, codes in TASSH_MISSING_CODES.items():
        df[col] = df[col].mask(_code_mask(df[col], codes))
    cv = df["CV_Risk"].astype("string")
    df["CV_Risk"] = df["CV_Risk"].mask(cv.str.startswith(_CV_RISK_NA_PREFIX).fillna(False))

    df[OUTCOME] = df["SBP_12_Months"] - df["SBP_Baseline"]
    df["age"] = df["Age"].astype(float)  # Age 0 (2 patients) is NaN: see TASSH_MISSING_CODES
    df["female"] = df["Gender"].astype(np.int64)
    df["sbp_baseline"] = df["SBP_Baseline"].astype(float)
    unknown = sorted(set(df["Education_Level"].dropna()) - set(_EDUCATION_MAP))
    if unknown:
        raise DataError(
            f"Column 'Education_Level' has level(s) {unknown[:5]} that the TASSH loader does not "
            "know; extend _EDUCATION_MAP in hte_mrt.data.tassh.",
            column="Education_Level",
            examples=unknown[:5],
        )
    df["education"] = pd.Categorical(
        df["Education_Level"].map(_EDUCATION_MAP), categories=list(EDUCATION_LEVELS)
    )
    df["employed"] = df["Employment_Status"].astype(float)
    df["smoking"] = pd.Categorical(df["Smoking"].map(_SMOKING_MAP), categories=list(SMOKING_LEVELS))
    df["physical_activity_kmet"] = df["Physical_Activity"] / 1000.0
    df["bmi"] = df["BMI"].astype(float)
    df["urban"] = df["Rural_Urban"].astype(np.int64)
    df["doctors"] = df["Doctors_Available"].astype(float)
    df["nurses"] = df["Nurses_Available"].astype(float)
    df["patients_annually_k"] = df["Patients_annually"] / 1000.0
    return df


def check_codes_cleaned(frame: pd.DataFrame) -> None:
    """Raise :class:`UncleanedCodeError` if documented TASSH missing codes are still present.

    Checks the original columns (BMI == 0, Employment_Status == 999, Income == "0", ...) and
    the derived ones (bmi == 0 or 999, ...) that are in ``frame``; every offending column is
    named, with its count and the first patient ids.
    """
    found: list[tuple[str, tuple, int, list]] = []
    for col, codes in (TASSH_MISSING_CODES | _DERIVED_CODES).items():
        if col not in frame.columns:
            continue
        mask = _code_mask(frame[col], codes)
        if mask.any():
            id_cols = [c for c in (CLUSTER, ID) if c in frame.columns]
            ex = first_ids(frame, mask, id_cols) if id_cols else []
            found.append((col, codes, int(mask.sum()), ex))
    if not found:
        return
    col, _, n, ex = found[0]
    id_cols = [c for c in (CLUSTER, ID) if c in frame.columns]
    detail = "; ".join(f"'{c}' = {' or '.join(map(repr, k))} in {m} row(s)" for c, k, m, _ in found)
    first = f" First in column '{col}': {fmt_ids(ex, id_cols)}." if ex else ""
    raise UncleanedCodeError(
        f"TASSH missing codes left uncleaned: {detail}.{first} These codes mean 'missing' "
        "(e.g. BMI 0), not values: load the data with load_tassh() (raw=False), or pass the "
        "frame through clean_tassh(), before building CRTData.",
        column=col,
        n_rows=n,
        examples=ex,
    )


def tassh(
    frame: pd.DataFrame | None = None,
    *,
    missing: MissingPolicy = "indicator",
    dropna_outcome: bool = True,
    individual: Sequence[str] | None = None,
    cluster_covariates: Sequence[str] | None = None,
) -> CRTData:
    """TASSH as :class:`CRTData`: outcome ``sbp_change_12m``, arm ``Trt_or_Ctrl``, clusters
    ``Site_Number``, moderators :data:`TASSH_INDIVIDUAL` and :data:`TASSH_CLUSTER`.

    ``frame``: a cleaned TASSH frame (default: :func:`load_tassh`); one with the missing codes
    left in raises :class:`UncleanedCodeError`. Patients without the 12-month outcome (15%) are
    dropped and listed in ``.exclusions`` unless ``dropna_outcome=False``; BMI (46% missing) and
    the other moderators are handled by ``missing`` ("indicator" by default).
    """
    if frame is not None and not isinstance(frame, pd.DataFrame):
        raise DataError(
            f"tassh: frame must be a pandas DataFrame (a cleaned TASSH frame), got "
            f"{type(frame).__name__}; pass load_tassh() or nothing."
        )
    for name, cols in (("individual", individual), ("cluster_covariates", cluster_covariates)):
        if isinstance(cols, str):
            raise DataError(
                f"tassh: {name}= takes a list of column names, got the string {cols!r}; pass "
                f"{name}=[{cols!r}]."
            )
    df = load_tassh() if frame is None else frame
    check_codes_cleaned(df)
    return CRTData(
        df,
        cluster=CLUSTER,
        arm=ARM,
        outcome=OUTCOME,
        id=ID,
        baseline=BASELINE,
        individual=TASSH_INDIVIDUAL if individual is None else list(individual),
        cluster_covariates=TASSH_CLUSTER if cluster_covariates is None else cluster_covariates,
        missing=missing,
        dropna_outcome=dropna_outcome,
    )


def _code_mask(s: pd.Series, codes: tuple) -> np.ndarray:
    """Rows of ``s`` equal to a code, numerically (999 == "999" == 999.0) or as text."""
    num = pd.to_numeric(s.astype(object), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    mask = np.isin(num, [float(c) for c in codes])
    text = s.astype("string").str.strip()
    mask |= text.isin([str(c) for c in codes]).fillna(False).to_numpy(dtype=bool)
    return mask
