# Report rules only read result files; each table and figure is produced by one rule.
TABLES = {t.id: t for t in registry.TABLES}
FIGURES = {f.id: f for f in registry.FIGURES}


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
        paths.FINDINGS,
        paths.TIMING,
        [paths.table(t) for t in TABLES],
        [paths.strong_table(t) for t in TABLES],
        paths.SANITY,
        [paths.figure(f) for f in FIGURES],
        [paths.figure_block(f) for f in FIGURES],
    output:
        paths.PAPER,
    log:
        paths.log("paper", "main"),
    shell:
        "{CLI:q} paper --profile {PROFILE:q} --log {log:q}"
