"""The offline Speech Commands digits: a corpus spoken by eSpeak NG (espeak.py), in the real layout.

Each "speaker" is an accent, a voice variant, a base pitch, rate and intonation range; each clip
jitters those, lands at a random offset in one second at a random level, over white/pink/brown
noise at a random SNR. write_corpus() leaves <word>/<speaker>_nohash_<take>.wav and a manifest.csv
of the clips and nothing else; data/speech.py checksums, installs and reads it.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..data import wavio
from ..data.corpus import Stream, stream, write_manifest
from ..data.speech import MANIFEST, WORDS
from . import espeak
from .noise import colored_noise

log = logging.getLogger(__name__)

PITCH_RANGE = (20, 80)  # espeak intonation range of a speaker (0 monotone, 50 default)
PITCH_JITTER, RATE_JITTER = 5, 0.10  # per take: +-5 pitch units, +-10 % words per minute
ESPEAK_WPM = (80, 450)  # what espeak accepts
PEAK_DB = (-20.0, -3.0)  # peak level of the spoken word; 3 dB headroom for the noise
MAX_WORD = 0.95  # seconds; slow variants (Marco stretches stressed syllables) are sped up to fit


def draw_speakers(corpus: dict, seed: int, variants: list[str]) -> list[dict]:
    speakers = []
    for s in range(corpus["speakers"]):
        rng = stream(seed, Stream.SPEECH_SPEAKER, s)
        speakers.append(dict(
            speaker=f"spk{s:03d}", accent=corpus["accents"][rng.integers(len(corpus["accents"]))],
            variant=variants[rng.integers(len(variants))],
            base_pitch=int(rng.integers(*corpus["pitch"], endpoint=True)),
            base_rate=int(rng.integers(*corpus["rate"], endpoint=True)),
            pitch_range=int(rng.integers(*PITCH_RANGE, endpoint=True))))
    return speakers


def draw_clip(speaker: dict, key: tuple[int, int, int], corpus: dict, seed: int) -> dict:
    """The synthesis and mixing values of clip key = (speaker, digit, take)."""
    rng = stream(seed, Stream.SPEECH_CLIP, *key)
    values = dict(
        pitch=int(np.clip(speaker["base_pitch"] + rng.integers(-PITCH_JITTER, PITCH_JITTER, endpoint=True), 0, 99)),
        rate_wpm=int(np.clip(round(speaker["base_rate"] * rng.uniform(1 - RATE_JITTER, 1 + RATE_JITTER)), *ESPEAK_WPM)),
        espeak_seed=int(rng.integers(2**31)), peak=float(10 ** (rng.uniform(*PEAK_DB) / 20)),
        position=float(rng.uniform()), snr_db=float(rng.uniform(*corpus["snr_db"])))
    values.update(zip(("white", "pink", "brown"), (float(w) for w in rng.dirichlet(np.ones(3))), strict=True))
    return values


def clip_noise(values: dict, key: tuple[int, int, int], seed: int, n: int) -> np.ndarray:
    return colored_noise(values, stream(seed, Stream.SPEECH_NOISE, *key), n)


def _mix(word: np.ndarray, values: dict, noise: np.ndarray) -> tuple[np.ndarray, int]:
    """The word at its level and offset over the noise at its SNR; the SNR counts the word's span only."""
    n = len(noise)
    if len(word) > n:
        log.warning("a %.2f s word cut to the %.2f s clip", len(word) / n, 1.0)
        word = word[:n]
    word = word * (values["peak"] / np.abs(word).max())
    offset = int(values["position"] * (n - len(word)))
    clip = np.zeros(n)
    clip[offset:offset + len(word)] = word
    noise_power = np.mean(word ** 2) / 10 ** (values["snr_db"] / 10)
    return np.clip(clip + noise * np.sqrt(noise_power), -1.0, 1.0), offset


def write_corpus(data_cfg: dict, root: Path, seed: int) -> None:
    """Write the Speech Commands layout into root: <word>/<speaker>_nohash_<take>.wav and manifest.csv."""
    from tqdm import tqdm

    corpus, rate = data_cfg["corpus"], data_cfg["sample_rate"]
    speakers = draw_speakers(corpus, seed, espeak.voice_variants())
    plan = [(s, d, t) for s in range(len(speakers)) for d in range(len(WORDS)) for t in range(corpus["takes"])]
    # All synthesis first: each clip forks a child, best done before torch is imported and while
    # this process is small (a fork copies its page tables).
    words, drawn = [], []
    for key in tqdm(plan, desc="synthesize", unit="clip", mininterval=2):
        spk = speakers[key[0]]
        values = draw_clip(spk, key, corpus, seed)
        while True:
            samples, synth_rate = espeak.synthesize(WORDS[key[1]], f"{spk['accent']}+{spk['variant']}",
                                                    rate_wpm=values["rate_wpm"], pitch=values["pitch"],
                                                    pitch_range=spk["pitch_range"], seed=values["espeak_seed"])
            excess = len(samples) / (MAX_WORD * synth_rate)
            if excess <= 1 or values["rate_wpm"] >= ESPEAK_WPM[1]:
                break
            values["rate_wpm"] = min(int(np.ceil(values["rate_wpm"] * excess)) + 5, ESPEAK_WPM[1])
        words.append(samples)
        drawn.append(values)
    log.info("resampling, mixing and writing %d clips", len(plan))
    rows = []
    for (s, d, t), samples, values in zip(plan, words, drawn, strict=True):
        spk = speakers[s]
        word = wavio.to_mono_resampled(samples[:, None] / 32768.0, synth_rate, rate).astype(np.float64)
        clip, offset = _mix(word, values, clip_noise(values, (s, d, t), seed, rate))
        rel = f"{WORDS[d]}/{spk['speaker']}_nohash_{t}.wav"
        wavio.write_wav(root / rel, clip, rate, sample_width=2)
        rows.append(dict(path=rel, label=d, word=WORDS[d], speaker=spk["speaker"], take=t, accent=spk["accent"],
                         variant=spk["variant"], pitch_range=spk["pitch_range"], offset=offset,
                         **{k: f"{v:.6g}" if isinstance(v, float) else v for k, v in values.items()}))
    write_manifest(root / MANIFEST, rows)
