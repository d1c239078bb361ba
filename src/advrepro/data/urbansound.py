"""UrbanSound8K (thesis section 5.4): fetch or synthesize the clips, then convert them once to arrays.

archive source: the real UrbanSound8K (8,732 slices of freesound recordings, ten official folds),
downloaded as one tarball and checked against its published MD5 and size.
synthetic source: an offline stand-in in exactly the same layout (metadata/UrbanSound8K.csv with
the same columns, audio/fold<N>/<fsID>-<classID>-<occurrence>-<slice>.wav), every class made from
its acoustics (see SYNTHESIZERS), in the real data's variety of sample rates, bit depths and
channel counts, over background noise. Each synthetic "recording" (fsID) has its own device and
sound parameters and gives one to three slices, all in one fold, as in the real data.
Both are read by the same prepare(): the standard-library `wave` module (wavio), mixed to mono and
resampled with torchaudio, padded or cut to a fixed duration, split by the official folds.

Labels as in the thesis: dangerous (dog bark, gun shot, siren) = 1, benign (the other seven) = 0.
The ten classes stay in the arrays as class_train / class_test.
"""
from __future__ import annotations

import csv
import logging
import os
import tarfile
import time
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io import file_hash
from .source import Dataset, Source
from . import wavio
from .audio import (SUMS, build_corpus, colored_noise, stream, verify_sums, worker_pool, write_manifest,
                    write_representations)

log = logging.getLogger(__name__)

CLASSES = ("air_conditioner", "car_horn", "children_playing", "dog_bark", "drilling", "engine_idling",
           "gun_shot", "jackhammer", "siren", "street_music")
DANGEROUS = ("dog_bark", "gun_shot", "siren")
FOLDS = range(1, 11)
METADATA = "metadata/UrbanSound8K.csv"
COLUMNS = ("slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class")

ARCHIVE = "UrbanSound8K.tar.gz"
ARCHIVE_URL = "https://zenodo.org/record/1203745/files/UrbanSound8K.tar.gz"
# Zenodo publishes the MD5 (also in soundata's index) and the size; there is no published SHA-256.
ARCHIVE_MD5 = "9aa69802bbf37fb986f71ec1483a196e"
ARCHIVE_BYTES = 6023741708

_RECORDING, _SLICE, _NOISE, _SPLIT = range(4)  # random-stream purposes (audio.py has 4 and 5)


def binary_label(class_id: int) -> int:
    return int(CLASSES[class_id] in DANGEROUS)


# ---- synthesis: one function per class ---------------------------------------------------------
# Each takes the recording's generator `rec` (drawn afresh for every slice, so a recording keeps
# its character), the slice's generator `rng`, the sample rate and the length, and returns a float
# signal of that length with its peak somewhere near 1. Content stays below 3.5 kHz, so every file
# rate (8 kHz and up) carries it.

def _harmonic(freq: np.ndarray, sr: int, amps) -> np.ndarray:
    """Sum of harmonics k * f(t) with the given amplitudes, each dropped where it would alias."""
    phase = 2 * np.pi * np.cumsum(freq) / sr
    out = np.zeros_like(freq)
    for k, a in enumerate(amps, start=1):
        out += a * np.sin(k * phase) * (k * freq < 0.45 * sr)
    return out


def _band_noise(rng, n: int, sr: int, lo: float, hi: float) -> np.ndarray:
    """Unit-RMS white noise band-limited to [lo, hi] Hz (a mask on its spectrum)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / sr)
    spec[(f < lo) | (f > hi)] = 0
    x = np.fft.irfft(spec, n)
    return x / (x.std() + 1e-12)


def _bursts(n: int, sr: int, starts, length: float, attack: float, decay: float) -> np.ndarray:
    """An envelope of bursts: linear attack, exponential decay with time constant `decay`, cut at `length` s."""
    env = np.zeros(n)
    t = np.arange(int(length * sr)) / sr
    shape = np.minimum(t / max(attack, 1e-4), 1.0) * np.exp(-np.maximum(t - attack, 0) / decay)
    for s in starts:
        i = int(s * sr)
        if i < n:
            m = min(len(shape), n - i)
            env[i:i + m] = np.maximum(env[i:i + m], shape[:m])
    return env


def _gate(n: int, sr: int, segments, ramp: float = 0.01) -> np.ndarray:
    """1 inside the (start, end) second segments, 0 outside, with short linear ramps."""
    env = np.zeros(n)
    for a, b in segments:
        i, j = int(a * sr), min(int(b * sr), n)
        if j > i:
            env[i:j] = 1.0
    k = max(int(ramp * sr), 1)
    return np.convolve(env, np.ones(k) / k, mode="same")


def _air_conditioner(rec, rng, sr, n):
    """Broadband fan noise, its band set by the unit, a mains hum and a slow wobble."""
    lo, hi = rec.uniform(40, 120), rec.uniform(600, 2500)
    mains, hum = rec.choice([50.0, 60.0]), rec.uniform(0.05, 0.3)
    t = np.arange(n) / sr
    noise = _band_noise(rng, n, sr, lo, hi)
    wobble = 1 + 0.15 * np.sin(2 * np.pi * rec.uniform(0.2, 1.0) * t + rng.uniform(0, 2 * np.pi))
    return noise * wobble + hum * 3 * _harmonic(np.full(n, mains), sr, [1, 0.6, 0.4, 0.2])


def _car_horn(rec, rng, sr, n):
    """A two-tone horn (a major third or so apart), buzzy harmonics, one to three honks."""
    f1 = rec.uniform(330, 480)
    freq = np.full(n, f1)
    amps = [1 / k for k in range(1, 9)]
    tone = _harmonic(freq, sr, amps) + _harmonic(freq * rec.uniform(1.2, 1.3), sr, amps)
    dur, segments, at = n / sr, [], rng.uniform(0, 0.3)
    for _ in range(rng.integers(1, 4)):
        length = rng.uniform(0.2, 1.2)
        segments.append((at, at + length))
        at += length + rng.uniform(0.1, 0.5)
        if at > dur:
            break
    return tone * _gate(n, sr, segments)


def _children_playing(rec, rng, sr, n):
    """Babble: several high voices, each a string of syllables with its own pitch contour and vowels."""
    t = np.arange(n) / sr
    out = np.zeros(n)
    for _ in range(rec.integers(3, 7)):
        f0 = rec.uniform(230, 420)
        syllables, at = [], rng.uniform(0, 0.4)
        while at < n / sr:
            length = rng.uniform(0.08, 0.35)
            syllables.append((at, at + length))
            at += length + rng.exponential(0.25)
        contour = f0 * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t + rng.uniform(0, 6.3)))
        formant, width = rng.uniform(700, 1100), rng.uniform(300, 600)
        amps = [np.exp(-0.5 * ((k * f0 - formant) / width) ** 2) + 0.3 * np.exp(-0.5 * ((k * f0 - 2 * formant)
                / width) ** 2) for k in range(1, 12)]
        out += rng.uniform(0.3, 1.0) * _harmonic(contour, sr, amps) * _gate(n, sr, syllables, 0.02)
    return out


def _dog_bark(rec, rng, sr, n):
    """Barks: short harmonic bursts with a falling pitch and a noisy onset, in irregular series."""
    f0, fall = rec.uniform(350, 800), rec.uniform(0.15, 0.4)
    t = np.arange(n) / sr
    starts, at = [], rng.uniform(0, 0.5)
    while at < n / sr and len(starts) < 6:
        starts.append(at)
        at += rng.uniform(0.25, 0.9)
    out = np.zeros(n)
    for s in starts:
        length = rng.uniform(0.08, 0.25)
        i, j = int(s * sr), min(int((s + length) * sr), n)
        if j <= i:
            continue
        tt = t[i:j] - s
        freq = f0 * (1 - fall * tt / length) * rng.uniform(0.9, 1.1)
        amps = [1.0 / k ** 0.7 for k in range(1, 10)]
        env = np.minimum(tt / 0.005, 1.0) * np.exp(-tt / (0.4 * length))
        burst = _harmonic(freq, sr, amps) + 0.4 * _band_noise(rng, j - i, sr, 300, 3000)
        out[i:j] += env * burst
    return out


def _drilling(rec, rng, sr, n):
    """A high motor whine with harmonics, chopped by the drill's rotation, pitch sagging under load."""
    f, rotation = rec.uniform(700, 1600), rec.uniform(20, 60)
    t = np.arange(n) / sr
    sag = 1 - 0.08 * np.clip(np.sin(2 * np.pi * rng.uniform(0.2, 0.7) * t + rng.uniform(0, 6.3)), 0, None)
    whine = _harmonic(f * sag, sr, [1, 0.5, 0.3, 0.15])
    chop = 1 - 0.6 * (0.5 + 0.5 * np.sign(np.sin(2 * np.pi * rotation * t)))
    start, stop = rng.uniform(0, 0.3), n / sr - rng.uniform(0, 0.3)
    return (whine * chop + 0.2 * _band_noise(rng, n, sr, 1000, 3400)) * _gate(n, sr, [(start, stop)], 0.05)


def _engine_idling(rec, rng, sr, n):
    """Idling engine: a low firing frequency with many decaying harmonics, jittered, over rumble."""
    f = rec.uniform(22, 55)
    t = np.arange(n) / sr
    firing = f * (1 + 0.02 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t))
    amps = [k ** -0.8 * (1 if k % 2 else rec.uniform(0.3, 1.0)) for k in range(1, 40)]
    return _harmonic(firing, sr, amps) + 0.5 * _band_noise(rng, n, sr, 20, 400)


def _gun_shot(rec, rng, sr, n):
    """Shots: a broadband crack with a fast exponential decay, a low thump and a reverberant tail;
    single shots or a short automatic burst."""
    decay, tail = rec.uniform(0.01, 0.05), rec.uniform(0.15, 0.5)
    automatic = rec.uniform() < 0.3
    if automatic:
        at, gap = rng.uniform(0, 0.4), rec.uniform(0.06, 0.15)
        starts = [at + i * gap for i in range(rng.integers(3, 9))]
    else:
        starts = sorted(rng.uniform(0, max(n / sr - 0.6, 0.05), rng.integers(1, 4)))
    crack = _band_noise(rng, n, sr, 200, 3400) * _bursts(n, sr, starts, 0.5, 0.001, decay)
    echo = 0.25 * _band_noise(rng, n, sr, 100, 2000) * _bursts(n, sr, starts, 2.0, 0.005, tail)
    thump = _harmonic(np.full(n, rec.uniform(60, 150)), sr, [1.0]) * _bursts(n, sr, starts, 0.4, 0.002, 0.06)
    return crack + echo + thump


def _jackhammer(rec, rng, sr, n):
    """Rapid impacts (12-25 per second): each a short knock of band noise and a ringing tone."""
    rate, ring = rec.uniform(12, 25), rec.uniform(400, 1200)
    start, stop = rng.uniform(0, 0.5), n / sr - rng.uniform(0, 0.5)
    starts = np.arange(start, stop, 1 / rate) + rng.normal(0, 0.002, len(np.arange(start, stop, 1 / rate)))
    env = _bursts(n, sr, starts, 0.05, 0.001, rec.uniform(0.005, 0.015))
    knock = _band_noise(rng, n, sr, 300, 3400) + _harmonic(np.full(n, ring), sr, [1.0, 0.4])
    return knock * env + 0.1 * _band_noise(rng, n, sr, 50, 300)


def _siren(rec, rng, sr, n):
    """Siren sweeps: wail (slow up-down), yelp (fast rising saw) or hi-lo (two alternating tones)."""
    kind = rec.choice(["wail", "yelp", "hilo"])
    lo, hi = rec.uniform(500, 800), rec.uniform(1100, 1600)
    t = np.arange(n) / sr + rng.uniform(0, 5)
    if kind == "wail":
        sweep = 0.5 - 0.5 * np.cos(2 * np.pi * t / rec.uniform(2.0, 5.0))
    elif kind == "yelp":
        sweep = (t / rec.uniform(0.15, 0.4)) % 1.0
    else:
        sweep = (np.floor(t / rec.uniform(0.4, 0.7)) % 2).astype(float)
    freq = (lo + (hi - lo) * sweep) * (1 + rng.uniform(-0.03, 0.03))  # a little Doppler
    return _harmonic(freq, sr, [1, 0.3, 0.5, 0.1, 0.2])


def _street_music(rec, rng, sr, n):
    """A busker: plucked notes of a pentatonic scale at a steady tempo, sometimes chords, a drum."""
    base, beat = rec.uniform(180, 330), 60 / rec.uniform(80, 150)
    scale = base * 2 ** (np.array([0, 2, 4, 7, 9, 12, 14, 16]) / 12)
    out = np.zeros(n)
    at = rng.uniform(0, beat)
    amps = [1 / k ** 1.2 for k in range(1, 8)]
    while at < n / sr:
        for f in rng.choice(scale, size=rng.integers(1, 4), replace=False):
            env = _bursts(n, sr, [at], 1.5, 0.005, rec.uniform(0.2, 0.6))
            i, j = int(at * sr), min(int((at + 1.5) * sr), n)
            out[i:j] += env[i:j] * _harmonic(np.full(j - i, f), sr, amps)
        if rng.uniform() < 0.3:
            out += 0.8 * _harmonic(np.full(n, 70.0), sr, [1.0]) * _bursts(n, sr, [at], 0.3, 0.002, 0.05)
        at += beat * rng.choice([0.5, 1.0, 1.0, 2.0])
    return out


SYNTHESIZERS = dict(zip(CLASSES, (_air_conditioner, _car_horn, _children_playing, _dog_bark, _drilling,
                                  _engine_idling, _gun_shot, _jackhammer, _siren, _street_music)))
SHORT_CLASSES = ("car_horn", "dog_bark", "gun_shot")  # slices often shorter than 4 s
PEAK_DB = (-24.0, -1.0)


def draw_recordings(corpus: dict, seed: int) -> list[dict]:
    """The recordings (fsIDs) of the corpus: class, fold, device format and number of slices.
    Every class gets `clips_per_class` slices, spread evenly over the ten folds."""
    recordings = []
    for c, name in enumerate(CLASSES):
        for fold in FOLDS:
            left = corpus["clips_per_class"] // len(FOLDS) + (fold <= corpus["clips_per_class"] % len(FOLDS))
            while left > 0:
                rec = stream(seed, _RECORDING, c, fold, len(recordings))
                slices = int(min(rec.integers(1, 4), left))
                recordings.append(dict(
                    fsID=100000 + len(recordings), classID=c, fold=fold, slices=slices,
                    rate=int(rec.choice(corpus["sample_rates"])), width=int(rec.choice(corpus["sample_widths"])),
                    channels=int(rec.choice(corpus["channels"])), salience=int(rec.choice([1, 2], p=[0.6, 0.4])),
                    sound_seed=int(rec.integers(2**63))))
                left -= slices
    return recordings


def synthesize_slice(recording: dict, k: int, corpus: dict, seed: int) -> tuple[np.ndarray, dict]:
    """Slice k of a recording: [n, channels] float in [-1, 1] at the recording's rate, and its CSV row."""
    name = CLASSES[recording["classID"]]
    rng = stream(seed, _SLICE, recording["fsID"], k)
    sr = recording["rate"]
    duration = rng.uniform(1.0, 4.0) if name in SHORT_CLASSES or rng.uniform() < 0.25 else 4.0
    n = int(round(duration * sr))
    event = SYNTHESIZERS[name](np.random.default_rng(recording["sound_seed"]), rng, sr, n)
    event = event / (np.abs(event).max() + 1e-12)
    snr_db = rng.uniform(*corpus["snr_db"]) - (10.0 if recording["salience"] == 2 else 0.0)
    mix = dict(zip(("white", "pink", "brown"), rng.dirichlet(np.ones(3))))
    noise = colored_noise(mix, stream(seed, _NOISE, recording["fsID"], k), n)
    x = event + noise * np.sqrt(np.mean(event ** 2) / 10 ** (snr_db / 10))
    x *= 10 ** (rng.uniform(*PEAK_DB) / 20) / np.abs(x).max()
    if recording["channels"] == 2:  # a second microphone: a little later, a little quieter
        delay = int(rng.integers(0, max(sr // 1000, 1) + 1))
        x = np.stack([x, 0.8 * np.concatenate([np.zeros(delay), x[:n - delay]])], axis=1)
    else:
        x = x[:, None]
    start = round(float(rng.uniform(0, 120)) + 4.0 * k, 6)
    row = dict(slice_file_name=f"{recording['fsID']}-{recording['classID']}-0-{k}.wav", fsID=recording["fsID"],
               start=start, end=round(start + duration, 6), salience=recording["salience"],
               fold=recording["fold"], classID=recording["classID"], **{"class": name})
    return np.clip(x, -1.0, 1.0), row


def _synthesize_and_write(task: tuple) -> dict:
    """One slice, written to its WAV; returns its CSV row (a worker of _fetch_synthetic)."""
    root, recording, k, corpus, seed = task
    x, row = synthesize_slice(recording, k, corpus, seed)
    wavio.write_wav(root / clip_path(row), x, recording["rate"], sample_width=recording["width"])
    return row


def _fetch_synthetic(data_cfg: dict, root: Path, seed: int) -> None:
    """Every slice on its own seeded streams, so the worker processes (one per CPU) may take them in
    any order: the files and the CSV (in plan order) are the same bytes."""
    from tqdm import tqdm

    corpus = data_cfg["corpus"]
    tasks = [(root, r, k, corpus, seed) for r in draw_recordings(corpus, seed) for k in range(r["slices"])]
    with worker_pool() as pool:
        rows = list(tqdm(pool.map(_synthesize_and_write, tasks, chunksize=8), total=len(tasks),
                         desc="synthesize", unit="clip", mininterval=2))
    write_manifest(root / METADATA, rows)


# ---- archive: the real UrbanSound8K --------------------------------------------------------------

def check_archive(path: Path) -> None:
    """The archive has the published size and MD5; a bad one is renamed to *.bad (never trusted
    again by a later run) and the error names both hashes."""
    md5, size = ARCHIVE_MD5, ARCHIVE_BYTES
    actual_size = path.stat().st_size
    actual = file_hash(path, "md5") if size is None or actual_size == size else f"(not computed: {actual_size} bytes)"
    if actual != md5:
        bad = path.with_name(path.name + ".bad")
        os.replace(path, bad)
        raise DataError(f"{path}: checksum mismatch: expected md5 {md5}"
                        f"{f' and {size} bytes' if size else ''}, got {actual}; moved aside to {bad}")


def _fetch_archive(raw_dir: Path, tmp: Path) -> Path:
    """Download (or reuse a verified archive beside raw_dir), check, extract; returns the data root."""
    import torch.hub

    kept = raw_dir.parent / ARCHIVE
    hint = (f"download {ARCHIVE_URL} by other means, check that its md5 is {ARCHIVE_MD5}, "
            f"and put it at {kept}")
    if not kept.exists():
        partial = kept.with_name(kept.name + ".part")
        try:
            torch.hub.download_url_to_file(ARCHIVE_URL, str(partial), progress=True)
        except Exception as exc:  # noqa: BLE001 - URLError, HTTP errors, disk full ...
            partial.unlink(missing_ok=True)
            raise DataError(f"{raw_dir}: downloading UrbanSound8K failed ({exc}); {hint}") from None
        os.replace(partial, kept)
    check_archive(kept)
    with tarfile.open(kept) as tar:
        tar.extractall(tmp, filter="data")
    root = tmp / "UrbanSound8K"
    if not (root / METADATA).is_file():
        raise DataError(f"{kept}: has no UrbanSound8K/{METADATA}")
    return root


def fetch(data_cfg: dict, raw_dir: Path, seed: int) -> None:
    """Fill raw_dir with metadata/UrbanSound8K.csv, audio/fold*/ and SHA256SUMS; built in a temporary
    sibling and renamed into place at the end, so a half-made corpus is never taken for complete."""
    raw_dir = Path(raw_dir)
    source = data_cfg["source"]
    config = {"source": source}
    if source == "synthetic":
        config.update(seed=seed, corpus=data_cfg["corpus"])

    def make(tmp: Path):
        if source == "synthetic":
            root = tmp
            _fetch_synthetic(data_cfg, root, seed)
        else:
            root = _fetch_archive(raw_dir, tmp)
        return root, [clip_path(r) for r in read_metadata(root)] + [METADATA]

    build_corpus(raw_dir, config, make, noun="files")


# ---- prepare: clips -> arrays --------------------------------------------------------------------

def clip_path(row: dict) -> str:
    return f"audio/fold{row['fold']}/{row['slice_file_name']}"


def read_metadata(root: Path) -> list[dict]:
    """The CSV rows, checked against the class list, the folds and the audio folders (both ways)."""
    path = root / METADATA
    if not path.is_file():
        raise DataError(f"{path}: not found; run `advrepro fetch urban` first")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = set(COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise DataError(f"{path}: missing columns {sorted(missing)}")
        rows = list(reader)
    if not rows:
        raise DataError(f"{path}: lists no clips")
    for line, row in enumerate(rows, start=2):
        try:
            class_id, fold = int(row["classID"]), int(row["fold"])
        except ValueError:
            raise DataError(f"{path}:{line}: classID {row['classID']!r} / fold {row['fold']!r} are not integers") from None
        if not 0 <= class_id < len(CLASSES) or CLASSES[class_id] != row["class"]:
            raise DataError(f"{path}:{line}: classID {class_id} does not name class {row['class']!r}")
        if fold not in FOLDS:
            raise DataError(f"{path}:{line}: fold {fold} is not 1..10")
    listed = {clip_path(r) for r in rows}
    on_disk = {p.relative_to(root).as_posix() for p in (root / "audio").glob("fold*/*.wav")}
    if listed - on_disk:
        raise DataError(f"{root / sorted(listed - on_disk)[0]}: listed in {path} but missing "
                        f"({len(listed - on_disk)} missing)")
    if on_disk - listed:
        raise DataError(f"{root / sorted(on_disk - listed)[0]}: not listed in {path} "
                        f"({len(on_disk - listed)} unlisted)")
    return rows


def load_clips(root: Path, rows: list[dict], rate: int, length: int, skip_unreadable: bool) -> tuple[np.ndarray, list[int]]:
    """float32 [N, length]: every clip mono at `rate`, zero-padded or cut; and the kept row indices.
    A file the `wave` module cannot read stops everything, naming it, unless skip_unreadable (the
    real archive has a few ADPCM and float files): then each is logged by name and left out."""
    from tqdm import tqdm

    waves, kept = np.zeros((len(rows), length), np.float32), []
    for i, row in enumerate(tqdm(rows, desc="read clips", unit="clip", mininterval=2)):
        try:
            x, file_rate = wavio.read_wav(root / clip_path(row))
        except DataError as exc:
            if not skip_unreadable:
                raise
            log.warning("skipped: %s", exc)
            continue
        mono = wavio.to_mono_resampled(x, file_rate, rate)[:length]
        waves[len(kept), :len(mono)] = mono
        kept.append(i)
    if len(kept) < len(rows):
        log.warning("skipped %d of %d clips that the wave module cannot read", len(rows) - len(kept), len(rows))
    return waves[:len(kept)], kept


def split(folds: np.ndarray, test_folds: list[int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) clip indices by the official folds, each in a seeded random order (so the
    first n test clips already mix the classes)."""
    is_test = np.isin(folds, test_folds)
    train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    if not len(train) or not len(test):
        raise DataError(f"test folds {test_folds} leave {len(train)} training and {len(test)} test clips")
    rng = stream(seed, _SPLIT)
    return rng.permutation(train), rng.permutation(test)


def prepare(urban_cfg: dict, raw_dir: Path, outputs: dict[str, Path], seed: int) -> dict:
    """Write outputs["urban-raw" | "urban-mel" | "urban-meldb"] (any of them), as audio.write_representations
    describes, with y = dangerous (1) / benign (0) and the ten classes and folds as class_* / fold_*.
    Nothing is written unless every clip reads and verifies."""
    data_cfg, feat, aug = urban_cfg["data"], urban_cfg["features"], urban_cfg["augment"]
    raw_dir, rate = Path(raw_dir), data_cfg["sample_rate"]
    start = time.perf_counter()
    rows = read_metadata(raw_dir)
    if (raw_dir / SUMS).exists():
        verify_sums(raw_dir)
    waves, kept = load_clips(raw_dir, rows, rate, int(round(data_cfg["duration"] * rate)),
                             data_cfg["skip_unreadable"])
    rows = [rows[i] for i in kept]
    classes = np.array([int(r["classID"]) for r in rows], np.int32)
    folds = np.array([int(r["fold"]) for r in rows], np.int32)
    labels = np.array([binary_label(c) for c in classes], np.int32)
    train, test = split(folds, data_cfg["test_folds"], seed)
    assert not set(folds[train]) & set(folds[test]), "a fold in both splits"
    log.info("read %d clips in %.1f s; test folds %s: %d train, %d test, %.0f %% dangerous", len(rows),
             time.perf_counter() - start, data_cfg["test_folds"], len(train), len(test), 100 * labels.mean())
    summary = write_representations("urban", waves, labels, {"class": classes, "fold": folds}, train, test, rate,
                                    feat, aug, seed, outputs)
    log.info("prepared urban in %.1f s", time.perf_counter() - start)
    return summary


def _fetch(section: dict, raw_dir: Path, seed: int) -> None:
    fetch(section["data"], raw_dir, seed=seed)


# Dangerous (dog bark, gun shot, siren) vs benign: two classes; the ten stay as class_* arrays.
SOURCE = Source("urban", 2, (
    Dataset("urban-raw", "urban", "urban.raw", "waveform", "UrbanSound8K, raw waveform"),
    Dataset("urban-mel", "urban", "urban.spectrogram", "spectrogram", "UrbanSound8K, Mel spectrogram"),
    Dataset("urban-meldb", "urban", "urban.spectrogram", "spectrogram",
            "UrbanSound8K, Mel spectrogram + AmplitudeToDB"),
), _fetch, prepare, code=("data/urbansound.py", "data/audio.py", "data/wavio.py"),
    fetch_params=("profile", "profiles", "seed", "urban.data"))
