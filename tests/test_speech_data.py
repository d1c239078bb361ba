"""Speech data: WAV I/O, the deterministic eSpeak corpus, splits, features and prepared arrays."""
from __future__ import annotations

import copy
import csv
import hashlib
import io
import os
import struct
import tarfile
import wave

import numpy as np
import pytest

from advrepro.data import audio, speech, wavio
from advrepro.errors import DataError
from advrepro.io import read_npz
from advrepro.synth import espeak

RATE = 16000
CFG = {
    "data": {
        "source": "espeak", "split": "speaker", "test_fraction": 0.2, "sample_rate": RATE,
        "corpus": {"accents": list(espeak.ACCENTS), "speakers": 6, "takes": 1, "pitch": [25, 75],
                   "rate": [120, 230], "snr_db": [5, 30]},
    },
    "features": {"raw_rate": 4000, "n_fft": 1024, "hop_length": 512, "n_mels": 32},
    "augment": {"views": 2, "noise_std": 0.05, "mask_fraction": 0.15, "resample_rate": 8000,
                "freq_mask": 6, "time_mask": 6},
}
KINDS = ("speech-raw", "speech-mel", "speech-meldb")


def file_hashes(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def outputs(root):
    return {k: root / f"{k}.npz" for k in KINDS}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    raw = tmp_path_factory.mktemp("speech") / "raw"
    speech.fetch(CFG["data"], raw, seed=0)
    return raw


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory):
    out = outputs(tmp_path_factory.mktemp("processed"))
    speech.prepare(CFG, corpus, out, seed=0)
    return {k: read_npz(p) for k, p in out.items()}


def copy_corpus(src, dst):
    dst.mkdir()
    for rel in file_hashes(src):
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        (dst / rel).write_bytes((src / rel).read_bytes())
    return dst


# ---- the synthesized corpus ----------------------------------------------------------------------

def test_corpus_is_byte_identical_across_generations(corpus, tmp_path):
    again = tmp_path / "raw"
    speech.fetch(CFG["data"], again, seed=0)
    first = file_hashes(corpus)
    assert first == file_hashes(again)
    assert len([p for p in first if p.endswith(".wav")]) == 6 * 10
    assert {"manifest.csv", "SHA256SUMS", "corpus.json"} <= set(first)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary directory left


def test_complete_corpus_is_kept_and_a_changed_one_is_remade(corpus, tmp_path):
    raw = copy_corpus(corpus, tmp_path / "raw")
    wav = raw / "five" / "spk002_nohash_0.wav"
    mtime = wav.stat().st_mtime_ns
    speech.fetch(CFG["data"], raw, seed=0)  # verifies: nothing rewritten
    assert wav.stat().st_mtime_ns == mtime
    wav.write_bytes(wav.read_bytes()[:-10])  # damaged: made again from scratch
    speech.fetch(CFG["data"], raw, seed=0)
    assert file_hashes(raw) == file_hashes(corpus)


def test_synthesis_is_deterministic_within_one_process():
    kwargs = dict(rate_wpm=150, pitch=40, pitch_range=50, seed=3)
    a, rate = espeak.synthesize("seven", "en-US+whisper", **kwargs)
    b, _ = espeak.synthesize("seven", "en-US+whisper", **kwargs)
    assert rate == 22050 and a.dtype == np.int16 and len(a) > rate // 4
    assert np.array_equal(a, b)
    assert len(espeak.voice_variants()) > 50 and "m3" in espeak.voice_variants()
    with pytest.raises(DataError, match="no-such-voice"):
        espeak.synthesize("seven", "no-such-voice", **kwargs)


def test_every_wav_has_the_declared_format(corpus):
    with open(corpus / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 60 and {int(r["label"]) for r in rows} == set(range(10))
    for row in rows:
        assert row["path"] == f"{row['word']}/{row['speaker']}_nohash_{row['take']}.wav"
        with wave.open(str(corpus / row["path"])) as wf:
            assert (wf.getframerate(), wf.getnframes(), wf.getnchannels(), wf.getsampwidth()) == (RATE, RATE, 1, 2)


# ---- splits --------------------------------------------------------------------------------------

def test_speaker_split_is_disjoint_and_random_split_has_the_fraction():
    rows = [{"speaker": f"s{i // 10}", "label": str(i % 10)} for i in range(200)]
    train, test = speech.split(rows, "speaker", 0.2, seed=0)
    spk = np.array([r["speaker"] for r in rows])
    assert not set(spk[train]) & set(spk[test]) and len(set(spk[test])) == 4
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(200))
    train, test = speech.split(rows, "random", 0.2, seed=0)
    assert len(test) == 40 and len(train) == 160 and not set(train) & set(test)
    assert not np.array_equal(test, np.sort(test))  # shuffled
    again = speech.split(rows, "random", 0.2, seed=0)
    assert np.array_equal(again[1], test)
    with pytest.raises(DataError, match="official"):
        speech.split(rows, "official", 0.2, seed=0)


# ---- wavio ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("width", [1, 2, 3, 4])
@pytest.mark.parametrize("channels", [1, 2])
def test_wavio_round_trip(tmp_path, width, channels):
    x = np.random.default_rng(width).uniform(-1, 1, (1000, channels))
    x[:4, 0] = [-1.0, 0.0, 0.5, -0.25]
    path = tmp_path / "x.wav"
    wavio.write_wav(path, x, 11025, sample_width=width)
    y, rate = wavio.read_wav(path)
    assert rate == 11025 and y.shape == (1000, channels) and y.dtype == np.float32
    step = 2.0 ** -(8 * width - 1)  # half a step of rounding; a full step where +1 is clipped to full scale
    err = np.abs(y - x)
    assert err[x < 1 - step].max() <= max(step / 2, 1e-7) * 1.0001 and err.max() <= max(step, 1e-7)
    assert y[0, 0] == -1.0 and y[1, 0] == 0.0 and y[2, 0] == 0.5 and y[3, 0] == -0.25
    with wave.open(str(path)) as wf:
        assert (wf.getsampwidth(), wf.getnchannels()) == (width, channels)
    copy = tmp_path / "y.wav"
    wavio.write_wav(copy, x, 11025, sample_width=width)
    assert copy.read_bytes() == path.read_bytes()  # deterministic bytes


def test_wavio_reads_a_file_written_with_wave(tmp_path):
    path = tmp_path / "w.wav"
    frames = np.array([[0, -32768], [16384, 32767], [-1, 1]], dtype="<i2")
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(2), wf.setsampwidth(2), wf.setframerate(8000)
        wf.writeframes(frames.tobytes())
    y, rate = wavio.read_wav(path)
    assert rate == 8000 and np.array_equal(y, frames / 32768.0)
    mono = wavio.to_mono_resampled(y, 8000, 8000)
    assert np.array_equal(mono, (frames / 32768.0).mean(axis=1).astype(np.float32))
    assert wavio.to_mono_resampled(np.zeros((8000, 2)), 8000, 16000).shape == (16000,)


def float_wav_header(n_samples):
    """A WAVE_FORMAT_IEEE_FLOAT (3) mono header and data, which `wave` cannot read."""
    fmt = struct.pack("<HHIIHH", 3, 1, 8000, 32000, 4, 32)
    data = np.zeros(n_samples, "<f4").tobytes()
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("case, message", [
    ("truncated", "truncated"), ("empty", "empty"), ("float", "unknown format"), ("text", "RIFF"),
    ("no_frames", "no audio frames"), ("cut_header", "not a readable"),
])
def test_bad_wavs_raise_data_error_naming_the_file(tmp_path, case, message):
    path = tmp_path / f"bad_{case}.wav"
    if case in ("truncated", "cut_header", "no_frames"):
        wavio.write_wav(path, np.zeros(0 if case == "no_frames" else 1000), RATE)
        if case != "no_frames":
            path.write_bytes(path.read_bytes()[:100 if case == "truncated" else 20])
    else:
        path.write_bytes({"empty": b"", "float": float_wav_header(100), "text": b"hello, not a wav\n"}[case])
    with pytest.raises(DataError, match=message) as info:
        wavio.read_wav(path)
    assert path.name in str(info.value)


@pytest.mark.parametrize("with_sums", [True, False])
def test_prepare_stops_at_a_truncated_wav_and_writes_nothing(corpus, tmp_path, with_sums):
    raw = copy_corpus(corpus, tmp_path / "raw")
    bad = raw / "three" / "spk004_nohash_0.wav"
    bad.write_bytes(bad.read_bytes()[:5000])
    if not with_sums:
        (raw / "SHA256SUMS").unlink()
    out = outputs(tmp_path / "processed")
    with pytest.raises(DataError, match="checksum mismatch" if with_sums else "truncated") as info:
        speech.prepare(CFG, raw, out, seed=0)
    assert str(bad) in str(info.value)
    assert not (tmp_path / "processed").exists()


# ---- features ------------------------------------------------------------------------------------

def test_mel_matches_torchaudio_and_a_tone_peaks_at_its_bin():
    import torch
    import torchaudio

    feat = CFG["features"]
    centres = torchaudio.functional.melscale_fbanks(feat["n_fft"] // 2 + 1, 0.0, RATE / 2, feat["n_mels"], RATE)
    centres = torch.linspace(0, RATE / 2, feat["n_fft"] // 2 + 1)[centres.argmax(dim=0)].numpy()
    t = np.arange(RATE) / RATE
    freqs = [440.0, 1000.0, 2500.0, 5000.0]
    waves = torch.from_numpy(np.stack([0.5 * np.sin(2 * np.pi * f * t) for f in freqs]).astype(np.float32))
    x = audio.represent("mel", waves, RATE, feat)
    assert x.shape == (4, 32, 32) and x.dtype == np.float32
    reference = torchaudio.transforms.MelSpectrogram(sample_rate=RATE, n_fft=feat["n_fft"],
                                                     hop_length=feat["hop_length"], n_mels=feat["n_mels"])(waves)
    assert np.array_equal(x, reference.transpose(1, 2).numpy())
    for f, spec in zip(freqs, x, strict=True):
        assert spec.mean(axis=0).argmax() == np.abs(centres - f).argmin(), f
    # dB with the 80 dB floor below each clip's own peak (as AmplitudeToDB does for one clip).
    to_db = torchaudio.transforms.AmplitudeToDB(stype="power", top_db=80)
    db = audio.represent("meldb", waves, RATE, feat)
    assert np.array_equal(db, np.stack([to_db(r).T.numpy() for r in reference]))
    assert np.allclose(db.max(axis=(1, 2)) - db.min(axis=(1, 2)), 80)


# ---- prepared arrays -----------------------------------------------------------------------------

def test_prepared_shapes_ranges_and_training_scaling(prepared):
    for kind, a in prepared.items():
        feature_shape = (4000, 1) if kind == "speech-raw" else (32, 32)
        n_train, n_test = len(a["y_train"]), len(a["y_test"])
        assert n_train + n_test == 60 and n_test == 10  # one of six speakers
        assert a["x_train"].shape == (n_train, *feature_shape) and a["x_test"].shape == (n_test, *feature_shape)
        assert a["x_train_views"].shape == (2, n_train, *feature_shape)
        assert ("x_train_spec_views" in a) == (kind != "speech-raw")
        for name, x in a.items():
            if name.startswith("x_"):
                assert x.dtype == np.float32 and x.min() >= -1 and x.max() <= 1, (kind, name)
        if kind == "speech-raw":
            assert np.abs(a["x_train"]).max() == 1.0
        else:
            assert a["x_train"].min() == -1.0 and a["x_train"].max() == 1.0
        assert a["y_train"].dtype == np.int32 and set(a["y_test"]) == set(range(10))
        assert not set(a["speaker_train"]) & set(a["speaker_test"])
        assert not np.array_equal(a["x_train_views"][0], a["x_train"])


def test_scaling_uses_training_statistics_only():
    x_train = np.array([[0.0], [2.0], [4.0]], np.float32)
    scale = audio.fit_scale("mel", x_train)
    assert audio.apply_scale(x_train, scale).ravel().tolist() == [-1.0, 0.0, 1.0]
    assert audio.apply_scale(np.array([-2.0, 1.0, 9.0], np.float32), scale).tolist() == [-1.0, -0.5, 1.0]
    peak = audio.fit_scale("raw", x_train)  # by magnitude: 0 stays 0
    assert audio.apply_scale(np.array([-1.0, 0.0, 2.0], np.float32), peak).tolist() == [-0.25, 0.0, 0.5]


def test_prepare_writes_only_the_requested_outputs(corpus, tmp_path):
    cfg = copy.deepcopy(CFG)
    cfg["augment"]["views"] = 0
    speech.prepare(cfg, corpus, {"speech-meldb": tmp_path / "meldb.npz"}, seed=0)
    assert sorted(read_npz(tmp_path / "meldb.npz")) == ["speaker_test", "speaker_train", "x_test", "x_train",
                                                       "y_test", "y_train"]
    assert os.listdir(tmp_path) == ["meldb.npz"]


def test_prepare_is_deterministic(corpus, prepared, tmp_path):
    out = outputs(tmp_path)
    speech.prepare(CFG, corpus, out, seed=0)
    for kind, p in out.items():
        again = read_npz(p)
        assert all(np.array_equal(again[k], prepared[kind][k]) for k in prepared[kind])


# ---- the torchaudio path, on a miniature Speech Commands archive ----------------------------------

def test_torchaudio_fetch_with_a_verified_local_archive(tmp_path, monkeypatch):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        tone = wave_bytes(np.sin(np.arange(RATE) / 5) * 0.3)
        for word in speech.WORDS + ("yes",):
            for spk in ("aaaa0001", "bbbb0002", "cccc0003"):
                add(f"./{word}/{spk}_nohash_0.wav", tone)
        add("./validation_list.txt", b"one/bbbb0002_nohash_0.wav\n")
        add("./testing_list.txt", "".join(f"{w}/cccc0003_nohash_0.wav\n" for w in speech.WORDS).encode())
    archive = tmp_path / speech.ARCHIVE
    archive.write_bytes(buf.getvalue())
    monkeypatch.setattr(speech, "ARCHIVE_SHA256", hashlib.sha256(buf.getvalue()).hexdigest())
    cfg = copy.deepcopy(CFG)
    cfg["data"].update(source="torchaudio", split="official")
    raw = tmp_path / "raw"
    speech.fetch(cfg["data"], raw, seed=0)
    with open(raw / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 30 and {r["speaker"] for r in rows} == {"aaaa0001", "bbbb0002", "cccc0003"}
    assert sum(r["official_split"] == "testing" for r in rows) == 10
    assert [r["official_split"] for r in rows if r["path"] == "one/bbbb0002_nohash_0.wav"] == ["validation"]
    train, test = speech.split(rows, "official", 0.2, seed=0)
    assert len(test) == 11 and len(train) == 19
    assert archive.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    monkeypatch.setattr(speech, "ARCHIVE_SHA256", "0" * 64)
    with pytest.raises(DataError, match="checksum mismatch"):
        speech.fetch(cfg["data"], tmp_path / "raw2", seed=0)


def wave_bytes(x):
    path = io.BytesIO()
    with wave.open(path, "wb") as wf:
        wf.setnchannels(1), wf.setsampwidth(2), wf.setframerate(RATE)
        wf.writeframes(np.round(x * 32767).astype("<i2").tobytes())
    return path.getvalue()


def test_fetch_leaves_no_half_written_directory(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise DataError("synthesis failed")

    monkeypatch.setattr(espeak, "synthesize", fail)
    with pytest.raises(DataError):
        speech.fetch(CFG["data"], tmp_path / "raw", seed=0)
    assert os.listdir(tmp_path) == []
