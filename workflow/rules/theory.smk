# Part M2 (seed 002): its model's runs (ODE + simulation, numpy/scipy) and the slides' logistic regression.
# No rule applies when params.yaml's seed_parts leaves M2 out.
THEORY_RUNS = registry.theory_runs(P)


rule theory:
    output:
        paths.theory("{run}"),
    params:
        theory={k: v for k, v in P["theory"].items() if k not in ("illustration", "logistic")},
        seed=P["seed"],
    log:
        paths.log("theory", "{run}"),
    wildcard_constraints:
        run="|".join(THEORY_RUNS) or "no-run",
    shell:
        "{CLI:q} theory {wildcards.run:q} --profile {PROFILE:q} --log {log:q}"


rule logistic:
    input:
        paths.raw_dir("mnist"),
    output:
        list(paths.LOGISTIC),
    params:
        logistic=P["theory"]["logistic"],
        seed=P["seed"],
    log:
        paths.log("theory", "logistic"),
    shell:
        "{CLI:q} logistic --profile {PROFILE:q} --log {log:q}"
