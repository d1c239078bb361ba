"""scripts/system-deps.sh against fake `apt-get` and `id` on a controlled PATH.

The fake apt-get records what it is asked and "installs" a package by putting the tools that the
real Debian package provides on the PATH, so the script's check after installing is exercised too.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT

SCRIPT = ROOT / "scripts" / "system-deps.sh"
ALL_TOOLS = ("npm", "latexmk", "pdflatex", "kpsewhich", "pdftotext")
# What each Debian package puts on the PATH (texlive-latex-recommended pulls in texlive-latex-base).
PROVIDES = {"npm": ["npm"], "latexmk": ["latexmk"], "texlive-latex-recommended": ["pdflatex", "kpsewhich"],
            "poppler-utils": ["pdftotext"], "slurmctld": ["slurmctld"], "slurmd": ["slurmd"],
            "slurm-client": ["sbatch", "srun", "squeue", "sinfo", "scontrol"], "munge": ["munged"]}
SLURM_TOOLS = ("slurmctld", "slurmd", "sbatch", "srun", "squeue", "sinfo", "scontrol", "munged")

FAKE_APT = """#!/bin/bash
echo "$*" >> "{log}"
if [[ $1 == install ]]; then
  {fail}
  for pkg in "$@"; do
    case $pkg in
{cases}
    esac
  done
fi
"""


def stub(path: Path, body: str = "exit 0") -> None:
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(0o755)


def run_script(tmp_path: Path, present=(), uid: int = 0, apt_fails: bool = False, node_with_npm=False, args=()):
    bin_dir, log = tmp_path / "bin", tmp_path / "apt.log"
    bin_dir.mkdir()
    for tool in present:
        stub(bin_dir / tool)
    stub(bin_dir / "id", f"echo {uid}")
    cases = "\n".join(f"      {pkg}) " + "; ".join(f"printf '#!/bin/bash\\n' > '{bin_dir / t}'; "
                                                  f"/bin/chmod +x '{bin_dir / t}'"
                                                  for t in tools) + " ;;" for pkg, tools in PROVIDES.items())
    fail = ('echo "E: Unable to correct problems, you have held broken packages." >&2; exit 100' if apt_fails
            else "")
    stub(bin_dir / "apt-get", FAKE_APT.format(log=log, fail=fail, cases=cases).split("\n", 1)[1])
    if node_with_npm:  # a Node.js installed from elsewhere with its own npm, npm not on the PATH
        stub(bin_dir / "node")
        bundled = tmp_path / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
        bundled.parent.mkdir(parents=True)
        bundled.write_text("")
    proc = subprocess.run(["/bin/bash", str(SCRIPT), *args], env={"PATH": str(bin_dir)}, capture_output=True, text=True)
    calls = log.read_text().splitlines() if log.exists() else []
    return proc, calls


def installed(calls: list[str]) -> set[str]:
    words = [c.split() for c in calls if c.startswith("install")]
    assert len(words) <= 1, calls
    return {w for w in words[0][1:] if not w.startswith("-")} if words else set()


def test_npm_present_latex_absent_installs_only_the_providers_of_the_missing_tools(tmp_path):
    proc, calls = run_script(tmp_path, present=["npm"])
    assert proc.returncode == 0, proc.stderr
    assert calls[0].startswith("update")  # the package lists are refreshed before installing
    assert installed(calls) == {"latexmk", "texlive-latex-recommended", "poppler-utils"}  # never npm
    assert "--no-install-recommends" in calls[1]
    assert "missing: latexmk pdflatex booktabs.sty" in proc.stdout
    assert "installed latexmk texlive-latex-recommended poppler-utils" in proc.stdout


def test_everything_present_asks_apt_for_nothing(tmp_path):
    proc, calls = run_script(tmp_path, present=ALL_TOOLS)
    assert proc.returncode == 0, proc.stderr
    assert calls == []
    assert "are present" in proc.stdout


@pytest.mark.parametrize("absent, expected", [
    ("pdftotext", {"poppler-utils"}),
    ("latexmk", {"latexmk"}),
    ("kpsewhich", {"texlive-latex-recommended"}),  # no kpsewhich: the TeX packages cannot be found either
    ("npm", {"npm"}),  # neither npm nor a Node.js that ships it
])
def test_one_missing_tool_asks_for_its_package_only(tmp_path, absent, expected):
    proc, calls = run_script(tmp_path, present=[t for t in ALL_TOOLS if t != absent])
    assert proc.returncode == 0, proc.stderr
    assert installed(calls) == expected


def test_a_nodejs_that_ships_npm_is_never_given_debians_npm(tmp_path):
    proc, calls = run_script(tmp_path, present=["latexmk", "pdflatex", "kpsewhich"], node_with_npm=True)
    assert proc.returncode == 0, proc.stderr
    assert installed(calls) == {"poppler-utils"}
    assert "npm is not on the PATH, but Node.js ships it" in proc.stderr


def test_not_root_prints_the_apt_line_and_installs_nothing(tmp_path):
    proc, calls = run_script(tmp_path, present=["npm", "latexmk"], uid=1000)
    assert proc.returncode == 1
    assert calls == []
    assert "sudo apt-get install -y --no-install-recommends texlive-latex-recommended poppler-utils" in proc.stderr


def test_an_apt_failure_names_the_packages_and_shows_apts_message(tmp_path):
    proc, calls = run_script(tmp_path, present=["npm"], apt_fails=True)
    assert proc.returncode == 1
    assert "apt-get install latexmk texlive-latex-recommended poppler-utils failed" in proc.stderr
    assert "E: Unable to correct problems, you have held broken packages." in proc.stderr


def test_for_the_tests_it_also_installs_slurm_and_munge_as_root(tmp_path):
    proc, calls = run_script(tmp_path, present=ALL_TOOLS, args=["--test"])
    assert proc.returncode == 0, proc.stderr
    assert installed(calls) == {"slurmctld", "slurmd", "slurm-client", "munge"}
    assert "installed slurmctld slurmd slurm-client munge" in proc.stdout


def test_for_the_tests_without_root_slurm_is_not_asked_for(tmp_path):
    """The SLURM test skips without root, so nothing is missing for it then."""
    proc, calls = run_script(tmp_path, present=ALL_TOOLS, uid=1000, args=["--test"])
    assert proc.returncode == 0, proc.stderr
    assert calls == [] and "SLURM" not in proc.stdout


def test_slurm_present_and_a_bad_option(tmp_path):
    proc, calls = run_script(tmp_path, present=ALL_TOOLS + SLURM_TOOLS, args=["--test"])
    assert proc.returncode == 0 and calls == [], proc.stderr
    assert "and SLURM and munge for the tests" in proc.stdout
    (tmp_path / "again").mkdir()
    proc, _ = run_script(tmp_path / "again", present=ALL_TOOLS, args=["--slurm"])
    assert proc.returncode == 2 and proc.stderr == "error: unknown option --slurm (usage: system-deps.sh [--test])\n"
