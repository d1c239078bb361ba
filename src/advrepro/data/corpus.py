"""What every fetched corpus shares: seeded random streams, checksums (SHA256SUMS), the config a corpus
was made with (corpus.json), its atomic install, CSV manifests and the worker pool that writes files.

Used by the real loaders (data/gtsrb.py, data/speech.py, data/urbansound.py) and by the offline
stand-ins that write the upstream layout (synth/).
"""
from __future__ import annotations

import csv
import enum
import io
import json
import logging
import os
import shutil
import string
from pathlib import Path, PurePosixPath

import numpy as np

from ..errors import DataError
from ..io import regular, sha256, write_text

log = logging.getLogger(__name__)

SUMS, CONFIG = "SHA256SUMS", "corpus.json"


class Stream(enum.IntEnum):
    """The purpose of a random stream: the first spawn key of stream(seed, purpose, ...).

    Datasets reuse numbers (each was numbered on its own): equal values are aliases of one member, which
    is harmless, since SeedSequence sees only the integer. Do not compare members by name."""
    # Frozen: these integers are spawn keys of every seeded draw; renumbering one changes the data's bytes.
    GTSRB_TRAIN = 0      # synth.signs: one rendered training image (class, index)
    GTSRB_TEST = 1       # synth.signs: one rendered test image (class, index)
    GTSRB_ORDER = 2      # synth.signs: the order in which the test images are numbered
    GTSRB_SHUFFLE = 3    # data.gtsrb.prepare: the order of a split (0 train, 1 test)
    URBAN_RECORDING = 0  # synth.urban: a recording's format and sound (class, fold, index)
    URBAN_SLICE = 1      # synth.urban: one slice of a recording (fsID, slice)
    URBAN_NOISE = 2      # synth.urban: the background noise of a slice (fsID, slice)
    URBAN_SPLIT = 3      # data.urbansound.split: the order of the fold split
    SPEECH_SPEAKER = 0   # synth.speech: a speaker's voice (speaker)
    SPEECH_CLIP = 1      # synth.speech: a clip's synthesis and mixing values (speaker, digit, take)
    SPEECH_NOISE = 2     # synth.speech: a clip's background noise (speaker, digit, take)
    SPEECH_SPLIT = 3     # data.speech.split: the train/test split and its order
    AUDIO_VIEW = 4       # data.audio: the augmented waveform copies (view)
    AUDIO_MASK = 5       # data.audio: the seed of torchaudio's spectrogram masks
    FMNIST_SUBSET = 0    # data.fmnist.prepare: a split's stratified subset and its order (0 train, 1 test)


def stream(seed: int, purpose: Stream, *key: int) -> np.random.Generator:
    """An independent stream per (purpose, speaker, clip ...) key: a clip's draws do not depend on
    how many speakers or takes come before it."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(int(purpose), *key)))


# ---- checksums and the install of a finished directory ---------------------------------------

def write_sums(root: Path, relpaths: list[str]) -> None:
    """`sha256sum -c`-compatible list of the given files."""
    write_text(root / SUMS, "".join(f"{sha256(root / p)}  {p}\n" for p in sorted(relpaths)))


def verify_sums(root: Path) -> None:
    """Every file listed in root/SHA256SUMS exists and matches, else a DataError naming it."""
    sums = root / SUMS
    for number, line in enumerate(decode_text(sums).splitlines(), start=1):
        expected, _, rel = line.partition("  ")
        if len(expected) != 64 or not set(expected) <= set(string.hexdigits) or not rel:
            raise DataError(f"{sums}:{number}: not a `<sha256>  <file>` line: {line[:80]!r}")
        path = root / inside(sums, number, rel)
        if not path.is_file():
            raise DataError(f"{path}: listed in {root / SUMS} but missing")
        actual = sha256(path)
        if actual != expected:
            raise DataError(f"{path}: checksum mismatch: expected sha256 {expected}, got {actual}")


def is_complete(raw_dir: Path, config: dict) -> bool:
    """raw_dir was made from this configuration and still verifies."""
    try:
        if json.loads((raw_dir / CONFIG).read_text()) != config:
            log.info("%s was made with other parameters; making it again", raw_dir)
            return False
        verify_sums(raw_dir)
        return True
    except (OSError, ValueError, DataError) as exc:
        log.warning("%s is incomplete or damaged (%s); making it again", raw_dir, exc)
        return False


def install(tmp: Path, raw_dir: Path) -> None:
    """Move the finished tmp directory onto raw_dir; a crash leaves the old one, or none."""
    if raw_dir.exists():
        old = raw_dir.with_name(f".{raw_dir.name}.old-{os.getpid()}.tmp")
        os.replace(raw_dir, old)
        os.replace(tmp, raw_dir)
        shutil.rmtree(old)
    else:
        os.replace(tmp, raw_dir)


def build_corpus(raw_dir: Path, config: dict, make, noun: str = "files") -> None:
    """Make a checksummed corpus at raw_dir unless a complete one from the same `config` is there.

    make(tmp) fills the fresh temporary sibling directory tmp and returns (root, files): the corpus
    root inside tmp and its files (paths relative to root). corpus.json (the config) and SHA256SUMS
    are added, then root is renamed onto raw_dir: a crash leaves the old corpus or none, never a
    half-made one that a later run would take for complete."""
    import tempfile
    import time

    raw_dir = Path(raw_dir)
    if raw_dir.exists() and is_complete(raw_dir, config):
        log.info("%s already complete, checksums verified", raw_dir)
        return
    raw_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in raw_dir.parent.glob(f".{raw_dir.name}.*.tmp"):  # left by an interrupted fetch or install
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{raw_dir.name}.", suffix=".tmp", dir=raw_dir.parent))
    start = time.perf_counter()
    try:
        root, files = make(tmp)
        write_text(root / CONFIG, json.dumps(config, indent=2, sort_keys=True) + "\n")
        write_sums(root, list(files) + [CONFIG])
        install(root, raw_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("wrote %s: %d %s in %.1f s", raw_dir, len(files), noun, time.perf_counter() - start)


# ---- manifests: CSV files naming a corpus's files -------------------------------------------------

def decode_text(path: Path) -> str:
    """A text file as str: UTF-8, a leading BOM dropped (spreadsheets add one); other bytes are a
    DataError naming the file and the line."""
    data = regular(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}); "
                        "save it as UTF-8") from None


def read_csv(path: Path, columns: tuple[str, ...], delimiter: str = ",",
             skipinitialspace: bool = False) -> list[tuple[int, dict]]:
    """(line number, row) of every row of a CSV manifest that has all `columns`, each non-empty in every
    row; otherwise a DataError naming the file (and line)."""
    if not path.is_file():
        raise DataError(f"{path}: not found")
    reader = csv.DictReader(io.StringIO(decode_text(path), newline=""), delimiter=delimiter,
                            skipinitialspace=skipinitialspace)
    try:
        missing = [c for c in columns if c not in (reader.fieldnames or ())]
        if missing:
            raise DataError(f"{path}: missing columns {missing} (it has {list(reader.fieldnames or ())})")
        rows = []
        for row in reader:
            empty = [c for c in columns if not (row[c] or "").strip()]
            if empty:
                raise DataError(f"{path}:{reader.line_num}: no value in column {empty[0]!r}")
            rows.append((reader.line_num, row))
    except csv.Error as exc:  # a NUL byte, a field over the size limit ...
        raise DataError(f"{path}:{reader.line_num}: not a readable CSV file ({exc})") from None
    return rows


def inside(manifest: Path, line: int, rel: str) -> str:
    """rel, normalized (`a/./b` -> `a/b`), checked to be a relative path without `..`: an edited manifest
    must not read files from outside its corpus, which no checksum covers when SHA256SUMS is absent."""
    path = PurePosixPath(rel)
    if not path.parts or path.is_absolute() or ".." in path.parts or "\\" in rel or "\x00" in rel:
        raise DataError(f"{manifest}:{line}: path {rel!r} leaves the corpus directory (absolute, with '..', "
                        "or empty)")
    return path.as_posix()


def refuse_duplicates(manifest: Path, keyed: list[tuple[int, str]]) -> None:
    """keyed: (line, file) pairs; a file listed twice would count twice in the data."""
    first: dict[str, int] = {}
    for line, key in keyed:
        if key in first:
            raise DataError(f"{manifest}:{line}: {key} is listed twice (first on line {first[key]})")
        first[key] = line


def write_manifest(path: Path, rows: list[dict], fieldnames=None, delimiter: str = ",") -> None:
    """rows as a CSV file (columns: the first row's keys unless `fieldnames` are given), written atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fieldnames or rows[0]), delimiter=delimiter, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def worker_pool():
    """A process pool, one worker per CPU (at most 8), started from a fork server: forking a process
    that already runs threads (JAX's, once imported) can deadlock."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    workers = max(1, min(len(os.sched_getaffinity(0)), 8))
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver"))
