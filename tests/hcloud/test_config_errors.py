"""Hetzner-specific bad values stop the run with one line naming the key and the reason."""

import pulumi
import pytest

from tests.hcloud.common import STACK
from tests.stacks import run

MANY = [f"198.51.100.{i}/32" for i in range(101)]

BAD = [
    ({"hcloud": {"location": "fra1"}}, "kumomta:hcloud.location: 'fra1' is not a Hetzner Cloud location; use one of"),
    (
        {"hcloud": {"networkCidr": "100.64.0.0/16"}},
        "kumomta:hcloud.networkCidr: 100.64.0.0/16 is not an RFC 1918 private range",
    ),
    (
        {"hcloud": {"mtaSubnetCidr": "203.0.113.0/24"}},
        "kumomta:hcloud.mtaSubnetCidr: 203.0.113.0/24 is not an RFC 1918 private range",
    ),
    (
        {"hcloud": {"proxySubnetCidr": "10.44.2.0/24"}},
        "kumomta:hcloud: proxySubnetCidr 10.44.2.0/24 is not inside networkCidr 10.43.0.0/16",
    ),
    (
        {"hcloud": {"proxySubnetCidr": "10.43.1.128/25"}},
        "kumomta:hcloud: mtaSubnetCidr and proxySubnetCidr overlap",
    ),
    (
        {"trustedCidrs": MANY},
        "kumomta:trustedCidrs: 101 networks, but a Hetzner firewall rule holds at most 100; merge them",
    ),
    ({"adminCidrs": MANY}, "kumomta:adminCidrs: 101 networks, but a Hetzner firewall rule holds at most 100"),
    ({"hcloud": {"spoolVolumeGb": 5}}, "kumomta:hcloud.spoolVolumeGb: Input should be greater than or equal to 10"),
    (
        {"dns": {"provider": "hcloud", "zone": "example.org"}},
        "kumomta:dns: zone example.org does not hold domain yourdomain.com",
    ),
    ({"dns": {"provider": "hcloud"}}, "kumomta:dns.zone: is required"),
    ({"hcloud": {"serverType": "cx23"}}, "kumomta:hcloud.serverType: is not a known setting"),
]


@pytest.mark.parametrize(("override", "message"), BAD, ids=[m.split(":")[1] + m[-12:] for _, m in BAD])
def test_the_program_reports_one_line_without_traceback(override, message):
    with pytest.raises(pulumi.RunError) as caught:
        run(STACK, **override)
    text = str(caught.value)
    assert text.startswith(message)
    assert "\n" not in text and "Traceback" not in text


def test_on_aws_the_cap_is_60_rules_per_group_and_direction():
    """The 100-address cap is Hetzner's; AWS makes one rule per network and allows 60 inbound and 60 outbound
    rules per security group (AWS VPC User Guide, "Amazon VPC quotas", Security groups)."""
    with pytest.raises(pulumi.RunError) as caught:
        run("prod", ping8Cidrs=MANY)
    # One line for the key, its reasons joined.
    assert str(caught.value).splitlines() == [
        "kumomta:ping8Cidrs: "
        + "; ".join(
            f"the mta security group would hold {count} {direction} IPv4 rules; AWS allows 60 per "
            "direction (VPC quotas); merge networks into wider ranges"
            for count, direction in ((102, "inbound"), (106, "outbound"))
        )
    ]
    # Out: 55 to PING8, then 5000 to the proxies' group, 53 udp and tcp, 80 and 443 for packages: 60.
    most = run("prod", ping8Cidrs=[f"198.51.100.{i}/32" for i in range(55)])
    assert len([r for r in most.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
                if r.inputs["securityGroupId"] == most.by_name("mta-sg").id]) == 60  # fmt: skip
