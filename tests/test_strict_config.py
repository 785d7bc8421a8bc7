"""One strict pass over the stack config: every class of bad value the hostile-user review found is one line
`kumomta:<key>: <reason>`, never a traceback and never a plan (issue 10, "Stack config: one strict pass")."""

import pytest

from components.settings import ConfigError
from tools.mockrun import settings_of, stack_config

AWS = stack_config("prod")
HCLOUD = stack_config("prod-hcloud")
SIX_CIDR_KEYS = ("ping8Cidrs", "trustedCidrs", "resolverCidrs", "ntpCidrs", "monitoringCidrs", "adminCidrs")


def refused(base: dict, **overrides) -> str:
    """The one error text a config gives, keys written as in the stack file (`aws.x` merges into kumomta:aws)."""
    values = dict(base)
    for key, value in overrides.items():
        section, _, field = key.partition(".")
        if field:
            values[f"kumomta:{section}"] = {**values.get(f"kumomta:{section}", {}), field: value}
        else:
            values[f"kumomta:{key}"] = value
    with pytest.raises(ConfigError) as caught:
        settings_of(values)
    return str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        # Types: no bool where a number goes, no Python-only spellings of a number.
        ({"proxyMetricsPort": True}, "kumomta:proxyMetricsPort: must be a whole number such as 9101, not True"),
        ({"proxyMetricsPort": "9_101"}, "kumomta:proxyMetricsPort: must be a whole number such as 9101, not '9_101'"),
        ({"proxyMetricsPort": "+9200"}, "kumomta:proxyMetricsPort: must be a whole number such as 9101, not '+9200'"),
        ({"proxyMetricsPort": 9101.5}, "kumomta:proxyMetricsPort: must be a whole number such as 9101, not 9101.5"),
        ({"aws.spoolVolumeGb": True}, "kumomta:aws.spoolVolumeGb: must be a whole number such as 9101, not True"),
        ({"packageEgress": "yes"}, "kumomta:packageEgress: must be true or false, not 'yes'"),
        ({"ipv6": 1}, "kumomta:ipv6: must be true or false, not 1"),
        # Keys only as documented.
        ({"proxy_metrics_port": 9200}, "kumomta:proxy_metrics_port: is not a known setting; did you mean proxyMetricsPort?"),
        ({"aws.spool_volume_gb": 9}, "kumomta:aws.spool_volume_gb: is not a known setting; did you mean spoolVolumeGb?"),
        # Names: a hostname grammar matched in full.
        ({"mtaHosts": ["mta\n"]}, "kumomta:mtaHosts[0]: 'mta\\n' is not a DNS label"),
        ({"proxyHosts": ["proxy\n"]}, "kumomta:proxyHosts[0]: 'proxy\\n' is not a DNS label"),
        ({"mtaHosts": ["-mta"]}, "kumomta:mtaHosts[0]: '-mta' is not a DNS label"),
        ({"domain": "192.0.2.1"}, "kumomta:domain: '192.0.2.1' is an IP address, not a domain name"),
        ({"domain": "mail.example.123"}, "kumomta:domain: 'mail.example.123' is not a domain name"),
        ({"mtaHosts": ["m" * 50]}, f"kumomta:mtaHosts: {'m' * 50}.yourdomain.com is 65 characters; an MTA's name is"),
        ({"dns": {"provider": "route53", "zoneId": "z123"}}, "kumomta:dns.zoneId: 'z123' is not a Route53 hosted zone"),
        ({"dns": {"provider": "route53", "zoneId": 12}}, "kumomta:dns.zoneId: '12' is not a Route53 hosted zone"),
        # Addresses.
        ({"trustedCidrs": ["203.0.113.10/32"]}, "kumomta:trustedCidrs: 203.0.113.10/32 is already allowed in on 443"),
        ({"adminCidrs": ["198.51.100.7/32", "198.51.100.7"]}, "kumomta:adminCidrs: 198.51.100.7/32 is listed twice"),
        # Cloud limits.
        ({"aws.vpcCidr": "10.0.0.0/12"}, "kumomta:aws.vpcCidr: 10.0.0.0/12 is not an IPv4 block between /16 and /28"),
        ({"aws.mtaSubnetCidr": "10.42.1.0/29"}, "kumomta:aws.mtaSubnetCidr: 10.42.1.0/29 is not an IPv4 block"),
        ({"aws.availabilityZone": "eu-west-1a"}, "kumomta:aws.availabilityZone: 'eu-west-1a' is not an availability zone of aws:region eu-central-1"),
        ({"aws.mtaInstanceType": ""}, "kumomta:aws.mtaInstanceType: '' is not an EC2 instance type"),
        ({"aws.amiId": "ubuntu"}, "kumomta:aws.amiId: 'ubuntu' is not an AMI ID"),
        ({"mtaHosts": [f"m{i}" for i in range(252)]}, "kumomta:aws: mtaSubnetCidr 10.42.1.0/24 holds 251 hosts, not 252"),
        # The list hint for `pulumi config set` without --path.
        ({"adminCidrs": "198.51.100.7/32"}, "kumomta:adminCidrs: must be a list; set one entry with `pulumi config set --path 'kumomta:adminCidrs[0]' 198.51.100.7/32`"),
        # A key of the other DNS provider, left over from a switch.
        ({"dns": {"provider": "hcloud", "zone": "yourdomain.com", "zoneId": "Z1"}}, "kumomta:dns.zoneId: is a setting of dns provider route53, not hcloud"),
    ],
    ids=lambda value: str(value)[:40],
)  # fmt: skip
def test_aws_config_refused_in_one_line(overrides, line):
    text = refused({**AWS, "aws:region": "eu-central-1"} | {}, **overrides)
    assert text.startswith(line), text
    assert "Traceback" not in text


@pytest.mark.parametrize("key", SIX_CIDR_KEYS)
def test_no_cidr_key_takes_an_ipv6_zone_index(key):
    """`fe80::1%eth0/128` names an interface; `nft -c` refuses it in a rule (nft(8): address expressions)."""
    text = refused(AWS, **{key: ["fe80::1%eth0/128"]})
    assert f"kumomta:{key}[0]: 'fe80::1%eth0/128' has an IPv6 zone index" in text


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        ({"hcloud.networkCidr": "10.43.0.0/25"}, "kumomta:hcloud: networkCidr 10.43.0.0/25 is smaller than the /24"),
        ({"hcloud.mtaSubnetCidr": "10.43.1.0/31"}, "kumomta:hcloud: mtaSubnetCidr 10.43.1.0/31 is smaller than the /30"),
        ({"hcloud.location": "ash"}, "kumomta:hcloud.mtaServerType: 'cx33' is not offered in ash (us-east)"),
        ({"hcloud.image": "ubuntu-24.04"}, "kumomta:hcloud.image: 'ubuntu-24.04': KumoMTA publishes packages for ubuntu-22.04 only"),
        ({"hcloud.backups": True}, "kumomta:hcloud.backups: true is refused: Hetzner's backups copy the root disk"),
        ({"proxyHosts": [f"p{i}" for i in range(246)]}, "kumomta:hcloud: proxySubnetCidr 10.43.2.0/24 holds 245 hosts, not 246"),
        ({"deployCidrs": []}, "kumomta:deployCidrs: is required on Hetzner"),
        ({"adminCidrs": ["198.51.100.30/32"]}, "kumomta:deployCidrs: 198.51.100.30/32 is already allowed in on 22/tcp"),
        ({"ntpCidrs": []}, "kumomta:ntpCidrs: [] would leave Hetzner hosts without a time source"),
        # Hetzner Docs, Cloud Servers, "Static IP configuration": every public interface's gateway is 172.31.1.1.
        ({"hcloud.networkCidr": "172.31.0.0/16", "hcloud.mtaSubnetCidr": "172.31.1.0/24", "hcloud.proxySubnetCidr": "172.31.2.0/24"},
         "kumomta:hcloud: networkCidr 172.31.0.0/16 holds 172.31.1.1, the gateway of every Hetzner server's public"),
    ],
    ids=lambda value: str(value)[:40],
)  # fmt: skip
def test_hetzner_config_refused_in_one_line(overrides, line):
    text = refused(HCLOUD, **overrides)
    assert text.startswith(line), text


@pytest.mark.parametrize(("stack", "other"), [(AWS, "hcloud"), (HCLOUD, "aws")])
def test_the_other_clouds_placement_never_limits_the_fleet(stack, other):
    """Only the chosen cloud's subnets have to hold the fleet: 300 proxies in a /23 of the stack's own cloud."""
    own = "hcloud" if other == "aws" else "aws"
    wide = {"aws": {"vpcCidr": "10.42.0.0/16", "mtaSubnetCidr": "10.42.1.0/24", "proxySubnetCidr": "10.42.4.0/23"},
            "hcloud": {"mtaSubnetCidr": "10.43.1.0/24", "proxySubnetCidr": "10.43.4.0/23"}}  # fmt: skip
    values = {**stack, f"kumomta:{own}": {**stack.get(f"kumomta:{own}", {}), **wide[own]}}
    values["kumomta:proxyHosts"] = [f"p{i}" for i in range(300)]
    values["kumomta:spf"] = {"publish": False}  # 300 addresses are more than one SPF record holds
    assert len(settings_of(values).proxy_hosts) == 300


def test_ssh_sources_add_up_across_admin_and_deploy_networks():
    """Both open 22: the pack judges the union of a firewall's sources on a port (policies/kumoguard/cidr.py)."""
    halves = {"adminCidrs": ["11.0.0.0/17"], "deployCidrs": ["11.0.128.0/17"]}
    text = refused(HCLOUD, **halves)
    assert text.startswith("kumomta:deployCidrs: these 2 networks together cover as much public address space")


def test_what_the_engine_hands_over_as_strings_is_read_as_the_stack_file_means_it():
    """`pulumi config set kumomta:proxyMetricsPort 9200` stores the string "9200"; that is the port 9200."""
    values = {**AWS, "kumomta:proxyMetricsPort": "9200", "kumomta:aws": {**AWS["kumomta:aws"], "spoolVolumeGb": "500"}}
    settings = settings_of(values)
    assert (settings.proxy_metrics_port, settings.aws.spool_volume_gb) == (9200, 500)


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        # RFC 1035 2.3.4: a label holds 63 characters; `<selector>-ed25519` is one label of the Ed25519 record.
        ({"dkim": {"selectors": [{"name": "s" * 56}], "ed25519": True}},
         f"kumomta:dkim: the record name {'s' * 56}-ed25519._domainkey.yourdomain.com has the label"),
        # ... and a name 253 characters in all, `_dmarc.` or `<selector>._domainkey.` in front of the domain.
        ({"dkim": {"domains": ["m" * 63 + "." + "n" * 63 + "." + "o" * 63 + "." + "p" * 40 + ".yourdomain.com"]}},
         "kumomta:dkim: the record name kumomta._domainkey.mmm"),
        # RFC 7489 6.4: rua is a mailto: URI; a quote would end the TXT record's string.
        ({"dmarc": {"rua": 'mailto:dmarc"r@yourdomain.com'}}, "kumomta:dmarc.rua: 'mailto:dmarc\"r@yourdomain.com' is not a mailto: address"),
        # Route 53 API, ResourceRecord: Value holds 4,000 characters; 200 proxies' ip4 terms pass it.
        ({"proxyHosts": [f"p{i}" for i in range(200)], "aws.proxySubnetCidr": "10.42.4.0/23"},
         "kumomta:proxyHosts: the SPF record of 200 proxies could be 4011 characters, over the 4000"),
        # KMS CreateKey, Policy: 32 KB; every deployer is named in it.
        ({"aws.deployerArns": [f"arn:aws:iam::123456789012:role/d{i}" for i in range(21)]},
         "kumomta:aws.deployerArns: 21 principals; the secrets key's policy names each and holds 32 KB, so at most 20"),
    ],
    ids=lambda value: str(value)[:40],
)  # fmt: skip
def test_names_and_records_the_stack_makes_from_settings_fit_dns_and_aws(overrides, line):
    text = refused(AWS, **overrides)
    assert text.startswith(line), text


def test_a_hetzner_stack_name_must_be_a_label_value():
    """Hetzner Cloud API, Labels: values start and end with a letter or digit, 63 characters at most; every
    resource carries the stack name as `kumomta-stack`."""
    from components.settings import parse
    from tools.mockrun import decode, engine_config

    values = decode(engine_config(HCLOUD))
    assert parse(values, stack="prod.eu").cloud == "hcloud"
    for stack in ("prod.", "_prod", "p" * 64):
        with pytest.raises(ConfigError) as caught:
            parse(values, stack=stack)
        assert str(caught.value) == (
            f"kumomta:cloud: the stack name {stack!r} can't label Hetzner resources (63 characters at most, "
            "starting and ending with a letter or digit); use another stack name"
        )
