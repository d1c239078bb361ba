"""Process set-up before JAX is imported: device, threads, determinism, compile cache."""
from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def configure(device: str = "auto", cache_dir: str = ".cache/jax") -> None:
    """Call before the first `import jax`.

    CPU: Eigen's own thread pool off (threaded reductions may split work differently from run to run), and
    Snakemake runs jobs side by side. XLA's compiler still splits work for as many threads as the process's CPU
    affinity allows, and the split changes the last bits: results are byte-identical for one CPU count (the
    reference: 2), not across counts (README, "Determinism across CPU models"). The `intra_op_parallelism_threads`
    entry is not an XLA flag and changes nothing; it stays so that the reference's compile environment is unchanged.
    GPU: XLA's deterministic-ops flag, so reductions (scatter, conv backward) do not depend on
    thread scheduling.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    extra = ["--xla_cpu_multi_thread_eigen=false", "intra_op_parallelism_threads=1",
             "--xla_gpu_deterministic_ops=true"]
    os.environ["XLA_FLAGS"] = " ".join([flags] + [f for f in extra if f.split("=")[0] not in flags]).strip()
    if device == "cpu":
        os.environ["JAX_PLATFORMS"] = "cpu"
    _keep_freed_memory()
    if cache_dir:
        os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.abspath(cache_dir))
        # Every executable, however quick to compile: the short offline jobs start a fresh process each
        # and would otherwise recompile the small functions (the attacks, the test pass) every time.
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


def _keep_freed_memory() -> None:
    """glibc only: serve large buffers from the heap and keep freed memory (up to 1 GiB) for reuse.

    XLA's CPU runtime allocates and frees its temporaries on every call; glibc serves each one over
    128 KiB with a fresh mmap, whose pages the kernel must zero and fault in again on every call. For the
    sequence models' robust step (the B x C copies through a scan, forward and backward) that page traffic
    was a fifth (LSTM, S4) to two fifths (GRU) of the step at the offline sizes. Allocation only: results are
    byte-identical (tests/test_train.py). ADVREPRO_KEEP_FREED_MEMORY=0 opts out (benchmarks/peer.py, run
    both ways, measures the difference).
    """
    if os.environ.get("ADVREPRO_KEEP_FREED_MEMORY", "1") == "0":
        return
    import ctypes
    import ctypes.util

    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):  # no C library found, or one without mallopt (musl, macOS)
        return
    m_trim_threshold, m_mmap_max = -1, -4  # malloc.h
    mallopt(m_mmap_max, 0)
    mallopt(m_trim_threshold, 1 << 30)


def report_device(device: str) -> str:
    """Log the device JAX uses; say once if a GPU was asked for and none is there."""
    import jax

    backend = jax.default_backend()
    if device == "gpu" and backend != "gpu":
        log.warning("no GPU visible to JAX: running on the CPU (%s)", jax.devices()[0].device_kind)
    else:
        log.info("JAX backend: %s (%s)", backend, jax.devices()[0].device_kind)
    return backend


def workflow_note(device: str) -> str:
    """One line for the start of a workflow run: where the jobs will compute. `--resources gpu=1`
    only queues jobs; on a machine without a GPU they run on the CPU, and this says so once.
    This runs in the Snakemake process, which lives as long as the run: its JAX must not preallocate 75 % of
    every GPU's memory, which the jobs need (the variable is read when the backend starts, then put back, so
    that the jobs, started later from this process's environment, preallocate on their own device as usual)."""
    before = os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE")
    os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    try:
        import jax

        backend = jax.default_backend()
    finally:
        if before is None:
            del os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"]
        else:
            os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = before
    if backend == "gpu":
        return f"advrepro: training and attacks run on the GPU ({jax.devices()[0].device_kind})"
    asked = " (params.yaml asks for device: gpu)" if device == "gpu" else ""
    return (f"advrepro: no GPU visible to JAX{asked}: every job runs on the CPU ({machine()['cpu']}, "
            f"{os.cpu_count()} cores); `--resources gpu=N` changes nothing here")


def machine() -> dict:
    """What the training times come from: CPU model, cores, and the accelerator JAX runs on."""
    import platform

    import jax

    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    device = jax.devices()[0]
    gpu = device.device_kind if device.platform == "gpu" else None
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu}
