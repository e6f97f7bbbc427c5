"""The layout stays readable: small modules, short functions (issue 15's limits).

Import rules (the core imports no outer layer, no cycles) are import-linter contracts in
``pyproject.toml``, checked by ``lint-imports`` in ``.ci/run``.
"""

from __future__ import annotations

import ast
from pathlib import Path

from vot.config import REPO_ROOT

PACKAGES = ("vot", "workers", "review_ui")
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60
# Functions that are declarative tables (a parser, a list of columns), allowed to be longer.
TABLES: set[str] = set()


def sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (REPO_ROOT / pkg).rglob("*.py"))


def test_the_packages_are_found() -> None:
    found = {p.relative_to(REPO_ROOT).parts[0] for p in sources()}
    assert found == set(PACKAGES)


def test_no_module_is_longer_than_450_lines() -> None:
    long = {
        str(p.relative_to(REPO_ROOT)): n
        for p in sources()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, long


def test_no_function_is_longer_than_60_lines() -> None:
    long = {}
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{path.relative_to(REPO_ROOT)}:{node.name}"
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES and name not in TABLES:
                    long[name] = lines
    assert not long, long


def test_ci_fails_without_the_real_clips_instead_of_skipping(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("VOT_")}
    env.update(VOT_TEST_REQUIRE_SHARED_DATA="1", VOT_TEST_SHARED_DATA=str(tmp_path / "absent"))
    run = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_layout.py"]
    done = subprocess.run(
        [*run, "-k", "packages_are_found"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "the real clips are missing" in done.stdout + done.stderr
