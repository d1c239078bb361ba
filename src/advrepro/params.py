"""params.yaml: load, validate against the schema, resolve the active profile.

Every entry point calls `load_params` first, so a bad value stops the run with
one line naming the key before any data is touched.
"""
from __future__ import annotations

import copy
import math
import stat
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import ParamsError


def _schema() -> dict:
    """The schema, with the names the registries know: a model or defence registered anywhere (a test
    included) is valid in params.yaml without editing the schema file."""
    from .attacks import ATTACKS
    from .defences import DEFENCES
    from .models import MODELS

    schema = yaml.safe_load(resources.files("advrepro").joinpath("schemas/params.schema.yaml").read_text())
    schema["$defs"]["models"]["items"]["enum"] = MODELS.names()
    schema["$defs"]["robust"]["properties"]["algorithm"]["enum"] = [d for d in DEFENCES if d != "plain"]
    schema["$defs"]["seed_evaluation"]["properties"]["attacks"]["items"]["enum"] = ATTACKS.names()
    return schema


# A params file is a few tens of kilobytes: anything far larger, or a stream, is not one.
MAX_BYTES = 1 << 20
# Aliases let a tiny file expand to an enormous structure (a "billion laughs"); params.yaml uses none.
MAX_ALIASES = 20
MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses duplicate keys (PyYAML keeps the last silently) and counts aliases."""

    def __init__(self, stream):
        super().__init__(stream)
        self.aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise _LoadError(f"line {mark.line + 1}: more than {MAX_ALIASES} YAML aliases (*name)")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                raise _LoadError(f"line {key_node.start_mark.line + 1}: a key that is not a scalar") from None
            if duplicate:
                raise _LoadError(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
            seen.add(key)
        return super().construct_mapping(node, deep)


class _LoadError(Exception):
    pass


def read_yaml(path: str | Path, what: str = "params file"):
    """Parse a small YAML file strictly: a regular file of at most MAX_BYTES, UTF-8, no duplicate keys, at
    most MAX_ALIASES aliases. Raises ParamsError with one line naming the file."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except OSError as exc:
        raise ParamsError(f"{path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):  # a FIFO would block, /dev/zero never ends, a directory fails oddly
        raise ParamsError(f"{path}: not a regular file (a {what} must be one)")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ParamsError(f"{path}: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise ParamsError(f"{path}: larger than {MAX_BYTES // 1024} KiB; not a {what}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ParamsError(f"{path}: line {line}: byte {data[exc.start]:#04x} is not UTF-8") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except _LoadError as exc:
        raise ParamsError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ParamsError(f"{path}:{where} YAML syntax error: {problem}") from None
    except RecursionError:
        raise ParamsError(f"{path}: nested too deeply") from None


def _check_numbers(value, where: list[str], source: str) -> None:
    """NaN and ±inf are refused everywhere: every bound in the schema lets NaN through (comparisons with
    NaN are false), and no knob of this pipeline has a meaning for an infinite value."""
    if isinstance(value, float) and not math.isfinite(value):
        key = ".".join(where) or "<top level>"
        raise ParamsError(f"{source}: {key}: bad value {value!r}: not a finite number", where)
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        _check_numbers(v, where + [str(k)], source)


def deep_merge(base: dict, override: dict) -> dict:
    """Return base with override merged in (dicts recursively, everything else replaced)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# Integers are ints: JSON Schema counts 3.0 as an integer, which then reaches range() or an array shape
# and fails deep inside numpy or JAX. The rule: an integer knob is written without a decimal point.
_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool)))


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown key")
    if error.validator == "required":
        return error.message.replace("is a required property", "is missing")
    if error.validator == "type" and isinstance(error.instance, float) and error.instance.is_integer():
        return f"bad value {error.instance!r}: an integer is written without a decimal point"
    return f"bad value {error.instance!r}: {error.message}"


def validate(raw: dict, source: str = "params.yaml") -> None:
    """Validate the base values and every profile; raise ParamsError on the first problem."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    _check_numbers(raw, [], source)
    validator = _Validator(_schema())
    profiles = raw.get("profiles") if isinstance(raw.get("profiles"), dict) else {}
    candidates = [("", raw)] + [
        (f" (profile {name!r})", deep_merge(raw, overlay))
        for name, overlay in profiles.items() if isinstance(overlay, dict)
    ]
    for label, values in candidates:
        errors = sorted(validator.iter_errors(values), key=lambda e: (list(e.absolute_path), e.message))
        if errors:
            error = jsonschema.exceptions.best_match(errors)
            raise ParamsError(f"{source}{label}: {_key_path(error)}: {_describe(error)}", error.absolute_path)
        _check_consistency(values, f"{source}{label}")
    if raw["profile"] not in profiles:
        raise ParamsError(
            f"{source}: profile: unknown profile {raw['profile']!r} (known: {', '.join(sorted(profiles))})",
            ("profile",))


def _check_consistency(values: dict, where: str) -> None:
    """Constraints between keys that a JSON schema cannot express."""
    for name in ("mnist", "gtsrb"):
        size, patch = values[name]["data"]["image_size"], values[name]["model"]["patch"]
        if size % patch:
            raise ParamsError(f"{where}: {name}.model.patch: bad value {patch}: must divide "
                              f"{name}.data.image_size = {size}", (name, "model", "patch"))
    for name in ("speech", "urban"):
        _check_audio(values, name, where)
    for path in (("fmnist", "r1"), ("fmnist", "s3"), ("mnist", "p4")):
        _check_seed_section(values, path, where)
    if "P4" in values.get("seed_parts", ()):  # part P4's deepest network must fit the digits (3x3 convs, a pool)
        size, deepest = values["mnist"]["data"]["image_size"], max(
            (v.get("convs", 2) for v in values["mnist"]["p4"].get("variants", {}).values()), default=2)
        if size < 2 * deepest + 2:
            raise ParamsError(f"{where}: mnist.data.image_size: bad value {size}: part P4's {deepest} 3x3 "
                              f"convolutions and 2x2 pool need at least {2 * deepest + 2} pixels",
                              ("mnist", "data", "image_size"))
    _check_scenarios(values, where)


def _check_scenarios(values: dict, where: str) -> None:
    """Every experiment's scenario finds its defence section and its model variant in its dataset's section."""
    from .experiments import DATASETS, SEED_PARTS, all_experiments, lookup

    for exp in all_experiments({**values, "seed_parts": list(SEED_PARTS)}):  # the parts a run leaves out too
        name = DATASETS[exp.dataset].section
        section = lookup(values, name)
        d, v = exp.scenario.defence_spec, exp.scenario.variant
        if d is not None and d not in section:
            raise ParamsError(f"{where}: {name}.{d}: missing (experiment {exp.id} trains with it)",
                              (*name.split("."), d))
        if v is not None and v not in section.get("variants", {}):
            raise ParamsError(f"{where}: {name}.variants.{v}: missing (experiment {exp.id} uses this model variant)",
                              (*name.split("."), "variants"))


def _check_seed_section(values: dict, path: tuple[str, ...], where: str) -> None:
    """A seed part's evaluation runs the clean accuracy and takes its strong worst case at some of its epsilons."""
    section = values
    for key in path:
        section = section[key]
    name = ".".join(path)
    ev = section["evaluation"]
    if "plain" not in ev["attacks"]:
        raise ParamsError(f"{where}: {name}.evaluation.attacks: must include 'plain' (the clean accuracy every "
                          f"robust accuracy is measured against)", (*path, "evaluation", "attacks"))
    for eps in ev.get("strong_epsilons", ()):
        if eps not in ev["epsilons"]:
            raise ParamsError(f"{where}: {name}.evaluation.strong_epsilons: bad value {eps}: not one of "
                              f"{name}.evaluation.epsilons", (*path, "evaluation", "strong_epsilons"))
    epochs = section["train"]["epochs"]
    for key, defence in section.items():
        clean = defence.get("clean_epochs", 0) if isinstance(defence, dict) else 0
        if clean >= epochs:  # no epoch of the defence would run
            raise ParamsError(f"{where}: {name}.{key}.clean_epochs: bad value {clean}: must be below "
                              f"{name}.train.epochs = {epochs}", (*path, key, "clean_epochs"))


def _check_audio(values: dict, name: str, where: str) -> None:
    section = values[name]
    rate, raw_rate = section["data"]["sample_rate"], section["features"]["raw_rate"]
    if raw_rate > rate:
        raise ParamsError(f"{where}: {name}.features.raw_rate: bad value {raw_rate}: exceeds "
                          f"{name}.data.sample_rate = {rate}", (name, "features", "raw_rate"))
    samples = round(section["data"].get("duration", 1.0) * raw_rate)  # speech clips last one second
    conv = section["raw"]["model"]
    if conv["conv_kernel"] % conv["conv_stride"]:
        raise ParamsError(f"{where}: {name}.raw.model.conv_kernel: bad value {conv['conv_kernel']}: must be a "
                          f"multiple of {name}.raw.model.conv_stride = {conv['conv_stride']}",
                          (name, "raw", "model", "conv_kernel"))
    if conv["conv_kernel"] > samples:
        raise ParamsError(f"{where}: {name}.raw.model.conv_kernel: bad value {conv['conv_kernel']}: "
                          f"longer than the {samples} samples of a clip", (name, "raw", "model", "conv_kernel"))


def resolve(raw: dict, profile: str | None = None) -> dict:
    """The active configuration: profiles[profile] deep-merged onto the base values."""
    name = profile or raw["profile"]
    if name not in raw["profiles"]:
        raise ParamsError(f"profile: unknown profile {name!r} (known: {', '.join(sorted(raw['profiles']))})")
    resolved = deep_merge(raw, raw["profiles"][name])
    resolved["profile"] = name
    return resolved


def load_params(path: str | Path = "params.yaml", profile: str | None = None) -> dict[str, Any]:
    """Read, validate and resolve a params file. Raises ParamsError with a one-line message."""
    path = Path(path)
    raw = read_yaml(path)
    validate(raw, str(path))
    if profile is not None:
        validate(dict(raw, profile=profile), str(path))
    return resolve(raw, profile)
