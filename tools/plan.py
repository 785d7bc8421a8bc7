"""Offline plan: what `pulumi preview --diff -s <stack>` would show, without the CLI or cloud credentials.

    python -m tools.plan --stack prod [--base REF|FILE|none] [--json FILE]

Runs `__main__.py` under Pulumi's mock engine with Pulumi.<stack>.yaml and compares it with the base
(default: the merge base with main, planned the same way): per resource, create, update (each
changed input, old => new), replace (and the input that forces it) or delete, then a summary line
in Pulumi's style, what running hosts would not pick up, each role's effective port matrix, and the
policy pack's verdict on the planned resources.
Exit codes: 0 planned, 1 a MANDATORY policy violation, 2 config error (or a BASE that can't be
read), 3 a protected resource (sending IP, spool volume, DNS zone) would be replaced or deleted.
"""

import argparse
import asyncio
import json
import os
import re
import sys
from pathlib import Path

import pulumi

from components.matrix import ROLE_TITLES, Role
from components.settings import ConfigError
from tools import base as bases
from tools import diff as diffs
from tools import effective, policy_run
from tools.mockrun import (
    Run,
    StackFileError,
    engine_config,
    run_program,
    secure_keys,
    settings_of,
    stack_config,
    stack_encryption,
)

EXIT_OK, EXIT_POLICY, EXIT_CONFIG, EXIT_PROTECTED = 0, 1, 2, 3
# Stack names as the Pulumi CLI takes them (pulumi/pulumi sdk/go/common/tokens/stack_name.go, ParseStackName).
STACK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
STACK_NAME_RULE = "a stack name is 1 to 100 letters, digits, hyphens, underscores or periods"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.plan", description=__doc__.split("\n")[0])
    parser.add_argument("--stack", default="prod", help="stack name: reads Pulumi.<stack>.yaml (default: prod)")
    parser.add_argument(
        "--base",
        default="",
        help="compare with a git revision, a plan saved with --json, or `none` (default: the merge base with main)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the plan and its diff as JSON to FILE")
    parser.add_argument("--snapshot", type=Path, metavar="FILE", help=argparse.SUPPRESS)  # the base run's output
    args = parser.parse_args(argv)

    if not STACK_NAME.fullmatch(args.stack):
        print(f"--stack {args.stack!r}: {STACK_NAME_RULE}", file=sys.stderr)
        return EXIT_CONFIG
    stack_file = f"Pulumi.{args.stack}.yaml"
    try:
        values = stack_config(args.stack)
        settings = settings_of(values)
        run = run_program(args.stack, values)
    except (StackFileError, ConfigError, pulumi.RunError) as err:
        # RunError: what the program itself refuses (`aws:region`), one line per key as the engine would show it.
        for line in str(err).splitlines():
            print(line if line.startswith(stack_file) else f"{stack_file}: {line}", file=sys.stderr)
        return EXIT_CONFIG
    if args.snapshot:
        args.snapshot.write_text(json.dumps({"format": diffs.FORMAT, "resources": diffs.records(run, bases.salt())}))
        return EXIT_OK

    try:
        base = bases.load(args.base, args.stack)
    except bases.BaseError as err:
        print(err, file=sys.stderr)
        return EXIT_CONFIG
    diff = None
    if base.records is not None:
        head = diffs.records(run, bases.salt() if base.salted else None)
        diff = diffs.compare(base.records, head, base.label)

    notes = [*_secret_notes(args.stack, values), *base.notes]
    print(f"Plan for stack {args.stack!r}: {settings.cloud}, {settings.domain}, {len(run.registrations)} resources")
    print("".join(f"note: {note}\n" for note in notes))
    print("\n".join(_diff_lines(diff) if diff else [f"No diff: compared with {base.label}."]))
    matrix = effective.lines(run)
    for role in Role:
        print(f"\n{ROLE_TITLES[role]} ports")
        print(table([line.as_dict() for line in matrix[role]]))
    violations = policy_run.analyze([*run.registrations, run.root], args.stack, engine_config(values))
    text, status = policy_run.report(violations)
    print(f"\n{text}")
    if diff is not None and diff.errors:
        status = EXIT_PROTECTED
    if args.json:
        document = plan_document(run, settings.cloud, matrix)
        document["violations"] = [vars(v) for v in violations]
        document["diff"] = {**diffs.as_json(diff), "notes": notes} if diff else {"base": base.label, "notes": notes}
        document["exitCode"] = status
        try:
            args.json.write_text(json.dumps(document, indent=2) + "\n")
        except OSError as err:
            print(f"--json {args.json}: cannot be written ({err.strerror or err})", file=sys.stderr)
            return EXIT_CONFIG
    return status


def _diff_lines(diff: diffs.Diff) -> list[str]:
    lines = diffs.render(diff)
    if diff.hosts:
        lines += ["", "Running hosts:", *(f"  {line}" for line in diff.hosts)]
    return lines + [f"ERROR: {error}" for error in diff.errors]


def _secret_notes(stack: str, values: dict) -> list[str]:
    """Say when the plan runs with a stand-in for a secret it could not read."""
    missing = [key for key in secure_keys(stack) if key not in values]
    if not missing:
        return []
    if stack_encryption(stack) is None:
        why = "its secrets provider is not the passphrase one, which is the only one readable offline"
    else:
        why = "PULUMI_CONFIG_PASSPHRASE is not set"
    return [f"{', '.join(missing)} in Pulumi.{stack}.yaml is encrypted and {why}: the plan uses a stand-in value"]


def table(rows: list[dict[str, str]]) -> str:
    """A plain-text table with the guide's column titles."""
    titles = {k: k.capitalize() for k in ("direction", "port", "source", "destination", "purpose")}
    widths = {k: max([len(t), *(len(r[k]) for r in rows)]) for k, t in titles.items()}
    lines = ["  ".join(t.ljust(widths[k]) for k, t in titles.items()).rstrip()]
    lines += ["  ".join(r[k].ljust(widths[k]) for k in titles).rstrip() for r in rows]
    return "\n".join(lines)


def plan_document(run: Run, cloud: str, matrix: dict[Role, list[effective.Line]]) -> dict:
    """The JSON form: stable field names and order; secret inputs are `[secret]`. It serves as a later BASE."""
    return {
        "format": diffs.FORMAT,
        "stack": run.stack,
        "cloud": cloud,
        "resources": sorted(diffs.records(run), key=lambda r: r["urn"]),
        "matrix": {role.value: [line.as_dict() for line in lines] for role, lines in matrix.items()},
        "hosts": run.outputs.get("hosts", {}),
    }


def _close_event_loop() -> None:
    """Close the mock engine's event loop while its sockets still exist; left to the interpreter's exit, it is
    sometimes collected after them and prints "Exception ignored in ... BaseEventLoop.__del__"."""
    loop = asyncio.get_event_loop_policy().get_event_loop()
    if not loop.is_running() and not loop.is_closed():
        loop.close()


if __name__ == "__main__":
    try:
        status = main()
        _close_event_loop()
        sys.exit(status)
    except BrokenPipeError:  # `make plan | head`: the reader left; say nothing more (Python docs, "Note on SIGPIPE")
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_OK)
