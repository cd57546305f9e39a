"""A small document model rendered three ways: self-contained HTML, Markdown and LaTeX tables.

Sections hold paragraphs, tables (pandas) and figures (matplotlib). Figures are written as PNG
and SVG under ``figures/`` and embedded in the HTML as base64 data URIs, so ``report.html``
needs no network and no side files. ``tables.tex`` holds every table as a booktabs
``tabular`` with its caption, ready to ``\\input`` into a paper.
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


def _fmt(v: Any) -> str:
    if isinstance(v, float | np.floating):
        if not np.isfinite(v):
            return ""
        return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    return str(v)


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_")[:60] or "item"


class Report:
    """Collects sections, then writes ``report.html``, ``report.md``, ``tables.tex`` and figures."""

    def __init__(self, title: str, subtitle: str = "") -> None:
        self.title = title
        self.subtitle = subtitle
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
                    df = b.content.map(_fmt) if len(b.content) else b.content
                    lines += [f"**{b.caption}**", "", df.to_markdown(index=False), ""]
                else:
                    lines += [f"![{b.caption}](figures/{b.name}.png)", "", f"*{b.caption}*", ""]
        return "\n".join(lines)

    def _html(self, pngs: dict[str, str]) -> str:
        e = html.escape
        body = [f"<h1>{e(self.title)}</h1>"]
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
                    df = b.content
                    head = "".join(f"<th>{e(str(c))}</th>" for c in df.columns)
                    rows = "".join(
                        "<tr>" + "".join(f"<td>{e(_fmt(v))}</td>" for v in r) + "</tr>"
                        for r in df.itertuples(index=False)
                    )
                    body.append(
                        f"<table><caption>{e(b.caption)}</caption><thead><tr>{head}</tr></thead>"
                        f"<tbody>{rows}</tbody></table>"
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
            "table{border-collapse:collapse;margin:1rem 0;font-size:.9rem;display:block;"
            "overflow-x:auto}"
            "caption{caption-side:top;text-align:left;font-weight:600;padding:.3rem 0}"
            "th,td{padding:.25rem .6rem;text-align:right;border-bottom:1px solid #ddd}"
            "th{border-bottom:2px solid #444}td:first-child,th:first-child{text-align:left}"
            "img{max-width:100%}figcaption{font-style:italic;font-size:.9rem}"
            "pre{background:#f6f6f6;padding:.6rem;overflow-x:auto;font-size:.85rem}.sub{color:#555}"
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
        for s in self.sections:
            for b in s.blocks:
                if b.kind != "table":
                    continue
                df = b.content
                cols = "l" + "r" * (df.shape[1] - 1)
                out += [
                    "\\begin{table}[ht]",
                    "\\centering",
                    f"\\caption{{{_tex_escape(b.caption)}}}",
                    f"\\label{{tab:{b.name}}}",
                    f"\\begin{{tabular}}{{{cols}}}",
                    "\\toprule",
                    " & ".join(_tex_escape(str(c)) for c in df.columns) + " \\\\",
                    "\\midrule",
                ]
                for r in df.itertuples(index=False):
                    out.append(" & ".join(_tex_escape(_fmt(v)) for v in r) + " \\\\")
                out += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
        return "\n".join(out)


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
