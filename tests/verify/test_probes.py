"""Probes against real servers on loopback: the bootstrap's nginx site, an open port and a closed one."""

import contextlib
import shutil
import socket

import pytest

from components.matrix import Role
from tests.bootstrap.nginx_harness import free_port, running
from tests.verify import stacks
from tools.verify import probes
from tools.verify.checks import Status, run_all
from tools.verify.stack import Host, Ports, Stack

TOKEN = "Zk3vQ9pLx2mN7rT4wY8bC1dF6gH0jK5sA3eU9iO2qW7zX4"


@contextlib.contextmanager
def listening():
    """An open port on loopback that accepts and then says nothing, as an exposed SOCKS5 port would."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def closed_port() -> int:
    return free_port()  # nothing listens there once the probe socket is closed


def loopback_stack(fqdn: str, metrics_port: int) -> Stack:
    hosts = (
        Host("mta", Role.MTA, fqdn, "127.0.0.1", "127.0.0.1", "i-mta"),
        Host("proxy", Role.PROXY, "proxy.example.com", "127.0.0.1", "127.0.0.1", "i-proxy"),
    )
    return Stack("prod", stacks.settings(proxyMetricsPort=metrics_port), hosts, None)


@pytest.fixture(scope="module")
def nginx(tmp_path_factory):
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed (.ci/run apt-gets nginx-light)")
    with running(tmp_path_factory.mktemp("nginx"), TOKEN) as (site, seen):
        yield site, seen


def test_the_guides_probes_pass_against_the_rendered_site_and_an_exposed_5000_fails(nginx):
    site, seen = nginx
    with listening() as exposed_socks:
        ports = Ports(https=site.https_port, socks=exposed_socks, kumod=closed_port())
        stack = loopback_stack(site.fqdn, closed_port())
        tls = probes.tls_context(str(site.root / "tls" / "fullchain.pem"))
        rows = {r.check: r for r in run_all(probes.tasks(stack, 2, tls, ports))}
    expected_pass = [
        "mta: POST /api/inject/v1 without a token gives 401",
        "mta: GET /kumomta-verify-no-such-path gives 404",
        "mta: GET /api/admin/bounce/v1 gives 404",
        "mta: GET /metrics.json gives 404",
        f"mta: {ports.kumod}/tcp (kumod) not reachable from here",
        f"proxy: {stack.settings.proxy_metrics_port}/tcp (metrics) not reachable from here",
    ]
    assert {name: rows[name].status for name in expected_pass} == dict.fromkeys(expected_pass, Status.PASS)
    assert rows["mta: POST /api/inject/v1 without a token gives 401"].reason.endswith("answered 401")
    exposed = rows[f"proxy: {exposed_socks}/tcp (SOCKS5) not reachable from here"]
    assert exposed.status == Status.FAIL
    assert exposed.reason == f"127.0.0.1:{exposed_socks} accepted a connection from here; only MTAs may reach it"
    assert len(rows) == len(expected_pass) + 1
    assert seen.requests == [], "nginx answered every probe itself; kumod never saw one"


def test_an_untrusted_certificate_fails_and_names_the_way_out(nginx):
    site, _ = nginx
    stack = loopback_stack(site.fqdn, closed_port())
    (inject, *_) = probes.tasks(stack, 2, probes.tls_context(None), Ports(https=site.https_port))
    (row,) = inject.run()
    assert row.status == Status.FAIL
    assert "certificate not trusted" in row.reason and "--ca-file" in row.reason


def test_a_server_that_never_answers_fails_within_the_timeout():
    with listening() as silent:
        stack = loopback_stack("mta.example.com", closed_port())
        (inject, *_) = probes.tasks(stack, 0.3, probes.tls_context(None), Ports(https=silent))
        (row,) = inject.run()
    assert row.status == Status.FAIL
    assert row.reason == f"127.0.0.1:{silent} as mta.example.com: no answer within 0.3s"


def test_reachability_tells_refused_from_connected():
    port = closed_port()
    assert probes.reachable("127.0.0.1", port, 1) == (False, f"127.0.0.1:{port} refused the connection")
    with listening() as open_port:
        assert probes.reachable("127.0.0.1", open_port, 1)[0] is True


def test_a_dropped_connection_says_where_the_probes_must_run(monkeypatch):
    # Both firewalls drop 443 from anywhere but ping8Cidrs and trustedCidrs: the connect times out.
    def dropped(*args, **kwargs):
        raise TimeoutError("timed out")

    monkeypatch.setattr(probes.socket, "create_connection", dropped)
    stack = loopback_stack("mta.example.com", closed_port())
    (inject, *_) = probes.tasks(stack, 0.3, probes.tls_context(None), Ports(https=443))
    (row,) = inject.run()
    assert row.status == Status.FAIL
    assert row.reason == (
        "127.0.0.1:443 as mta.example.com: no answer to the connection within 0.3s (filtered); "
        "443 admits only ping8Cidrs and trustedCidrs: run these probes from a network in trustedCidrs"
    )
