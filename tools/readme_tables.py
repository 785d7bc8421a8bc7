"""The README's port tables, generated from the matrix table so the docs cannot drift from the code.

    python -m tools.readme_tables [--write]

Prints the tables, or with --write replaces the block between the markers in README.md.
"""

import argparse
import sys

from pydantic.alias_generators import to_camel

from components.matrix import MATRIX, PEER_TITLES, ROLE_TITLES, Role, Row
from tools.mockrun import ROOT

START, END = "<!-- port-tables:start -->", "<!-- port-tables:end -->"
README = ROOT / "README.md"


def tables() -> str:
    parts = []
    for role in Role:
        parts += [
            f"**{ROLE_TITLES[role]}**",
            "",
            "| Direction | Port | Source | Destination | Purpose | Exposure | Origin |",
            "|---|---|---|---|---|---|---|",
            *(_row(row) for row in MATRIX if row.role == role),
            "",
        ]
    notes = [f"- {ROLE_TITLES[r.role]}, {_port(r)}: {r.note}" for r in MATRIX if r.note]
    return "\n".join([*parts, "Notes:", "", *notes])


def _port(row: Row) -> str:
    port = f"`{to_camel(row.port)}`" if isinstance(row.port, str) else str(row.port)
    return f"{port}/{','.join(row.protocols)}"


def _row(row: Row) -> str:
    peer, host = PEER_TITLES[row.peer], ROLE_TITLES[row.role]
    source, destination = (peer, host) if row.direction == "in" else (host, peer)
    direction = "Inbound" if row.direction == "in" else "Outbound"
    origin = "guide" if row.origin == "guide" else f"operational{f' (`{to_camel(row.when)}`)' if row.when else ''}"
    return f"| {direction} | {_port(row)} | {source} | {destination} | {row.purpose} | {row.exposure} | {origin} |"


def spliced(readme: str) -> str:
    """README text with the generated block in place of the current one."""
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{tables()}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    if parser.parse_args().write:
        README.write_text(spliced(README.read_text()))
    else:
        print(tables())
    return 0


if __name__ == "__main__":
    sys.exit(main())
