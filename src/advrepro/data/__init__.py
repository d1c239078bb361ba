"""Data sources (fetch, prepare) and loading the processed arrays.

SOURCES is the registry of data sources, in pipeline order: one module each (data/<module>.py defines
its `SOURCE`) and one line below. DATASETS are the processed representations they write."""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import paths
from ..defences import AUGMENTATIONS
from ..errors import DataError
from ..io import read_npz
from ..registry import Registry
from . import fmnist, gtsrb, mnist, speech, urbansound
from .source import Dataset, Source

SOURCES: Registry[Source] = Registry("data source", [
    mnist.SOURCE,
    gtsrb.SOURCE,
    speech.SOURCE,
    urbansound.SOURCE,
    fmnist.SOURCE,
])
DATASETS: dict[str, Dataset] = {d.name: d for s in SOURCES.values() for d in s.datasets}
# Optional pre-drawn augmented copies of the training inputs, [V, N, ...], by regularization kind
# (audio: waveform augmentation, spectrogram masking; images are augmented on the fly).
VIEW_ARRAYS = {a.name: a.views for a in AUGMENTATIONS.values() if a.views}


@dataclass(frozen=True)
class Arrays:
    """Processed inputs in [-1, 1] (images [N, H, W, C], audio sequences [N, T, F]) and integer labels."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    views: dict[str, np.ndarray] = field(default_factory=dict)  # regularization kind -> [V, N, ...]
    fine_test: np.ndarray | None = None  # the finer classes behind y_test, if any (UrbanSound8K's ten)


def _check_inputs(path: Path, name: str, x: np.ndarray) -> None:
    """x: floats in [-1, 1]. min/max propagate NaN and see ±inf without a temporary the size of x; NaN
    passes any comparison, so a range test alone would let it through (and change every accuracy)."""
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"{path}: {name} has dtype {x.dtype}, expected floating-point inputs")
    if not x.size:
        return
    lo, hi = x.min(), x.max()
    for bad, test in (("NaN", np.isnan), ("infinite values", np.isinf)):
        if test(lo) or test(hi):
            raise DataError(f"{path}: {name} holds {bad} ({int(test(x).sum())} of {x.size} values)")
    if lo < -1 or hi > 1:
        raise DataError(f"{path}: {name} leaves the [-1, 1] range")


def _expected_shape(dataset: str, params: dict) -> tuple[slice, tuple[int, ...], str]:
    """(the axes of x, their sizes, the params key that sets them): images side x side, spectrograms
    n_mels bands; raw waveforms have none (an empty key)."""
    d = DATASETS[dataset]
    if d.kind == "image":
        side = params[d.source]["data"]["image_size"]
        return slice(1, 3), (side, side), f"{d.source}.data.image_size"
    if d.kind == "spectrogram":
        return slice(2, 3), (params[d.source]["features"]["n_mels"],), f"{d.source}.features.n_mels"
    return slice(0, 0), (), ""


def load(dataset: str, path: str | Path | None = None, *, views: bool = True, params: dict | None = None) -> Arrays:
    """Load a processed dataset, refusing a truncated or inconsistent file with its name.
    `views=False` skips the augmented training copies (evaluation does not need them). With `params`
    (the resolved params dict), inputs of another image size or Mel band count than params set are
    refused too: they come from an older prepare, and would otherwise fail later as a checkpoint shape error."""
    path = Path(path or paths.processed(dataset))
    if not path.exists():
        raise DataError(f"{path}: not found; run `advrepro prepare {dataset}` first")
    try:
        arrays = read_npz(path, skip=() if views else tuple(VIEW_ARRAYS.values()))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: corrupt or truncated array file ({exc})") from None
    missing = {"x_train", "y_train", "x_test", "y_test"} - set(arrays)
    if missing:
        raise DataError(f"{path}: missing arrays {sorted(missing)}")
    n_classes = SOURCES[DATASETS[dataset].source].n_classes
    ndim = 4 if DATASETS[dataset].kind == "image" else 3  # images [N, H, W, C]; audio sequences [N, T, F]
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if y.ndim != 1:
            raise DataError(f"{path}: y_{split} has shape {y.shape}, expected one label per sample")
        if x.ndim != ndim or len(x) != len(y):
            raise DataError(f"{path}: x_{split} has shape {x.shape} for {len(y)} labels")
        if not len(x):
            set_name = "training" if split == "train" else "test"
            raise DataError(f"{path}: x_{split} has 0 samples (the {set_name} set is empty); run `advrepro prepare "
                            f"{DATASETS[dataset].source}` again")
        _check_inputs(path, f"x_{split}", x)
        if not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{path}: y_{split} has dtype {y.dtype}, expected integer labels")
        if y.min() < 0 or y.max() >= n_classes:
            raise DataError(f"{path}: y_{split} has labels outside 0..{n_classes - 1}")
    if arrays["x_test"].shape[1:] != arrays["x_train"].shape[1:]:
        raise DataError(f"{path}: x_test has samples of shape {arrays['x_test'].shape[1:]}, x_train of shape "
                        f"{arrays['x_train'].shape[1:]}")
    if params is not None:
        axes, expected, key = _expected_shape(dataset, params)
        found = arrays["x_train"].shape
        if found[axes] != expected:
            what = "x".join(map(str, found[axes])) + (" images" if len(expected) == 2 else " Mel bands")
            raise DataError(f"{path}: holds {what} (x_train {list(found)}), but {key} is {expected[0]} in profile "
                            f"{params.get('profile')!r}; run `advrepro prepare {DATASETS[dataset].source}` again")
    views = {kind: arrays[name] for kind, name in VIEW_ARRAYS.items() if name in arrays}
    for kind, v in views.items():
        if v.shape[1:] != arrays["x_train"].shape:
            raise DataError(f"{path}: {VIEW_ARRAYS[kind]} has shape {v.shape} for x_train {arrays['x_train'].shape}")
        _check_inputs(path, VIEW_ARRAYS[kind], v)
    fine = arrays.get("class_test")
    if fine is not None and fine.shape != arrays["y_test"].shape:
        raise DataError(f"{path}: class_test has shape {fine.shape} for {len(arrays['y_test'])} labels")
    return Arrays(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], n_classes, views, fine)
