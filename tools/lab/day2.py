"""Day 2 on a running lab (issue 12, "Tests"): `pulumi up` changes the stack, the running hosts follow.

Each scenario re-plans the stack with one more setting changed (the lab's `change`), delivers the new
bundles through each cloud's channel (SSM and the hosts' timers on AWS, the SSH push on Hetzner) and
checks on real packets that the hosts now do what the new plan says:
- add a proxy: a new namespace boots, the MTA's policy names it, and within `PICKUP` seconds of the
  delivery kumod sends through every proxy, the new one included (rounds of messages, one per proxy,
  until each proxy's address has reached the test MX);
- remove it again: its namespace goes, the MTA no longer names it, nothing the cloud firewalls
  hold names its addresses (the host firewalls name the proxy subnet, by design), and within
  `PICKUP` seconds kumod hands no message to it any more (a whole round arrives);
- add an admin network: 22 opens from it on every host, and from nowhere else;
- rotate the token: the old one gets 401, the new one 200;
- a bad version (an Nginx site that fails `nginx -t`; a KumoProxy policy it can't start on) is
  refused or rolled back, the host keeps what it ran (its token still 200, its applied.json), its
  failed.json says why, and `make verify` reports the difference;
and every host runs the version the plan wants (`make verify`'s applied = desired, read on the host).
"""

import copy
import hashlib
import json
import secrets
import time
from dataclasses import replace
from itertools import count

from components.bootstrap.layout import STATE_DIR
from components.matrix import Role
from tools.lab import checks, engine
from tools.lab.lab import Lab
from tools.verify import applied
from tools.verify.checks import Result, failed, passed
from tools.verify.remote import Netns
from tools.verify.stack import Stack, hosts

ADMIN = "198.51.100.7/32"
PICKUP = 30.0
"""Seconds kumod may take to use a changed proxy list: its 10 s config poll, then its caches."""
BAD_DIRECTIVE = "kumolab_no_such_directive on;"
POLICY = "/opt/kumomta/etc/policy/init.lua"


def run(lab: Lab) -> list[Result]:
    """Every scenario in turn, each on top of the last; the lab is back at its own settings after."""
    settings: dict = {}
    rows = add_proxy(lab, settings)
    rows += remove_proxy(lab, settings)
    rows += admin_network(lab, settings)
    rows += rotate_token(lab, settings)
    rows += bad_version(lab)
    return rows


def add_proxy(lab: Lab, settings: dict) -> list[Result]:
    group = "add-proxy"
    labels = {h.label for h in lab.plan.hosts}
    label = next(f"proxy{n}" for n in count(2) if f"proxy{n}" not in labels)
    settings["kumomta:proxyHosts"] = [h.label for h in lab.plan.of_role(Role.PROXY)] + [label]
    # Mail flows before the change, as on a live MTA: kumod's queue and its pool exist already.
    rows = [replace(r, check=f"before: {r.check}") for r in through(lab, group)]
    change = lab.change(f"add {label}", settings)
    rows += _delivered(group, change)
    new = lab.plan.host(label)
    for mta in lab.plan.of_role(Role.MTA):
        named = new.private_ip in lab.hosts[mta.label].file(POLICY)
        rows.append(_row(group, f"{mta.label}: kumod's policy names {label} ({new.private_ip})", named, "init.lua"))
    rows += applied_rows(lab, group)
    rows += through(lab, group)
    return rows


def remove_proxy(lab: Lab, settings: dict) -> list[Result]:
    group = "remove-proxy"
    proxies = lab.plan.of_role(Role.PROXY)
    gone = proxies[-1]
    settings["kumomta:proxyHosts"] = [h.label for h in proxies[:-1]]
    change = lab.change(f"remove {gone.label}", settings)
    rows = _delivered(group, change)
    ns = f"{lab.prefix}-{gone.label}"
    listed = engine.sh(["ip", "netns", "list"]).split()
    rows.append(_row(group, f"{gone.label}'s namespace is gone (the server was deleted)", ns not in listed, ns))
    for mta in lab.plan.of_role(Role.MTA):
        named = gone.private_ip in lab.hosts[mta.label].file(POLICY)
        rows.append(_row(group, f"{mta.label}: kumod's policy no longer names {gone.label} ({gone.private_ip})",
                         not named, "init.lua"))  # fmt: skip
    router = engine.in_ns(lab.ns(lab.topology.cloud_router), ["nft", "list", "table", "inet", "cloud"])
    kept = [a for a in (gone.private_ip, gone.public_ip) if a in router]
    rows.append(_row(group, f"the cloud firewall no longer admits {gone.label}'s addresses", not kept,
                     f"still names {kept}" if kept else f"{gone.private_ip} and {gone.public_ip} are in no rule"))  # fmt: skip
    rows += applied_rows(lab, group)
    rows += through(lab, group, gone=gone.label)
    return rows


def through(lab: Lab, group: str, gone: str | None = None, within: float = PICKUP) -> list[Result]:
    """From each MTA a round of messages, one per proxy, every second, until every proxy of the plan has
    carried one (or `within` seconds passed): one row per MTA and proxy, saying how long after the
    delivery its first message arrived. With `gone` (a removed proxy), then one more round, which must
    arrive whole: kumod hands nothing to the removed proxy any more."""
    started = time.time()
    mtas, proxies = lab.plan.of_role(Role.MTA), lab.plan.of_role(Role.PROXY)
    names = {p.public_ip: p.label for p in proxies}
    sent: dict[str, str] = {}
    first: dict[tuple[str, str], float] = {}
    tag = f"day2-{time.time_ns()}"

    def round_(n: int) -> set[str]:
        batch = {}
        for mta in mtas:
            for k in range(len(proxies)):
                batch[f"<{tag}-{n}-{mta.label}-{k}@{checks.TEST_DOMAIN}>"] = mta
        lab.probe("internet", [{**checks.injection(lab, mta, r.strip("<>")), "id": i}
                               for i, (r, mta) in enumerate(batch.items())])  # fmt: skip
        sent.update({r: mta.label for r, mta in batch.items()})
        return set(batch)

    def arrived() -> list[dict]:
        found = [m for m in lab.journal("mx") if m.get("event") == "message" and m["rcpt"] and m["rcpt"][0] in sent]
        for m in found:
            first.setdefault((sent[m["rcpt"][0]], names.get(m["peer"], m["peer"])), m["time"] - started)
        return found

    rounds = 0
    while time.time() - started < within:
        round_(rounds)
        rounds += 1
        time.sleep(1.0)
        arrived()
        if all((m.label, p.label) in first for m in mtas for p in proxies):
            break
    rows = []
    for mta in mtas:
        for proxy in proxies:
            name = f"{mta.label} -> {proxy.label} -> test MX within {within:g}s of the delivery"
            took = first.get((mta.label, proxy.label))
            reason = f"first message through it {took:.1f}s after the delivery" if took is not None else (
                f"none in {rounds} rounds; the MX saw {sorted({k[1] for k in first})}")  # fmt: skip
            rows.append(_row(group, name, took is not None, reason))
    if gone:
        whole = None
        while whole is None and time.time() - started < within:
            at, last = time.time() - started, round_(rounds)
            rounds += 1
            deadline = time.time() + 2
            while time.time() < deadline and not last <= {m["rcpt"][0] for m in arrived()}:
                time.sleep(0.2)
            whole = at if last <= {m["rcpt"][0] for m in arrived()} else None
        lost = len(set(sent) - {m["rcpt"][0] for m in arrived()})
        reason = (f"every message of a round sent {whole:.1f}s after the delivery arrived" if whole is not None
                  else f"no round arrived whole within {within:g}s")  # fmt: skip
        reason += f"; {lost} sent earlier went to the removed proxy and wait for kumod's retry"
        rows.append(_row(group, f"within {within:g}s kumod hands no message to {gone} any more", whole is not None,
                         reason))  # fmt: skip
    return rows


def admin_network(lab: Lab, settings: dict) -> list[Result]:
    group = "admin-ssh"
    before = checks.run_matrix(lab, port=22, group=group)
    rows = [replace(r, check=f"before: {r.check}") for r in before if r.check.startswith("from admin,")]
    settings["kumomta:adminCidrs"] = [ADMIN]
    change = lab.change(f"adminCidrs {ADMIN}", settings)
    rows += _delivered(group, change)
    rows += applied_rows(lab, group)
    rows += [replace(r, check=f"after: {r.check}") for r in checks.run_matrix(lab, port=22, group=group)]
    return rows


def rotate_token(lab: Lab, settings: dict) -> list[Result]:
    group = "rotate-token"
    old = lab.plan.token
    settings["kumomta:injectToken"] = secrets.token_hex(24)
    change = lab.change("a new injectToken", settings)
    rows = _delivered(group, change)
    rows += applied_rows(lab, group)
    rows += token_rows(lab, group, {"the old token": (old, 401), "the new token": (lab.plan.token, 200)})
    return rows


def bad_version(lab: Lab) -> list[Result]:
    """Versions that must not take: refused (Nginx's own check) or rolled back (KumoProxy not coming back)."""
    group = "bad-version"
    mta, proxy = lab.plan.of_role(Role.MTA)[0], lab.plan.of_role(Role.PROXY)[0]
    site = "/etc/nginx/conf.d/kumomta.conf"
    rows = _bad(lab, group, mta.label, site, lambda text: f"{BAD_DIRECTIVE}\n{text}", "refused by nginx", "Nginx site")
    rows += token_rows(lab, group, {"the token it ran before": (lab.plan.token, 200)})
    policy = "/opt/kumomta/etc/proxy/proxy.lua"

    def unbindable(text: str) -> str:
        broken = text.replace("listen = LISTEN_IP .. ':5000',", "listen = '192.0.2.254:5000',")
        if broken == text:
            raise ValueError("the rendered proxy.lua no longer builds its listener from LISTEN_IP")
        return broken

    rows += _bad(lab, group, proxy.label, policy, unbindable, "rolled back: kumoproxy", "KumoProxy policy")
    rows += [replace(r, group=group, check=f"afterwards: {r.check}") for r in checks.delivery(lab)]
    return rows


def _bad(lab: Lab, group: str, label: str, path: str, breaks, refusal: str, what: str) -> list[Result]:
    run = lab.hosts[label]
    state = _state_dir(lab)
    before = run.file(f"{state}/applied.json")
    document = _with(lab.plan.host(label).bundle, path, breaks)
    delivered = lab.deliver_bundle(label, document)
    name = f"{label}: a {what} that can't run ({document['version']}) is not taken"
    rows = [_row(group, name, delivered.code != 0 and refusal in delivered.output, delivered.output[-300:])]
    rows.append(_row(group, f"{label}: applied.json unchanged", run.file(f"{state}/applied.json") == before, before))
    record = json.loads(run.file(f"{state}/failed.json")) if run.machine.path(f"{state}/failed.json").exists() else {}
    rows.append(_row(group, f"{label}: failed.json names {document['version']} and why",
                     record.get("version") == document["version"] and refusal in record.get("error", ""),
                     json.dumps(record)[:300]))  # fmt: skip
    verified = applied_rows(lab, group, {label: document["version"]})
    (row,) = [r for r in verified if r.check.startswith(f"make verify: {label}:")]
    rows.append(_row(group, f"make verify: {label} differs from the wanted {document['version']} and says why",
                     row.status.value == "fail" and refusal in row.reason, row.reason))  # fmt: skip
    restored = lab.deliver_bundle(label, lab.plan.host(label).bundle)
    rows.append(_row(group, f"{label}: the stack's own version again", restored.code == 0, restored.output[-200:]))
    return rows


def _with(bundle: dict, path: str, change) -> dict:
    """The bundle with one file changed, its hash and version made to match, as a new `up` would."""
    document = copy.deepcopy(bundle)
    (entry,) = [f for f in document["files"] if f["path"] == path]
    entry["content"] = change(entry["content"])
    entry["sha256"] = hashlib.sha256(entry["content"].encode()).hexdigest()
    document["version"] = hashlib.sha256(json.dumps(document["files"], sort_keys=True).encode()).hexdigest()[:16]
    return document


def token_rows(lab: Lab, group: str, tokens: dict[str, tuple[str, int]], settle: float = 5.0) -> list[Result]:
    """GET /metrics on each MTA from the PING8 app with each token; Nginx reloads in the background,
    so each probe may take `settle` seconds to see the new configuration."""
    rows = []
    for mta in lab.plan.of_role(Role.MTA):
        ca = str(lab.hosts[mta.label].root / "etc/nginx/kumomta-tls/fullchain.pem")
        for words, (token, want) in tokens.items():
            probe = {"id": 0, "kind": "https", "dst": mta.public_ip, "host": mta.fqdn, "method": "GET",
                     "path": "/metrics", "cafile": ca, "src": lab.places.ping8[0], "authorization": f"Bearer {token}"}  # fmt: skip
            deadline = time.monotonic() + settle
            while True:
                (got,) = lab.probe("internet", [probe])
                if got.get("status") == want or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            rows.append(_row(group, f"{mta.label}: GET /metrics with {words} gives {want}", got.get("status") == want,
                             got["detail"]))  # fmt: skip
    return rows


def applied_rows(lab: Lab, group: str, wanted: dict[str, str] | None = None) -> list[Result]:
    """`make verify`'s applied = desired on every host (optionally wanting other versions)."""
    outputs = copy.deepcopy(lab.plan.outputs)
    for label, version in (wanted or {}).items():
        outputs["hosts"][label]["configVersion"] = version
    stack = Stack(lab.plan.stack, lab.plan.settings, hosts(outputs), None)
    enter = {label: str(run.enter) for label, run in lab.hosts.items()}
    namespaces = {label: run.ns for label, run in lab.hosts.items()}
    (task,) = applied.tasks(stack, lambda: Netns(namespaces, 5.0, enter))
    return [replace(r, group=group, check=f"make verify: {r.check}") for r in task.run()]


def _delivered(group: str, change) -> list[Result]:
    rows = []
    for d in change.deliveries:
        how = "booted and applied its first bundle" if d.label in change.booted else f"applied it ({d.channel})"
        last = (d.output.strip().splitlines() or [""])[-1]
        rows.append(_row(group, f"{change.what}: {d.label} {how}", d.code == 0, f"{d.seconds:.2f}s: {last}"))
    return rows


def _state_dir(lab: Lab) -> str:
    return STATE_DIR[lab.plan.cloud]


def _row(group: str, name: str, ok: bool, reason: str) -> Result:
    return (passed if ok else failed)(group, name, reason)
