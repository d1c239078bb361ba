"""Bad data, as a careless or hostile user leaves it (issue 15): processed arrays, manifests, WAVs, checksums.

Every case runs the real `advrepro` command on a working tiny project (conftest's `project`, with toy digits
in data/processed/mnist.npz; prepare cases add a few-file raw corpus, no SHA256SUMS, as the real datasets
have none) and must give exit code 2, one `error:` line naming the culprit, no traceback, and no file
changed (tests/badinput.py). Below the table: the loaders' own tests (BOM accepted, all-or-nothing outputs).
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from advrepro import data, paths
from advrepro.data import audio, gtsrb, speech, urbansound, wavio
from advrepro.data.corpus import SUMS, write_manifest, write_sums
from advrepro.errors import DataError
from advrepro.io import read_npz, write_npz

from .badinput import Bad, check
from .test_urban_data import tiny_tree

EXP = "mnist-ff-plain"
MNIST = paths.processed("mnist")
SPEECH = Path(paths.raw_dir("speech"))
URBAN = Path(paths.raw_dir("urban"))
GTSRB = Path(paths.raw_dir("gtsrb"))
BOM = b"\xef\xbb\xbf"


# ---- setups: processed arrays ------------------------------------------------------------------

def edit_arrays(change):
    """Rewrite data/processed/mnist.npz with change(arrays) applied (it edits the dict in place)."""
    def setup(proj: Path) -> None:
        arrays = read_npz(proj / MNIST)
        change(arrays)
        write_npz(proj / MNIST, **arrays)
    return setup


def poison(name: str, value: float):
    def change(arrays):
        arrays[name] = arrays[name].copy()
        arrays[name].flat[7] = value
    return edit_arrays(change)


def retype(name: str, dtype):
    return edit_arrays(lambda a: a.update({name: a[name].astype(dtype)}))


def emptied(split: str):
    return edit_arrays(lambda a: a.update({f"x_{split}": a[f"x_{split}"][:0], f"y_{split}": a[f"y_{split}"][:0]}))


def enlarged(proj: Path) -> None:
    """Images of 12x12 where params say 8x8 (left by a prepare under another profile)."""
    edit_arrays(lambda a: a.update({k: np.pad(a[k], ((0, 0), (2, 2), (2, 2), (0, 0)), constant_values=-1.0)
                                    for k in ("x_train", "x_test")}))(proj)


# ---- setups: raw corpora ---------------------------------------------------------------------------

def speech_corpus(proj: Path) -> list[dict]:
    """Four one-tenth-second clips of two speakers (words zero and one) and their manifest.csv."""
    rows = []
    for i in range(4):
        word, rel = speech.WORDS[i % 2], f"{speech.WORDS[i % 2]}/spk{i // 2}_nohash_{i}.wav"
        wavio.write_wav(proj / SPEECH / rel, 0.5 * np.sin(np.arange(1600) * (i + 1) / 10), 16000)
        rows.append(dict(path=rel, label=i % 2, word=word, speaker=f"spk{i // 2}", take=0))
    write_manifest(proj / SPEECH / speech.MANIFEST, rows)
    return rows


def speech_manifest(edit):
    """A speech corpus whose manifest.csv bytes are edit(bytes)."""
    return edited(speech_corpus, SPEECH / speech.MANIFEST, edit)


def second_row_path(new: str):
    def edit(text: bytes) -> bytes:
        lines = text.decode().splitlines(keepends=True)
        lines[2] = lines[2].replace(lines[2].split(",")[0], new, 1)
        return "".join(lines).encode()
    return edit


def speech_wav(damage):
    """A speech corpus whose second clip's bytes are damage(bytes)."""
    def setup(proj: Path) -> None:
        rows = speech_corpus(proj)
        path = proj / SPEECH / rows[1]["path"]
        path.write_bytes(damage(path.read_bytes()))
    return setup


def header_rate(rate: int):
    """The fmt chunk's sample rate (and byte rate) set to `rate`: the samples stay as they are."""
    def damage(wav: bytes) -> bytes:
        channels, width = struct.unpack_from("<H", wav, 22)[0], struct.unpack_from("<H", wav, 34)[0] // 8
        return wav[:24] + struct.pack("<II", rate, (rate * channels * width) % 2 ** 32) + wav[32:]
    return damage


def no_frames(wav: bytes) -> bytes:
    return wav[:40] + struct.pack("<I", 0)  # a well-formed header whose data chunk is empty


def bad_sums(proj: Path) -> None:
    speech_corpus(proj)
    (proj / SPEECH / SUMS).write_text("not a checksum line\n")


def urban_corpus(proj: Path) -> None:
    files = [(2, 1, np.full((400, 1), 1000 * (i + 1))) for i in range(4)]
    tiny_tree(proj / URBAN, files, 8000)


def edited(make_corpus, relpath: Path, edit):
    """A setup: make the corpus, then rewrite one of its files' bytes with `edit`."""
    def setup(proj: Path) -> None:
        make_corpus(proj)
        path = proj / relpath
        path.write_bytes(edit(path.read_bytes()))
    return setup


def urban_metadata(edit):
    return edited(urban_corpus, URBAN / urbansound.METADATA, edit)


def gtsrb_corpus(proj: Path) -> None:
    """Two classes, two training and two test images of 6x6 pixels, in torchvision's layout."""
    root = proj / GTSRB
    rng = np.random.default_rng(0)
    for c in range(2):
        folder = root / gtsrb.TRAIN_DIR / f"{c:05d}"
        folder.mkdir(parents=True)
        for k in range(2):
            Image.fromarray(rng.integers(0, 255, (6, 6, 3), np.uint8)).save(folder / f"00000_{k:05d}.ppm")
    (root / gtsrb.TEST_DIR).mkdir(parents=True)
    for k in range(2):
        Image.fromarray(rng.integers(0, 255, (6, 6, 3), np.uint8)).save(root / gtsrb.TEST_DIR / f"{k:05d}.ppm")
    rows = [dict(Filename=f"{k:05d}.ppm", Width=6, Height=6, **{"Roi.X1": 0, "Roi.Y1": 0, "Roi.X2": 5, "Roi.Y2": 5},
                 ClassId=k) for k in range(2)]
    write_manifest(root / gtsrb.TEST_CSV, rows, delimiter=";")


def gtsrb_csv(edit):
    return edited(gtsrb_corpus, GTSRB / gtsrb.TEST_CSV, edit)


def duplicate_last_row(text: bytes) -> bytes:
    return text + text.splitlines(keepends=True)[-1]


def latin1(text: bytes) -> bytes:
    return text + "caf\xe9\n".encode("latin-1")  # what a spreadsheet saved as Latin-1 leaves


def sub(old: bytes, new: bytes):
    return lambda text: text.replace(old, new, 1)


SPEECH_CSV, URBAN_CSV, GTSRB_CSV = (str(SPEECH / speech.MANIFEST), str(URBAN / urbansound.METADATA),
                                    str(GTSRB / gtsrb.TEST_CSV))
PREP_SPEECH, PREP_URBAN, PREP_GTSRB = ("prepare", "speech"), ("prepare", "urban"), ("prepare", "gtsrb")
SECOND_WAV = str(SPEECH / "one/spk0_nohash_1.wav")

CASES = [
    # processed arrays: refused by data.load before training or evaluation starts
    Bad("evaluate: NaN in x_test", ("evaluate", EXP), f"{MNIST}: x_test holds NaN", poison("x_test", np.nan)),
    Bad("train: +inf in x_train", ("train", EXP), f"{MNIST}: x_train holds infinite values",
        poison("x_train", np.inf)),
    Bad("evaluate: -inf in x_test", ("evaluate", EXP), f"{MNIST}: x_test holds infinite", poison("x_test", -np.inf)),
    Bad("train: integer x_train", ("train", EXP), f"{MNIST}: x_train has dtype int64", retype("x_train", np.int64)),
    Bad("evaluate: float labels", ("evaluate", EXP), f"{MNIST}: y_test has dtype float32",
        retype("y_test", np.float32)),
    Bad("train: boolean labels", ("train", EXP), f"{MNIST}: y_train has dtype bool", retype("y_train", bool)),
    Bad("train: 0 training samples", ("train", EXP), f"{MNIST}: x_train has 0 samples", emptied("train")),
    Bad("evaluate: 0 test samples", ("evaluate", EXP), f"{MNIST}: x_test has 0 samples", emptied("test")),
    Bad("evaluate: fewer labels than images", ("evaluate", EXP), f"{MNIST}: x_test has shape",
        edit_arrays(lambda a: a.update(y_test=a["y_test"][:-3]))),
    Bad("evaluate: labels of two dimensions", ("evaluate", EXP), f"{MNIST}: y_test has shape",
        edit_arrays(lambda a: a.update(y_test=a["y_test"][:, None]))),
    Bad("evaluate: test images of another size", ("evaluate", EXP), f"{MNIST}: x_test has samples of shape",
        edit_arrays(lambda a: a.update(x_test=a["x_test"][:, :4]))),
    Bad("train: 12x12 images, params say 8", ("train", EXP), "mnist.data.image_size", enlarged),
    Bad("evaluate: 12x12 images, params say 8", ("evaluate", EXP), f"{MNIST}: holds 12x12 images", enlarged),
    # speech manifest.csv
    Bad("speech: manifest not UTF-8", PREP_SPEECH, f"{SPEECH_CSV}:6: not UTF-8", speech_manifest(latin1)),
    Bad("speech: path with ..", PREP_SPEECH, f"{SPEECH_CSV}:3: path '../../outside.wav' leaves the corpus",
        speech_manifest(second_row_path("../../outside.wav"))),
    Bad("speech: absolute path", PREP_SPEECH, f"{SPEECH_CSV}:3: path '/etc/hostname' leaves the corpus",
        speech_manifest(second_row_path("/etc/hostname"))),
    Bad("speech: a clip listed twice", PREP_SPEECH, f"{SPEECH_CSV}:6: one/spk1_nohash_3.wav is listed twice",
        speech_manifest(duplicate_last_row)),
    Bad("speech: the same clip as ./path", PREP_SPEECH, "zero/spk0_nohash_0.wav is listed twice",
        speech_manifest(second_row_path("./zero/spk0_nohash_0.wav"))),
    Bad("speech: a row without speaker", PREP_SPEECH, f"{SPEECH_CSV}:2: no value in column 'speaker'",
        speech_manifest(sub(b",spk0,", b",,"))),
    Bad("speech: column missing", PREP_SPEECH, f"{SPEECH_CSV}: missing columns ['speaker']",
        speech_manifest(sub(b"speaker", b"talker"))),
    Bad("speech: NUL byte in manifest", PREP_SPEECH, SPEECH_CSV, speech_manifest(sub(b"zero/", b"ze\0ro/"))),
    Bad("speech: malformed SHA256SUMS", PREP_SPEECH, f"{SPEECH / SUMS}:1: not a", bad_sums),
    # speech WAVs
    Bad("speech: WAV at 0 Hz", PREP_SPEECH, f"{SECOND_WAV}: its header claims a sample rate of 0 Hz",
        speech_wav(header_rate(0))),
    Bad("speech: WAV at 1 Hz", PREP_SPEECH, f"{SECOND_WAV}: its header claims a sample rate of 1 Hz",
        speech_wav(header_rate(1))),
    Bad("speech: WAV at 4 GHz", PREP_SPEECH, f"{SECOND_WAV}: its header claims a sample rate of 4000000000 Hz",
        speech_wav(header_rate(4_000_000_000))),
    Bad("speech: WAV of 0 bytes", PREP_SPEECH, f"{SECOND_WAV}: empty file", speech_wav(lambda wav: b"")),
    Bad("speech: WAV of 0 frames", PREP_SPEECH, f"{SECOND_WAV}: no audio frames", speech_wav(no_frames)),
    Bad("speech: WAV header only, cut", PREP_SPEECH, SECOND_WAV, speech_wav(lambda wav: wav[:30])),
    # UrbanSound8K metadata CSV
    Bad("urban: metadata not UTF-8", PREP_URBAN, f"{URBAN_CSV}:6: not UTF-8", urban_metadata(latin1)),
    Bad("urban: slice_file_name with ..", PREP_URBAN, f"{URBAN_CSV}:2: path '../../../x.wav' leaves the corpus",
        urban_metadata(sub(b"1000-0-0-0.wav", b"../../../x.wav"))),
    Bad("urban: slice_file_name in a subfolder", PREP_URBAN, f"{URBAN_CSV}:2: slice_file_name 'sub/1000-0-0-0.wav'",
        urban_metadata(sub(b"1000-0-0-0.wav", b"sub/1000-0-0-0.wav"))),
    Bad("urban: a slice listed twice", PREP_URBAN, f"{URBAN_CSV}:6: audio/fold10/1003-3-0-0.wav is listed twice",
        urban_metadata(duplicate_last_row)),
    Bad("urban: a short row", PREP_URBAN, f"{URBAN_CSV}:3: no value in column",
        urban_metadata(lambda t: b"\n".join(line.rsplit(b",", 3)[0] if i == 2 else line
                                            for i, line in enumerate(t.split(b"\n"))))),
    # GTSRB GT-final_test.csv
    Bad("gtsrb: test CSV not UTF-8", PREP_GTSRB, f"{GTSRB_CSV}:4: not UTF-8", gtsrb_csv(latin1)),
    Bad("gtsrb: Filename with ..", PREP_GTSRB, f"{GTSRB_CSV}:2: path '../../../../../params.yaml' leaves",
        gtsrb_csv(sub(b"00000.ppm", b"../../../../../params.yaml"))),
    Bad("gtsrb: an image listed twice", PREP_GTSRB, f"{GTSRB_CSV}:4: 00001.ppm is listed twice",
        gtsrb_csv(duplicate_last_row)),
    Bad("gtsrb: ClassId not a number", PREP_GTSRB, f"{GTSRB_CSV}:3: ClassId 'x' is not an integer",
        gtsrb_csv(lambda t: t[:t.rindex(b";")] + b";x\n")),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_data_is_one_line_and_changes_nothing(project, case):
    check(project, case)


# ---- the loaders on their own ------------------------------------------------------------------

def test_load_checks_size_against_params_only_when_given(project):
    p = yaml.safe_load((project / "params.yaml").read_text())
    enlarged(project)
    assert data.load("mnist", project / MNIST).x_train.shape[1:] == (12, 12, 1)  # without params: as before
    with pytest.raises(DataError, match=r"holds 12x12 images .* mnist.data.image_size is 8 in profile 'tiny'"):
        data.load("mnist", project / MNIST, params=p)
    p["mnist"]["data"]["image_size"] = 12
    assert len(data.load("mnist", project / MNIST, params=p).y_test) == p["mnist"]["data"]["n_test"]


def test_load_checks_mel_bands_and_views(tmp_path):
    x = np.zeros((4, 5, 16), np.float32)
    arrays = dict(x_train=x, y_train=np.zeros(4, np.int32), x_test=x[:2], y_test=np.zeros(2, np.int32))
    params = {"profile": "tiny", "speech": {"features": {"n_mels": 32}}}
    write_npz(tmp_path / "a.npz", **arrays)
    with pytest.raises(DataError, match="a.npz: holds 16 Mel bands .* speech.features.n_mels is 32"):
        data.load("speech-meldb", tmp_path / "a.npz", params=params)
    views = np.zeros((1, *x.shape), np.float32)
    views[0, 1, 2, 3] = np.nan
    write_npz(tmp_path / "b.npz", **arrays, x_train_views=views)
    with pytest.raises(DataError, match=r"b.npz: x_train_views holds NaN \(1 of 320 values\)"):
        data.load("speech-meldb", tmp_path / "b.npz")
    assert data.load("speech-meldb", tmp_path / "b.npz", views=False).views == {}


def test_manifests_with_a_bom_read_like_without(tmp_path):
    speech_corpus(tmp_path)
    raw = tmp_path / SPEECH
    plain = speech.read_manifest(raw)
    (raw / speech.MANIFEST).write_bytes(BOM + (raw / speech.MANIFEST).read_bytes())
    assert speech.read_manifest(raw) == plain

    urban_corpus(tmp_path)
    root = tmp_path / URBAN
    plain = urbansound.read_metadata(root)
    (root / urbansound.METADATA).write_bytes(BOM + (root / urbansound.METADATA).read_bytes())
    assert urbansound.read_metadata(root) == plain


def test_gtsrb_test_csv_with_a_bom_gives_the_same_arrays(tmp_path):
    gtsrb_corpus(tmp_path)
    raw = tmp_path / GTSRB
    gtsrb.prepare({}, raw, tmp_path / "plain.npz", image_size=4, seed=0)
    (raw / gtsrb.TEST_CSV).write_bytes(BOM + (raw / gtsrb.TEST_CSV).read_bytes())
    gtsrb.prepare({}, raw, tmp_path / "bom.npz", image_size=4, seed=0)
    assert (tmp_path / "bom.npz").read_bytes() == (tmp_path / "plain.npz").read_bytes()
    assert sorted(read_npz(tmp_path / "plain.npz")["y_test"].tolist()) == [0, 1]


def test_manifest_edits_are_caught_by_sha256sums(tmp_path):
    cfg = {"data": {"sample_rate": 16000}, "features": {}, "augment": {}}
    speech_corpus(tmp_path)
    raw = tmp_path / SPEECH
    write_sums(raw, [r["path"] for r in speech.read_manifest(raw)] + [speech.MANIFEST])
    relabel = sub(b",0,zero,", b",1,zero,")  # a valid manifest still: only the checksum can tell
    (raw / speech.MANIFEST).write_bytes(relabel((raw / speech.MANIFEST).read_bytes()))
    with pytest.raises(DataError, match="manifest.csv: checksum mismatch"):
        speech.prepare(cfg, raw, {}, seed=0)
    (raw / SUMS).write_text(f"{'0' * 64}  ../outside.wav\n")
    with pytest.raises(DataError, match=r"SHA256SUMS:1: path '../outside.wav' leaves the corpus"):
        speech.prepare(cfg, raw, {}, seed=0)


@pytest.mark.parametrize("rate", [999, 384_001])
def test_wav_rates_outside_the_range_are_refused_and_inside_read(tmp_path, rate):
    path = tmp_path / "a.wav"
    wavio.write_wav(path, np.zeros(100), 16000)
    path.write_bytes(header_rate(rate)(path.read_bytes()))
    with pytest.raises(DataError, match=f"a.wav: its header claims a sample rate of {rate} Hz"):
        wavio.read_wav(path)
    for ok in (wavio.MIN_RATE, wavio.MAX_RATE):
        wavio.write_wav(path, np.zeros(100), ok)
        assert wavio.read_wav(path)[1] == ok


AUDIO = {"raw_rate": 1000, "n_fft": 256, "hop_length": 256, "n_mels": 8}
AUGMENT = {"views": 1, "noise_std": 0.05, "mask_fraction": 0.1, "resample_rate": 2000, "freq_mask": 2,
           "time_mask": 1}


def represent_toy(outputs: dict) -> dict:
    rng = np.random.default_rng(0)
    waves = rng.uniform(-0.5, 0.5, (6, 4000)).astype(np.float32)
    labels = np.array([0, 1] * 3, np.int32)
    return audio.write_representations("speech", waves, labels, {"speaker": np.arange(6)}, np.arange(4),
                                       np.arange(4, 6), 4000, AUDIO, AUGMENT, 0, outputs)


def test_representations_land_all_or_none(tmp_path, monkeypatch):
    outputs = {f"speech-{k}": tmp_path / f"speech-{k}.npz" for k in audio.REPRESENTATIONS}
    for path in outputs.values():
        path.write_bytes(b"from an earlier prepare")
    calls = []
    real = audio.write_npz

    def fail_on_the_last(path, **arrays):
        calls.append(path)
        if len(calls) == len(outputs):
            raise OSError(28, "No space left on device", str(path))
        real(path, **arrays)

    monkeypatch.setattr(audio, "write_npz", fail_on_the_last)
    with pytest.raises(OSError, match="No space left"):
        represent_toy(outputs)
    assert len(calls) == 3
    assert all(p.read_bytes() == b"from an earlier prepare" for p in outputs.values())  # none replaced
    assert sorted(tmp_path.iterdir()) == sorted(outputs.values())  # and no temporaries left
    monkeypatch.undo()
    summary = represent_toy(outputs)
    for name, path in outputs.items():
        assert list(read_npz(path)["x_train"].shape) == summary[name]["x_train"]
    again = {k: tmp_path / "again" / p.name for k, p in outputs.items()}
    represent_toy(again)
    assert all(again[k].read_bytes() == p.read_bytes() for k, p in outputs.items())
