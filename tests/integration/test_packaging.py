"""``pip install .`` into a fresh virtualenv, as a user would: the library installs, reports its version,
ships its type information, and brings none of the lab's dependencies or packages."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAB_ONLY = {"gevent", "rich", "matplotlib", "flower"}


def run(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=900, cwd=cwd, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("user")
    source = home / "source"  # a copy of what the distribution is made of, so the build leaves the checkout alone
    shutil.copytree(ROOT / "celery_futures", source / "celery_futures", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    run(sys.executable, "-m", "venv", home / "venv", cwd=home)
    run(home / "venv" / "bin" / "pip", "install", "-q", "-c", ROOT / "requirements.lock", source, cwd=home)
    return home


def test_the_library_imports_and_reports_its_version(fresh_venv: Path) -> None:
    python = fresh_venv / "venv" / "bin" / "python"
    code = ("import importlib.metadata, pathlib, celery_futures; "
            "print(celery_futures.__version__, importlib.metadata.version('celery-futures'), "
            "(pathlib.Path(celery_futures.__file__).parent / 'py.typed').is_file(), "
            "celery_futures.CeleryExecutor.__module__)")
    version, metadata_version, typed, home = run(python, "-c", code, cwd=fresh_venv).split()
    assert version == metadata_version and version.count(".") == 2
    assert typed == "True" and home == "celery_futures.client.executor"


def test_it_brings_nothing_of_the_lab(fresh_venv: Path) -> None:
    listed = json.loads(run(fresh_venv / "venv" / "bin" / "pip", "list", "--format", "json", cwd=fresh_venv))
    names = {package["name"].lower() for package in listed}
    assert {"celery", "kombu", "redis", "celery-futures"} <= names
    assert not names & LAB_ONLY
    python = fresh_venv / "venv" / "bin" / "python"
    found = run(python, "-c", "import importlib.util as u; print([u.find_spec(m) is not None for m in "
                              "('worker', 'producer', 'acme')])", cwd=fresh_venv)
    assert found.strip() == "[False, False, False]"
