"""Fashion-MNIST: fetch (installed package, apt fallback, checksums), idx reading, prepare, params, system-deps.

Runs on small idx .gz files the tests write (a few dozen 28x28 images in the real format); one test checks
the real Debian files where the package is installed."""
from __future__ import annotations

import copy
import gzip
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from advrepro import data
from advrepro.data import fmnist
from advrepro.data.corpus import CONFIG, SUMS
from advrepro.errors import DataError, ParamsError
from advrepro.io import read_npz
from advrepro.params import resolve, validate

from .conftest import ROOT

N_TRAIN, N_TEST = 40, 20  # 4 and 2 per class
CFG = {"source": "debian", "n_train": 20, "n_test": 10, "image_size": 14}


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_gz(path: Path, raw: bytes) -> None:
    path.write_bytes(gzip.compress(raw, mtime=0))


def write_fmnist(folder: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """The four files in `folder`: random images, every class equally often in a shuffled order."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        arrays[f"{split}-images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}-labels"] = rng.permutation(np.arange(n) % 10).astype(np.uint8)
        write_gz(folder / f"{split}-images-idx3-ubyte.gz", idx_bytes(arrays[f"{split}-images"]))
        write_gz(folder / f"{split}-labels-idx1-ubyte.gz", idx_bytes(arrays[f"{split}-labels"]))
    return arrays


def digests(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in fmnist.SHA256}


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def system(tmp_path) -> tuple[Path, dict[str, str], dict[str, np.ndarray]]:
    """A stand-in for /usr/share/datasets/fashion-mnist: (folder, its SHA-256s, the arrays in it)."""
    folder = tmp_path / "system"
    arrays = write_fmnist(folder)
    return folder, digests(folder), arrays


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


# ---- fetch ---------------------------------------------------------------------------------------------

def test_fetch_copies_the_checked_files_and_reuses_a_complete_raw_dir(tmp_path, system):
    folder, sums, _ = system
    raw = tmp_path / "raw"
    fmnist.fetch({"source": "debian"}, raw, system_dir=folder, sums=sums, package=None)
    assert sorted(p.name for p in raw.iterdir()) == sorted([*fmnist.SHA256, SUMS, CONFIG])
    assert all((raw / name).read_bytes() == (folder / name).read_bytes() for name in fmnist.SHA256)
    mtimes = {p.name: p.stat().st_mtime_ns for p in raw.iterdir()}
    shutil.rmtree(folder)  # complete and verified: not copied again
    fmnist.fetch({"source": "debian"}, raw, system_dir=folder, sums=sums, package=None)
    assert {p.name: p.stat().st_mtime_ns for p in raw.iterdir()} == mtimes


@pytest.mark.parametrize("before", ["absent", "damaged"])
def test_fetch_refuses_a_checksum_mismatch_and_leaves_the_raw_dir_as_it_was(tmp_path, system, before):
    folder, sums, _ = system
    raw = tmp_path / "raw"
    if before == "damaged":  # an earlier fetch, since damaged: fetch would replace it, were the source right
        fmnist.fetch({"source": "debian"}, raw, system_dir=folder, sums=sums, package=None)
        (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(b"damaged")
        was = tree_bytes(raw)
    name = "train-images-idx3-ubyte.gz"
    found = hashlib.sha256(b"not the file").hexdigest()
    (folder / name).write_bytes(b"not the file")
    with pytest.raises(DataError) as info:
        fmnist.fetch({"source": "debian"}, raw, system_dir=folder, sums=sums, package=None)
    assert one_line(info).startswith(f"{name} (from {folder}): checksum mismatch: expected sha256 {sums[name]}, "
                                     f"found {found}")
    if before == "absent":
        assert not raw.exists()
    else:
        assert tree_bytes(raw) == was
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".raw")] == []  # no temporary left


def test_fetch_checks_against_the_recorded_debian_digests_by_default(tmp_path, system):
    folder, _, _ = system
    with pytest.raises(DataError, match=r"checksum mismatch: expected sha256 [0-9a-f]{64}, found"):
        fmnist.fetch({"source": "debian"}, tmp_path / "raw", system_dir=folder, package=None)
    assert not (tmp_path / "raw").exists()


def test_missing_files_without_apt_say_to_install_the_package(tmp_path):
    with pytest.raises(DataError) as info:
        fmnist.fetch({"source": "debian"}, tmp_path / "raw", system_dir=tmp_path / "none", package=None)
    assert "install the Debian package dataset-fashion-mnist (scripts/system-deps.sh does)" in one_line(info)
    assert not (tmp_path / "raw").exists()


def fake_apt(tmp_path: Path, monkeypatch, body: str) -> None:
    """An `apt-get` first on the PATH (dpkg-deb stays the real one)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "apt-get").write_text(f"#!/bin/bash\n{body}\n")
    (bin_dir / "apt-get").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_without_the_installed_package_fetch_downloads_and_unpacks_it(tmp_path, monkeypatch):
    """`apt-get download` (here a fake one handing over a .deb built from test files) and `dpkg-deb -x`."""
    tree = tmp_path / "pkg"
    write_fmnist(tree / fmnist.DEB_DIR, seed=1)
    sums = digests(tree / fmnist.DEB_DIR)
    (tree / "DEBIAN").mkdir()
    (tree / "DEBIAN" / "control").write_text("Package: dataset-fashion-mnist\nVersion: 1\nArchitecture: all\n"
                                              "Maintainer: test <test@example.org>\nDescription: test files\n")
    deb = tmp_path / "test.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(tree), str(deb)], check=True,
                   capture_output=True)
    fake_apt(tmp_path, monkeypatch, f'[[ $1 == download ]] && cp "{deb}" "./$3_1_all.deb"')
    raw = tmp_path / "raw"
    fmnist.fetch({"source": "debian"}, raw, system_dir=tmp_path / "none", sums=sums)
    assert all((raw / name).read_bytes() == (tree / fmnist.DEB_DIR / name).read_bytes() for name in sums)


def test_a_failing_apt_download_is_one_line_naming_the_package(tmp_path, monkeypatch):
    fake_apt(tmp_path, monkeypatch, 'echo "E: Unable to locate package $3" >&2; exit 100')
    with pytest.raises(DataError) as info:
        fmnist.fetch({"source": "debian"}, tmp_path / "raw", system_dir=tmp_path / "none")
    message = one_line(info)
    assert "`apt-get download dataset-fashion-mnist` failed (E: Unable to locate package" in message
    assert message.endswith("install the Debian package dataset-fashion-mnist (scripts/system-deps.sh does)")
    assert not (tmp_path / "raw").exists()


def test_a_failed_torchvision_download_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    """Without the upstream site (here: a mirror on a closed local port)."""
    from torchvision.datasets import FashionMNIST

    monkeypatch.setattr(FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DataError) as info:
        fmnist.fetch({"source": "torchvision"}, tmp_path / "raw")
    assert "downloading Fashion-MNIST with torchvision failed" in one_line(info)
    assert "use source debian" in one_line(info)
    assert list(tmp_path.iterdir()) == []


# ---- prepare -------------------------------------------------------------------------------------------

def prepare(raw: Path, out: Path, seed: int = 0, **cfg) -> tuple[dict, dict, list[Path]]:
    """Through the registry, as `advrepro prepare fmnist` calls it: (summary, arrays, output paths)."""
    outputs = {name: out / f"{name}.npz" for name in ("fmnist-r1", "fmnist-s3")}
    summary = data.SOURCES["fmnist"].prepare({"data": dict(CFG, **cfg)}, raw, outputs, seed)
    return summary, read_npz(outputs["fmnist-r1"]), list(outputs.values())


def test_prepare_writes_stratified_area_downsampled_images_in_the_unit_range(tmp_path, system):
    folder, _, originals = system
    summary, arrays, outputs = prepare(folder, tmp_path / "out")
    assert outputs[0].read_bytes() == outputs[1].read_bytes()
    assert arrays["x_train"].shape == (20, 14, 14, 1) and arrays["x_test"].shape == (10, 14, 14, 1)
    assert arrays["x_train"].dtype == np.float32 and arrays["y_train"].dtype == np.int32
    for split, name, per_class in (("train", "train", 2), ("t10k", "test", 1)):
        x, y = arrays[f"x_{name}"], arrays[f"y_{name}"]
        assert x.min() >= -1 and x.max() <= 1
        assert np.bincount(y, minlength=10).tolist() == [per_class] * 10 == summary[f"class_counts_{name}"]
        # every sample is the 2x2 block mean of one original image, mapped to [-1, 1], with its label
        blocks = originals[f"{split}-images"].astype(np.float32).reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4))
        expected = {(blocks[i] / 127.5 - 1).astype(np.float32).tobytes(): int(label)
                    for i, label in enumerate(originals[f"{split}-labels"])}
        assert [expected.get(x[i, ..., 0].tobytes()) for i in range(len(x))] == y.tolist()
        assert len({x[i].tobytes() for i in range(len(x))}) == len(x)  # no image twice


def test_prepare_at_full_size_keeps_the_pixels(tmp_path, system):
    folder, _, originals = system
    _, arrays, _ = prepare(folder, tmp_path / "out", n_train=N_TRAIN, n_test=N_TEST, image_size=28)
    pixels = np.rint((arrays["x_train"][..., 0] + 1) * 127.5).astype(np.uint8)
    assert sorted(p.tobytes() for p in pixels) == sorted(p.tobytes() for p in originals["train-images"])


def test_prepare_is_byte_identical_for_a_seed_and_differs_for_another(tmp_path, system):
    folder = system[0]
    runs = [prepare(folder, tmp_path / name, seed=seed)[2][0].read_bytes()
            for name, seed in (("a", 0), ("b", 0), ("c", 1))]
    assert runs[0] == runs[1] != runs[2]


def test_prepared_files_load_and_their_image_size_is_checked(tmp_path, system):
    _, _, outputs = prepare(system[0], tmp_path / "out")
    params = {"profile": "offline", "fmnist": {"data": dict(CFG)}}
    for dataset, path in zip(("fmnist-r1", "fmnist-s3"), outputs, strict=True):
        arrays = data.load(dataset, path, params=params)
        assert arrays.n_classes == 10 and arrays.x_train.shape == (20, 14, 14, 1)
    params["fmnist"]["data"]["image_size"] = 28
    with pytest.raises(DataError, match=r"holds 14x14 images .* fmnist.data.image_size is 28 .* `advrepro prepare "
                                        r"fmnist` again"):
        data.load("fmnist-r1", outputs[0], params=params)


@pytest.mark.parametrize("damage, message", [
    ("cut", r"t10k-images-idx3-ubyte.gz: not a complete gzip file \(.*\); run `advrepro fetch fmnist` again"),
    ("truncated", r"t10k-images-idx3-ubyte.gz: 15000 bytes unpacked, its header promises 15696 \(truncated or "
                  r"corrupt\)"),
    ("shape", r"t10k-images-idx3-ubyte.gz: samples of shape \[20, 20\], Fashion-MNIST's are \[28, 28\]"),
    ("labels", r"t10k-labels-idx1-ubyte.gz: 19 labels for 20 images"),
    ("classes", r"t10k-labels-idx1-ubyte.gz: labels outside 0..9 \(found 10\)"),
    ("missing", r"t10k-labels-idx1-ubyte.gz: not found; run `advrepro fetch fmnist` first"),
])
def test_bad_idx_files_are_refused_with_one_line_naming_the_file(tmp_path, system, damage, message):
    folder = system[0]
    images, labels = folder / "t10k-images-idx3-ubyte.gz", folder / "t10k-labels-idx1-ubyte.gz"
    if damage == "cut":
        images.write_bytes(images.read_bytes()[:-100])
    elif damage == "truncated":
        write_gz(images, gzip.decompress(images.read_bytes())[:15000])
    elif damage == "shape":
        write_gz(images, idx_bytes(np.zeros((20, 20, 20))))
    elif damage == "labels":
        write_gz(labels, idx_bytes(np.arange(19) % 10))
    elif damage == "classes":
        write_gz(labels, idx_bytes(np.arange(20) % 11))
    else:
        labels.unlink()
    with pytest.raises(DataError, match=message) as info:
        prepare(folder, tmp_path / "out")
    one_line(info)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_prepare_verifies_the_raw_dir_and_refuses_too_large_a_subset(tmp_path, system):
    folder, sums, _ = system
    raw = tmp_path / "raw"
    fmnist.fetch({"source": "debian"}, raw, system_dir=folder, sums=sums, package=None)
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz: 41 samples asked for, the file holds 40"):
        prepare(raw, tmp_path / "out", n_train=41)
    write_gz(raw / "train-images-idx3-ubyte.gz", idx_bytes(np.zeros((N_TRAIN, 28, 28))))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: checksum mismatch"):
        prepare(raw, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_stratified_subset_takes_each_class_share_exactly():
    labels = np.repeat(np.arange(3), [50, 30, 20])
    rng = np.random.default_rng(0)
    for n in (1, 7, 10, 33, 100):
        idx = fmnist.stratified_subset(labels, n, rng, Path("labels"))
        counts = np.bincount(labels[idx], minlength=3)
        assert len(set(idx.tolist())) == len(idx) == n
        assert np.all(np.abs(counts - n * np.array([0.5, 0.3, 0.2])) < 1)


# ---- registry, params, system-deps ----------------------------------------------------------------------

def test_registered_with_its_two_datasets():
    source = data.SOURCES["fmnist"]
    assert source.n_classes == 10 and [d.name for d in source.datasets] == ["fmnist-r1", "fmnist-s3"]
    assert {data.DATASETS[d].section for d in ("fmnist-r1", "fmnist-s3")} == {"fmnist.r1", "fmnist.s3"}
    assert all((ROOT / "src" / "advrepro" / c).is_file() for c in source.code)


def test_params_offline_and_thesis_values_and_their_limits(raw_params):
    assert raw_params["fmnist"]["data"] == {"source": "debian", "n_train": 12000, "n_test": 2000, "image_size": 14}
    assert resolve(raw_params, "thesis")["fmnist"]["data"] == {"source": "torchvision", "n_train": 60000,
                                                               "n_test": 10000, "image_size": 28}
    for key, value in (("n_train", 60001), ("image_size", 29), ("source", "npm")):
        bad = copy.deepcopy(raw_params)
        bad["fmnist"]["data"][key] = value
        with pytest.raises(ParamsError, match=f"fmnist.data.{key}: bad value"):
            validate(bad)


def run_system_deps(tmp_path: Path, files: bool) -> tuple[subprocess.CompletedProcess, list[str]]:
    """scripts/system-deps.sh with every tool present (stubs) and FASHION_MNIST_DIR a test folder; the fake
    apt-get "installs" dataset-fashion-mnist by writing its four files there."""
    bin_dir, log, folder = tmp_path / "bin", tmp_path / "apt.log", tmp_path / "fashion-mnist"
    bin_dir.mkdir(parents=True)
    for tool in ("npm", "latexmk", "pdflatex", "kpsewhich", "pdftotext", "id"):
        (bin_dir / tool).write_text("#!/bin/bash\n" + ("echo 0\n" if tool == "id" else "exit 0\n"))
        (bin_dir / tool).chmod(0o755)
    if files:
        write_fmnist(folder)
    names = " ".join(fmnist.SHA256)
    (bin_dir / "apt-get").write_text(
        f'#!/bin/bash\necho "$*" >> "{log}"\n'
        f'if [[ $1 == install && " $* " == *" dataset-fashion-mnist "* ]]; then\n'
        f'  /bin/mkdir -p "{folder}"; for f in {names}; do : > "{folder}/$f"; done\nfi\n')
    (bin_dir / "apt-get").chmod(0o755)
    proc = subprocess.run(["/bin/bash", str(ROOT / "scripts" / "system-deps.sh")], capture_output=True, text=True,
                          env={"PATH": str(bin_dir), "FASHION_MNIST_DIR": str(folder)})
    return proc, log.read_text().splitlines() if log.exists() else []


def test_system_deps_installs_the_dataset_package_only_when_its_files_are_missing(tmp_path):
    proc, calls = run_system_deps(tmp_path / "with", files=True)
    assert proc.returncode == 0 and calls == [] and "Fashion-MNIST are present" in proc.stdout
    proc, calls = run_system_deps(tmp_path / "without", files=False)
    assert proc.returncode == 0, proc.stderr
    assert "missing: fashion-mnist" in proc.stdout
    assert [c.split()[-1] for c in calls if c.startswith("install")] == ["dataset-fashion-mnist"]


# ---- the real files ---------------------------------------------------------------------------------------

@pytest.mark.skipif(not fmnist.SYSTEM_DIR.is_dir(), reason=f"{fmnist.SYSTEM_DIR} absent (package not installed)")
def test_the_installed_debian_files_match_their_digests_and_class_counts():
    assert digests(fmnist.SYSTEM_DIR) == fmnist.SHA256
    for split, n in (("train", 6000), ("t10k", 1000)):
        images, labels = fmnist.read_split(fmnist.SYSTEM_DIR, split)
        assert images.shape == (10 * n, 28, 28)
        assert np.bincount(labels, minlength=10).tolist() == [n] * 10
