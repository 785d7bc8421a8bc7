"""The lab's `systemctl`, on each host's PATH: reads the units as the host has them, asks the lab's manager.

It runs inside the host, so it reads the real unit files and drop-ins at systemd's own search path
(systemd.unit(5), "Unit File Load Path": /etc/systemd/system, /run/systemd/system,
/usr/local/lib/systemd/system, /usr/lib/systemd/system), reads their EnvironmentFile=s and evaluates
their Condition*= checks here, and hands the verb and what it read to the lab's manager
(tools/lab/systemd.py) over a Unix socket. The manager starts, stops, reloads and watches the
processes, and answers with systemctl's exit status and output.
`python -m tools.lab.standins.systemctl SOCKET HOST ARGS...`
"""

import json
import os
import shlex
import socket
import sys

SEARCH_PATH = ("/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system")
LISTS = {"ExecStartPre", "ExecStart", "ExecReload", "EnvironmentFile", "Environment", "RuntimeDirectory"}


def unit_file(name: str) -> tuple[str | None, list[str]]:
    """The unit's file and its drop-ins, in the order systemd reads them."""
    found = next((os.path.join(d, name) for d in SEARCH_PATH if os.path.isfile(os.path.join(d, name))), None)
    dropins: dict[str, str] = {}
    for d in reversed(SEARCH_PATH):
        directory = os.path.join(d, f"{name}.d")
        if os.path.isdir(directory):
            for conf in os.listdir(directory):
                if conf.endswith(".conf"):
                    dropins[conf] = os.path.join(directory, conf)
    return found, [dropins[k] for k in sorted(dropins)]


def parse(paths: list[str]) -> dict[str, list[str]]:
    """Key -> values; a list setting's empty assignment resets it, any other setting's last value wins."""
    values: dict[str, list[str]] = {}
    for path in paths:
        with open(path) as f:
            text = f.read().replace("\\\n", " ")
        for line in text.splitlines():
            line = line.strip()
            if not line or line[0] in "#;[" or "=" not in line:
                continue
            key, _, value = line.partition("=")
            key, value = key.strip(), value.strip()
            if key in LISTS or key.startswith("Condition"):
                values[key] = [] if value == "" else [*values.get(key, []), value]
            else:
                values[key] = [value]
    return values


def condition(key: str, value: str) -> bool | None:
    """A Condition*= check as systemd makes it (systemd.unit(5), "Conditions and Asserts"); None if unknown."""
    negate = value.startswith("!")
    path = value.lstrip("!")
    tests = {
        "ConditionPathExists": lambda: os.path.exists(path),
        "ConditionPathIsDirectory": lambda: os.path.isdir(path),
        "ConditionFileNotEmpty": lambda: os.path.isfile(path) and os.path.getsize(path) > 0,
        "ConditionPathIsMountPoint": lambda: os.path.ismount(path),
    }
    if key not in tests:
        return None
    return tests[key]() != negate


def environment(values: dict[str, list[str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for entry in values.get("EnvironmentFile", []):
        optional, path = entry.startswith("-"), entry.lstrip("-")
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            if optional:
                continue
            raise
        for line in lines:
            key, sep, value = line.strip().partition("=")
            if sep and key and not key.startswith("#"):
                env[key.strip()] = value.strip().strip('"')
    for entry in values.get("Environment", []):
        for word in shlex.split(entry):
            key, _, value = word.partition("=")
            env[key] = value
    return env


def spec(name: str) -> dict:
    path, dropins = unit_file(name)
    if path is None:
        return {"unit": name, "found": False}
    values = parse([path, *dropins])
    conditions = []
    for key, items in values.items():
        if key.startswith("Condition"):
            conditions += [{"check": f"{key}={item}", "met": condition(key, item)} for item in items]
    first = {k: v[-1] for k, v in values.items() if v}
    return {
        "unit": name,
        "found": True,
        "path": path,
        "dropins": dropins,
        "type": first.get("Type", "simple"),
        "exec_start_pre": values.get("ExecStartPre", []),
        "exec_start": values.get("ExecStart", []),
        "exec_reload": values.get("ExecReload", []),
        "pid_file": first.get("PIDFile"),
        "restart": first.get("Restart", "no"),
        "restart_sec": first.get("RestartSec", "0.1"),
        "runtime_directory": values.get("RuntimeDirectory", []),
        "environment": environment(values),
        "conditions": conditions,
    }


def main(argv: list[str]) -> int:
    sock_path, host, args = argv[0], argv[1], argv[2:]
    units = [a if "." in a else f"{a}.service" for a in args[1:] if not a.startswith("-")]
    request = {"host": host, "args": args, "units": {name: spec(name) for name in units}}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(180)
        s.connect(sock_path)
        s.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    answer = json.loads(data or b'{"code": 1, "stderr": "the lab\'s manager gave no answer\\n"}')
    sys.stdout.write(answer.get("stdout", ""))
    sys.stderr.write(answer.get("stderr", ""))
    return int(answer["code"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
