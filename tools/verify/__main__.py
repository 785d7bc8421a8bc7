"""`python -m tools.verify --stack prod`: run the checks, print one row each, exit 0 only if none failed.

Exit codes: 0 nothing failed (skips included), 1 a check failed, 2 the stack can't be read.
"""

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from components.settings import VerifySettings
from tools.verify import applied, dns, drift, inside, probes, report, secrets
from tools.verify.checks import Task, Unavailable, run_all
from tools.verify.clouds import aws
from tools.verify.remote import Netns, Ssh, Ssm, enter_netns
from tools.verify.stack import Stack, StackError, load

GROUPS = ("probes", "inside", "drift", "dns")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        stack = load(args.stack, args.outputs)
        targets = _targets(stack, args)
        lab = _lab(args.netns) if args.netns else None
    except StackError as err:
        print(f"verify: {err}", file=sys.stderr)
        return report.EXIT_USAGE
    tasks: list[Task] = []
    if "probes" in args.only:
        tasks += probes.tasks(stack, args.timeout, probes.tls_context(args.ca_file))
    if lab:
        enter_netns(lab["probes"])  # before any check thread starts: they all probe from there
    if "inside" in args.only:
        connect = (
            (lambda: Netns(lab["hosts"], args.timeout, lab["enter"]))
            if lab
            else _transport(stack, args.timeout, args.ssh_user)
        )
        tasks += inside.tasks(stack, connect, args.timeout, targets.test_mx, targets.webhook_url)
        tasks += applied.tasks(stack, connect)
        tasks += secrets.tasks(stack, connect)
    if "drift" in args.only:
        tasks += drift.tasks(stack, args.timeout)
    if "dns" in args.only:
        tasks += dns.tasks(stack, args.resolver, args.timeout)
    print(f"verify {stack.name} ({stack.settings.cloud}, {len(stack.hosts)} hosts): {', '.join(args.only)}")
    results = run_all(tasks)
    print(report.text(results))
    if args.json:
        report.write_json(args.json, stack.name, results)
    return report.exit_code(results)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.verify", description=__doc__)
    parser.add_argument("--stack", required=True, help="stack name; its config is read from Pulumi.<stack>.yaml")
    parser.add_argument("--only", type=_groups, default=list(GROUPS), help="comma-separated: probes,inside,drift,dns")
    parser.add_argument(
        "--outputs",
        type=Path,
        help="stack outputs as JSON (default: `pulumi stack output --json --show-secrets --stack <stack>`)",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--timeout", type=_seconds, default=10.0, help="seconds per check (default 10)")
    parser.add_argument("--ca-file", help="trust only this CA for the HTTPS probes (a private CA)")
    parser.add_argument("--test-mx", help="MX host each proxy must reach on 25 (default kumomta:verify.testMx)")
    parser.add_argument(
        "--webhook-url", help="PING8 webhook URL each MTA must reach (default kumomta:verify.webhookUrl)"
    )
    parser.add_argument(
        "--netns",
        type=Path,
        help="a lab's namespaces (JSON written by tools.lab): probes from its internet, inside checks on its hosts",
    )
    parser.add_argument(
        "--resolver",
        help="HOST or HOST:PORT to ask for the sending records (DKIM, SPF, DMARC, PTR); default the system's",
    )
    parser.add_argument("--ssh-user", default="root", help="user for the inside checks on Hetzner (default root)")
    return parser


def _groups(text: str) -> list[str]:
    chosen = [g.strip() for g in text.split(",") if g.strip()]
    unknown = sorted(set(chosen) - set(GROUPS))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {','.join(GROUPS)}; got {text!r}")
    return [g for g in GROUPS if g in chosen]


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError("a timeout between 0 and 600 seconds")
    return value


def _targets(stack: Stack, args: argparse.Namespace) -> VerifySettings:
    """The stack's `kumomta:verify` targets, each overridden by its flag, validated alike."""
    configured = stack.settings.verify
    try:
        return VerifySettings(
            test_mx=args.test_mx or configured.test_mx, webhook_url=args.webhook_url or configured.webhook_url
        )
    except ValidationError as err:
        raise StackError("; ".join(e["msg"].removeprefix("Value error, ") for e in err.errors())) from None


def _lab(path: Path) -> dict:
    try:
        lab = json.loads(path.read_text())
        return {
            "probes": str(lab["probes"]),
            "hosts": {str(k): str(v) for k, v in lab["hosts"].items()},
            "enter": {str(k): str(v) for k, v in lab.get("enter", {}).items()},
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise StackError(f"{path}: not a lab's namespace file ({type(err).__name__}: {err})") from None


def _transport(stack: Stack, timeout: float, ssh_user: str):
    """SSM on AWS; SSH on Hetzner, which only exists when adminCidrs opens port 22."""

    def connect() -> Ssm | Ssh:
        if stack.settings.cloud == "aws":
            return Ssm(aws("ssm", stack, timeout), timeout)
        if not stack.settings.admin_cidrs:
            raise Unavailable(
                "adminCidrs is empty, so Hetzner hosts have no SSH path; "
                "add this machine's network to kumomta:adminCidrs to run checks on the hosts"
            )
        return Ssh(ssh_user, timeout)

    return connect


if __name__ == "__main__":
    sys.exit(main())
