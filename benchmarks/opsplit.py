"""Where a compiled JAX step spends its time on the CPU: JAX's profiler records every operation XLA's CPU runtime
runs (a fusion, a product, a copy), and this sums their durations by kind.

    split = op_time_split(lambda: compiled(*args), calls=3)   # {kind: share of the ops' time}

The kinds, from the names XLA gives its operations (a fusion is named after the ops it fuses):
- products: matrix products and convolutions (`dot`, `ynn_fusion`: XLA hands them to its YNNPACK kernels), with
  the elementwise ops XLA fused into them;
- layout: transposes and copies that only move data (`copy`, `transpose_...`, `..._copy_...` fusions);
- scan: the stacking and slicing of a scan's per-step values (`dynamic-update-slice`, `dynamic-slice`,
  `concatenate`): what a recurrent model's backward pass reads back;
- fft: FFTs;
- other: elementwise arithmetic, reductions, and the rest.
The shares are of the summed durations of the operations; benchmarks/peer.py multiplies them by the step's
measured time. A benchmark's breakdown, not a test: the names are XLA's and may change between versions.
"""
from __future__ import annotations

import glob
import re
import tempfile
from collections import Counter

KINDS = ("products", "layout", "scan", "fft", "other")


def kind_of(op: str) -> str:
    """The kind of one XLA CPU operation from its name (numeric suffix and "end: " prefix stripped)."""
    name = re.sub(r"\.\d+$", "", op.removeprefix("end: "))
    if "dot" in name or name.startswith(("ynn_fusion", "xnn_fusion", "onednn")) or "convolution" in name:
        return "products"
    if "dynamic-update-slice" in name or "dynamic-slice" in name or "concatenate" in name:
        return "scan"
    if "fft" in name:
        return "fft"
    if "transpose" in name or name in ("copy", "wrapped_copy") or name.startswith("copy_") or "_copy" in name:
        return "layout"
    return "other"


def op_time_split(run, calls: int = 3) -> dict[str, float]:
    """{kind: share} of the time XLA's CPU operations take over `calls` calls of `run` (which must block until
    its result is ready); run it once before, so that compilation is not in the trace."""
    import jax
    from jax._src.lib import _profile_data

    with tempfile.TemporaryDirectory(prefix="opsplit-") as trace_dir:
        jax.profiler.start_trace(trace_dir)
        try:
            for _ in range(calls):
                run()
        finally:
            jax.profiler.stop_trace()
        data = _profile_data.ProfileData.from_file(glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True)[0])
        busy = Counter()
        for plane in data.planes:
            if not plane.name.startswith("/host:CPU"):
                continue
            for line in plane.lines:
                if not line.name.startswith("tf_XLA"):  # XLA's runtime threads, not Python's
                    continue
                for event in line.events:
                    if event.name.startswith(("ThunkExecutor", "while")):  # containers of the ops counted
                        continue
                    busy[kind_of(event.name)] += event.duration_ns
    total = sum(busy.values()) or 1
    return {kind: busy[kind] / total for kind in KINDS}
