"""Bad input, as a careless or hostile user types it (issue 15): params.yaml and the command line.

Every case runs the real `advrepro` command on a working tiny project and must give exit code 2, one
`error:` line naming the culprit, no traceback, and no file changed (tests/badinput.py). The data side
is in test_bad_data.py, checkpoints, results and reports in test_bad_results.py.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .badinput import Bad, check, snapshot
from .conftest import ROOT

TRAIN = ("train", "mnist-ff-plain")


def edit(pattern: str, replacement: str, section: str | None = "mnist"):
    """A setup that edits params.yaml's text (the tiny project's file is PyYAML's dump, keys sorted) from the
    top-level `section` on (None: from the start)."""
    def setup(proj: Path) -> None:
        path = proj / "params.yaml"
        text = path.read_text()
        start = text.index(f"\n{section}:\n") if section else 0
        tail, n = re.subn(pattern, replacement, text[start:], count=1, flags=re.M)
        assert n, pattern
        path.write_text(text[:start] + tail)
    return setup


def write(name: str, data: bytes):
    def setup(proj: Path) -> None:
        (proj / name).write_bytes(data)
    return setup


def fifo(proj: Path) -> None:
    os.mkfifo(proj / "params.fifo")


def log_dir(proj: Path) -> None:
    (proj / "logdir").mkdir()


def alias_bomb() -> bytes:
    lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for i, name in enumerate("bcdefgh"):
        prev = "abcdefgh"[i]
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    return ("\n".join(lines) + "\n").encode()


CASES = [
    Bad("epochs-word", TRAIN, "mnist.train.epochs", edit(r"^(    epochs:) \d+", r"\1 ten")),
    Bad("epochs-float", TRAIN, "mnist.train.epochs", edit(r"^(    epochs:) \d+", r"\1 3.0")),
    Bad("seed-float", TRAIN, "seed", edit(r"^seed: \d+", "seed: 1.0", None)),
    Bad("seed-negative", ("validate",), "seed", edit(r"^seed: \d+", "seed: -1", None)),
    Bad("seed-huge", ("validate",), "seed", edit(r"^seed: \d+", "seed: 99999999999", None)),
    Bad("batch-float", TRAIN, "mnist.train.batch_size", edit(r"^(  train:\n    batch_size:) \d+", r"\1 50.0")),
    Bad("batch-absurd", TRAIN, "mnist.train.batch_size", edit(r"^(  train:\n    batch_size:) \d+", r"\1 100000000")),
    Bad("epochs-absurd", TRAIN, "mnist.train.epochs", edit(r"^(    epochs:) \d+", r"\1 1000000")),
    Bad("epsilon-nan", ("evaluate", "mnist-ff-plain"), "mnist.evaluation.epsilons.1",
        edit(r"^(    epsilons:\n    - [\d.]+\n    -) [\d.]+", r"\1 .nan")),
    Bad("epsilon-inf", ("validate",), "mnist.robust.epsilon",
        edit(r"^(  robust:\n(?:    .*\n)*?    epsilon:) [\d.e-]+", r"\1 .inf")),
    Bad("lr-nan", TRAIN, "mnist.train.lr", edit(r"^(    lr:) [\d.e-]+", r"\1 .nan")),
    Bad("lr-minus-inf", ("validate",), "mnist.train.lr", edit(r"^(    lr:) [\d.e-]+", r"\1 -.inf")),
    Bad("stepsize-absurd", ("validate",), "mnist.robust.stepsize",
        edit(r"^(  robust:\n(?:    .*\n)*?    stepsize:) [\d.e-]+", r"\1 50")),
    Bad("K-absurd", ("validate",), "mnist.robust.K", edit(r"^(  robust:\n(?:    .*\n)*?    K:) \d+", r"\1 5000000")),
    Bad("n-samples-zero", ("validate",), "mnist.evaluation.n_samples",
        edit(r"^(    n_samples:) \d+", r"\1 0")),
    Bad("duplicate-key", TRAIN, "duplicate key 'seed'", edit(r"^(seed: \d+)", r"\1\nseed: 7", None)),
    Bad("unknown-key", ("validate",), "'cifar' was unexpected", edit(r"^(seed: \d+)", r"\1\ncifar: {}", None)),
    Bad("unknown-model", ("validate",), "mnist.models.0", edit(r"^(  models:\n  -) ff", r"\1 resnet")),
    Bad("unknown-profile", ("validate", "--profile", "gpu-cluster"), "unknown profile 'gpu-cluster'"),
    Bad("yaml-syntax", ("validate",), "YAML syntax error", edit(r"^(seed: \d+)", r"seed: [1", None)),
    Bad("yaml-empty", ("validate",), "expected a mapping", write("params.yaml", b"")),
    Bad("yaml-list", ("validate",), "expected a mapping", write("params.yaml", b"- 1\n- 2\n")),
    Bad("yaml-tabs", ("validate",), "params.yaml", write("params.yaml", b"seed:\t\x01\n")),
    Bad("non-utf8", TRAIN, "not UTF-8", lambda proj: (proj / "params.yaml").open("ab").write(b"# caf\xe9\n")),
    Bad("alias-bomb", ("validate", "--params", "bomb.yaml"), "aliases", write("bomb.yaml", alias_bomb())),
    Bad("non-scalar-key", ("validate", "--params", "k.yaml"), "not a scalar", write("k.yaml", b"? [a]\n: 1\n")),
    Bad("params-dev-zero", ("validate", "--params", "/dev/zero"), "/dev/zero: not a regular file"),
    Bad("params-fifo", ("validate", "--params", "params.fifo"), "params.fifo: not a regular file", fifo),
    Bad("params-directory", ("validate", "--params", "results"), "results: not a regular file",
        lambda proj: (proj / "results").mkdir()),
    Bad("params-missing", ("validate", "--params", "nope.yaml"), "nope.yaml: file not found"),
    Bad("params-huge", ("validate", "--params", "big.yaml"), "big.yaml: larger than",
        write("big.yaml", b"# " + b"x" * (2 << 20) + b"\n")),
    Bad("log-is-a-directory", ("validate", "--log", "logdir"), "logdir", log_dir),
    Bad("unknown-experiment", ("train", "mnist-cnn-plain"), "mnist-cnn-plain"),
    Bad("unknown-table", ("table", "9_9"), "9_9"),
    Bad("profile-thesis-nan", ("validate",), "profiles.thesis",
        edit(r"^(  thesis:\n(?:.*\n)*?        epsilon:) [\d.e-]+", r"\1 .nan", "profiles")),
    # The seed parts' sections (fmnist.r1, fmnist.s3)
    Bad("part-no-clean", ("validate",), "fmnist.r1.evaluation.attacks: must include 'plain'",
        edit(r"^(    evaluation:\n      attacks:\n      -) plain", r"\1 spatial", "fmnist")),
    Bad("part-unknown-attack", ("validate",), "fmnist.r1.evaluation.attacks.0",
        edit(r"^(    evaluation:\n      attacks:\n      -) plain", r"\1 deepfool", "fmnist")),
    Bad("part-strong-epsilon", ("validate",), "fmnist.r1.evaluation.strong_epsilons",
        edit(r"^(      strong_epsilons:\n      -) [\d.]+", r"\1 0.3", "fmnist")),
    Bad("part-missing-variant", ("validate",), "fmnist.r1.variants.pni: missing",
        edit(r"^(      )pni:", r"\1pnx:", "fmnist")),
    Bad("part-noise-negative", ("validate",), "fmnist.s3.variants.add-gauss-0.05.noise_std",
        edit(r"^(      add-gauss-0.05:\n(?:        .*\n)*?        noise_std:) [\d.]+", r"\1 -0.05", "fmnist")),
    Bad("part-pool-attack", ("validate",), "fmnist.r1.pool_pgd.pool.0",
        edit(r"^(    pool_pgd:\n(?:      .*\n)*?      pool:\n      -) pgd", r"\1 deepfool", "fmnist")),
    # Part M2 (seed 002's model)
    Bad("part-theory-prior", ("validate",), "theory.scenarios.s1.p",
        edit(r"^(    s1:\n      alpha_max: \d+\n      p:) [\d.]+", r"\1 1.5", "theory")),
    Bad("part-theory-run", ("theory", "s9-at"), "unknown theory run 's9-at'"),
    # Part P4 (seed 004's networks: mnist.p4)
    Bad("part-p4-clean-epochs", ("validate",), "mnist.p4.pgd_at.clean_epochs: bad value 5: must be below",
        edit(r"^(    pgd_at:\n(?:      .*\n)*?      clean_epochs:) \d+", r"\1 5")),
    Bad("part-p4-depth", ("validate",), "mnist.p4.variants.d2.convs",
        edit(r"^(      d2:\n        convs:) \d+", r"\1 0")),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_gets_one_line_and_changes_nothing(project, case):
    check(project, case)


def test_the_table_covers_every_kind_of_bad_params():
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)


def test_an_integral_float_is_refused_with_the_rule(project):
    line = check(project, CASES[2])
    assert "an integer is written without a decimal point" in line


def test_dvc_yaml_check_says_stale_with_exit_2(project):
    (project / "dvc.yaml").write_text("stages: {}\n")
    check(project, Bad("stale-dvc-yaml", ("dvc-yaml", "--check"), "dvc.yaml is stale"))


def snakemake(proj: Path, *args: str) -> subprocess.CompletedProcess:
    bindir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")
    return subprocess.run([str(bindir / "snakemake"), "-n", "--cores", "1", *args], cwd=proj, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args, culprit", [
    (("--config", "seed=7"), "'seed'"),
    (("--config", "profile=tiny", "epochs=3"), "'epochs'"),
    (("--config", "profile=gpu"), "unknown profile 'gpu'"),
])
def test_snakemake_refuses_config_keys_it_would_ignore(tmp_path, raw_params, args, culprit):
    from .test_workflow import copy_project

    proj = copy_project(tmp_path, raw_params)
    before = snapshot(proj)
    proc = snakemake(proj, *args)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and culprit in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and snapshot(proj) == before


def test_snakemake_stops_on_a_bad_params_file_before_any_job(tmp_path, raw_params):
    from .test_workflow import copy_project

    proj = copy_project(tmp_path, raw_params)
    (proj / "params.yaml").write_text((ROOT / "params.yaml").read_text().replace("seed: 0", "seed: 0.5", 1))
    proc = snakemake(proj)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "params.yaml: seed" in errors[0], proc.stderr[-2000:]


def test_a_snakemake_job_journals_its_dvc_stage_in_a_fresh_clone(tmp_path, monkeypatch):
    """A fresh clone has .dvc/ but not .dvc/tmp/ (git ignores it): the journal's folder is made."""
    from types import SimpleNamespace

    from advrepro import dvcsync

    journal = tmp_path / ".dvc" / "tmp" / "snakemake-jobs"
    monkeypatch.setenv(dvcsync.JOURNAL_ENV, str(journal))
    dvcsync.record(SimpleNamespace(command="validate", mark="results/validated-params.txt"))
    dvcsync.record(SimpleNamespace(command="train", experiment="mnist-ff-plain"))
    dvcsync.record(SimpleNamespace(command="list"))
    assert journal.read_text() == "validate\ntrain-mnist-ff-plain\n"
