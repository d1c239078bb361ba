"""`advrepro estimate`: the sizes it assumes, the work it counts, its output on the tiny profile, bad input."""
from __future__ import annotations

import re

import pytest

from advrepro import estimate
from advrepro.experiments import all_experiments
from advrepro.params import load_params, resolve
from advrepro.spec import evaluation_spec

from .conftest import ROOT, run_cli


@pytest.fixture(scope="module")
def offline():
    return load_params(ROOT / "params.yaml")


def test_sizes_offline(offline):
    """The offline profile's inputs and splits as its prepare steps write them (README: [16, 32] Mel frames of
    Speech Commands, [32, 32] of UrbanSound8K; 6,000 / 2,000 digits; 2,400 / 600 clips; 480 / 120 sounds)."""
    shape = lambda d: estimate.params_shape(offline, d)  # noqa: E731
    assert (shape("mnist").sample, shape("mnist").n_train, shape("mnist").n_test) == ((10, 10, 1), 6000, 2000)
    assert (shape("gtsrb").sample, shape("gtsrb").n_train, shape("gtsrb").n_test) == ((16, 16, 3), 5160, 645)
    assert shape("speech-raw").sample == (4000, 1) and shape("speech-mel").sample == (16, 32)
    assert (shape("speech-meldb").n_train, shape("speech-meldb").n_test) == (2400, 600)
    assert shape("urban-raw").sample == (16000, 1) and shape("urban-mel").sample == (32, 32)
    assert (shape("urban-mel").n_train, shape("urban-mel").n_test, shape("urban-mel").n_classes) == (480, 120, 2)
    assert (shape("fmnist-s3").sample, shape("fmnist-s3").n_train) == ((14, 14, 1), 12000)
    assert "params" in shape("mnist").origin


def test_sizes_thesis(raw_params):
    thesis = resolve(raw_params, "thesis")
    shape = lambda d: estimate.params_shape(thesis, d)  # noqa: E731
    assert (shape("mnist").sample, shape("mnist").n_train, shape("mnist").n_test) == ((28, 28, 1), 60000, 10000)
    assert (shape("gtsrb").n_train, shape("gtsrb").n_test) == (26640, 12630) and "known" in shape("gtsrb").origin
    assert shape("speech-raw").sample == (16000, 1) and shape("speech-mel").sample == (32, 128)
    assert shape("speech-mel").n_train + shape("speech-mel").n_test == 38908
    assert shape("urban-raw").sample == (40000, 1) and shape("urban-meldb").sample == (126, 128)
    assert (shape("urban-mel").n_train, shape("urban-mel").n_test) == (7895, 837)


def test_processed_file_sizes(project):
    """A processed file of the profile's input shape gives the sizes; the line says it came from there."""
    p = load_params(project / "params.yaml")
    shape = estimate.dataset_shape(p, "mnist", project)
    assert shape.origin.endswith("mnist.npz") and (shape.n_train, shape.n_test) == (200, 60)


def test_attack_passes(offline):
    """PGD-40 is 40 gradients and a forward pass; the strong cascade's bounds bracket the assumed fraction."""
    ev = evaluation_spec(offline, "mnist")
    assert estimate.attack_passes("pgd", ev, 10) == (40, 1)
    assert estimate.attack_passes("spatial", ev, 10) == (0, 5 * 3 * 3)
    assert estimate.attack_passes("apgd_dlr", ev, 10) == (3 * 51, 1)
    assert estimate.attack_passes("apgd_dlr", ev, 2) == (51, 1)       # two classes: one margin run
    plan = estimate.eval_plan(False, ev, "image", 10, 500, 0.5)
    assert plan.strong_grads[1] < plan.strong_grads[0] < plan.strong_grads[2]
    # plain, PGD and FGSM at two epsilons, spatial: 2 batches of 250 each, 40 + 1 gradients per PGD batch
    assert plan.grads >= 2 * 2 * 40 + 2 * 2
    with pytest.raises(KeyError):
        estimate.attack_passes("fab", ev, 10)


def test_log_span_and_schedule(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("23:59:50 INFO a: start\nno stamp\n00:00:20 INFO a: end\n")
    assert estimate.log_span(log) == 30
    assert estimate._schedule([5, 4, 3, 3], 2) == 8 and estimate._schedule([5, 4, 3, 3], 1) == 15
    assert estimate.fmt_s(59) == "59.0 s" and estimate.fmt_s(3 * 3600 + 20 * 60) == "3 h 20 min"


def test_training_time_prices_the_clean_phase_and_the_probes():
    """Seed 004's training: its clean epochs at the plain step's price, the probe after every epoch (the clean
    training-set pass and a PGD attack on the probe's samples), the longer attack at both phase ends."""
    from advrepro.spec import ProbeSpec

    assert estimate.train_seconds(10, 5, 2.0, 1.0) == 10 * 5 * 2.0 + 10 * 1.0
    assert estimate.train_seconds(10, 5, 2.0, 1.0, clean_epochs=4, clean_step_s=0.5, probe_s=3.0,
                                  phase_probe_s=7.0) == 5 * (4 * 0.5 + 6 * 2.0) + 10 * 1.0 + 10 * 3.0 + 2 * 7.0
    assert estimate.train_seconds(10, 5, 2.0, 1.0, probe_s=3.0, phase_probe_s=7.0) == 100 + 10 + 30 + 7
    cost = estimate.EvalCost(compile_fwd_s=0, compile_attack_s=0, fwd_s=0.1, grad_s=0.3, batch=100)
    probe = ProbeSpec(samples=200, epsilon=0.0627, steps=20, phase_steps=200)
    epoch, phase = estimate.probe_seconds(probe, n_test=1000, n_train=1000, eval_batch=100, cost=cost)
    assert epoch == pytest.approx(10 * 0.1 + 2 * (20 * 0.3 + 2 * 0.1))
    assert phase == pytest.approx(2 * (200 * 0.3 + 2 * 0.1))


def test_estimate_tiny(project):
    """The tiny profile's MNIST experiments: one line each with positive numbers, the tables, the total."""
    proc = run_cli(project, "estimate", "--datasets", "mnist", "--steps", "1", "--budget", "1", "--devices", "2",
                   timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "sizes mnist: input [8, 8, 1], 200 train / 60 test" in out and "mnist.npz" in out
    p = load_params(project / "params.yaml")
    ids = [e.id for e in all_experiments(p) if e.dataset == "mnist"]
    compiles = []
    for exp_id in ids:
        line = next(line for line in out.splitlines() if line.startswith(exp_id + " "))
        steps, ms, train, train_compile, evaluation, eval_compile, total = map(float, line.split()[1:8])
        assert min(steps, ms, train, evaluation) > 0 and total == pytest.approx(train + evaluation, abs=0.11), line
        compiles += [train_compile, eval_compile]
    # the evaluation programs compile once per model: the other scenarios' jobs load them from the cache
    assert min(compiles) >= 0 and sum(c > 0 for c in compiles) >= len(ids) + 1
    assert re.search(r"^table 5_1 +4 experiments: jobs .+ on 2 devices", out, re.M)
    total = next(line for line in out.splitlines() if line.startswith("total:"))
    assert f"total: {len(ids)} experiments" in total and "wall time on 2 devices" in total


@pytest.mark.parametrize("args, message", [
    (["--devices", "0"], "error: --devices: bad value 0: at least 1"),
    (["--devices", "two"], "error: --devices: bad value 'two': not an integer"),
    (["--profile", "gpu-cluster"], "unknown profile 'gpu-cluster'"),
    (["--robust-fraction", "2"], "error: --robust-fraction: bad value 2: between 0 and 1"),
    (["--datasets", "cifar"], "error: --datasets: unknown dataset 'cifar'"),
])
def test_estimate_bad_input(project, args, message):
    proc = run_cli(project, "estimate", *args, timeout=120)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, proc.stderr
