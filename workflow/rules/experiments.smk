EXPERIMENTS = {e.id: e for e in registry.all_experiments(P)}


def _train_params(wc):
    return {k: registry.lookup(P, k) for k in registry.train_keys(P, EXPERIMENTS[wc.exp].dataset)}


rule train:
    input:
        lambda wc: paths.processed(EXPERIMENTS[wc.exp].dataset),
    output:
        checkpoint=paths.checkpoint("{exp}"),
        history=paths.history("{exp}"),
        timing=paths.timing("{exp}"),
    params:
        config=_train_params,
        seed=P["seed"],
    resources:
        gpu=GPU,
    log:
        paths.log("train", "{exp}"),
    wildcard_constraints:
        exp="|".join(EXPERIMENTS),
    shell:
        "{CLI:q} train {wildcards.exp:q} --profile {PROFILE:q} --log {log:q}" + GPU_ARGS


rule evaluate:
    input:
        data=lambda wc: paths.processed(EXPERIMENTS[wc.exp].dataset),
        checkpoint=paths.checkpoint("{exp}"),
    output:
        metrics=paths.metrics("{exp}"),
        examples=paths.examples("{exp}"),
    params:
        evaluation=lambda wc: registry.config(P, EXPERIMENTS[wc.exp].dataset)["evaluation"],
        strong=P["strong_evaluation"],
    resources:
        gpu=GPU,
    log:
        paths.log("evaluate", "{exp}"),
    wildcard_constraints:
        exp="|".join(EXPERIMENTS),
    shell:
        "{CLI:q} evaluate {wildcards.exp:q} --profile {PROFILE:q} --log {log:q}" + GPU_ARGS
