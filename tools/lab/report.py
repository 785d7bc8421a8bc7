"""The lab's report: every failed row, each group's count, the figures (probes, times)."""

from collections import Counter

from components.matrix import Role
from tools.lab.lab import Lab
from tools.verify.checks import Result, Status


def text(lab: Lab, results: list[Result], checks_seconds: float, verbose: bool = False) -> str:
    lines = []
    groups = list(dict.fromkeys(r.group for r in results))
    for group in groups:
        rows = [r for r in results if r.group == group]
        counts = Counter(r.status for r in rows)
        skips = f" {counts[Status.SKIPPED]} skipped" if counts[Status.SKIPPED] else ""
        lines.append(f"{group:<13} {counts[Status.PASS]:>5} passed {counts[Status.FAIL]:>4} failed{skips}")
        for r in rows:
            if verbose or r.status != Status.PASS:
                lines.append(f"  {r.status.upper():<5} {r.check}  {r.reason}")
    not_run = sorted({s.line for run in lab.hosts.values() for s in run.steps if s.action is None})
    lines.append(f"boot steps not run here ({len(not_run)}): package installs, the spool volume, certbot, timers")
    lines += [f"  {line}" for line in not_run] if verbose else []
    t = lab.timing
    fleet = f"{len(lab.plan.of_role(Role.MTA))}+{len(lab.plan.of_role(Role.PROXY))}"
    lines.append(
        f"{lab.plan.stack} ({lab.plan.cloud}, {fleet}): "
        f"plan {t.plan:.1f}s, network {t.network:.2f}s, services {t.services:.1f}s, checks {checks_seconds:.1f}s, "
        f"teardown {t.teardown:.2f}s; {lab.probes_run} probes"
    )
    counts = Counter(r.status for r in results)
    lines.append(f"{counts[Status.PASS]} passed, {counts[Status.FAIL]} failed, {counts[Status.SKIPPED]} skipped")
    return "\n".join(lines)
