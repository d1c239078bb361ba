"""A real single-node SLURM cluster on localhost for the tests: Debian's munged, slurmctld and slurmd, configured in
a folder of their own (nothing under /etc is read or written) and run in the foreground as children of the test, so
that stopping the cluster is terminating those three processes.

The node claims what the profile's jobs ask for (`SlurmdParameters=config_overrides`: CPUs, memory and GPUs come
from slurm.conf, not from the hardware), and its GPU is only counted (no device file is bound). Nothing enforces
the limits (no cgroups: `proctrack/linuxproc`, `task/none`), and there is no accounting database
(`accounting_storage/none`), so `sacct` and `sacctmgr` fail, as on a cluster without slurmdbd.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "squeue", "sinfo", "scontrol")
NODE = "localhost"


def unavailable() -> str | None:
    """Why no cluster can be started here; None where one can."""
    absent = [tool for tool in DAEMONS + CLIENTS if shutil.which(tool) is None]
    if absent:
        return (f"no SLURM here ({', '.join(absent)} not found): Debian's slurmctld, slurmd, slurm-client and munge "
                "(`bash scripts/system-deps.sh --test` installs them)")
    if os.geteuid() != 0:
        return "starting munged, slurmctld and slurmd on localhost needs root"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    root: Path             # short: munged's and slurmd's sockets live here (a socket path has at most 107 bytes)
    partitions: tuple[str, ...]
    cpus: int
    memory_mb: int
    gpus: int = 1
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """The environment in which sbatch, squeue, ... (and Snakemake with its jobs) use this cluster."""
        return dict(os.environ, SLURM_CONF=str(self.conf), PATH=f"{self.root / 'bin'}:{os.environ['PATH']}")

    def write_config(self) -> None:
        r = self.root
        for sub in ("munge", "state", "spool", "bin"):
            (r / sub).mkdir(mode=0o700)
        key = r / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        lines = [
            "ClusterName=advrepro-test",
            f"SlurmctldHost={NODE}",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={r / 'munge' / 'socket'}",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={r / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'slurmd.pid'}",
            f"SlurmctldLogFile={r / 'slurmctld.log'}",
            f"SlurmdLogFile={r / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "MailProg=/bin/true",
            "ReturnToService=2",
            "SlurmdParameters=config_overrides",
            "MinJobAge=300",  # a finished job stays visible to `squeue --states=all` (the status command) for 5 min
            "GresTypes=gpu",
            f"NodeName={NODE} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} Gres=gpu:{self.gpus} "
            "State=UNKNOWN",
        ]
        for i, name in enumerate(self.partitions):
            lines.append(f"PartitionName={name} Nodes={NODE} MaxTime=INFINITE State=UP" + (" Default=YES" * (i == 0)))
        self.conf.write_text("\n".join(lines) + "\n")
        (r / "gres.conf").write_text(f"NodeName={NODE} Name=gpu File=/dev/null Count={self.gpus}\n")
        # snakemake-executor-plugin-slurm-jobstep (0.6.1) removes every SLURM_* variable, SLURM_CONF included,
        # before the `srun` that runs a job's command inside its allocation (the plugin's issue 164). On a cluster
        # that srun reads /etc/slurm/slurm.conf; this one leaves /etc alone, so an `srun` first on the jobs' PATH
        # (sbatch --export=ALL) puts the variable back and runs the real srun.
        srun = r / "bin" / "srun"
        srun.write_text(f"#!/bin/sh\nSLURM_CONF='{self.conf}'; export SLURM_CONF\nexec {shutil.which('srun')} \"$@\"\n")
        srun.chmod(0o755)

    def _spawn(self, name: str, cmd: list[str]) -> None:
        with open(self.root / f"{name}.out", "wb") as out:  # the child keeps its own copy of the descriptor
            self.processes[name] = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                                    stdin=subprocess.DEVNULL)

    def _wait(self, what: str, ready, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited ({proc.returncode}) while waiting for {what}:\n{self.report()}")
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}:\n{self.report()}")

    def run(self, *cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=30)

    def start(self) -> None:
        self.write_config()
        m = self.root / "munge"
        self._spawn("munged", ["munged", "--foreground", "--force", f"--socket={m / 'socket'}",
                               f"--key-file={m / 'munge.key'}", f"--log-file={m / 'munged.log'}",
                               f"--pid-file={m / 'munged.pid'}", f"--seed-file={m / 'munged.seed'}"])
        self._wait("munged's socket", lambda: (m / "socket").exists())
        self._spawn("slurmctld", ["slurmctld", "-D", "-f", str(self.conf)])
        self._wait("slurmctld to answer", lambda: "UP" in self.run("scontrol", "ping").stdout)
        self._spawn("slurmd", ["slurmd", "-D", "-N", NODE, "-f", str(self.conf)])
        self._wait("the node to be idle", lambda: set(self.run("sinfo", "-h", "-o", "%t").stdout.split()) == {"idle"})

    def stop(self) -> None:
        """Cancel the jobs still queued or running (a failed test's), then terminate the daemons this cluster
        started, each by its own process, slurmd first."""
        if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
            if self.run("scancel", "--user=root").returncode == 0:
                with contextlib.suppress(RuntimeError):
                    self._wait("the jobs to end", lambda: not self.run("squeue", "-h", "--states=RUNNING,PENDING,"
                                                                      "COMPLETING").stdout.strip(), timeout=30)
        for name in reversed(list(self.processes)):
            proc = self.processes.pop(name)
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def report(self) -> str:
        """The end of each daemon's output, for a failure's message."""
        return "\n".join(f"--- {name}:\n{(self.root / f'{name}.out').read_text(errors='replace')[-2500:]}"
                         for name in DAEMONS if (self.root / f"{name}.out").exists())

    def jobs(self) -> list[dict[str, str]]:
        """Every job the controller still knows (finished ones for MinJobAge), oldest first: id, state,
        partition, comment (Snakemake writes the rule and wildcards there), memory, time limit, CPUs and the
        TRES asked for (`gres:gpu:1`, or N/A)."""
        fields = {"id": "JobID", "state": "State", "partition": "Partition", "comment": "Comment",
                  "memory": "MinMemory", "time_limit": "TimeLimit", "cpus": "NumCPUs", "tres": "tres-per-job"}
        form = ",".join(f"{f}:|" for f in fields.values())  # no padding, each field ended by "|"
        out = self.run("squeue", "--states=all", "--noheader", f"--Format={form}")
        assert out.returncode == 0, out.stderr
        jobs = [dict(zip(fields, line.split("|")[:-1], strict=True)) for line in out.stdout.splitlines()]
        return sorted(jobs, key=lambda job: int(job["id"]))


@contextlib.contextmanager
def running(partitions: tuple[str, ...], cpus: int, memory_mb: int, gpus: int = 1) -> Iterator[Cluster]:
    """A started cluster; stopped, and its folder removed, however the block ends."""
    root = Path(tempfile.mkdtemp(prefix="slurm-", dir="/tmp"))
    cluster = Cluster(root, partitions, cpus, memory_mb, gpus)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
