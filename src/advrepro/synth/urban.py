"""The offline UrbanSound8K: synthesized urban sounds in exactly the real layout (metadata/UrbanSound8K.csv
with the same columns, audio/fold<N>/<fsID>-<classID>-<occurrence>-<slice>.wav), every class made from
its acoustics (see SYNTHESIZERS), in the real data's variety of sample rates, bit depths and channel
counts, over background noise. Each synthetic "recording" (fsID) has its own device and sound
parameters and gives one to three slices, all in one fold, as in the real data.

write_corpus() writes the layout and nothing else; data/urbansound.py checksums, installs and reads it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import wavio
from ..data.corpus import Stream, stream, worker_pool, write_manifest
from ..data.urbansound import CLASSES, FOLDS, METADATA, clip_path
from .noise import colored_noise

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
                                  _engine_idling, _gun_shot, _jackhammer, _siren, _street_music), strict=True))
SHORT_CLASSES = ("car_horn", "dog_bark", "gun_shot")  # slices often shorter than 4 s
PEAK_DB = (-24.0, -1.0)


def draw_recordings(corpus: dict, seed: int) -> list[dict]:
    """The recordings (fsIDs) of the corpus: class, fold, device format and number of slices.
    Every class gets `clips_per_class` slices, spread evenly over the ten folds."""
    recordings = []
    for c in range(len(CLASSES)):
        for fold in FOLDS:
            left = corpus["clips_per_class"] // len(FOLDS) + (fold <= corpus["clips_per_class"] % len(FOLDS))
            while left > 0:
                rec = stream(seed, Stream.URBAN_RECORDING, c, fold, len(recordings))
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
    rng = stream(seed, Stream.URBAN_SLICE, recording["fsID"], k)
    sr = recording["rate"]
    duration = rng.uniform(1.0, 4.0) if name in SHORT_CLASSES or rng.uniform() < 0.25 else 4.0
    n = int(round(duration * sr))
    event = SYNTHESIZERS[name](np.random.default_rng(recording["sound_seed"]), rng, sr, n)
    event = event / (np.abs(event).max() + 1e-12)
    snr_db = rng.uniform(*corpus["snr_db"]) - (10.0 if recording["salience"] == 2 else 0.0)
    mix = dict(zip(("white", "pink", "brown"), rng.dirichlet(np.ones(3)), strict=True))
    noise = colored_noise(mix, stream(seed, Stream.URBAN_NOISE, recording["fsID"], k), n)
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
    """One slice, written to its WAV; returns its CSV row (a worker of write_corpus)."""
    root, recording, k, corpus, seed = task
    x, row = synthesize_slice(recording, k, corpus, seed)
    wavio.write_wav(root / clip_path(row), x, recording["rate"], sample_width=recording["width"])
    return row


def write_corpus(data_cfg: dict, root: Path, seed: int) -> None:
    """Write the UrbanSound8K layout into root: audio/fold<N>/*.wav and metadata/UrbanSound8K.csv.

    Every slice on its own seeded streams, so the worker processes (one per CPU) may take them in
    any order: the files and the CSV (in plan order) are the same bytes."""
    from tqdm import tqdm

    corpus = data_cfg["corpus"]
    tasks = [(root, r, k, corpus, seed) for r in draw_recordings(corpus, seed) for k in range(r["slices"])]
    with worker_pool() as pool:
        rows = list(tqdm(pool.map(_synthesize_and_write, tasks, chunksize=8), total=len(tasks),
                         desc="synthesize", unit="clip", mininterval=2))
    write_manifest(root / METADATA, rows)
