"""Where every artefact lives; the Snakefile, dvc.yaml and the CLI all ask here."""
from __future__ import annotations

RAW = "data/raw"
PROCESSED = "data/processed"
RESULTS = "results"


def raw_dir(dataset: str) -> str:
    return f"{RAW}/{dataset}"


def processed(dataset: str) -> str:
    return f"{PROCESSED}/{dataset}.npz"


def checkpoint(exp: str) -> str:
    return f"{RESULTS}/checkpoints/{exp}.ckpt"


def state(exp: str) -> str:
    """Resumable training state, rewritten after every epoch; not a workflow output, so an
    interrupted job keeps it (Snakemake and DVC delete a failed job's outputs)."""
    return f"{RESULTS}/state/{exp}.ckpt"


def history(exp: str) -> str:
    return f"{RESULTS}/history/{exp}.json"


def timing(exp: str) -> str:
    return f"{RESULTS}/timing/{exp}.json"


def metrics(exp: str) -> str:
    return f"{RESULTS}/metrics/{exp}.json"


def examples(exp: str) -> str:
    return f"{RESULTS}/examples/{exp}.npz"


def log(kind: str, name: str) -> str:
    return f"{RESULTS}/logs/{kind}/{name}.log"


def table(table_id: str) -> str:
    return f"paper/tables/table_{table_id}.tex"


def strong_table(table_id: str) -> str:
    """The companion of a thesis table: natural accuracy and the worst case over the strong attacks."""
    return f"paper/tables/table_{table_id}_strong.tex"


def figure(figure_id: str) -> str:
    return f"paper/figures/figure_{figure_id}.pdf"


def figure_block(figure_id: str) -> str:
    """The LaTeX figure environment around it, with the caption from the registry."""
    return f"paper/figures/figure_{figure_id}.tex"


def theory(run: str) -> str:
    """A run of seed 002's model (part M2): ODE, simulation, errors (results/theory/s1-at.json)."""
    return f"{RESULTS}/theory/{run}.json"


LOGISTIC = (f"{RESULTS}/theory/logistic.json", f"{RESULTS}/theory/logistic.npz")  # seed 002's MNIST 3 vs 7


def thesis_numbers(table_id: str) -> str:
    return f"paper/thesis/table_{table_id}.tsv"


FINDINGS = "paper/generated/findings.tex"
TIMING = "paper/generated/timing.tex"
SANITY = "paper/generated/sanity.tex"
SEED_CLAIMS = "paper/generated/seed_claims.tex"
PAPER = "paper/main.pdf"
# The validate stage's marker: every fetch stage depends on it, so DVC checks params before deleting data.
VALIDATED = f"{RESULTS}/validated-params.txt"
