"""Speech Commands digits (zero..nine): fetch or synthesize the clips, then convert them once to arrays.

espeak source: an offline stand-in synthesized with eSpeak NG (synth/speech.py).
torchaudio source: the real SPEECHCOMMANDS v0.02 (the thesis), downloaded by torchaudio.
Both leave raw_dir in the Speech Commands layout (<word>/<speaker>_nohash_<take>.wav) with a
manifest.csv of the digit clips and a SHA256SUMS, so prepare() does not care which made it.
"""
from __future__ import annotations

import csv
import logging
import os
import time
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io import sha256
from . import wavio
from .audio import write_representations
from .corpus import SUMS, Stream, build_corpus, inside, read_csv, refuse_duplicates, stream, verify_sums, write_manifest
from .source import Dataset, Source

log = logging.getLogger(__name__)

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
MANIFEST = "manifest.csv"
TEST_SPLITS = ("validation", "testing")  # official_split values that count as test

ARCHIVE = "speech_commands_v0.02.tar.gz"
ARCHIVE_URL = f"http://download.tensorflow.org/data/{ARCHIVE}"
# torchaudio.datasets.speechcommands._CHECKSUMS; torch.hub checks it only while downloading.
ARCHIVE_SHA256 = "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"


# ---- torchaudio: the real Speech Commands ----------------------------------------------------

def _fetch_torchaudio(raw_dir: Path, tmp: Path) -> Path:
    """Download (or reuse a verified archive beside raw_dir) and extract; returns the data folder."""
    from torchaudio.datasets import SPEECHCOMMANDS

    kept = raw_dir.parent / ARCHIVE
    hint = (f"download {ARCHIVE_URL} by other means, check that its sha256 is {ARCHIVE_SHA256}, "
            f"and put it at {kept}")
    if kept.exists():
        actual = sha256(kept)
        if actual != ARCHIVE_SHA256:
            raise DataError(f"{kept}: checksum mismatch: expected sha256 {ARCHIVE_SHA256}, got {actual}")
        os.symlink(kept.resolve(), tmp / ARCHIVE)  # torchaudio skips the download when the archive is there
    try:
        SPEECHCOMMANDS(root=str(tmp), download=True)
    except Exception as exc:  # noqa: BLE001 - URLError, HTTP errors, hash mismatch, bad tar ...
        raise DataError(f"{raw_dir}: downloading Speech Commands failed ({exc}); {hint}") from None
    if not kept.exists():  # keep the 2.3 GB archive so a later fetch need not download it again
        actual = sha256(tmp / ARCHIVE)
        if actual != ARCHIVE_SHA256:
            raise DataError(f"{tmp / ARCHIVE}: checksum mismatch: expected sha256 {ARCHIVE_SHA256}, got {actual}")
        os.replace(tmp / ARCHIVE, kept)
    data = tmp / "SpeechCommands" / ARCHIVE.removesuffix(".tar.gz")
    official = {}
    for split in TEST_SPLITS:
        official.update((line.strip(), split) for line in (data / f"{split}_list.txt").read_text().splitlines())
    rows = []
    for label, word in enumerate(WORDS):
        for wav in sorted((data / word).glob("*.wav")):
            rel = f"{word}/{wav.name}"
            speaker, take = wav.stem.split("_nohash_")
            rows.append(dict(path=rel, label=label, word=word, speaker=speaker, take=int(take),
                             official_split=official.get(rel, "training")))
    write_manifest(data / MANIFEST, rows)
    return data


def fetch(data_cfg: dict, raw_dir: Path, seed: int) -> None:
    """Fill raw_dir with the clips, manifest.csv and SHA256SUMS; built in a temporary sibling and
    renamed into place at the end, so a half-made corpus is never taken for a complete one."""
    raw_dir = Path(raw_dir)
    source = data_cfg["source"]
    config = {"source": source, "sample_rate": data_cfg["sample_rate"]}
    if source == "espeak":
        from importlib.metadata import version

        import espeakng_loader

        # Another eSpeak NG build may speak differently: a new one makes the corpus again.
        config.update(seed=seed, corpus=data_cfg["corpus"], espeakng_loader=version("espeakng-loader"),
                      library_sha256=sha256(Path(espeakng_loader.get_library_path())))

    def make(tmp: Path):
        if source == "espeak":
            # Imported here: synth/ reads this module's layout constants (no import cycle).
            from ..synth.speech import write_corpus

            data = tmp
            write_corpus(data_cfg, data, seed)
        else:
            data = _fetch_torchaudio(raw_dir, tmp)
        with open(data / MANIFEST, newline="") as fh:
            files = [row["path"] for row in csv.DictReader(fh)]
        return data, files + [MANIFEST]

    build_corpus(raw_dir, config, make, noun="clips")


# ---- prepare: clips -> arrays ----------------------------------------------------------------

def read_manifest(raw_dir: Path) -> list[dict]:
    """The manifest's rows; a row naming a file outside raw_dir, or one named before, is refused."""
    path = raw_dir / MANIFEST
    if not path.exists():
        raise DataError(f"{path}: not found; run `advrepro fetch speech` first")
    numbered = read_csv(path, ("path", "label", "speaker"))
    if not numbered:
        raise DataError(f"{path}: needs the columns path, label, speaker and at least one clip")
    labels = {str(i) for i in range(len(WORDS))}
    for line, row in numbered:
        row["path"] = inside(path, line, row["path"])
        if row["label"] not in labels:
            raise DataError(f"{path}:{line}: {row['path']}: label {row['label']!r} is not 0..{len(WORDS) - 1}")
    refuse_duplicates(path, [(line, row["path"]) for line, row in numbered])
    return [row for _, row in numbered]


def load_clips(raw_dir: Path, rows: list[dict], rate: int) -> np.ndarray:
    """float32 [N, rate]: every clip mono at `rate`, zero-padded or cut to exactly one second."""
    waves = np.zeros((len(rows), rate), np.float32)
    for i, row in enumerate(rows):
        x, file_rate = wavio.read_wav(raw_dir / row["path"])  # a broken file stops everything, never skipped
        mono = wavio.to_mono_resampled(x, file_rate, rate)[:rate]
        waves[i, :len(mono)] = mono
    return waves


def _n_test(fraction: float, n: int) -> int:
    return min(max(int(round(fraction * n)), 1), n - 1)


def split(rows: list[dict], how: str, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) clip indices, each in a seeded random order."""
    rng = stream(seed, Stream.SPEECH_SPLIT)
    speakers = np.array([r["speaker"] for r in rows])
    if how == "speaker":
        names = np.unique(speakers)
        if len(names) < 2:
            raise DataError(f"a speaker split needs two speakers or more, the corpus has {len(names)}")
        test_speakers = names[rng.permutation(len(names))[:_n_test(test_fraction, len(names))]]
        is_test = np.isin(speakers, test_speakers)
    elif how == "random":
        is_test = np.zeros(len(rows), bool)
        is_test[rng.permutation(len(rows))[:_n_test(test_fraction, len(rows))]] = True
    elif how == "official":
        if "official_split" not in rows[0]:
            raise DataError("split: official needs the real Speech Commands (source: torchaudio); "
                            "the synthesized corpus has no official split")
        is_test = np.array([r["official_split"] in TEST_SPLITS for r in rows])
    else:
        raise ValueError(f"unknown split {how!r}")
    train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    if not len(train) or not len(test):
        raise DataError(f"split {how!r} leaves {len(train)} training and {len(test)} test clips")
    if how == "speaker":
        assert not set(speakers[train]) & set(speakers[test]), "a speaker in both splits"
    # Shuffled, so that the first n test clips already cover every class.
    return rng.permutation(train), rng.permutation(test)


def prepare(speech_cfg: dict, raw_dir: Path, outputs: dict[str, Path], seed: int) -> dict:
    """Write outputs["speech-raw" | "speech-mel" | "speech-meldb"] (any of them): x_* float32 [N, T, F]
    in [-1, 1] scaled with training statistics, y_* int32, speaker_* int32 (indices into the sorted
    speaker ids), x_train_views [V, N, T, F] and, for the spectrograms, x_train_spec_views.
    Nothing is written unless every clip reads and verifies."""
    data_cfg, feat, aug = speech_cfg["data"], speech_cfg["features"], speech_cfg["augment"]
    raw_dir, rate = Path(raw_dir), data_cfg["sample_rate"]
    start = time.perf_counter()
    rows = read_manifest(raw_dir)
    if (raw_dir / SUMS).exists():
        verify_sums(raw_dir)
    waves = load_clips(raw_dir, rows, rate)
    labels = np.array([int(r["label"]) for r in rows], np.int32)
    names, speaker_idx = np.unique([r["speaker"] for r in rows], return_inverse=True)
    train, test = split(rows, data_cfg["split"], data_cfg["test_fraction"], seed)
    log.info("read %d clips of %d speakers in %.1f s; split %r: %d train, %d test", len(rows), len(names),
             time.perf_counter() - start, data_cfg["split"], len(train), len(test))

    summary = write_representations("speech", waves, labels, {"speaker": speaker_idx}, train, test, rate, feat,
                                    aug, seed, outputs)
    log.info("prepared speech in %.1f s", time.perf_counter() - start)
    return summary


def _fetch(section: dict, raw_dir: Path, seed: int) -> None:
    fetch(section["data"], raw_dir, seed=seed)


SOURCE = Source("speech", 10, (
    Dataset("speech-raw", "speech", "speech.raw", "waveform", "Speech Commands, raw waveform"),
    Dataset("speech-meldb", "speech", "speech.spectrogram", "spectrogram",
            "Speech Commands, Mel spectrogram + AmplitudeToDB"),
    Dataset("speech-mel", "speech", "speech.spectrogram", "spectrogram", "Speech Commands, Mel spectrogram"),
), _fetch, prepare, code=("data/speech.py", "data/corpus.py", "data/audio.py", "data/wavio.py", "synth/speech.py",
                          "synth/espeak.py", "synth/noise.py"),
    fetch_params=("profile", "profiles", "seed", "speech.data"))
