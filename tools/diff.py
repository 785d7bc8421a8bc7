"""What `pulumi preview --diff` would show for a change: two offline plans compared resource by resource.

A plan is the list of registrations a mock run recorded (`records`): inputs as registered (camelCase,
numbers as floats), options, aliases and which resource each input came from. Two records are the
same resource when their URNs match, directly or through an alias. A changed input is classified by
tools/replacements.py; an input whose source resource is replaced changes too (its ID is new), so
replacements cascade the way the engine's do. Inputs in `ignoreChanges` never update a resource; if
a running host would miss them, tools/hostreach.py says so per host. Secret values are masked before
anything is compared or printed.
"""

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pulumi.runtime.rpc import _special_secret_sig, _special_sig_key

from tools import hostreach
from tools.mockrun import Run
from tools.replacements import TYPES, TypeRules

FORMAT = "kumomta-plan/2"  # of records, in snapshots and in `--json`
SECRET = "[secret]"
_MISSING = object()

HOST_TYPES = {"kumomta:index:MtaHost", "kumomta:index:ProxyHost"}
ROLE_HOSTS = {"mta": "every MTA", "proxy": "every proxy"}

# What a protected resource is, in the guide's words.
PROTECTED_TERMS = {
    "aws:ec2/eip:Eip": "sending IP",
    "hcloud:index/primaryIp:PrimaryIp": "sending IP",
    "aws:ebs/volume:Volume": "spool volume",
    "hcloud:index/volume:Volume": "spool volume",
    "hcloud:index/zone:Zone": "DNS zone",
}
_REPLACED_MEANS = {
    "sending IP": "a new address (no sending reputation, no PTR)",
    "spool volume": "a new, empty volume (queued mail stays on the old one)",
    "DNS zone": "a new zone (new name servers)",
}


def records(run: Run, salt: str | None = None) -> list[dict]:
    """The registrations as plain data. Secret values become `[secret]`, or, with a salt, a digest that
    compares equal only to the same value under the same salt (so two runs of one invocation compare)."""
    return [
        {
            "urn": r.urn,
            "type": r.type,
            "name": r.name,
            "parent": r.parent,
            "custom": r.custom,
            "protect": r.protect,
            "retainOnDelete": r.retain_on_delete,
            "deleteBeforeReplace": r.delete_before_replace,
            "ignoreChanges": list(r.ignore_changes),
            "aliases": list(r.aliases),
            "propertyDependencies": {k: sorted(v) for k, v in sorted(r.property_dependencies.items())},
            "inputs": mask(r.inputs, salt),
            "computed": _computed(r),
        }
        for r in run.registrations
    ]


def _computed(registration) -> list[str]:
    """Digests of what the cloud computes for a resource (its ID, and state that isn't an input): a value
    a dependent took from these is new when the resource is replaced; one it took from an input is not."""
    values = [registration.id] if registration.id else []
    for key, value in registration.state.items():
        if registration.inputs.get(key) != value:
            values += _leaves(value)
    return sorted({_digest(v) for v in values})


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def _digest(value: Any) -> str:
    """One key for a leaf value, whether it travels as the ID string "17" or the number 17.0."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return hashlib.sha256(str(value).encode()).hexdigest()[:16]


def mask(value: Any, salt: str | None = None) -> Any:
    if isinstance(value, dict):
        if value.get(_special_sig_key) == _special_secret_sig:
            if salt is None:
                return SECRET
            digest = hashlib.sha256((salt + json.dumps(value.get("value"), sort_keys=True)).encode()).hexdigest()
            return f"{SECRET}:{digest[:32]}"
        return {k: mask(v, salt) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, salt) for v in value]
    return value


@dataclass
class Property:
    """One changed input: `old`/`new` are masked values, or `_MISSING`."""

    path: str
    old: Any
    new: Any
    kind: str = "update"  # replace | update | unknown
    note: str | None = None
    after: str | None = None  # the replaced resource this value comes from: known only after the replacement


@dataclass
class Step:
    op: str  # create | update | replace | delete | same
    record: dict
    changes: list[Property] = field(default_factory=list)
    ignored: list[Property] = field(default_factory=list)
    was: str | None = None  # the base URN, when an alias matched it
    old: dict | None = None  # the base record

    @property
    def flags(self) -> list[str]:
        r = self.record
        return [f for f, on in (("protect", r["protect"]), ("retain on delete", r["retainOnDelete"])) if on]


@dataclass
class Diff:
    base: str
    steps: list[Step]
    errors: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)

    def count(self, op: str) -> int:
        return sum(step.op == op for step in self.steps)

    def summary(self) -> str:
        """Pulumi's summary, on one line: `Resources: + 2 to create, ~ 1 to update, +-1 to replace, 3 unchanged`."""
        parts = [
            f"{sign}{self.count(op)} to {op}"
            for sign, op in (("+ ", "create"), ("~ ", "update"), ("- ", "delete"), ("+-", "replace"))
            if self.count(op)
        ]
        if self.count("same"):
            parts.append(f"{self.count('same')} unchanged")
        return "Resources: " + (", ".join(parts) or "none")


def compare(base: list[dict] | None, head: list[dict], base_label: str, rules=TYPES) -> Diff:
    base = base or []
    by_urn = {r["urn"]: r for r in base}
    head_urns = {r["urn"] for r in head}
    head_by_urn = {r["urn"]: r for r in head}
    matched: dict[str, dict] = {}  # head URN -> base record
    for record in head:
        for urn in [record["urn"], *_alias_urns(record, head_by_urn)]:
            claimed = any(m["urn"] == urn for m in matched.values())
            if urn in by_urn and not claimed and (urn == record["urn"] or urn not in head_urns):
                matched[record["urn"]] = by_urn[urn]
                break

    steps: list[Step] = []
    replaced: dict[str, dict] = {}  # head URN -> record
    for record in head:
        old = matched.get(record["urn"])
        if old is None:
            steps.append(Step("create", record))
            continue
        step = _step(old, record, replaced, rules.get(record["type"]))
        if step.op == "replace":
            replaced[record["urn"]] = record
        steps.append(step)
    taken = {r["urn"] for r in matched.values()}
    steps += [Step("delete", r, old=r) for r in base if r["urn"] not in taken]

    names = {r["urn"]: r for r in [*base, *head]}
    diff = Diff(base_label, sorted(steps, key=lambda step: _tree_key(step.record, names)))
    diff.errors = [error for step in steps if (error := _protected(step, names))]
    diff.hosts = _host_notes(steps, names)
    return diff


def _step(old: dict, new: dict, replaced: dict[str, dict], rules: TypeRules | None) -> Step:
    changes = _changes(old["inputs"], new["inputs"])
    changed = {c.path.split(".")[0] for c in changes}
    for prop, urns in new.get("propertyDependencies", {}).items():
        if prop in changed:
            continue
        leaves = {_digest(v) for v in _leaves(new["inputs"].get(prop))}
        sources = [replaced[u]["name"] for u in urns if u in replaced and leaves & set(replaced[u]["computed"])]
        if sources:
            changes.append(Property(prop, old["inputs"].get(prop, _MISSING), _MISSING, after=sources[0]))
    ignore = set(new.get("ignoreChanges", []))
    ignored = [c for c in changes if c.path.split(".")[0] in ignore]
    active = [c for c in changes if c.path.split(".")[0] not in ignore]
    for change in active:
        _classify(change, new, rules)
    op = "replace" if any(c.kind == "replace" for c in active) else "update" if active else "same"
    was = old["urn"] if old["urn"] != new["urn"] else None
    return Step(op, new, active, ignored, was, old)


def _classify(change: Property, record: dict, rules: TypeRules | None) -> None:
    if not record["custom"]:
        return
    if rules is None:
        change.kind, change.note = "unknown", f"{record['type']} is not in tools/replacements.py: assumed in place"
        return
    change.kind = rules.classify(change.path)
    if change.kind == "replace":
        change.note = "forces replacement"
    elif change.kind == "unknown":
        change.kind, change.note = "update", "not in tools/replacements.py: assumed in place"
    else:
        change.note = rules.effect(change.path)
        if change.path in rules.cannot_shrink and _lower(change.old, change.new):
            change.note = "the cloud cannot shrink it: this update will fail"


def _lower(old: Any, new: Any) -> bool:
    return isinstance(old, int | float) and isinstance(new, int | float) and new < old


def _changes(old: Any, new: Any, path: str = "") -> list[Property]:
    """Leaf differences; objects are walked into, lists compared whole (shown as items out and in)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in [*old, *(k for k in new if k not in old)]:
            sub = f"{path}.{key}" if path else key
            a, b = old.get(key, _MISSING), new.get(key, _MISSING)
            if a is _MISSING or b is _MISSING:
                if a != b:
                    out.append(Property(sub, a, b))
            else:
                out += _changes(a, b, sub)
        return out
    return [] if old == new else [Property(path, old, new)]


def _alias_urns(record: dict, head: dict[str, dict]) -> list[str]:
    """Former URNs of a resource: its own aliases, and those its parent's aliases imply for it."""
    urns = []
    stack, project = _stack_project(record["urn"])
    own_parents = [record["parent"]]
    if record["parent"] in head:
        own_parents += _alias_urns(head[record["parent"]], head)
    parent_name = record["parent"].rsplit("::", 1)[-1] if record["parent"] else ""
    specs = [*record.get("aliases", []), {}]  # {} = the resource's current name and type
    for spec in specs:
        if "urn" in spec:
            urns.append(spec["urn"])
            continue
        parents = [""] if spec.get("noParent") else [spec["parentUrn"]] if spec.get("parentUrn") else own_parents
        for parent in parents:
            name = spec.get("name") or record["name"]
            if parent in own_parents[1:] and parent_name and name.startswith(parent_name):
                # The engine's inheritedChildAlias (pkg/resource/deploy/step_generator.go): a child named
                # "<parent>-x" is aliased as "<parent's old name>-x" under the parent's alias.
                name = parent.rsplit("::", 1)[-1] + name[len(parent_name) :]
            urns.append(
                _urn(
                    spec.get("stack") or stack,
                    spec.get("project") or project,
                    parent,
                    spec.get("type") or record["type"],
                    name,
                )
            )
    return [u for u in dict.fromkeys(urns) if u != record["urn"]]


def _stack_project(urn: str) -> tuple[str, str]:
    head, project = urn.split("::")[:2]
    return head.removeprefix("urn:pulumi:"), project


def _urn(stack: str, project: str, parent: str, type_: str, name: str) -> str:
    """A URN as the monitor that recorded the plans makes it (pulumi/runtime/mocks.py, make_urn): the last
    type of the parent's qualified type, `$`, the type. (The real engine prefixes the parent's whole
    qualified type and leaves out the stack's; both plans come from the mock, so they agree.)"""
    qualified = f"{parent.split('::')[2].split('$')[-1]}${type_}" if parent else type_
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


def _tree_key(record: dict, names: dict[str, dict]) -> list[tuple[str, str]]:
    """Components first, then what they hold: the (type, name) path from the stack down."""
    path, current, seen = [], record, set()
    while current is not None and current["urn"] not in seen:
        seen.add(current["urn"])
        path.append((current["type"], current["name"]))
        current = names.get(current["parent"])
    return path[::-1]


def who(record: dict, names: dict[str, dict]) -> str:
    """The host a resource belongs to (its host component's name), else its role, else its own name."""
    seen, current = set(), record
    while current is not None and current["urn"] not in seen:
        if current["type"] in HOST_TYPES:
            return current["name"]
        seen.add(current["urn"])
        current = names.get(current["parent"])
    inputs = record.get("inputs", {})
    role = (inputs.get("tags") or inputs.get("labels") or {}).get("kumomta-role") if isinstance(inputs, dict) else None
    return ROLE_HOSTS.get(role, record["name"])


def _protected(step: Step, names: dict[str, dict]) -> str | None:
    r = step.record
    if step.op not in ("replace", "delete") or not (r["protect"] or (step.old or {}).get("protect")):
        return None
    term = PROTECTED_TERMS.get(r["type"], "protected resource")
    owner = r["inputs"].get("name", r["name"]) if term == "DNS zone" else who(r, names)
    what = f"the {term} {owner}" if term == "DNS zone" else f"the {term} of {owner}"
    ref = f"{r['name']} ({r['type']})"
    if step.op == "delete":
        kept = " (retainOnDelete keeps it in the account, detached)" if r["retainOnDelete"] else ""
        return f"{what} would be released{kept}: {ref} is no longer in the program"
    forced = ", ".join(c.path for c in step.changes if c.kind == "replace")
    means = _REPLACED_MEANS.get(term, "a new resource")
    return f"{what} would be released and replaced by {means}: {ref} is replaced, forced by {forced}"


def _host_notes(steps: list[Step], names: dict[str, dict]) -> list[str]:
    notes: dict[str, None] = {}
    for step in steps:
        if step.op in ("create", "delete"):
            continue
        for change in [*step.ignored, *step.changes]:
            prop = change.path.split(".")[0]
            row = hostreach.reach(step.record["type"], prop)
            if row and row.bundle:
                files = ", ".join(hostreach.changed_files(change.old, change.new)) or "its configuration"
                notes[f"{who(step.record, names)}: {files} changed; {row.says}"] = None
            elif row:
                notes[f"{who(step.record, names)}: {row.says}"] = None
            elif change in step.ignored:
                notes[f"{who(step.record, names)}: {prop} changed, but ignoreChanges keeps the running value"] = None
    return list(notes)


def render(diff: Diff) -> list[str]:
    """The diff as `pulumi preview --diff` words it, one block per changed resource."""
    out = [f"Changes against {diff.base}:"]
    symbols = {"create": "+ ", "update": "~ ", "replace": "+-", "delete": "- "}
    for step in diff.steps:
        if step.op == "same":
            continue
        r = step.record
        flags = f"  [{', '.join(step.flags)}]" if step.flags else ""
        how = step.op
        if step.op == "replace" and r["deleteBeforeReplace"]:
            how = "replace, delete first"
        out.append(f"  {symbols[step.op]}{r['name']}  ({r['type']})  {how}{flags}")
        if step.was:
            out.append(f"      renamed from {step.was}")
        for change in step.changes:
            out += _property_lines(change)
    if len(out) == 1:
        out.append("  no resource changes")
    out.append(diff.summary())
    return out


def _property_lines(change: Property) -> list[str]:
    lines = []
    files = hostreach.content_lines(change.old, change.new)
    if files:  # a host's bundle: each file's own diff says more than two JSON documents
        lines.append(f"      ~ {change.path}: the host's bundle")
        lines += [f"          {line}" for line in files]
    elif change.after:
        lines.append(f"      ~ {change.path}: {_show(change.old)} => [known after {change.after} is replaced]")
    elif isinstance(change.old, list) and isinstance(change.new, list):
        lines.append(f"      ~ {change.path}:")
        lines += [f"          - {_show(item)}" for item in _minus(change.old, change.new)]
        lines += [f"          + {_show(item)}" for item in _minus(change.new, change.old)]
    elif change.old is _MISSING:
        lines.append(f"      + {change.path}: {_show(change.new)}")
    elif change.new is _MISSING:
        lines.append(f"      - {change.path}: {_show(change.old)}")
    else:
        lines.append(f"      ~ {change.path}: {_show(change.old)} => {_show(change.new)}")
    if change.note:
        lines.append(f"          {change.note}")
    return lines


def _minus(a: list, b: list) -> list:
    rest = list(b)
    out = []
    for item in a:
        if item in rest:
            rest.remove(item)
        else:
            out.append(item)
    return out


def _show(value: Any, limit: int = 100) -> str:
    """A value as the diff prints it: numbers without `.0`, secrets as `[secret]`, long text cut."""
    text = json.dumps(_plain(value), sort_keys=True, separators=(", ", ": "))
    if len(text) > limit:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        text = f"{text[: limit - 20]}… ({len(text)} chars, sha256 {digest}…)"
    return text


def _plain(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(SECRET):
        return SECRET
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def as_json(diff: Diff) -> dict:
    """The same diff as data: one entry per step that is not `same`."""
    return {
        "base": diff.base,
        "summary": {op: diff.count(op) for op in ("create", "update", "delete", "replace", "same")},
        "steps": [
            {
                "op": step.op,
                "urn": step.record["urn"],
                "type": step.record["type"],
                "name": step.record["name"],
                **({"renamedFrom": step.was} if step.was else {}),
                "changes": [
                    {
                        "path": c.path,
                        "kind": c.kind,
                        **({"old": _plain(c.old)} if c.old is not _MISSING else {}),
                        **({"new": _plain(c.new)} if c.new is not _MISSING and not c.after else {}),
                        **({"knownAfterReplacing": c.after} if c.after else {}),
                        **({"note": c.note} if c.note else {}),
                    }
                    for c in step.changes
                ],
            }
            for step in diff.steps
            if step.op != "same"
        ],
        "errors": diff.errors,
        "hosts": diff.hosts,
    }
