"""Port ranges the policies guard, read from policy config and from the stack's own config."""

import json
import os
from collections.abc import Iterable, Mapping
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
    """Configured metrics ports plus every `<namespace>:...MetricsPort` the stack sets.

    Following the stack's own setting (e.g. `kumomta:proxyMetricsPort`) means moving the proxy's
    metrics to another port cannot walk it out from under the policy.
    """
    configured = parse_ranges(policy_config.get("metricsPorts", DEFAULT_METRICS_PORTS))
    return configured + tuple((port, port) for port in _stack_metrics_ports(stack_config))


def _stack_metrics_ports(stack_config: str | None) -> list[int]:
    """Ports from the engine's PULUMI_CONFIG (a JSON object of `ns:key` -> string)."""
    text = stack_config if stack_config is not None else os.environ.get("PULUMI_CONFIG", "")
    try:
        values = json.loads(text) if text else {}
    except ValueError:
        return []
    ports = []
    for key, value in values.items() if isinstance(values, dict) else ():
        if key.lower().endswith("metricsport") and str(value).strip().isdigit():
            ports.append(int(str(value).strip()))
    return ports


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
