"""The paper: every thesis table and figure of the registry is in main.tex, every reference resolves, and the
committed reference build compiles without LaTeX errors."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from advrepro import paths
from advrepro.experiments import CURVE, FIGURES, SEED_PARTS, SEED_TABLES, TABLES, part_of

from .conftest import ROOT

MAIN = (ROOT / "paper" / "main.tex").read_text()


def test_main_tex_holds_every_table_and_figure_of_the_registry_once():
    inputs = re.findall(r"\\input\{tables/table_([A-Za-z0-9_]+)\.tex\}", MAIN)
    graphics = re.findall(r"\\input\{figures/figure_([A-Z0-9_]+)\.tex\}", MAIN)  # blocks the figure rule writes
    assert sorted(inputs) == sorted([t.id for t in TABLES] + [f"{t.id}_strong" for t in TABLES])  # each beside its
    for t in TABLES:                                                                            # strong companion
        assert f"\\input{{tables/table_{t.id}.tex}}\n\\input{{tables/table_{t.id}_strong.tex}}" in MAIN, t.id
    assert sorted(graphics) == sorted(f.id for f in FIGURES if part_of(f) == "thesis")


@pytest.mark.parametrize("part", SEED_PARTS)
def test_each_seed_part_holds_its_tables_and_figures_once(part):
    text = (ROOT / "paper" / "parts" / f"{part}.tex").read_text()
    inputs = re.findall(r"\\input\{tables/table_([A-Za-z0-9_]+)\.tex\}", text)
    graphics = re.findall(r"\\input\{figures/figure_([A-Z0-9_]+)\.tex\}", text)
    assert sorted(inputs) == sorted(t.id for t in SEED_TABLES if part_of(t) == part)
    # the robustness curves come in through \robustnesscurves (seed_claims.tex: those of the parts a run includes)
    assert sorted(graphics) == sorted(f.id for f in FIGURES if part_of(f) == part and f.kind != CURVE)
    assert ("\\robustnesscurves" in text) == (part == "M2")
    from advrepro.report.seed_claims import PARTS

    assert f"\\{PARTS[part][0]}" in text and "Deviations" in text


def test_every_reference_has_a_label():
    labels = set(re.findall(r"\\label\{([^}]+)\}", MAIN)) | {f"tab:{t.id}" for t in TABLES}  # tables label themselves
    labels |= {f"tab:{t.id}_strong" for t in TABLES}
    labels |= {f"fig:{f.id}" for f in FIGURES}  # and figures
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
        assert f"thesis Table {t.thesis_id.replace('_', '.')})" in text, t.id
    assert text.count("Strong evaluation of Table") == len(TABLES)
    for f in FIGURES:
        assert (ROOT / paths.figure(f.id)).read_bytes().startswith(b"%PDF"), f.id
        if part_of(f) == "thesis":
            assert f"thesis Figure {f.id.replace('_', '.')}" in text, f.id
    for part, title in (("R1", "Seed 001: Robustness of Neural Networks"), ("S3", "Seed 003: Stochastic relaxation")):
        seed = f"seed {part[1]:0>3}"
        assert title in text and f"Claims of {seed}, checked" in text and f"Deviations ({seed})" in text


def test_figure_captions_have_one_source():
    """main.tex holds no caption of a registry figure: the figure rule writes each block from the registry,
    and the committed blocks are what it writes."""
    from advrepro.report.figures import block

    for f in FIGURES:
        assert (ROOT / paths.figure_block(f.id)).read_text() == block(f), f.id
        assert f"\\label{{fig:{f.id}}}" not in MAIN


@pytest.mark.parametrize("profile", ["offline", "thesis"])
def test_every_table_caption_states_the_defence_specs_of_its_scenarios(tmp_path, monkeypatch, profile):
    """Each caption, rendered from a small set of metrics, names exactly the defences its rows were trained
    with (Table A.1: Algorithm 2 with its own K and stepsize), with their epsilon, K and stepsize."""
    from advrepro.defences import DEFENCES
    from advrepro.experiments import SCENARIOS, config, table_columns, table_experiments
    from advrepro.io import write_json
    from advrepro.params import load_params
    from advrepro.report import results, tables

    p = load_params(ROOT / "params.yaml", profile)
    shutil.copytree(ROOT / "paper" / "thesis", tmp_path / "paper" / "thesis")
    monkeypatch.chdir(tmp_path)
    for table in TABLES:
        # the profile's sample count: the report refuses the metrics of another profile
        n = config(p, table.dataset)["evaluation"]["n_samples"]
        n = min(n, results.test_size(p, table.dataset) or n)
        for exp in table_experiments(p, table):
            write_json(paths.metrics(exp.id),
                       {"n_samples": n, "accuracy": {c.key: 0.5 for c in table_columns(p, table)}})
        caption = re.search(r"\\caption\{(.*)\}", tables.render(p, table.id)).group(1)
        stated = re.findall(r"(Algorithm~\d) with \$\\epsilon=([\d.]+)\$, \$K=(\d+)\$, stepsize ([\d.]+)", caption)
        specs = [config(p, table.dataset)[s] for s in dict.fromkeys(SCENARIOS[n].defence_spec for n in table.scenarios)
                 if s]
        expected = [(DEFENCES[r["algorithm"]].label, f"{r['epsilon']:g}", str(r["K"]), f"{r['stepsize']:g}")
                    for r in specs]
        assert stated == expected, (table.id, caption)
        assert f"on the first {n} test" in caption
