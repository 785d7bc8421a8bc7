"""What the cloud APIs accept, as small predicates, and how a contract reads registered inputs.

A `Value` contract checks one property path of every registration of its types; an `Across`
contract reads the whole run (counts per group, a subnet inside its VPC). Both answer with
plain-English problems that name the resource, so a failure reads as "mta-sg: description = ...".
"""

import base64
import ipaddress
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pulumi.runtime import rpc

from tools.mockrun import Registration, Run

# ---- reading registrations -------------------------------------------------------------------


def plain(value: Any) -> Any:
    """The value with Pulumi's secret wrappers removed: a contract judges what the cloud receives."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return plain(value.get("value"))
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def walk(inputs: dict, path: str) -> Iterator[tuple[str, Any]]:
    """(where, value) for each value at `path`: `a.b`, `a[]` (each element), `{keys}`, `{values}`.

    Absent or null properties yield nothing: the API only judges what is sent.
    """
    items: list[tuple[str, Any]] = [("", plain(inputs))]
    for segment in path.split("."):
        found: list[tuple[str, Any]] = []
        for where, value in items:
            if segment == "{keys}" and isinstance(value, dict):
                found += [(f"{where}{{{k}}}", k) for k in value]
            elif segment == "{values}" and isinstance(value, dict):
                found += [(f"{where}.{k}", v) for k, v in value.items()]
            elif segment.endswith("[]") and isinstance(value, dict):
                listed = value.get(segment[:-2]) or []
                found += [(f"{where}.{segment[:-2]}[{i}]".lstrip("."), v) for i, v in enumerate(listed)]
            elif isinstance(value, dict) and value.get(segment) is not None:
                found.append((f"{where}.{segment}".lstrip("."), value[segment]))
        items = found
    return iter(items)


def short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


@dataclass(frozen=True, repr=False)
class Value:
    """Every value at `path` of every registration of `types` must satisfy `ok`."""

    name: str
    types: tuple[str, ...]
    path: str
    ok: Callable[[Any], bool]
    rule: str
    source: str
    quote: str
    accepts: tuple = ()
    rejects: tuple = ()

    def __repr__(self) -> str:
        return self.name

    def _repr_pretty_(self, printer, cycle) -> None:  # how Hypothesis prints a falsifying example
        printer.text(self.name)

    def problems(self, run: Run) -> list[str]:
        return [
            f"{reg.name}: {where} = {short(value)!r}"
            for reg in run.registrations
            if reg.type in self.types
            for where, value in walk(reg.inputs, self.path)
            if not self.ok(value)
        ]

    @property
    def reads(self) -> set[str]:
        return {self.path.split(".")[0].removesuffix("[]")}


@dataclass(frozen=True, repr=False)
class Across:
    """A rule over several registrations: `check` returns the problems it finds in a run."""

    name: str
    types: tuple[str, ...]
    path: str  # the properties read, comma-separated
    check: Callable[[Run], list[str]]
    rule: str
    source: str
    quote: str

    def __repr__(self) -> str:
        return self.name

    def _repr_pretty_(self, printer, cycle) -> None:  # how Hypothesis prints a falsifying example
        printer.text(self.name)

    def problems(self, run: Run) -> list[str]:
        return self.check(run)

    @property
    def reads(self) -> set[str]:
        return {p.strip() for p in self.path.split(",")}


Contract = Value | Across


def physical_name(reg: Registration) -> str:
    """The name the cloud sees: `name` when given, else Pulumi's auto-name (logical name, '-', 7 hex digits)."""
    return reg.inputs.get("name") or f"{reg.name}-0000000"


# ---- strings -----------------------------------------------------------------------------------


def matches(pattern: str, max_length: int, min_length: int = 0) -> Callable[[Any], bool]:
    compiled = re.compile(pattern)

    def ok(value: Any) -> bool:
        return isinstance(value, str) and min_length <= len(value) <= max_length and bool(compiled.fullmatch(value))

    return ok


# EC2: group names, group descriptions and rule descriptions.
EC2_TEXT = r"[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]*"
# IAM names: role, instance profile, inline policy.
IAM_NAME = r"[\w+=,.@-]+"
# IAM role description: tab, LF, CR, printable ASCII and Latin-1.
IAM_DESCRIPTION = r"[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*"


def aws_tag_text(value: Any, max_length: int, min_length: int) -> bool:
    """Letters, numbers and spaces in any script, and `_ . : / = + - @`: the tagging API's pattern."""
    return (
        isinstance(value, str)
        and min_length <= len(value) <= max_length
        and all(unicodedata.category(c)[0] in "LNZ" or c in "_.:/=+-@" for c in value)
    )


def aws_tag_key(value: Any) -> bool:
    return aws_tag_text(value, 127, 1) and not value.lower().startswith("aws:")


def aws_tag_value(value: Any) -> bool:
    return aws_tag_text(value, 256, 0) and not value.lower().startswith("aws:")


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def hostname(value: Any) -> bool:
    """RFC 1123 host name: labels of 1 to 63 letters, digits and hyphens, 253 characters in all."""
    return isinstance(value, str) and 0 < len(value) <= 253 and all(_HOST_LABEL.fullmatch(p) for p in value.split("."))


def dns_name(max_length: int) -> Callable[[Any], bool]:
    """A DNS name as zone APIs take it: labels of 1 to 63 of [A-Za-z0-9_*-], `max_length` in all."""
    label = re.compile(r"[A-Za-z0-9_*-]{1,63}")

    def ok(value: Any) -> bool:
        name = value.rstrip(".") if isinstance(value, str) else ""
        return 0 < len(name) <= max_length and all(label.fullmatch(p) for p in name.split("."))

    return ok


def owner_name(max_length: int) -> Callable[[Any], bool]:
    """A DNS owner name as text: labels of 1 to 63 octets, `max_length` characters in all, no trailing dot.

    Not a host name: RFC 2181 section 11 allows any octets in a label, and names such as `_dmarc` and
    `s1._domainkey` carry underscores by design (RFC 8552). Kept to printable ASCII without spaces, quotes,
    backslashes or `;()`, which a zone's text form would have to escape.
    """
    label = re.compile(r"[!#-'*-:<-\[\]-~]{1,63}")

    def ok(value: Any) -> bool:
        return (
            isinstance(value, str)
            and 0 < len(value) <= max_length
            and not value.endswith(".")
            and all(label.fullmatch(p) for p in value.split("."))
        )

    return ok


_QUOTED = re.compile(r'"((?:[^"\\]|\\[0-9]{3}|\\[^0-9])*)"')
_ESCAPE = re.compile(r"\\([0-9]{3}|.)", re.DOTALL)


def character_strings(text: Any, adjacent: bool = False) -> list[str] | None:
    """The <character-string>s of a TXT value written as quoted strings (RFC 1035 section 5.1: `\\"` for a
    quote, `\\\\` for a backslash, `\\DDD` for any octet), each unescaped; None when the text is not that.

    Strings stand apart by white space; `adjacent` also takes `"a""b"`, which Route53 reads as two.
    """
    if not isinstance(text, str):
        return None
    gap = re.compile(r"\s*" if adjacent else r"\s+")
    out, at = [], 0
    while True:
        match = _QUOTED.match(text, at)
        if match is None:
            return None
        out.append(_ESCAPE.sub(lambda m: "x" if m[1].isdigit() else m[1], match[1]))
        if match.end() == len(text):
            return out
        space = gap.match(text, match.end())
        if space is None:
            return None
        at = space.end()


def printable_ascii(text: str) -> bool:
    """Space to tilde: what a TXT string may hold without an escape."""
    return all(" " <= c <= "~" for c in text)


_HCLOUD_LABEL_PART = re.compile(r"[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?")


def hcloud_label_key(value: Any) -> bool:
    """`[prefix/]name`: the prefix a DNS subdomain of at most 253, the name 1 to 63 as Hetzner spells it."""
    if not isinstance(value, str) or "hetzner.cloud/" in value:
        return False
    prefix, _, name = value.rpartition("/")
    if prefix and not (len(prefix) <= 253 and all(_HOST_LABEL.fullmatch(p) for p in prefix.split("."))):
        return False
    return bool(_HCLOUD_LABEL_PART.fullmatch(name))


def hcloud_label_value(value: Any) -> bool:
    return isinstance(value, str) and (value == "" or bool(_HCLOUD_LABEL_PART.fullmatch(value)))


# ---- numbers and addresses -------------------------------------------------------------------


def whole(value: Any, low: int, high: int) -> bool:
    """An integer in [low, high]; the engine carries numbers as floats."""
    return isinstance(value, int | float) and float(value).is_integer() and low <= value <= high


def within(low: int, high: int) -> Callable[[Any], bool]:
    return lambda value: whole(value, low, high)


def one_of(*allowed: str) -> Callable[[Any], bool]:
    return lambda value: value in allowed


def network(value: Any, version: int | None = None) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The network a canonical CIDR string names (no host bits), else None."""
    try:
        net = ipaddress.ip_network(value, strict=True) if isinstance(value, str) and "/" in value else None
    except ValueError:
        return None
    return net if net is not None and (version is None or net.version == version) else None


def cidr(version: int | None = None, low: int = 0, high: int = 128) -> Callable[[Any], bool]:
    """A CIDR in canonical form, of the given family, with a prefix length in [low, high]."""

    def ok(value: Any) -> bool:
        net = network(value, version)
        return net is not None and low <= net.prefixlen <= high

    return ok


def address(version: int) -> Callable[[Any], bool]:
    def ok(value: Any) -> bool:
        try:
            return ipaddress.ip_address(value).version == version
        except ValueError:
            return False

    return ok


_RFC1918 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]


def rfc1918(value: Any) -> bool:
    net = network(value, 4)
    return net is not None and any(net.subnet_of(private) for private in _RFC1918)


def port_text(value: Any) -> bool:
    """Hetzner's `"n"` or `"a-b"`, each a port in 1-65535, a <= b."""
    match = re.fullmatch(r"(\d{1,5})(?:-(\d{1,5}))?", value) if isinstance(value, str) else None
    if match is None:
        return False
    low, high = int(match[1]), int(match[2] or match[1])
    return 1 <= low <= high <= 65535


def utf8_size(value: Any) -> int:
    return len(value.encode()) if isinstance(value, str) else 0


def base64_size(value: Any) -> int:
    """Bytes of user data before base64, which is what EC2's 16 KB limit counts."""
    try:
        return len(base64.b64decode(value, validate=True))
    except (TypeError, ValueError):
        return -1


def json_document(max_length: int, count: Callable[[str], int] = len) -> Callable[[Any], bool]:
    """A JSON document whose size (as `count` measures it) is at most `max_length`."""

    def ok(value: Any) -> bool:
        try:
            json.loads(value)
        except (TypeError, ValueError):
            return False
        return 0 < count(value) <= max_length

    return ok


def without_whitespace(text: str) -> int:
    """IAM counts policy size without white space."""
    return len(re.sub(r"\s", "", text))


# ---- grouping helpers for Across contracts ---------------------------------------------------


def of_types(run: Run, *types: str) -> list[Registration]:
    return [r for r in run.registrations if r.type in types]


def by_id(run: Run, *types: str) -> dict[str, Registration]:
    """Registrations by the ID the (mock) cloud gave them, as other resources refer to them."""
    return {r.id: r for r in of_types(run, *types)}


def count_over(limit: int, groups: Iterable[tuple[str, int]], what: str) -> list[str]:
    return [f"{where}: {n} {what}, at most {limit}" for where, n in groups if n > limit]
