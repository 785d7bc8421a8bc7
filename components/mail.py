"""Sending authentication: DKIM keys, and the DKIM, SPF and DMARC records that get the first real send accepted.

Mailbox providers require all three from bulk senders (Gmail and Yahoo, since February 2024). The stack
knows every sending address and every host name, so it publishes them itself, in the zone of the hosts:
- per signing domain and selector, a key (RSA 2048, and Ed25519 beside it with `dkim.ed25519`) kept only as a
  secret, and its public half as `<selector>._domainkey.<domain>` (RFC 6376 section 3.6.2);
- SPF on each signing domain listing exactly the proxies' sending addresses, and on each proxy's name (its HELO
  name), each ending in `-all` (RFC 7208);
- `_dmarc.<domain>` with the configured policy (RFC 7489).
"""

import base64
import datetime
from dataclasses import dataclass, replace

import pulumi
import pulumi_tls as tls
from cryptography.hazmat.primitives import serialization

from components.bootstrap.peers import DkimKey
from components.dns import DnsZone
from components.hosts import ProxyHost, Site
from components.settings import Settings


@dataclass
class MailArgs:
    settings: Settings
    site: Site
    """Where the keys become secret files of the MTAs."""
    zone: DnsZone
    """Where the records go."""
    proxies: dict[str, ProxyHost]
    """The sending hosts by label: their public addresses are the domain's SPF."""


class SendingAuth(pulumi.ComponentResource):
    """DKIM keys for the MTAs' bundles, and the records receivers check them and the sending addresses against."""

    def __init__(self, name: str, args: MailArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kumomta:index:SendingAuth", name, None, opts)
        settings = args.settings
        self.public_keys: dict[str, pulumi.Output[str]] = {}
        algorithms = _ALGORITHMS if settings.dkim.ed25519 else _ALGORITHMS[:1]
        self.keys = pulumi.Output.all(
            *(
                self._key(args, DkimKey(domain, f"{selector.name}{suffix}", algorithm, _unix(selector.sign_from), ""))
                for domain in settings.signing_domains
                for selector in settings.dkim.selectors
                for algorithm, suffix in algorithms
            )
        )
        senders = {label: _addresses(proxy) for label, proxy in args.proxies.items()}
        everyone = pulumi.Output.all(*senders.values()).apply(lambda lists: [a for items in lists for a in items])
        if settings.spf.publish:
            for domain in settings.signing_domains:
                args.zone.txt(self, f"spf-{domain}", domain, everyone.apply(lambda a: spf(a, settings.spf.include)))
            for label, addresses in senders.items():
                # The HELO identity is checked on its own (RFC 7208 section 2.3): the proxy's name names itself.
                args.zone.txt(self, f"spf-{label}", settings.fqdn(label), addresses.apply(spf))
        if settings.dmarc.publish:
            for domain in settings.signing_domains:
                args.zone.txt(self, f"dmarc-{domain}", f"_dmarc.{domain}", dmarc(settings))
        self.register_outputs({"dkim": self.public_keys})

    def _key(self, args: MailArgs, dkim: DkimKey) -> pulumi.Output[DkimKey]:
        """One key pair: the private half a secret file of the MTAs, the public half its DKIM record."""
        name = f"dkim-{dkim.selector}-{dkim.domain}"
        key = tls.PrivateKey(
            name,
            algorithm="RSA" if dkim.algorithm == "rsa" else "ED25519",
            rsa_bits=2048 if dkim.algorithm == "rsa" else None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        secret = args.site.secret(
            f"dkim/{dkim.domain}/{dkim.selector}",
            key.private_key_pem,
            f"DKIM key {dkim.selector} of {dkim.domain} (the MTAs sign with it)",
        )
        record = key.public_key_pem.apply(lambda pem: dkim_record(dkim.algorithm, pem))
        fqdn = f"{dkim.selector}._domainkey.{dkim.domain}"
        self.public_keys[fqdn] = record
        if args.settings.dkim.publish:
            args.zone.txt(self, name, fqdn, record)
        return secret.apply(lambda s: replace(dkim, pem=s.content, parameter=s.parameter))


_ALGORITHMS = (("rsa", ""), ("ed25519", "-ed25519"))


def dkim_record(algorithm: str, public_pem: str) -> str:
    """The DKIM key record: `p=` is the base64 of the DER SubjectPublicKeyInfo for RSA (RFC 6376 section 3.6.1),
    and of the bare 32-byte public key for Ed25519 (RFC 8463 section 4.2)."""
    key = serialization.load_pem_public_key(public_pem.encode())
    if algorithm == "rsa":
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"


def spf(addresses: list[str], include: list[str] = ()) -> str:
    """Exactly these senders, and nobody else: `-all` fails the rest (RFC 7208 section 5.1)."""
    terms = [f"ip6:{a}" if ":" in a else f"ip4:{a}" for a in sorted(set(addresses))]
    return " ".join(["v=spf1", *terms, *include, "-all"])


def dmarc(settings: Settings) -> str:
    """RFC 7489 section 6.3: `v` first, then the policy; `rua` only when reports have somewhere to go."""
    parts = ["v=DMARC1", f"p={settings.dmarc.policy}"]
    if settings.dmarc.rua:
        parts.append(f"rua={settings.dmarc.rua}")
    return "; ".join(parts)


def _addresses(proxy: ProxyHost) -> pulumi.Output[list[str]]:
    """The addresses mail leaves a proxy from, as receivers see them: its public IPv4 (the Elastic IP on AWS), and
    its IPv6 address with `ipv6`."""
    return pulumi.Output.all(proxy.public_ip, proxy.public_ipv6).apply(lambda a: [x for x in a if x])


def _unix(moment: datetime.datetime | None) -> int:
    if moment is None:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp())
