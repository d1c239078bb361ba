"""Fashion-MNIST (seeds 001 and 003): fetch the four idx files, check them, convert them once to arrays.

debian source (offline): the files of Debian's package dataset-fashion-mnist, taken from where it installs
them or, where it is not installed, from the package itself (`apt-get download` and `dpkg-deb -x` need no
root), each checked against the SHA-256 recorded below. torchvision source: torchvision's download, which
checks their MD5. Both leave the four .gz files under the same names in the raw directory, so prepare() does
not care which.
prepare() writes one array file per dataset: the seed parts R1 and S3 each train on their own copy, so that
each has its own params section (fmnist.r1, fmnist.s3) while the data depend on `fmnist.data` only.
"""
from __future__ import annotations

import gzip
import logging
import os
import shutil
import subprocess
import time
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io import atomic_paths, file_hash, regular, write_npz
from .corpus import SUMS, Stream, build_corpus, stream, verify_sums
from .mnist import check_idx, resize, to_unit_range
from .source import Dataset, Source

log = logging.getLogger(__name__)

CLASS_NAMES = ("T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
               "ankle boot")
N_CLASSES = len(CLASS_NAMES)

PACKAGE = "dataset-fashion-mnist"
DEB_DIR = "usr/share/datasets/fashion-mnist"  # where the package puts the files (inside the .deb too)
SYSTEM_DIR = Path("/") / DEB_DIR
# The package's files, Debian 0.0~git20200523.55506a9-1 (shared/SEEDS.md, "Offline data"). Debian
# recompressed them: the .gz files torchvision downloads are other bytes, held to torchvision's MD5s instead.
SHA256 = {
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
SPLITS = {"train": 0, "t10k": 1}  # file prefix -> the split's number in its random stream (0 train, 1 test)
SIDE = 28


# ---- fetch -----------------------------------------------------------------------------------------

def _missing(folder: Path) -> list[str]:
    return [name for name in SHA256 if not (folder / name).is_file()]


def _unpack_package(tmp: Path, package: str) -> Path:
    """The folder of the files inside `package`, downloaded into tmp and unpacked there (no root needed)."""
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise DataError(f"{SYSTEM_DIR}: Fashion-MNIST not found, and there is no `{tool}` to fetch it; install "
                            f"the Debian package {package} (scripts/system-deps.sh does)")
    debs, tree = tmp / "deb", tmp / "tree"
    debs.mkdir()
    log.info("apt-get download %s", package)
    proc = subprocess.run(["apt-get", "download", "-q", package], cwd=debs, capture_output=True, text=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if proc.returncode or not found:
        said = " ".join((proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:])[-300:]
        raise DataError(f"{SYSTEM_DIR}: Fashion-MNIST not found, and `apt-get download {package}` failed ({said}); "
                        f"install the Debian package {package} (scripts/system-deps.sh does)")
    proc = subprocess.run(["dpkg-deb", "-x", str(found[0]), str(tree)], capture_output=True, text=True)
    if proc.returncode:
        said = " ".join(proc.stderr.strip().splitlines()[-1:])[-300:]
        raise DataError(f"{found[0].name}: `dpkg-deb -x` failed ({said}); install the Debian package {package} "
                        "(scripts/system-deps.sh does)")
    return tree / DEB_DIR


def _from_debian(tmp: Path, root: Path, system_dir: Path, package: str | None) -> str:
    """The four files into root: from system_dir, else from the package fetched with apt (package None: never).
    Returns where they came from, for the error messages."""
    folder, origin = system_dir, str(system_dir)
    if _missing(system_dir):
        if package is None:
            raise DataError(f"{system_dir}: Fashion-MNIST not found ({_missing(system_dir)[0]} missing); install "
                            f"the Debian package {PACKAGE} (scripts/system-deps.sh does)")
        log.info("%s lacks %s; fetching the package %s", system_dir, _missing(system_dir)[0], package)
        folder = _unpack_package(tmp, package)
        origin = f"{SYSTEM_DIR} of the downloaded package {package}"
        if _missing(folder):
            raise DataError(f"{folder}: the package {package} holds no {_missing(folder)[0]}; install the Debian "
                            f"package {PACKAGE} (scripts/system-deps.sh does)")
    for name in SHA256:
        shutil.copyfile(regular(folder / name), root / name)
    return origin


def _from_torchvision(raw_dir: Path, tmp: Path, root: Path) -> str:
    """torchvision's own download (it checks the MD5s; fetch() checks the moved copies again); its .gz files
    are kept, the unpacked copies dropped."""
    from torchvision.datasets import FashionMNIST

    download = tmp / "download"
    try:
        FashionMNIST(root=str(download), train=True, download=True)
    except Exception as exc:  # noqa: BLE001 - URLError, HTTP errors, MD5 mismatch, disk full ...
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{raw_dir}: downloading Fashion-MNIST with torchvision failed ({reason}); use source "
                        f"debian (the Debian package {PACKAGE}) instead") from None
    for name in SHA256:
        os.replace(download / "FashionMNIST" / "raw" / name, root / name)
    return "torchvision's download"


def fetch(data_cfg: dict, raw_dir: Path, *, system_dir: Path | None = None, sums: dict[str, str] | None = None,
          package: str | None = PACKAGE) -> None:
    """raw_dir: the four .gz files, each checked (debian: SHA-256 against `sums`, default SHA256; torchvision:
    MD5 against torchvision's list), corpus.json and SHA256SUMS. Built in a temporary sibling and renamed into
    place: a mismatch or a failure leaves raw_dir as it was. system_dir (default SYSTEM_DIR) and sums let a
    test point it at its own files; package None: never ask apt."""
    raw_dir = Path(raw_dir)
    source = data_cfg["source"]
    if source not in ("debian", "torchvision"):
        raise DataError(f"fmnist source {source!r}: must be debian or torchvision")
    algorithm, sums = "sha256", SHA256 if sums is None else sums
    if source == "torchvision":
        from torchvision.datasets import FashionMNIST

        algorithm, sums = "md5", dict(FashionMNIST.resources)
    system_dir = SYSTEM_DIR if system_dir is None else Path(system_dir)

    def make(tmp: Path):
        root = tmp / "fmnist"
        root.mkdir()
        if source == "debian":
            origin = _from_debian(tmp, root, system_dir, package)
        else:
            origin = _from_torchvision(raw_dir, tmp, root)
        for name, expected in sums.items():
            found = file_hash(root / name, algorithm)
            if found != expected:
                raise DataError(f"{name} (from {origin}): checksum mismatch: expected {algorithm} {expected}, "
                                f"found {found}; {raw_dir} left as it was")
        return root, list(sums)

    build_corpus(raw_dir, {"source": source, algorithm: sums}, make, noun="idx files")


# ---- prepare: idx files -> arrays --------------------------------------------------------------------

def read_idx(path: Path, rank: int, sample_shape: tuple[int, ...]) -> np.ndarray:
    """A gzipped idx file of unsigned bytes as a uint8 array; truncated or damaged files are one-line errors."""
    if not path.is_file():
        raise DataError(f"{path}: not found; run `advrepro fetch fmnist` first")
    try:
        data = gzip.decompress(regular(path).read_bytes())
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError; EOFError: cut short
        raise DataError(f"{path}: not a complete gzip file ({exc}); run `advrepro fetch fmnist` again") from None
    n = check_idx(path, rank, sample_shape, data=data, dataset="Fashion-MNIST")
    return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(n, *sample_shape)


def read_split(raw_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [N, 28, 28] and int32 labels of a split (train | t10k), checked to belong together."""
    images = read_idx(raw_dir / f"{split}-images-idx3-ubyte.gz", 3, (SIDE, SIDE))
    path = raw_dir / f"{split}-labels-idx1-ubyte.gz"
    labels = read_idx(path, 1, ())
    if len(labels) != len(images):
        raise DataError(f"{path}: {len(labels)} labels for {len(images)} images")
    if len(labels) and labels.max() >= N_CLASSES:
        raise DataError(f"{path}: labels outside 0..{N_CLASSES - 1} (found {labels.max()})")
    return images, labels.astype(np.int32)


def stratified_subset(labels: np.ndarray, n: int, rng: np.random.Generator, where: Path) -> np.ndarray:
    """Indices of n samples, each class with its share of `labels` (largest remainders, so exactly n), in a
    random order: a small offline subset keeps the balance of the full set, and "the first n test samples"
    an evaluation takes stay a random sample."""
    if n > len(labels):
        raise DataError(f"{where}: {n} samples asked for, the file holds {len(labels)}")
    classes, counts = np.unique(labels, return_counts=True)
    take, remainder = np.divmod(n * counts, len(labels))
    take[np.argsort(-remainder, kind="stable")[:n - take.sum()]] += 1
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take, strict=True)]
    return rng.permutation(np.concatenate(chosen))


def prepare(data_cfg: dict, raw_dir: Path, out_paths: list[Path], *, seed: int) -> dict:
    """Write every path of out_paths (the same arrays): x_* float32 [N, s, s, 1] in [-1, 1], y_* int32, seeded
    stratified subsets of n_train of the 60,000 training and n_test of the 10,000 test images, downsampled by
    area averaging to image_size. All files or none."""
    raw_dir = Path(raw_dir)
    start = time.perf_counter()
    if (raw_dir / SUMS).exists():
        verify_sums(raw_dir)
    arrays = {}
    for split, (name, n) in zip(SPLITS, (("train", data_cfg["n_train"]), ("test", data_cfg["n_test"])), strict=True):
        images, labels = read_split(raw_dir, split)
        idx = stratified_subset(labels, n, stream(seed, Stream.FMNIST_SUBSET, SPLITS[split]),
                                raw_dir / f"{split}-labels-idx1-ubyte.gz")
        arrays[f"x_{name}"] = to_unit_range(resize(images[idx], data_cfg["image_size"]))
        arrays[f"y_{name}"] = labels[idx]
    with atomic_paths(*out_paths) as temps:
        write_npz(temps[0], **arrays)  # deterministic bytes: the copies equal a second write
        for tmp in temps[1:]:
            shutil.copyfile(temps[0], tmp)
    summary = {k: list(v.shape) for k, v in arrays.items()}
    summary.update({f"class_counts_{name}": np.bincount(arrays[f"y_{name}"], minlength=N_CLASSES).tolist()
                    for name in ("train", "test")})
    log.info("wrote %s in %.1f s: %s", ", ".join(map(str, out_paths)), time.perf_counter() - start,
             {k: v for k, v in summary.items() if k.startswith(("x_", "y_"))})
    return summary


DATASETS = (Dataset("fmnist-r1", "fmnist", "fmnist.r1", "image", "Fashion-MNIST"),
            Dataset("fmnist-s3", "fmnist", "fmnist.s3", "image", "Fashion-MNIST"))


def _fetch(section: dict, raw_dir: Path, seed: int) -> None:
    fetch(section["data"], raw_dir)


def _prepare(section: dict, raw_dir: Path, outputs: dict[str, Path], seed: int) -> dict:
    return prepare(section["data"], raw_dir, [outputs[d.name] for d in DATASETS], seed=seed)


# A copy of fixed files: the raw data depend on the source only, not on the seed.
SOURCE = Source("fmnist", N_CLASSES, DATASETS, _fetch, _prepare,
                code=("data/fmnist.py", "data/mnist.py", "data/corpus.py"),
                fetch_params=("profile", "profiles", "fmnist.data.source"))
