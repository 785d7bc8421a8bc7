"""The report: one row per check on the terminal, the same rows as JSON, and the exit code."""

import json
from collections import Counter
from pathlib import Path

from tools.verify.checks import Result, Status

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def text(results: list[Result]) -> str:
    """Status, group, check and reason in columns; findings indented under their row."""
    width = max((len(r.check) for r in results), default=0)
    lines = []
    for r in results:
        lines.append(f"{r.status.upper():<8} {r.group:<7} {r.check:<{width}}  {r.reason}")
        lines += [f"{'':17}{detail}" for detail in r.details]
    lines.append(summary(results))
    return "\n".join(lines)


def summary(results: list[Result]) -> str:
    counts = Counter(r.status for r in results)
    return f"{counts[Status.PASS]} passed, {counts[Status.FAIL]} failed, {counts[Status.SKIPPED]} skipped"


def as_json(stack: str, results: list[Result]) -> dict:
    counts = Counter(r.status for r in results)
    return {
        "stack": stack,
        "ok": exit_code(results) == EXIT_OK,
        "summary": {status.value: counts[status] for status in Status},
        "checks": [
            {
                "group": r.group,
                "check": r.check,
                "status": r.status.value,
                "reason": r.reason,
                "details": list(r.details),
            }
            for r in results
        ],
    }


def write_json(path: Path, stack: str, results: list[Result]) -> None:
    path.write_text(json.dumps(as_json(stack, results), indent=2) + "\n")


def exit_code(results: list[Result]) -> int:
    """A failed check fails the run, and so does a run in which no check passed: nothing verified is
    not a pass. Skips beside a pass do not fail it; every skip says what would enable it."""
    if any(r.status == Status.FAIL for r in results) or not any(r.status == Status.PASS for r in results):
        return EXIT_FAILED
    return EXIT_OK
