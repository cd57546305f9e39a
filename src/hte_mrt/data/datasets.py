"""Datasets shipped with the package (see ``data/files/README.md`` for sources and citations)."""

from __future__ import annotations

from importlib import resources
from typing import Any

import pandas as pd

from hte_mrt.data.schema import MRTData

HEARTSTEPS_CITATION = (
    "Klasnja P, Smith S, Seewald NJ, et al. Efficacy of contextually tailored suggestions for "
    "physical activity: a micro-randomized optimization trial of HeartSteps. Ann Behav Med "
    "2019;53(6):573-582. Data: klasnja/HeartStepsV1."
)

HEARTSTEPS_COLUMNS = {
    "user": "participant id 1..37",
    "decision_index": "decision index from the participant's first decision (travel included)",
    "decision_index_nogap": "decision index skipping travel",
    "study_day_nogap": "day in study, 0..41, travel excluded",
    "slot": "time slot 1..5 within the day",
    "avail": "availability 0/1",
    "send": "any activity suggestion delivered (A); P = 0.6 when available",
    "send_active": "walking suggestion delivered (P = 0.3)",
    "send_sedentary": "anti-sedentary suggestion delivered (P = 0.3)",
    "rand_prob": "0.6",
    "jbsteps30_zero": "steps in the 30 min after the decision (missing recorded as 0)",
    "jbsteps30pre_zero": "steps in the 30 min before the decision",
    "jbsteps30_log": "log(jbsteps30_zero + 0.5): the proximal outcome",
    "jbsteps30pre_log": "log(jbsteps30pre_zero + 0.5): the usual control",
    "location_other": "location other/unknown at decision time",
    "location_home": "location home",
    "location_work": "location work",
    "recent_dose": "send at the previous decision",
    "recent_resp": "recent responsivity (15-decision window; NA early and around travel)",
    "recent_resp_binary": "1(recent_resp > 0)",
}

DATASETS = {
    "heartsteps": "HeartSteps V1 analysis set (MRT; 37 participants, 7,540 decisions)",
    "tassh": "TASSH, Ghana (CRT; 757 patients in 32 health centres, CC0)",
}


def load_heartsteps(*, with_arm: bool = True) -> pd.DataFrame:
    """The HeartSteps V1 analysis set as published (Klasnja et al. 2019), one row per decision.

    ``with_arm`` adds a derived column ``arm`` in {"none", "walking", "sedentary"} (the
    three-level treatment randomized with probabilities 0.4 / 0.3 / 0.3 when available).
    """
    path = resources.files("hte_mrt.data") / "files" / "heartsteps_v1.csv.gz"
    with resources.as_file(path) as p:
        df = pd.read_csv(p, compression="gzip")
    if with_arm:
        df["arm"] = "none"
        df.loc[df["send_active"] == 1, "arm"] = "walking"
        df.loc[df["send_sedentary"] == 1, "arm"] = "sedentary"
    df.attrs["citation"] = HEARTSTEPS_CITATION
    return df


def heartsteps(*, categorical: bool = False, missing: str = "error") -> MRTData:
    """HeartSteps V1 as :class:`MRTData`: outcome ``jbsteps30_log``, treatment ``send`` (p = 0.6).

    ``categorical=True`` uses the three-level ``arm`` (none 0.4, walking 0.3, sedentary 0.3).
    """
    df = load_heartsteps()
    common = dict(
        id="user",
        time="decision_index_nogap",
        outcome="jbsteps30_log",
        availability="avail",
        missing=missing,
    )
    if categorical:
        return MRTData(
            df, treatment="arm", levels={"none": 0.4, "walking": 0.3, "sedentary": 0.3}, **common
        )
    return MRTData(df, treatment="send", prob="rand_prob", **common)


def load_dataset(name: str, *, as_data: bool = False) -> pd.DataFrame | MRTData | Any:
    """Load a bundled dataset by name.

    Parameters
    ----------
    name : {"heartsteps", "tassh"}
        ``"heartsteps"``: the HeartSteps V1 analysis set (an MRT; Klasnja et al. 2019);
        ``"tassh"``: the TASSH cluster-randomized trial in Ghana (Ogedegbe et al. 2018), cleaned
        (documented missing codes as NaN, SBP change at 12 months added).
    as_data : bool, default False
        False: the rows as a pandas DataFrame (``attrs["citation"]`` says what to cite).
        True: the validated trial with its standard column roles: :class:`MRTData` for
        HeartSteps (outcome ``jbsteps30_log``, treatment ``send``, p = 0.6) and
        :class:`~hte_mrt.data.crt.CRTData` for TASSH (outcome ``sbp_change_12m``).

    Returns
    -------
    pandas.DataFrame, MRTData or CRTData

    Examples
    --------
    >>> import hte_mrt as hm
    >>> df = hm.load_dataset("heartsteps")
    >>> df.shape
    (7540, 21)
    >>> hm.load_dataset("tassh", as_data=True).n_clusters
    32
    """
    from hte_mrt.data.checks import check_bool
    from hte_mrt.errors import DataError

    if not isinstance(name, str) or name not in DATASETS:
        close = [d for d in DATASETS if isinstance(name, str) and d == name.strip().lower()]
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise DataError(
            f"Unknown dataset {name!r}.{hint} The bundled datasets are "
            f"{', '.join(repr(d) for d in DATASETS)}: hm.load_dataset('heartsteps'). To read your "
            "own file use pandas (pd.read_csv) and wrap it in hm.MRTData(...)."
        )
    check_bool("as_data", as_data)
    if name == "heartsteps":
        return heartsteps() if as_data else load_heartsteps()
    from hte_mrt.data.tassh import load_tassh, tassh

    return tassh() if as_data else load_tassh()
