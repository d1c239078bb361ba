"""Shared fixtures: the repository root, the real params file, a tiny configuration."""
from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")


@pytest.fixture(scope="session")
def raw_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def tiny_params(raw: dict, models=("ff",)) -> dict:
    """The real params.yaml shrunk to seconds: a few hundred digits, one epoch, K=1."""
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
    return p


@pytest.fixture
def tiny_raw(raw_params) -> dict:
    return tiny_params(raw_params)
