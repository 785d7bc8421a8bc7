"""Run the property over many more configs than `make test` does, and count instead of stopping at the first failure.

    .venv/bin/python -m tests.property.explore --examples 2000 [--seed 1] [--no-tools] [--hostile] [--stack-files]

Prints the counts the issue's closing note asks for (configs tried, refused cleanly, accepted and checked by the
tools, tracebacks, exposures tried and caught) and each distinct failure with the config that shows it. Hypothesis
does not shrink here: a failure is recorded and the run goes on.
"""

import argparse
import collections
import tempfile
import time
import traceback
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

from tests.property import checks
from tests.property.strategies import Case, cases, stack_files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-tools", action="store_true", help="stop at the plan: no real tools, no policy pack")
    parser.add_argument("--hostile", action="store_true", help="only configs with a value the program must refuse")
    parser.add_argument("--stack-files", action="store_true", help="stack files as text, read as make plan reads them")
    args = parser.parse_args()
    counts: collections.Counter = collections.Counter()
    failures: dict[str, tuple[str, Case]] = {}
    started = time.monotonic()

    if args.no_tools:
        checks.check_rendered = lambda run, cloud, tools: {}
        checks.Tools.analyze = lambda self, run, values: []

    @seed(args.seed)
    @settings(max_examples=args.examples, deadline=None, phases=[Phase.generate], database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=cases(hostile=args.hostile))
    def explore(case: Case) -> None:
        counts["tried"] += 1
        counts["exposures tried"] += case.exposure
        try:
            verdict = checks.judge(case, tools)
        except checks.Traceback as err:
            counts["tracebacks"] += 1
            failures.setdefault(str(err).splitlines()[0][:60], (str(err), case))
            return
        except checks.Broken as err:
            counts["broken"] += 1
            failures.setdefault(str(err).splitlines()[0][:40], (str(err), case))
            return
        except Exception as err:  # noqa: BLE001 - a failure of this harness itself: counted, shown, not hidden
            counts["harness errors"] += 1
            failures.setdefault(f"{type(err).__name__}: {str(err)[:120]}", (traceback.format_exc(), case))
            return
        if verdict.refused is not None:
            counts["refused cleanly"] += 1
            counts["exposures caught"] += case.exposure
        else:
            counts["accepted and checked"] += 1
            counts.update({f"files through {tool}": n for tool, n in verdict.tools.items()})

    @seed(args.seed)
    @settings(max_examples=args.examples, deadline=None, phases=[Phase.generate], database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(text=stack_files())
    def explore_files(text: str) -> None:
        counts["stack files tried"] += 1
        with tempfile.TemporaryDirectory() as root:
            try:
                refused = checks.read_stack_file(Path(root), text)
            except checks.Broken as err:
                counts["tracebacks" if isinstance(err, checks.Traceback) else "broken"] += 1
                failures.setdefault(str(err).splitlines()[0][:70], (str(err), Case("", {"text": text})))
                return
        counts["stack files read" if refused is None else "stack files refused cleanly"] += 1

    if args.stack_files:
        explore_files()
    else:
        with checks.Tools() as tools:
            explore()
    print(f"{time.monotonic() - started:.0f} s")
    for key, value in sorted(counts.items()):
        print(f"{key:32} {value}")
    for title, (text, case) in failures.items():
        print(f"\n=== {title}\n{text[-3000:]}\n{case.cloud} {case.describe()}\n{_short(case.values)!r}")
    return 1 if failures else 0


def _short(value):
    """Long lists cut to their first entries, so a failure's config fits a screen."""
    if isinstance(value, dict):
        return {k: _short(v) for k, v in value.items()}
    if isinstance(value, list) and len(value) > 6:
        return [*map(_short, value[:3]), f"... {len(value)} entries"]
    return value


if __name__ == "__main__":
    raise SystemExit(main())
