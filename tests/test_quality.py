"""Lint, formatting and strict types are part of the test suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def check(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}"


def test_ruff_lint() -> None:
    check(str(BIN / "ruff"), "check", "src", "tests", "bench")


def test_ruff_format() -> None:
    check(str(BIN / "ruff"), "format", "--check", "src", "tests", "bench")


def test_mypy_strict() -> None:
    check(str(BIN / "mypy"))
