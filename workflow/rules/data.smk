rule fetch:
    output:
        directory(paths.raw_dir("{source}")),
    params:
        data=lambda wc: P[wc.source]["data"],
        seed=P["seed"],
    log:
        paths.log("data", "fetch-{source}"),
    wildcard_constraints:
        source="|".join(registry.SOURCES),
    shell:
        "{CLI:q} fetch {wildcards.source:q} --profile {PROFILE:q} --log {log:q}"


# Image sources give one processed file, audio sources one per representation (raw, mel, meldb).
rule prepare_image:
    input:
        paths.raw_dir("{source}"),
    output:
        paths.processed("{source}"),
    params:
        data=lambda wc: [registry.lookup(P, k) for k in registry.data_keys(P, wc.source)],
        seed=P["seed"],
    log:
        paths.log("data", "prepare-{source}"),
    wildcard_constraints:
        source="mnist|gtsrb",
    shell:
        "{CLI:q} prepare {wildcards.source:q} --profile {PROFILE:q} --log {log:q}"


rule prepare_audio:
    input:
        paths.raw_dir("{source}"),
    output:
        [paths.processed(f"{{source}}-{kind}") for kind in ("raw", "mel", "meldb")],
    params:
        data=lambda wc: [registry.lookup(P, k) for k in registry.data_keys(P, wc.source)],
        seed=P["seed"],
    log:
        paths.log("data", "prepare-{source}"),
    wildcard_constraints:
        source="speech|urban",
    shell:
        "{CLI:q} prepare {wildcards.source:q} --profile {PROFILE:q} --log {log:q}"
