# Thin workflow: every rule calls the advrepro CLI, which holds the logic.
# The experiments come from the same registry as dvc.yaml (src/advrepro/experiments.py).
#   snakemake --cores all --resources gpu=1          # the whole pipeline -> paper/main.pdf
#   snakemake --cores all --config profile=thesis    # the thesis's own sizes (GPU)
import sys

from advrepro import experiments as registry, paths
from advrepro.params import load_params

configfile: "params.yaml"

# Validated before any job runs; `--config profile=...` selects a profile.
P = load_params("params.yaml", config.get("profile"))
PROFILE = P["profile"]
GPU = 1 if P["device"] == "gpu" else 0   # thesis profile: training jobs queue for the GPU
# The interpreter running Snakemake runs the CLI too, so an un-activated venv works. A list, so that
# `{CLI:q}` quotes each word (a checkout whose path has a space works).
CLI = [sys.executable, "-m", "advrepro.cli"]

onstart:
    from advrepro import runtime
    print(runtime.workflow_note(P["device"]), file=sys.stderr)


include: "workflow/rules/data.smk"
include: "workflow/rules/experiments.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        paths.PAPER,
    default_target: True
