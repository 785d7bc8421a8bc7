"""Inside checks over SSH, with the real probe script run by a stand-in `ssh` against loopback ports.

The stand-in does what sshd would: hand the remote command line to a shell. So the script the
tool sends is executed for real here, proving its lines parse into the right rows.
"""

import shutil
import socket
from pathlib import Path

import pytest

from tests.bootstrap.nginx_harness import free_port
from tests.verify import stacks
from tools.verify import inside
from tools.verify.checks import Status, run_all
from tools.verify.remote import Ssh
from tools.verify.stack import Ports

OUTPUTS = stacks.outputs(
    mta=("mta", "192.0.2.10", "127.0.0.1", "101"),
    proxy=("proxy", "192.0.2.20", "127.0.0.1", "102"),
    proxy2=("proxy", "192.0.2.21", "127.0.0.2", "103"),
)


def fake_ssh(directory: Path, exit_code: int | None = None) -> Path:
    """An `ssh` that records its arguments, then runs the remote command locally (or fails like ssh)."""
    program = directory / "ssh"
    run = (
        'exec sh -c "$last"'
        if exit_code is None
        else f'echo "ssh: connect to host: Connection timed out" >&2; exit {exit_code}'
    )
    program.write_text(f'#!/bin/sh\nfor last; do :; done\nprintf "%s\\n" "$@" >> "$0.argv"\n{run}\n')
    program.chmod(0o755)
    return program


@pytest.fixture
def open_port():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


def rows_of(program: Path, port: int, test_mx, webhook) -> dict:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    stack = stacks.stack(OUTPUTS, "prod-hcloud", adminCidrs=["192.0.2.0/29"])
    ports = Ports(socks=port, smtp=port)
    tasks = inside.tasks(stack, lambda: Ssh("root", 2, str(program)), 2, test_mx, webhook, ports)
    return {r.check: r for r in run_all(tasks)}


def test_the_script_reaches_open_ports_and_reports_refused_ones(tmp_path, open_port):
    program = fake_ssh(tmp_path)
    closed = free_port()
    rows = rows_of(program, open_port, "127.0.0.1", f"https://127.0.0.1:{closed}/webhooks/kumomta")

    assert rows["mta -> proxy: " + f"{open_port}/tcp (SOCKS5) reachable"].status == Status.PASS
    refused = rows[f"mta -> proxy2: {open_port}/tcp (SOCKS5) reachable"]
    assert (refused.status, refused.reason) == (Status.FAIL, f"127.0.0.2:{open_port}: connect: Connection refused")
    for proxy in ("proxy", "proxy2"):
        mx = rows[f"{proxy} -> test MX: {open_port}/tcp reachable"]
        assert (mx.status, mx.reason) == (Status.PASS, f"127.0.0.1:{open_port}: connected")
    hook = rows["mta -> PING8 webhook over HTTPS"]
    assert hook.status == Status.FAIL
    assert hook.reason.startswith(f"https://127.0.0.1:{closed}/webhooks/kumomta: curl: (7)")

    argv = (tmp_path / "ssh.argv").read_text().splitlines()
    assert argv.count("BatchMode=yes") == 4  # one run per source host and check kind
    assert {a for a in argv if "@" in a and not a.startswith("bash")} == {
        "root@192.0.2.10",
        "root@192.0.2.20",
        "root@192.0.2.21",
    }


def test_ssh_that_cannot_connect_fails_each_row_and_hints_at_admin_cidrs(tmp_path, open_port):
    rows = rows_of(fake_ssh(tmp_path, exit_code=255), open_port, None, None)
    socks = [r for name, r in rows.items() if "SOCKS5" in name]
    assert len(socks) == 2
    for row in socks:
        assert row.status == Status.FAIL
        assert row.reason == (
            "ssh root@192.0.2.10 failed: ssh: connect to host: Connection timed out (is this machine in adminCidrs?)"
        )


def test_a_missing_ssh_client_skips_with_what_to_install(tmp_path, open_port):
    rows = rows_of(tmp_path / "no-such-ssh", open_port, None, None)
    socks = [r for name, r in rows.items() if "SOCKS5" in name]
    assert {r.status for r in socks} == {Status.SKIPPED}
    assert all("install an OpenSSH client" in r.reason for r in socks)
