"""Deterministic speech synthesis with eSpeak NG (the espeakng-loader wheel) through ctypes.

libespeak-ng keeps state between utterances (static variables that espeak_Terminate and
espeak_Initialize do not reset, and libc's rand()), so the same text twice in one process gives
different samples. So every utterance runs in a child forked from this process, which only ever
loads the library and never synthesizes itself: each child starts from the same state, seeds both
random generators and is byte-for-byte reproducible (about 10 ms per word).
Fork before importing torch or jax where you can: the child touches neither, but forking a
process with many threads is best avoided (JAX warns about it).
"""
from __future__ import annotations

import ctypes
import os
import warnings
from functools import cache
from pathlib import Path

import numpy as np

from ..errors import DataError

SAMPLE_RATE = 22050  # what espeak_Initialize returns for every voice
ACCENTS = ("en", "en-029", "en-GB-scotland", "en-GB-x-gbclan", "en-GB-x-gbcwmd", "en-GB-x-rp", "en-US",
           "en-US-nyc")
_SYNCHRONOUS = 2  # AUDIO_OUTPUT_SYNCHRONOUS: samples arrive through the callback, no audio device
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4  # espeak_PARAMETER
_CHARACTER = 1  # espeak_POSITION_TYPE POS_CHARACTER
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_chunks: list[bytes] = []  # the child's samples, filled by the callback


@_CALLBACK
def _collect(wav, n, _events):
    if n > 0:
        _chunks.append(ctypes.string_at(wav, 2 * n))
    return 0  # 0 = go on


@cache
def _paths() -> tuple[str, str]:
    try:
        import espeakng_loader
    except ImportError:
        raise DataError("the espeak corpus needs the espeakng-loader package (pip install espeakng-loader)") from None
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


@cache
def _library() -> tuple[ctypes.CDLL, ctypes.CDLL]:
    """(libespeak-ng, libc), loaded once in the parent: dlopen leaves the synthesis state untouched,
    and the child then needs no loader lock that another thread of the parent might have held."""
    lib = ctypes.CDLL(_paths()[0])
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    return lib, ctypes.CDLL(None)


def voice_variants() -> list[str]:
    """Names of the voice variants (m1..m8, f1..f5, klatt, whisper, ...) in the data directory."""
    return sorted(p.name for p in (Path(_paths()[1]) / "voices" / "!v").iterdir() if p.is_file())


def _synthesize_here(text: str, voice: str, rate_wpm: int, pitch: int, pitch_range: int, seed: int) -> bytes:
    """Runs in the forked child only."""
    lib, libc = _library()
    rate = lib.espeak_Initialize(_SYNCHRONOUS, 0, _paths()[1].encode(), 0)
    if rate != SAMPLE_RATE:
        raise RuntimeError(f"espeak_Initialize returned {rate}, expected {SAMPLE_RATE}")
    lib.espeak_SetSynthCallback(_collect)
    libc.srand(ctypes.c_uint(seed & 0xFFFFFFFF))
    lib.espeak_ng_SetRandSeed(ctypes.c_long(seed))
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise RuntimeError(f"unknown voice {voice!r}")
    for param, value in ((_RATE, rate_wpm), (_PITCH, pitch), (_RANGE, pitch_range), (_VOLUME, 100)):
        lib.espeak_SetParameter(param, int(value), 0)
    encoded = text.encode()
    if lib.espeak_Synth(encoded, len(encoded) + 1, 0, _CHARACTER, 0, 0, None, None) != 0:
        raise RuntimeError("espeak_Synth failed")
    lib.espeak_Synchronize()
    return b"".join(_chunks)


def synthesize(text: str, voice: str, *, rate_wpm: int, pitch: int, pitch_range: int,
               seed: int) -> tuple[np.ndarray, int]:
    """int16 samples of `text` spoken by `voice` (e.g. "en-US+m3"), and the rate (22050).
    rate_wpm: words per minute (80-450); pitch, pitch_range: 0-99. Equal arguments give equal samples."""
    _library()  # load (and fail) in the parent, before forking
    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():
        # JAX, once its threads run, warns at every fork; the child touches neither JAX nor torch,
        # only libespeak-ng (single-threaded when synchronous), and leaves through os._exit.
        warnings.filterwarnings("ignore", r"os\.fork\(\) was called", RuntimeWarning)
        pid = os.fork()
    if pid == 0:  # child: never returns into the caller's code
        status = 1
        try:
            os.close(read_fd)
            data = _synthesize_here(text, voice, rate_wpm, pitch, pitch_range, seed)
            with os.fdopen(write_fd, "wb") as out:
                out.write(data)
            status = 0 if data else 3
        except BaseException as exc:  # noqa: BLE001 - reported through the exit status and stderr
            os.write(2, f"espeak child: {exc}\n".encode())
        finally:
            os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()  # read to EOF before waiting, or a full pipe would block the child
    _, wait_status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(wait_status)
    if code != 0:
        what = "produced no audio" if code == 3 else f"failed with exit code {code}"
        raise DataError(f"espeak synthesis of {text!r} with voice {voice!r} (rate {rate_wpm}, pitch {pitch}, "
                        f"range {pitch_range}, seed {seed}) {what}")
    return np.frombuffer(data, dtype="<i2").astype(np.int16), SAMPLE_RATE
