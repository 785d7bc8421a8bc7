"""What a check reports, and the runner that executes the checks side by side.

A unit of work (`Task`) may yield several rows: one SSM command answers for every proxy an MTA
must reach, and one API read answers for every rule of a firewall. Each row is one check of the
report; a task that breaks unexpectedly still yields a failed row, so nothing disappears.
"""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIPPED = "skipped"


class Unavailable(Exception):
    """A check can't run from here at all (no credentials, no path); the text says what would enable it."""


@dataclass(frozen=True)
class Result:
    """One row of the report."""

    group: str
    check: str
    status: Status
    reason: str
    details: tuple[str, ...] = field(default=())
    """One line per finding, e.g. each missing or extra firewall rule."""


@dataclass(frozen=True)
class Task:
    group: str
    name: str
    """The row to report if the task itself breaks."""
    run: Callable[[], list[Result]]


def passed(group: str, check: str, reason: str) -> Result:
    return Result(group, check, Status.PASS, reason)


def failed(group: str, check: str, reason: str, details: tuple[str, ...] = ()) -> Result:
    return Result(group, check, Status.FAIL, reason, details)


def skipped(group: str, check: str, reason: str) -> Result:
    """`reason` must say why and what would enable the check."""
    return Result(group, check, Status.SKIPPED, reason)


def run_all(tasks: list[Task], workers: int = 8) -> list[Result]:
    """Run tasks concurrently (they mostly wait on the network); rows come back in task order."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(task.run) for task in tasks]
    results = []
    for task, future in zip(tasks, futures, strict=True):
        try:
            results += future.result()
        except Exception as err:  # noqa: BLE001 (a broken check is a failed row, not a crash)
            results.append(failed(task.group, task.name, f"could not run: {type(err).__name__}: {err}"))
    return results
