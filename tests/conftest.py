"""Shared fixtures. Reference data live in ../shared/data (next to the repository)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_csv(name: str) -> pd.DataFrame:
    path = SHARED / name
    if not path.exists():
        pytest.fail(
            f"reference data {path} missing: the repository expects ../shared/data beside it"
        )
    return pd.read_csv(path)


@pytest.fixture(scope="session")
def mimic():
    """MRTAnalysis' data_mimicHeartSteps (GPL; read from ../shared, never shipped)."""
    from hte_mrt import MRTData

    d = shared_csv("MRTAnalysis_data_mimicHeartSteps.csv")
    return MRTData(
        d,
        id="userid",
        time="decision_point",
        treatment="intervention",
        outcome="logstep_30min",
        prob=0.6,
        availability="avail",
    )


@pytest.fixture(scope="session")
def binary():
    """MRTAnalysis' data_binary."""
    from hte_mrt import MRTData

    d = shared_csv("MRTAnalysis_data_binary.csv")
    return MRTData(
        d,
        id="userid",
        time="time",
        treatment="A",
        outcome="Y",
        prob="rand_prob",
        availability="avail",
    )


@pytest.fixture(scope="session")
def heartsteps():
    from hte_mrt.data.datasets import heartsteps

    return heartsteps()
