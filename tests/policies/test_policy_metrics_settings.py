"""The metrics guard follows the stack's own setting, however its key is spelled and its value written.

Issue 10's bypass: `kumomta:proxyMetricsPort: "+9200"` (or "9_200", or the key `kumomta:proxy_metrics_port`)
escaped a guard that read only keys ending in `MetricsPort` whose value passed `str.isdigit()`, while
Python's int() (and pydantic in lax mode) read them as 9200. The engine hands the pack its stack
config as PULUMI_CONFIG, a JSON object of `namespace:key` -> string, structured values JSON-encoded.
"""

import json

import pytest
from kumoguard import ports

from tests.policies.kit import assert_no_violation, assert_violation, firewall, hrule, stack, violations


def settings(config: dict) -> list[tuple[str, object, tuple | None]]:
    return [(s.key, s.value, s.ports) for s in ports.stack_metrics_settings(json.dumps(config))]


@pytest.mark.parametrize(
    "written",
    [
        "9200",
        "+9200",
        "9_200",
        " 9200 ",
        "9200.0",
        "9.2e3",
        "0x23f0",
        "09200",
        "\uff19\uff12\uff10\uff10",
        "9200/tcp",
        9200,
        9200.0,
    ],
)
def test_a_port_is_read_however_it_is_written(written):
    assert ports.read_port(written) == (9200, 9200)


@pytest.mark.parametrize("written", ["true", True, "nine", "9200.5", "0", "70000", "-9200", "nan", "9200-9100", {}])
def test_what_names_no_port_reads_as_none(written):
    assert ports.read_port(written) is None


@pytest.mark.parametrize(
    "key",
    [
        "kumomta:proxyMetricsPort",
        "kumomta:proxy_metrics_port",
        "kumomta:proxy-metrics-port",
        "kumomta:PROXY_METRICS_PORT",
        "kumomta:ProxyMetricsPort",
        "kumomta:metricsPort",
        "kumomta:metrics_port",
        "kumomta:proxyMetricPort",
        "kumomta:exporterMetricsPorts",
        "other:metricsPort",
    ],
)
def test_any_spelling_of_the_key_is_guarded(key):
    assert settings({key: "9200", "kumomta:domain": "x.com"}) == [(key, 9200, (9200, 9200))]


def test_nested_json_objects_and_lists_are_walked():
    config = {
        "kumomta:proxy": json.dumps({"Metrics_Port": "+9201", "metrics": {"port": 9202}}),
        "kumomta:exporters": json.dumps([{"metricsPorts": [9203, "9_204"]}]),
        "kumomta:dns": json.dumps({"provider": "route53", "zoneId": "Z1"}),
    }
    assert settings(config) == [
        ("kumomta:proxy.Metrics_Port", "+9201", (9201, 9201)),
        ("kumomta:proxy.metrics.port", 9202, (9202, 9202)),
        ("kumomta:exporters.0.metricsPorts", 9203, (9203, 9203)),
        ("kumomta:exporters.0.metricsPorts", "9_204", (9204, 9204)),
    ]


@pytest.mark.parametrize("key", ["kumomta:metricsPortEnabled", "kumomta:port", "kumomta:metricsCidrs", "kumomta:sport"])
def test_keys_that_are_not_a_metrics_port_are_left_alone(key):
    assert settings({key: "9200"}) == []


def test_unset_values_name_no_port():
    assert settings({"kumomta:proxyMetricsPort": "", "kumomta:metricsPort": "null"}) == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("kumomta:proxyMetricsPort", "+9200"),
        ("kumomta:proxyMetricsPort", "9_200"),
        ("kumomta:proxyMetricsPort", " 9200 "),
        ("kumomta:proxyMetricsPort", "9200.0"),
        ("kumomta:proxy_metrics_port", "9200"),
        ("kumomta:proxy-metrics-port", "9200"),
        ("kumomta:proxy", json.dumps({"metricsPort": 9200})),
    ],
)
def test_the_issue_10_bypass_is_closed(monkeypatch, key, value):
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({key: value}))
    assert_violation("no-public-metrics", firewall(hrule("9200", "0.0.0.0/1", "128.0.0.0/1")), "9200/tcp")


def test_an_unreadable_metrics_setting_fails_closed_once_for_the_stack(monkeypatch):
    monkeypatch.setenv(
        "PULUMI_CONFIG", json.dumps({"kumomta:proxyMetricsPort": "true", "kumomta:x_metrics_port": "9k"})
    )
    first, second = violations("metrics-port-readable", stack())
    assert first == (
        "kumomta:proxyMetricsPort: true looks like a metrics port setting but is not a port between 1 and 65535 the "
        "pack can read, so it cannot tell which rules expose it. Fix: write the port as a plain number (e.g. "
        "kumomta:proxyMetricsPort: 9101)."
    )
    assert second.startswith('kumomta:x_metrics_port: "9k" looks like a metrics port setting')


def test_readable_settings_draw_nothing(monkeypatch):
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"kumomta:proxyMetricsPort": "9101", "kumomta:domain": "x.com"}))
    assert_no_violation("metrics-port-readable", stack())
