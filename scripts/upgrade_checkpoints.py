"""Rewrite format-1 advrepro checkpoints as format 2, byte for byte as training with this version writes them
(the same body, the header now covered by the checksum), so that dvc.lock can be regenerated without
retraining. Each file's old body checksum is verified first; files already in format 2 are left alone.

    python scripts/upgrade_checkpoints.py                       # results/checkpoints/*.ckpt
    python scripts/upgrade_checkpoints.py results/state/*.ckpt  # or the files named
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from advrepro import checkpoint
from advrepro.io import write_bytes

OLD_MAGIC = b"ADVREPRO-CHECKPOINT 1\n"


def upgrade(path: Path) -> bool:
    """True if `path` was rewritten; raises ValueError for a damaged or foreign file."""
    blob = path.read_bytes()
    if blob.startswith(checkpoint.MAGIC):
        return False
    if not blob.startswith(OLD_MAGIC):
        raise ValueError(f"{path}: not an advrepro checkpoint of format 1")
    line, _, body = blob[len(OLD_MAGIC):].partition(b"\n")
    header = json.loads(line)
    if not isinstance(header, dict) or header.pop("sha256", None) != hashlib.sha256(body).hexdigest():
        raise ValueError(f"{path}: body does not match its checksum (truncated or corrupt); retrain it")
    write_bytes(path, checkpoint.encode(header, body))
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", type=Path, help="checkpoints (default: results/checkpoints/*.ckpt)")
    args = parser.parse_args(argv)
    files = args.files or sorted(Path("results/checkpoints").glob("*.ckpt"))
    failed = 0
    for path in files:
        try:
            print(f"{path}: {'upgraded' if upgrade(path) else 'already format 2'}")
        except (OSError, ValueError) as exc:  # JSONDecodeError is a ValueError
            print(f"error: {path}: {exc}" if isinstance(exc, json.JSONDecodeError) else f"error: {exc}",
                  file=sys.stderr)
            failed += 1
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
