"""A DVC remote for what DVC caches (raw and processed data, checkpoints, adversarial examples): `advrepro remote
URL` checks the URL, then makes it this checkout's default remote, so that `dvc push` uploads the cache and
`dvc pull` brings it back (into another clone, or after the cache was lost).

- A local directory (a shared filesystem): absolute after `~` and the current directory are applied; created when
  its parent exists; refused when it is a file or lies inside the repository (the tested default).
- `s3://BUCKET/PATH`: needs DVC's S3 support (`pip install -e '.[s3]'`, the dvc-s3 package); credentials as for
  the AWS CLI (environment, ~/.aws); another S3-compatible store: `dvc remote modify --local storage endpointurl URL`.
- `ssh://[USER@]HOST[:PORT]/PATH`: needs DVC's SSH support (`pip install -e '.[ssh]'`, dvc-ssh); keys and users
  as in ~/.ssh/config, or `dvc remote modify --local storage keyfile PATH`.

The remote is written to .dvc/config.local (`dvc remote add --local --default`): it belongs to this checkout, and
the committed .dvc/config names no one's directory or bucket. Running the command again replaces it.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from .errors import AdvreproError

NAME = "storage"
# scheme -> (the module DVC needs for it, the extra of pyproject.toml that installs it)
SUPPORT = {"s3": ("dvc_s3", "s3"), "ssh": ("dvc_ssh", "ssh")}
USAGE = "a directory, s3://BUCKET/PATH or ssh://HOST/PATH"


def resolve(url: str, repo: Path) -> str:
    """The URL to give DVC for `url`, or an AdvreproError saying in one line why it cannot be a remote."""
    if not url.strip():
        raise AdvreproError(f"remote: the URL is empty; give {USAGE}")
    scheme, sep, rest = url.partition("://")
    if sep:
        scheme = scheme.lower()
        if scheme == "file":
            url = rest
        elif scheme in SUPPORT:
            module, extra = SUPPORT[scheme]
            if importlib.util.find_spec(module) is None:
                raise AdvreproError(f"{url}: DVC's {scheme.upper()} support is not installed: "
                                    f"pip install -e '.[{extra}]' (the {module.replace('_', '-')} package)")
            if not rest.split("/", 1)[0]:
                raise AdvreproError(f"{url}: no {'bucket' if scheme == 's3' else 'host'} after {scheme}://")
            return url
        else:
            raise AdvreproError(f"{url}: a {scheme}:// remote is not set up by this command; give {USAGE} "
                                "(any other kind: `dvc remote add`)")
    path = Path(os.path.abspath(Path(url).expanduser()))
    inside = path.resolve()
    if inside == repo or repo in inside.parents:
        raise AdvreproError(f"{url}: inside this repository ({repo}); a remote lives outside it, e.g. on a shared "
                            "filesystem")
    if path.exists() and not path.is_dir():
        raise AdvreproError(f"{url}: not a directory")
    if not path.exists():
        if not path.parent.is_dir():
            raise AdvreproError(f"{url}: its parent directory {path.parent} does not exist")
        path.mkdir()
    if not os.access(path, os.W_OK | os.X_OK):
        raise AdvreproError(f"{url}: not writable")
    return str(path)


def add(url: str, repo: Path = Path(".")) -> str:
    """Make `url` the default DVC remote of the repository at `repo`; returns what DVC was given."""
    repo = repo.resolve()
    if not (repo / ".dvc").is_dir():
        raise AdvreproError(f"{repo}: not a DVC repository (no .dvc/ here); run this at the checkout's root")
    target = resolve(url, repo)
    proc = subprocess.run([sys.executable, "-m", "dvc", "remote", "add", "--local", "--default", "--force", NAME,
                           target], cwd=repo, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
        raise AdvreproError(f"dvc remote add {NAME} {target}: {lines[-1] if lines else f'exit {proc.returncode}'}")
    return target
