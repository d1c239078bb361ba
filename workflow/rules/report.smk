# Report rules only read result files; each table and figure is produced by one rule.
from advrepro.report.seeds import seed_sources

TABLES = {t.id: t for t in registry.TABLES}
SEED_TABLES = {t.id: t for t in registry.active(P, registry.SEED_TABLES)}  # params.yaml's seed_parts
FIGURES = {f.id: f for f in registry.active(P, registry.FIGURES)}


rule table:
    input:
        metrics=lambda wc: [paths.metrics(e.id) for e in registry.table_experiments(P, TABLES[wc.id])],
        thesis=lambda wc: paths.thesis_numbers(TABLES[wc.id].thesis_id),
    output:
        paths.table("{id}"),
        paths.strong_table("{id}"),
    wildcard_constraints:
        id="|".join(TABLES),
    log:
        paths.log("report", "table_{id}"),
    shell:
        "{CLI:q} table {wildcards.id:q} --profile {PROFILE:q} --log {log:q}"


rule seed_table:
    input:
        results=lambda wc: registry.seed_table_inputs(P, SEED_TABLES[wc.id]),
        seed=lambda wc: [str(p) for p in seed_sources(SEED_TABLES[wc.id])],
    output:
        paths.table("{id}"),
    wildcard_constraints:
        id="|".join(SEED_TABLES),
    log:
        paths.log("report", "table_{id}"),
    shell:
        "{CLI:q} table {wildcards.id:q} --profile {PROFILE:q} --log {log:q}"


rule figure:
    input:
        lambda wc: registry.figure_inputs(P, FIGURES[wc.id]),
    output:
        paths.figure("{id}"),
        paths.figure_block("{id}"),
    wildcard_constraints:
        id="|".join(FIGURES),
    log:
        paths.log("report", "figure_{id}"),
    shell:
        "{CLI:q} figure {wildcards.id:q} --profile {PROFILE:q} --log {log:q}"


rule findings:
    input:
        [paths.metrics(e) for e in EXPERIMENTS],
        [paths.timing(e) for e in EXPERIMENTS],  # the claims check reads the training times too
    output:
        paths.FINDINGS,
    log:
        paths.log("report", "findings"),
    shell:
        "{CLI:q} findings --profile {PROFILE:q} --log {log:q}"


rule sanity:
    input:
        [paths.metrics(e) for e in EXPERIMENTS],
        [paths.thesis_numbers(t.thesis_id) for t in TABLES.values()],
    output:
        paths.SANITY,
    log:
        paths.log("report", "sanity"),
    shell:
        "{CLI:q} sanity --profile {PROFILE:q} --log {log:q}"


rule seed_claims:
    input:
        [paths.metrics(e.id) for t in SEED_TABLES.values() for e in registry.table_experiments(P, t)],
        [paths.examples(e.id) for t in SEED_TABLES.values() for e in registry.table_experiments(P, t)],
        [paths.history(e.id) for t in SEED_TABLES.values() for e in registry.table_experiments(P, t)],
        [paths.processed(d) for d in dict.fromkeys(t.dataset for t in SEED_TABLES.values()) if d != registry.THEORY],
        [str(p) for t in SEED_TABLES.values() for p in seed_sources(t)],
        [f for t in SEED_TABLES.values() if t.dataset == registry.THEORY for f in registry.seed_table_inputs(P, t)],
    output:
        paths.SEED_CLAIMS,
    log:
        paths.log("report", "seed_claims"),
    shell:
        "{CLI:q} seed-claims --profile {PROFILE:q} --log {log:q}"


rule timing:
    input:
        [paths.timing(e) for e in EXPERIMENTS],
    output:
        paths.TIMING,
    log:
        paths.log("report", "timing"),
    shell:
        "{CLI:q} timing --profile {PROFILE:q} --log {log:q}"


rule paper:
    input:
        "paper/main.tex",
        [f"paper/parts/{p}.tex" for p in P["seed_parts"]],
        paths.FINDINGS,
        paths.TIMING,
        [paths.table(t) for t in TABLES],
        [paths.strong_table(t) for t in TABLES],
        [paths.table(t) for t in SEED_TABLES],
        paths.SANITY,
        paths.SEED_CLAIMS,
        [paths.figure(f) for f in FIGURES],
        [paths.figure_block(f) for f in FIGURES],
    output:
        paths.PAPER,
    log:
        paths.log("paper", "main"),
    shell:
        "{CLI:q} paper --profile {PROFILE:q} --log {log:q}"
