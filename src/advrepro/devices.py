"""Device slots: which GPUs a job computes on when several jobs share one machine.

`snakemake --resources gpu=N` lets jobs whose `gpu` resources add up to N run at once, but gives them no device
ids: every one would land on GPU 0. This module does: the machine's N devices are N slots, one lock file each
(`.cache/gpu-slots/device-<id>.lock`). A job needing K devices takes K free slots with a non-blocking
`fcntl.flock` on each, exports CUDA_VISIBLE_DEVICES=<their device ids> before JAX starts, says so in its log,
and holds the locks until it ends. The OS drops a flock when the last descriptor of its file closes, so a job
that dies, even by SIGKILL, frees its slots at once: there is no stale pid file to clean up.

    N   ADVREPRO_GPU_SLOTS (the Snakefile exports `--resources gpu=N`: `export_slot_count`), else the number of
        devices in the CUDA_VISIBLE_DEVICES the run was started with, else K
    slot k -> device: the k-th entry of that inherited CUDA_VISIBLE_DEVICES, else k itself
    directory: ADVREPRO_GPU_SLOT_DIR, else .cache/gpu-slots under the working directory (the project root)

`python -m advrepro.devices --gpus K [--log FILE] -- COMMAND ...` runs any command on K slots (the command
inherits the locks: the slots stay taken while it lives, even if this wrapper is killed); `advrepro train` and
`advrepro evaluate` take theirs in-process with `--gpus K` (`held`). Nothing here imports JAX.
"""
from __future__ import annotations

import argparse
import fcntl
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .errors import AdvreproError

log = logging.getLogger(__name__)

SLOTS_ENV = "ADVREPRO_GPU_SLOTS"
DIR_ENV = "ADVREPRO_GPU_SLOT_DIR"
DEFAULT_DIR = ".cache/gpu-slots"
VISIBLE = "CUDA_VISIBLE_DEVICES"


def export_slot_count(global_resources) -> int | None:
    """In the Snakefile: export `--resources gpu=N` to the jobs as ADVREPRO_GPU_SLOTS (the jobs do not see
    Snakemake's global resources). Returns N, or None where the run gave no `gpu` resource."""
    resource = global_resources.get("gpu")
    value = getattr(resource, "value", resource)  # Snakemake >= 8: a Resource object
    if isinstance(value, int) and not isinstance(value, bool):
        os.environ[SLOTS_ENV] = str(value)
        return value
    return None


def workflow_note() -> str:
    """One line for the start of a run with GPU jobs: the slots they will share, or why there is one."""
    try:
        devices = slot_devices(1)
    except AdvreproError as exc:
        return f"advrepro: device slots: {exc}"
    where = f"{VISIBLE}={','.join(devices)}" if inherited_devices() is not None else f"devices 0..{len(devices) - 1}"
    note = (f"advrepro: GPU jobs take device slots from {len(devices)} ({where}) in {slot_dir()}; each job's log "
            "names its own")
    if os.environ.get(SLOTS_ENV) is None and inherited_devices() is None:
        note += "; without `--resources gpu=N` they wait for device 0 one by one"
    return note


def inherited_devices() -> list[str] | None:
    """The device ids of the CUDA_VISIBLE_DEVICES this process was started with (None: unset)."""
    value = os.environ.get(VISIBLE)
    if value is None:
        return None
    return [d.strip() for d in value.split(",") if d.strip()]


def slot_devices(k: int) -> list[str]:
    """The device id of every slot: the inherited CUDA_VISIBLE_DEVICES, in order, or 0..N-1."""
    inherited = inherited_devices()
    raw = os.environ.get(SLOTS_ENV)
    if raw is not None:
        try:
            n = int(raw)
        except ValueError:
            raise AdvreproError(f"{SLOTS_ENV}: bad value {raw!r}: expected the number of devices, e.g. 2") from None
        if n < 1:
            raise AdvreproError(f"{SLOTS_ENV}: bad value {raw!r}: a job needing {k} device(s) needs at least "
                                f"{k} slot(s) (snakemake --resources gpu=N with N >= {k})")
    else:
        n = len(inherited) if inherited is not None else k
    if k > n:
        raise AdvreproError(f"a job needing {k} devices cannot run on {n} device slot(s) ({SLOTS_ENV} or "
                            f"`--resources gpu={n}`)")
    if inherited is None:
        return [str(i) for i in range(n)]
    if len(inherited) < n:
        raise AdvreproError(f"{n} device slots, but {VISIBLE}={os.environ[VISIBLE]!r} lists {len(inherited)} "
                            f"device(s): give `--resources gpu={len(inherited)}` or list more devices")
    return inherited[:n]


@dataclass
class Held:
    """K slots taken by this process: their indices, device ids and open, locked files."""
    slots: list[int]
    devices: list[str]
    directory: Path
    n_slots: int
    files: list = field(default_factory=list, repr=False)

    @property
    def count(self) -> int:
        return len(self.slots)

    @property
    def visible(self) -> str:
        return ",".join(self.devices)

    def describe(self) -> str:
        """The log line: `device slot 1 (CUDA_VISIBLE_DEVICES=1) of 2 in .cache/gpu-slots`."""
        s = "s" if self.count > 1 else ""
        return (f"device slot{s} {', '.join(map(str, self.slots))} ({VISIBLE}={self.visible}) of {self.n_slots} "
                f"in {self.directory}")

    def fds(self) -> list[int]:
        return [f.fileno() for f in self.files]

    def release(self) -> None:
        for f in self.files:
            f.close()  # closing the last descriptor drops the flock
        self.files = []


def slot_dir() -> Path:
    return Path(os.environ.get(DIR_ENV) or DEFAULT_DIR)


def _lock_path(directory: Path, device: str) -> Path:
    return directory / f"device-{device}.lock"


def _try_lock(path: Path):
    """The open file, locked by this process; None if another holds it."""
    f = open(path, "a+")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    return f


def _holders(directory: Path, devices: list[str]) -> str:
    """Who holds each slot, from what the holders wrote into the lock files (read only for the message)."""
    notes = []
    for k, dev in enumerate(devices):
        try:
            text = _lock_path(directory, dev).read_text().strip()
        except OSError:
            text = ""
        notes.append(f"slot {k}: {text or '?'}")
    return "; ".join(notes)


def acquire(k: int, *, what: str = "", directory: Path | None = None, poll: float = 0.5,
            timeout: float | None = None) -> Held:
    """Take K free slots; wait (polling) while fewer are free. Never holds some while waiting for others, so two
    jobs cannot block each other. `timeout` (seconds; None: wait for ever) ends in an AdvreproError."""
    if k < 1:
        raise AdvreproError(f"--gpus: bad value {k}: a job holding device slots needs at least one")
    devices = slot_devices(k)
    directory = Path(directory) if directory is not None else slot_dir()
    directory.mkdir(parents=True, exist_ok=True)
    start, said = time.monotonic(), False
    while True:
        taken: list[tuple[int, object]] = []
        for slot, dev in enumerate(devices):
            f = _try_lock(_lock_path(directory, dev))
            if f is not None:
                taken.append((slot, f))
                if len(taken) == k:
                    break
        if len(taken) == k:
            for _, f in taken:  # who holds it, for a waiting job's message; meaningful only while locked
                f.seek(0)
                f.truncate()
                f.write(f"pid {os.getpid()}{' ' + what if what else ''}, since {time.strftime('%H:%M:%S')}\n")
                f.flush()
            slots = [s for s, _ in taken]
            return Held(slots, [devices[s] for s in slots], directory, len(devices), [f for _, f in taken])
        for _, f in taken:
            f.close()
        if timeout is not None and time.monotonic() - start >= timeout:
            raise AdvreproError(f"no {k} free device slot(s) of {len(devices)} in {directory} after {timeout:g} s "
                                f"({_holders(directory, devices)})")
        if not said:
            log.info("waiting for %d free device slot(s) of %d in %s (%s)", k, len(devices), directory,
                     _holders(directory, devices))
            said = True
        time.sleep(poll)


@contextmanager
def held(gpus: int, what: str = "") -> Iterator[Held | None]:
    """For `advrepro train/evaluate --gpus K`, before JAX is imported: take K slots, point CUDA_VISIBLE_DEVICES at
    their devices, log which, and release them at the end. K = 0: nothing (None), as on the CPU profiles."""
    if not gpus:
        yield None
        return
    if "jax" in sys.modules:  # JAX reads CUDA_VISIBLE_DEVICES when it starts its GPU backend
        log.warning("JAX was imported before the device slots were taken: %s may not apply", VISIBLE)
    h = acquire(gpus, what=what)
    os.environ[VISIBLE] = h.visible
    log.info("%s", h.describe())
    try:
        yield h
    finally:
        h.release()
        log.info("released device slot%s %s", "s" if h.count > 1 else "", ", ".join(map(str, h.slots)))


def main(argv: list[str] | None = None) -> int:
    """python -m advrepro.devices --gpus K [--log FILE] -- COMMAND ...: COMMAND on K device slots."""
    ap = argparse.ArgumentParser(prog="python -m advrepro.devices", description=main.__doc__)
    ap.add_argument("--gpus", type=int, default=1, help="device slots to hold (default 1)")
    ap.add_argument("--log", help="append the slot lines to this file (the job's log)")
    ap.add_argument("--what", default="", help="a note for the lock file (who holds the slot)")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ...")
    args = ap.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("no command given (after --)")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if args.log:
        Path(args.log).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(args.log, mode="a"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        h = acquire(args.gpus, what=args.what or " ".join(command)[:80])
    except AdvreproError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log.info("%s", h.describe())
    try:
        # The command inherits the locked descriptors: its slots stay taken while it runs, even if this
        # wrapper dies first, and are freed when both are gone.
        proc = subprocess.run(command, env=dict(os.environ, **{VISIBLE: h.visible}), pass_fds=h.fds())
    finally:
        h.release()
    log.info("released device slot%s %s", "s" if h.count > 1 else "", ", ".join(map(str, h.slots)))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
