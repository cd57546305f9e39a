"""The distribution: ``python -m build`` gives an sdist and a wheel that ``twine check`` accepts,
and the wheel installs into a fresh virtual environment and works there (offline).

The build runs without isolation (``--no-isolation``: the current environment's setuptools,
no download) on a copy of the project's packaging inputs, so the source tree gets no
``build/`` or ``*.egg-info``. The fresh venv installs the wheel alone (``--no-deps --no-index``);
its dependencies (numpy, pandas, pymc, ...) are made importable by a ``.pth`` file pointing to
this environment's site-packages, and the test checks that ``hte_mrt`` itself is imported from
the installed wheel, not from the source tree (``PYTHONPATH`` is cleared).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INPUTS = (
    "pyproject.toml",
    "MANIFEST.in",
    "README.md",
    "CITATION.cff",
    "CHANGELOG.md",
    "LICENSE",
    "src",
)

pytest.importorskip("build", reason="needs the 'build' package (the test extra)")
pytest.importorskip("twine", reason="needs the 'twine' package (the test extra)")


def _run(args: list[str], cwd: Path, env: dict | None = None) -> str:
    res = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"{' '.join(map(str, args))} failed:\n{res.stdout}\n{res.stderr}"
    return res.stdout


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PIP_NO_INDEX"] = "1"  # never the network
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """sdist + wheel built from a copy of the packaging inputs."""
    tmp = tmp_path_factory.mktemp("pkg")
    project = tmp / "project"
    project.mkdir()
    for name in INPUTS:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(
                src, project / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
            )
        elif src.is_file():
            shutil.copy2(src, project / name)
    out = tmp / "dist"
    _run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(project)],
        cwd=tmp,
        env=_clean_env(),
    )
    return out


def test_sdist_and_wheel_pass_twine_check(dist):
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in dist.iterdir())
    assert wheels[0].name.startswith("hte_mrt-0.1.0-py3-none-any")
    _run([sys.executable, "-m", "twine", "check", "--strict", *map(str, wheels + sdists)], dist)
    # the bundled data sets travel in both
    names = zipfile.ZipFile(wheels[0]).namelist()
    for f in ("heartsteps_v1.csv.gz", "tassh_ghana.csv.gz", "README.md"):
        assert f"hte_mrt/data/files/{f}" in names, f
    assert any(n.endswith("entry_points.txt") for n in names)
    with tarfile.open(sdists[0]) as tar:
        members = tar.getnames()
    assert any(m.endswith("src/hte_mrt/data/files/heartsteps_v1.csv.gz") for m in members)
    assert any(m.endswith("CITATION.cff") for m in members)


def test_wheel_installs_and_runs_in_a_fresh_venv(dist, tmp_path):
    wheel = next(dist.glob("*.whl"))
    venv = tmp_path / "venv"
    env = _clean_env()
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    py = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    _run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        tmp_path,
        env,
    )
    # dependencies from this environment (after the venv's own site-packages on sys.path)
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     tmp_path, env).strip())  # fmt: skip
    here = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "_hte_mrt_test_deps.pth").write_text("\n".join(here) + "\n")
    script = (
        "import hte_mrt as hm, pathlib, sys\n"
        f"venv = pathlib.Path({str(venv)!r}).resolve()\n"
        "where = pathlib.Path(hm.__file__).resolve()\n"
        "assert venv in where.parents, f'hte_mrt imported from {where}, not the wheel'\n"
        "data = hm.load_dataset('heartsteps', as_data=True)\n"
        "fit = hm.wcls(data, '~ 1', '~ jbsteps30pre_log')\n"
        "est = float(fit.table()['estimate'].iloc[0])\n"
        "assert abs(est - 0.1312) < 5e-4, est\n"
        "print(where.parent, round(est, 4))\n"
    )
    out = _run([str(py), "-c", script], tmp_path, env)
    assert str(venv.resolve()) in out and "0.1312" in out
    # the console script is installed and runs
    exe = venv / ("Scripts/hte-mrt.exe" if os.name == "nt" else "bin/hte-mrt")
    assert "heartsteps" in _run([str(exe), "datasets"], tmp_path, env)
