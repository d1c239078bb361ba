"""The seed parts' report (tables, figures, claims, the parts' LaTeX) from synthetic results of every seed
experiment: fast, and independent of training (the slow end-to-end run is tests/test_seed_parts.py)."""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from advrepro import paths, theory
from advrepro.attacks import chosen, worst_columns
from advrepro.experiments import CURVE, DATASET_PARTS, FIGURES, P4_NETWORKS, SEED_TABLES, all_experiments, part_of
from advrepro.io import pack, write_json, write_npz
from advrepro.report import figures, seed_claims, seeds, timing
from advrepro.spec import evaluation_spec

from .conftest import ROOT, tiny_params


@pytest.fixture
def results(tmp_path, monkeypatch, raw_params):
    """Metrics, histories and examples of every seed experiment at the tiny profile, with per-sample bits
    that obey robust <= clean, and the data files the claims read."""
    params = tiny_params(raw_params)
    params["seed_parts"] = ["R1", "M2", "S3", "P4"]
    params["mnist"]["data"]["image_size"] = 10  # part P4's four convolutions need 10 pixels
    for sub in ("paper/sources", "paper/parts"):
        shutil.copytree(ROOT / sub, tmp_path / sub)
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    size = params["fmnist"]["data"]["image_size"]
    x = rng.uniform(-1, 1, (200, size, size, 1)).astype(np.float32)
    for d in ("fmnist-r1", "fmnist-s3"):
        write_npz(paths.processed(d), x_train=x, y_train=np.arange(200) % 10, x_test=x[:100],
                  y_test=np.arange(100) % 10)
    for exp in (e for e in all_experiments(params) if e.dataset.startswith("fmnist-")):
        ev = evaluation_spec(params, exp.dataset)
        n = min(ev.n_samples, 100)
        clean = rng.random(n) < 0.8
        keys = [c.key for a in chosen(ev, "image") for c in a.columns(ev)] + [c.key for c in worst_columns(ev)]
        bits = {k: clean if k == "plain" else clean & (rng.random(n) < 0.6) for k in keys}
        write_json(paths.metrics(exp.id), {
            "experiment": exp.id, "n_samples": n, "accuracy": {k: round(float(b.mean()), 6) for k, b in bits.items()},
            "correct": {k: pack(b) for k, b in bits.items()}, "strong": {}})
        epochs = params["fmnist"][exp.dataset.split("-")[1]]["train"]["epochs"]
        write_json(paths.history(exp.id), {"experiment": exp.id, "epochs": [
            {"epoch": e, "train_loss": 1.0 / e, "train_accuracy": 0.5, "test_loss": 1.0, "test_accuracy": 0.5}
            for e in range(1, epochs + 1)]})
        write_json(paths.timing(exp.id), {"experiment": exp.id, "epoch_seconds": [2.0] * epochs,
                                          "inference_ms_per_image": 0.05 + 0.01 * len(exp.id)})
        arrays = {"x": x[:10], "y": np.arange(10), "pred": np.arange(10), "epsilon": np.float32(ev.example_epsilon),
                  "probabilities": rng.dirichlet(np.ones(10), n).astype(np.float32)}
        if ev.features:  # the CNN's block outputs, as evaluate.feature_arrays keeps them
            arrays.update({f"heat_block{i}": rng.random((10, s, s)).astype(np.float32)
                           for i, s in enumerate((size - 2, size - 4, size // 2 - 2))})
            arrays.update(heat_probs=rng.dirichlet(np.ones(10), 10).astype(np.float32),
                          features=rng.normal(size=(n, 48)).astype(np.float32) + np.arange(n)[:, None] % 10,
                          features_y=np.arange(n) % 10, feature_block=np.array("block4"))
        for a in chosen(ev, "image"):
            if a.name != "plain":
                arrays[f"{a.name}_x"], arrays[f"{a.name}_pred"] = x[10:20], (np.arange(10) + 1) % 10
        write_npz(paths.examples(exp.id), **arrays)
    # Part P4: the networks' histories with the per-epoch probe, and metrics with the strong worst case
    p4 = params["mnist"]["p4"]
    epochs, clean = p4["train"]["epochs"], p4["pgd_at"]["clean_epochs"]
    for exp in (e for e in all_experiments(params) if e.dataset == "mnist-p4"):
        ev = evaluation_spec(params, exp.dataset)
        n = min(ev.n_samples, 100)
        depth = int(exp.scenario.variant[1])
        clean_bits = rng.random(n) < 0.9
        keys = [c.key for a in chosen(ev, "image") for c in a.columns(ev)] + [c.key for c in worst_columns(ev)]
        bits = {k: clean_bits if k == "plain" else clean_bits & (rng.random(n) < 0.5 + 0.05 * depth) for k in keys}
        write_json(paths.metrics(exp.id), {
            "experiment": exp.id, "n_samples": n, "accuracy": {k: round(float(b.mean()), 6) for k, b in bits.items()},
            "correct": {k: pack(b) for k, b in bits.items()}, "strong": {}})
        history = []
        for e in range(1, epochs + 1):
            adversarial = e > clean
            entry = {"epoch": e, "train_loss": 1.0 / e, "train_accuracy": 0.8 if adversarial else 0.95,
                     "test_loss": 0.3, "test_accuracy": 0.95 - (0.05 - 0.01 * depth) * adversarial
                     + rng.normal(0, 0.002), "train_clean_accuracy": 0.97, "test_pgd_accuracy": 0.5 + 0.3 * adversarial,
                     "adversary_success": 0.5 - 0.4 * adversarial}
            if e in (clean, epochs):
                entry.update(phase_test_pgd_accuracy=0.45 + 0.3 * adversarial,
                             phase_adversary_success=0.56 - 0.44 * adversarial)
            history.append(entry)
        write_json(paths.history(exp.id), {"experiment": exp.id, "epochs": history})
        write_json(paths.timing(exp.id), {"experiment": exp.id, "epoch_seconds": [2.0] * epochs,
                                          "inference_ms_per_image": 0.05})
    # Part M2: its model's runs at the tiny sizes (seconds), the logistic regression on synthetic "digits"
    for run in theory.run_names(params["theory"]):
        theory.write_run(params["theory"], run, params["seed"])
    digits = rng.uniform(-1, 1, (300, 28, 28)).astype(np.float32)
    labels = np.repeat([3, 7, 1], 100)
    digits[labels == 3, 10:14] += 1.0
    theory.write_logistic(theory.logistic(np.clip(digits, -1, 1), labels, params["theory"]["logistic"], 0))
    return tmp_path, params


def test_the_seed_tables_figures_and_claims_render_and_compile(results):
    proj, params = results
    for t in SEED_TABLES:
        seeds.write_table(params, t.id)
    for f in FIGURES:
        # every seed figure but the thesis datasets' robustness curves (this fixture writes the seeds' results)
        if part_of(f) == "thesis":
            continue
        if f.kind == CURVE and DATASET_PARTS.get(f.dataset, "thesis") == "thesis":
            (proj / paths.figure_block(f.id)).write_text("% not drawn here\n")  # what \robustnesscurves inputs
            continue
        figures.write_figure(params, f.id)
        assert (proj / paths.figure(f.id)).read_bytes().startswith(b"%PDF"), f.id
    seed_claims.write_seed_claims(params)
    inference = timing.inference_macros(params)
    assert inference == ["\\newcommand{\\inferenceRone}{0.24\\,ms (plain) / 0.27\\,ms (lwta-pgd) per image}"]
    (proj / "paper/generated/inference.tex").write_text("\n".join(inference) + "\n")
    r1 = (proj / paths.table("R1_1")).read_text()
    assert "\\thesis{63.7}" in r1 and "CNN stochastic LWTA &" in r1 and "Worst 8/255" in r1
    assert "\\thesis{114.6}" in (proj / paths.table("R1_2")).read_text()   # the seed's summed PGD accuracies
    s3 = (proj / paths.table("S3_1")).read_text()
    assert "\\thesis{81.7}" in s3 and "ILCM" in s3 and "MF" in s3          # Figure 5.5's deterministic at p=0.1
    assert "\\thesis{90.0}" in (proj / paths.table("S3_2")).read_text()    # Figure 5.6's deterministic baseline
    claims = (proj / paths.SEED_CLAIMS).read_text()
    assert "\\input{parts/R1}\\input{parts/M2}\\input{parts/S3}\\input{parts/P4}" in claims
    p4 = (proj / paths.table("P4_5_1")).read_text()
    assert "\\thesis{94.91}" in p4 and "Parameters & " in p4 and "$\\pm$" in p4
    sweep = (proj / paths.table("P4_2")).read_text()
    assert all(label in sweep for _, label in P4_NETWORKS)
    assert "fixed point & $\\infty$ & 0.9908 & $-$1.4697" in (proj / paths.table("M2_1")).read_text()
    assert "40\\,\\% test error at $\\epsilon$" in (proj / paths.table("M2_2")).read_text()
    for name in ("claimsRone", "claimsMtwo", "claimsSthree", "claimsPfour"):
        table = claims.split(f"\\newcommand{{\\{name}}}")[1].split("\\end{tabular}")[0]
        rows = [r for r in table.splitlines() if r.endswith("\\\\") and "Claim (rule)" not in r]
        assert len(rows) >= 6 and all(r.rstrip(" \\").endswith(("reproduced", "comparable")) for r in rows), name
    if shutil.which("latexmk") is None:
        pytest.skip("latexmk missing: scripts/system-deps.sh installs it")
    preamble = (ROOT / "paper/main.tex").read_text().split("\\input{generated/findings.tex}")[0]
    (proj / "paper/seeds.tex").write_text(preamble + "\\input{generated/inference.tex}"
                                          "\\input{generated/seed_claims.tex}\n\\begin{document}\n"
                                          "\\seedparts\n\\end{document}\n")
    proc = subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "seeds.tex"],
                          cwd=proj / "paper", capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    log = (proj / "paper/seeds.log").read_text(errors="replace")
    assert not re.search(r"Reference .* undefined|Undefined control sequence", log)


def test_no_seed_part_gives_an_empty_seedparts(results):
    proj, params = results
    params["seed_parts"] = []
    seed_claims.write_seed_claims(params)
    text = (proj / paths.SEED_CLAIMS).read_text()
    assert "\\newcommand{\\seedparts}{}" in text and "claimsRone" not in text
