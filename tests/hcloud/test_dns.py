"""Forward records for Hetzner hosts, in a Hetzner DNS zone or in Route53."""

from tests.hcloud.common import PRIMARY_IP, RRSET, STACK, host_of
from tests.stacks import run

ZONE = "hcloud:index/zone:Zone"


def _addresses(result) -> dict[str, str]:
    return {host_of(ip): ip.state["ipAddress"] for ip in result.of_type(PRIMARY_IP)}


def test_an_existing_hetzner_zone_is_adopted_and_gets_one_a_rrset_per_host():
    result = run(STACK)
    assert not result.of_type(ZONE)  # looked up, never created or owned
    records = {
        (r.inputs["zone"], r.inputs["name"], r.inputs["type"], r.inputs["records"][0]["value"])
        for r in result.of_type(RRSET)
        if r.inputs["type"] != "TXT"  # sending authentication: tests/test_sending_auth.py
    }
    addresses = _addresses(result)
    assert records == {("yourdomain.com", label, "A", addresses[label]) for label in ("mta", "proxy")}


def test_a_zone_made_here_is_protected_and_holds_the_records():
    result = run(STACK, dns={"provider": "hcloud", "zone": "yourdomain.com", "create": True})
    (zone,) = result.of_type(ZONE)
    assert zone.protect and zone.inputs["deleteProtection"] is True
    assert zone.inputs["name"] == "yourdomain.com"
    assert {r.inputs["zone"] for r in result.of_type(RRSET)} == {"yourdomain.com"}
    assert all(zone.urn in r.depends_on for r in result.of_type(RRSET))


def test_hosts_in_a_subdomain_get_names_relative_to_the_zone():
    result = run(STACK, domain="mail.yourdomain.com")
    names = {r.inputs["name"] for r in result.of_type(RRSET)}
    assert names == {"mta.mail", "proxy.mail", "mail", "s202611._domainkey.mail", "_dmarc.mail"}


def test_ipv6_adds_an_aaaa_rrset_at_the_servers_first_address():
    result = run(STACK, ipv6=True)
    aaaa = {host_of(r): r.inputs["records"][0]["value"] for r in result.of_type(RRSET) if r.inputs["type"] == "AAAA"}
    assert set(aaaa) == {"mta", "proxy"}
    for ip in result.of_type(PRIMARY_IP):
        if ip.inputs["type"] == "ipv6":
            assert aaaa[host_of(ip)] == ip.state["ipNetwork"].replace("::/64", "::1")


def test_route53_works_with_hetzner_hosts():
    result = run(STACK, dns={"provider": "route53", "zoneId": "Z0123456789ABCDEFGHIJ"})
    assert not result.of_type(RRSET) and not result.of_type(ZONE)
    records = {
        (r.inputs["zoneId"], r.inputs["name"], r.inputs["type"], tuple(r.inputs["records"]))
        for r in result.of_type("aws:route53/record:Record")
        if r.inputs["type"] != "TXT"
    }
    addresses = _addresses(result)
    expected = {("Z0123456789ABCDEFGHIJ", f"{h}.yourdomain.com", "A", (addresses[h],)) for h in ("mta", "proxy")}
    assert records == expected
    # Route53 is the only AWS service in play: the hosts stay on Hetzner. (random: the generated injection
    # token; tls: the deploy and host keys of the SSH push; command: the push.)
    providers = {r.type.split(":")[0] for r in result.registrations if r.custom}
    assert providers == {"aws", "hcloud", "random", "tls", "command"}
    assert not [r for r in result.registrations if r.type.startswith("aws:") and "route53" not in r.type]
