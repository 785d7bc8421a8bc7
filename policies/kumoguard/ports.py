"""Port ranges the policies guard, read from policy config and from the stack's own config."""

import functools
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Range = tuple[int, int]

# 9090-9100 covers Prometheus and its usual exporters; 9101 is the project's proxy metrics port by
# default; 9464 is the OpenTelemetry Prometheus exporter's.
DEFAULT_METRICS_PORTS = ["9090-9101", 9464]

METRICS_SCHEMA = {
    "type": "array",
    "description": 'Ports that serve metrics: numbers or "low-high" ranges.',
    "items": {"type": ["integer", "string"], "pattern": r"^\d+(-\d+)?$"},
    "default": DEFAULT_METRICS_PORTS,
}


def parse_ranges(items: Iterable[Any]) -> tuple[Range, ...]:
    """`[9464, "9090-9101"]` -> `((9464, 9464), (9090, 9101))`; a bad entry is a config error."""
    out = []
    for item in items:
        text = str(int(item)) if isinstance(item, float) and item.is_integer() else str(item).strip()
        lo, sep, hi = text.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"metricsPorts: {item!r} is neither a port nor a low-high range")
        ends = (int(lo), int(hi) if sep else int(lo))
        if not 0 <= min(ends) <= max(ends) <= 65535 or ends[0] > ends[1]:
            raise ValueError(f"metricsPorts: {item!r} is not a range within 0-65535")
        out.append(ends)
    return tuple(out)


def metrics_ports(policy_config: Mapping[str, Any], stack_config: str | None = None) -> tuple[Range, ...]:
    """Configured metrics ports plus every port a stack setting that looks like a metrics port names.

    Following the stack's own setting (e.g. `kumomta:proxyMetricsPort`) means moving the proxy's
    metrics to another port cannot walk it out from under the policy, whatever the key's spelling.
    """
    configured = parse_ranges(policy_config.get("metricsPorts", DEFAULT_METRICS_PORTS))
    return configured + tuple(s.ports for s in stack_metrics_settings(stack_config) if s.ports is not None)


@dataclass(frozen=True)
class Setting:
    """A stack setting that looks like a metrics port, and the ports it names (None: unreadable)."""

    key: str  # "kumomta:proxyMetricsPort", or "kumomta:proxy.metrics.port" inside a structured value
    value: Any
    ports: Range | None


def stack_metrics_settings(stack_config: str | None = None) -> tuple[Setting, ...]:
    """Every setting of the engine's PULUMI_CONFIG (`ns:key` -> string, structured values as JSON)
    whose name says metrics port: camelCase, snake_case, kebab-case, any case, nested or not."""
    text = stack_config if stack_config is not None else os.environ.get("PULUMI_CONFIG", "")
    return _settings(text)


@functools.lru_cache(maxsize=8)  # every resource of a run reads the same config
def _settings(text: str) -> tuple[Setting, ...]:
    try:
        values = json.loads(text) if text else {}
    except ValueError:
        return ()
    out: list[Setting] = []
    for key, value in values.items() if isinstance(values, dict) else ():
        _walk(str(key).split(":", 1), _decoded(value), out)
    return tuple(out)


def _decoded(value: Any) -> Any:
    """The engine hands every value over as a string; structured ones and numbers are JSON in it."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _walk(path: list[str], value: Any, out: list[Setting]) -> None:
    if _names_metrics(path) and not isinstance(value, Mapping):
        items = value if isinstance(value, list) else [value]
        key = f"{path[0]}:{'.'.join(path[1:])}" if len(path) > 1 else path[0]
        out += [Setting(key, item, read_port(item)) for item in items if not _blank(item)]
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _walk([*path, str(key)], item, out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk([*path, str(index)], item, out)


_METRICS_NAME = re.compile(r"metrics?ports?$")
_METRICS_PARENT = re.compile(r"metrics?(ports?)?$")


def _names_metrics(path: list[str]) -> bool:
    """`proxyMetricsPort`, `proxy_metrics_port`, `METRICS-PORT`, or `port` inside `metrics`."""
    names = [re.sub(r"[^0-9a-z]", "", part.lower()) for part in path]
    if _METRICS_NAME.search(names[-1]):
        return True
    return names[-1] in ("port", "ports") and len(names) > 1 and bool(_METRICS_PARENT.search(names[-2]))


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def read_port(value: Any) -> Range | None:
    """A port or `low-high` range however it is written (9101, 9101.0, "+9101", "9_101", " 9101 ",
    "0x238d", full-width digits); None when it names no port between 1 and 65535."""
    if isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip().lower().replace("_", "").removesuffix("/tcp")
        single = _number(text)
        if single is None and "-" in text.lstrip("+-"):
            lo, _, hi = text.lstrip("+").partition("-")
            ends = (_number(lo.strip()), _number(hi.strip()))
            if None not in ends and 1 <= ends[0] <= ends[1] <= 65535:
                return ends
            return None
        value = single
    if isinstance(value, float):
        value = int(value) if value.is_integer() else None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        return None
    return (value, value)


def _number(text: str) -> int | None:
    for read in (int, lambda t: _integral(float(t)), lambda t: int(t, 0)):
        try:
            number = read(text)
        except (ValueError, OverflowError):
            continue
        if number is not None:
            return number
    return None


def _integral(number: float) -> int | None:
    return int(number) if number.is_integer() else None


def overlap(ports: Range, ranges: Iterable[Range]) -> list[Range]:
    """The parts of `ranges` that `ports` covers."""
    hits = []
    for lo, hi in ranges:
        start, end = max(lo, ports[0]), min(hi, ports[1])
        if start <= end:
            hits.append((start, end))
    return hits


def text(ranges: Iterable[Range], protocol: str) -> str:
    """`9090-9101/tcp, 9464/tcp`."""
    return ", ".join(f"{lo}/{protocol}" if lo == hi else f"{lo}-{hi}/{protocol}" for lo, hi in ranges)
