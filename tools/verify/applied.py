"""Applied = desired: each host runs the configuration version the stack wants, read on the host itself.

`pulumi up` exports each host's `configVersion` (the version of its bundle); kumomta-apply records
on the host the version it runs (`<state>/applied.json`) and the last one it refused or rolled back
(`failed.json`, with the reason). One script reads both on every host through the same transport
as the other inside checks (SSM Run Command on AWS, SSH on Hetzner, a lab's namespaces), and each
host becomes one row: the version it runs, or how it differs and why.
"""

import json
from collections.abc import Callable

from components.bootstrap.layout import STATE_DIR
from tools.verify.checks import Result, Task, Unavailable, failed, passed, skipped
from tools.verify.remote import Outcome
from tools.verify.stack import Host, Stack

GROUP = "inside"


def script(state_dir: str) -> str:
    """One line per record: its name, a tab, the file on one line (or `-` when there is none)."""
    return (
        f"s={state_dir}\n"
        "for f in applied failed; do\n"
        '  printf "%s\\t" "$f"\n'
        '  if [ -r "$s/$f.json" ]; then tr -d "\\n" < "$s/$f.json"; else printf -; fi\n'
        "  printf '\\n'\n"
        "done\n"
    )


def parse(output: str) -> dict[str, dict | None]:
    """{"applied": record or None, "failed": record or None}; a record that is not JSON is kept as its text."""
    found: dict[str, dict | None] = {"applied": None, "failed": None}
    for line in output.splitlines():
        name, _, text = line.partition("\t")
        if name in found and text and text != "-":
            try:
                record = json.loads(text)
            except ValueError:
                record = {"version": None, "error": f"unreadable {name}.json: {text[:100]!r}"}
            found[name] = record if isinstance(record, dict) else {"version": None, "error": repr(record)[:100]}
    return found


def tasks(stack: Stack, connect: Callable) -> list[Task]:
    if not stack.hosts:
        return []
    return [Task(GROUP, "applied = desired", lambda: _run(stack, connect))]


def _run(stack: Stack, connect) -> list[Result]:
    names = {h.label: f"{h.label}: runs the configuration the stack wants" for h in stack.hosts}
    wanted = [h for h in stack.hosts if h.config_version]
    rows = [
        skipped(GROUP, names[h.label], "the stack outputs have no configVersion (deployed before the day-2 channel)")
        for h in stack.hosts
        if not h.config_version
    ]
    if not wanted:
        return rows
    try:
        outcomes = connect().run(wanted, script(STATE_DIR[stack.settings.cloud]))
    except Unavailable as err:
        return rows + [skipped(GROUP, names[h.label], str(err)) for h in wanted]
    return rows + [_row(names[h.label], h, outcomes[h.label]) for h in wanted]


def _row(name: str, host: Host, outcome: Outcome) -> Result:
    if outcome.error is not None:
        return failed(GROUP, name, outcome.error)
    records = parse(outcome.output)
    applied, refused = records["applied"], records["failed"]
    desired = host.config_version
    runs = (applied or {}).get("version")
    if runs == desired:
        note = ""
        if refused and refused.get("version") != desired:
            note = f"; an earlier {refused.get('version')} was refused: {refused.get('error')}"
        return passed(GROUP, name, f"runs {desired}{note}")
    why = f"runs {runs or 'nothing yet (no applied.json)'}, the stack wants {desired}"
    if refused and refused.get("version") == desired:
        return failed(GROUP, name, f"{why}; the host refused it: {refused.get('error')}")
    if refused:
        return failed(
            GROUP, name, f"{why}; not applied yet; last refused {refused.get('version')}: {refused.get('error')}"
        )
    return failed(GROUP, name, f"{why}; not applied yet (AWS: the host polls every 30 s; Hetzner: pulumi up pushes it)")
