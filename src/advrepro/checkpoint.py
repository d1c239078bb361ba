"""Checkpoints: a JSON header line + Flax msgpack body. Never pickle: loading cannot run code.

The header names the experiment and holds the SHA-256 of the body, so a truncated or
foreign file is refused with a clear error instead of loading garbage.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jax
from flax import serialization

from .errors import CheckpointError
from .io import write_bytes

MAGIC = b"ADVREPRO-CHECKPOINT 1\n"


def save(path: str | Path, state, *, experiment: str, epoch: int, meta: dict | None = None) -> None:
    """Write atomically; `meta` (JSON) goes into the header beside experiment, epoch and checksum."""
    body = serialization.to_bytes(state)
    header = {**(meta or {}), "experiment": experiment, "epoch": epoch, "sha256": hashlib.sha256(body).hexdigest()}
    write_bytes(path, MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + body)


def read_header(path: str | Path) -> tuple[dict, bytes]:
    path = Path(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: checkpoint not found") from None
    if not blob.startswith(MAGIC):
        raise CheckpointError(f"{path}: not an advrepro checkpoint (bad magic)")
    line, _, body = blob[len(MAGIC):].partition(b"\n")
    try:
        header = json.loads(line)
    except json.JSONDecodeError:
        raise CheckpointError(f"{path}: corrupt checkpoint header") from None
    if hashlib.sha256(body).hexdigest() != header.get("sha256"):
        raise CheckpointError(f"{path}: checkpoint body does not match its checksum (truncated or corrupt)")
    return header, body


def load(path: str | Path, target: dict, *, experiment: str):
    """Restore the entries of `target` (e.g. {"params": ...}) from a checkpoint; returns (state, header).
    Entries the target does not ask for (e.g. the optimizer state) are not needed to fit."""
    header, body = read_header(path)
    if header.get("experiment") != experiment:
        raise CheckpointError(f"{path}: checkpoint of {header.get('experiment')!r}, expected {experiment!r}")
    try:
        raw = serialization.msgpack_restore(body)
        state = serialization.from_state_dict(target, {k: raw[k] for k in target})
    except Exception as exc:  # msgpack / structure mismatch
        raise CheckpointError(f"{path}: checkpoint does not fit the model: {exc}") from None
    # The target may be arrays or shapes only (jax.eval_shape): either way every leaf must fit.
    got, want = jax.tree_util.tree_leaves_with_path(state), jax.tree_util.tree_leaves(target)
    for (where, leaf), ref in zip(got, want, strict=False):
        if tuple(leaf.shape) != tuple(ref.shape) or leaf.dtype != ref.dtype:
            raise CheckpointError(f"{path}: checkpoint does not fit the model: {jax.tree_util.keystr(where)} has "
                                  f"{leaf.dtype}{list(leaf.shape)}, the model needs {ref.dtype}{list(ref.shape)}")
    return state, header
