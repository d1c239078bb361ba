"""The paper: every thesis table and figure of the registry is in main.tex, every reference resolves, and the
committed reference build compiles without LaTeX errors."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from advrepro import paths
from advrepro.experiments import FIGURES, TABLES

from .conftest import ROOT

MAIN = (ROOT / "paper" / "main.tex").read_text()


def test_main_tex_holds_every_table_and_figure_of_the_registry_once():
    inputs = re.findall(r"\\input\{tables/table_([A-Z0-9_]+)\.tex\}", MAIN)
    graphics = re.findall(r"\\includegraphics(?:\[[^\]]*\])?\{figures/figure_([A-Z0-9_]+)\.pdf\}", MAIN)
    assert sorted(inputs) == sorted(t.id for t in TABLES)
    assert sorted(graphics) == sorted(f.id for f in FIGURES)


def test_every_reference_has_a_label():
    labels = set(re.findall(r"\\label\{([^}]+)\}", MAIN)) | {f"tab:{t.id}" for t in TABLES}  # tables label themselves
    refs = set(re.findall(r"\\ref\{([^}]+)\}", MAIN))
    assert refs and refs <= labels, sorted(refs - labels)


@pytest.mark.skipif(shutil.which("latexmk") is None or shutil.which("pdftotext") is None,
                    reason="needs latexmk and pdftotext (scripts/system-deps.sh)")
def test_the_committed_reference_paper_compiles_with_every_table_and_figure(tmp_path):
    paper = tmp_path / "paper"
    shutil.copytree(ROOT / "paper", paper, ignore=shutil.ignore_patterns(".build", "main.pdf"))
    proc = subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-outdir=.build",
                           "main.tex"], cwd=paper, capture_output=True, text=True, timeout=300)
    log = (paper / ".build" / "main.log").read_text(errors="replace")
    assert proc.returncode == 0, log[-3000:]
    assert "LaTeX Error" not in log and "undefined" not in log.lower().replace("undefined control", "")
    text = " ".join(subprocess.run(["pdftotext", str(paper / ".build" / "main.pdf"), "-"], capture_output=True,
                                   text=True).stdout.split())
    assert "??" not in text
    for t in TABLES:
        assert f"thesis Table {t.id.replace('_', '.')})" in text, t.id
    for f in FIGURES:
        assert (ROOT / paths.figure(f.id)).read_bytes().startswith(b"%PDF"), f.id
