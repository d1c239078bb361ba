"""Crash safety: a training process killed with SIGKILL mid-epoch resumes from its last complete
epoch and ends with the bytes of an uninterrupted run; a diverging loss stops the run and keeps the
last good state; a state of another configuration is never resumed."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from advrepro import checkpoint, paths
from advrepro.io import write_npz

from .conftest import digest, run_cli, toy_digits

pytestmark = pytest.mark.slow  # real training processes, killed and restarted

EXP = "mnist-ff-alg1"


def long_epochs(project: Path, n_train: int = 1000, batch_size: int = 5, epochs: int = 3) -> None:
    """Many small batches, so that an epoch lasts long enough to be killed in the middle."""
    p = yaml.safe_load((project / "params.yaml").read_text())
    p["mnist"]["data"]["n_train"] = n_train
    p["mnist"]["train"].update(batch_size=batch_size, epochs=epochs)
    (project / "params.yaml").write_text(yaml.safe_dump(p))
    size = p["mnist"]["data"]["image_size"]
    xtr, ytr = toy_digits(n_train, size, 0)
    xte, yte = toy_digits(p["mnist"]["data"]["n_test"], size, 1)
    write_npz(project / paths.processed("mnist"), x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)


def saved_epoch(path: Path) -> int | None:
    try:
        return checkpoint.read_header(path)[0]["epoch"]
    except checkpoint.CheckpointError:
        return None


def kill_after_first_epoch(project: Path, exp: str) -> int:
    """Start `advrepro train`, SIGKILL it as soon as the state of epoch 1 is on disk; returns the
    epoch the state holds after the kill."""
    state = project / paths.state(exp)
    proc = subprocess.Popen([sys.executable, "-m", "advrepro.cli", "train", exp, "--quiet"], cwd=project,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while saved_epoch(state) is None:
        assert proc.poll() is None, "training ended before its first epoch was saved"
        assert time.monotonic() < deadline, "no state after 300 s"
        time.sleep(0.005)
    assert proc.poll() is None, "training finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return saved_epoch(state)


def test_sigkill_mid_epoch_then_restart_gives_the_bytes_of_an_uninterrupted_run(project, tmp_path_factory):
    long_epochs(project)
    clean = tmp_path_factory.mktemp("uninterrupted")
    shutil.copytree(project, clean, dirs_exist_ok=True)

    epoch = kill_after_first_epoch(project, EXP)
    assert epoch is not None and 1 <= epoch < 3
    assert not (project / paths.checkpoint(EXP)).exists()  # nothing a later run would take as complete
    assert not (project / paths.history(EXP)).exists()
    header, _ = checkpoint.read_header(project / paths.state(EXP))
    assert header["next_step"] == epoch * 200 and header["seed"] == 0 and len(header["history"]) == epoch

    resumed = run_cli(project, "train", EXP, "--log", "train.log")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming after epoch {epoch} of 3" in (project / "train.log").read_text()
    assert not (project / paths.state(EXP)).exists()  # done: nothing left to resume

    assert run_cli(clean, "train", EXP).returncode == 0
    for where in (project, clean):
        proc = run_cli(where, "evaluate", EXP)
        assert proc.returncode == 0, proc.stderr
    for rel in (paths.checkpoint(EXP), paths.history(EXP), paths.metrics(EXP), paths.examples(EXP)):
        assert digest(project / rel) == digest(clean / rel), rel


def test_a_state_of_another_configuration_or_a_damaged_one_is_not_resumed(project, tmp_path_factory):
    exp = "mnist-ff-plain"
    clean = tmp_path_factory.mktemp("clean")
    shutil.copytree(project, clean, dirs_exist_ok=True)
    assert run_cli(clean, "train", exp).returncode == 0
    header, _ = checkpoint.read_header(clean / paths.checkpoint(exp))
    state = project / paths.state(exp)
    state.parent.mkdir(parents=True)

    # the final checkpoint of the same run, posing as a state: it has no fingerprint
    shutil.copy(clean / paths.checkpoint(exp), state)
    proc = run_cli(project, "train", exp, "--log", "a.log")
    assert proc.returncode == 0, proc.stderr
    assert "saved by another configuration or dataset; not resumed" in (project / "a.log").read_text()
    assert digest(project / paths.checkpoint(exp)) == digest(clean / paths.checkpoint(exp))

    # a truncated state
    state.write_bytes((clean / paths.checkpoint(exp)).read_bytes()[:-7])
    proc = run_cli(project, "train", exp, "--log", "b.log")
    assert proc.returncode == 0, proc.stderr
    assert "does not match its checksum" in (project / "b.log").read_text()
    assert digest(project / paths.checkpoint(exp)) == digest(clean / paths.checkpoint(exp))
    assert header["epoch"] == 2


def test_a_diverging_loss_stops_the_run_naming_the_epoch_and_keeps_the_last_good_state(project, monkeypatch):
    """One batch per epoch and a warm-up from 0: epoch 1 takes a step of size 0, epoch 2 one of
    size 1e30 (its loss is measured before the step), so the loss of epoch 3 is not finite. params.yaml
    refuses such a learning rate (over 10), so the spec is built here without the schema, in-process."""
    from advrepro import data, train
    from advrepro.errors import AdvreproError
    from advrepro.experiments import get_experiment
    from advrepro.params import resolve
    from advrepro.spec import experiment_spec

    exp = "mnist-ff-plain"
    p = yaml.safe_load((project / "params.yaml").read_text())
    p["mnist"]["train"].update(batch_size=p["mnist"]["data"]["n_train"], epochs=4, lr=1e30, warmup_epochs=2)
    p = resolve(p)
    monkeypatch.chdir(project)
    with pytest.raises(AdvreproError) as failure:  # the CLI prints it as one line, exit 2
        train.train(experiment_spec(p, get_experiment(p, exp)), data.load("mnist"), progress=False)
    message = str(failure.value)
    assert "mnist-ff-plain: training loss became" in message and "in epoch 3" in message
    assert "state after epoch 2 is kept" in message
    header, _ = checkpoint.read_header(project / paths.state(exp))  # intact: its checksum holds
    assert header["epoch"] == 2 and all(h["train_loss"] < 10 for h in header["history"])
    for out in (paths.checkpoint(exp), paths.history(exp), paths.timing(exp)):
        assert not (project / out).exists()
