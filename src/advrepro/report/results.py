"""Reading the pipeline's result files for the report."""
from __future__ import annotations

import csv
from pathlib import Path

from .. import paths
from ..errors import DataError
from ..experiments import Experiment
from ..io import read_json, read_npz


def metrics(exp: Experiment) -> dict:
    path = Path(paths.metrics(exp.id))
    if not path.exists():
        raise DataError(f"{path}: missing; run `advrepro evaluate {exp.id}` (or the workflow) first")
    return read_json(path)


def history(exp: Experiment) -> list[dict]:
    path = Path(paths.history(exp.id))
    if not path.exists():
        raise DataError(f"{path}: missing; run `advrepro train {exp.id}` first")
    return read_json(path)["epochs"]


def examples(exp: Experiment) -> dict:
    path = Path(paths.examples(exp.id))
    if not path.exists():
        raise DataError(f"{path}: missing; run `advrepro evaluate {exp.id}` first")
    return read_npz(path)


def thesis_numbers(table_id: str) -> dict[tuple[str, str], dict[str, float]]:
    """{(model, scenario): {column: accuracy %}} as printed in the thesis."""
    path = Path(paths.thesis_numbers(table_id))
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return {(r.pop("model"), r.pop("scenario")): {k: float(v) for k, v in r.items()} for r in rows}


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
