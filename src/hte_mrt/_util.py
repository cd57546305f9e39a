"""Small helpers shared by several rooms (no statistics here)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def release_arrow_memory() -> None:
    """Return the memory Arrow's pool caches but no longer uses to the operating system.

    ``pd.read_parquet`` allocates through Arrow's pool (mimalloc / jemalloc), which keeps freed
    pages for reuse by Arrow only: after reading a large trial several hundred MB stay resident
    (about 1.5 x the frame), and a deleted frame's memory is not returned either. Called before
    the package makes its own large copies (``MRTData``, designs); a no-op when pyarrow was
    never imported.
    """
    import sys

    pa = sys.modules.get("pyarrow")
    if pa is None:
        return
    pool = pa.default_memory_pool()
    if hasattr(pool, "release_unused"):  # pyarrow >= 9
        pool.release_unused()


def first_ids(frame: pd.DataFrame, mask, cols: list[str], k: int = 5) -> list[tuple]:
    """The first ``k`` rows of ``frame[mask]`` as tuples of ``cols`` (for error messages)."""
    sub = frame.loc[mask, cols].head(k)
    return [tuple(r) for r in sub.itertuples(index=False, name=None)]


def fmt_ids(examples: list[tuple], cols: list[str]) -> str:
    """Render ``[(1, 5), ...]`` as ``user=1 decision=5; ...`` (internal ``_row`` as ``row``)."""
    names = ["row" if c == "_row" else c for c in cols]
    return "; ".join(
        " ".join(f"{c}={v}" for c, v in zip(names, ex, strict=True)) for ex in examples
    )


def json_default(o: Any) -> Any:
    """``json.dumps(..., default=json_default)``: NumPy scalars and arrays as Python numbers
    and lists, anything else (paths, ...) as its text."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _pick_tqdm():
    """tqdm's notebook-aware bar when Jupyter widgets are installed, else the plain text bar.

    ``tqdm.auto`` alone warns ("IProgress not found") in a notebook without ipywidgets and then
    falls back to the text bar anyway; this picks the same bar without the warning.
    """
    try:
        import ipywidgets  # noqa: F401
        from tqdm.auto import tqdm as bar
    except ImportError:
        from tqdm import tqdm as bar
    return bar


#: the progress bar every long step uses (``progress=False`` passes ``disable=True``)
tqdm = _pick_tqdm()


def check_ax(ax: Any, where: str) -> Any:
    """``ax`` if it is None or a matplotlib Axes (anything with ``plot`` and ``figure``), else
    :class:`~hte_mrt.errors.DesignError` naming ``ax``."""
    from hte_mrt.errors import DesignError

    if ax is not None and not (callable(getattr(ax, "plot", None)) and hasattr(ax, "figure")):
        raise DesignError(
            f"{where}: ax must be a matplotlib Axes (e.g. fig, ax = plt.subplots(); "
            f"{where.split('.')[-1]}(ax=ax)) or None for a new figure, got {type(ax).__name__}."
        )
    return ax


def output_path(path: Any, where: str, suffix: str) -> Any:
    """``path`` as a :class:`pathlib.Path` to write to, or :class:`~hte_mrt.errors.DataError`
    naming ``path`` (not a str / PathLike, a directory, or a folder that does not exist)."""
    import os
    from pathlib import Path

    from hte_mrt.errors import DataError

    if isinstance(path, bool) or not isinstance(path, str | os.PathLike) or str(path) == "":
        raise DataError(
            f"{where}: path must be a file name (str or pathlib.Path) such as 'result{suffix}', "
            f"got {path!r}."
        )
    p = Path(path)
    if p.is_dir():
        raise DataError(
            f"{where}: path {str(p)!r} is a folder; give a file name inside it, e.g. "
            f"{str(p / ('result' + suffix))!r}."
        )
    if not p.parent.is_dir():
        raise DataError(
            f"{where}: the folder {str(p.parent)!r} of path {str(p)!r} does not exist; create it "
            f"first (e.g. Path({str(p.parent)!r}).mkdir(parents=True)) or give another path."
        )
    return p
