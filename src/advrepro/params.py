"""params.yaml: load, validate against the schema, resolve the active profile.

Every entry point calls `load_params` first, so a bad value stops the run with
one line naming the key before any data is touched.
"""
from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import ParamsError


def _schema() -> dict:
    """The schema, with the names the registries know: a model or defence registered anywhere (a test
    included) is valid in params.yaml without editing the schema file."""
    from .defences import DEFENCES
    from .models import MODELS

    schema = yaml.safe_load(resources.files("advrepro").joinpath("schemas/params.schema.yaml").read_text())
    schema["$defs"]["models"]["items"]["enum"] = MODELS.names()
    schema["$defs"]["robust"]["properties"]["algorithm"]["enum"] = [d for d in DEFENCES if d != "plain"]
    return schema


def deep_merge(base: dict, override: dict) -> dict:
    """Return base with override merged in (dicts recursively, everything else replaced)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown key")
    if error.validator == "required":
        return error.message.replace("is a required property", "is missing")
    return f"bad value {error.instance!r}: {error.message}"


def validate(raw: dict, source: str = "params.yaml") -> None:
    """Validate the base values and every profile; raise ParamsError on the first problem."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    validator = jsonschema.Draft202012Validator(_schema())
    profiles = raw.get("profiles") if isinstance(raw.get("profiles"), dict) else {}
    candidates = [("", raw)] + [
        (f" (profile {name!r})", deep_merge(raw, overlay))
        for name, overlay in profiles.items() if isinstance(overlay, dict)
    ]
    for label, values in candidates:
        errors = sorted(validator.iter_errors(values), key=lambda e: (list(e.absolute_path), e.message))
        if errors:
            error = jsonschema.exceptions.best_match(errors)
            raise ParamsError(f"{source}{label}: {_key_path(error)}: {_describe(error)}")
        _check_consistency(values, f"{source}{label}")
    if raw["profile"] not in profiles:
        raise ParamsError(
            f"{source}: profile: unknown profile {raw['profile']!r} (known: {', '.join(sorted(profiles))})")


def _check_consistency(values: dict, where: str) -> None:
    """Constraints between keys that a JSON schema cannot express."""
    for name in ("mnist", "gtsrb"):
        size, patch = values[name]["data"]["image_size"], values[name]["model"]["patch"]
        if size % patch:
            raise ParamsError(f"{where}: {name}.model.patch: bad value {patch}: must divide "
                              f"{name}.data.image_size = {size}")
    for name in ("speech", "urban"):
        _check_audio(values, name, where)


def _check_audio(values: dict, name: str, where: str) -> None:
    section = values[name]
    rate, raw_rate = section["data"]["sample_rate"], section["features"]["raw_rate"]
    if raw_rate > rate:
        raise ParamsError(f"{where}: {name}.features.raw_rate: bad value {raw_rate}: exceeds "
                          f"{name}.data.sample_rate = {rate}")
    samples = round(section["data"].get("duration", 1.0) * raw_rate)  # speech clips last one second
    conv = section["raw"]["model"]
    if conv["conv_kernel"] % conv["conv_stride"]:
        raise ParamsError(f"{where}: {name}.raw.model.conv_kernel: bad value {conv['conv_kernel']}: must be a "
                          f"multiple of {name}.raw.model.conv_stride = {conv['conv_stride']}")
    if conv["conv_kernel"] > samples:
        raise ParamsError(f"{where}: {name}.raw.model.conv_kernel: bad value {conv['conv_kernel']}: "
                          f"longer than the {samples} samples of a clip")


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
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ParamsError(f"{path}:{where}: YAML syntax error: {problem}") from None
    validate(raw, str(path))
    if profile is not None:
        validate(dict(raw, profile=profile), str(path))
    return resolve(raw, profile)
