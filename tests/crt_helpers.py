"""Small simulated CRTs shared by the learner tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hte_mrt.data.crt import CRTData


def small_trial(
    seed: int, K: int = 30, m: int = 25, *, data: bool = True, tau0: float = 0.5
) -> tuple[pd.DataFrame, CRTData | None]:
    """tau = tau0 + 0.5 x1 - 0.4 v1 (tau0 = 0.5 by default); mu nonlinear in x1; ICC ~0.1;
    categorical x3.

    The ATE of such a trial (about tau0 - 0.2) has a sampling sd of about 0.15 with K = 30
    clusters: an accuracy check of the ATE that a null estimator must fail needs
    tau0 = 1 (ATE ~0.8 against a window of 3 sd = 0.45; see tests/accuracy.py).

    ``data=False``: the frame only (e.g. new clusters to predict for)."""
    rng = np.random.default_rng(seed)
    rows = []
    arms = rng.permutation(np.repeat([0, 1], K // 2))
    for j in range(K):
        v1 = rng.binomial(1, 0.5)
        b = rng.normal(0, 0.33)
        x1 = rng.normal(size=m)
        x2 = rng.binomial(1, 0.5, m)
        x3 = rng.choice(["a", "b", "c"], size=m)
        tau = tau0 + 0.5 * x1 - 0.4 * v1
        y = 0.3 * x1 + np.sin(2 * x1) + 0.2 * x2 + b + arms[j] * tau + rng.normal(size=m)
        rows.append(
            pd.DataFrame(dict(cl=f"c{j}", arm=arms[j], x1=x1, x2=x2, x3=x3, v1=v1, y=y, tau=tau))
        )
    df = pd.concat(rows, ignore_index=True)
    if not data:
        return df, None
    data = CRTData(
        df, cluster="cl", arm="arm", outcome="y", individual=["x1", "x2", "x3"],
        cluster_covariates=["v1"],
    )  # fmt: skip
    return df, data
