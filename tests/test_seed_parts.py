"""The other seeds' parts (R1: seed 001, M2: seed 002, S3: seed 003) end to end at the tiny profile: Snakemake
fetches the real Fashion-MNIST files of the Debian package, trains and evaluates the five experiments behind Table
R1.2 (the LWTA network) and Table S3.1 (seed 003's curves), runs seed 002's model and logistic regression, and
writes those tables and figures; a stochastic model's evaluation is byte-identical when run again. Every seed
table, figure and claim is rendered and compiled from synthetic results in test_seed_report.py (a full tiny run
of the 24 experiments is mostly compile time: about 20 minutes on 2 cores)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from advrepro import paths
from advrepro.data import fmnist
from advrepro.experiments import S3_CURVES
from advrepro.io import read_json

from .conftest import run_cli, tiny_params
from .test_workflow import BIN, copy_project, run

pytestmark = pytest.mark.slow
FIGURES_RUN = ("R1_3", "S3_4_2", "S3_4_3", "S3_4_4", "S3_4_5", "S3_5_3", "S3_5_4", "S3_5_5",  # their experiments'
               "M2_2", "M2_6")


@pytest.fixture(scope="module")
def seed_project(tmp_path_factory, raw_params, npm_tarball) -> tuple[Path, dict]:
    if not Path(fmnist.SYSTEM_DIR).is_dir():
        pytest.skip(f"{fmnist.SYSTEM_DIR} missing: scripts/system-deps.sh installs dataset-fashion-mnist")
    params = tiny_params(raw_params)
    params["seed_parts"] = ["R1", "M2", "S3"]
    proj = copy_project(tmp_path_factory.mktemp("seeds") / "proj", params)
    (proj / paths.raw_dir("mnist")).mkdir(parents=True)
    shutil.copy(npm_tarball, proj / paths.raw_dir("mnist"))  # the logistic regression's digits
    targets = ([paths.table("R1_2"), paths.table("S3_1"), paths.table("M2_1"), paths.table("M2_2")]
               + [paths.figure(f) for f in FIGURES_RUN])
    # the targets before --resources, which takes any number of values
    run([str(BIN / "snakemake"), *targets, "--cores", "2", "--resources", "gpu=1"], proj, timeout=1800)
    return proj, params


def test_the_seed_experiments_ran_and_robust_never_exceeds_natural(seed_project):
    proj, _ = seed_project
    ran = sorted(p.stem for p in (proj / "results/metrics").glob("fmnist-*.json"))
    assert ran == sorted(["fmnist-r1-cnn-lwta-pgd"] + [f"fmnist-s3-cnn-{s}" for s in S3_CURVES])
    for exp in ran:
        m = read_json(proj / paths.metrics(exp))
        assert all(v <= m["accuracy"]["plain"] for v in m["accuracy"].values()), exp
        found = m["strong"]["found"]["0.1" if "-s3-" in exp else "0.0627"]
        assert ("eot_pgd" in found) == (exp.endswith(("-lwta-pgd", "-0.05"))), exp  # EOT for the noisy ones only
    for fig in FIGURES_RUN:
        assert (proj / paths.figure(fig)).read_bytes().startswith(b"%PDF"), fig


def test_the_seed_tables_print_the_seeds_numbers_beside_ours(seed_project):
    proj, _ = seed_project
    r1 = (proj / paths.table("R1_2")).read_text()
    assert "\\thesis{114.6}" in r1 and "CNN stochastic LWTA &" in r1  # the seed's summed PGD accuracies
    s3 = (proj / paths.table("S3_1")).read_text()
    assert "\\thesis{81.7}" in s3 and "deterministic + adversarial &" in s3  # Figure 5.5's deterministic, p=0.1


def test_a_stochastic_models_evaluation_is_byte_identical_run_again(seed_project):
    proj, _ = seed_project
    exp = "fmnist-s3-cnn-add-gauss-0.05"
    before = {p: (proj / p).read_bytes() for p in (paths.metrics(exp), paths.examples(exp))}
    proc = run_cli(proj, "evaluate", exp)
    assert proc.returncode == 0, proc.stderr
    for p, data in before.items():
        assert (proj / p).read_bytes() == data, p


def test_seed_002s_model_ran_and_its_simulation_follows_the_ode(seed_project):
    proj, params = seed_project
    runs = sorted(p.stem for p in (proj / "results/theory").glob("s*.json"))
    assert runs == ["s1-at", "s1-plain", "s2-at", "s2-plain"]
    for name in runs:
        end = read_json(proj / paths.theory(name))["end"]
        assert abs(end["simulation"]["R"] - end["ode"]["R"]) < 0.1, name
    summary = read_json(proj / paths.LOGISTIC[0])
    assert summary["n_test"] > 0 and summary["test_error"][0] < summary["test_error"][-1]
    table = (proj / paths.table("M2_1")).read_text()
    assert "fixed point & $\\infty$ & 0.9908 & $-$1.4697" in table  # scenario 2, adversarial training
