"""Write the simulated Pieper et al. (2024) JIT trial that the ``models/jit_*.toml`` plans analyse.

An analysis plan reads its trial from a CSV file (``[data] path``) or a bundled dataset, one
table per plan. The JIT study has two decision types with their own rows (goal feedback once a
day, social feedback three times a day), so the trial is written as two CSV files, each the log
an app back end would export for one decision type:

* ``models/data/jit_goal.csv``: one row per participant and day (type 1, goal feedback).
* ``models/data/jit_social.csv``: one row per participant and block (type 2, social feedback),
  with the distal outcomes (constant within participant) for H5.

Both come from ``hm.JITSimulation().simulate(seed=SEED)``; ``tests/test_jit_study.py`` checks that
the shipped files are what this script writes. Run from the repository root::

    python tools/make_jit_data.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

SEED = 2026  # the seed of notebooks/05_jit_study.py
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "models" / "data"
GOAL_COLUMNS = ["id", "day", "goal_feedback", "goal_message", "avail", "goal_reached", "stage",
                "feedback_use_log", "total_pa", "goal_weeks"]  # fmt: skip
SOCIAL_COLUMNS = ["id", "decision", "day", "block", "social_feedback", "prob", "avail",
                  "goal_reached", "stage", "social_use_log", "total_pa", "goal_weeks"]  # fmt: skip
FLOAT_FORMAT = "%.10g"


def jit_frames(seed: int = SEED) -> dict[str, pd.DataFrame]:
    """The two decision types' tables of one simulated trial, as the CSV files hold them."""
    import hte_mrt as hm

    f = hm.JITSimulation().simulate(seed=seed)
    goal = f["goal"].assign(goal_message=lambda d: (d["goal_feedback"] != "none").astype(int))
    goal = goal.assign(stage=goal["stage"].astype(str))
    social = f["social"].assign(stage=f["social"]["stage"].astype(str))
    return {"goal": goal[GOAL_COLUMNS], "social": social[SOCIAL_COLUMNS]}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, frame in jit_frames().items():
        path = OUT / f"jit_{name}.csv"
        frame.to_csv(path, index=False, float_format=FLOAT_FORMAT)
        print(f"wrote {path.relative_to(ROOT)} ({len(frame)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
