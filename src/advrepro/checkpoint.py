"""Checkpoints: a checksum line, a JSON header line and a Flax msgpack body. Never pickle: loading cannot
run code.

Format 2, byte for byte:

    ADVREPRO-CHECKPOINT 2\\n
    sha256:<64 hex digits>\\n     SHA-256 of every byte after this line (the header line and the body)
    <header>\\n                   a JSON object, sorted keys: "experiment" (str), "epoch" (int) and any meta
    <body>                       flax.serialization.to_bytes of the state

The checksum covers the header too, so a truncated, foreign or edited file is refused with a clear error
instead of loading garbage. Format 1 (`ADVREPRO-CHECKPOINT 1`: the header, holding the body's SHA-256 only,
then the body) is refused with a note to retrain; scripts/upgrade_checkpoints.py converts it.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jax
from flax import serialization

from .errors import CheckpointError
from .io import regular, write_bytes

PREFIX = b"ADVREPRO-CHECKPOINT "
VERSION = 2
MAGIC = PREFIX + b"%d\n" % VERSION
REQUIRED = {"experiment": str, "epoch": int}


def encode(header: dict, body: bytes) -> bytes:
    """The bytes of a checkpoint of `header` (experiment, epoch, meta) and the serialized state `body`."""
    rest = json.dumps(header, sort_keys=True).encode() + b"\n" + body
    return MAGIC + b"sha256:" + hashlib.sha256(rest).hexdigest().encode() + b"\n" + rest


def save(path: str | Path, state, *, experiment: str, epoch: int, meta: dict | None = None) -> None:
    """Write atomically; `meta` (JSON) goes into the header beside experiment and epoch."""
    header = {**(meta or {}), "experiment": experiment, "epoch": epoch}
    write_bytes(path, encode(header, serialization.to_bytes(state)))


def _version(blob: bytes) -> bytes | None:
    """The version of an advrepro checkpoint of another version than ours, else None."""
    if blob.startswith(PREFIX) and not blob.startswith(MAGIC):
        return blob[len(PREFIX):].partition(b"\n")[0][:20]
    return None


def read_header(path: str | Path) -> tuple[dict, bytes]:
    """(header, body) of a checkpoint whose checksum holds; anything else is a CheckpointError naming it."""
    path = regular(Path(path))
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: checkpoint not found") from None
    old = _version(blob)
    if old is not None:
        raise CheckpointError(f"{path}: checkpoint format {old.decode(errors='replace')!s}, written by an older "
                              f"version of advrepro; this version reads format {VERSION}: retrain (`advrepro "
                              "train`) or convert it with scripts/upgrade_checkpoints.py")
    if not blob.startswith(MAGIC):
        raise CheckpointError(f"{path}: not an advrepro checkpoint (bad magic)")
    line, _, rest = blob[len(MAGIC):].partition(b"\n")
    if not line.startswith(b"sha256:") or hashlib.sha256(rest).hexdigest().encode() != line[len(b"sha256:"):]:
        raise CheckpointError(f"{path}: checkpoint does not match its checksum (truncated or corrupt)")
    head, _, body = rest.partition(b"\n")
    try:
        header = json.loads(head)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CheckpointError(f"{path}: corrupt checkpoint header") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt checkpoint header (a JSON {type(header).__name__}, not an object)")
    for key, kind in REQUIRED.items():
        if not isinstance(header.get(key), kind) or isinstance(header.get(key), bool):
            raise CheckpointError(f"{path}: corrupt checkpoint header: {key!r} missing or not a {kind.__name__}")
    return header, body


def load(path: str | Path, target: dict, *, experiment: str):
    """Restore the entries of `target` (e.g. {"params": ...}) from a checkpoint; returns (state, header).
    Entries the target does not ask for (e.g. the optimizer state) are not needed to fit."""
    header, body = read_header(path)
    if header["experiment"] != experiment:
        raise CheckpointError(f"{path}: checkpoint of {header['experiment']!r}, expected {experiment!r}")
    try:
        raw = serialization.msgpack_restore(body)
        state = serialization.from_state_dict(target, {k: raw[k] for k in target})
    except Exception as exc:  # msgpack / structure mismatch
        raise CheckpointError(f"{path}: checkpoint does not fit the model: {exc}") from None
    # The target may be arrays or shapes only (jax.eval_shape): either way every leaf must fit.
    got, want = jax.tree_util.tree_leaves_with_path(state), jax.tree_util.tree_leaves(target)
    for (where, leaf), ref in zip(got, want, strict=False):
        if tuple(getattr(leaf, "shape", ())) != tuple(ref.shape) or getattr(leaf, "dtype", None) != ref.dtype:
            raise CheckpointError(f"{path}: checkpoint does not fit the model: {jax.tree_util.keystr(where)} has "
                                  f"{getattr(leaf, 'dtype', type(leaf).__name__)}{list(getattr(leaf, 'shape', ()))}"
                                  f", the model needs {ref.dtype}{list(ref.shape)}")
    return state, header
