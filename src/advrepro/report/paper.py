"""Build paper/main.pdf with latexmk in a scratch directory; the PDF lands atomically."""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from ..errors import PaperError
from ..io import atomic_path

log = logging.getLogger(__name__)


def build(paper_dir: Path, main: str = "main.tex") -> Path:
    if shutil.which("latexmk") is None or shutil.which("pdflatex") is None:
        raise PaperError("latexmk/pdflatex not found: run `bash scripts/system-deps.sh` (Debian: apt-get install "
                         "latexmk texlive-latex-recommended)")
    build_dir = paper_dir / ".build"
    cmd = ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", f"-outdir={build_dir.name}", main]
    log.info("%s (in %s)", " ".join(cmd), paper_dir)
    # A fixed SOURCE_DATE_EPOCH makes pdfTeX's timestamps and document ID reproducible.
    env = dict(os.environ, SOURCE_DATE_EPOCH="946684800", FORCE_SOURCE_DATE="1")
    proc = subprocess.run(cmd, cwd=paper_dir, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-30:])
        raise PaperError(f"{paper_dir / main}: LaTeX failed (see {build_dir}/main.log):\n{tail}")
    target = paper_dir / Path(main).with_suffix(".pdf").name
    with atomic_path(target) as tmp:
        shutil.copyfile(build_dir / target.name, tmp)
    log.info("wrote %s", target)
    return target
