"""GTSRB (section 5.2): the rendered stand-in, read by torchvision's own loader, and prepare()."""
from __future__ import annotations

import csv
import multiprocessing
import os
import re
import shutil
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from advrepro.data import gtsrb
from advrepro.data.corpus import CONFIG, SUMS
from advrepro.errors import DataError
from advrepro.io import read_npz
from advrepro.synth import signs

CFG = {"source": "synthetic", "train_per_class": 3, "test_per_class": 1, "render_size": 32, "image_size": 16}
SIZE = 16


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("gtsrb") / "raw"
    gtsrb.fetch(CFG, raw, seed=0)
    return raw


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory) -> tuple[Path, dict, dict]:
    out = tmp_path_factory.mktemp("processed") / "gtsrb.npz"
    summary = gtsrb.prepare(CFG, corpus, out, image_size=SIZE, seed=0)
    return out, summary, read_npz(out)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter=";"))


def copy_without_sums(corpus: Path, dest: Path) -> Path:
    shutil.copytree(corpus, dest)
    (dest / SUMS).unlink()
    return dest


def test_class_names():
    assert len(gtsrb.CLASS_NAMES) == 43 == len(set(gtsrb.CLASS_NAMES))
    assert gtsrb.CLASS_NAMES[0] == "speed limit 20" and gtsrb.CLASS_NAMES[14] == "stop"
    assert gtsrb.CLASS_NAMES[40] == "roundabout mandatory"
    assert gtsrb.CLASS_NAMES[42] == "end of no passing by vehicles over 3.5 t"


# ---- the rendered corpus ---------------------------------------------------------------------------

def test_layout_csvs_and_checksums(corpus):
    files = tree_bytes(corpus)
    train = [f for f in files if f.startswith("gtsrb/GTSRB/Training/") and f.endswith(".ppm")]
    test = [f for f in files if f.startswith("gtsrb/GTSRB/Final_Test/Images/") and f.endswith(".ppm")]
    assert len(train) == 43 * 3 and len(test) == 43
    assert "gtsrb/GTSRB/Training/00042/00000_00002.ppm" in files
    assert "gtsrb/GTSRB/Final_Test/Images/00042.ppm" in files
    rows = read_csv(corpus / "gtsrb/GTSRB/Training/00007/GT-00007.csv")
    assert tuple(rows[0]) == gtsrb.COLUMNS
    assert [r["Filename"] for r in rows] == ["00000_00000.ppm", "00000_00001.ppm", "00000_00002.ppm"]
    for r in rows + read_csv(corpus / gtsrb.TEST_CSV):
        x1, y1, x2, y2 = (int(r[k]) for k in ("Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2"))
        assert (int(r["Width"]), int(r["Height"])) == (32, 32)
        # the sign spans 60-95 % of the frame, rotated and tilted: its box is most of the image
        assert 0 <= x1 < x2 <= 31 and 0 <= y1 < y2 <= 31 and x2 - x1 >= 14 and y2 - y1 >= 14
    assert all(r["ClassId"] == "7" for r in rows)
    ppm = files["gtsrb/GTSRB/Training/00007/00000_00000.ppm"]
    assert ppm.startswith(b"P6\n32 32\n255\n") and len(ppm) == len(b"P6\n32 32\n255\n") + 32 * 32 * 3
    sums = dict(line.split("  ")[::-1] for line in files[SUMS].decode().splitlines())
    assert set(sums) == set(files) - {SUMS}
    assert b'"render_size": 32' in files[CONFIG] and b'"seed": 0' in files[CONFIG]


def test_corpus_is_byte_identical_across_generations_and_workers(corpus, tmp_path, monkeypatch):
    again = tmp_path / "again"
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})  # one worker instead of one per CPU
    gtsrb.fetch(CFG, again, seed=0)
    assert tree_bytes(again) == tree_bytes(corpus)


def test_another_seed_gives_other_images(corpus, tmp_path):
    other = tmp_path / "other"
    gtsrb.fetch(CFG, other, seed=1)
    a, b = tree_bytes(corpus), tree_bytes(other)
    assert a.keys() == b.keys()
    ppms = [f for f in a if f.endswith(".ppm")]
    assert sum(a[f] != b[f] for f in ppms) == len(ppms)


def test_complete_corpus_is_kept_and_damaged_one_remade(corpus, tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    shutil.copytree(corpus, raw)
    before = tree_bytes(raw)

    def fail(*args, **kwargs):
        raise AssertionError("rendered again")

    monkeypatch.setattr(signs, "render_image", fail)
    gtsrb.fetch(CFG, raw, seed=0)  # complete and verified: nothing rendered
    assert tree_bytes(raw) == before
    monkeypatch.undo()
    (raw / "gtsrb/GTSRB/Training/00003/00000_00001.ppm").unlink()
    gtsrb.fetch(CFG, raw, seed=0)
    assert tree_bytes(raw) == before
    gtsrb.fetch({**CFG, "train_per_class": 2}, raw, seed=0)  # other parameters: made again
    assert not (raw / "gtsrb/GTSRB/Training/00003/00000_00002.ppm").exists()
    assert sorted(os.listdir(tmp_path)) == ["raw"]  # no temporary directories left


def test_torchvision_reads_the_corpus(corpus):
    from torchvision.datasets import GTSRB

    train = GTSRB(str(corpus), split="train")
    assert len(train) == 43 * 3
    assert Counter(target for _, target in train._samples) == {c: 3 for c in range(43)}
    image, target = train[5 * 3]
    assert image.mode == "RGB" and image.size == (32, 32) and target == 5
    test = GTSRB(str(corpus), split="test")
    rows = read_csv(corpus / gtsrb.TEST_CSV)
    assert [Path(p).name for p, _ in test._samples] == [r["Filename"] for r in rows]
    assert [t for _, t in test._samples] == [int(r["ClassId"]) for r in rows]
    assert sorted(t for _, t in test._samples) == list(range(43))
    assert [t for _, t in test._samples] != list(range(43))  # numbered in a shuffled order, as the real set
    assert test[0][0].size == (32, 32)


# ---- the classes look like themselves ----------------------------------------------------------------

def redness(x: np.ndarray) -> float:
    """Mean of red minus blue."""
    return float((x[..., 0] - x[..., 2]).mean())


def sign_centres(corpus: Path, class_id: int) -> list[np.ndarray]:
    """The middle half (each axis) of the sign's ROI in each training image of the class."""
    folder = corpus / f"gtsrb/GTSRB/Training/{class_id:05d}"
    crops = []
    for r in read_csv(folder / f"GT-{class_id:05d}.csv"):
        x = np.asarray(Image.open(folder / r["Filename"]), np.float64)
        x1, y1, x2, y2 = (int(r[k]) for k in ("Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2"))
        cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 4, (y2 - y1) / 4
        crops.append(x[int(cy - h):int(cy + h) + 1, int(cx - w):int(cx + w) + 1])
    return crops


def test_flat_signs_differ_and_have_their_colours():
    flat = np.stack([np.asarray(signs.draw_sign(c), np.float64) for c in range(43)])
    rgb = flat[..., :3] * flat[..., 3:] / 255
    diff = np.stack([np.abs(rgb - sign).mean(axis=(1, 2, 3)) for sign in rgb])  # mean |difference|, 0-255
    np.fill_diagonal(diff, np.inf)
    assert diff.min() > 1.0  # even 30 vs 80, 19 vs 20 (mirrored), 33 vs 34 differ visibly
    for c in (14, 17, 13):  # stop, no entry, yield
        assert redness(rgb[c]) > 30
    for c in range(33, 41):
        assert redness(rgb[c]) < -60
    assert redness(rgb[12]) > 30  # priority road: yellow (red + green, no blue)


def test_rendered_classes_differ_and_have_their_colours(corpus):
    means = {}
    for c in range(43):
        folder = corpus / f"gtsrb/GTSRB/Training/{c:05d}"
        means[c] = np.mean([np.asarray(Image.open(p), np.float64) for p in sorted(folder.glob("*.ppm"))], axis=0)
    assert len({m.tobytes() for m in means.values()}) == 43
    for c in (14, 17):  # stop, no entry: red signs
        assert all(redness(crop) > 30 for crop in sign_centres(corpus, c))
    for c in range(33, 41):  # mandatory signs: blue
        assert all(redness(crop) < -30 for crop in sign_centres(corpus, c))


# ---- prepare ------------------------------------------------------------------------------------------

def test_prepare_arrays(prepared):
    _, summary, arrays = prepared
    assert arrays["x_train"].shape == (43 * 3, SIZE, SIZE, 3) and arrays["x_test"].shape == (43, SIZE, SIZE, 3)
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        assert x.dtype == np.float32 and y.dtype == np.int32
        assert x.min() >= -1.0 and x.max() <= 1.0 and x.std() > 0.1
        assert sorted(set(y.tolist())) == list(range(43))
    assert summary["class_counts_train"] == [3] * 43 and summary["class_counts_test"] == [1] * 43
    assert summary["x_train"] == [129, SIZE, SIZE, 3]
    assert arrays["y_train"][:43].tolist() != sorted(arrays["y_train"][:43].tolist())  # shuffled


def test_prepare_matches_the_images(corpus, prepared):
    _, _, arrays = prepared
    rows = read_csv(corpus / gtsrb.TEST_CSV)
    first = Image.open(corpus / gtsrb.TEST_DIR / rows[0]["Filename"]).convert("RGB")
    expected = np.asarray(first.resize((SIZE, SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0), np.float32)
    expected = expected / np.float32(127.5) - 1
    hits = [i for i, x in enumerate(arrays["x_test"]) if np.array_equal(x, expected)]
    assert len(hits) == 1 and arrays["y_test"][hits[0]] == int(rows[0]["ClassId"])


def test_prepare_is_deterministic(corpus, prepared, tmp_path):
    out, _, _ = prepared
    again = tmp_path / "again.npz"
    gtsrb.prepare(CFG, corpus, again, image_size=SIZE, seed=0)
    assert again.read_bytes() == out.read_bytes()
    other = tmp_path / "other.npz"
    gtsrb.prepare(CFG, corpus, other, image_size=SIZE, seed=1)
    assert not np.array_equal(read_npz(other)["y_train"], read_npz(out)["y_train"])


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_image_is_named_and_nothing_written(corpus, tmp_path, damage):
    raw = copy_without_sums(corpus, tmp_path / "raw")
    bad = raw / "gtsrb/GTSRB/Training/00020/00000_00001.ppm"
    data = bad.read_bytes()
    bad.write_bytes(data[:len(data) // 2] if damage == "truncated" else b"not an image at all" * 10)
    out = tmp_path / "out" / "gtsrb.npz"
    with pytest.raises(DataError, match=re.escape(str(bad))):
        gtsrb.prepare(CFG, raw, out, image_size=SIZE, seed=0)
    assert not out.parent.exists() or os.listdir(out.parent) == []


def test_missing_test_image_is_named(corpus, tmp_path):
    raw = copy_without_sums(corpus, tmp_path / "raw")
    gone = raw / gtsrb.TEST_DIR / "00010.ppm"
    gone.unlink()
    with pytest.raises(DataError, match=re.escape(str(gone))):
        gtsrb.prepare(CFG, raw, tmp_path / "out.npz", image_size=SIZE, seed=0)
    assert not (tmp_path / "out.npz").exists()


def test_tampered_image_fails_its_checksum(corpus, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(corpus, raw)
    bad = raw / "gtsrb/GTSRB/Final_Test/Images/00003.ppm"
    data = bytearray(bad.read_bytes())
    data[-1] ^= 0xFF  # still a valid image: only the checksum can tell
    bad.write_bytes(bytes(data))
    with pytest.raises(DataError, match=re.escape(f"{bad}: checksum mismatch")):
        gtsrb.prepare(CFG, raw, tmp_path / "out.npz", image_size=SIZE, seed=0)
    assert not (tmp_path / "out.npz").exists()


def test_missing_corpus_says_fetch(tmp_path):
    with pytest.raises(DataError, match="advrepro fetch gtsrb"):
        gtsrb.prepare(CFG, tmp_path / "nothing", tmp_path / "out.npz", image_size=SIZE, seed=0)


def test_fetch_leaves_no_half_written_directory(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise DataError("rendering failed")

    monkeypatch.setattr(signs, "render_image", fail)
    # Workers forked from this process see the failing renderer (the fork server's would not).
    monkeypatch.setattr(signs, "worker_pool",
                        lambda: ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")))
    with pytest.raises(DataError, match="rendering failed"):
        gtsrb.fetch(CFG, tmp_path / "raw", seed=0)
    assert os.listdir(tmp_path) == []


def test_torchvision_download_failure_names_raw_dir_and_the_way_out(tmp_path, monkeypatch):
    import torchvision.datasets.gtsrb as tv

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(tv, "download_and_extract_archive", offline)
    raw = tmp_path / "raw"
    with pytest.raises(DataError) as info:
        gtsrb.fetch({**CFG, "source": "torchvision"}, raw, seed=0)
    message = str(info.value)
    assert str(raw) in message and "no network" in message
    assert "GTSRB-Training_fixed.zip" in message and "513f3c79a4c5141765e10e952eaa2478" in message
    assert os.listdir(tmp_path) == []
