"""The lab's systemctl and service manager behave as systemd documents it (no root needed: a host here is
this machine, entered by a script that just runs the command).

Sources: systemd.unit(5) ("Conditions and Asserts": an unmet condition skips the start, the job still
succeeds; drop-ins, and an empty assignment resetting a list), systemd.service(5) (Type=, Restart=,
RestartSec=, ExecReload= with $MAINPID), systemd.exec(5) ("$VAR" as separate words, "${VAR}" inline),
systemctl(1) (is-active exits 0 only for active; 3 otherwise).
"""

import time

import pytest

from tools.lab import systemd
from tools.lab.standins import systemctl


@pytest.fixture
def manager(tmp_path):
    enter = tmp_path / "enter"
    enter.write_text('#!/bin/sh\nexec "$@"\n')
    enter.chmod(0o755)
    (tmp_path / "logs").mkdir()
    lab_units = []
    m = systemd.Manager(
        tmp_path / "systemd.sock",
        lambda label: (enter, lambda path: tmp_path / "run" / path.lstrip("/"), tmp_path / "logs"),
        lambda label, unit, verb: lab_units.append((label, unit, verb)) or "",
    )
    yield m, tmp_path, lab_units
    for service in m.services.values():
        m._stop(service)
    m.close()


def spec(tmp_path, text: str, *dropins: str, name: str = "demo.service") -> dict:
    unit = tmp_path / "units" / name
    unit.parent.mkdir(exist_ok=True)
    unit.write_text(text)
    paths = [unit]
    for n, dropin in enumerate(dropins):
        path = tmp_path / "units" / f"{name}.d" / f"{n}.conf"
        path.parent.mkdir(exist_ok=True)
        path.write_text(dropin)
        paths.append(path)
    values = systemctl.parse([str(p) for p in paths])
    conditions = [
        {"check": f"{k}={v}", "met": systemctl.condition(k, v)} for k, vs in values.items() if k.startswith("Condition")
        for v in vs
    ]  # fmt: skip
    first = {k: v[-1] for k, v in values.items() if v}
    return {"unit": name, "found": True, "type": first.get("Type", "simple"),
            "exec_start_pre": values.get("ExecStartPre", []), "exec_start": values.get("ExecStart", []),
            "exec_reload": values.get("ExecReload", []), "pid_file": first.get("PIDFile"),
            "restart": first.get("Restart", "no"), "restart_sec": first.get("RestartSec", "0.1"),
            "runtime_directory": [], "environment": systemctl.environment(values), "conditions": conditions}  # fmt: skip


def test_a_start_whose_condition_fails_is_skipped_with_exit_0_and_the_unit_stays_inactive(manager, tmp_path):
    m, _, _ = manager
    flag = tmp_path / "applied.json"
    unit = spec(tmp_path, "[Service]\nExecStart=/bin/sleep 30\n", f"[Unit]\nConditionPathExists={flag}\n")
    assert m.handle("h", ["start", "demo.service"], {"demo.service": unit})["code"] == 0
    assert m.handle("h", ["is-active", "--quiet", "demo.service"], {"demo.service": unit})["code"] == 3
    flag.write_text("{}")
    unit = spec(tmp_path, "[Service]\nExecStart=/bin/sleep 30\n", f"[Unit]\nConditionPathExists={flag}\n")
    assert m.handle("h", ["start", "demo.service"], {"demo.service": unit})["code"] == 0
    answer = m.handle("h", ["is-active", "demo.service"], {"demo.service": unit})
    assert (answer["code"], answer["stdout"]) == (0, "active\n")


def test_a_simple_unit_is_active_from_its_fork_and_restart_on_failure_brings_it_back_after_restartsec(
    manager, tmp_path
):
    m, _, _ = manager
    unit = spec(tmp_path, "[Service]\nType=simple\nExecStart=/bin/sh -c 'sleep 0.3; exit 1'\nRestart=on-failure\n"
                "RestartSec=1\n")  # fmt: skip
    assert m.handle("h", ["restart", "demo.service"], {"demo.service": unit})["code"] == 0
    # Active at once, although it is about to fail: what kumomta-apply's first is-active sees.
    assert m.handle("h", ["is-active", "demo.service"], {"demo.service": unit})["stdout"] == "active\n"
    time.sleep(0.6)
    answer = m.handle("h", ["is-active", "demo.service"], {"demo.service": unit})
    assert (answer["code"], answer["stdout"]) == (3, "activating\n")  # auto-restart, waiting RestartSec
    time.sleep(1.0)
    assert m.services[("h", "demo.service")].restarts == 1
    # systemctl show -p: what kumomta-apply compares before and after its settle time (systemd.exec(5) NRestarts=).
    shown = m.handle("h", ["show", "-p", "ActiveState,MainPID,NRestarts", "demo.service"], {"demo.service": unit})
    lines = dict(line.split("=", 1) for line in shown["stdout"].splitlines())
    assert lines["NRestarts"] == "1" and lines["ActiveState"] in ("active", "activating")


def test_an_empty_assignment_resets_a_list_and_dropins_come_in_name_order(tmp_path):
    unit = tmp_path / "u.service"
    unit.write_text("[Service]\nExecStart=/bin/a\nEnvironment=A=1\n")
    first, second = tmp_path / "10.conf", tmp_path / "20.conf"
    first.write_text("[Service]\nExecStart=\nExecStart=/bin/b\n")
    second.write_text("[Service]\nEnvironment=B=2\n")
    values = systemctl.parse([str(unit), str(first), str(second)])
    assert values["ExecStart"] == ["/bin/b"]
    assert systemctl.environment(values) == {"A": "1", "B": "2"}
    assert systemctl.condition("ConditionPathExists", f"!{unit}") is False
    assert systemctl.condition("ConditionPathExists", f"!{tmp_path}/none") is True


def test_exec_lines_split_a_whole_variable_into_words_and_substitute_braced_ones():
    env = {"SSHD_OPTS": "-o A=1 -o B=2", "MAINPID": "42"}
    assert systemd._argv("/usr/sbin/sshd -D $SSHD_OPTS", env) == ["/usr/sbin/sshd", "-D", "-o", "A=1", "-o", "B=2"]
    assert systemd._argv("-/bin/kill -HUP ${MAINPID}", env) == ["/bin/kill", "-HUP", "42"]
    assert systemd._argv("/usr/sbin/nginx -g 'daemon on; master_process on;'", env) == [
        "/usr/sbin/nginx", "-g", "daemon on; master_process on;",
    ]  # fmt: skip


def test_resolved_is_modelled_by_what_it_changes_and_unknown_units_are_not_found(manager):
    m, _, lab_units = manager
    assert (
        m.handle("h", ["restart", "systemd-resolved.service"], {"systemd-resolved.service": {"found": False}})["code"]
        == 0
    )
    assert lab_units == [("h", "systemd-resolved.service", "restart")]
    missing = m.handle("h", ["start", "nope.service"], {"nope.service": {"unit": "nope.service", "found": False}})
    assert missing["code"] == 5 and "Unit nope.service not found." in missing["stderr"]
