"""Reading the pipeline's result files for the report.

Every problem with a result file is a DataError naming it: missing (with the command that makes it),
damaged, lacking a key, or written under another profile than the active one (the evaluated sample count
and the trained epochs must be the active params' ones), so that a caption never describes numbers it
did not produce.
"""
from __future__ import annotations

import csv
import zipfile
from pathlib import Path

from .. import paths
from ..errors import DataError
from ..experiments import DATASETS, Experiment, config
from ..io import read_json, read_npz

RERUN = "these results come from another profile (or params changed since); rerun the pipeline"


class Fields(dict):
    """A result file's JSON object: a missing key is a DataError naming the file and the key."""

    def __init__(self, data: dict, path: Path, where: str = ""):
        super().__init__({k: _wrap(v, path, f"{where}{k}.") for k, v in data.items()})
        self.path, self.where = path, where

    def __missing__(self, key):
        raise DataError(f"{self.path}: no key {self.where}{key}; rerun the step that writes it")


def _wrap(value, path: Path, where: str):
    if isinstance(value, dict):
        return Fields(value, path, where)
    if isinstance(value, list):
        return [_wrap(v, path, where) for v in value]
    return value


def _number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _read(path: Path, maker: str) -> Fields:
    if not path.exists():
        raise DataError(f"{path}: missing; {maker} makes it (or the workflow)")
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataError(f"{path}: not a JSON object; rerun the step that writes it")
    return Fields(data, path)


def test_size(params: dict, dataset: str) -> int | None:
    """The size of a dataset's test split where the params tell it (MNIST, rendered GTSRB), else None."""
    d = params[DATASETS[dataset].source].get("data", {})
    if "n_test" in d:
        return d["n_test"]
    if d.get("source") == "synthetic" and "test_per_class" in d:
        return 43 * d["test_per_class"]
    return None


def _check_profile(params: dict, exp: Experiment, m: Fields) -> None:
    """The metrics must come from the active params: n_samples = min(evaluation.n_samples, test set size),
    and the history (where there is one) must hold train.epochs epochs."""
    want, size = config(params, exp.dataset)["evaluation"]["n_samples"], test_size(params, exp.dataset)
    n = m["n_samples"]
    expected = want if size is None else min(want, size)
    if n > want or (size is not None and n != expected):  # a test split of unknown size may hold fewer
        raise DataError(f"{m.path}: evaluated on {n} samples, but profile {params['profile']!r} evaluates "
                        f"{expected}: {RERUN}")
    if Path(paths.history(exp.id)).exists():
        history(params, exp)


def _epochs(params: dict, exp: Experiment, path: str, trained: int) -> None:
    epochs = config(params, exp.dataset)["train"]["epochs"]
    if trained != epochs:
        raise DataError(f"{path}: trained for {trained} epochs, but profile {params['profile']!r} trains {epochs}: "
                        f"{RERUN}")


def metrics(params: dict, exp: Experiment) -> Fields:
    """An experiment's metrics, checked against the active params."""
    m = _read(Path(paths.metrics(exp.id)), f"`advrepro evaluate {exp.id}` (rule evaluate)")
    if m.get("experiment", exp.id) != exp.id:
        raise DataError(f"{m.path}: holds the metrics of {m['experiment']!r}, not of {exp.id!r}; {RERUN}")
    if not (isinstance(m["n_samples"], int) and not isinstance(m["n_samples"], bool) and m["n_samples"] > 0):
        raise DataError(f"{m.path}: n_samples: bad value {m['n_samples']!r}; rerun the step that writes it")
    if not all(_number(v) for v in m["accuracy"].values()):
        raise DataError(f"{m.path}: accuracy: not every value is a number; rerun the step that writes it")
    _check_profile(params, exp, m)
    return m


def history(params: dict, exp: Experiment) -> list[dict]:
    """An experiment's per-epoch history, checked against the active params."""
    h = _read(Path(paths.history(exp.id)), f"`advrepro train {exp.id}` (rule train)")
    epochs = h["epochs"]
    if not isinstance(epochs, list) or not all(isinstance(e, dict) for e in epochs):
        raise DataError(f"{h.path}: epochs: not a list of objects; rerun the step that writes it")
    _epochs(params, exp, h.path, len(epochs))
    return epochs


def timing(params: dict, exp: Experiment) -> Fields:
    """An experiment's epoch wall times, checked against the active params."""
    t = _read(Path(paths.timing(exp.id)), f"`advrepro train {exp.id}` (rule train)")
    seconds = t["epoch_seconds"]
    if not isinstance(seconds, list) or not seconds or not all(_number(s) for s in seconds):
        raise DataError(f"{t.path}: epoch_seconds: not a non-empty list of numbers; rerun the step that writes it")
    _epochs(params, exp, t.path, len(seconds))
    return t


def _arrays(path: Path, maker: str, names: tuple[str, ...]) -> Fields:
    if not path.exists():
        raise DataError(f"{path}: missing; {maker} makes it")
    try:
        arrays = Fields(read_npz(path), path)
    except (zipfile.BadZipFile, ValueError, EOFError, KeyError) as exc:
        raise DataError(f"{path}: corrupt or truncated array file ({exc}); rerun {maker}") from None
    lacking = [k for k in names if k not in arrays]
    if lacking:
        raise DataError(f"{path}: no array {', '.join(lacking)}; rerun {maker}")
    return arrays


def examples(exp: Experiment) -> dict:
    return _arrays(Path(paths.examples(exp.id)), f"`advrepro evaluate {exp.id}` (rule evaluate)", ("x", "y"))


def test_inputs(dataset: str) -> dict:
    """A processed dataset's arrays (x_test and y_test at least)."""
    return _arrays(Path(paths.processed(dataset)), f"`advrepro prepare {DATASETS[dataset].source}`",
                   ("x_test", "y_test"))


def thesis_numbers(table_id: str) -> dict[tuple[str, str], dict[str, float]]:
    """{(model, scenario): {column: accuracy %}} as printed in the thesis."""
    path = Path(paths.thesis_numbers(table_id))
    if not path.exists():
        raise DataError(f"{path}: missing; the thesis's numbers are part of the repository: restore it "
                        f"(git checkout -- {path})")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    out = {}
    for line, r in enumerate(rows, start=2):
        try:
            key = (r.pop("model"), r.pop("scenario"))
            if None in key or None in r:
                raise ValueError("wrong number of columns")
            out[key] = {k: float(v) for k, v in r.items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{path}: line {line}: not a row of model, scenario and accuracies ({exc})") from None
    return out


def spectrogram_frames(section: dict) -> int:
    """Frames of a clip's Mel spectrogram (torchaudio centres its frames): an audio source's params
    section; Speech Commands clips last one second."""
    d, f = section["data"], section["features"]
    return 1 + round(d.get("duration", 1.0) * d["sample_rate"]) // f["hop_length"]


def training_images(data: dict) -> int | str:
    """How many training images an image source's params give (MNIST: n_train; rendered GTSRB:
    43 per class; the real GTSRB: all)."""
    if "n_train" in data:
        return data["n_train"]
    return 43 * data["train_per_class"] if data["source"] == "synthetic" else "all"


def theory_run(params: dict, run: str) -> Fields:
    """A run of part M2 (results/theory/<run>.json), checked against the active params' sizes."""
    t = _read(Path(paths.theory(run)), f"`advrepro theory {run}` (rule theory)")
    section, scenario = params["theory"], run.rsplit("-", 1)[0]
    want = {"n_dim": section["n_dim"], "seeds": section["seeds"], "test_points": section["test_points"],
            "alpha_max": section["scenarios"].get(scenario, {}).get("alpha_max")}
    got = {k: t["sizes"][k] for k in want}
    if got != want:
        raise DataError(f"{t.path}: sizes {got}, but profile {params['profile']!r} runs {want}: {RERUN}")
    return t


def logistic(params: dict) -> tuple[Fields, Fields]:
    """The logistic regression of part M2: its summary and its arrays, checked against the active params."""
    json_path, npz_path = paths.LOGISTIC
    summary = _read(Path(json_path), "`advrepro logistic` (rule logistic)")
    if summary["steps"] != params["theory"]["logistic"]["steps"]:
        raise DataError(f"{json_path}: trained {summary['steps']} steps, but profile {params['profile']!r} trains "
                        f"{params['theory']['logistic']['steps']}: {RERUN}")
    return summary, _arrays(Path(npz_path), "`advrepro logistic` (rule logistic)", ("w", "clean_output"))
