"""WAV files through the standard-library `wave` module (torchaudio.load needs torchcodec).

PCM only: 8-bit (unsigned, offset 128), 16-, 24- and 32-bit signed, any channel count, rates of
1 to 384 kHz.
Integers map to floats by dividing by 2**(bits - 1), the convention of torchaudio and soundfile,
so -1.0 is exact and +1.0 is one step short of full scale. Python 3.11's `wave` rejects
WAVE_FORMAT_EXTENSIBLE headers (3.12 reads them) and all float/compressed formats.
"""
from __future__ import annotations

import wave
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io import atomic_path

WIDTHS = (1, 2, 3, 4)
# Sample rates a header may claim: telephone-grade up to studio; 0 would divide by zero in the
# resampler and gigahertz would make it build an enormous kernel.
MIN_RATE, MAX_RATE = 1000, 384_000


def _quantize(samples: np.ndarray, width: int) -> bytes:
    """Floats in [-1, 1] -> little-endian PCM bytes (frames interleaved, as WAV stores them)."""
    full = 2 ** (8 * width - 1)
    q = np.clip(np.round(samples.astype(np.float64) * full), -full, full - 1).astype(np.int64)
    if width == 1:
        return (q + 128).astype(np.uint8).tobytes()
    if width == 3:
        # No 3-byte dtype: take the low three bytes of each little-endian int32.
        return q.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    return q.astype(f"<i{width}").tobytes()


def _dequantize(data: bytes, width: int) -> np.ndarray:
    full = 2 ** (8 * width - 1)
    if width == 1:
        q = np.frombuffer(data, np.uint8).astype(np.int32) - 128
    elif width == 3:
        # Put the three bytes in the top of an int32, then an arithmetic shift restores the sign.
        padded = np.zeros((len(data) // 3, 4), np.uint8)
        padded[:, 1:] = np.frombuffer(data, np.uint8).reshape(-1, 3)
        q = padded.view("<i4")[:, 0] >> 8
    else:
        q = np.frombuffer(data, f"<i{width}")
    return (q.astype(np.float64) / full).astype(np.float32)


def write_wav(path: str | Path, samples: np.ndarray, rate: int, sample_width: int = 2) -> None:
    """Write floats in [-1, 1], shape [n] or [n, channels], as PCM; atomic, and equal input gives
    equal bytes (`wave` writes no timestamps)."""
    if sample_width not in WIDTHS:
        raise ValueError(f"sample_width must be one of {WIDTHS} bytes, got {sample_width}")
    x = np.asarray(samples)
    x = x[:, None] if x.ndim == 1 else x
    if x.ndim != 2:
        raise ValueError(f"samples must have shape [n] or [n, channels], got {x.shape}")
    with atomic_path(path) as tmp:
        with wave.open(str(tmp), "wb") as wf:
            wf.setnchannels(x.shape[1])
            wf.setsampwidth(sample_width)
            wf.setframerate(int(rate))
            wf.writeframes(_quantize(x, sample_width))


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """(float32 samples [n, channels] in [-1, 1], rate); any unreadable file is a DataError naming it."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise DataError(f"{path}: empty file")
        with wave.open(str(path), "rb") as wf:
            channels, width, rate, nframes = (wf.getnchannels(), wf.getsampwidth(), wf.getframerate(),
                                              wf.getnframes())
            data = wf.readframes(nframes)
    except FileNotFoundError:
        raise DataError(f"{path}: not found") from None
    except (wave.Error, EOFError, OSError, ValueError) as exc:  # not RIFF/WAVE, non-PCM format, cut-off header
        raise DataError(f"{path}: not a readable PCM WAV file ({exc})") from None
    if width not in WIDTHS:
        raise DataError(f"{path}: unsupported sample width of {width} bytes")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise DataError(f"{path}: its header claims a sample rate of {rate} Hz, outside {MIN_RATE}..{MAX_RATE} Hz")
    if nframes == 0:
        raise DataError(f"{path}: no audio frames")
    expected = nframes * width * channels
    # `wave` takes the frame count from the header and silently returns what is there.
    if len(data) < expected:
        raise DataError(f"{path}: truncated: the header declares {nframes} frames ({expected} bytes) "
                        f"but the data holds {len(data)} bytes")
    return _dequantize(data[:expected], width).reshape(nframes, channels), rate


@lru_cache(maxsize=8)
def _resampler(rate: int, target_rate: int):
    """torchaudio's windowed-sinc resampler (= torchaudio.functional.resample) in float64; the
    module keeps its kernel, whose computation costs ~8 ms, ten times the filtering of a clip."""
    import torch
    import torchaudio

    return torchaudio.transforms.Resample(rate, target_rate, dtype=torch.float64)


def to_mono_resampled(x: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Average the channels of [n, channels] (or take [n] as is) and resample to target_rate;
    float32 [n']. One clip at a time, so a clip's samples do not depend on its batch."""
    mono = np.asarray(x, dtype=np.float64)
    mono = mono.mean(axis=1) if mono.ndim == 2 else mono
    if rate != target_rate:
        import torch

        with torch.no_grad():
            mono = _resampler(int(rate), int(target_rate))(torch.from_numpy(mono)).numpy()
    return mono.astype(np.float32)
