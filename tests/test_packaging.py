"""Packaging checks: environment.yml lists the runtime dependencies of pyproject.toml, and
``python -m labkit info`` reports the versions actually installed.

PyYAML is not a dependency of the lab, so environment.yml's small subset of YAML (top-level
scalars and lists, one nested ``pip:`` list) is read here; where PyYAML happens to be installed,
the reading is checked against it.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# PyPI name -> conda-forge name, only where they differ.
PYPI_TO_CONDA = {"torch": "pytorch", "lmdb": "python-lmdb"}
# Packages environment.yml needs for itself, not runtime dependencies of labkit.
CONDA_TOOLS = {"python", "pip"}


def read_environment(text: str) -> dict:
    """Parse environment.yml's YAML subset into the same structure as ``yaml.safe_load``."""
    env: dict = {}
    key = item_indent = nested = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0 and stripped.endswith(":"):
            key, item_indent = stripped[:-1], None
            env[key] = []
        elif indent == 0:
            name, _, value = stripped.partition(": ")
            env[name] = value
        elif stripped.startswith("- ") and stripped.endswith(":"):
            nested = []
            env[key].append({stripped[2:-1]: nested})
        elif stripped.startswith("- ") and (item_indent is None or indent == item_indent):
            item_indent = indent
            env[key].append(stripped[2:])
        elif stripped.startswith("- ") and nested is not None and indent > item_indent:
            nested.append(stripped[2:])
        else:
            raise ValueError(f"environment.yml: line outside the supported YAML subset: {line!r}")
    return env


def split_requirement(spec: str) -> tuple[str, str]:
    """``"POT >= 0.9.3"`` -> ``("pot", ">=0.9.3")``: normalised name and version bound."""
    match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*([<>=!~].*)?", spec.strip())
    if match is None:
        raise ValueError(f"not a plain 'name[bound]' requirement: {spec!r}")
    name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
    return name, re.sub(r"\s+", "", match.group(2) or "")


def drift(pyproject_deps: list[str], conda_deps: list) -> list[str]:
    """Differences between pyproject's runtime dependencies and environment.yml's conda ones."""
    wanted = dict(split_requirement(s) for s in pyproject_deps)
    wanted = {PYPI_TO_CONDA.get(name, name): bound for name, bound in wanted.items()}
    listed = dict(split_requirement(s) for s in conda_deps if isinstance(s, str))
    listed = {name: bound for name, bound in listed.items() if name not in CONDA_TOOLS}
    problems = []
    if missing := sorted(wanted.keys() - listed.keys()):
        problems.append(f"environment.yml lacks {missing} (in pyproject.toml)")
    if extra := sorted(listed.keys() - wanted.keys()):
        problems.append(f"environment.yml has {extra} (not in pyproject.toml)")
    problems += [
        f"{name}: pyproject.toml says {wanted[name]!r}, environment.yml says {listed[name]!r}"
        for name in sorted(wanted.keys() & listed.keys())
        if wanted[name] and listed[name] and wanted[name] != listed[name]
    ]
    return problems


@pytest.fixture(scope="module")
def pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def environment() -> dict:
    return read_environment((ROOT / "environment.yml").read_text())


def test_environment_reading_agrees_with_pyyaml_where_installed(environment):
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (not a lab dependency)")
    assert environment == yaml.safe_load((ROOT / "environment.yml").read_text())


def test_environment_header(environment, pyproject):
    assert environment["name"] == "wgan-lab"
    assert environment["channels"] == ["conda-forge"]
    bounds = dict(split_requirement(s) for s in environment["dependencies"] if isinstance(s, str))
    assert bounds["python"] == pyproject["project"]["requires-python"]
    assert {"pip": ["-e .[dev]"]} in environment["dependencies"]
    assert "dev" in pyproject["project"]["optional-dependencies"]


def test_runtime_dependencies_do_not_drift(environment, pyproject):
    problems = drift(pyproject["project"]["dependencies"], environment["dependencies"])
    assert not problems, "; ".join(problems)


def test_drift_names_missing_extra_and_different_bounds():
    problems = drift(
        ["torch>=2.1", "numpy>=1.24", "tqdm", "Foo_Bar>=1"],
        ["python>=3.10", "pip", "pytorch>=2.0", "numpy >= 1.24", "tqdm>=4", "pandas",
         {"pip": ["-e ."]}],
    )
    assert problems == [
        "environment.yml lacks ['foo-bar'] (in pyproject.toml)",
        "environment.yml has ['pandas'] (not in pyproject.toml)",
        "pytorch: pyproject.toml says '>=2.1', environment.yml says '>=2.0'",
    ]
    assert drift(["torch>=2.1"], ["pytorch>=2.1", "pip"]) == []


def test_cli_info_prints_installed_versions():
    import numpy
    import ot
    import torch

    import labkit

    done = subprocess.run(
        [sys.executable, "-m", "labkit", "info"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(":", 1) for line in done.stdout.splitlines())
    printed = {key.strip(): value.strip() for key, value in lines.items()}
    assert list(printed) == ["labkit", "torch", "POT", "numpy", "device", "gpu"]
    assert printed["labkit"] == labkit.__version__
    assert printed["torch"] == torch.__version__
    assert printed["POT"] == ot.__version__
    assert printed["numpy"] == numpy.__version__
    assert printed["device"].startswith("cpu")
    if torch.cuda.is_available():
        assert printed["gpu"] == f"yes: {torch.cuda.get_device_name(0)}"
    else:
        assert printed["gpu"] == "no"
