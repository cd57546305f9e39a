"""The power curve: power of the planned F test against the number of participants."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from hte_mrt.design.base import _DesignBase
from hte_mrt.design.common import DEFAULT_N_MAX, PowerNotReachableError
from hte_mrt.design.results import SampleSizeResult
from hte_mrt.errors import DesignError

__all__ = ["plot_power_curve"]


def plot_power_curve(
    source: Any,
    ns: Sequence[int] | ArrayLike | None = None,
    *,
    alpha: float | None = None,
    ax: Any = None,
):
    """Power against the number of participants (Liao et al. 2016; Cohn et al. 2023).

    Parameters
    ----------
    source : design, result or pandas.DataFrame
        A design (``continuous_design`` / ``binary_design``), a result of
        :func:`mrt_sample_size`, :func:`mrt_power`, :func:`minimum_detectable_effect`,
        :func:`binary_sample_size` or :func:`binary_power` (its design and alpha are used; a
        sample-size result also marks the target and N), or a :func:`power_table` DataFrame
        (columns n and power).
    ns : sequence of int, optional
        The N to draw; default p + q + 1 up to where power reaches 0.99 (at most 1,000 points).
    alpha : float, optional
        Significance level (default: the result's, else 0.05).
    ax : matplotlib.axes.Axes, optional
        Draw into these axes instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import hte_mrt as hm
    >>> res = hm.mrt_sample_size(days=30, per_day=5, prob=0.5, availability=0.7, effect=0.1)
    >>> fig = hm.plot_power_curve(res)
    >>> fig.axes[0].get_xlabel()
    'number of participants N'
    >>> import matplotlib.pyplot as plt
    >>> plt.close(fig)
    """
    import matplotlib.pyplot as plt

    if ax is not None and not hasattr(ax, "plot"):
        raise DesignError(
            f"plot_power_curve: ax must be matplotlib Axes, got {type(ax).__name__}; pass "
            "ax=None for a new figure, or the axes from plt.subplots()."
        )
    target = n_mark = None
    if isinstance(source, pd.DataFrame):
        if not {"n", "power"} <= set(source.columns):
            raise DesignError("plot_power_curve: the table needs columns 'n' and 'power'.")
        table = source
    else:
        design = source if isinstance(source, _DesignBase) else getattr(source, "design", None)
        if not isinstance(design, _DesignBase):
            raise DesignError(
                f"plot_power_curve: source must be a design, a sample-size or power result, or a "
                f"power_table DataFrame, got {type(source).__name__}; pass e.g. the result of "
                "hm.mrt_sample_size(...)."
            )
        a = alpha if alpha is not None else getattr(source, "alpha", 0.05)
        if isinstance(source, SampleSizeResult):
            target, n_mark = source.target_power, source.n
        if ns is None:
            lo = design.p + design.q + 1
            try:
                hi = design._integer_search(0.99, a, DEFAULT_N_MAX)
            except PowerNotReachableError:
                hi = lo + 1000
            hi = max(hi, (n_mark or 0) + 5, lo + 10)
            step = max(1, (hi - lo) // 1000)
            ns = np.arange(lo, hi + 1, step)
        table = design.power_table(ns, a)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
    else:
        fig = ax.figure
    ax.plot(table["n"], table["power"], lw=1.5)
    if target is not None:
        ax.axhline(target, color="grey", ls="--", lw=0.8)
        ax.axvline(n_mark, color="grey", ls=":", lw=0.8)
        ax.annotate(
            f"N = {n_mark}",
            (n_mark, target),
            textcoords="offset points",
            xytext=(4, -12),
            fontsize=8,
        )
    ax.set_xlabel("number of participants N")
    ax.set_ylabel("power")
    ax.set_ylim(0, 1)
    fig.tight_layout()
    return fig
