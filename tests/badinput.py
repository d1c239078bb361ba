"""The bad-input harness shared by the tables of bad inputs (tests/test_bad_*.py).

A case breaks a working tiny project (the `project` fixture of conftest.py), runs one `advrepro`
command, and the harness asserts what issue 15 promises: exit code 2, one `error:` line naming the
culprit, no traceback, and no file of the project changed (the JAX compilation cache aside).
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .conftest import run_cli


@dataclass(frozen=True)
class Bad:
    id: str                                   # what the test report shows
    args: tuple[str, ...]                     # the advrepro command line
    culprit: str                              # must appear in the error line (a file, key or value)
    setup: Callable[[Path], None] = field(default=lambda proj: None, repr=False)  # breaks the project
    code: int = 2


def snapshot(root: Path, skip: tuple[str, ...] = (".cache",)) -> dict[str, str]:
    """sha256 of every file (and the type of everything else) under root, the JAX cache aside."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(skip):
            continue
        if path.is_file() and not path.is_symlink():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = "dir" if path.is_dir() else "other"
    return out


def check(proj: Path, case: Bad, timeout: int = 120) -> str:
    """Run the case; returns its error line."""
    case.setup(proj)
    before = snapshot(proj)
    proc = run_cli(proj, *case.args, timeout=timeout)
    after = snapshot(proj)
    stderr = proc.stderr
    assert "Traceback" not in stderr, f"{case.id}: traceback:\n{stderr[-3000:]}"
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == case.code, f"{case.id}: exit {proc.returncode}, expected {case.code}:\n{stderr[-2000:]}"
    assert len(errors) == 1, f"{case.id}: expected one error line:\n{stderr[-2000:]}"
    assert case.culprit in errors[0], f"{case.id}: {case.culprit!r} not named in {errors[0]!r}"
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert changed == [], f"{case.id}: files changed: {changed}"
    return errors[0]
