"""A lab host's first boot: what cloud-init does with the rendered user data, run inside the host.

It runs in the host's namespaces (`enter`), so every file lands at its rendered path in the host's
own overlay and every command sees the host's network. The modules run in cloud-init's order
(cloudinit/config/cloud.cfg on Ubuntu 22.04): `mounts`, `users`, `ssh` (init stage), then the
deferred `write_files` and `runcmd` (final stage), then `boot-finished`. Each module does what
cloud-init's does with the same tools (useradd, passwd -l, sudoers.d, authorized_keys, the host
keys), with three exceptions the lab cannot do and says so, one line each:
- packages: the machine's own tools stand for the installed packages; the `kumomta` package is
  its preinst (the kumod account and directories), its units and its binaries (the lab's
  stand-ins, or KUMOMTA_SBIN's); KumoMTA's repository (curl, apt-get) is not reached;
- the spool volume: a tmpfs mounted at the spool directory;
- `kumomta-sync --wait 900`: waits at most `sync_wait` seconds here.
`python -m tools.lab.firstboot CONFIG.json` prints one JSON line per step.
"""

import json
import os
import pwd
import re
import shlex
import subprocess
import sys
import time

BOOT_FINISHED = "/var/lib/cloud/instance/boot-finished"
SUDOERS = "/etc/sudoers.d/90-cloud-init-users"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# runcmd line -> what the lab does with it; anything else runs as it is.
NOT_RUN = "not run"
LINES = (
    (re.compile(r"^curl .*kumomta"), NOT_RUN),
    (re.compile(r"^chmod 644 /usr/share/keyrings/kumomta\.gpg$"), NOT_RUN),
    (re.compile(r"^apt-get update"), NOT_RUN),
    (re.compile(r"apt-get install .*\bkumomta$"), "package"),
    (re.compile(r"^/usr/local/sbin/kumomta-spool "), "spool"),
    (re.compile(r"/usr/local/sbin/kumomta-sync .* --wait \d+$"), "sync"),
)


def main(config_path: str) -> int:
    with open(config_path) as f:
        config = json.load(f)
    doc = config["cloud_config"]
    steps = [
        ("mounts", lambda: mounts(doc.get("mounts", []))),
        ("users", lambda: users(doc.get("users", []))),
        ("ssh", lambda: ssh(doc)),
        ("packages", lambda: f"not run: {' '.join(doc.get('packages', []))} (the machine's own tools stand in)"),
        ("write_files", lambda: write_files(doc.get("write_files", []))),
    ]
    for name, step in steps:
        if not _step(name, step):
            return 1
    for line in doc.get("runcmd", []):
        line = line if isinstance(line, str) else shlex.join(line)
        action = next((a for pattern, a in LINES if pattern.search(line)), "run")
        if not _step(line, lambda line=line, action=action: runcmd(line, action, config)):
            return 1
    os.makedirs(os.path.dirname(BOOT_FINISHED), exist_ok=True)
    with open(BOOT_FINISHED, "w") as f:
        f.write(f"{time.time()} kumolab\n")
    return 0


def _step(name: str, do) -> bool:
    started = time.monotonic()
    try:
        what = do()
        ok = True
    except (OSError, subprocess.CalledProcessError, ValueError, KeyError) as err:
        output = getattr(err, "stdout", None) or ""
        what, ok = f"failed: {err} {output.strip()[-400:]}".strip(), False
    print(json.dumps({"step": name, "ok": ok, "what": what, "seconds": round(time.monotonic() - started, 3)}))
    sys.stdout.flush()
    return ok


def _run(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, env={"PATH": PATH}, timeout=60)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, argv, output=(done.stdout + done.stderr))
    return done.stdout


def mounts(entries: list) -> str:
    """cc_mounts: each fstab entry mounted (here: into the host's own mount namespace)."""
    done = []
    for source, target, kind, options, *_ in entries:
        os.makedirs(target, exist_ok=True)
        _run(["mount", "-t", kind, "-o", options, source, target])
        done.append(f"{kind} on {target}")
    return f"mounted {', '.join(done)}" if done else "nothing to mount"


def users(entries: list) -> str:
    """cc_users_groups as cloud-init's distro code does it: useradd (a system user gets no home),
    `passwd -l` unless lock_passwd is false, its sudo rule in 90-cloud-init-users, its keys."""
    done = []
    for user in entries:
        if user == "default":
            continue  # the image's default user (ubuntu) is not part of this lab's image
        name = user["name"]
        argv = ["useradd", name]
        if user.get("shell"):
            argv += ["--shell", user["shell"]]
        argv += ["--system", "-M"] if user.get("system") or user.get("no_create_home") else ["-m"]
        _run(argv)
        if user.get("lock_passwd", True):
            _run(["passwd", "-l", name])
        if user.get("sudo"):
            rules = user["sudo"] if isinstance(user["sudo"], list) else [user["sudo"]]
            text = "".join(f"{name} {rule}\n" for rule in rules)
            fresh = not os.path.exists(SUDOERS)
            os.makedirs(os.path.dirname(SUDOERS), mode=0o750, exist_ok=True)
            with open(SUDOERS, "a") as f:
                f.write(("# Created by cloud-init (kumolab)\n" if fresh else "") + f"\n# User rules for {name}\n{text}")
            os.chmod(SUDOERS, 0o440)
        keys = user.get("ssh_authorized_keys") or []
        if keys:
            entry = pwd.getpwnam(name)
            ssh_dir = os.path.join(entry.pw_dir, ".ssh")
            os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
            os.chown(ssh_dir, entry.pw_uid, entry.pw_gid)
            path = os.path.join(ssh_dir, "authorized_keys")
            with open(path, "w") as f:
                f.write("".join(f"{key.strip()}\n" for key in keys))
            os.chmod(path, 0o600)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        done.append(name)
    return f"created {', '.join(done)}" if done else "no users"


def ssh(doc: dict) -> str:
    """cc_ssh: with ssh_deletekeys the image's host keys go, the given ones are written, sshd restarted."""
    if doc.get("ssh_deletekeys"):
        for name in os.listdir("/etc/ssh"):
            if name.startswith("ssh_host_") and "key" in name:
                os.unlink(os.path.join("/etc/ssh", name))
    written = []
    for key, value in (doc.get("ssh_keys") or {}).items():
        kind, _, part = key.rpartition("_")
        path = f"/etc/ssh/ssh_host_{kind}_key" + (".pub" if part == "public" else "")
        with open(path, "w") as f:
            f.write(value.strip() + "\n")
        os.chmod(path, 0o600 if part == "private" else 0o644)
        written.append(os.path.basename(path))
    _run(["systemctl", "restart", "ssh.service"])
    return f"host keys {', '.join(written) or 'of the image'}; ssh.service restarted"


def write_files(entries: list) -> str:
    for entry in entries:
        path = entry["path"]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(entry.get("content", ""))
        os.chmod(path, int(str(entry.get("permissions", "0644")), 8))
    return f"{len(entries)} files"


def runcmd(line: str, action: str, config: dict) -> str:
    if action == NOT_RUN:
        return "not run: KumoMTA's package repository is beyond the lab"
    if action == "package":
        return package(config["package"])
    if action == "spool":
        spool = config["spool_dir"]
        os.makedirs(spool, exist_ok=True)
        _run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=64m", "kumolab-spool", spool])
        return f"not run: no volume here; a tmpfs at {spool} instead"
    if action == "sync":
        line = re.sub(r"--wait \d+$", f"--wait {config['sync_wait']}", line)
    out = _shell(line)
    return f"ran{': ' + out.strip().splitlines()[-1] if out.strip() else ''}"


def _shell(line: str) -> str:
    done = subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True, check=False, timeout=120,
                          env={"PATH": PATH, "KUMOPROXY_ADDRESS_ATTEMPTS": "3", "LANG": "C.UTF-8"})  # fmt: skip
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, line, output=done.stdout + done.stderr)
    return done.stdout


def package(files: list[dict]) -> str:
    """The kumomta package: its preinst (KumoMTA assets/build-deb.sh), its units and binaries."""
    for command in (
        "getent group kumod >/dev/null || groupadd --system kumod",
        "getent passwd kumod >/dev/null || useradd --system -g kumod -d /var/spool/kumod -s /sbin/nologin kumod",
        "for d in /opt/kumomta/etc /opt/kumomta/etc/policy; do [ -d $d ] || install -d -m 755 -o kumod -g kumod $d; done",
        "for d in /var/log/kumomta /opt/kumomta/etc/dkim; do [ -d $d ] || install -d -m 2770 -o kumod -g kumod $d; done",
    ):
        _shell(command)
    for f in files:
        os.makedirs(os.path.dirname(f["path"]), exist_ok=True)
        with open(f["path"], "w") as out:
            out.write(f["content"])
        os.chmod(f["path"], int(f["mode"], 8))
    return "emulated: the kumod account and directories, " + ", ".join(f["path"] for f in files)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
