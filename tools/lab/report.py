"""The lab's report: every failed row, each group's count, the figures (probes, times)."""

from collections import Counter

from components.matrix import Role
from tools.lab.lab import Lab
from tools.verify.checks import Result, Status


def _delivery(lab: Lab, change) -> list[str]:
    """How `up` reached the hosts: per channel, from published to applied on every host."""
    if not change.deliveries:
        return []
    if change.what == "first boot":
        boots = ", ".join(f"{d.label} {d.seconds:.1f}s" for d in change.deliveries)
        return [f"delivery  first boot to first bundle applied: {boots}"]
    failed = [d.label for d in change.day2 if d.code != 0]
    status = f"; refused or failed on {', '.join(failed)}" if failed else ""
    if lab.plan.cloud == "aws":
        ticks = ", ".join(
            f"{d.label} {d.seconds:.2f}s" + (f" (apply {d.apply_seconds:.2f}s)" if d.apply_seconds else " (up to date)")
            for d in change.day2
        )
        line = (
            f"delivery  {change.what}: SSM written in {change.published:.2f}s; one timer tick on every host "
            f"{change.seconds:.2f}s ({ticks}); worst case with the 30 s timer: {30 + change.seconds:.1f}s{status}"
        )
        return [line]
    pushes = ", ".join(f"{d.label} {d.seconds:.2f}s" for d in change.day2) or "no host changed"
    return [f"delivery  {change.what}: SSH push to every changed host {change.seconds:.2f}s ({pushes}){status}"]


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
    not_run = sorted({f"{s['step'][:70]}: {s['what']}" for run in lab.hosts.values() for s in run.steps
                      if s["what"].startswith("not run")})  # fmt: skip
    lines.append(f"first-boot steps not run here ({len(not_run)}): package installs, the spool volume (a tmpfs)")
    lines += [f"  {line}" for line in not_run] if verbose else []
    lines.append("not modelled: timers (the lab fires kumomta-sync itself), chrony, the units' sandboxing and users")
    for change in lab.changes:
        lines += _delivery(lab, change)
    lines += [f"kumod     {r.check}: {r.reason}" for r in results if r.group in ("add-proxy", "remove-proxy")
              and "within" in r.check and not r.check.startswith("before:")]  # fmt: skip
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
