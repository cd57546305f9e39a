"""Sphinx configuration of the hte_mrt documentation site (``make docs``).

Sphinx + MyST-NB + pydata-sphinx-theme. The pages are MyST Markdown; the worked examples are the
notebooks of ``notebooks/`` (jupytext pairs), copied into ``examples/`` and executed during the
build. ``HTE_MRT_QUICK=1`` runs them with small draws (the tests do); the executed outputs are
cached per mode under ``_build/`` (``nb_execution_mode = "cache"``), so a rebuild re-runs only the
notebooks that changed. The API reference (``api/``) is generated from ``hte_mrt.__all__``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
SRC = ROOT / "src"
BUILD = DOCS / "_build"

# Document (and execute the notebooks against) this checkout's sources, not an installed copy.
sys.path.insert(0, str(SRC))
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])]
)
# Notebook figures come from the kernel's inline backend; an inherited MPLBACKEND=Agg would
# silence them.
os.environ.pop("MPLBACKEND", None)

import hte_mrt  # noqa: E402

QUICK = os.environ.get("HTE_MRT_QUICK", "0") == "1"

# -- project ----------------------------------------------------------------------------------
project = "hte_mrt"
author = "hte_mrt contributors"
copyright = "2026, hte_mrt contributors"
release = version = hte_mrt.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx_copybutton",
    "sphinx-mathjax-offline",  # MathJax served from _static: the site works offline / from file://
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints", ".gitignore"]
# .rst first: autosummary writes its stubs (reST) with the first suffix
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
nitpicky = False  # docstrings name types loosely (pandas.DataFrame, array-like, ...)
suppress_warnings = ["mystnb.unknown_mime_type"]

# -- MyST / MyST-NB -------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "substitution"]
myst_heading_anchors = 3
nb_execution_mode = os.environ.get("HTE_MRT_DOCS_EXECUTE", "cache")  # "force" in the tests
nb_execution_cache_path = str(BUILD / (".jupyter_cache_quick" if QUICK else ".jupyter_cache"))
nb_execution_timeout = 3600  # seconds per cell (the full-size runs fit BAMM and bootstraps)
nb_execution_raise_on_error = True
nb_execution_in_temp = True
nb_merge_streams = True
nb_kernel_rgx_aliases = {".*": "python3"}

# -- API reference ---------------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"  # the numpydoc Parameters sections carry the types
autodoc_inherit_docstrings = True
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_param = True
napoleon_preprocess_types = False

intersphinx_mapping = {}  # offline builds: no inventories are fetched

# -- HTML ---------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"hte_mrt {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
html_theme_options = {
    "logo": {"text": "hte_mrt"},
    "navbar_end": ["search-button", "theme-switcher"],
    "navbar_persistent": [],
    "navbar_align": "left",
    # the worked examples get the full width (code, tables and figures); other pages a page TOC
    "secondary_sidebar_items": {"examples/*": []},
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
# an explicit colour mode: without one the theme's script logs a console error on first load
html_context = {"default_mode": "light"}
html_sidebars = {
    page: []
    for page in ["index", "getting-started", "estimands", "from-mrtanalysis", "conventions"]
}


# -- the worked examples: the notebooks of notebooks/, copied in at every build -------------------
def _copy_notebooks() -> None:
    target = DOCS / "examples"
    target.mkdir(exist_ok=True)
    sources = sorted((ROOT / "notebooks").glob("*.ipynb"))
    for old in target.glob("*.ipynb"):
        if old.name not in {p.name for p in sources}:
            old.unlink()
    for nb in sources:
        dest = target / nb.name
        if not dest.exists() or dest.read_bytes() != nb.read_bytes():
            shutil.copyfile(nb, dest)


# -- the API reference: one page per name in hte_mrt.__all__, grouped ---------------------------
API_GROUPS = {
    "Data": [
        "MRTData",
        "CRTData",
        "load_dataset",
        "MRTSimulation",
        "CRTSimulation",
        "DistalSimulation",
        "MediationSimulation",
        "JITSimulation",
    ],
    "Estimands and MRT estimators": [
        "ExcursionEffect",
        "wcls",
        "emee",
        "dcee",
        "mcee",
        "randomization_test",
        "bayesian_bootstrap",
        "BayesMRT",
        "crosscheck",
        "effect_size",
    ],
    "CRT heterogeneity (CATE learners)": [
        "cate",
        "calibration_test",
        "CRTLearner",
        "BayesianAdditiveMixedModel",
        "StochtreeBCF",
        "BARTMixed",
        "BayesianCausalForestMixed",
        "MixedEffectsHistGB",
        "MixedEffectsRandomForest",
        "GPBoostLearner",
        "EconMLCausalForest",
        "LinearInteraction",
    ],
    "Results": ["ExcursionResult", "BayesResult", "CATEResult", "EffectSizeResult"],
    "Designing an MRT": [
        "mrt_sample_size",
        "mrt_power",
        "power_table",
        "minimum_detectable_effect",
        "binary_sample_size",
        "binary_power",
        "Curve",
        "plot_power_curve",
        "simulated_power",
        "heterogeneity_power",
        "RandomizationDesign",
        "audit",
    ],
    "Plans and reports": ["load_plan", "validate_plan", "run_plan"],
    "Errors and warnings": ["HteMrtError", "HteMrtWarning"],
}


def _write_api_index() -> None:
    """``api/index.rst``: every public name once, in its group; names not listed go to "Other".

    Built from ``hte_mrt.__all__`` at each build, so renaming a public name never leaves the
    reference pointing at a name that has gone.
    """
    public = [n for n in hte_mrt.__all__ if not n.startswith("_")]
    placed: set[str] = set()
    lines = [
        ".. This file is generated by docs/conf.py from hte_mrt.__all__; do not edit.",
        "",
        "API reference",
        "=============",
        "",
        "Everything below is reachable as ``hm.<name>`` after ``import hte_mrt as hm``.",
        "Each page is generated from the object's numpydoc docstring.",
        "",
        ".. currentmodule:: hte_mrt",
        "",
    ]
    groups = dict(API_GROUPS)
    groups["Other"] = [n for n in public if not any(n in g for g in API_GROUPS.values())]
    for title, names in groups.items():
        names = [n for n in names if n in public and n not in placed]
        if not names:
            continue
        placed.update(names)
        lines += [title, "-" * len(title), "", ".. autosummary::", "   :toctree: generated", ""]
        lines += [f"   {n}" for n in names]
        lines.append("")
    api = DOCS / "api"
    shutil.rmtree(api / "generated", ignore_errors=True)  # autosummary rewrites every stub
    api.mkdir(exist_ok=True)
    text = "\n".join(lines)
    index = api / "index.rst"
    if not index.exists() or index.read_text() != text:
        index.write_text(text)


_copy_notebooks()
_write_api_index()


def _kernel_for_this_interpreter(app) -> None:
    """A ``python3`` kernelspec for this interpreter, first on the Jupyter path.

    A ``python3`` spec elsewhere (e.g. ``~/.local/share/jupyter/kernels``) could point at another
    Python without hte_mrt; this one runs ``sys.executable`` and inherits the environment above
    (PYTHONPATH to this checkout's sources, HTE_MRT_QUICK).
    """
    from ipykernel.kernelspec import install

    prefix = Path(app.outdir).parent / ".jupyter-prefix"
    install(user=False, prefix=str(prefix), kernel_name="python3")
    share = str(prefix / "share" / "jupyter")
    paths = [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    os.environ["JUPYTER_PATH"] = os.pathsep.join([share, *[p for p in paths if p != share]])


def setup(app):
    _kernel_for_this_interpreter(app)
    return {"parallel_read_safe": True}
