"""The other seeds' parts (R1: seed 001, S3: seed 003) end to end at the tiny profile: Snakemake fetches the
real Fashion-MNIST files of the Debian package, trains and evaluates every experiment of both parts, writes
their tables, figures and claims, and their LaTeX compiles; a stochastic model's evaluation is byte-identical
when run again."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from advrepro import paths
from advrepro.data import fmnist
from advrepro.experiments import FIGURES, SEED_TABLES, active, all_experiments
from advrepro.io import read_json

from .conftest import ROOT, run_cli, tiny_params
from .test_workflow import BIN, copy_project, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def seed_project(tmp_path_factory, raw_params) -> tuple[Path, dict]:
    if not Path(fmnist.SYSTEM_DIR).is_dir():
        pytest.skip(f"{fmnist.SYSTEM_DIR} missing: scripts/system-deps.sh installs dataset-fashion-mnist")
    params = tiny_params(raw_params)
    params["seed_parts"] = ["R1", "S3"]
    proj = copy_project(tmp_path_factory.mktemp("seeds") / "proj", params)
    targets = ([paths.table(t.id) for t in SEED_TABLES] + [paths.SEED_CLAIMS]
               + [paths.figure(f.id) for f in active(params, FIGURES) if f.id[:2] in ("R1", "S3")])
    run([str(BIN / "snakemake"), "--cores", "2", "--resources", "gpu=1", *targets], proj, timeout=1800)
    return proj, params


def test_every_seed_experiment_ran_and_robust_never_exceeds_natural(seed_project):
    proj, params = seed_project
    seeds = [e for e in all_experiments(params) if e.dataset.startswith("fmnist-")]
    assert len(seeds) == 8 + 16
    for exp in seeds:
        acc = read_json(proj / paths.metrics(exp.id))["accuracy"]
        assert all(v <= acc["plain"] for v in acc.values()), exp.id


def test_the_seed_tables_print_the_seeds_numbers_beside_ours(seed_project):
    proj, _ = seed_project
    r1 = (proj / paths.table("R1_1")).read_text()
    assert "\\thesis{63.7}" in r1 and "\\thesis{68.8}" not in r1  # Table 1's plain natural, not Table 2's
    assert "CNN stochastic LWTA &" in r1 and "Worst 8/255" in r1
    assert "\\thesis{114.6}" in (proj / paths.table("R1_2")).read_text()  # the seed's summed PGD accuracies
    s3 = (proj / paths.table("S3_1")).read_text()
    assert "\\thesis{80.0}" in s3 and "ILCM" in s3 and "MF" in s3        # Figure 5.3's deterministic at 1e-3
    assert "\\thesis{90.0}" in (proj / paths.table("S3_2")).read_text()   # Figure 5.6's dashed baseline


def test_the_claims_have_verdicts_and_the_parts_compile(seed_project):
    proj, _ = seed_project
    claims = (proj / paths.SEED_CLAIMS).read_text()
    assert "\\newcommand{\\claimsRone}" in claims and "\\newcommand{\\claimsSthree}" in claims
    assert claims.count("reproduced") >= 12
    assert "\\input{parts/R1}\\input{parts/S3}" in claims
    # The parts' text with every generated table, figure and claims table, in the paper's preamble.
    preamble = (ROOT / "paper/main.tex").read_text().split("\\input{generated/findings.tex}")[0]
    (proj / "paper/seeds.tex").write_text(preamble + "\\input{generated/seed_claims.tex}\n\\begin{document}\n"
                                          "\\seedparts\n\\end{document}\n")
    if shutil.which("latexmk") is None:
        pytest.skip("latexmk missing: scripts/system-deps.sh installs it")
    proc = subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "seeds.tex"],
                          cwd=proj / "paper", capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    log = (proj / "paper/seeds.log").read_text(errors="replace")
    assert not re.search(r"Reference .* undefined|Undefined control sequence", log)


def test_a_stochastic_models_evaluation_is_byte_identical_run_again(seed_project):
    proj, _ = seed_project
    exp = "fmnist-s3-cnn-add-gauss-0.05"
    before = {p: (proj / p).read_bytes() for p in (paths.metrics(exp), paths.examples(exp))}
    proc = run_cli(proj, "evaluate", exp)
    assert proc.returncode == 0, proc.stderr
    for p, data in before.items():
        assert (proj / p).read_bytes() == data, p
