"""The other seeds' parts (R1: seed 001, S3: seed 003): their tables, this run's numbers beside the seed's own
(paper/sources/<prefix>/*.tsv, in grey)."""
from __future__ import annotations

import csv
from pathlib import Path

from .. import paths
from ..attacks import ATTACKS
from ..errors import DataError
from ..experiments import SEED_TABLES, SeedTable, table_experiments
from ..io import atomic_paths, write_text
from ..models import MODELS
from ..spec import evaluation_spec
from . import depth, results, theory

SOURCES = Path("paper/sources")


def source_path(name: str) -> Path:
    return SOURCES / f"{name}.tsv"


def source_numbers(name: str) -> dict[str, dict[str, float]]:
    """{scenario: {column: number}} of paper/sources/<name>.tsv; lines starting with # say where they come from."""
    path = source_path(name)
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the seed's numbers ({exc})") from None
    rows = list(csv.DictReader(lines, delimiter="\t"))
    out = {}
    for i, row in enumerate(rows, 2):
        scenario = row.pop("scenario", None)
        try:
            out[scenario] = {k: float(v) for k, v in row.items()}
        except (TypeError, ValueError):
            raise DataError(f"{path}: row {i} ({scenario!r}): every value must be a number") from None
    return out


def get_seed_table(table_id: str) -> SeedTable:
    for table in SEED_TABLES:
        if table.id == table_id:
            return table
    raise KeyError(table_id)


def seed_sources(table: SeedTable) -> list[Path]:
    """The files with the seed's numbers a table prints."""
    if table.kind == "curves":
        return [source_path(f"{table.source}/{c.source}") for c in table.columns]
    return [source_path(table.source)] if table.source else []


def _row_label(exp) -> str:
    return exp.scenario.label or "plain"


def _value(acc: dict, keys: str) -> float | None:
    parts = keys.split("+")
    if any(k not in acc for k in parts):
        return None
    return 100 * sum(acc[k] for k in parts)


def _cell(ours: float | None, theirs: float | None) -> str:
    mine = "--" if ours is None else f"{ours:.1f}"
    return mine if theirs is None else f"{mine} \\thesis{{{theirs:.1f}}}"


def _columns_table(params: dict, table: SeedTable) -> tuple[list[str], int]:
    seed = source_numbers(table.source) if table.source else {}
    lines = ["\\begin{tabular}{l" + "r" * len(table.columns) + "}", "\\toprule",
             "Model & " + " & ".join(c.label for c in table.columns) + " \\\\", "\\midrule"]
    exps = table_experiments(params, table)
    for exp in exps:
        acc = results.metrics(params, exp)["accuracy"]
        ref = seed.get(exp.scenario.name, {})
        cells = [_cell(_value(acc, c.keys), ref[c.source] * table.source_scale if c.source in ref else None)
                 for c in table.columns]
        lines.append(f"{MODELS[exp.model].label} {_row_label(exp)} & " + " & ".join(cells) + " \\\\")
    return lines, min(results.metrics(params, e)["n_samples"] for e in exps)


def _curves_table(params: dict, table: SeedTable) -> tuple[list[str], int]:
    """A row per (scenario, attack), a column per value of the attack's grid; the grids differ per attack, so
    each attack's block has its own header row."""
    ev = evaluation_spec(params, table.dataset)
    exps = table_experiments(params, table)
    width = max(len(getattr(ev, ATTACKS[c.keys].grid)) for c in table.columns)
    lines = ["\\begin{tabular}{l" + "r" * width + "}", "\\toprule"]
    for i, col in enumerate(table.columns):
        attack = ATTACKS[col.keys]
        grid = list(getattr(ev, attack.grid))
        seed = source_numbers(f"{table.source}/{col.source}") if col.source else {}
        what = "$p$" if attack.grid == "missing_fractions" else "$\\epsilon$"
        if i:
            lines.append("\\midrule")
        lines.append(f"{col.label}, {what} & " + " & ".join(f"{v:g}" for v in grid) + " & " * (width - len(grid))
                     + " \\\\")
        lines.append("\\midrule")
        for exp in exps:
            acc = results.metrics(params, exp)["accuracy"]
            ref = seed.get(exp.scenario.name, {})
            cells = [_cell(_value(acc, attack.key(v)),
                           ref[f"{v:g}"] * table.source_scale if f"{v:g}" in ref else None) for v in grid]
            lines.append(f"{_row_label(exp)} & " + " & ".join(cells) + " & " * (width - len(grid)) + " \\\\")
    return lines, min(results.metrics(params, e)["n_samples"] for e in exps)


OWN_KINDS = {**theory.TABLE_KINDS, **depth.TABLE_KINDS}  # tables that are not a row per experiment


def render(params: dict, table_id: str) -> str:
    table = get_seed_table(table_id)
    if table.kind in OWN_KINDS:  # part M2: seed 002's model, no test images; part P4: over three seeds
        body = OWN_KINDS[table.kind](params, table)
        where = "results/theory" if table.kind in theory.TABLE_KINDS else "results/history and results/metrics"
        return "\n".join([f"% Generated by `advrepro table {table_id}` from {where}; do not edit.",
                          "\\begin{table}[htbp]", "\\centering", "\\small", *body, "\\end{tabular}",
                          f"\\caption{{{table.caption} Profile \\texttt{{{params['profile']}}}.}}",
                          f"\\label{{tab:{table_id}}}", "\\end{table}", ""])
    body, n = (_curves_table if table.kind == "curves" else _columns_table)(params, table)
    grey = " with the seed's number in grey" if table.source else ""
    return "\n".join([
        f"% Generated by `advrepro table {table_id}` from results/metrics; do not edit.",
        "\\begin{table}[htbp]", "\\centering", "\\small", "\\resizebox{\\linewidth}{!}{%" if table.kind == "curves"
        else "", *body, "\\bottomrule", "\\end{tabular}" + ("}" if table.kind == "curves" else ""),
        f"\\caption{{{table.caption} This run{grey}; first {n} test images, profile "
        f"\\texttt{{{params['profile']}}}.}}",
        f"\\label{{tab:{table_id}}}", "\\end{table}", ""])


def write_table(params: dict, table_id: str) -> None:
    text = render(params, table_id)
    with atomic_paths(paths.table(table_id)) as (tmp,):
        write_text(tmp, text)
