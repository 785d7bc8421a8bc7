"""The pull-request comment for one stack's offline plan, cut to fit GitHub's limit.

    python -m tools.comment --stack prod --plan plan.txt --status 0 --base-ref main --out comment.md

GitHub rejects a comment body over 65,536 characters ("Body is too long"), and a 25+25 fleet's plan
is longer than that. The resource diff comes first and is kept whole when it fits; what doesn't fit
is cut at a line with a note pointing at the full plan, which the workflow uploads as an artifact.
"""

import argparse
import sys
from pathlib import Path

LIMIT = 65_535
EXIT_MEANINGS = {
    0: "planned; policy pack passed",
    1: "a MANDATORY policy violation",
    2: "config error",
    3: "a protected resource (sending IP, spool volume, DNS zone) would be replaced or deleted",
}


def marker(stack: str) -> str:
    """The first line of the comment; plan-comment.yml finds the comment to update by it."""
    return f"<!-- kumoguard-plan:{stack} -->"


def build(stack: str, plan: str, status: int, base_ref: str, full_plan: str, limit: int = LIMIT) -> str:
    """Header, the diff, then the port matrices and policy results, each cut to what is left of `limit`."""
    diff, rest = _split(plan)
    verdict = "Plan and policy pack passed." if status == 0 else f"**Plan failed (exit {status}):**"
    head = [
        marker(stack),
        f"### Offline plan of `{stack}` against `{base_ref}` (mocks, no cloud credentials)",
        f"{verdict} {EXIT_MEANINGS.get(status, '')}".rstrip(),
        "",
    ]
    cut_note = f"… cut to fit GitHub's comment limit: {full_plan}"
    parts = ["\n".join(head)]
    room = limit - _size(parts[0])
    for title, text, fence in (("", diff, "```diff"), ("Effective port matrix and policy pack", rest, "```")):
        if not text.strip():
            continue
        opening = f"<details><summary>{title}</summary>\n\n{fence}\n" if title else f"{fence}\n"
        closing = "```\n</details>\n" if title else "```\n"
        body = _fit(text, room - _size(opening + closing) - _size(cut_note) - 1, cut_note)
        if body is None:
            break
        section = opening + body + closing
        parts.append(section)
        room -= _size(section)
    return "\n".join(parts)


def _split(plan: str) -> tuple[str, str]:
    """The plan text up to the first role's port table, and the rest."""
    lines = plan.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.rstrip().endswith(" host ports"):
            return "".join(lines[:index]), "".join(lines[index:])
    return plan, ""


def _fit(text: str, room: int, cut_note: str) -> str | None:
    """`text` whole, or cut at a line boundary with the note; None when not even the note fits."""
    text = text if text.endswith("\n") else text + "\n"
    if _size(text) <= room + _size(cut_note) + 1:
        return text
    if room < 0:
        return None
    kept, used = [], 0
    for line in text.splitlines(keepends=True):
        if used + _size(line) > room:
            break
        kept.append(line)
        used += _size(line)
    return "".join(kept) + cut_note + "\n"


def _size(text: str) -> int:
    """Length as GitHub counts it, in UTF-16 code units (so an astral character counts twice)."""
    return len(text.encode("utf-16-le")) // 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.comment", description=__doc__.split("\n")[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--plan", type=Path, required=True, help="the plan's text output")
    parser.add_argument("--status", type=int, required=True, help="the plan's exit code")
    parser.add_argument("--base-ref", required=True)
    parser.add_argument("--full-plan", default="the full plan is in this run's artifacts", help="where the rest is")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    text = build(args.stack, args.plan.read_text(), args.status, args.base_ref, args.full_plan)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
