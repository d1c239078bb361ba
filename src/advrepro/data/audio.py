"""The conversion of waveforms to the three thesis representations (raw waveform, Mel spectrogram,
Mel + AmplitudeToDB), scaled to [-1, 1] with training statistics, with pre-drawn augmented copies of
the training clips.

Speech Commands (speech.py) and UrbanSound8K (urbansound.py) differ only in how the clips are
fetched (data/corpus.py; the offline stand-ins in synth/) and split; from a [N, n] waveform array on,
they take the same path here.
"""
from __future__ import annotations

import logging

import numpy as np

from ..errors import DataError
from ..io import atomic_paths, write_npz
from .corpus import Stream, stream

log = logging.getLogger(__name__)

REPRESENTATIONS = ("raw", "mel", "meldb")


# ---- waveforms -> representations --------------------------------------------------------------

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
        length = waves.shape[1] * feat["raw_rate"] // rate  # the clip's duration at raw_rate
        return _batched(lambda w: AF.resample(w, rate, feat["raw_rate"]), waves)[:, :length, None].numpy()
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
    for row, a, b in zip(out, start, start + length, strict=True):
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
        mask_seed = np.random.SeedSequence(seed, spawn_key=(int(Stream.AUDIO_MASK),)).generate_state(1)[0]
        torch.manual_seed(int(mask_seed))
        return [time_(freq(power[:, None]))[:, 0] for _ in range(views)]



def write_representations(prefix: str, waves: np.ndarray, labels: np.ndarray, groups: dict[str, np.ndarray],
                          train: np.ndarray, test: np.ndarray, rate: int, feat: dict, aug: dict, seed: int,
                          outputs: dict) -> dict:
    """Write outputs[f"{prefix}-{kind}"] for the requested kinds: x_* float32 [N, T, F] in [-1, 1]
    scaled with training statistics, y_* int32, per-clip group ids (e.g. speaker_*) int32,
    x_train_views [V, N, T, F] and, for the spectrograms, x_train_spec_views."""
    import torch

    unknown = set(outputs) - {f"{prefix}-{k}" for k in REPRESENTATIONS}
    if unknown:
        raise ValueError(f"unknown {prefix} outputs {sorted(unknown)}")
    # Waveforms and their mel power, computed once for both spectrogram representations.
    views = range(aug["views"])
    waveforms = {"train": torch.from_numpy(waves[train]), "test": torch.from_numpy(waves[test]),
                 **{f"view{v}": torch.from_numpy(augment_waves(waves[train], aug, rate,
                                                               stream(seed, Stream.AUDIO_VIEW, v)))
                    for v in views}}
    del waves
    power = {name: mel_power(w, rate, feat) for name, w in waveforms.items()}
    masked = mask_spectrograms(power["train"], aug, len(views), seed)
    power.update((f"spec{v}", p) for v, p in zip(views, masked, strict=True))

    def features(kind: str, name: str) -> np.ndarray:
        return represent(kind, waveforms[name], rate, feat) if kind == "raw" else from_power(kind, power[name])

    def scaled_views(kind: str, stem: str, scale) -> np.ndarray:
        first = apply_scale(features(kind, f"{stem}0"), scale)
        stacked = np.empty((len(views), *first.shape), np.float32)  # filled in place: no second copy
        stacked[0] = first
        for v in views[1:]:
            stacked[v] = apply_scale(features(kind, f"{stem}{v}"), scale)
        return stacked

    # All or none: each file is written to its temporary path, one at a time (to hold one representation
    # in memory); they are renamed into place together once every one is written.
    names = [f"{prefix}-{kind}" for kind in REPRESENTATIONS if f"{prefix}-{kind}" in outputs]
    summary = {}
    with atomic_paths(*(outputs[name] for name in names)) as temps:
        for name, tmp in zip(names, temps, strict=True):
            kind = name.removeprefix(f"{prefix}-")
            x_train = features(kind, "train")
            scale = fit_scale(kind, x_train)
            out = dict(x_train=apply_scale(x_train, scale), y_train=labels[train],
                       x_test=apply_scale(features(kind, "test"), scale), y_test=labels[test])
            for group, ids in groups.items():
                out.update({f"{group}_train": ids[train].astype(np.int32),
                            f"{group}_test": ids[test].astype(np.int32)})
            del x_train
            if len(views):
                out["x_train_views"] = scaled_views(kind, "view", scale)
                if kind != "raw":
                    out["x_train_spec_views"] = scaled_views(kind, "spec", scale)
            log.info("%s: scale [%.6g, %.6g] -> [-1, 1]; %s", name, *scale,
                     ", ".join(f"{k} {list(v.shape)}" for k, v in out.items()))
            write_npz(tmp, **out)
            summary[name] = {"scale": [float(scale[0]), float(scale[1])], **{k: list(v.shape) for k, v in out.items()}}
            del out
    log.info("wrote %s", ", ".join(str(outputs[name]) for name in names))
    return summary
