#!/usr/bin/env python3
"""Regenerate the offline pipeline from fresh clones and compare every result file byte for byte.

    python scripts/verify_determinism.py                 # two fresh clones of HEAD, run both, compare
    python scripts/verify_determinism.py --against .     # one fresh clone, compared with this checkout
    python scripts/verify_determinism.py --compare A B   # compare two existing project directories

Prints one verdict per file: `same`, `DIFFERENT`, `MISSING in <dir>`, or `wall-clock` for the files that
hold measured training times (they differ from run to run by nature and are reported, not judged).
Exits 1 if any other file differs or is missing. A whole offline run takes about 40 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from advrepro.determinism import compare

ROOT = Path(__file__).resolve().parents[1]


def fresh_run(dest: Path, cores: str) -> float:
    """Clone HEAD into `dest` and run the whole offline pipeline there; returns the wall time in seconds."""
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(dest)], check=True)
    env = dict(os.environ, PYTHONPATH=str(dest / "src"))  # the clone's code, not an editable install's
    log = dest / "verify-determinism.log"
    print(f"running the offline pipeline in {dest} (log: {log})", flush=True)
    start = time.monotonic()
    with log.open("w") as f:
        # As `make reproduce` on a fresh clone: the committed metrics are the reference, every run is retrained.
        proc = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "--cores", cores, "--resources",
                               "gpu=1", "--forcerun", "train"], cwd=dest, env=env, stdout=f, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"error: the pipeline failed in {dest} after {seconds:.0f} s; see {log}")
    print(f"  finished in {seconds / 60:.1f} min", flush=True)
    return seconds


def report(rows: list[tuple[str, str]]) -> int:
    for rel, verdict in rows:
        print(f"{verdict:<12} {rel}" if verdict == "same" else f"{verdict}  {rel}")
    bad = [r for r, v in rows if not (v == "same" or v.startswith("wall-clock"))]
    same = sum(v == "same" for _, v in rows)
    clock = sum(v.startswith("wall-clock") for _, v in rows)
    print(f"\n{len(rows)} files: {same} identical, {clock} differ in wall-clock times only, "
          f"{len(bad)} differ or missing")
    return 1 if bad or not rows else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--against", type=Path, metavar="DIR", help="compare one fresh run with this project directory")
    mode.add_argument("--compare", type=Path, nargs=2, metavar=("A", "B"), help="only compare two existing runs")
    ap.add_argument("--workdir", type=Path, help="where the clones go (default: a new temporary directory, kept)")
    ap.add_argument("--cores", default="all")
    args = ap.parse_args(argv)

    if args.compare:
        return report(compare(*args.compare))
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    if dirty:
        print("note: uncommitted changes are not in the clones; HEAD is what runs", file=sys.stderr)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="advrepro-determinism-"))
    work.mkdir(parents=True, exist_ok=True)
    first = work / "run-1"
    fresh_run(first, args.cores)
    if args.against:
        other = args.against.resolve()
    else:
        other = work / "run-2"
        fresh_run(other, args.cores)
    return report(compare(first, other))


if __name__ == "__main__":
    sys.exit(main())
