"""UrbanSound8K (section 5.4): the synthesized corpus, the archive path, the loader, the fold split."""
from __future__ import annotations

import copy
import csv
import hashlib
import io
import shutil
import struct
import tarfile
import wave
from pathlib import Path

import numpy as np
import pytest
import yaml

from advrepro.data import urbansound
from advrepro.data.corpus import write_manifest
from advrepro.errors import DataError
from advrepro.io import read_npz

from .conftest import ROOT, tiny_params

CFG = tiny_params(yaml.safe_load((ROOT / "params.yaml").read_text()))["urban"]
KINDS = ("raw", "mel", "meldb")


def outputs(folder: Path) -> dict[str, Path]:
    return {f"urban-{k}": folder / f"urban-{k}.npz" for k in KINDS}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("urban") / "raw"
    urbansound.fetch(CFG["data"], raw, seed=0)
    return raw


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory) -> dict:
    out = outputs(tmp_path_factory.mktemp("processed"))
    urbansound.prepare(CFG, corpus, out, seed=0)
    return {k: read_npz(v) for k, v in out.items()}


def metadata(root: Path) -> list[dict]:
    with open(root / urbansound.METADATA, newline="") as fh:
        return list(csv.DictReader(fh))


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---- the synthesized corpus ------------------------------------------------------------------------

def test_corpus_is_byte_identical_across_generations(corpus, tmp_path):
    again = tmp_path / "again"
    urbansound.fetch(CFG["data"], again, seed=0)
    assert tree_bytes(again) == tree_bytes(corpus)
    other = tmp_path / "other"
    urbansound.fetch(CFG["data"], other, seed=1)
    assert tree_bytes(other)[urbansound.METADATA] != tree_bytes(corpus)[urbansound.METADATA]


def test_corpus_has_the_urbansound8k_layout_classes_and_formats(corpus):
    rows = metadata(corpus)
    with open(corpus / urbansound.METADATA, newline="") as fh:
        assert tuple(csv.DictReader(fh).fieldnames) == urbansound.COLUMNS
    per_class = CFG["data"]["corpus"]["clips_per_class"]
    assert len(rows) == 10 * per_class
    assert sorted({(int(r["classID"]), r["class"]) for r in rows}) == list(enumerate(urbansound.CLASSES))
    assert {int(r["fold"]) for r in rows} == set(range(1, 11))
    formats, durations = set(), []
    for r in rows:
        fs_id, class_id, _, slice_ = r["slice_file_name"].removesuffix(".wav").split("-")
        assert (fs_id, class_id) == (r["fsID"], r["classID"])
        with wave.open(str(corpus / "audio" / f"fold{r['fold']}" / r["slice_file_name"])) as wf:
            formats.add((wf.getframerate(), wf.getsampwidth(), wf.getnchannels()))
            durations.append(wf.getnframes() / wf.getframerate())
        assert float(r["end"]) - float(r["start"]) == pytest.approx(durations[-1], abs=1e-3)
    c = CFG["data"]["corpus"]
    assert {f[0] for f in formats} == set(c["sample_rates"])
    assert {f[1] for f in formats} == set(c["sample_widths"]) and {f[2] for f in formats} == set(c["channels"])
    assert 1.0 <= min(durations) and max(durations) <= 4.0 + 1e-3
    # every slice of a recording (fsID) sits in one fold, as in the real data
    folds = {}
    for r in rows:
        folds.setdefault(r["fsID"], set()).add(r["fold"])
    assert all(len(f) == 1 for f in folds.values())


# ---- prepare: labels, folds, shapes -------------------------------------------------------------

def test_folds_are_respected_and_labels_are_dangerous_vs_benign(prepared):
    raw = prepared["urban-raw"]
    test_folds = CFG["data"]["test_folds"]
    assert not set(raw["fold_train"]) & set(test_folds) and set(raw["fold_test"]) <= set(test_folds)
    assert len(raw["y_train"]) + len(raw["y_test"]) == 10 * CFG["data"]["corpus"]["clips_per_class"]
    dangerous = {urbansound.CLASSES.index(c) for c in urbansound.DANGEROUS}
    for split in ("train", "test"):
        assert np.array_equal(raw[f"y_{split}"], np.isin(raw[f"class_{split}"], list(dangerous)).astype(np.int32))
    assert set(raw["class_test"]) == set(range(10))  # every class is tested


def test_prepared_shapes_and_ranges(prepared):
    d, f = CFG["data"], CFG["features"]
    assert prepared["urban-raw"]["x_train"].shape[1:] == (int(d["duration"] * f["raw_rate"]), 1)
    frames = 1 + int(d["duration"] * d["sample_rate"]) // f["hop_length"]
    for kind in ("mel", "meldb"):
        x = prepared[f"urban-{kind}"]
        assert x["x_train"].shape[1:] == (frames, f["n_mels"])
        assert x["x_train"].min() == -1 and x["x_train"].max() == 1
        assert x["x_train_spec_views"].shape == (CFG["augment"]["views"], *x["x_train"].shape)


def test_a_test_fold_change_moves_the_clips(corpus, tmp_path):
    cfg = copy.deepcopy(CFG)
    cfg["data"]["test_folds"] = [1]
    out = outputs(tmp_path)
    urbansound.prepare(cfg, corpus, {"urban-mel": out["urban-mel"]}, seed=0)
    x = read_npz(out["urban-mel"])
    assert set(x["fold_test"]) == {1} and 1 not in set(x["fold_train"])
    assert not out["urban-raw"].exists()


# ---- the loader: every PCM format, and bad files -----------------------------------------------

def write_with_wave(path: Path, frames: np.ndarray, rate: int, width: int) -> None:
    """Integer frames [n, channels] written by the standard-library wave module (8-bit is unsigned)."""
    raw = frames.astype("<i4")
    if width == 1:
        data = (raw + 128).astype(np.uint8).tobytes()
    elif width == 3:
        b = raw.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]
        data = b.tobytes()
    else:
        data = raw.astype({2: "<i2", 4: "<i4"}[width]).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(frames.shape[1]), wf.setsampwidth(width), wf.setframerate(rate)
        wf.writeframes(data)


def tiny_tree(root: Path, files: list[tuple[int, int, np.ndarray]], rate: int) -> list[dict]:
    """An UrbanSound8K layout with one clip per (width, channels, frames) entry, all in fold 1
    but the last, in fold 10; classes cycle through the ten."""
    rows = []
    for i, (width, _, frames) in enumerate(files):
        fold, class_id = (10 if i == len(files) - 1 else 1), i % 10
        row = dict(slice_file_name=f"{1000 + i}-{class_id}-0-0.wav", fsID=1000 + i, start=0.0,
                   end=len(frames) / rate, salience=1, fold=fold, classID=class_id,
                   **{"class": urbansound.CLASSES[class_id]})
        write_with_wave(root / urbansound.clip_path(row), frames, rate, width)
        rows.append(row)
    write_manifest(root / urbansound.METADATA, rows)
    return rows


FORMATS = [(w, c) for w in (1, 2, 3, 4) for c in (1, 2)]


def test_loader_reads_every_pcm_format_to_the_same_samples(tmp_path):
    rate, n = 1000, 500
    rng = np.random.default_rng(0)
    files = []
    for width, channels in FORMATS:
        top = 2 ** (8 * width - 1)
        files.append((width, channels, rng.integers(-top, top, (n, channels))))
    rows = tiny_tree(tmp_path, files, rate)
    waves, kept = urbansound.load_clips(tmp_path, rows, rate, n, skip_unreadable=False)
    assert kept == list(range(len(files)))
    for (width, channels, frames), got in zip(files, waves, strict=True):
        expected = (frames / 2.0 ** (8 * width - 1)).mean(axis=1)
        assert np.allclose(got, expected, atol=1e-6), (width, channels)
    # another file rate is resampled with torchaudio to the target rate and padded to the length
    rows2 = tiny_tree(tmp_path / "r", [(2, 1, (np.sin(np.arange(441) / 5) * 10000)[:, None].astype(int))] * 2,
                      44100)
    waves2, _ = urbansound.load_clips(tmp_path / "r", rows2, 8000, 160, skip_unreadable=False)
    assert waves2.shape == (2, 160) and np.abs(waves2[:, :70]).max() > 0.2 and not waves2[:, 85:].any()


def float_wav(n: int) -> bytes:
    fmt = struct.pack("<HHIIHH", 3, 1, 8000, 32000, 4, 32)
    data = np.zeros(n, "<f4").tobytes()
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("case, message", [("lying", "truncated"), ("empty", "empty"), ("float", "unknown format")])
def test_bad_files_stop_prepare_naming_the_file_and_write_nothing(tmp_path, case, message):
    root = tmp_path / "raw"
    files = [(2, 1, np.full((400, 1), 1000 * (i + 1))) for i in range(4)]
    rows = tiny_tree(root, files, 1000)
    bad = root / urbansound.clip_path(rows[1])
    if case == "lying":  # the header promises 400 frames, the file holds 100
        bad.write_bytes(bad.read_bytes()[:44 + 200])
    else:
        bad.write_bytes(b"" if case == "empty" else float_wav(100))
    cfg = copy.deepcopy(CFG)
    cfg["data"].update(sample_rate=1000, test_folds=[10])
    out = outputs(tmp_path / "processed")
    with pytest.raises(DataError, match=message) as info:
        urbansound.prepare(cfg, root, out, seed=0)
    assert str(bad) in str(info.value)
    assert not (tmp_path / "processed").exists()
    # the thesis profile's choice for the real archive: leave such files out, by name
    cfg["data"]["skip_unreadable"] = True
    urbansound.prepare(cfg, root, {"urban-raw": out["urban-raw"]}, seed=0)
    assert len(read_npz(out["urban-raw"])["y_train"]) == 2


def test_metadata_and_folders_must_match(corpus, tmp_path):
    root = tmp_path / "raw"
    shutil.copytree(corpus, root)
    rows = metadata(root)
    extra = root / "audio" / "fold3" / "999-1-0-0.wav"
    shutil.copy(root / urbansound.clip_path(rows[0]), extra)
    with pytest.raises(DataError, match="not listed in") as info:
        urbansound.read_metadata(root)
    assert str(extra) in str(info.value)
    extra.unlink()
    gone = root / urbansound.clip_path(rows[5])
    gone.unlink()
    with pytest.raises(DataError, match="listed in .* but missing") as info:
        urbansound.read_metadata(root)
    assert str(gone) in str(info.value)
    text = (root / urbansound.METADATA).read_text().replace(",3,dog_bark", ",4,dog_bark", 1)
    (root / urbansound.METADATA).write_text(text)
    with pytest.raises(DataError, match="classID 4 does not name class 'dog_bark'"):
        urbansound.read_metadata(root)


# ---- the real archive's path ----------------------------------------------------------------------

def test_archive_fetch_checks_md5_extracts_and_reads_like_the_synthetic_corpus(corpus, tmp_path, monkeypatch):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(p for p in corpus.rglob("*") if p.is_file()):
            rel = path.relative_to(corpus).as_posix()
            if rel.startswith(("metadata/", "audio/")):
                tar.add(path, arcname=f"UrbanSound8K/{rel}")
    (tmp_path / urbansound.ARCHIVE).write_bytes(buf.getvalue())
    monkeypatch.setattr(urbansound, "ARCHIVE_MD5", hashlib.md5(buf.getvalue()).hexdigest())
    monkeypatch.setattr(urbansound, "ARCHIVE_BYTES", len(buf.getvalue()))
    cfg = copy.deepcopy(CFG)
    cfg["data"]["source"] = "archive"
    raw = tmp_path / "raw"
    urbansound.fetch(cfg["data"], raw, seed=0)
    assert metadata(raw) == metadata(corpus)
    out = outputs(tmp_path / "processed")
    urbansound.prepare(cfg, raw, {"urban-meldb": out["urban-meldb"]}, seed=0)
    ours = read_npz(out["urban-meldb"])
    assert len(ours["y_train"]) + len(ours["y_test"]) == len(metadata(corpus))
    # a tampered archive: refused with both hashes, moved aside, never trusted again
    monkeypatch.setattr(urbansound, "ARCHIVE_MD5", "0" * 32)
    with pytest.raises(DataError, match=r"checksum mismatch: expected md5 0{32}.*got [0-9a-f]{32}") as info:
        urbansound.fetch(cfg["data"], tmp_path / "raw2", seed=0)
    assert urbansound.ARCHIVE in str(info.value)
    assert not (tmp_path / urbansound.ARCHIVE).exists() and (tmp_path / f"{urbansound.ARCHIVE}.bad").exists()
    assert not (tmp_path / "raw2").exists()
