"""Fill the files under `templates/`: `{{ name }}` markers, nothing else.

Nginx, Lua, nftables and shell all use `$` and braces, so a general template language would
need escaping everywhere; a marker none of them uses keeps the templates readable as-is.
"""

import re
from pathlib import Path

TEMPLATES = Path(__file__).parent / "templates"
_MARKER = re.compile(r"\{\{ (\w+) \}\}")


def template(name: str, **values: object) -> str:
    """The template `name` with every marker replaced; a missing or unused value is a bug."""
    text = (TEMPLATES / name).read_text()
    used = set(_MARKER.findall(text))
    if used != set(values):
        raise KeyError(f"{name}: markers {sorted(used)} but values {sorted(values)}")
    return _MARKER.sub(lambda m: str(values[m.group(1)]), text)
