"""The plan a change is compared with: another git revision planned the same way, or a saved plan.

A revision is exported with `git archive` into a temporary directory (the repository and its
worktrees are never touched) and planned there under mocks by its own tools/plan.py when that can
write a snapshot, else by this checkout's tools against its files. Both runs hash secrets with one
random salt, so a changed secret shows as changed without its value ever being written down.
"""

import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tools.diff import FORMAT
from tools.mockrun import ROOT

DEFAULT_BRANCHES = ("main", "origin/main")
SALT_ENV = "KUMOMTA_PLAN_SALT"


@dataclass
class Base:
    label: str
    records: list[dict] | None = None  # None: nothing to compare with
    notes: list[str] = field(default_factory=list)
    salted: bool = False  # secrets carry comparable digests


class BaseError(Exception):
    """BASE names nothing this tool can read."""


def salt() -> str:
    """This invocation's salt for secret digests, shared with the base run through the environment."""
    return os.environ.setdefault(SALT_ENV, secrets.token_hex(16))


def load(base: str | None, stack: str, root: Path = ROOT) -> Base:
    """BASE as given to `make plan`: empty for the merge base with main, `none`, a saved plan JSON, or a git ref."""
    if base == "none":
        return Base("nothing (BASE=none): every resource is new", [])
    if base and base.endswith(".json") and Path(base).is_file():
        return _saved(Path(base), stack)
    if not base:
        commit, label = _merge_base(root)
        if commit is None:
            return Base(label, None)
    else:
        commit = _git(root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
        if commit is None:
            raise BaseError(f"BASE={base}: not a saved plan (*.json) nor a git revision")
        label = f"{base} ({commit[:10]})"
    return _planned(commit, label, stack, root)


def _saved(path: Path, stack: str) -> Base:
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError) as err:  # ValueError: not UTF-8, not JSON
        raise BaseError(f"BASE={path}: not a plan written by `make plan PLAN_ARGS=--json` ({err})") from None
    problem = _not_a_plan(document)
    if problem:
        raise BaseError(f"BASE={path}: not a plan written by `make plan PLAN_ARGS=--json` ({problem})")
    base = Base(f"the saved plan {path}", document["resources"])
    if document.get("stack") != stack:
        base.notes.append(f"{path} is a plan of stack {document.get('stack')!r}, not {stack!r}")
    base.notes.append("a saved plan holds no secret values: changes to secrets are not shown")
    return base


# The fields of a saved resource (tools/diff.py, records) that the comparison reads, and their JSON types.
_RECORD_FIELDS = {
    "urn": str,
    "type": str,
    "name": str,
    "parent": str,
    "custom": bool,
    "protect": bool,
    "retainOnDelete": bool,
    "deleteBeforeReplace": bool,
    "ignoreChanges": list,
    "aliases": list,
    "propertyDependencies": dict,
    "inputs": dict,
    "computed": list,
}


def _not_a_plan(document) -> str | None:
    """Why a JSON document is not a saved plan this tool can compare with, or None."""
    if not isinstance(document, dict) or not isinstance(document.get("resources"), list):
        return "no `resources` list"
    if document.get("format") != FORMAT:
        return f"format {document.get('format')!r}, this tool reads {FORMAT!r}"
    for index, record in enumerate(document["resources"]):
        if not isinstance(record, dict):
            return f"resources[{index}] is not an object"
        for key, kind in _RECORD_FIELDS.items():
            if not isinstance(record.get(key), kind):
                return f"resources[{index}].{key} is missing or not a {kind.__name__}"
        if not all(isinstance(alias, dict) for alias in record["aliases"]):
            return f"resources[{index}].aliases holds something that is not an object"
    return None


def _merge_base(root: Path) -> tuple[str | None, str]:
    for branch in DEFAULT_BRANCHES:
        commit = _git(root, "merge-base", "HEAD", branch)
        if commit:
            return commit, f"{branch} (merge base {commit[:10]})"
    return None, "nothing: no main branch to find a merge base with (set BASE=<git ref> or BASE=none)"


def _planned(commit: str, label: str, stack: str, root: Path) -> Base:
    with tempfile.TemporaryDirectory(prefix="kumomta-base-") as tmp:
        tree = Path(tmp) / "tree"
        tree.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(root), "archive", "--format=tar", commit], capture_output=True, check=False
        )
        if archive.returncode != 0:
            raise BaseError(f"git archive {commit[:10]}: {archive.stderr.decode().strip()}")
        with tarfile.open(fileobj=io.BytesIO(archive.stdout), mode="r:") as tar:
            tar.extractall(tree, filter="data")
        if not (tree / f"Pulumi.{stack}.yaml").is_file():
            return Base(label, [], [f"Pulumi.{stack}.yaml does not exist at {commit[:10]}: every resource is new"])
        own = (tree / "tools" / "plan.py").is_file() and "--snapshot" in (tree / "tools" / "plan.py").read_text()
        if own:
            records, reason = _snapshot(tree, stack, Path(tmp) / "own.json")
            if records is not None:
                return Base(label, records, salted=True)
        shutil.rmtree(tree / "tools", ignore_errors=True)
        shutil.copytree(root / "tools", tree / "tools", ignore=shutil.ignore_patterns("__pycache__"))
        records, reason = _snapshot(tree, stack, Path(tmp) / "ours.json")
        if records is None:
            return Base(label, None, [f"the base could not be planned ({reason}); no diff"])
        why = "its own write another snapshot format" if own else "its own cannot write a snapshot"
        return Base(label, records, [f"{commit[:10]} was planned with this checkout's tools ({why})"], salted=True)


def _snapshot(tree: Path, stack: str, out: Path) -> tuple[list[dict] | None, str]:
    """The records of `tree`'s program, planned by the tools in `tree`; or None and why not."""
    done = subprocess.run(
        [sys.executable, "-m", "tools.plan", "--stack", stack, "--snapshot", str(out)],
        cwd=tree,
        capture_output=True,
        text=True,
        env={**os.environ, SALT_ENV: salt()},
        check=False,
    )
    if done.returncode != 0 or not out.is_file():
        return None, (done.stderr.strip().splitlines() or ["no output"])[-1]
    document = json.loads(out.read_text())
    if document.get("format") != FORMAT:
        return None, f"snapshot format {document.get('format')!r}, not {FORMAT!r}"
    return document["resources"], ""


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None
