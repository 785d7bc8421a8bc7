"""How a planned change reaches a running host: a small table, one row per property a running host
takes differently from the cloud resource it sits in.

The plan names these per host, so a reviewer sees that "merged and applied" is not yet "running":
first-boot changes only reach new hosts, and day-2 changes (a host's bundle) reach running hosts
through their channel, with the files that change named.
"""

import base64
import difflib
import gzip
import json
from dataclasses import dataclass
from typing import Any

FIRST_BOOT = (
    "first-boot configuration changed; only hosts created from now on run it "
    "(running hosts get every later change through their day-2 channel)"
)
_SYNC = "the running host applies it within 30 s (kumomta-sync polls its SSM parameter)"
_PUSH = "pulumi up hands it to the running host over SSH, during the update"


@dataclass(frozen=True)
class Reach:
    type: str
    property: str
    says: str
    bundle: bool = False
    """The property carries a host's bundle (or its manifest): the note names the files that change."""


REACH: tuple[Reach, ...] = (
    # cloud-init runs user data once; the program also lists these in ignoreChanges.
    Reach("aws:ec2/instance:Instance", "userDataBase64", FIRST_BOOT),
    Reach("hcloud:index/server:Server", "userData", FIRST_BOOT),
    Reach("aws:ec2/instance:Instance", "ami", "image changed; running hosts keep theirs, only new hosts get it"),
    Reach("hcloud:index/server:Server", "image", "image changed; running hosts keep theirs, only new hosts get it"),
    Reach(
        "hcloud:index/server:Server",
        "sshKeys",
        "SSH keys changed; Hetzner applies them only when a server is created",
    ),
    # The day-2 channel (components/bootstrap/bundle.py): what a running host runs and enforces.
    Reach("aws:ssm/parameter:Parameter", "insecureValue", _SYNC, bundle=True),
    Reach("aws:ssm/parameter:Parameter", "value", f"a secret file changed (the bearer map); {_SYNC}"),
    Reach("command:remote:Command", "triggers", _PUSH, bundle=True),
)

_BY_KEY = {(r.type, r.property): r for r in REACH}


def reach(type_: str, prop: str) -> Reach | None:
    return _BY_KEY.get((type_, prop))


def manifest(value: Any) -> dict[str, str] | None:
    """{path: digest} of a bundle: from a bundle parameter's value (JSON, or `gz:` base64 gzip), or from the
    manifest a push carries in its triggers; None for anything else."""
    if isinstance(value, list):
        found = [item for item in value if isinstance(item, dict)]
        return found[0] if found else None
    document = _document(value)
    if document is None:
        return None
    return {f["path"]: f["sha256"] for f in document["files"]}


def changed_files(old: Any, new: Any) -> list[str]:
    before, after = manifest(old) or {}, manifest(new) or {}
    return sorted(path for path in {*before, *after} if before.get(path) != after.get(path))


def content_lines(old: Any, new: Any, context: int = 1, limit: int = 40) -> list[str]:
    """A unified diff per changed file of two bundle parameter values (secret files are only named)."""
    before, after = _document(old), _document(new)
    if before is None or after is None:
        return []
    files = [{f["path"]: f.get("content") for f in d["files"]} for d in (before, after)]
    out = []
    for path in changed_files(old, new):
        if path not in files[0] or path not in files[1]:
            out.append(f"{'+' if path not in files[0] else '-'} {path}")
            continue
        a, b = files[0][path], files[1][path]
        if a is None or b is None:
            out.append(f"~ {path} (secret)")
            continue
        lines = list(difflib.unified_diff(a.splitlines(), b.splitlines(), path, path, n=context, lineterm=""))[2:]
        out.append(f"~ {path}")
        out += [f"  {line}" for line in lines[:limit]]
        if len(lines) > limit:
            out.append(f"  ... {len(lines) - limit} more lines")
    return out


def _document(value: Any) -> dict | None:
    if not isinstance(value, str):
        return None
    text = value
    if text.startswith("gz:"):
        text = gzip.decompress(base64.b64decode(text[3:])).decode()
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) and document.get("format") == 1 else None
