"""Data-parallel training inside a job (`advrepro train --gpus K`, K > 1): each batch sharded over K devices,
weights replicated. On the CPU, JAX's host platform is split into K devices by XLA_FLAGS, which must be set before
JAX starts: every run is a fresh process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import serialization

from advrepro import checkpoint, devices, paths

from .conftest import digest, make_project, run_cli


def new_project(root: Path, raw_params: dict) -> Path:
    root.mkdir(parents=True)
    return make_project(root, raw_params)


def train_on(project: Path, exp: str, host_devices: int, *gpus: str) -> subprocess.CompletedProcess:
    """`advrepro train` in a fresh process whose JAX sees `host_devices` CPU devices (XLA_FLAGS before JAX starts)."""
    flags = os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={host_devices}"
    env = {k: v for k, v in os.environ.items() if k not in (devices.SLOTS_ENV, devices.VISIBLE, devices.DIR_ENV)}
    return subprocess.run([sys.executable, "-m", "advrepro.cli", "train", exp, "--quiet", "--log", "train.log", *gpus],
                          cwd=project, env=dict(env, XLA_FLAGS=flags.strip()), capture_output=True, text=True,
                          timeout=600)


def state_leaves(path: Path) -> dict[str, np.ndarray]:
    tree = serialization.msgpack_restore(checkpoint.read_header(path)[1])
    return {jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree_util.tree_leaves_with_path(tree)}


@pytest.mark.slow
def test_two_devices_train_as_one_within_float_rounding_and_repeat_byte_for_byte(tmp_path, raw_params):
    exp = "mnist-ff-alg1-reg"  # augmentation draws and Algorithm 1 per sample, the batch means across devices
    runs = {}
    for name, host, gpus in [("one", 1, ()), ("two", 2, ("--gpus", "2")), ("again", 2, ("--gpus", "2"))]:
        proj = new_project(tmp_path / name, raw_params)
        proc = train_on(proj, exp, host, *gpus)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[name] = proj
    log = (runs["two"] / "train.log").read_text()
    assert "data-parallel: each batch of 50 sharded over 2 devices (cpu:0, cpu:1), 25 per device" in log, log
    assert "data-parallel" not in (runs["one"] / "train.log").read_text()
    for out in (paths.checkpoint(exp), paths.history(exp)):
        assert digest(runs["two"] / out) == digest(runs["again"] / out), out
    one, two = state_leaves(runs["one"] / paths.checkpoint(exp)), state_leaves(runs["two"] / paths.checkpoint(exp))
    assert one.keys() == two.keys() and any(k.startswith("['params']") for k in one)
    for key in one:
        np.testing.assert_allclose(two[key], one[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_a_batch_the_devices_do_not_divide_is_one_line_naming_the_key(project):
    proc = run_cli(project, "train", "mnist-ff-plain", "--gpus", "3")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()  # the log goes to stderr too: the slot lines, then the one error
    assert [line for line in lines if "error" in line.lower()] == lines[-1:] == [
        "error: mnist.train.batch_size: bad value 50: data-parallel training over 3 devices needs a batch size "
        "divisible by 3 (or hold fewer devices: --gpus)"]
    assert not (project / paths.checkpoint("mnist-ff-plain")).exists()
