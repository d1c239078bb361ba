"""The bridge between the two workflow engines, so that they share one state.

- DVC runs a stage's command only after deleting the stage's outputs. The `validate` stage comes first
  (every fetch stage depends on its marker, `paths.VALIDATED`), so a bad value stops `dvc repro` and
  `dvc exp run` before any data is deleted. Inside `dvc exp run -S key=bad`, DVC has already written the
  bad value into params.yaml; `undo_rejected_experiment` puts the file back as it was.
- Snakemake knows nothing of dvc.lock, and `dvc exp run` starts with a forced `dvc checkout`, which deletes
  every output that dvc.lock and the DVC cache do not hold. So in a DVC repository every Snakemake job
  notes its DVC stage in a journal (`record`), and the workflow's end, failed or not, commits them
  (`commit_journal`: `dvc commit --force` of exactly those stages): dvc.lock and the cache then hold what
  Snakemake made, `dvc status` finds nothing to do, and no experiment deletes Snakemake's data.
"""
from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from pathlib import Path

import yaml

from .errors import AdvreproError, ParamsError
from .io import write_bytes, write_text

log = logging.getLogger(__name__)

# Set by the Snakefile in a DVC repository; the CLI appends each finished job's stage name to this file.
JOURNAL_ENV = "ADVREPRO_DVC_JOURNAL"
JOURNAL = ".dvc/tmp/snakemake-jobs"
MARKER_TEXT = "params.yaml passed validation; every DVC stage starts after the validate stage\n"


def write_marker(path: str | Path) -> None:
    """The validate stage's output; constant, and rewritten only when missing, so its hash and mtime stay."""
    path = Path(path)
    if not (path.is_file() and path.read_text() == MARKER_TEXT):
        write_text(path, MARKER_TEXT)


def _baseline(params_path: Path) -> bytes | None:
    """params.yaml as committed at the experiment's baseline, inside `dvc exp run`; else None."""
    rev = os.environ.get("DVC_EXP_BASELINE_REV")
    if not (rev and os.environ.get("DVC_EXP_NAME")):
        return None
    root = Path(os.environ.get("DVC_ROOT", "."))
    try:
        rel = params_path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None
    proc = subprocess.run(["git", "show", f"{rev}:{rel}"], cwd=root, capture_output=True)
    return proc.stdout if proc.returncode == 0 else None


def _set(tree, key: tuple, value, delete: bool) -> bool:
    *parents, last = key
    for k in parents:
        if isinstance(tree, dict) and k in tree:
            tree = tree[k]
        elif isinstance(tree, list) and isinstance(k, int) and k < len(tree):
            tree = tree[k]
        else:
            return False
    if isinstance(tree, dict) and (last in tree or not delete):
        if delete:
            del tree[last]
        else:
            tree[last] = value
        return True
    if isinstance(tree, list) and isinstance(last, int) and last < len(tree):
        if delete:
            del tree[last]
        else:
            tree[last] = value
        return True
    return False


def _get(tree, key: tuple):
    for k in key:
        if isinstance(tree, dict) and k in tree or isinstance(tree, list) and isinstance(k, int) and k < len(tree):
            tree = tree[k]
        else:
            raise KeyError(key)
    return tree


def undo_rejected_experiment(params_path: str | Path, error: ParamsError) -> str:
    """Inside `dvc exp run`: if undoing the rejected values (back to the baseline commit's, one key at a time)
    gives exactly the baseline params, write the baseline's bytes back and say so. Otherwise (the workspace
    had other uncommitted edits, or this is not an experiment) leave the file alone. Returns a note."""
    from .params import read_yaml, validate

    path = Path(params_path)
    committed = _baseline(path)
    if committed is None:
        return ""
    try:
        baseline, current = yaml.safe_load(committed), read_yaml(path)
    except (yaml.YAMLError, AdvreproError):
        return ""
    for _ in range(100):
        key = error.key
        if not key:
            break
        try:
            value, missing = _get(baseline, key), False
        except KeyError:
            value, missing = None, True
        if not _set(current, key, value, delete=missing):
            break
        try:
            validate(current, str(path))
            break
        except ParamsError as exc:
            error = exc
    if current != baseline:
        return f"; {path} keeps the experiment's values (the workspace had other uncommitted changes)"
    write_bytes(path, committed)
    return f"; {path} is restored as it was before `dvc exp run`"


def stage_name(args) -> str | None:
    """The DVC stage (dvcgen.stages) that an advrepro command line runs, or None."""
    command = args.command
    if command == "validate":
        return "validate" if args.mark else None
    for attr in ("dataset", "experiment", "id", "run"):
        if command in ("fetch", "prepare", "train", "evaluate", "table", "figure", "theory") and hasattr(args, attr):
            return f"{command}-{getattr(args, attr)}"
    return command if command in ("findings", "sanity", "seed-claims", "timing", "paper", "logistic") else None


def record(args) -> None:
    """After a successful command run by Snakemake in a DVC repository: note its stage in the journal
    (a short O_APPEND write: parallel jobs do not mix their lines)."""
    journal, stage = os.environ.get(JOURNAL_ENV), stage_name(args)
    if journal and stage:
        Path(journal).parent.mkdir(parents=True, exist_ok=True)  # .dvc/tmp is not in a fresh clone
        with open(journal, "a") as fh:
            fh.write(stage + "\n")


def commit_journal(journal: str | Path = JOURNAL) -> None:
    """`dvc commit --force` the stages the journal lists (the jobs Snakemake completed), then clear it.
    A journal left by a killed run is committed by the next one."""
    journal = Path(journal)
    taking = journal.with_name(journal.name + ".committing")
    if journal.exists():
        if taking.exists():  # a commit that was itself interrupted: keep its stages too
            taking.write_text(taking.read_text() + journal.read_text())
            journal.unlink()
        else:
            os.replace(journal, taking)
    if not taking.exists():
        return
    stages = list(dict.fromkeys(line for line in taking.read_text().splitlines() if line))
    with _repo() as repo:
        known = {s.name: s for s in repo.index.stages}
        todo = [known[s] for s in stages if s in known]
        log.info("dvc.lock: recording the %d stages this run made (dvc commit --force)", len(todo))
        _commit(repo, todo)
    taking.unlink()


def _commit(repo, stages: list) -> None:
    """What `dvc commit --force STAGE` does for each stage (dvc/repo/commit.py), with dvc.lock written once
    rather than once per stage (a few hundred stages)."""
    if not stages:
        return
    with repo.lock:
        for stage in stages:
            stage.save()
            stage.commit(relink=False)  # keep the workspace files (and their mtimes, which Snakemake reads)
        stages[0].dvcfile.dump_stages(stages, update_pipeline=False)


@contextlib.contextmanager
def _repo():
    """The DVC repository here; DVC's own errors become one line."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(".") as repo:
            yield repo
    except DvcException as exc:
        raise AdvreproError(f"dvc: {exc}") from None


def commit_all() -> None:
    """Record every stage's dependencies and outputs as they are now (`dvc commit --force`): for outputs
    that Snakemake made outside the journal, e.g. before this version. Stages whose outputs are missing
    are left alone."""
    with _repo() as repo:
        done = [s for s in repo.index.stages if all(out.exists for out in s.outs)]
        _commit(repo, done)
    log.info("dvc.lock: recorded %d stages", len(done))
