"""Node for the interop tests: find `node`, install a test folder's npm packages from its lock file.

Without node/npm the tests are skipped locally and fail when CI=true (a missing service in CI is a
failure, not a skip).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

NPM_CI_TIMEOUT = 300.0


def unavailable(what: str, reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"{what} need it: {reason}")


def node_with_packages(folder: Path, packages: Sequence[str], what: str) -> str:
    """The path of `node`, once `folder/node_modules` holds `packages` (`npm ci` when missing)."""
    node = shutil.which("node")
    if node is None:
        unavailable(what, "`node` is not on PATH")
    assert node is not None
    modules = folder / "node_modules"

    def installed() -> bool:
        return all((modules / name / "package.json").is_file() for name in packages)

    if installed():
        return node
    npm = shutil.which("npm")
    if npm is None:
        unavailable(what, f"`npm` is not on PATH and {modules} is missing")
    assert npm is not None
    try:
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=folder, capture_output=True, text=True,
            timeout=NPM_CI_TIMEOUT,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        unavailable(what, f"`npm ci` did not finish within {NPM_CI_TIMEOUT}s")
    else:
        if result.returncode != 0 or not installed():
            unavailable(what, f"`npm ci` failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        (modules / ".installed").touch()  # the Makefile's stamp
    return node
