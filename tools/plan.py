"""Offline plan: what `pulumi up -s <stack>` would build, without the CLI or cloud credentials.

    python -m tools.plan --stack prod [--json FILE]

Runs `__main__.py` under Pulumi's mock engine with Pulumi.<stack>.yaml, prints the resources
grouped by component, then each role's effective port matrix in the guide's table layout, then
runs the policy pack over the planned resources as the engine would.
Exit codes: 0 planned, 1 a MANDATORY policy violation, 2 config error.
"""

import argparse
import json
import sys
from pathlib import Path

from components.matrix import ROLE_TITLES, Role
from components.settings import ConfigError
from tools import effective, policy_run
from tools.mockrun import Registration, Run, StackFileError, engine_config, run_program, settings_of, stack_config

EXIT_CONFIG = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.plan", description=__doc__.split("\n")[0])
    parser.add_argument("--stack", default="prod", help="stack name: reads Pulumi.<stack>.yaml (default: prod)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the plan as JSON to FILE")
    args = parser.parse_args(argv)

    try:
        values = stack_config(args.stack)
        settings = settings_of(values)
    except (StackFileError, ConfigError) as err:
        for line in str(err).splitlines():
            print(f"Pulumi.{args.stack}.yaml: {line}", file=sys.stderr)
        return EXIT_CONFIG

    run = run_program(args.stack, values)
    matrix = effective.lines(run)
    print(f"Plan for stack {args.stack!r}: {settings.cloud}, {settings.domain}, {len(run.registrations)} resources\n")
    print("\n".join(resource_tree(run)))
    for role in Role:
        print(f"\n{ROLE_TITLES[role]} ports")
        print(table([line.as_dict() for line in matrix[role]]))
    violations = policy_run.analyze([*run.registrations, run.root], args.stack, engine_config(values))
    text, status = policy_run.report(violations)
    print(f"\n{text}")
    if args.json:
        document = plan_document(run, settings.cloud, matrix)
        document["violations"] = [vars(v) for v in violations]
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return status


def resource_tree(run: Run) -> list[str]:
    """Each resource under its component, with the options that matter to operators."""
    children: dict[str, list[Registration]] = {}
    for reg in run.registrations:
        children.setdefault(reg.parent, []).append(reg)
    known = {reg.urn for reg in run.registrations}
    roots = [reg for parent, regs in children.items() if parent not in known for reg in regs]

    out: list[str] = []

    def walk(reg: Registration, depth: int) -> None:
        flags = [flag for flag, on in (("protect", reg.protect), ("retain on delete", reg.retain_on_delete)) if on]
        suffix = f"  [{', '.join(flags)}]" if flags else ""
        out.append(f"{'  ' * depth}{reg.name}  ({reg.type}){suffix}")
        for child in sorted(children.get(reg.urn, []), key=lambda r: (r.type, r.name)):
            walk(child, depth + 1)

    for reg in sorted(roots, key=lambda r: (r.type, r.name)):
        walk(reg, 0)
    return out


def table(rows: list[dict[str, str]]) -> str:
    """A plain-text table with the guide's column titles."""
    titles = {k: k.capitalize() for k in ("direction", "port", "source", "destination", "purpose")}
    widths = {k: max([len(t), *(len(r[k]) for r in rows)]) for k, t in titles.items()}
    lines = ["  ".join(t.ljust(widths[k]) for k, t in titles.items()).rstrip()]
    lines += ["  ".join(r[k].ljust(widths[k]) for k in titles).rstrip() for r in rows]
    return "\n".join(lines)


def plan_document(run: Run, cloud: str, matrix: dict[Role, list[effective.Line]]) -> dict:
    """The JSON form: stable field names and order, no secrets (inputs are not included)."""
    return {
        "stack": run.stack,
        "cloud": cloud,
        "resources": [
            {
                "type": r.type,
                "name": r.name,
                "urn": r.urn,
                "parent": r.parent,
                "protect": r.protect,
                "retainOnDelete": r.retain_on_delete,
            }
            for r in sorted(run.registrations, key=lambda r: r.urn)
        ],
        "matrix": {role.value: [line.as_dict() for line in lines] for role, lines in matrix.items()},
        "hosts": run.outputs.get("hosts", {}),
    }


if __name__ == "__main__":
    sys.exit(main())
