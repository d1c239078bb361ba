# Thin workflow: every rule calls the advrepro CLI, which holds the logic.
# The experiments come from the same registry as dvc.yaml (src/advrepro/experiments.py).
#   snakemake --cores all --resources gpu=1          # the whole pipeline -> paper/main.pdf
#   snakemake --cores all --resources gpu=N --config profile=thesis   # the thesis's own sizes, N GPUs
#   snakemake --workflow-profile profiles/slurm --config profile=thesis   # on a SLURM cluster
import os
import sys
from pathlib import Path

from advrepro import experiments as registry, paths
from advrepro.errors import AdvreproError
from advrepro.params import load_params

# params.yaml is read by advrepro.params alone (strictly: bounded, no duplicate keys), validated before any
# job runs. `--config profile=...` is the one key --config takes: every other knob lives in params.yaml,
# where DVC sees it too, so any other key is refused rather than silently ignored.
try:
    unknown = sorted(set(config) - {"profile"})
    if unknown:
        raise AdvreproError(f"--config: unknown key(s) {', '.join(map(repr, unknown))}: the only one is "
                            "'profile'; every other setting lives in params.yaml (or `dvc exp run -S key=value`)")
    P = load_params("params.yaml", config.get("profile"))
except AdvreproError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)
PROFILE = P["profile"]
GPU = 1 if P["device"] == "gpu" else 0   # thesis profile: training jobs queue for the GPU
# GPU jobs hold `resources.gpu` device slots, pinned by CUDA_VISIBLE_DEVICES, of the `--resources gpu=N` this run
# exports (src/advrepro/devices.py); `--set-resources train:gpu=2`: data-parallel training over 2 devices per job.
# Under a cluster executor (--executor slurm) the scheduler gives each job its GPUs: no local slots then.
GPU_ARGS = " --gpus {resources.gpu}" if GPU and not workflow.non_local_exec else ""
# The interpreter running Snakemake runs the CLI too, so an un-activated venv works. A list, so that
# `{CLI:q}` quotes each word (a checkout whose path has a space works).
CLI = [sys.executable, "-m", "advrepro.cli"]

# In a DVC repository, every job notes its DVC stage and the run's end (failed or not) records them in
# dvc.lock and the DVC cache: both engines then see one state (src/advrepro/dvcsync.py).
if Path(".dvc").is_dir():
    from advrepro import dvcsync

    os.environ[dvcsync.JOURNAL_ENV] = os.path.abspath(dvcsync.JOURNAL)

from advrepro import devices

devices.export_slot_count(workflow.global_resources)

onsuccess:
    if Path(".dvc").is_dir():
        shell("{CLI:q} dvc-commit --journal --quiet")

onerror:
    if Path(".dvc").is_dir():
        shell("{CLI:q} dvc-commit --journal --quiet")

onstart:
    if workflow.non_local_exec:  # e.g. --executor slurm: this machine is not where the jobs compute
        print(f"advrepro: jobs run where the {workflow.executor_plugin.name} executor places them; each train and "
              "evaluate log names the device it used", file=sys.stderr)
    else:
        from advrepro import runtime
        print(runtime.workflow_note(P["device"]), file=sys.stderr)
        if GPU:
            print(devices.workflow_note(), file=sys.stderr)


include: "workflow/rules/data.smk"
include: "workflow/rules/experiments.smk"
include: "workflow/rules/theory.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        paths.PAPER,
    default_target: True
