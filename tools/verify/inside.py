"""Checklist items 4-6, run on the hosts themselves through SSM (AWS) or SSH (Hetzner).

Each check kind is one script run on every source host at once. The script tries all its
targets in parallel, each bounded by the per-check timeout, and prints one tab-separated line
per target (`ok|fail`, target, detail), so every (source, target) pair becomes its own row.
"""

import math
import shlex
from collections.abc import Callable

from components.matrix import Role
from tools.verify.checks import Result, Task, Unavailable, failed, passed, skipped
from tools.verify.remote import Outcome, Ssh, Ssm
from tools.verify.stack import GUIDE_PORTS, Host, Ports, Stack

GROUP = "inside"

# bash: /dev/tcp for plain TCP (no netcat on a minimal image), curl for HTTPS. `$t` is set first.
_PROBES = r"""
tcp() {
  if err=$(timeout "$t" bash -c 'exec 3<>"/dev/tcp/$1/$2"' probe "$1" "$2" 2>&1); then
    printf 'ok\t%s\t%s\n' "$1:$2" "connected"
  else
    [ $? -eq 124 ] && err="no answer within ${t}s"
    err=$(printf '%s' "$err" | head -n 1)
    printf 'fail\t%s\t%s\n' "$1:$2" "${err#probe: }"
  fi
}
https() {
  if out=$(curl -sS -o /dev/null -w 'HTTP %{http_code}' --max-time "$t" -- "$1" 2>&1); then
    printf 'ok\t%s\t%s\n' "$1" "$out"
  else
    out=$(printf '%s' "${out%HTTP 000}" | head -n 1)
    printf 'fail\t%s\t%s\n' "$1" "$out"
  fi
}
"""

Transport = Ssm | Ssh


def script(timeout: float, calls: list[tuple[str, ...]]) -> str:
    """Run each probe call (`tcp HOST PORT` or `https URL`) in the background and wait for all."""
    lines = [f"t={math.ceil(timeout)}", _PROBES.strip()]
    lines += [" ".join(shlex.quote(word) for word in call) + " &" for call in calls]
    lines.append("wait")
    return "\n".join(lines) + "\n"


def parse(output: str) -> dict[str, tuple[bool, str]]:
    """Target -> (reached, detail), from the script's lines."""
    found = {}
    for line in output.splitlines():
        status, _, rest = line.partition("\t")
        target, _, detail = rest.partition("\t")
        if status in ("ok", "fail") and target:
            found[target] = (status == "ok", detail)
    return found


def tasks(
    stack: Stack,
    connect: Callable[[], Transport],
    timeout: float,
    test_mx: str | None,
    webhook_url: str | None,
    ports: Ports = GUIDE_PORTS,
) -> list[Task]:
    """`connect` builds the transport inside the task, so a missing credential becomes a row."""
    mtas, proxies = stack.of_role(Role.MTA), stack.of_role(Role.PROXY)
    socks = [
        (
            f"{mta.label} -> {proxy.label}: {ports.socks}/tcp (SOCKS5) reachable",
            mta,
            f"{proxy.private_ip}:{ports.socks}",
        )
        for mta in mtas
        for proxy in proxies
    ]
    mx = [
        (f"{proxy.label} -> test MX: {ports.smtp}/tcp reachable", proxy, f"{test_mx}:{ports.smtp}") for proxy in proxies
    ]
    hook = [(f"{mta.label} -> PING8 webhook over HTTPS", mta, webhook_url) for mta in mtas]

    hint = f"in Pulumi.{stack.name}.yaml"
    kinds = [
        (socks, None),
        (mx, None if test_mx else f"no test MX: set kumomta:verify.testMx {hint}, or pass --test-mx HOST"),
        (
            hook,
            None if webhook_url else f"no webhook URL: set kumomta:verify.webhookUrl {hint}, or pass --webhook-url URL",
        ),
    ]
    return [_task(checks, missing, connect, timeout) for checks, missing in kinds if checks]


def _task(checks: list[tuple[str, Host, str]], missing: str | None, connect, timeout: float) -> Task:
    """One script, run on every source host of `checks`, probing every target of `checks`."""

    def run() -> list[Result]:
        if missing:
            return [skipped(GROUP, name, missing) for name, _, _ in checks]
        calls = sorted({_call(target) for _, _, target in checks})
        sources = list({host.label: host for _, host, _ in checks}.values())
        try:
            outcomes = connect().run(sources, script(timeout, calls))
        except Unavailable as err:
            return [skipped(GROUP, name, str(err)) for name, _, _ in checks]
        return [_row(name, target, outcomes[host.label]) for name, host, target in checks]

    return Task(GROUP, checks[0][0], run)


def _call(target: str) -> tuple[str, ...]:
    if target.startswith("https://"):
        return ("https", target)
    host, _, port = target.rpartition(":")
    return ("tcp", host, port)


def _row(name: str, target: str, outcome: Outcome) -> Result:
    if outcome.error is not None:
        return failed(GROUP, name, outcome.error)
    found = parse(outcome.output).get(target)
    if found is None:
        return failed(GROUP, name, f"the script printed no result for {target}: {outcome.output.strip()[:200]!r}")
    reached, detail = found
    return passed(GROUP, name, f"{target}: {detail}") if reached else failed(GROUP, name, f"{target}: {detail}")
