"""Speech Commands digits (zero..nine): fetch or synthesize the clips, then convert them once to arrays.

espeak source: an offline stand-in synthesized with eSpeak NG. Each "speaker" is an accent, a voice
variant, a base pitch, rate and intonation range; each clip jitters those, lands at a random
offset in one second at a random level, over white/pink/brown noise at a random SNR.
torchaudio source: the real SPEECHCOMMANDS v0.02 (the thesis), downloaded by torchaudio.
Both leave raw_dir in the Speech Commands layout (<word>/<speaker>_nohash_<take>.wav) with a
manifest.csv of the digit clips and a SHA256SUMS, so prepare() does not care which made it.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io import write_npz, write_text
from . import wavio

log = logging.getLogger(__name__)

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
MANIFEST, SUMS, CONFIG = "manifest.csv", "SHA256SUMS", "corpus.json"
REPRESENTATIONS = ("raw", "mel", "meldb")
PITCH_RANGE = (20, 80)  # espeak intonation range of a speaker (0 monotone, 50 default)
PITCH_JITTER, RATE_JITTER = 5, 0.10  # per take: +-5 pitch units, +-10 % words per minute
ESPEAK_WPM = (80, 450)  # what espeak accepts
PEAK_DB = (-20.0, -3.0)  # peak level of the spoken word; 3 dB headroom for the noise
MAX_WORD = 0.95  # seconds; slow variants (Marco stretches stressed syllables) are sped up to fit
_SPEAKER, _CLIP, _NOISE, _SPLIT, _VIEW, _MASK = range(6)  # random-stream purposes
TEST_SPLITS = ("validation", "testing")  # official_split values that count as test

ARCHIVE = "speech_commands_v0.02.tar.gz"
ARCHIVE_URL = f"http://download.tensorflow.org/data/{ARCHIVE}"
# torchaudio.datasets.speechcommands._CHECKSUMS; torch.hub checks it only while downloading.
ARCHIVE_SHA256 = "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"


def _rng(seed: int, *key: int) -> np.random.Generator:
    """An independent stream per (purpose, speaker, clip ...) key: a clip's draws do not depend on
    how many speakers or takes come before it."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


# ---- checksums and the install of a finished directory ---------------------------------------

def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_sums(root: Path, relpaths: list[str]) -> None:
    """`sha256sum -c`-compatible list of the given files."""
    write_text(root / SUMS, "".join(f"{sha256(root / p)}  {p}\n" for p in sorted(relpaths)))


def verify_sums(root: Path) -> None:
    """Every file listed in root/SHA256SUMS exists and matches, else a DataError naming it."""
    for line in (root / SUMS).read_text().splitlines():
        expected, rel = line.split("  ", 1)
        path = root / rel
        if not path.is_file():
            raise DataError(f"{path}: listed in {root / SUMS} but missing")
        actual = sha256(path)
        if actual != expected:
            raise DataError(f"{path}: checksum mismatch: expected sha256 {expected}, got {actual}")


def _is_complete(raw_dir: Path, config: dict) -> bool:
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


def _install(tmp: Path, raw_dir: Path) -> None:
    """Move the finished tmp directory onto raw_dir; a crash leaves the old one, or none."""
    if raw_dir.exists():
        old = raw_dir.with_name(f".{raw_dir.name}.old-{os.getpid()}.tmp")
        os.replace(raw_dir, old)
        os.replace(tmp, raw_dir)
        shutil.rmtree(old)
    else:
        os.replace(tmp, raw_dir)


def _write_manifest(root: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(root / MANIFEST, buf.getvalue())


# ---- espeak: the synthesized corpus ----------------------------------------------------------

def draw_speakers(corpus: dict, seed: int, variants: list[str]) -> list[dict]:
    speakers = []
    for s in range(corpus["speakers"]):
        rng = _rng(seed, _SPEAKER, s)
        speakers.append(dict(
            speaker=f"spk{s:03d}", accent=corpus["accents"][rng.integers(len(corpus["accents"]))],
            variant=variants[rng.integers(len(variants))],
            base_pitch=int(rng.integers(*corpus["pitch"], endpoint=True)),
            base_rate=int(rng.integers(*corpus["rate"], endpoint=True)),
            pitch_range=int(rng.integers(*PITCH_RANGE, endpoint=True))))
    return speakers


def draw_clip(speaker: dict, key: tuple[int, int, int], corpus: dict, seed: int) -> dict:
    """The synthesis and mixing values of clip key = (speaker, digit, take)."""
    rng = _rng(seed, _CLIP, *key)
    values = dict(
        pitch=int(np.clip(speaker["base_pitch"] + rng.integers(-PITCH_JITTER, PITCH_JITTER, endpoint=True), 0, 99)),
        rate_wpm=int(np.clip(round(speaker["base_rate"] * rng.uniform(1 - RATE_JITTER, 1 + RATE_JITTER)), *ESPEAK_WPM)),
        espeak_seed=int(rng.integers(2**31)), peak=float(10 ** (rng.uniform(*PEAK_DB) / 20)),
        position=float(rng.uniform()), snr_db=float(rng.uniform(*corpus["snr_db"])))
    values.update(zip(("white", "pink", "brown"), (float(w) for w in rng.dirichlet(np.ones(3)))))
    return values


def clip_noise(values: dict, key: tuple[int, int, int], seed: int, n: int) -> np.ndarray:
    """Unit-RMS noise [n] whose power the drawn proportions share among white, pink and brown
    (power spectra 1, 1/f, 1/f^2): a sum of independent Gaussian noises is Gaussian with the summed
    spectrum, so one white noise shaped in the frequency domain does."""
    f = np.fft.rfftfreq(n)[1:]  # without DC: no offset
    psd = sum(values[c] * f ** -a / np.mean(f ** -a) for c, a in (("white", 0), ("pink", 1), ("brown", 2)))
    spec = np.fft.rfft(_rng(seed, _NOISE, *key).standard_normal(n))
    spec[0] = 0.0
    spec[1:] *= np.sqrt(psd)
    noise = np.fft.irfft(spec, n)
    return noise / noise.std()


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


def _fetch_espeak(data_cfg: dict, tmp: Path, seed: int) -> None:
    from tqdm import tqdm

    from . import espeak

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
    for (s, d, t), samples, values in zip(plan, words, drawn):
        spk = speakers[s]
        word = wavio.to_mono_resampled(samples[:, None] / 32768.0, synth_rate, rate).astype(np.float64)
        clip, offset = _mix(word, values, clip_noise(values, (s, d, t), seed, rate))
        rel = f"{WORDS[d]}/{spk['speaker']}_nohash_{t}.wav"
        wavio.write_wav(tmp / rel, clip, rate, sample_width=2)
        rows.append(dict(path=rel, label=d, word=WORDS[d], speaker=spk["speaker"], take=t, accent=spk["accent"],
                         variant=spk["variant"], pitch_range=spk["pitch_range"], offset=offset,
                         **{k: f"{v:.6g}" if isinstance(v, float) else v for k, v in values.items()}))
    _write_manifest(tmp, rows)


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
    _write_manifest(data, rows)
    return data


def fetch(data_cfg: dict, raw_dir: Path, seed: int) -> None:
    """Fill raw_dir with the clips, manifest.csv and SHA256SUMS; built in a temporary sibling and
    renamed into place at the end, so a half-made corpus is never taken for a complete one."""
    raw_dir = Path(raw_dir)
    source = data_cfg["source"]
    config = {"source": source, "sample_rate": data_cfg["sample_rate"]}
    if source == "espeak":
        import espeakng_loader
        from importlib.metadata import version

        # Another eSpeak NG build may speak differently: a new one makes the corpus again.
        config.update(seed=seed, corpus=data_cfg["corpus"], espeakng_loader=version("espeakng-loader"),
                      library_sha256=sha256(Path(espeakng_loader.get_library_path())))
    if raw_dir.exists() and _is_complete(raw_dir, config):
        log.info("%s already complete, checksums verified", raw_dir)
        return
    raw_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in raw_dir.parent.glob(f".{raw_dir.name}.*.tmp"):  # left by an interrupted fetch or install
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{raw_dir.name}.", suffix=".tmp", dir=raw_dir.parent))
    start = time.perf_counter()
    try:
        if source == "espeak":
            data = tmp
            _fetch_espeak(data_cfg, data, seed)
        else:
            data = _fetch_torchaudio(raw_dir, tmp)
        write_text(data / CONFIG, json.dumps(config, indent=2, sort_keys=True) + "\n")
        with open(data / MANIFEST, newline="") as fh:
            files = [row["path"] for row in csv.DictReader(fh)]
        write_sums(data, files + [MANIFEST, CONFIG])
        _install(data, raw_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("wrote %s: %d clips in %.1f s", raw_dir, len(files), time.perf_counter() - start)


# ---- prepare: clips -> arrays ----------------------------------------------------------------

def read_manifest(raw_dir: Path) -> list[dict]:
    path = raw_dir / MANIFEST
    if not path.exists():
        raise DataError(f"{path}: not found; run `advrepro fetch speech` first")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"path", "label", "speaker"} <= set(rows[0]):
        raise DataError(f"{path}: needs the columns path, label, speaker and at least one clip")
    for row in rows:
        if row["label"] not in {str(i) for i in range(len(WORDS))}:
            raise DataError(f"{path}: {row['path']}: label {row['label']!r} is not 0..{len(WORDS) - 1}")
    return rows


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
    rng = _rng(seed, _SPLIT)
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


def _batched(fn, x, size: int = 1024):
    """fn over slices of a tensor's first axis: bounds the memory of STFTs and resampling of many
    clips (the real Speech Commands has ~38,000 digits)."""
    import torch

    return torch.cat([fn(x[i:i + size]) for i in range(0, len(x), size)])


def mel_power(waves, rate: int, feat: dict):
    """Mel power spectrogram of a [N, n] tensor, torchaudio's own: [N, n_mels, T]."""
    import torchaudio

    mel = torchaudio.transforms.MelSpectrogram(sample_rate=rate, n_fft=feat["n_fft"], hop_length=feat["hop_length"],
                                               n_mels=feat["n_mels"])
    return _batched(mel, waves)


def to_db(power):
    """AmplitudeToDB per clip: given [N, F, T] torchaudio takes N as channels and applies top_db
    against the batch maximum; [N, 1, F, T] makes the 80 dB floor relative to each clip's own peak."""
    import torchaudio

    return torchaudio.transforms.AmplitudeToDB(stype="power", top_db=80)(power[:, None])[:, 0]


def from_power(kind: str, power) -> np.ndarray:
    """Mel power [N, F, T] -> the "mel" or "meldb" representation, float32 [N, T, F]."""
    spec = power if kind == "mel" else to_db(power)
    return spec.transpose(1, 2).contiguous().numpy()


def represent(kind: str, waves, rate: int, feat: dict) -> np.ndarray:
    """[N, n] waveform tensor -> float32 [N, T, F] (raw: resampled to raw_rate, F = 1)."""
    import torchaudio.functional as AF

    if kind == "raw":
        return _batched(lambda w: AF.resample(w, rate, feat["raw_rate"]), waves)[:, :feat["raw_rate"], None].numpy()
    return from_power(kind, mel_power(waves, rate, feat))


def fit_scale(kind: str, x_train: np.ndarray) -> tuple[np.float32, np.float32]:
    """(lo, hi) from the training split: raw by its peak magnitude (so 0 stays 0), else min-max."""
    if kind == "raw":
        peak = np.abs(x_train).max()
        lo, hi = -peak, peak
    else:
        lo, hi = x_train.min(), x_train.max()
    if not hi > lo:
        raise DataError(f"{kind}: the training inputs are constant ({lo}); cannot scale them")
    return np.float32(lo), np.float32(hi)


def apply_scale(x: np.ndarray, scale: tuple[np.float32, np.float32]) -> np.ndarray:
    """Map [lo, hi] onto [-1, 1] exactly (x = hi gives (hi - lo) / (hi - lo) = 1), clip the rest.
    float32 throughout and in place on one copy: the real corpus's raw arrays take gigabytes."""
    lo, hi = scale
    y = np.subtract(x, lo, dtype=np.float32)
    y /= hi - lo
    y *= 2
    y -= 1
    return np.clip(y, -1, 1, out=y)


def augment_waves(waves: np.ndarray, aug: dict, rate: int, rng: np.random.Generator) -> np.ndarray:
    """One view: down to resample_rate and back, Gaussian noise of a random std up to noise_std
    times the clip's peak, and a random section of up to mask_fraction of the clip set to zero."""
    import torch
    import torchaudio.functional as AF

    n_clips, n = waves.shape
    low_rate = aug["resample_rate"]
    back = _batched(lambda w: AF.resample(AF.resample(w, rate, low_rate), low_rate, rate), torch.from_numpy(waves))
    back = back[:, :n].numpy()
    out = np.zeros_like(waves)
    out[:, :back.shape[1]] = back
    peak = np.abs(waves).max(axis=1, keepdims=True)
    std = (rng.uniform(0, aug["noise_std"], (n_clips, 1)) * peak).astype(np.float32)
    out += std * rng.standard_normal((n_clips, n), dtype=np.float32)
    length = (rng.uniform(0, aug["mask_fraction"], n_clips) * n).astype(int)
    start = (rng.uniform(0, 1, n_clips) * (n - length + 1)).astype(int)
    for row, a, b in zip(out, start, start + length):
        row[a:b] = 0.0
    return out


def mask_spectrograms(power, aug: dict, views: int, seed: int) -> list:
    """`views` independently masked copies of [N, F, T] (torchaudio's masks, one draw per clip).
    Masked in the power domain, so a masked cell is silence in both mel and dB."""
    import torch
    import torchaudio

    freq = torchaudio.transforms.FrequencyMasking(aug["freq_mask"], iid_masks=True)
    time_ = torchaudio.transforms.TimeMasking(aug["time_mask"], iid_masks=True)
    # torchaudio draws from torch's global generator: seed it, then restore the caller's state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(np.random.SeedSequence(seed, spawn_key=(_MASK,)).generate_state(1)[0]))
        return [time_(freq(power[:, None]))[:, 0] for _ in range(views)]


def prepare(speech_cfg: dict, raw_dir: Path, outputs: dict[str, Path], seed: int) -> dict:
    """Write outputs["speech-raw" | "speech-mel" | "speech-meldb"] (any of them): x_* float32 [N, T, F]
    in [-1, 1] scaled with training statistics, y_* int32, speaker_* int32 (indices into the sorted
    speaker ids), x_train_views [V, N, T, F] and, for the spectrograms, x_train_spec_views.
    Nothing is written unless every clip reads and verifies."""
    import torch

    unknown = set(outputs) - {f"speech-{k}" for k in REPRESENTATIONS}
    if unknown:
        raise ValueError(f"unknown speech outputs {sorted(unknown)}")
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

    # Waveforms and their mel power, computed once for both spectrogram representations.
    views = range(aug["views"])
    waveforms = {"train": torch.from_numpy(waves[train]), "test": torch.from_numpy(waves[test]),
                 **{f"view{v}": torch.from_numpy(augment_waves(waves[train], aug, rate, _rng(seed, _VIEW, v)))
                    for v in views}}
    del waves
    power = {name: mel_power(w, rate, feat) for name, w in waveforms.items()}
    power.update((f"spec{v}", p) for v, p in zip(views, mask_spectrograms(power["train"], aug, len(views), seed)))

    def features(kind: str, name: str) -> np.ndarray:
        return represent(kind, waveforms[name], rate, feat) if kind == "raw" else from_power(kind, power[name])

    def scaled_views(kind: str, prefix: str, scale) -> np.ndarray:
        first = apply_scale(features(kind, f"{prefix}0"), scale)
        stacked = np.empty((len(views), *first.shape), np.float32)  # filled in place: no second copy
        stacked[0] = first
        for v in views[1:]:
            stacked[v] = apply_scale(features(kind, f"{prefix}{v}"), scale)
        return stacked

    summary = {}
    for kind in REPRESENTATIONS:
        name = f"speech-{kind}"
        if name not in outputs:
            continue
        x_train = features(kind, "train")
        scale = fit_scale(kind, x_train)
        out = dict(x_train=apply_scale(x_train, scale), y_train=labels[train],
                   speaker_train=speaker_idx[train].astype(np.int32),
                   x_test=apply_scale(features(kind, "test"), scale), y_test=labels[test],
                   speaker_test=speaker_idx[test].astype(np.int32))
        del x_train
        if len(views):
            out["x_train_views"] = scaled_views(kind, "view", scale)
            if kind != "raw":
                out["x_train_spec_views"] = scaled_views(kind, "spec", scale)
        log.info("%s: scale [%.6g, %.6g] -> [-1, 1]; %s", name, *scale,
                 ", ".join(f"{k} {list(v.shape)}" for k, v in out.items()))
        write_npz(outputs[name], **out)  # one at a time, to hold one representation in memory
        log.info("wrote %s", outputs[name])
        summary[name] = {"scale": [float(scale[0]), float(scale[1])], **{k: list(v.shape) for k, v in out.items()}}
    log.info("prepared speech in %.1f s", time.perf_counter() - start)
    return summary
