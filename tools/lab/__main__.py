"""`python -m tools.lab run --stack prod`: stand the planned stack up in namespaces, check it, tear it down.

Commands:
  run   up, every check (or `--only`), then the day-2 scenarios (re-plans delivered to the running
        hosts, with their delivery times), the report, down; exit 0 only when nothing failed
  up    up, print how to run `make verify` against it, stay up until Ctrl-C (or SIGTERM), then down
  down  tear down the named runs, or with `--stale` every run whose runner is gone
Needs root, iproute2 (`ip netns`), util-linux (unshare, nsenter), nftables, nginx, dnsmasq, openssl,
OpenSSH (sshd and ssh), sudo and Debian's python3-boto3 (the hosts' own tools), and moto (the lab's
SSM). With KUMOMTA_SBIN pointing at a directory holding `kumod` and `proxy-server`, those run instead
of the stand-ins.
"""

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import yaml

from components.settings import ConfigError
from tools.lab import checks, day2, engine, faults, report
from tools.lab.lab import Lab
from tools.lab.stack import PlanError, plan
from tools.mockrun import StackFileError
from tools.verify.checks import Status


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "down":
        prefixes = engine.stale_runs() if args.stale else args.runs
        for prefix in prefixes:
            print(f"down {prefix}: {', '.join(engine.down(prefix)) or 'nothing left'}")
        return 0
    started = time.monotonic()
    overrides = _overrides(args)
    try:
        planned = plan(args.stack, overrides)
    except (StackFileError, ConfigError, PlanError) as err:
        print(f"lab: {err}", file=sys.stderr)
        return 2
    planning = time.monotonic() - started
    lab = Lab(planned, sbin=os.environ.get("KUMOMTA_SBIN") or None, overrides=overrides)
    lab.timing.plan = planning
    try:
        with lab:
            if args.command == "up":
                return _stay_up(lab)
            return _run(lab, args)
    except KeyboardInterrupt:
        print(f"lab {lab.prefix}: interrupted, torn down", file=sys.stderr)
        return 130


def _run(lab: Lab, args: argparse.Namespace) -> int:
    """Checks, then teardown (so the report has its time), then the report."""
    undo = faults.named(args.fault).plant(lab) if args.fault else None
    started = time.monotonic()
    only = set(args.only) if args.only else None
    results = checks.run_all(lab, only)
    if only is None or "day2" in only:
        results += day2.run(lab)
    took = time.monotonic() - started
    if undo:
        undo()
    lab.down()
    print(report.text(lab, results, took, args.verbose))
    if args.json:
        rows = [{"group": r.group, "check": r.check, "status": r.status.value, "reason": r.reason} for r in results]
        args.json.write_text(json.dumps({"stack": args.stack, "probes": lab.probes_run, "checks": rows}, indent=2))
    return 1 if any(r.status == Status.FAIL for r in results) else 0


def _stay_up(lab: Lab) -> int:
    verify = " ".join(lab.verify_args())
    print(f"lab {lab.prefix} is up ({lab.dir}); namespaces: {', '.join(lab.topology.namespaces)}")
    print(f'make verify STACK={lab.plan.stack} VERIFY_ARGS="{verify}"')
    print("Ctrl-C tears it down.", flush=True)
    for _ in range(24 * 3600):  # bounded: a forgotten lab goes away after a day
        signal.pause() if hasattr(signal, "pause") else time.sleep(1)
    return 0


def _overrides(args: argparse.Namespace) -> dict:
    out = {}
    if args.fleet:
        mtas, _, proxies = args.fleet.partition("+")
        out["kumomta:mtaHosts"] = [f"mta{n + 1}" for n in range(int(mtas))]
        out["kumomta:proxyHosts"] = [f"proxy{n + 1}" for n in range(int(proxies))]
    for item in args.set or []:
        key, _, value = item.partition("=")
        out[key if ":" in key else f"kumomta:{key}"] = yaml.safe_load(value)
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "up"):
        p = sub.add_parser(name)
        p.add_argument("--stack", required=True, help="the lab plans Pulumi.<stack>.yaml")
        p.add_argument("--fleet", help="override the hosts, e.g. 3+4 (MTAs+proxies)")
        p.add_argument("--set", action="append", help="override a config key, e.g. adminCidrs=[198.51.100.7/32]")
        if name == "run":
            p.add_argument(
                "--only",
                type=lambda t: t.split(","),
                help=f"check groups: {','.join(g for g, _ in checks.ALL)},day2 (day2 changes the stack: last)",
            )
            p.add_argument("--fault", choices=[f.name for f in faults.FAULTS], help="plant a fault first")
            p.add_argument("--json", type=Path, help="also write every row to this file")
            p.add_argument("-v", "--verbose", action="store_true", help="print passing rows too")
    down = sub.add_parser("down")
    down.add_argument("runs", nargs="*", help="run prefixes (kl...)")
    down.add_argument("--stale", action="store_true", help="every run whose runner is gone")
    return parser


if __name__ == "__main__":
    sys.exit(main())
