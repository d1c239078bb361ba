"""Training and evaluation end to end in-process and through the CLI, on tiny configurations."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml

from advrepro import checkpoint, paths
from advrepro.data import Arrays
from advrepro.evaluate import unpack
from advrepro.experiments import SCENARIOS, Experiment
from advrepro.io import read_json, write_npz
from advrepro.spec import experiment_spec

from .conftest import digest, run_cli, tiny_params


def test_train_and_evaluate_twice_give_byte_identical_results(project, tmp_path_factory):
    """Determinism: the same configuration on the same machine gives the same bytes."""
    exp = "mnist-ff-alg1-reg"
    other = tmp_path_factory.mktemp("again")
    shutil.copytree(project, other, dirs_exist_ok=True)
    for where in (project, other):
        for cmd in ("train", "evaluate"):
            proc = run_cli(where, cmd, exp)
            assert proc.returncode == 0, proc.stderr
    for rel in (paths.metrics(exp), paths.history(exp), paths.checkpoint(exp), paths.examples(exp)):
        assert digest(project / rel) == digest(other / rel), rel
    metrics = read_json(project / paths.metrics(exp))
    acc = metrics["accuracy"]
    assert set(acc) == {"plain", "pgd_0.1", "pgd_0.3", "fgsm_0.1", "fgsm_0.3", "spatial", "worst_0.1", "worst_0.3",
                        "box"}
    assert all(v <= acc["plain"] for v in acc.values())                      # robust <= natural
    assert acc["worst_0.3"] <= acc["worst_0.1"] <= min(acc["pgd_0.1"], acc["fgsm_0.1"])
    bits = {k: unpack(v, 40) for k, v in metrics["correct"].items()}
    assert {k: round(float(b.mean()), 6) for k, b in bits.items()} == acc     # the bits are the accuracies
    assert not np.any(bits["worst_0.3"] & ~bits["pgd_0.3"])
    assert metrics["n_samples"] == 40
    history = read_json(project / paths.history(exp))["epochs"]
    assert [h["epoch"] for h in history] == [1, 2]
    timing = read_json(project / paths.timing(exp))
    assert len(timing["epoch_seconds"]) == 2 and all(s > 0 for s in timing["epoch_seconds"])
    assert (project / paths.log("train", exp)).exists() is False  # no --log given: nothing written


def test_keeping_freed_memory_changes_no_result_bytes(project, tmp_path_factory):
    """runtime.configure's glibc setting (large buffers from the heap, kept for reuse) only speeds up allocation:
    the GRU's robust training, the step it speeds up most, gives the same bytes with and without it."""
    exp = "mnist-gru-alg1"
    p = yaml.safe_load((project / "params.yaml").read_text())
    p["mnist"]["models"] = ["gru"]
    (project / "params.yaml").write_text(yaml.safe_dump(p))
    other = tmp_path_factory.mktemp("default-malloc")
    shutil.copytree(project, other, dirs_exist_ok=True)
    for where, keep in ((project, "1"), (other, "0")):
        proc = run_cli(where, "train", exp, env={"ADVREPRO_KEEP_FREED_MEMORY": keep})
        assert proc.returncode == 0, proc.stderr
    for rel in (paths.checkpoint(exp), paths.history(exp)):
        assert digest(project / rel) == digest(other / rel), rel


def test_changing_the_seed_changes_the_results(project):
    exp = "mnist-ff-plain"
    assert run_cli(project, "train", exp).returncode == 0
    first = digest(project / paths.checkpoint(exp))
    p = yaml.safe_load((project / "params.yaml").read_text())
    p["seed"] = 1
    (project / "params.yaml").write_text(yaml.safe_dump(p))
    assert run_cli(project, "train", exp).returncode == 0
    assert digest(project / paths.checkpoint(exp)) != first


@pytest.mark.slow  # trains all four models twice (about 2 minutes)
@pytest.mark.parametrize("model", ["ff", "gru", "lstm", "s4"])
def test_every_model_learns_plain_and_robust(project, raw_params, model, monkeypatch):
    """Each model, plainly and with Algorithm 1, fits the toy task better than chance."""
    monkeypatch.chdir(project)
    from advrepro import data, evaluate, train

    p = tiny_params(raw_params, models=[model])
    p["mnist"]["train"].update(epochs=4, batch_size=20, lr=0.02)
    arrays = data.load("mnist")
    for scenario in ("plain", "alg1"):
        exp = Experiment("mnist", model, SCENARIOS[scenario])
        spec = experiment_spec(p, exp)
        out = train.train(spec, arrays, progress=False)
        assert out["history"][-1]["test_accuracy"] > 0.3, (scenario, out["history"])
        m = evaluate.evaluate(spec, arrays, progress=False)
        assert m["accuracy"]["pgd_0.3"] <= m["accuracy"]["plain"]
        assert m["loss"]["pgd_0.3"] >= m["loss"]["plain"]


def test_checkpoints_refuse_truncation_and_foreign_experiments(project, monkeypatch):
    monkeypatch.chdir(project)
    assert run_cli(project, "train", "mnist-ff-plain").returncode == 0
    ckpt = project / paths.checkpoint("mnist-ff-plain")
    header, _ = checkpoint.read_header(ckpt)
    assert header["experiment"] == "mnist-ff-plain" and header["epoch"] == 2
    assert b"pickle" not in ckpt.read_bytes()[:64]
    # a checkpoint of another experiment
    shutil.copy(ckpt, project / paths.checkpoint("mnist-ff-alg1"))
    proc = run_cli(project, "evaluate", "mnist-ff-alg1")
    assert proc.returncode == 2 and "checkpoint of 'mnist-ff-plain', expected 'mnist-ff-alg1'" in proc.stderr
    # truncated
    ckpt.write_bytes(ckpt.read_bytes()[:-10])
    proc = run_cli(project, "evaluate", "mnist-ff-plain")
    assert proc.returncode == 2 and "does not match its checksum" in proc.stderr
    assert not (project / paths.metrics("mnist-ff-plain")).exists()
    # not a checkpoint at all
    ckpt.write_bytes(b"\x80\x04pickle?")
    with pytest.raises(checkpoint.CheckpointError, match="bad magic"):
        checkpoint.read_header(ckpt)


def test_checkpoint_with_wrong_shapes_is_refused(tmp_path):
    import jax

    good = {"params": {"Dense_0": {"kernel": np.zeros((4, 3), np.float32), "bias": np.zeros(3, np.float32)}}}
    ckpt = tmp_path / "c.ckpt"
    checkpoint.save(ckpt, good, experiment="e", epoch=1)
    state, header = checkpoint.load(ckpt, jax.eval_shape(lambda: good), experiment="e")
    assert header["epoch"] == 1 and state["params"]["Dense_0"]["kernel"].shape == (4, 3)
    wider = {"params": {"Dense_0": {"kernel": np.zeros((4, 5), np.float32), "bias": np.zeros(5, np.float32)}}}
    with pytest.raises(checkpoint.CheckpointError,
                       match=r"does not fit the model: .*bias.* float32\[3\], the model needs float32\[5\]"):
        checkpoint.load(ckpt, jax.eval_shape(lambda: wider), experiment="e")


def test_unknown_experiment_is_a_clear_error(project):
    proc = run_cli(project, "train", "mnist-vit-plain")
    assert proc.returncode == 2 and "unknown experiment 'mnist-vit-plain'" in proc.stderr


def test_classifier_feeds_patches_in_raster_order():
    from advrepro.models.classifier import to_sequence

    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(to_sequence(x, 1)[0, :, 0], np.arange(16))
    seq = np.asarray(to_sequence(x, 2))
    assert seq.shape == (1, 4, 4)
    np.testing.assert_array_equal(seq[0, 0], [0, 1, 4, 5])
    np.testing.assert_array_equal(seq[0, 3], [10, 11, 14, 15])




def test_evaluation_refuses_the_checkpoint_of_an_unfinished_run(project):
    assert run_cli(project, "train", "mnist-ff-plain").returncode == 0
    p = yaml.safe_load((project / "params.yaml").read_text())
    p["mnist"]["train"]["epochs"] = 5  # as if training had stopped after 2 of 5 epochs
    (project / "params.yaml").write_text(yaml.safe_dump(p))
    proc = run_cli(project, "evaluate", "mnist-ff-plain")
    assert proc.returncode == 2 and "holds epoch 2 of 5" in proc.stderr


def toy_spectrograms(n: int, seed: int, frames: int = 6, bins: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Learnable toy 'spectrograms' [n, frames, bins]: class c is loud in bin c % bins, in the first
    or the second half of the frames (c // bins)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n).astype(np.int32)
    x = rng.uniform(-1, -0.6, (n, frames, bins)).astype(np.float32)
    for i, c in enumerate(y):
        half = slice(0, frames // 2) if c < bins else slice(frames // 2, frames)
        x[i, half, c % bins] = 0.9
    return x, y


def test_audio_regularization_trains_on_the_views_it_names(tmp_path, raw_params, monkeypatch):
    """Speech runs take their regularization from pre-drawn views: waveform views for `reg`, masked
    spectrograms for `specaug`; a run whose views are missing stops with a message naming the fix."""
    from advrepro import data as data_mod
    from advrepro import train as train_mod

    monkeypatch.chdir(tmp_path)
    p = tiny_params(raw_params, models=("gru",))
    xtr, ytr = toy_spectrograms(120, 0)
    xte, yte = toy_spectrograms(40, 1)
    # The waveform views are the clean inputs; the masked views hide everything: a run on them can
    # only learn the label prior.
    write_npz(paths.processed("speech-meldb"), x_train=xtr, y_train=ytr, x_test=xte, y_test=yte,
              x_train_views=xtr[None], x_train_spec_views=np.full((1,) + xtr.shape, -1.0, np.float32))
    arrays = data_mod.load("speech-meldb")
    p["speech"]["spectrogram"]["train"].update(epochs=6, lr=0.02)
    acc = {}
    for scenario in ("reg", "specaug"):
        exp = Experiment("speech-meldb", "gru", SCENARIOS[scenario])
        history = train_mod.train(experiment_spec(p, exp), arrays, progress=False)["history"]
        acc[scenario] = history[-1]["test_accuracy"]
    assert acc["reg"] > 0.6 and acc["specaug"] < 0.3, acc
    bare = Arrays(xtr, ytr, xte, yte, 10)
    with pytest.raises(train_mod.AdvreproError, match="prepare speech"):
        train_mod.train(experiment_spec(p, Experiment("speech-meldb", "gru", SCENARIOS["specaug"])), bare,
                        progress=False)


def test_frame_norm_goes_only_in_front_of_the_named_representations(raw_params):
    """frame_norm: [mel] normalizes every frame of the linear Mel spectrogram (and nothing else), so a
    near-constant min-max-scaled input becomes a unit-variance one per frame."""
    import jax
    import jax.numpy as jnp

    from advrepro.models.classifier import classifier_for, init_weights

    p = tiny_params(raw_params)
    p["speech"]["spectrogram"]["model"]["frame_norm"] = ["mel"]
    x = np.full((2, 5, 16), -1.0, np.float32)
    x[:, :, 3] += 0.01  # the shape of a quiet spectrogram after min-max scaling
    for dataset, expected in (("speech-mel", True), ("speech-meldb", False)):
        clf = classifier_for(experiment_spec(p, Experiment(dataset, "ff", SCENARIOS["plain"])), 10)
        params = init_weights(clf, 0, x)
        assert ("frame_norm" in params) is expected, dataset
    clf = classifier_for(experiment_spec(p, Experiment("speech-mel", "ff", SCENARIOS["plain"])), 10)
    params = init_weights(clf, 0, x)
    normed = jax.nn.standardize(jnp.asarray(x), axis=-1, epsilon=1e-6)
    assert float(jnp.abs(normed).max()) > 3  # the 0.01 bump becomes the largest feature
    logits = clf.logits(params, x)
    assert logits.shape == (2, 10) and np.isfinite(np.asarray(logits)).all()
