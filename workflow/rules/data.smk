rule fetch:
    output:
        directory(paths.raw_dir("{dataset}")),
    params:
        source=lambda wc: P[wc.dataset]["data"]["source"],
    log:
        paths.log("data", "fetch-{dataset}"),
    shell:
        "{CLI} fetch {wildcards.dataset} --profile {PROFILE} --log {log}"


rule prepare:
    input:
        paths.raw_dir("{dataset}"),
    output:
        paths.processed("{dataset}"),
    params:
        data=lambda wc: P[wc.dataset]["data"],
        seed=P["seed"],
    log:
        paths.log("data", "prepare-{dataset}"),
    shell:
        "{CLI} prepare {wildcards.dataset} --profile {PROFILE} --log {log}"
