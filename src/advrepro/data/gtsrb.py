"""GTSRB (thesis section 5.2): fetch or render the traffic signs, then convert them once to arrays.

torchvision source: the real German Traffic Sign Recognition Benchmark (43 classes, 39,209
training and 12,630 test images), downloaded by torchvision.datasets.GTSRB, which checks the
archives' MD5.
synthetic source: an offline stand-in in exactly the folder layout that loader reads
(gtsrb/GTSRB/Training/<class>/<track>_<image>.ppm with GT-<class>.csv, gtsrb/GTSRB/Final_Test/
Images/<n>.ppm with gtsrb/GT-final_test.csv), every class drawn with PIL from its real appearance
and photographed (synth/signs.py).
Both are read by the same prepare(): torchvision's loader (the test CSV read as it does, but checked),
resized with PIL, to [-1, 1].
"""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io import write_npz
from .corpus import SUMS, Stream, build_corpus, inside, read_csv, refuse_duplicates, stream, verify_sums
from .source import Dataset, Source

log = logging.getLogger(__name__)

CLASS_NAMES = (
    "speed limit 20", "speed limit 30", "speed limit 50", "speed limit 60", "speed limit 70",
    "speed limit 80", "end of speed limit 80", "speed limit 100", "speed limit 120", "no passing",
    "no passing for vehicles over 3.5 t", "right-of-way at the next intersection", "priority road", "yield",
    "stop", "no vehicles", "vehicles over 3.5 t prohibited", "no entry", "general caution",
    "dangerous curve to the left", "dangerous curve to the right", "double curve", "bumpy road",
    "slippery road", "road narrows on the right", "road work", "traffic signals", "pedestrians",
    "children crossing", "bicycles crossing", "beware of ice/snow", "wild animals crossing",
    "end of all speed and passing limits", "turn right ahead", "turn left ahead", "ahead only",
    "go straight or right", "go straight or left", "keep right", "keep left", "roundabout mandatory",
    "end of no passing", "end of no passing by vehicles over 3.5 t",
)
N_CLASSES = len(CLASS_NAMES)

BASE = "gtsrb"  # torchvision's folder under its root
TRAIN_DIR = f"{BASE}/GTSRB/Training"
TEST_DIR = f"{BASE}/GTSRB/Final_Test/Images"
TEST_CSV = f"{BASE}/GT-final_test.csv"
COLUMNS = ("Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId")

ARCHIVE_URL = "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/"
ARCHIVES = {"GTSRB-Training_fixed.zip": "513f3c79a4c5141765e10e952eaa2478",  # as torchvision checks them
            "GTSRB_Final_Test_Images.zip": "c7e4e6327067d32654124b0fe9e82185",
            "GTSRB_Final_Test_GT.zip": "fe31e9c9270bbcd7b84b7f21a9d9d9e5"}


# ---- fetch -----------------------------------------------------------------------------------------

def _fetch_torchvision(raw_dir: Path, root: Path) -> None:
    """torchvision's own download (it checks the MD5). Archives put beside raw_dir are used instead."""
    from torchvision.datasets import GTSRB

    (root / BASE).mkdir(parents=True)
    for name in ARCHIVES:
        if (raw_dir.parent / name).is_file():
            shutil.copyfile(raw_dir.parent / name, root / BASE / name)
    try:
        for split in ("train", "test"):
            GTSRB(root=str(root), split=split, download=True)
    except Exception as exc:  # noqa: BLE001 - URLError, HTTP errors, MD5 mismatch, disk full ...
        listing = ", ".join(f"{ARCHIVE_URL}{name} (md5 {md5})" for name, md5 in ARCHIVES.items())
        raise DataError(f"{raw_dir}: downloading GTSRB with torchvision failed ({exc}); download {listing} "
                        f"by other means and put them in {raw_dir.parent}, then fetch again") from None


def fetch(data_cfg: dict, raw_dir: Path, seed: int) -> None:
    """Fill raw_dir with the gtsrb/ tree torchvision reads, corpus.json and SHA256SUMS; built in a
    temporary sibling and renamed into place at the end, so a half-made corpus is never taken for complete."""
    raw_dir = Path(raw_dir)
    source = data_cfg["source"]
    if source not in ("synthetic", "torchvision"):
        raise DataError(f"gtsrb source {source!r}: must be synthetic or torchvision")
    config = {"source": source}
    if source == "synthetic":
        # Imported here: synth/ reads this module's layout constants (no import cycle).
        from ..synth import signs

        config.update(seed=seed, renderer=signs.RENDERER,
                      **{k: data_cfg[k] for k in ("train_per_class", "test_per_class", "render_size")})

    def make(tmp: Path):
        if source == "synthetic":
            signs.write_corpus(data_cfg, tmp, seed)
        else:
            _fetch_torchvision(raw_dir, tmp)
        return tmp, [p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file()]

    build_corpus(raw_dir, config, make, noun="files")


# ---- prepare: images -> arrays -----------------------------------------------------------------------

def _test_samples(raw_dir: Path) -> list[tuple[str, int]]:
    """The test split as torchvision's GTSRB reads it from GT-final_test.csv ((image path, class id), in the
    file's order), but checked: torchvision would take a BOM for part of the first column name, and
    follow a Filename with `..` or an absolute path out of the corpus."""
    images, path = raw_dir / TEST_DIR, raw_dir / TEST_CSV
    if not images.is_dir() or not path.is_file():
        raise DataError(f"{raw_dir}: no readable GTSRB test split ({images if not images.is_dir() else path} "
                        "not found); run `advrepro fetch gtsrb` first")
    samples = []
    numbered = read_csv(path, ("Filename", "ClassId"), delimiter=";", skipinitialspace=True)
    for line, row in numbered:
        name = row["Filename"]
        if inside(path, line, name) != name or "/" in name:
            raise DataError(f"{path}:{line}: Filename {name!r} is not a file name inside {images}")
        try:
            samples.append((str(images / name), int(row["ClassId"])))
        except ValueError:
            raise DataError(f"{path}:{line}: ClassId {row['ClassId']!r} is not an integer") from None
    refuse_duplicates(path, [(line, row["Filename"]) for line, row in numbered])
    return samples


def _open_split(raw_dir: Path, split: str) -> list[tuple[str, int]]:
    """(image path, class id) of a split: torchvision's GTSRB loader over raw_dir for the training folders,
    _test_samples for the test CSV."""
    from torchvision.datasets import GTSRB

    if split == "test":
        samples = _test_samples(raw_dir)
    else:
        try:
            samples = GTSRB(root=str(raw_dir), split=split, download=False)._samples
        except (RuntimeError, OSError, KeyError, ValueError) as exc:
            raise DataError(f"{raw_dir}: no readable GTSRB {split} split ({exc}); run `advrepro fetch gtsrb` "
                            "first") from None
    if not samples:
        raise DataError(f"{raw_dir / BASE}: the GTSRB {split} split has no images")
    return samples


def _read_split(samples: list[tuple[str, int]], size: int, bar) -> tuple[np.ndarray, np.ndarray]:
    """Every image of a split, opened as torchvision's GTSRB does (RGB), resized to size x size: uint8
    [N, s, s, 3], labels."""
    from PIL import Image

    images = np.empty((len(samples), size, size, 3), np.uint8)
    labels = np.array([target for _, target in samples], np.int32)
    if labels.min() < 0 or labels.max() >= N_CLASSES:
        raise DataError(f"{Path(samples[0][0]).parents[1]}: class ids outside 0..{N_CLASSES - 1}")
    for i, (path, _) in enumerate(samples):
        try:
            with Image.open(path) as img:
                images[i] = np.asarray(img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR,
                                                                 reducing_gap=2.0))
        except (OSError, ValueError, SyntaxError) as exc:  # missing, truncated, not an image
            raise DataError(f"{path}: cannot read this image ({exc})") from None
        bar.update()
    return images, labels


def prepare(data_cfg: dict, raw_dir: Path, out_path: Path, *, image_size: int, seed: int) -> dict:
    """Write out_path: x_* float32 [N, s, s, 3] in [-1, 1], y_* int32 class ids, each split in a seeded
    random order. Nothing is written unless every image reads (and verifies, if SHA256SUMS is there)."""
    from tqdm import tqdm

    raw_dir = Path(raw_dir)
    start = time.perf_counter()
    if (raw_dir / SUMS).exists():
        verify_sums(raw_dir)
    splits = {split: _open_split(raw_dir, split) for split in ("train", "test")}
    arrays = {}
    with tqdm(total=sum(map(len, splits.values())), desc="read signs", unit="image", mininterval=2) as bar:
        for k, (split, samples) in enumerate(splits.items()):
            images, labels = _read_split(samples, image_size, bar)
            order = stream(seed, Stream.GTSRB_SHUFFLE, k).permutation(len(labels))
            arrays[f"x_{split}"] = images[order].astype(np.float32) / np.float32(127.5) - np.float32(1.0)
            arrays[f"y_{split}"] = labels[order]
    write_npz(out_path, **arrays)
    summary = {k: list(v.shape) for k, v in arrays.items()}
    summary.update({f"class_counts_{name}": np.bincount(arrays[f"y_{name}"], minlength=N_CLASSES).tolist()
                    for name in ("train", "test")})
    log.info("wrote %s in %.1f s: %s", out_path, time.perf_counter() - start,
             {k: v for k, v in summary.items() if k.startswith(("x_", "y_"))})
    return summary


def _fetch(section: dict, raw_dir: Path, seed: int) -> None:
    fetch(section["data"], raw_dir, seed=seed)


def _prepare(section: dict, raw_dir: Path, outputs: dict[str, Path], seed: int) -> dict:
    return prepare(section["data"], raw_dir, outputs["gtsrb"], image_size=section["data"]["image_size"], seed=seed)


SOURCE = Source("gtsrb", N_CLASSES, (Dataset("gtsrb", "gtsrb", "gtsrb", "image", "GTSRB"),), _fetch, _prepare,
                code=("data/gtsrb.py", "data/corpus.py", "synth/signs.py"),
                fetch_params=("profile", "profiles", "seed", "gtsrb.data"))
