"""UrbanSound8K (thesis section 5.4): fetch or synthesize the clips, then convert them once to arrays.

archive source: the real UrbanSound8K (8,732 slices of freesound recordings, ten official folds),
downloaded as one tarball and checked against its published MD5 and size.
synthetic source: an offline stand-in in exactly the same layout (metadata/UrbanSound8K.csv with
the same columns, audio/fold<N>/<fsID>-<classID>-<occurrence>-<slice>.wav), every class made from
its acoustics, written by synth/urban.py.
Both are read by the same prepare(): the standard-library `wave` module (wavio), mixed to mono and
resampled with torchaudio, padded or cut to a fixed duration, split by the official folds.

Labels as in the thesis: dangerous (dog bark, gun shot, siren) = 1, benign (the other seven) = 0.
The ten classes stay in the arrays as class_train / class_test.
"""
from __future__ import annotations

import logging
import os
import tarfile
import time
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io import file_hash
from . import wavio
from .audio import write_representations
from .corpus import SUMS, Stream, build_corpus, inside, read_csv, refuse_duplicates, stream, verify_sums
from .source import Dataset, Source

log = logging.getLogger(__name__)

CLASSES = ("air_conditioner", "car_horn", "children_playing", "dog_bark", "drilling", "engine_idling",
           "gun_shot", "jackhammer", "siren", "street_music")
DANGEROUS = ("dog_bark", "gun_shot", "siren")
FOLDS = range(1, 11)
METADATA = "metadata/UrbanSound8K.csv"
COLUMNS = ("slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class")

ARCHIVE = "UrbanSound8K.tar.gz"
ARCHIVE_URL = "https://zenodo.org/record/1203745/files/UrbanSound8K.tar.gz"
# Zenodo publishes the MD5 (also in soundata's index) and the size; there is no published SHA-256.
ARCHIVE_MD5 = "9aa69802bbf37fb986f71ec1483a196e"
ARCHIVE_BYTES = 6023741708


def binary_label(class_id: int) -> int:
    return int(CLASSES[class_id] in DANGEROUS)


# ---- archive: the real UrbanSound8K --------------------------------------------------------------

def check_archive(path: Path) -> None:
    """The archive has the published size and MD5; a bad one is renamed to *.bad (never trusted
    again by a later run) and the error names both hashes."""
    md5, size = ARCHIVE_MD5, ARCHIVE_BYTES
    actual_size = path.stat().st_size
    actual = file_hash(path, "md5") if size is None or actual_size == size else f"(not computed: {actual_size} bytes)"
    if actual != md5:
        bad = path.with_name(path.name + ".bad")
        os.replace(path, bad)
        raise DataError(f"{path}: checksum mismatch: expected md5 {md5}"
                        f"{f' and {size} bytes' if size else ''}, got {actual}; moved aside to {bad}")


def _fetch_archive(raw_dir: Path, tmp: Path) -> Path:
    """Download (or reuse a verified archive beside raw_dir), check, extract; returns the data root."""
    import torch.hub

    kept = raw_dir.parent / ARCHIVE
    hint = (f"download {ARCHIVE_URL} by other means, check that its md5 is {ARCHIVE_MD5}, "
            f"and put it at {kept}")
    if not kept.exists():
        partial = kept.with_name(kept.name + ".part")
        try:
            torch.hub.download_url_to_file(ARCHIVE_URL, str(partial), progress=True)
        except Exception as exc:  # noqa: BLE001 - URLError, HTTP errors, disk full ...
            partial.unlink(missing_ok=True)
            raise DataError(f"{raw_dir}: downloading UrbanSound8K failed ({exc}); {hint}") from None
        os.replace(partial, kept)
    check_archive(kept)
    with tarfile.open(kept) as tar:
        tar.extractall(tmp, filter="data")
    root = tmp / "UrbanSound8K"
    if not (root / METADATA).is_file():
        raise DataError(f"{kept}: has no UrbanSound8K/{METADATA}")
    return root


def fetch(data_cfg: dict, raw_dir: Path, seed: int) -> None:
    """Fill raw_dir with metadata/UrbanSound8K.csv, audio/fold*/ and SHA256SUMS; built in a temporary
    sibling and renamed into place at the end, so a half-made corpus is never taken for complete."""
    raw_dir = Path(raw_dir)
    source = data_cfg["source"]
    config = {"source": source}
    if source == "synthetic":
        config.update(seed=seed, corpus=data_cfg["corpus"])

    def make(tmp: Path):
        if source == "synthetic":
            # Imported here: synth/ reads this module's layout constants (no import cycle).
            from ..synth.urban import write_corpus

            root = tmp
            write_corpus(data_cfg, root, seed)
        else:
            root = _fetch_archive(raw_dir, tmp)
        return root, [clip_path(r) for r in read_metadata(root)] + [METADATA]

    build_corpus(raw_dir, config, make, noun="files")


# ---- prepare: clips -> arrays --------------------------------------------------------------------

def clip_path(row: dict) -> str:
    return f"audio/fold{row['fold']}/{row['slice_file_name']}"


def read_metadata(root: Path) -> list[dict]:
    """The CSV rows, checked against the class list, the folds and the audio folders (both ways)."""
    path = root / METADATA
    if not path.is_file():
        raise DataError(f"{path}: not found; run `advrepro fetch urban` first")
    numbered = read_csv(path, COLUMNS)
    if not numbered:
        raise DataError(f"{path}: lists no clips")
    for line, row in numbered:
        try:
            class_id, fold = int(row["classID"]), int(row["fold"])
        except ValueError:
            raise DataError(f"{path}:{line}: classID {row['classID']!r} / fold {row['fold']!r} "
                            "are not integers") from None
        if not 0 <= class_id < len(CLASSES) or CLASSES[class_id] != row["class"]:
            raise DataError(f"{path}:{line}: classID {class_id} does not name class {row['class']!r}")
        if fold not in FOLDS:
            raise DataError(f"{path}:{line}: fold {fold} is not 1..10")
        name = row["slice_file_name"]
        if inside(path, line, name) != name or "/" in name:  # a bare file name inside audio/fold<N>/
            raise DataError(f"{path}:{line}: slice_file_name {name!r} is not a file name inside audio/fold{fold}")
    refuse_duplicates(path, [(line, clip_path(row)) for line, row in numbered])
    rows = [row for _, row in numbered]
    listed = {clip_path(r) for r in rows}
    on_disk = {p.relative_to(root).as_posix() for p in (root / "audio").glob("fold*/*.wav")}
    if listed - on_disk:
        raise DataError(f"{root / sorted(listed - on_disk)[0]}: listed in {path} but missing "
                        f"({len(listed - on_disk)} missing)")
    if on_disk - listed:
        raise DataError(f"{root / sorted(on_disk - listed)[0]}: not listed in {path} "
                        f"({len(on_disk - listed)} unlisted)")
    return rows


def load_clips(root: Path, rows: list[dict], rate: int, length: int,
               skip_unreadable: bool) -> tuple[np.ndarray, list[int]]:
    """float32 [N, length]: every clip mono at `rate`, zero-padded or cut; and the kept row indices.
    A file the `wave` module cannot read stops everything, naming it, unless skip_unreadable (the
    real archive has a few ADPCM and float files): then each is logged by name and left out."""
    from tqdm import tqdm

    waves, kept = np.zeros((len(rows), length), np.float32), []
    for i, row in enumerate(tqdm(rows, desc="read clips", unit="clip", mininterval=2)):
        try:
            x, file_rate = wavio.read_wav(root / clip_path(row))
        except DataError as exc:
            if not skip_unreadable:
                raise
            log.warning("skipped: %s", exc)
            continue
        mono = wavio.to_mono_resampled(x, file_rate, rate)[:length]
        waves[len(kept), :len(mono)] = mono
        kept.append(i)
    if len(kept) < len(rows):
        log.warning("skipped %d of %d clips that the wave module cannot read", len(rows) - len(kept), len(rows))
    return waves[:len(kept)], kept


def split(folds: np.ndarray, test_folds: list[int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) clip indices by the official folds, each in a seeded random order (so the
    first n test clips already mix the classes)."""
    is_test = np.isin(folds, test_folds)
    train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    if not len(train) or not len(test):
        raise DataError(f"test folds {test_folds} leave {len(train)} training and {len(test)} test clips")
    rng = stream(seed, Stream.URBAN_SPLIT)
    return rng.permutation(train), rng.permutation(test)


def prepare(urban_cfg: dict, raw_dir: Path, outputs: dict[str, Path], seed: int) -> dict:
    """Write outputs["urban-raw" | "urban-mel" | "urban-meldb"] (any of them), as audio.write_representations
    describes, with y = dangerous (1) / benign (0) and the ten classes and folds as class_* / fold_*.
    Nothing is written unless every clip reads and verifies."""
    data_cfg, feat, aug = urban_cfg["data"], urban_cfg["features"], urban_cfg["augment"]
    raw_dir, rate = Path(raw_dir), data_cfg["sample_rate"]
    start = time.perf_counter()
    rows = read_metadata(raw_dir)
    if (raw_dir / SUMS).exists():
        verify_sums(raw_dir)
    waves, kept = load_clips(raw_dir, rows, rate, int(round(data_cfg["duration"] * rate)),
                             data_cfg["skip_unreadable"])
    rows = [rows[i] for i in kept]
    classes = np.array([int(r["classID"]) for r in rows], np.int32)
    folds = np.array([int(r["fold"]) for r in rows], np.int32)
    labels = np.array([binary_label(c) for c in classes], np.int32)
    train, test = split(folds, data_cfg["test_folds"], seed)
    assert not set(folds[train]) & set(folds[test]), "a fold in both splits"
    log.info("read %d clips in %.1f s; test folds %s: %d train, %d test, %.0f %% dangerous", len(rows),
             time.perf_counter() - start, data_cfg["test_folds"], len(train), len(test), 100 * labels.mean())
    summary = write_representations("urban", waves, labels, {"class": classes, "fold": folds}, train, test, rate,
                                    feat, aug, seed, outputs)
    log.info("prepared urban in %.1f s", time.perf_counter() - start)
    return summary


def _fetch(section: dict, raw_dir: Path, seed: int) -> None:
    fetch(section["data"], raw_dir, seed=seed)


# Dangerous (dog bark, gun shot, siren) vs benign: two classes; the ten stay as class_* arrays.
SOURCE = Source("urban", 2, (
    Dataset("urban-raw", "urban", "urban.raw", "waveform", "UrbanSound8K, raw waveform"),
    Dataset("urban-mel", "urban", "urban.spectrogram", "spectrogram", "UrbanSound8K, Mel spectrogram"),
    Dataset("urban-meldb", "urban", "urban.spectrogram", "spectrogram",
            "UrbanSound8K, Mel spectrogram + AmplitudeToDB"),
), _fetch, prepare, code=("data/urbansound.py", "data/corpus.py", "data/audio.py", "data/wavio.py", "synth/urban.py",
                          "synth/noise.py"),
    fetch_params=("profile", "profiles", "seed", "urban.data"))
