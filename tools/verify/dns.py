"""The records receivers check mail against, resolved as receivers resolve them and held against the stack.

A mailbox provider looks up the sender's SPF (RFC 7208), the DKIM key of each signature (RFC 6376), the domain's
DMARC policy (RFC 7489), and the sending address's PTR and whether that name leads back to the address. The
stack publishes all of them (or you do, with `publish: false`); these checks read what the DNS really answers.
"""

import ipaddress

import dns.exception
import dns.resolver
import dns.reversename

from components.mail import dmarc
from components.matrix import Role
from tools.verify.checks import Result, Task, failed, passed, skipped
from tools.verify.stack import Host, Stack

GROUP = "dns"


class LookupFailed(Exception):
    """The resolver gave no usable answer (timeout, SERVFAIL): unknown, not absent."""


class Lookup:
    """Answers from one resolver (`host` or `host:port`), or from the system's when none is named."""

    def __init__(self, server: str | None, timeout: float):
        self.resolver = dns.resolver.Resolver(configure=server is None)
        if server:
            host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
            self.resolver.nameservers = [host]
            self.resolver.port = int(port) if port else 53
        self.resolver.lifetime = timeout
        self.where = server or "the system's resolver"

    def __call__(self, name: str, rdtype: str) -> list[str]:
        """The answers as text (TXT strings joined, names without the final dot); [] when there are none."""
        try:
            answer = self.resolver.resolve(name, rdtype, raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN:
            return []
        except (dns.exception.DNSException, OSError) as err:
            raise LookupFailed(f"{name} {rdtype} from {self.where}: {err}") from None
        if answer.rrset is None:
            return []
        if rdtype == "TXT":
            return [b"".join(r.strings).decode(errors="replace") for r in answer.rrset]
        if rdtype == "PTR":
            return [str(r.target).rstrip(".").lower() for r in answer.rrset]
        return [r.address for r in answer.rrset]


def tasks(stack: Stack, server: str | None, timeout: float) -> list[Task]:
    lookup, settings = Lookup(server, timeout), stack.settings
    proxies = stack.of_role(Role.PROXY)
    sending = sorted({a for p in proxies for a in p.sending_ips})
    rows = [(f"DKIM {name}", _dkim, name, value) for name, value in stack.dkim.items()]
    wanted = dmarc(settings) if settings.dmarc.publish else None
    for domain in settings.signing_domains:
        rows += [(f"SPF {domain}", _spf, domain, sending, settings.spf.include)]
        rows += [(f"DMARC _dmarc.{domain}", _dmarc, domain, wanted)]
    for proxy in proxies:
        rows += [(f"SPF {proxy.fqdn}", _spf, proxy.fqdn, proxy.sending_ips, [])]
        rows += [(f"PTR {address}", _ptr, proxy, address) for address in proxy.sending_ips]
    out = [Task(GROUP, check, _one(lookup, check, fn, args)) for check, fn, *args in rows]
    if not stack.dkim:
        out.append(Task(GROUP, "DKIM", lambda: [skipped(GROUP, "DKIM", _NO_DKIM_OUTPUT)]))
    return out


_NO_DKIM_OUTPUT = "the stack outputs have no `dkim` (a stack last updated before DKIM); run `pulumi up` first"


def _one(lookup: Lookup, check: str, fn, args: list):
    """A task of one row; a resolver that can't answer is a failed row that says so."""

    def run() -> list[Result]:
        try:
            return [fn(lookup, check, *args)]
        except LookupFailed as err:
            return [failed(GROUP, check, f"no answer: {err}")]

    return run


def _tags(record: str) -> dict[str, str]:
    """`k=v; k=v` tag lists (RFC 6376 section 3.2); spaces inside values (folded base64) are dropped."""
    pairs = (part.split("=", 1) for part in record.split(";") if "=" in part)
    return {k.strip().lower(): "".join(v.split()) for k, v in pairs}


def _dkim(lookup: Lookup, check: str, name: str, value: str) -> Result:
    records = [r for r in lookup(name, "TXT") if "p" in _tags(r)]
    if not records:
        return failed(GROUP, check, "no DKIM key record: receivers can't verify what this selector signs")
    want = _tags(value)
    got = [_tags(r) for r in records]
    if len(records) > 1:
        return failed(GROUP, check, f"{len(records)} key records at one name; receivers may take either")
    if got[0].get("p") != want["p"] or got[0].get("k", "rsa") != want.get("k", "rsa"):
        return failed(GROUP, check, "the published key is not the stack's: signatures would fail (dkim=fail)")
    return passed(GROUP, check, f"the stack's {want.get('k', 'rsa')} key")


def _spf(lookup: Lookup, check: str, name: str, addresses: list[str], include: list[str]) -> Result:
    """Exactly the sending addresses (a wider network admits senders that aren't ours), the configured
    `include:`s and `-all`; one record only (RFC 7208 section 4.5: two are a permanent error)."""
    records = [r for r in lookup(name, "TXT") if r.lower() == "v=spf1" or r.lower().startswith("v=spf1 ")]
    if len(records) != 1:
        reason = "no SPF record" if not records else f"{len(records)} SPF records, a permanent error (RFC 7208 4.5)"
        return failed(GROUP, check, reason)
    terms = records[0].split()[1:]
    listed = {_network(t.split(":", 1)[1]) for t in terms if t.lower().startswith(("ip4:", "ip6:"))}
    others = {t.lower() for t in terms if not t.lower().startswith(("ip4:", "ip6:"))}
    wanted = {ipaddress.ip_network(a) for a in addresses}
    details = (
        *(f"missing {n.network_address}: mail from it fails SPF" for n in sorted(wanted - listed, key=str)),
        *(f"extra {n}: it may send as this name" for n in sorted(listed - wanted, key=str)),
        *(f"extra term {t}" for t in sorted(others - {i.lower() for i in include} - {"-all"})),
        *(f"missing term {t}" for t in sorted({i.lower() for i in include} - others)),
        *(("no -all: receivers accept mail from anywhere else",) if "-all" not in others else ()),
    )
    if details:
        return failed(GROUP, check, "differs from the sending addresses", details)
    count = f"{len(wanted)} sending address{'' if len(wanted) == 1 else 'es'}"
    return passed(GROUP, check, f"exactly its {count}, then -all")


def _network(text: str):
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return text  # not an address: reported as extra


def _dmarc(lookup: Lookup, check: str, domain: str, wanted: str | None) -> Result:
    records = [r for r in lookup(f"_dmarc.{domain}", "TXT") if _tags(r).get("v") == "DMARC1"]
    if len(records) != 1:
        return failed(GROUP, check, "no DMARC record" if not records else f"{len(records)} DMARC records")
    if wanted is not None and _tags(records[0]) != _tags(wanted):
        return failed(GROUP, check, f"is {records[0]!r}, the stack publishes {wanted!r}")
    return passed(GROUP, check, f"p={_tags(records[0]).get('p', '(none)')}")


def _ptr(lookup: Lookup, check: str, proxy: Host, address: str) -> Result:
    """Forward-confirmed reverse DNS: the address's PTR is the proxy's name, and that name has the address."""
    names = lookup(dns.reversename.from_address(address).to_text(), "PTR")
    if proxy.fqdn.lower() not in names:
        return failed(GROUP, check, f"PTR is {', '.join(names) or 'missing'}, not {proxy.fqdn}")
    forward = lookup(proxy.fqdn, "AAAA" if ":" in address else "A")
    if ipaddress.ip_address(address) not in {ipaddress.ip_address(a) for a in forward}:
        return failed(GROUP, check, f"{proxy.fqdn} resolves to {', '.join(forward) or 'nothing'}, not {address}")
    return passed(GROUP, check, f"{proxy.fqdn}, and back")
