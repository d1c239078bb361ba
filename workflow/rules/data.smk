# params.yaml is validated when the Snakefile loads; this rule only leaves the marker that DVC's validate
# stage writes, so both engines see the same steps. It is written once (constant), and `ancient` keeps its
# mtime from re-running the fetches.
rule validate:
    output:
        paths.VALIDATED,
    log:
        paths.log("data", "validate"),
    shell:
        "{CLI:q} validate --mark {output:q} --profile {PROFILE:q} --log {log:q}"


rule fetch:
    input:
        ancient(paths.VALIDATED),
    output:
        directory(paths.raw_dir("{source}")),
    params:
        data=lambda wc: P[wc.source]["data"],
        seed=P["seed"],
    log:
        paths.log("data", "fetch-{source}"),
    wildcard_constraints:
        source="|".join(registry.SOURCES.names()),
    shell:
        "{CLI:q} fetch {wildcards.source:q} --profile {PROFILE:q} --log {log:q}"


# One prepare rule per data source (a source writes one or more processed datasets).
for source in registry.SOURCES.values():

    rule:
        name:
            f"prepare_{source.name}"
        input:
            paths.raw_dir(source.name),
        output:
            [paths.processed(d.name) for d in source.datasets],
        params:
            # The loop variable is read when the job runs, not when the rule is defined: name it here.
            source=source.name,
            data=[registry.lookup(P, k) for k in registry.data_keys(P, source.name)],
            seed=P["seed"],
        log:
            paths.log("data", f"prepare-{source.name}"),
        shell:
            "{CLI:q} prepare {params.source:q} --profile {PROFILE:q} --log {log:q}"
