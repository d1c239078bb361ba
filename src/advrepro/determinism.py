"""Which result files must be byte-identical between two runs, and the comparison itself
(used by scripts/verify_determinism.py and the end-to-end test)."""
from __future__ import annotations

from pathlib import Path

from .io import sha256

# Every file the pipeline writes that must be byte-identical across runs.
COMPARED = [
    "data/raw/*/SHA256SUMS",        # the synthesized corpora, file by file (SHA-256 of every WAV / image)
    "data/raw/*/corpus.json",
    "data/processed/*.npz",
    "results/checkpoints/*.ckpt",
    "results/history/*.json",
    "results/metrics/*.json",
    "results/examples/*.npz",
    "paper/tables/*.tex",
    "paper/figures/*.pdf",
    "paper/figures/*.tex",          # the figure blocks with their captions
    "paper/generated/*.tex",
    "results/timing/*.json",
]
# Files that hold wall-clock times: compared and reported, never judged.
WALL_CLOCK = {
    "results/timing/": "training wall times",
    "paper/figures/figure_5_25.pdf": "training wall times (Figure 5.25)",
    "paper/generated/timing.tex": "training wall times (timing table)",
    "paper/generated/findings.tex": "holds the claims table, whose training-time claims use wall times",
}


def wall_clock_reason(rel: str) -> str | None:
    return next((why for prefix, why in WALL_CLOCK.items() if rel.startswith(prefix)), None)


def digests(root: Path) -> dict[str, str]:
    """SHA-256 of every compared file under `root`, by path relative to it."""
    return {str(p.relative_to(root)): sha256(p) for pattern in COMPARED for p in sorted(root.glob(pattern))}


def compare(a: Path, b: Path) -> list[tuple[str, str]]:
    """(relative path, verdict) for every compared file of either directory."""
    da, db = digests(a), digests(b)
    out = []
    for rel in sorted(da.keys() | db.keys()):
        if rel not in da or rel not in db:
            verdict = f"MISSING in {a if rel not in da else b}"
        else:
            verdict = "same" if da[rel] == db[rel] else "DIFFERENT"
        why = wall_clock_reason(rel)
        if why and verdict != "same":
            verdict = f"wall-clock ({why})"
        out.append((rel, verdict))
    return out
