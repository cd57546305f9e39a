"""A small document model rendered three ways: self-contained HTML, Markdown and LaTeX tables.

Sections hold paragraphs, tables (pandas) and figures (matplotlib). Figures are written as PNG
and SVG under ``figures/`` and embedded in the HTML as base64 data URIs, so ``report.html``
needs no network and no side files. ``tables.tex`` holds every table as a booktabs
``tabular`` with its caption, ready to ``\\input`` into a paper.

Tables are shown as publication tables (:func:`paper_frame`): human headers, "Estimate (95% CI)"
cells (:func:`hte_mrt._contract.paper_table`), empty cells instead of ``None``/NaN, and tables
wider than :data:`MAX_COLUMNS` columns split into parts that repeat the first column, so every
table fits the page. Figures' text is enlarged where it would print smaller than
:data:`MIN_FONT_PT` at :data:`PRINT_WIDTH_IN` inches wide. A quick run (``quick=True``) carries
a banner at the top of every output and in every LaTeX caption.
"""

from __future__ import annotations

import base64
import html
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hte_mrt._contract import PAPER_HEADERS, _est_ci, _sig, format_p, paper_table

#: tables with more columns, or wider than MAX_CHARS characters (about the page's width at the
#: report's table font), are split into parts, each repeating the first column
MAX_COLUMNS = 10
MAX_CHARS = 124
#: the width (inches) a figure is printed at, and the smallest font (points) allowed there
PRINT_WIDTH_IN = 6.5
MIN_FONT_PT = 9.0
QUICK_BANNER = (
    "QUICK RUN: few draws and resamples, for checking the pipeline only. "
    "Not for publication; rerun without --quick for the final report."
)

#: prefixes of interval columns (``<prefix>estimate|mean``, ``<prefix>lcl``, ``<prefix>ucl``)
PREFIX_LABELS = {
    "": "Estimate",
    "wcls_": "WCLS",
    "emee_": "EMEE",
    "posterior_": "Posterior",
    "bootstrap_": "Bootstrap",
}
#: human headers for the code names report tables use (besides ``PAPER_HEADERS``)
HEADERS = {
    "se_ratio": "SE ratio",
    "flag": "Flag",
    "n_available": "Available rows",
    "difference_se": "Difference (SEs)",
    "max_r_hat": "Max R-hat",
    "draws per chain": "Draws per chain",
    "difference_in_se": "Difference (SEs)",
    "min_ess_bulk": "Min ESS (bulk)",
    "min_ess_tail": "Min ESS (tail)",
    "min_bfmi": "Min BFMI",
    "prior_scale": "Prior scale",
    "fit_seconds": "Fit (s)",
    "n_resamples": "Resamples",
    "n_rows": "Rows",
    "n_clusters": "Clusters",
    "p_randomization": "p (randomization)",
}
#: words written in capitals in headers
ACRONYMS = {"sd", "se", "cv", "icc", "ate", "cate", "blp", "ci", "ess", "bfmi", "wcls", "emee"}


@dataclass
class Block:
    kind: str  # "p", "table", "figure", "pre"
    content: Any
    caption: str = ""
    name: str = ""


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_")[:60] or "item"


def _human(col: str) -> str:
    if col in PAPER_HEADERS:
        return PAPER_HEADERS[col]
    if col in HEADERS:
        return HEADERS[col]
    for prefix, label in PREFIX_LABELS.items():
        if prefix and col.startswith(prefix):
            return f"{label} {_human(col[len(prefix) :]).lower()}".replace(" se", " SE")
    words = str(col).replace("_", " ").split()
    words = [w.upper() if w.lower() in ACRONYMS else w for w in words]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def _interval_groups(columns: list[str]) -> dict[str, tuple[str, str, str]]:
    """``{estimate column: (estimate, lcl, ucl)}`` for every ``<prefix>estimate|mean`` that has
    ``<prefix>lcl`` and ``<prefix>ucl`` beside it."""
    groups = {}
    for prefix in {c[: -len(s)] for c in columns for s in ("lcl",) if c.endswith(s)}:
        lo, hi = f"{prefix}lcl", f"{prefix}ucl"
        if hi not in columns:
            continue
        for name in ("estimate", "mean"):
            if f"{prefix}{name}" in columns:
                groups[f"{prefix}{name}"] = (f"{prefix}{name}", lo, hi)
                break
    return groups


def paper_frame(df: pd.DataFrame, conf_level: float = 0.95, digits: int = 3) -> pd.DataFrame:
    """A report table for reading: estimates with their interval in one "Estimate (95% CI)"
    cell (also for prefixed columns such as ``wcls_estimate``/``wcls_lcl``/``wcls_ucl``),
    ``digits`` significant digits, p-values as '<0.001', human headers and empty cells where
    a value is missing (never ``None`` or ``nan``). Every cell is a string."""
    df = df.reset_index(drop=True)
    cols = [str(c) for c in df.columns]
    df.columns = cols
    groups = _interval_groups(cols)
    used = {c for g in groups.values() for c in g[1:]}
    pct = f"{100 * conf_level:g}%"
    out: dict[str, list[str]] = {}
    for col in cols:
        if col in used:
            continue
        if col in groups:
            est, lo, hi = groups[col]
            prefix = est[: -len("estimate")] if est.endswith("estimate") else est[: -len("mean")]
            label = PREFIX_LABELS.get(prefix, _human(prefix.rstrip("_")))
            out[f"{label} ({pct} CI)"] = [
                _est_ci(e, a, b, digits) for e, a, b in zip(df[est], df[lo], df[hi], strict=True)
            ]
            continue
        s = df[col]
        if pd.api.types.is_bool_dtype(s):
            cells = ["yes" if v else "" for v in s]
        elif s.dtype == object and s.map(lambda v: isinstance(v, bool | np.bool_)).all():
            cells = ["yes" if v else "" for v in s]
        elif col.startswith("p_") and pd.api.types.is_float_dtype(s):
            cells = [format_p(v) for v in s]
        elif s.dtype == object:
            cells = [_cell(v, digits) for v in s]
        elif col not in PAPER_HEADERS and _round_numbers(s):
            cells = ["" if pd.isna(v) else f"{float(v):g}" for v in s]
        else:
            cells = list(paper_table(pd.DataFrame({col: s}), conf_level, digits).iloc[:, 0])
        cells = ["" if c in ("None", "nan", "NaN", "<NA>") else c for c in cells]
        out[_human(col)] = cells
    return pd.DataFrame(out)


def _cell(v: Any, digits: int) -> str:
    """One cell of a mixed column: numbers to ``digits`` significant digits, no 'None'."""
    if v is None or (isinstance(v, float | np.floating) and np.isnan(v)):
        return ""
    if isinstance(v, bool | np.bool_):
        return "yes" if v else ""
    if isinstance(v, float | np.floating):
        return f"{float(v):g}" if float(v) == round(float(v), 2) else _sig(v, digits)
    return str(v)


def _round_numbers(s: pd.Series) -> bool:
    """A float column of settings (0.25, 1, 4): printed as given, not padded to 3 digits."""
    if not pd.api.types.is_float_dtype(s) or s.isna().all():
        return False
    v = s.dropna().to_numpy(dtype=float)
    return bool(np.all(np.isfinite(v)) and np.all(np.abs(v) < 1e6) and np.all(v == np.round(v, 2)))


def _width(df: pd.DataFrame, col) -> int:
    """Characters a column needs: its longest cell or header word, plus padding."""
    cells = max((len(str(v)) for v in df[col]), default=0)
    words = max((len(w) for w in str(col).split()), default=0)
    return max(cells, words) + 2


def split_columns(
    df: pd.DataFrame, max_columns: int = MAX_COLUMNS, max_chars: int = MAX_CHARS
) -> list[pd.DataFrame]:
    """A wide table as parts of at most ``max_columns`` columns and about ``max_chars``
    characters, each repeating the first column; parts are balanced (no full part and a stub)."""
    widths = [_width(df, c) for c in df.columns]
    if df.shape[1] <= max_columns and sum(widths) <= max_chars:
        return [df]
    first, rest, rest_w = df.columns[0], list(df.columns[1:]), widths[1:]
    for n_parts in range(2, len(rest) + 1):
        step = -(-len(rest) // n_parts)
        chunks = [range(k, min(k + step, len(rest))) for k in range(0, len(rest), step)]
        if all(
            len(c) + 1 <= max_columns and widths[0] + sum(rest_w[i] for i in c) <= max_chars
            for c in chunks
        ):
            break
    return [df[[first, *(rest[i] for i in c)]] for c in chunks]


def readable_figure(fig, width_in: float = PRINT_WIDTH_IN, min_pt: float = MIN_FONT_PT) -> None:
    """Enlarge a figure's text so that, printed ``width_in`` inches wide, none is smaller than
    ``min_pt`` points (a wide figure is shrunk when printed, and its labels with it)."""
    from matplotlib.text import Text

    shrink = min(1.0, width_in / fig.get_figwidth())
    smallest = min_pt / shrink
    changed = False
    for t in fig.findobj(Text):
        if t.get_text() and t.get_fontsize() < smallest:
            t.set_fontsize(smallest)
            changed = True
    # many category labels (a forest plot): grow the figure until they no longer overlap
    grow = 1.0
    for ax in fig.get_axes():
        labels = [t for t in ax.get_yticklabels() if t.get_text()]
        if len(labels) < 2:
            continue
        need = len(labels) * labels[0].get_fontsize() * 1.3 / 72  # inches
        have = fig.get_figheight() * ax.get_position().height
        grow = max(grow, need / have)
    if grow > 1.0:
        fig.set_figheight(fig.get_figheight() * min(grow, 4.0))
        changed = True
    if changed:
        try:
            fig.tight_layout()
        except (ValueError, RuntimeError):  # pragma: no cover - layout engines may refuse
            pass


class Report:
    """Collects sections, then writes ``report.html``, ``report.md``, ``tables.tex`` and figures."""

    def __init__(self, title: str, subtitle: str = "", *, quick: bool = False) -> None:
        self.title = title
        self.subtitle = subtitle
        self.quick = quick
        self.sections: list[Section] = []
        self._names: set[str] = set()

    def section(self, title: str) -> Section:
        s = Section(title)
        self.sections.append(s)
        return s

    def _unique(self, name: str) -> str:
        base, k = _slug(name), 1
        name = base
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def p(self, text: str) -> None:
        self.sections[-1].blocks.append(Block("p", text))

    def pre(self, text: str) -> None:
        self.sections[-1].blocks.append(Block("pre", text))

    def table(self, df: pd.DataFrame, caption: str, name: str | None = None) -> None:
        self.sections[-1].blocks.append(
            Block("table", df.reset_index(drop=True), caption, self._unique(name or caption))
        )

    def figure(self, fig, caption: str, name: str | None = None) -> None:
        readable_figure(fig)
        self.sections[-1].blocks.append(
            Block("figure", fig, caption, self._unique(name or caption))
        )

    # ------------------------------------------------------------------ writers
    def write(self, out: Path) -> dict[str, Path]:
        import matplotlib.pyplot as plt

        out = Path(out)
        figdir = out / "figures"
        figdir.mkdir(parents=True, exist_ok=True)
        pngs: dict[str, str] = {}
        for s in self.sections:
            for b in s.blocks:
                if b.kind == "figure":
                    buf = io.BytesIO()
                    b.content.savefig(
                        buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None}
                    )
                    (figdir / f"{b.name}.png").write_bytes(buf.getvalue())
                    b.content.savefig(
                        figdir / f"{b.name}.svg",
                        format="svg",
                        bbox_inches="tight",
                        metadata={"Date": None},
                    )
                    pngs[b.name] = base64.b64encode(buf.getvalue()).decode()
                    plt.close(b.content)
        paths = {
            "html": out / "report.html",
            "md": out / "report.md",
            "tex": out / "tables.tex",
        }
        paths["html"].write_text(self._html(pngs))
        paths["md"].write_text(self._md())
        paths["tex"].write_text(self._tex())
        return paths

    def _md(self) -> str:
        lines = [f"# {self.title}", ""]
        if self.quick:
            lines += [f"> **{QUICK_BANNER}**", ""]
        if self.subtitle:
            lines += [self.subtitle, ""]
        for s in self.sections:
            lines += [f"## {s.title}", ""]
            for b in s.blocks:
                if b.kind == "p":
                    lines += [b.content, ""]
                elif b.kind == "pre":
                    lines += ["```", b.content, "```", ""]
                elif b.kind == "table":
                    parts = split_columns(paper_frame(b.content))
                    for k, part in enumerate(parts):
                        lines += [f"**{_part_caption(b.caption, k, len(parts))}**", ""]
                        lines += [part.to_markdown(index=False, disable_numparse=True), ""]
                else:
                    lines += [f"![{b.caption}](figures/{b.name}.png)", "", f"*{b.caption}*", ""]
        return "\n".join(lines)

    def _html(self, pngs: dict[str, str]) -> str:
        e = html.escape
        body = [f"<h1>{e(self.title)}</h1>"]
        if self.quick:
            body.append(f"<p class='quick' role='alert'>{e(QUICK_BANNER)}</p>")
        if self.subtitle:
            body.append(f"<p class='sub'>{e(self.subtitle)}</p>")
        toc = "".join(
            f"<li><a href='#s{k}'>{e(s.title)}</a></li>" for k, s in enumerate(self.sections)
        )
        body.append(f"<nav><ol>{toc}</ol></nav>")
        for k, s in enumerate(self.sections):
            body.append(f"<section id='s{k}'><h2>{e(s.title)}</h2>")
            for b in s.blocks:
                if b.kind == "p":
                    body.append(f"<p>{e(b.content)}</p>")
                elif b.kind == "pre":
                    body.append(f"<pre>{e(b.content)}</pre>")
                elif b.kind == "table":
                    parts = split_columns(paper_frame(b.content))
                    for j, df in enumerate(parts):
                        cap = _part_caption(b.caption, j, len(parts))
                        head = "".join(f"<th>{e(str(c))}</th>" for c in df.columns)
                        rows = "".join(
                            "<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in r) + "</tr>"
                            for r in df.itertuples(index=False)
                        )
                        body.append(
                            f"<div class='tw'><table><caption>{e(cap)}</caption>"
                            f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>"
                        )
                else:
                    body.append(
                        f"<figure><img alt='{e(b.caption)}' "
                        f"src='data:image/png;base64,{pngs[b.name]}'>"
                        f"<figcaption>{e(b.caption)}</figcaption></figure>"
                    )
            body.append("</section>")
        css = (
            "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
            "color:#222;line-height:1.45}"
            ".tw{overflow-x:auto;margin:1rem 0}"
            "table{border-collapse:collapse;font-size:.85rem;width:100%}"
            "caption{caption-side:top;text-align:left;font-weight:600;padding:.3rem 0}"
            "th,td{padding:.25rem .5rem;text-align:right;border-bottom:1px solid #ddd}"
            "th{vertical-align:bottom}td{white-space:nowrap}"
            ".quick{background:#fff3cd;border:2px solid #b8860b;color:#5c4400;font-weight:700;"
            "padding:.6rem .8rem;border-radius:4px}"
            "th{border-bottom:2px solid #444}td:first-child,th:first-child{text-align:left}"
            "img{max-width:100%}figcaption{font-style:italic;font-size:.9rem}"
            "pre{background:#f6f6f6;padding:.6rem;white-space:pre-wrap;overflow-wrap:anywhere;"
            "font-size:.85rem}.sub{color:#555}"
        )
        return (
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<link rel='icon' href='data:,'>"
            f"<title>{e(self.title)}</title><style>{css}</style></head><body>"
            + "\n".join(body)
            + "</body></html>"
        )

    def _tex(self) -> str:
        out = ["% tables generated by hte_mrt; needs \\usepackage{booktabs}", ""]
        tag = "[QUICK RUN] " if self.quick else ""
        if self.quick:
            out += [
                "% " + QUICK_BANNER,
                "\\begin{center}\\fbox{\\parbox{0.9\\linewidth}{\\textbf{"
                + _tex_escape(QUICK_BANNER)
                + "}}}\\end{center}",
                "",
            ]
        for s in self.sections:
            for b in s.blocks:
                if b.kind != "table":
                    continue
                parts = split_columns(paper_frame(b.content))
                for k, df in enumerate(parts):
                    cols = "l" + "r" * (df.shape[1] - 1)
                    cap = tag + _part_caption(b.caption, k, len(parts))
                    label = b.name if k == 0 else f"{b.name}_{k + 1}"
                    out += [
                        "\\begin{table}[ht]",
                        "\\centering",
                        f"\\caption{{{_tex_escape(cap)}}}",
                        f"\\label{{tab:{label}}}",
                        f"\\begin{{tabular}}{{{cols}}}",
                        "\\toprule",
                        " & ".join(_tex_escape(str(c)) for c in df.columns) + " \\\\",
                        "\\midrule",
                    ]
                    for r in df.itertuples(index=False):
                        out.append(" & ".join(_tex_escape(str(v)) for v in r) + " \\\\")
                    out += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
        return "\n".join(out)


def _part_caption(caption: str, k: int, n: int) -> str:
    return caption if n == 1 else f"{caption} (part {k + 1} of {n})"


def _tex_escape(s: str) -> str:
    rep = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\^{}",
    }
    return "".join(rep.get(c, c) for c in s)
