"""The lab's checks, read like the guide's checklist: "from internet, reach mta on 443".

What each check expects is written here from the guide ("Ports and Firewall") and the README's
promises, not from `components/matrix.py`, so a wrong matrix row is caught too:
- the MTA takes 80 from anyone, 443 from the PING8 app and trusted networks, 22 from admin
  networks when set (and on Hetzner from the deploy networks, the day-2 push), nothing else;
  kumod's 8000 answers on the MTA's loopback only;
- the proxy takes 5000 from the MTAs only (over private addresses), metrics from monitoring
  only (when set), 22 as the MTA does, nothing else;
- the MTA sends 5000 to the proxies, 443 to the PING8 app, DNS to its resolver, and with
  `packageEgress` 80/443 anywhere; never 25. The proxy sends 25 anywhere, DNS to its resolver,
  and with `packageEgress` 80/443. Nothing else leaves a host.
Each probe is one row; a failed row says what happened and what was expected.
"""

import ipaddress
import json
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from components.matrix import Role
from tools.lab.lab import ANYWHERE_NAME, PY, ROOT, TEST_DOMAIN, TEST_MX_NAME, Lab, listening, probe_ports
from tools.lab.stack import Host
from tools.verify.checks import Result, failed, passed, skipped

INJECT = "/api/inject/v1"


@dataclass(frozen=True)
class Source:
    """Who sends: a lab node, the address it sends from, and what the guide calls it."""

    name: str
    node: str
    src: str | None
    kind: str  # "internet" | "ping8" | "trusted" | "monitoring" | "admin" | "mta" | "proxy"
    inside: bool
    """On the VPC / private network side (AWS: may reach private addresses)."""


@dataclass(frozen=True)
class Expect:
    source: Source
    target: str
    """Words for the report: `mta (private 10.42.1.52)`."""
    probe: dict
    want: bool
    why: str


def sources(lab: Lab) -> list[Source]:
    places, settings = lab.places, lab.plan.settings
    net = lab.plan.network
    inside = {a: _in(a, net) for a in (places.monitoring, places.admin, places.deploy)}
    out = [Source("internet", "internet", places.untrusted, "internet", False)]
    if places.ping8:
        out.append(Source("PING8 app", "internet", places.ping8[0], "ping8", False))
    if places.trusted:
        out.append(Source("trusted network", "internet", places.trusted[0], "trusted", False))
    monitoring = "monitoring" if settings.monitoring_cidrs else "internet"
    out.append(Source("monitoring", "monitoring", None, monitoring, inside[places.monitoring]))
    admin = "admin" if settings.admin_cidrs else "internet"
    out.append(Source("admin", "admin", None, admin, inside[places.admin]))
    deploy = "deploy" if settings.deploy_cidrs else "internet"
    out.append(Source("deploy", "deploy", None, deploy, _in(places.deploy, net)))
    out += [Source(h.label, h.label, None, h.role.value, True) for h in lab.plan.hosts]
    return out


def _in(address: str, net) -> bool:
    return ipaddress.ip_address(address) in net


def inbound(lab: Lab, source: Source, host: Host, private: bool, port: int) -> tuple[bool, str]:
    """Whether `host` takes `port` from `source` (the guide), and the guide's words for it."""
    settings = lab.plan.settings
    if port == 22:
        why = "22 only from admin networks" + ("" if settings.admin_cidrs else " (none set)")
        if lab.plan.cloud == "hcloud":
            why += " and the deploy networks (Hetzner's day-2 push)"
        return source.kind == "admin" or (source.kind == "deploy" and lab.plan.cloud == "hcloud"), why
    if host.role == Role.MTA:
        if port == 80:
            return True, "80 from the public internet (ACME, redirect)"
        if port == 443:
            return source.kind in ("ping8", "trusted"), "443 from the PING8 app and trusted networks only"
        if port == 8000:
            return False, "8000 on the MTA's loopback only"
        return False, "nothing else reaches the MTA"
    if port == 5000:
        return source.kind == "mta" and private, "5000 only from the MTAs, over private addresses"
    if port == settings.proxy_metrics_port:
        return source.kind == "monitoring", "metrics only from monitoring" + (
            "" if settings.monitoring_cidrs else " (none set)"
        )
    return False, "nothing else reaches the proxy"


def outbound(lab: Lab, source: Source, port: int, to: str) -> tuple[bool, str]:
    """Whether a host may send to `port` of `to` ("proxy-private", "ping8", "resolver", "mx", "other")."""
    egress = lab.plan.settings.package_egress
    package = port in (80, 443) and egress
    if source.kind == "mta":
        if port == 5000 and to == "proxy-private":
            return True, "the MTA sends 5000 to the proxies"
        if port == 443 and to == "ping8":
            return True, "the MTA sends 443 to the PING8 app"
        if port == 25:
            return False, "the MTA never sends 25 itself (mail leaves through the proxies)"
        return package, "80/443 out for packages" if package else "nothing else leaves the MTA"
    if source.kind == "proxy":
        if port == 25:
            return True, "the proxy sends 25 to any MX"
        return package, "80/443 out for packages" if package else "nothing else leaves the proxy"
    return True, "not a host of the stack: no egress rules"


def matrix(lab: Lab, layer: str = "both") -> list[Expect]:
    """Every source to every probed port of every host, and each host to the internet's ports.

    With one `layer` in force ("cloud" or "host") each must hold the matrix on its own, except
    where the cloud documents it does not filter: Hetzner's private network.
    """
    open_private = layer == "cloud" and lab.plan.cloud == "hcloud"
    plan, places = lab.plan, lab.places
    out = []
    ports = probe_ports(plan)
    for source in sources(lab):
        host_source = source.kind in ("mta", "proxy")
        for host in plan.hosts:
            if host.label == source.node:
                continue
            for kind, address, private in (("private", host.private_ip, True), ("public", host.public_ip, False)):
                for port in ports:
                    if private and not source.inside:
                        want, why = False, "private addresses are not routed from outside"
                    elif not private and source.inside and not host_source:
                        want, why = False, "a private address without a public one has no way out"
                    elif private and open_private:
                        want, why = True, "Hetzner does not filter the private network: the host firewall guards it"
                    else:
                        want, why = inbound(lab, source, host, private, port)
                        if want and host_source:
                            to = "proxy-private" if host.role == Role.PROXY and private else "host"
                            want, why_out = outbound(lab, source, port, to)
                            why = why if want else why_out
                    target = f"{host.label} ({kind} {address})"
                    out.append(Expect(source, target, _tcp(source, address, port), want, why))
        if host_source:
            internet = [(places.anywhere, "other", ANYWHERE_NAME, p) for p in sorted({*ports, 53})]
            internet.append((places.test_mx, "mx", TEST_MX_NAME, 25))
            if places.ping8:
                internet.append((places.ping8[0], "ping8", "PING8 app", 443))
            for address, to, words, port in internet:
                want, why = outbound(lab, source, port, to)
                out.append(Expect(source, f"{words} ({address})", _tcp(source, address, port), want, why))
    return out


def _tcp(source: Source, address: str, port: int) -> dict:
    probe = {"kind": "tcp", "dst": address, "port": port, "timeout": 1.0}
    if source.src:
        probe["src"] = source.src
    return probe


LAYERS = {
    "both": ("matrix", ""),
    "cloud": ("matrix-cloud", "[cloud firewall only] "),
    "host": ("matrix-host", "[host firewall only] "),
}


def run_matrix(lab: Lab, layer: str = "both", port: int | None = None, group: str | None = None) -> list[Result]:
    """The matrix on real packets; `port` probes that port only, `group` names the rows' group."""
    default, words = LAYERS[layer]
    group = group or default
    expects = [e for e in matrix(lab, layer) if port is None or e.probe["port"] == port]
    with lab.layer(layer):
        results = _run(lab, [(e.source.node, e.probe) for e in expects])
    rows = []
    for e, got in zip(expects, results, strict=True):
        verb = "reach" if e.want else "not reach"
        name = f"{words}from {e.source.name}, {verb} {e.target} on {e.probe['port']}"
        if got["reached"] == e.want:
            rows.append(passed(group, name, f"{got['detail']}: {e.why}"))
        else:
            rows.append(failed(group, name, f"{got['detail']}, expected {'open' if e.want else 'closed'}: {e.why}"))
    return rows


def verify(lab: Lab) -> list[Result]:
    """`make verify` against the lab, as an operator runs it: every row it prints becomes a row here."""
    out = lab.dir / "verify.json"
    argv = [PY, "-m", "tools.verify", "--stack", lab.plan.stack, *lab.verify_args(only="probes,inside,dns")]
    argv += ["--json", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    if not out.exists():
        return [failed("verify", "make verify ran", (done.stderr or done.stdout).strip()[-500:])]
    rows = []
    for row in json.loads(out.read_text())["checks"]:
        status = {"pass": passed, "fail": failed}.get(row["status"])
        name = f"make verify: {row['check']}"
        rows.append(
            status("verify", name, row["reason"]) if status else failed("verify", name, f"skipped: {row['reason']}")
        )
    return rows


def _run(lab: Lab, probes: list[tuple[str, dict]]) -> list[dict]:
    """Probes grouped by node, every node's batch at once; results in the order given."""
    by_node: dict[str, list[dict]] = {}
    for n, (node, probe) in enumerate(probes):
        by_node.setdefault(node, []).append({**probe, "id": n})
    with ThreadPoolExecutor(max_workers=len(by_node) or 1) as pool:
        batches = list(pool.map(lambda item: lab.probe(*item), by_node.items()))
    found = {r["id"]: r for batch in batches for r in batch}
    return [found[n] for n in range(len(probes))]


def loopback(lab: Lab) -> list[Result]:
    """kumod's 8000 answers on the MTA's loopback, and listens nowhere else."""
    rows = []
    for host in lab.plan.of_role(Role.MTA):
        (got,) = lab.probe(host.label, [{"id": 0, "kind": "tcp", "dst": "127.0.0.1", "port": 8000}])
        name = f"from {host.label}, reach its own loopback on 8000 (kumod)"
        rows.append((passed if got["reached"] else failed)("binding", name, got["detail"]))
        sinks = lab.sinks.get(host.label, set())
        others = sorted(
            f"{a}:{p}"
            for a, p in listening(lab.hosts[host.label].ns)
            if p == 8000 and a != "127.0.0.1" and (a, p) not in sinks
        )
        name = f"{host.label}: kumod listens on 127.0.0.1:8000 only"
        rows.append(
            failed("binding", name, f"also on {others}") if others else passed("binding", name, "127.0.0.1:8000")
        )
    return rows


def resolvers(lab: Lab) -> list[Result]:
    """Each host resolves through each resolver it uses, and through its own resolver configuration."""
    probes, names, unmodelled = [], [], []
    for host in lab.plan.hosts:
        run = lab.hosts[host.label]
        for server in run.resolvers:
            if ":" in server:
                unmodelled.append(
                    skipped("resolver", f"{host.label}: resolves through {server}", "the lab is IPv4 only")
                )
                continue
            probes.append((host.label, {"kind": "dns", "server": server, "name": TEST_MX_NAME}))
            names.append(f"{host.label}: resolves through {server} ({run.resolvers_from})")
        probes.append((host.label, {"kind": "dns", "name": f"{TEST_DOMAIN}", "qtype": "MX", "timeout": 2.0}))
        names.append(f"{host.label}: resolves the MX of {TEST_DOMAIN} with its /etc/resolv.conf")
    return [
        (passed if got["reached"] else failed)("resolver", name, got["detail"])
        for name, got in zip(names, _run(lab, probes), strict=True)
    ] + unmodelled


def https(lab: Lab) -> list[Result]:
    """The bearer gate, from the PING8 app: 401 without the token, 404 for what Nginx must not publish."""
    token = lab.plan.token
    cases = [
        ("POST", INJECT, None, 401, "without a token"),
        ("POST", INJECT, f"Bearer {token.swapcase()}", 401, "with the token's case changed"),
        ("GET", "/metrics", f"Bearer {token}", 200, "with the token"),
        ("GET", "/api/admin/bounce/v1", f"Bearer {token}", 404, "with the token (admin path)"),
        ("GET", "/metrics.json", f"Bearer {token}", 404, "with the token"),
        ("GET", "/rapidoc", f"Bearer {token}", 404, "with the token"),
        ("GET", "/kumolab-no-such-path", None, 404, "an unknown path"),
    ]
    probes, names = [], []
    src = lab.places.ping8[0]
    for host in lab.plan.of_role(Role.MTA):
        ca = str(lab.hosts[host.label].root / "etc/nginx/kumomta-tls/fullchain.pem")
        for method, path, auth, want, words in cases:
            probe = {"kind": "https", "dst": host.public_ip, "host": host.fqdn, "method": method, "path": path,
                     "cafile": ca, "src": src, "authorization": auth, "want": want}  # fmt: skip
            probes.append(("internet", probe))
            names.append(f"from PING8 app, {method} https://{host.fqdn}{path} {words} gives {want}")
        probes.append(("internet", {"kind": "tcp", "dst": host.public_ip, "port": 80, "src": lab.places.untrusted}))
        names.append(f"from internet, reach {host.label} on 80 (ACME and redirect)")
    rows = []
    for name, (_, probe), got in zip(names, probes, _run(lab, probes), strict=True):
        want = probe.get("want")
        ok = got["reached"] and (want is None or got.get("status") == want)
        rows.append((passed if ok else failed)("https", name, got["detail"]))
    return rows


def webhook(lab: Lab) -> list[Result]:
    """Each MTA reaches the PING8 webhook over HTTPS, by name, trusting its own CA store."""
    if not lab.places.ping8:
        return []
    probes = [
        (
            h.label,
            {"kind": "https", "dst": lab.app_fqdn, "host": lab.app_fqdn, "method": "POST", "path": "/kumolab/webhook"},
        )
        for h in lab.plan.of_role(Role.MTA)
    ]
    return [
        (passed if got["reached"] and got.get("status") == 200 else failed)(
            "webhook", f"from {node}, POST {lab.webhook_url} gives 200", got["detail"]
        )
        for (node, _), got in zip(probes, _run(lab, probes), strict=True)
    ]


def delivery(lab: Lab, timeout: float = 20.0) -> list[Result]:
    """One message per proxy through each MTA, injected over HTTPS with the token from the PING8 app:
    each must reach the test MX from that proxy's public address, with its FQDN as EHLO."""
    plan = lab.plan
    proxies, mtas = plan.of_role(Role.PROXY), plan.of_role(Role.MTA)
    probes, wanted = [], {}
    for mta in mtas:
        for n in range(len(proxies)):
            rcpt = f"{mta.label}-{n}-{time.time_ns()}@{TEST_DOMAIN}"
            probes.append(("internet", injection(lab, mta, rcpt)))
            wanted[f"<{rcpt}>"] = mta
    rows = []
    for (_, probe), got in zip(probes, _run(lab, probes), strict=True):
        if not (got["reached"] and got.get("status") == 200):
            rows.append(failed("delivery", f"inject through {probe['host']} with the token", got["detail"]))
    deadline = time.monotonic() + timeout
    seen: list[dict] = []
    while time.monotonic() < deadline:
        seen = [m for m in lab.journal("mx") if m.get("event") == "message" and set(m["rcpt"]) & set(wanted)]
        if len(seen) >= len(wanted) or (lab.sbin is None and _gave_up(lab, mtas, wanted)):
            break
        time.sleep(0.1)
    for mta in mtas:
        arrived = {(m["peer"], m["ehlo"]) for m in seen if wanted.get(m["rcpt"][0]) is mta}
        for proxy in proxies:
            name = f"{mta.label} -> {proxy.label} -> test MX: from {proxy.public_ip} as {proxy.fqdn}"
            if (proxy.public_ip, proxy.fqdn) in arrived:
                rows.append(passed("delivery", name, "delivered"))
            else:
                tail = [e for e in lab.journal(f"{mta.label}-kumod") if e.get("event") == "TransientFailure"][-2:]
                rows.append(failed("delivery", name, f"the MX saw {sorted(arrived)}; kumod: {tail}"))
        rows.append(_signed(lab, mta, [m.get("dkim", []) for m in seen if wanted.get(m["rcpt"][0]) is mta]))
    return rows


def _signed(lab: Lab, mta: Host, verdicts: list[list[str]]) -> Result:
    """Issue 14: with the real kumod, every message arrives signed by the From domain, and each signature
    verifies against the key record the lab's DNS serves as the world's (the test MX checks with dkimpy)."""
    name = f"{mta.label}: each message's DKIM signatures verify at the test MX against the published records"
    if lab.sbin is None:
        return skipped("delivery", name, "the kumod stand-in does not sign; KUMOMTA_SBIN runs the real kumod")
    domain = lab.plan.settings.domain
    bad = [v for v in verdicts if not any(f"d={domain} " in x and x.endswith(": pass") for x in v) or
           any(x.endswith(": fail") for x in v)]  # fmt: skip
    if not verdicts or bad:
        return failed("delivery", name, f"{len(bad)} of {len(verdicts)} messages: {bad[:1] or 'none arrived'}")
    return passed("delivery", name, ", ".join(sorted({x for v in verdicts for x in v})))


def injection(lab: Lab, mta: Host, rcpt: str) -> dict:
    """The probe that injects one message to `rcpt` over HTTPS with the token, from the PING8 app."""
    ca = str(lab.hosts[mta.label].root / "etc/nginx/kumomta-tls/fullchain.pem")
    body = {"envelope_sender": f"lab@{lab.plan.settings.domain}", "recipients": [{"email": rcpt}],
            "content": f"From: lab@{lab.plan.settings.domain}\nSubject: kumolab\n\nsent through {mta.label}\n"}  # fmt: skip
    return {"kind": "https", "dst": mta.public_ip, "host": mta.fqdn, "method": "POST", "path": INJECT, "cafile": ca,
            "src": lab.places.ping8[0], "authorization": f"Bearer {lab.plan.token}", "body": json.dumps(body)}  # fmt: skip


def _gave_up(lab: Lab, mtas: list[Host], wanted: dict) -> bool:
    """The kumod stand-in tries once: every message has an outcome, delivered or failed."""
    done = {
        f"<{e['recipient']}>"
        for mta in mtas
        for e in lab.journal(f"{mta.label}-kumod")
        if e.get("event") in ("Delivery", "TransientFailure")
    }
    return set(wanted) <= done


ALL: tuple[tuple[str, Callable[[Lab], list[Result]]], ...] = (
    ("matrix", run_matrix),
    ("matrix-cloud", lambda lab: run_matrix(lab, "cloud")),
    ("matrix-host", lambda lab: run_matrix(lab, "host")),
    ("binding", loopback),
    ("resolver", resolvers),
    ("https", https),
    ("webhook", webhook),
    ("delivery", delivery),
    ("verify", verify),
)


def run_all(lab: Lab, only: set[str] | None = None) -> list[Result]:
    rows = []
    for group, check in ALL:
        if only is None or group in only:
            rows += check(lab)
    return rows
