"""Atomic file writes: a crash never leaves a half-written file that a later run would trust."""
from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import io
import json
import os
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .errors import DataError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    with atomic_paths(path) as (tmp,):
        yield tmp


def refuse_directories(*paths: str | Path) -> None:
    """A directory where an output file belongs is an error; commands call this before their work too, so
    that it fails at once rather than after an hour of training."""
    for path in map(Path, paths):
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "a directory where the output file belongs", str(path))


@contextlib.contextmanager
def atomic_paths(*paths: str | Path) -> Iterator[list[Path]]:
    """All or nothing for a command with several outputs: yield a temporary path beside each of `paths`;
    only when the block succeeds are they all renamed into place (quick renames, after every write has
    succeeded), so a failure leaves every earlier output as it was."""
    refuse_directories(*paths)  # so that no rename can fail half-way
    with contextlib.ExitStack() as stack:
        temps = [stack.enter_context(_temporary_beside(Path(p))) for p in paths]
        yield temps
        for tmp, path in zip(temps, paths, strict=True):
            os.replace(tmp, path)


@contextlib.contextmanager
def _temporary_beside(path: Path) -> Iterator[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    tmp.chmod(0o666 & ~_UMASK)  # mkstemp makes it owner-only; the renamed file gets open()'s usual mode
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: str | Path, obj) -> None:
    """Deterministic JSON: sorted keys, fixed indentation, trailing newline."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def regular(path: str | Path) -> Path:
    """`path`, refused with a DataError if it exists but is not a regular file: reading a FIFO blocks forever,
    a device such as /dev/zero never ends."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return path
    if not stat.S_ISREG(mode):
        raise DataError(f"{path}: not a regular file")
    return path


def read_json(path: str | Path):
    """A JSON file; a truncated or damaged one is a DataError naming it."""
    regular(path)
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); delete it and rerun the step that writes it") from None


def write_npz(path: str | Path, **arrays) -> None:
    """Like np.savez_compressed, but with a fixed zip timestamp so equal arrays give equal bytes
    (numpy stamps each entry with the current time)."""
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name in sorted(arrays):
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.asarray(arrays[name]), allow_pickle=False)
                # Level 1: float arrays barely compress; the default level tripled the time to write audio.
                zf.writestr(info, buf.getbuffer(), compresslevel=1)


def read_npz(path: str | Path, skip: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """All arrays of an npz file except those named in `skip` (never unpickled)."""
    regular(path)
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files if k not in skip}


def file_hash(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks (archives run to gigabytes)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, algorithm).hexdigest()


def sha256(path: str | Path) -> str:
    return file_hash(path, "sha256")


def pack(correct: np.ndarray) -> str:
    """A per-sample correctness vector as base64 of its packed bits (the metrics file keeps them, so that
    worst cases over attacks are computed from them, not re-run); `unpack` reverses it."""
    return base64.b64encode(np.packbits(correct)).decode("ascii")


def unpack(text: str, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(base64.b64decode(text), np.uint8), count=n).astype(bool)
