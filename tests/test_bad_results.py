"""Bad results, checkpoints and report inputs: one `error:` line naming the culprit, exit 2, nothing changed
(tests/badinput.py); damaged resume states ignored; training's and evaluation's outputs all or nothing."""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from advrepro import checkpoint, paths
from advrepro.io import read_json, write_npz

from .badinput import Bad, check
from .conftest import ROOT, digest, make_project, run_cli, tiny_params

EXP = "mnist-ff-plain"
CKPT, METRICS, HISTORY = paths.checkpoint(EXP), paths.metrics(EXP), paths.history(EXP)
OUTPUTS = (CKPT, HISTORY, paths.timing(EXP), METRICS, paths.examples(EXP))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, raw_params) -> Path:
    """A tiny project (as conftest's `project`) with mnist-ff-plain trained and evaluated, and the thesis's
    numbers; every case works on a copy."""
    root = make_project(tmp_path_factory.mktemp("trained"), raw_params)
    shutil.copytree(ROOT / "paper" / "thesis", root / "paper" / "thesis")
    for cmd in ("train", "evaluate"):
        proc = run_cli(root, cmd, EXP)
        assert proc.returncode == 0, proc.stderr
    # Table 5.1's other rows: copies of the trained one, enough for the table's checks
    for other in ("mnist-ff-alg1", "mnist-ff-reg", "mnist-ff-alg1-reg"):
        for rel, copy in ((METRICS, paths.metrics(other)), (HISTORY, paths.history(other))):
            (root / copy).write_text(json.dumps({**read_json(root / rel), "experiment": other}))
    return root


@pytest.fixture
def proj(trained, tmp_path) -> Path:
    shutil.copytree(trained, tmp_path / "p")
    return tmp_path / "p"


# --- ways to break a project ----------------------------------------------------------------------------------

def make_dir(rel: str):
    def setup(proj: Path) -> None:
        path = proj / rel
        if path.is_file():
            path.unlink()
        (path / "inside").mkdir(parents=True)
    return setup


def rewrite_checkpoint(edit):
    """Re-encode the checkpoint with `edit(header) -> header object` and a checksum that holds."""
    def setup(proj: Path) -> None:
        header, body = checkpoint.read_header(proj / CKPT)
        rest = json.dumps(edit(header)).encode() + b"\n" + body
        (proj / CKPT).write_bytes(checkpoint.MAGIC + b"sha256:" + hashlib.sha256(rest).hexdigest().encode() + b"\n"
                                  + rest)
    return setup


def edit_header_bytes(proj: Path) -> None:
    """Change the epoch inside the header, leaving the checksum: the edit must be detected."""
    blob = (proj / CKPT).read_bytes()
    assert blob.count(b'"epoch": 2') == 1
    (proj / CKPT).write_bytes(blob.replace(b'"epoch": 2', b'"epoch": 9'))


def version_1(blob: bytes) -> bytes:
    """A format-2 checkpoint as format 1 wrote it: the header (with the body's SHA-256 only), then the body."""
    header, body = _split(blob)
    header["sha256"] = hashlib.sha256(body).hexdigest()
    return b"ADVREPRO-CHECKPOINT 1\n" + json.dumps(header, sort_keys=True).encode() + b"\n" + body


def _split(blob: bytes) -> tuple[dict, bytes]:
    rest = blob[len(checkpoint.MAGIC):].partition(b"\n")[2]
    head, _, body = rest.partition(b"\n")
    return json.loads(head), body


def old_checkpoint(proj: Path) -> None:
    (proj / CKPT).write_bytes(version_1((proj / CKPT).read_bytes()))


def nan_weights(proj: Path) -> None:
    from flax import serialization

    header, body = checkpoint.read_header(proj / CKPT)
    state = serialization.msgpack_restore(body)
    state["params"] = _nan(state["params"])
    (proj / CKPT).write_bytes(checkpoint.encode(header, serialization.msgpack_serialize(state)))


def _nan(tree):
    if isinstance(tree, dict):
        return {k: _nan(v) for k, v in tree.items()}
    return np.full_like(tree, np.nan)


def edit_json(rel: str, edit):
    def setup(proj: Path) -> None:
        path = proj / rel
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    return setup


def truncate(rel: str, keep: int = 50):
    def setup(proj: Path) -> None:
        (proj / rel).write_bytes((proj / rel).read_bytes()[:keep])
    return setup


def remove(rel: str):
    def setup(proj: Path) -> None:
        (proj / rel).unlink()
    return setup


def empty_split(split: str):
    def setup(proj: Path) -> None:
        path = proj / paths.processed("mnist")
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
        arrays[f"x_{split}"], arrays[f"y_{split}"] = arrays[f"x_{split}"][:0], arrays[f"y_{split}"][:0]
        write_npz(path, **arrays)
    return setup


def offline_reference(proj: Path) -> None:
    """The committed reference (offline profile) in place of the tiny project."""
    for rel in ("results/metrics", "results/history"):
        shutil.rmtree(proj / rel)
        shutil.copytree(ROOT / rel, proj / rel)
    shutil.copy(ROOT / "params.yaml", proj / "params.yaml")


CASES = [
    Bad("train: checkpoint path is a directory", ("train", EXP), CKPT, make_dir(CKPT)),
    Bad("train: state path is a directory", ("train", EXP), paths.state(EXP), make_dir(paths.state(EXP))),
    Bad("train: --log path is a directory", ("train", EXP, "--log", "results/logs/t.log"), "results/logs/t.log",
        make_dir("results/logs/t.log")),
    Bad("train: empty training set", ("train", EXP), paths.processed("mnist"), empty_split("train")),
    Bad("evaluate: checkpoint path is a directory", ("evaluate", EXP), CKPT, make_dir(CKPT)),
    Bad("evaluate: metrics path is a directory", ("evaluate", EXP), METRICS, make_dir(METRICS)),
    Bad("evaluate: examples path is a directory", ("evaluate", EXP), paths.examples(EXP),
        make_dir(paths.examples(EXP))),
    Bad("evaluate: checkpoint header a JSON list", ("evaluate", EXP), CKPT,
        rewrite_checkpoint(lambda h: [h["experiment"], h["epoch"]])),
    Bad("evaluate: checkpoint header lacks the experiment", ("evaluate", EXP), CKPT,
        rewrite_checkpoint(lambda h: {"epoch": h["epoch"]})),
    Bad("evaluate: checkpoint header epoch a string", ("evaluate", EXP), CKPT,
        rewrite_checkpoint(lambda h: {**h, "epoch": "2"})),
    Bad("evaluate: checkpoint header edited", ("evaluate", EXP), CKPT, edit_header_bytes),
    Bad("evaluate: checkpoint of format 1", ("evaluate", EXP), CKPT, old_checkpoint),
    Bad("evaluate: NaN weights", ("evaluate", EXP), CKPT, nan_weights),
    Bad("evaluate: empty test set", ("evaluate", EXP), paths.processed("mnist"), empty_split("test")),
    Bad("table: truncated metrics", ("table", "5_1"), METRICS, truncate(METRICS)),
    Bad("table: metrics a JSON list", ("table", "5_1"), METRICS, edit_json(METRICS, lambda m: [m])),
    Bad("table: metrics without accuracy", ("table", "5_1"), METRICS,
        edit_json(METRICS, lambda m: {k: v for k, v in m.items() if k != "accuracy"})),
    Bad("table: metrics without n_samples", ("table", "5_1"), METRICS,
        edit_json(METRICS, lambda m: {k: v for k, v in m.items() if k != "n_samples"})),
    Bad("table: metrics missing", ("table", "5_1"), METRICS, remove(METRICS)),
    Bad("table: truncated history", ("table", "5_1"), HISTORY, truncate(HISTORY)),
    Bad("table: history of another epoch count", ("table", "5_1"), HISTORY,
        edit_json(HISTORY, lambda h: {**h, "epochs": h["epochs"] * 2})),
    Bad("table: thesis TSV missing", ("table", "5_1"), paths.thesis_numbers("5_1"),
        remove(paths.thesis_numbers("5_1"))),
    Bad("table: tiny results, thesis profile", ("table", "5_1", "--profile", "thesis"), "profile 'thesis'"),
    Bad("table: offline reference, thesis profile", ("table", "5_1", "--profile", "thesis"), "profile 'thesis'",
        offline_reference),
    Bad("table: offline reference, tiny profile", ("table", "5_1", "--profile", "tiny"), "profile 'tiny'",
        offline_reference),
    Bad("table: strong table path is a directory", ("table", "5_1"), paths.strong_table("5_1"),
        make_dir(paths.strong_table("5_1"))),
]

# What else the line must say, where the culprit alone does not tell the cause.
SAYS = {
    "train: empty training set": "training set is empty",
    "evaluate: checkpoint header a JSON list": "not an object",
    "evaluate: checkpoint header lacks the experiment": "'experiment' missing",
    "evaluate: checkpoint header epoch a string": "'epoch' missing or not a int",
    "evaluate: checkpoint header edited": "checksum",
    "evaluate: checkpoint of format 1": "older version",
    "evaluate: NaN weights": "NaN or infinite logits",
    "evaluate: empty test set": "test set is empty",
    "table: metrics without accuracy": "accuracy",
    "table: metrics missing": "rule evaluate",
    "table: history of another epoch count": "trained for 4 epochs, but profile 'tiny' trains 2",
    "table: offline reference, thesis profile": "evaluated on 500 samples, but profile 'thesis' evaluates 10000",
}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_result_is_one_line_and_changes_nothing(proj, case):
    line = check(proj, case)
    assert SAYS.get(case.id, "") in line, line


def test_the_tiny_results_and_the_committed_reference_pass_the_report_checks(proj):
    """The report accepts results of the active profile: the tiny run, and the committed offline reference,
    whose tables it reproduces byte for byte."""
    assert run_cli(proj, "table", "5_1").returncode == 0
    offline_reference(proj)
    proc = run_cli(proj, "table", "5_1")
    assert proc.returncode == 0, proc.stderr
    for rel in (paths.table("5_1"), paths.strong_table("5_1")):
        assert digest(proj / rel) == digest(ROOT / rel), rel


# --- damaged resume states --------------------------------------------------------------------------------------

def _state_of(proj: Path, p: dict, edit) -> bytes:
    """A resume state of epoch 1 with the final weights (a valid state as far as the checksum goes), its
    header edited by `edit`."""
    from advrepro import data, train
    from advrepro.experiments import get_experiment
    from advrepro.spec import experiment_spec

    spec = experiment_spec(p, get_experiment(p, EXP))
    arrays = data.load("mnist")
    _, body = checkpoint.read_header(proj / CKPT)
    header = {"experiment": EXP, "epoch": 1, "fingerprint": train.fingerprint(spec, arrays), "seed": p["seed"],
              "next_step": len(arrays.y_train) // spec.train.batch_size,
              "history": [{"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5, "test_loss": 1.0,
                           "test_accuracy": 0.5}], "epoch_seconds": [1.0]}
    edited = edit(header)
    return checkpoint.encode(edited, body) if isinstance(edited, dict) else edited


def _list_header(h: dict) -> bytes:
    rest = b"[1, 2]\n"
    return checkpoint.MAGIC + b"sha256:" + hashlib.sha256(rest).hexdigest().encode() + b"\n" + rest


# damage -> (header edit, what the log says)
DAMAGED = {
    "truncated": (lambda h: checkpoint.encode(h, b"body")[:-30], "does not match its checksum"),
    "garbage": (lambda h: b"\x00\xff garbage", "bad magic"),
    "header a JSON list": (_list_header, "not an object"),
    "no history": (lambda h: {k: v for k, v in h.items() if k != "history"}, "history is not a list"),
    "history not a list": (lambda h: {**h, "history": "oops"}, "history is not a list"),
    "history of another length": (lambda h: {**h, "history": h["history"] * 2}, "history is not a list"),
    "epoch_seconds of strings": (lambda h: {**h, "epoch_seconds": ["1"]}, "epoch_seconds is not a list"),
    "epoch beyond the run": (lambda h: {**h, "epoch": 7}, "does not fit 2 epochs"),
    "another configuration": (lambda h: {**h, "fingerprint": "0" * 64}, "another configuration"),
    "format 1": (lambda h: version_1(checkpoint.encode(h, b"body")), "older version"),
}


@pytest.mark.parametrize("damage", DAMAGED)
def test_a_damaged_state_is_ignored_and_training_starts_from_epoch_1(proj, raw_params, damage, monkeypatch, caplog):
    from advrepro import data, train
    from advrepro.experiments import get_experiment
    from advrepro.spec import experiment_spec

    monkeypatch.chdir(proj)
    p = tiny_params(raw_params)
    reference = {rel: digest(proj / rel) for rel in (CKPT, HISTORY)}
    state = proj / paths.state(EXP)
    state.parent.mkdir(parents=True, exist_ok=True)
    edit, says = DAMAGED[damage]
    state.write_bytes(_state_of(proj, p, edit))
    for rel in (CKPT, HISTORY):
        (proj / rel).unlink()
    with caplog.at_level(logging.WARNING, logger="advrepro.train"):
        out = train.train(experiment_spec(p, get_experiment(p, EXP)), data.load("mnist"), progress=False)
    assert "not resumed, training from epoch 1" in caplog.text and says in caplog.text, caplog.text
    assert [h["epoch"] for h in out["history"]] == [1, 2]
    assert {rel: digest(proj / rel) for rel in reference} == reference  # the bytes of an uninterrupted run
    assert not state.exists()


def test_the_intact_state_those_are_damaged_from_is_resumed(proj, raw_params, monkeypatch, caplog):
    """The control: undamaged, the state built above is continued (so each damage above is what refuses it)."""
    from advrepro import data, train
    from advrepro.experiments import get_experiment
    from advrepro.spec import experiment_spec

    monkeypatch.chdir(proj)
    p = tiny_params(raw_params)
    state = proj / paths.state(EXP)
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_bytes(_state_of(proj, p, lambda h: h))
    with caplog.at_level(logging.INFO, logger="advrepro.train"):
        out = train.train(experiment_spec(p, get_experiment(p, EXP)), data.load("mnist"), progress=False)
    assert "resuming after epoch 1 of 2" in caplog.text and "not resumed" not in caplog.text
    assert [h["epoch"] for h in out["history"]] == [1, 2] and out["history"][0]["train_loss"] == 1.0


# --- all or nothing ----------------------------------------------------------------------------------------------

def test_evaluate_writes_metrics_and_examples_or_neither(proj, raw_params, monkeypatch):
    """A failure writing the examples leaves the metrics of the previous evaluation as they were."""
    from advrepro import data, evaluate
    from advrepro.experiments import get_experiment
    from advrepro.spec import experiment_spec

    monkeypatch.chdir(proj)
    p = tiny_params(raw_params)
    p["mnist"]["evaluation"]["n_samples"] = 20  # other metrics than those on disk
    before = {rel: digest(proj / rel) for rel in OUTPUTS}

    def full_disk(path, **arrays):
        Path(path).write_bytes(b"half")
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(evaluate, "write_npz", full_disk)
    with pytest.raises(OSError, match="No space left"):
        evaluate.evaluate(experiment_spec(p, get_experiment(p, EXP)), data.load("mnist", views=False),
                          progress=False)
    assert {rel: digest(proj / rel) for rel in OUTPUTS} == before
    assert not list((proj / "results").rglob("*.tmp"))


def test_train_writes_checkpoint_history_and_timing_or_none(proj, raw_params, monkeypatch):
    from advrepro import data, train
    from advrepro.experiments import get_experiment
    from advrepro.spec import experiment_spec

    monkeypatch.chdir(proj)
    p = tiny_params(raw_params)
    p["mnist"]["train"]["lr"] /= 2  # another checkpoint than the one on disk
    before = {rel: digest(proj / rel) for rel in OUTPUTS}
    real = train.write_json

    def fail_on_timing(path, obj):
        if "epoch_seconds" in obj:
            raise OSError(28, "No space left on device", str(path))
        real(path, obj)

    monkeypatch.setattr(train, "write_json", fail_on_timing)
    with pytest.raises(OSError, match="No space left"):
        train.train(experiment_spec(p, get_experiment(p, EXP)), data.load("mnist"), progress=False)
    assert {rel: digest(proj / rel) for rel in OUTPUTS} == before
    assert not list((proj / "results" / "checkpoints").rglob("*.tmp"))


# --- checkpoint format ------------------------------------------------------------------------------------------

def test_upgrade_script_writes_the_bytes_of_a_fresh_training(proj):
    fresh = (proj / CKPT).read_bytes()
    header, _ = checkpoint.read_header(proj / CKPT)
    assert header == {"experiment": EXP, "epoch": 2}
    (proj / CKPT).write_bytes(version_1(fresh))
    with pytest.raises(checkpoint.CheckpointError, match="older version"):
        checkpoint.read_header(proj / CKPT)
    script = ROOT / "scripts" / "upgrade_checkpoints.py"
    proc = subprocess.run([sys.executable, str(script)], cwd=proj, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert f"{CKPT}: upgraded" in proc.stdout
    assert (proj / CKPT).read_bytes() == fresh
    proc = subprocess.run([sys.executable, str(script), CKPT], cwd=proj, capture_output=True, text=True)
    assert proc.returncode == 0 and "already format 2" in proc.stdout
    assert (proj / CKPT).read_bytes() == fresh
    assert subprocess.run([sys.executable, str(script), "--help"], capture_output=True).returncode == 0
