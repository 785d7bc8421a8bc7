"""No secret a host holds can be read by anyone but its service, checked on the host itself (issue 15).

One Python script runs on every host through the same transport as the other inside checks and reports, as
JSON: the owner and mode of every file in the directories that hold secrets; every file others (group or
world) may read that holds one of this host's secrets (the token, a line of a DKIM key), or any PEM private
key where this stack writes; and whether cloud-init's copies of the user data hold either. No secret travels
to the host for this: it reads them from its own files, and a proxy must have none at all.
"""

import json
from collections.abc import Callable

from components.bootstrap import layout
from components.bootstrap.layout import STATE_DIR
from tools.verify.checks import Result, Task, Unavailable, failed, passed, skipped
from tools.verify.stack import Stack

GROUP = "inside"
# Who may own each secret directory's files (README, "Secrets"); everything in them is 0600 or stricter.
OWNERS = {layout.NGINX_SECRETS: "root", layout.DKIM_DIR: "kumod"}
# Where this stack writes: a readable file holding a secret anywhere here is a leak.
SEARCHED = (
    "/etc",
    "/opt/kumomta",
    layout.SBIN,
    layout.ACME_ROOT,
    "/var/lib/cloud",
    "/var/log/kumomta",
    *STATE_DIR.values(),
)
# What this stack itself writes: any private key others may read here is a leak, whosever it is. Elsewhere (a
# distribution's own test keys, say) only this host's own secrets are looked for.
OWN = ("/etc/nginx/", "/etc/kumoproxy/", "/opt/kumomta/", f"{layout.SBIN}/", f"{layout.ACME_ROOT}/")
CLOUD_INIT = "/var/lib/cloud"
TOKEN_MAP = layout.TOKEN_MAP

SCRIPT = r"""
import gzip, json, os, pwd, re, stat, sys
secret_dirs, searched, own, token_map, cloud_init = json.loads(sys.argv[1])
report = {"files": [], "readable": [], "user_data": [], "token": False}
armour = re.compile(rb"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----")
known = {}  # a line of each secret this host holds -> what it is
try:
    m = re.search(r"\) \+(\S+)\$", open(token_map).read())
    if m:
        known[m.group(1).replace("[.]", ".").replace("[+]", "+").encode()] = "the injection token"
        report["token"] = True
except OSError:
    pass

def read(path):
    with open(path, "rb") as f:
        data = f.read(4 << 20)
    if data[:2] == b"\x1f\x8b":
        try:
            data += gzip.decompress(data)
        except (OSError, EOFError):
            pass
    return data

for top in secret_dirs:
    for base, dirs, names in os.walk(top):
        for name in [*dirs, *names]:
            path = os.path.join(base, name)
            st = os.lstat(path)
            try:
                owner = pwd.getpwuid(st.st_uid).pw_name
            except KeyError:
                owner = str(st.st_uid)
            report["files"].append([path, oct(stat.S_IMODE(st.st_mode)), owner, stat.S_ISDIR(st.st_mode)])
            if stat.S_ISREG(st.st_mode):
                lines = read(path).splitlines()
                if len(lines) > 1 and armour.match(lines[0]):
                    known[lines[1]] = "the key " + path

def holds(data, path):
    found = [what for line, what in known.items() if line in data]
    if path.startswith(tuple(own)) or "user-data" in os.path.basename(path):
        found += [f"a private key ({m.group(1).decode().strip() or 'PKCS#8'})" for m in armour.finditer(data)]
    return sorted(set(found))

for top in searched:
    for base, dirs, names in os.walk(top):
        for name in names:
            path = os.path.join(base, name)
            try:
                st = os.lstat(path)
                if not stat.S_ISREG(st.st_mode) or st.st_size > (4 << 20) or path.startswith(tuple(secret_dirs)):
                    continue
                found = holds(read(path), path)
            except OSError:
                continue
            if found and path.startswith(cloud_init + "/") and "user-data" in name:
                report["user_data"].append([path, found])
            elif found and st.st_mode & 0o044:
                report["readable"].append([path, oct(stat.S_IMODE(st.st_mode)), found])
print(json.dumps(report))
"""


def script() -> str:
    arguments = json.dumps([list(OWNERS), list(SEARCHED), list(OWN), TOKEN_MAP, CLOUD_INIT])
    return f"python3 - '{arguments}' <<'KUMOMTA_AUDIT'\n{SCRIPT}\nKUMOMTA_AUDIT\n"


def tasks(stack: Stack, connect: Callable) -> list[Task]:
    if not stack.hosts:
        return []
    return [Task(GROUP, "secret files", lambda: _run(stack, connect))]


def _run(stack: Stack, connect) -> list[Result]:
    try:
        outcomes = connect().run(stack.hosts, script())
    except Unavailable as err:
        return [skipped(GROUP, f"{h.label}: secrets readable by their service alone", str(err)) for h in stack.hosts]
    rows: list[Result] = []
    for host in stack.hosts:
        outcome = outcomes[host.label]
        if outcome.error is not None:
            rows.append(failed(GROUP, f"{host.label}: secrets readable by their service alone", outcome.error))
            continue
        try:
            found = json.loads(outcome.output.strip().splitlines()[-1])
        except (ValueError, IndexError):
            rows.append(failed(GROUP, f"{host.label}: secrets readable by their service alone",
                               f"the audit printed no report: {outcome.output[-200:]!r}"))  # fmt: skip
            continue
        rows += judge(host.label, host.role, found)
    return rows


def judge(label: str, role: str, found: dict) -> list[Result]:
    """Three rows per host from its report: the secret files, readable copies, cloud-init's copy."""
    files_row = f"{label}: secret files are their service's alone"
    wrong = []
    for path, mode, owner, is_dir in found["files"]:
        # A file: 0600 or stricter, owned by the service that reads it. A directory: nobody else may add or
        # swap a file in it.
        (top,) = [d for d in OWNERS if path.startswith(f"{d}/")] or [None]
        if is_dir and int(mode, 8) & 0o022:
            wrong.append(f"{path}/ {mode} (others may write)")
        elif not is_dir and (int(mode, 8) & ~0o600 or owner != OWNERS.get(top)):
            wrong.append(f"{path} {mode} {owner}")
    if role == "proxy" and found["files"]:
        wrong.append("a proxy holds secret files: " + ", ".join(f[0] for f in found["files"]))
    if role == "mta" and not found["token"]:
        wrong.append(f"no readable bearer map at {TOKEN_MAP}")
    rows = [failed("inside", files_row, "; ".join(wrong)) if wrong else passed("inside", files_row, _counted(found))]
    readable_row = f"{label}: no file others can read holds the token or a key"
    leaks = sorted(f"{path} ({mode}): {', '.join(what)}" for path, mode, what in found["readable"])
    rows.append(failed("inside", readable_row, "; ".join(leaks)) if leaks else passed("inside", readable_row, ""))
    copy_row = f"{label}: cloud-init's copy of the user data holds no secret"
    # Hetzner's user data carries the host's own SSH key (OPENSSH), which pins the day-2 channel (README,
    # "Secrets"); nothing else secret may be there.
    copies = sorted(
        f"{path}: {item}" for path, what in found["user_data"] for item in what if item != "a private key (OPENSSH)"
    )
    rows.append(failed("inside", copy_row, "; ".join(copies)) if copies else passed("inside", copy_row, ""))
    return rows


def _counted(found: dict) -> str:
    files = [f for f in found["files"] if not f[3]]
    return f"{len(files)} file(s), each 0600 and its service's" if files else "no secret files (a proxy holds none)"
