"""The committed reference results: no metrics file, table or claim reports accuracy under attack above
natural accuracy, and the worst case over all attacks is at most every single attack's accuracy."""
from __future__ import annotations

import re

import numpy as np
import pytest

from advrepro import paths
from advrepro.evaluate import unpack
from advrepro.experiments import TABLES
from advrepro.io import read_json

from .conftest import ROOT

METRICS = sorted((ROOT / "results" / "metrics").glob("*.json"))


def test_the_reference_has_metrics():
    assert len(METRICS) >= 100


@pytest.mark.parametrize("path", METRICS, ids=lambda p: p.stem)
def test_no_accuracy_under_attack_above_natural_and_worst_case_below_every_attack(path):
    m = read_json(path)
    acc, n = m["accuracy"], m["n_samples"]
    bits = {k: unpack(v, n) for k, v in m["correct"].items()}
    assert set(bits) == set(acc)
    for key, ok in bits.items():
        assert round(float(ok.mean()), 6) == acc[key], key
        assert not np.any(ok & ~bits["plain"]), key                  # per sample: robust => correct clean
    worst = sorted((float(k.split("_")[1]), k) for k in acc if k.startswith("worst_"))
    for eps, key in worst:
        for attack in ("pgd", "fgsm", "ilcm"):  # the L-infinity attacks at this epsilon the evaluation ran
            if f"{attack}_{eps:g}" in bits:
                assert not np.any(bits[key] & ~bits[f"{attack}_{eps:g}"]), (key, attack)
    for (_, small), (_, large) in zip(worst, worst[1:], strict=False):
        assert not np.any(bits[large] & ~bits[small])               # non-increasing in epsilon, per sample


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.id)
def test_no_table_row_reports_accuracy_above_natural(table):
    for path in (ROOT / paths.table(table.id), ROOT / paths.strong_table(table.id)):
        rows = [line for line in path.read_text().splitlines() if line.endswith("\\\\") and " & " in line]
        body = [r for r in rows if re.match(r"^(FF|GRU|LSTM|S4)\b", r)]
        assert body, path
        for row in body:
            cells = [c.strip() for c in row.rstrip("\\").split(" & ")[1:]]
            numbers = [float(m.group(1)) for c in cells if (m := re.match(r"(?:\\textbf\{)?(\d+\.\d)", c))]
            assert numbers and max(numbers) <= numbers[0], (path.name, row)   # the first is natural accuracy


def test_on_every_mnist_model_the_worst_case_is_at_most_pgd40():
    for path in METRICS:
        m = read_json(path)
        if m["dataset"] == "mnist":
            for eps in (0.1, 0.3):
                assert m["accuracy"][f"worst_{eps:g}"] <= m["accuracy"][f"pgd_{eps:g}"], path.stem


def test_every_robustness_curve_starts_at_natural_accuracy_and_never_rises(raw_params, monkeypatch):
    """Part M2's robustness curves of the committed reference (report/curves.py): at 0 the natural accuracy,
    then non-increasing over every dataset's grid, each point at most every attack's accuracy at its epsilon."""
    from advrepro.experiments import all_experiments
    from advrepro.params import resolve
    from advrepro.report.curves import curve_points

    params = resolve(raw_params, "offline")
    monkeypatch.chdir(ROOT)
    exps = [e for e in all_experiments(params) if (ROOT / paths.metrics(e.id)).exists()]
    assert len(exps) >= 100
    for exp in exps:
        m = read_json(ROOT / paths.metrics(exp.id))
        points, box = curve_points(params, exp)
        accs = [a for _, a in points]
        assert points[0] == (0.0, m["accuracy"]["plain"]), exp.id
        assert all(b <= a for a, b in zip(accs, accs[1:], strict=False)), exp.id
        for eps, acc in points[1:]:
            for key in (f"pgd_{eps:g}", f"fgsm_{eps:g}", f"worst_{eps:g}"):
                assert acc <= m["accuracy"].get(key, 1.0), (exp.id, key)
        assert box is not None and box[1] <= accs[-1], exp.id
