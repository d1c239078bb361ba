"""Several GPUs on one machine, simulated on the CPU: the device-slot pool (src/advrepro/devices.py) under real
processes, under a real Snakemake, and under the real train rule (tests/test_data_parallel.py: training over
several devices).

A slot is a lock file held with flock: jobs running at once get distinct slots, a SIGKILLed job frees its slot
for the next (the OS drops the lock), and every job's log names its slot and CUDA_VISIBLE_DEVICES."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from advrepro import devices, paths
from advrepro.errors import AdvreproError

from .conftest import ROOT, digest, make_project, run_cli

BIN = Path(sys.executable).parent
SLOT_LINE = re.compile(r"device slots? ([\d, ]+) \(CUDA_VISIBLE_DEVICES=([\d,]+)\)")


@pytest.fixture
def pool(tmp_path, monkeypatch):
    """A slot directory of its own; no slot count or inherited devices from the caller's environment."""
    monkeypatch.delenv(devices.SLOTS_ENV, raising=False)
    monkeypatch.delenv(devices.VISIBLE, raising=False)
    monkeypatch.setenv(devices.DIR_ENV, str(tmp_path / "slots"))
    return tmp_path / "slots"


def slots_in(log: Path) -> tuple[list[int], str]:
    """(slots, CUDA_VISIBLE_DEVICES) of the one slot line of a job's log."""
    found = SLOT_LINE.findall(log.read_text())
    assert len(found) == 1, f"{log}: {found}"
    return [int(s) for s in found[0][0].split(", ")], found[0][1]


# --- the pool, in-process and with killed processes ---------------------------------------------------------------

def test_holders_get_distinct_slots_a_third_waits_and_a_released_slot_is_taken_again(pool, monkeypatch):
    monkeypatch.setenv(devices.SLOTS_ENV, "2")
    a, b = devices.acquire(1, what="a"), devices.acquire(1, what="b")
    assert (a.slots, b.slots) == ([0], [1]) and (a.visible, b.visible) == ("0", "1")
    assert a.describe() == f"device slot 0 (CUDA_VISIBLE_DEVICES=0) of 2 in {pool}"
    with pytest.raises(AdvreproError, match=r"no 1 free device slot\(s\) of 2 .*slot 0: pid \d+ a, since"):
        devices.acquire(1, timeout=0.2, poll=0.05)
    b.release()
    c = devices.acquire(1, timeout=1)
    assert c.slots == [1]
    a.release()
    c.release()


def test_a_job_of_k_devices_takes_k_free_slots_and_holds_none_while_it_waits(pool, monkeypatch):
    monkeypatch.setenv(devices.SLOTS_ENV, "3")
    one = devices.acquire(1)
    two = devices.acquire(2)
    assert two.slots == [1, 2] and two.visible == "1,2"
    assert two.describe().startswith("device slots 1, 2 (CUDA_VISIBLE_DEVICES=1,2) of 3")
    two.release()
    busy = devices.acquire(1)  # slots 0 and 1 taken: a job of 2 cannot start...
    with pytest.raises(AdvreproError, match="no 2 free device slot"):
        devices.acquire(2, timeout=0.2, poll=0.05)
    assert devices.acquire(1, timeout=0.1).slots == [2]  # ...and did not keep slot 2 while it waited
    one.release()
    busy.release()


def test_slots_map_onto_the_inherited_cuda_visible_devices(pool, monkeypatch):
    monkeypatch.setenv(devices.VISIBLE, "3,5")
    a, b = devices.acquire(1), devices.acquire(1)  # N = the 2 inherited devices
    assert (a.visible, b.visible) == ("3", "5")
    assert "device slot 1 (CUDA_VISIBLE_DEVICES=5) of 2" in b.describe()
    assert (pool / "device-5.lock").is_file()
    a.release()
    b.release()


@pytest.mark.parametrize("env, k, message", [
    ({devices.SLOTS_ENV: "1"}, 2, "a job needing 2 devices cannot run on 1 device slot"),
    ({devices.SLOTS_ENV: "two"}, 1, "ADVREPRO_GPU_SLOTS: bad value 'two'"),
    ({devices.SLOTS_ENV: "0"}, 1, "ADVREPRO_GPU_SLOTS: bad value '0'"),
    ({devices.SLOTS_ENV: "4", devices.VISIBLE: "0,1"}, 1, "4 device slots, but CUDA_VISIBLE_DEVICES='0,1' lists 2"),
])
def test_a_slot_count_that_cannot_work_is_one_line(pool, monkeypatch, env, k, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(AdvreproError, match=re.escape(message)):
        devices.acquire(k, timeout=0)


def test_the_snakefile_exports_the_gpu_resource(monkeypatch):
    class Resource:  # Snakemake >= 8 keeps global resources as objects with a value
        value = 3

    monkeypatch.setenv(devices.SLOTS_ENV, "")  # restored (absent, as before) after the test
    monkeypatch.delenv(devices.SLOTS_ENV)
    assert devices.export_slot_count({"_cores": Resource()}) is None and devices.SLOTS_ENV not in os.environ
    assert devices.export_slot_count({"gpu": Resource()}) == 3 and os.environ[devices.SLOTS_ENV] == "3"
    assert devices.export_slot_count({"gpu": 2}) == 2 and os.environ[devices.SLOTS_ENV] == "2"


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 60) -> str:
    deadline = time.monotonic() + seconds
    while not (path.exists() and path.read_text().endswith("\n")):
        assert proc.poll() is None, f"ended early: {proc.returncode}"
        assert time.monotonic() < deadline, f"no {path} after {seconds} s"
        time.sleep(0.02)
    return path.read_text()


def test_a_killed_holder_frees_its_slot_and_its_command_keeps_it_while_alive(pool, tmp_path, monkeypatch):
    """The wrapper's command inherits the lock: killing the wrapper alone (SIGKILL) leaves the slot taken while the
    command still runs on the device; once the command is killed too, the OS has dropped the lock."""
    monkeypatch.setenv(devices.SLOTS_ENV, "1")
    pids, log = tmp_path / "pids", tmp_path / "job.log"
    payload = (f"import os, time; open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{os.getppid()}} "
               "{os.environ[\"CUDA_VISIBLE_DEVICES\"]}\\n'); time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-m", "advrepro.devices", "--gpus", "1", "--log", str(log), "--",
                             sys.executable, "-c", payload], stderr=subprocess.DEVNULL)
    try:
        child, wrapper, visible = _wait_for(pids, proc).split()
        assert int(wrapper) == proc.pid and visible == "0"
        assert slots_in(log) == ([0], "0")
        with pytest.raises(AdvreproError, match="no 1 free device slot"):
            devices.acquire(1, timeout=0.2, poll=0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with pytest.raises(AdvreproError, match="no 1 free device slot"):  # the command is still on the device
            devices.acquire(1, timeout=0.3, poll=0.05)
        os.kill(int(child), signal.SIGKILL)
        assert devices.acquire(1, timeout=10, poll=0.05).slots == [0]
    finally:
        if proc.poll() is None:
            proc.kill()
        if pids.exists():
            try:
                os.kill(int(pids.read_text().split()[0]), signal.SIGKILL)
            except ProcessLookupError:
                pass


# --- a real Snakemake: `--resources gpu=N` --------------------------------------------------------------------------

SNAKEFILE = """\
import sys
from advrepro import devices

devices.export_slot_count(workflow.global_resources)
PY = sys.executable
RUN = ("{PY:q} -m advrepro.devices --gpus {resources.gpu} --log {log:q} -- "
       "{PY:q} ../job.py {wildcards.name} {output:q}")

rule job:
    output: "out/{name}.txt"
    log: "logs/{name}.log"
    resources: gpu=1
    shell: RUN

rule hold:  # started first where both wait
    output: "hold/{name}.txt"
    log: "logs/{name}.log"
    resources: gpu=1
    priority: 1
    shell: RUN
"""

# Each job notes its pid (and its wrapper's) and its device, waits until `wait_for` names started jobs, then
# writes its output, or sleeps until killed when its name starts with "hold".
JOB = """\
import os, sys, time
name, output = sys.argv[1], sys.argv[2]
os.makedirs("started", exist_ok=True)
open(f"started/{name}", "w").write(f"{os.getpid()} {os.getppid()} {os.environ['CUDA_VISIBLE_DEVICES']}\\n")
deadline = time.monotonic() + 120
while not all(os.path.exists(f"started/{other}") for other in os.environ.get("WAIT_FOR", "").split()):
    assert time.monotonic() < deadline, "the other job never started: the jobs did not run at once"
    time.sleep(0.02)
if name.startswith("hold"):
    time.sleep(600)
open(output, "w").write(os.environ["CUDA_VISIBLE_DEVICES"] + "\\n")
"""


def tiny_workflow(tmp_path: Path) -> Path:
    (tmp_path / "job.py").write_text(JOB)
    wf = tmp_path / "wf"
    wf.mkdir()
    (wf / "Snakefile").write_text(SNAKEFILE)
    return wf


def snakemake_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (devices.SLOTS_ENV, devices.VISIBLE, devices.DIR_ENV)}
    return dict(env, PATH=f"{BIN}:{os.environ['PATH']}", **extra)


def test_snakemake_runs_n_gpu_jobs_at_once_each_on_its_own_slot(tmp_path):
    """`--resources gpu=2`: two GPU jobs run at the same time (each waits until the other has started), each with
    its own CUDA_VISIBLE_DEVICES, and each log says which."""
    wf = tiny_workflow(tmp_path)
    proc = subprocess.run([str(BIN / "snakemake"), "out/a.txt", "out/b.txt", "--cores", "2", "--resources", "gpu=2"],
                          cwd=wf, env=snakemake_env(WAIT_FOR="a b"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    used = {name: (wf / f"out/{name}.txt").read_text().strip() for name in "ab"}
    assert sorted(used.values()) == ["0", "1"]
    for name, visible in used.items():
        slots, logged = slots_in(wf / f"logs/{name}.log")
        assert logged == visible and slots == [int(visible)]
        assert f"released device slot {visible}" in (wf / f"logs/{name}.log").read_text()
    assert sorted(p.name for p in (wf / ".cache/gpu-slots").iterdir()) == ["device-0.lock", "device-1.lock"]


def test_snakemake_gives_the_slot_of_a_killed_job_to_the_next(tmp_path):
    """Two slots, two holding jobs and a third queued: SIGKILL one holder (its wrapper and command: nothing runs
    on its way out); Snakemake starts the third, which gets exactly the slot the killed job had, while the other
    holder still has its own."""
    wf = tiny_workflow(tmp_path)
    cmd = [str(BIN / "snakemake"), "hold/hold-a.txt", "hold/hold-b.txt", "out/next.txt", "--cores", "3", "--keep-going",
           "--scheduler", "greedy", "--resources", "gpu=2"]
    proc = subprocess.Popen(cmd, cwd=wf, env=snakemake_env(WAIT_FOR="hold-a hold-b"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        held = {name: _wait_for(wf / "started" / name, proc).split() for name in ("hold-a", "hold-b")}
        assert sorted(h[2] for h in held.values()) == ["0", "1"]
        assert not (wf / "started/next").exists()  # queued by Snakemake: both gpu units are taken
        child, wrapper, killed_slot = held["hold-a"]
        # the wrapper first: the child still waits, so the wrapper is alive and dies by SIGKILL, not on its own
        # way out after its child (which raced here once, under load)
        os.kill(int(wrapper), signal.SIGKILL)
        try:
            os.kill(int(child), signal.SIGKILL)
        except ProcessLookupError:  # gone with its wrapper
            pass
        assert _wait_for(wf / "out/next.txt", proc).strip() == killed_slot
        assert slots_in(wf / "logs/next.log") == ([int(killed_slot)], killed_slot)
        os.kill(int(held["hold-b"][0]), signal.SIGKILL)  # let the run end
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for started in (wf / "started").glob("*"):  # a job left sleeping by a failed assertion
            for pid in started.read_text().split()[:2]:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
    assert proc.returncode != 0 and "hold/hold-a.txt" in err  # the killed jobs failed, the run went on
    assert slots_in(wf / "logs/hold-a.log") == ([int(killed_slot)], killed_slot)


# --- the real rules: GPU jobs of a profile with `device: gpu`, simulated on the CPU ---------------------------------

PROJECT_FILES = ["Snakefile", "workflow", "profiles", "src"]


def new_project(root: Path, raw_params: dict) -> Path:
    root.mkdir(parents=True)
    return make_project(root, raw_params)


def gpu_project(root: Path, raw_params: dict, device: str) -> Path:
    new_project(root, raw_params)
    for rel in PROJECT_FILES:
        (shutil.copytree if (ROOT / rel).is_dir() else shutil.copy)(ROOT / rel, root / rel)
    p = yaml.safe_load((root / "params.yaml").read_text())
    p["device"] = device
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    return root


@pytest.mark.slow  # two dry runs of the whole workflow: about 10 s
def test_gpu_rules_pass_their_gpu_resource_and_cpu_rules_are_unchanged(tmp_path, raw_params):
    """A profile with `device: gpu`: train and evaluate hold `resources.gpu` slots (`--set-resources train:gpu=2`:
    data-parallel training over 2 devices); a CPU profile's commands are those of before (no rerun of old results)."""
    exp = "mnist-ff-alg1"
    targets = [paths.metrics(exp)]
    gpu = gpu_project(tmp_path / "gpu", raw_params, "gpu")
    dry = subprocess.run([str(BIN / "snakemake"), *targets, "-n", "-p", "--cores", "2", "--resources", "gpu=4",
                          "--set-resources", "train:gpu=2"], cwd=gpu, env=snakemake_env(), capture_output=True,
                         text=True)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert f"train {exp} --profile tiny --log {paths.log('train', exp)} --gpus 2\n" in dry.stdout
    assert f"evaluate {exp} --profile tiny --log {paths.log('evaluate', exp)} --gpus 1\n" in dry.stdout
    cpu = gpu_project(tmp_path / "cpu", raw_params, "auto")
    dry = subprocess.run([str(BIN / "snakemake"), *targets, "-n", "-p", "--cores", "2", "--resources", "gpu=1"],
                         cwd=cpu, env=snakemake_env(), capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert f"train {exp} --profile tiny --log {paths.log('train', exp)}\n" in dry.stdout
    assert "--gpus" not in dry.stdout


def test_a_negative_number_of_devices_is_refused(project):
    proc = run_cli(project, "train", "mnist-ff-plain", "--gpus", "-1")
    assert proc.returncode == 2 and "argument --gpus: bad value '-1': a number of devices, 0 or more" in proc.stderr


@pytest.mark.slow
def test_the_train_rule_pins_each_gpu_job_to_a_slot_and_changes_no_result_bytes(tmp_path, raw_params):
    """A GPU profile (`device: gpu`) run on the CPU with `--resources gpu=2`: the two training jobs name their own
    slots in their logs, and their checkpoints have the bytes of the same training without slots."""
    exps = ["mnist-ff-plain", "mnist-ff-alg1"]
    proj = gpu_project(tmp_path / "gpu", raw_params, "gpu")
    dry = subprocess.run([str(BIN / "snakemake"), *map(paths.checkpoint, exps), "-n", "-p", "--cores", "2",
                          "--resources", "gpu=2"], cwd=proj, env=snakemake_env(), capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "--gpus 1" in dry.stdout
    proc = subprocess.run([str(BIN / "snakemake"), *map(paths.checkpoint, exps), "--cores", "2",
                           "--resources", "gpu=2"], cwd=proj, env=snakemake_env(), capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "GPU jobs take device slots from 2 (devices 0..1)" in proc.stderr
    logs = {e: (proj / paths.log("train", e)).read_text() for e in exps}
    used = [slots_in(proj / paths.log("train", e)) for e in exps]
    assert sorted(s for s, _ in used) == [[0], [1]], used  # both started at once: distinct slots
    assert all(v == str(s[0]) for s, v in used)
    for text in logs.values():
        assert text.index("device slot") < text.index("no GPU visible to JAX") < text.index("released device slot")

    plain = new_project(tmp_path / "cpu", raw_params)  # the tiny profile as it is: no GPU jobs, no slots
    for e in exps:
        assert run_cli(plain, "train", e).returncode == 0
        assert digest(proj / paths.checkpoint(e)) == digest(plain / paths.checkpoint(e)), e
        assert digest(proj / paths.history(e)) == digest(plain / paths.history(e)), e
    assert not (plain / devices.DEFAULT_DIR).exists()
