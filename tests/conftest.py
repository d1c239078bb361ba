"""Shared fixtures: the repository root, the real params file, a tiny configuration."""
from __future__ import annotations

import copy
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from advrepro import paths
from advrepro.io import write_npz

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
    """The real params.yaml shrunk to seconds: a few hundred digits, 60 spoken digits, 100 urban
    sounds, two epochs."""
    p = copy.deepcopy(raw)
    m = p["mnist"]
    m["models"] = list(models)
    m["data"].update(n_train=200, n_test=60, image_size=8)
    m["model"].update(layer=16, hidden=8, s4_layers=1, patch=2)
    m["train"].update(batch_size=50, epochs=2, warmup_epochs=0)
    m["robust"].update(K=2)
    m["robust_small_step"].update(K=2)
    m["evaluation"].update(n_samples=40, batch_size=20, pgd_steps=3, spatial_rotations=[-10, 0, 10],
                           spatial_translations=[0, 1])
    g = p["gtsrb"]
    g["models"] = [x for x in models if x in ("ff", "s4")] or ["ff"]
    g["data"].update(train_per_class=4, test_per_class=1, render_size=24, image_size=8)
    g["model"].update(layer=16, hidden=8, s4_layers=1, patch=4)
    g["train"].update(batch_size=43, epochs=2, warmup_epochs=0)
    g["evaluation"].update(n_samples=43, batch_size=43, pgd_steps=3, spatial_rotations=[-10, 0, 10],
                           spatial_translations=[0, 1])
    s = p["speech"]
    s["data"]["corpus"].update(speakers=6, takes=1, accents=["en", "en-US"])
    s["data"].update(test_fraction=0.34)
    s["features"].update(raw_rate=1000, hop_length=1024, n_mels=16)
    s["augment"].update(views=1)
    s["raw"]["model"].update(layer=8, hidden=8, s4_layers=1, conv_channels=8, conv_kernel=50, conv_stride=50)
    s["spectrogram"]["model"].update(layer=8, hidden=8, s4_layers=1)
    u = p["urban"]
    u["data"]["corpus"].update(clips_per_class=10, sample_rates=[8000, 11025, 22050])
    u["data"].update(duration=2.0, test_folds=[9, 10])
    u["features"].update(raw_rate=1000, hop_length=1024, n_mels=16)
    u["augment"].update(views=1)
    u["raw"]["model"].update(layer=8, hidden=8, s4_layers=1, conv_channels=8, conv_kernel=100, conv_stride=100)
    u["spectrogram"]["model"].update(layer=8, hidden=8, s4_layers=1)
    for section in (s["raw"], s["spectrogram"], u["raw"], u["spectrogram"]):
        section["models"] = list(models)
        section["train"].update(batch_size=10, epochs=2, warmup_epochs=0)
        section["evaluation"].update(n_samples=20, batch_size=20, pgd_steps=3)
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


@pytest.fixture
def project(tmp_path, raw_params):
    """A working directory with params.yaml (tiny) and data/processed/mnist.npz (toy digits)."""
    p = tiny_params(raw_params)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    size = p["mnist"]["data"]["image_size"]
    xtr, ytr = toy_digits(p["mnist"]["data"]["n_train"], size, 0)
    xte, yte = toy_digits(p["mnist"]["data"]["n_test"], size, 1)
    write_npz(tmp_path / paths.processed("mnist"), x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return tmp_path


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "advrepro.cli", *args, "--quiet"], cwd=cwd, capture_output=True,
                          text=True)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
