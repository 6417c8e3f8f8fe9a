"""The package as a user installs it: a built wheel, not this source tree.

An editable install (the README's test command) reads the modules from ``src/``, so a module or a
data file left out of the wheel would pass every other test.  Here the wheel is built with pip,
unpacked with ``pip install --no-deps --target`` into a scratch folder that shadows the editable
install on ``PYTHONPATH``, and the console script, an experiment module and a tiny run are used
from it in fresh processes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
SRC = ROOT / "src" / "npoptim"

pytestmark = pytest.mark.slow


def _run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    tail = f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}:\n{tail}"
    return proc


def _can_build_offline() -> bool:
    """Whether this environment's setuptools can build a wheel itself (>= 70.1 has bdist_wheel built in,
    older ones need the ``wheel`` package); otherwise pip fetches a current one from the package index
    into an isolated build environment, as the README's set-up does."""
    try:
        import setuptools
    except ImportError:
        return False
    major, minor = (int(x) for x in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path, dict[str, str]]:
    """(the wheel, the folder it is installed in, an environment whose ``npoptim`` is that install)."""
    if not SRC.is_dir():
        pytest.skip(f"no source tree at {SRC} to build a wheel from")
    tmp = tmp_path_factory.mktemp("wheel")
    isolation = ["--no-build-isolation"] if _can_build_offline() else []
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # Built from a pristine copy of what the wheel is made of: an in-place build would reuse a stale
    # build/lib (or egg-info) of an earlier one and hide a module that the package list leaves out.
    tree = tmp / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, tree / name)
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-w", str(tmp / "dist"), str(tree)],
         env, tmp, timeout=600)
    (wheel,) = (tmp / "dist").glob("npoptim-*.whl")
    target = tmp / "site"
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--target", str(target), str(wheel)],
         env, tmp)
    env["PYTHONPATH"] = str(target)  # ahead of site-packages, so ahead of the editable install
    return wheel, target, env


def test_wheel_holds_every_module_of_the_source_tree(installed):
    wheel, _, _ = installed
    with zipfile.ZipFile(wheel) as zf:
        in_wheel = {n for n in zf.namelist() if n.startswith("npoptim/") and not n.endswith("/")}
    in_src = {
        "npoptim/" + p.relative_to(SRC).as_posix()
        for p in SRC.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".nbi", ".nbc")
    }
    assert in_src, "found no source files"
    assert sorted(in_src - in_wheel) == [], "files of src/npoptim missing from the wheel"
    assert not any(n.startswith("tests/") for n in zf.namelist()), "the wheel ships the test suite"


def test_installed_package_is_the_one_imported(installed):
    _, target, env = installed
    out = _run([sys.executable, "-c", "import npoptim, npoptim.experiments.compare as c; print(npoptim.__file__)"],
               env, target.parent)
    assert Path(out.stdout.strip()).resolve().is_relative_to(target.resolve()), out.stdout


def test_console_script_version(installed):
    _, target, env = installed
    from npoptim import __version__

    script = target / "bin" / "npoptim"
    assert script.is_file(), f"the wheel installed no console script (looked for {script})"
    out = _run([sys.executable, str(script), "--version"], env, target.parent)
    assert out.stdout.strip() == f"npoptim {__version__}"


def test_tiny_trajectories_run_from_the_wheel(installed, tmp_path):
    _, target, env = installed
    out_dir = tmp_path / "traj"
    _run([sys.executable, str(target / "bin" / "npoptim"), "trajectories", "--steps", "5", "--quiet",
          "--out", str(out_dir)], env, tmp_path)
    files = {p.name for p in out_dir.iterdir()}
    assert "trajectories.png" in files, files
    results = json.loads(next(out_dir.glob("*.json")).read_text())
    # The book's SGD (eta 0.95) on x^2/20 + y^2 from (-7, 2): y_{k+1} = (1 - 2 eta) y_k = -0.9 y_k,
    # x_{k+1} = (1 - eta/10) x_k = 0.905 x_k.  Each step is 3 correctly rounded operations (x/10,
    # times eta, minus), so 5 steps are within gamma_15 ~ 1.7e-15 of the closed form (its pow: 1 ulp).
    final = results["optimizers"]["sgd"]["final_point"]
    assert final == pytest.approx([-7 * 0.905**5, 2 * (-0.9) ** 5], rel=1e-14)


_WITHOUT_NUMBA = r"""
import importlib.abc, sys

class _NoNumba(importlib.abc.MetaPathFinder):  # as if numba were not installed
    def find_spec(self, name, path=None, target=None):
        if name == "numba" or name.startswith("numba."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, _NoNumba())
import importlib.util
importlib.util.find_spec = (lambda f: lambda name, *a: None if name.split(".")[0] == "numba" else f(name, *a))(
    importlib.util.find_spec)

import numpy as np
import npoptim
from npoptim.cli import main

n = 1 << 19  # above the size at which "auto" would choose the compiled path
p, g = {"w": np.ones(n)}, {"w": np.full(n, 0.5)}
opt = npoptim.Adam(lr=0.1)
opt.update(p, g)
assert opt.last_update_backend == "numpy", opt.last_update_backend
# Adam's first step is lr * g / (|g| + eps): both sides are ~10 correctly rounded operations, so
# they agree to gamma_18 ~ 2e-15 relative to the step (0.1) -- on any CPU, no BLAS involved.
assert np.allclose(p["w"], 1.0 - 0.1 * 0.5 / (0.5 + 1e-8), rtol=0, atol=2e-15 * 0.1), p["w"][:3]
try:
    npoptim.Adam(backend="numba")
except ValueError as e:
    assert "backend='numba'" in str(e) and "not installed" in str(e), e
else:
    raise AssertionError("backend='numba' without numba was accepted")
assert main(["trajectories", "--steps", "3", "--quiet", "--out", sys.argv[1]]) == 0
assert "numba" not in sys.modules
print("ok")
"""


def test_numpy_fallback_without_numba(tmp_path):
    """numba absent: "auto" runs the NumPy path, "numba" is refused naming why, the CLI works."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = _run([sys.executable, "-c", _WITHOUT_NUMBA, str(tmp_path / "t")], env, tmp_path)
    assert out.stdout.strip().endswith("ok")


def test_every_module_that_imports_numba_at_its_top_is_skipped_for_doctests_without_it():
    """The root conftest.py must name each such module, or a numba-less run fails collecting it (seen once
    when fused/serial.py arrived)."""
    import ast
    import runpy

    root = Path(__file__).resolve().parents[1]
    listed = set(runpy.run_path(str(root / "conftest.py"))["NUMBA_MODULES"])
    top_level = set()
    for path in sorted((root / "src" / "npoptim").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in tree.body:  # module level only: imports inside functions run only when called
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "numba" or n.startswith("numba.") for n in names):
                top_level.add(path.relative_to(root).as_posix())
    assert top_level == listed
