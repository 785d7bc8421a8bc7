"""What the planned stack says, read once from the program's registrations under Pulumi's mocks.

Everything the lab builds comes from here: each host's addresses, its cloud firewall rules as the
program registered them (security-group rules or Hetzner firewall rules, one peer each), its first
boot (the cloud-init user data), and its bundle as its day-2 channel carries it: on AWS the SSM
parameters `up` writes (the host's bundle, the secrets it names), on Hetzner the SSH push
(`command:remote:Command`: where it connects, with which key, pinning which host key, and the
bundle on stdin). Nothing is re-derived from `components/`.
"""

import base64
import gzip
import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from components.matrix import Role
from components.settings import Settings
from tools.mockrun import Registration, Run, run_program, settings_of, stack_config

# How the engine hands a secret to the program: the value wrapped under this signature key.
_SECRET_SIG = "4dabf18193072939515e22adb298388d"


class PlanError(Exception):
    """The plan lacks something the lab needs; one line for the operator."""


@dataclass(frozen=True)
class File:
    content: str
    permissions: str = "0644"


@dataclass(frozen=True)
class Push:
    """Hetzner's day-2 channel for one host, as registered: `up` runs `command` over SSH with `stdin`."""

    host: str
    user: str
    private_key: str = field(repr=False)
    host_key: str
    """The host's public key the push pins."""
    command: str
    stdin: str = field(repr=False)


@dataclass(frozen=True)
class Host:
    label: str
    role: Role
    fqdn: str
    public_ip: str
    private_ip: str
    subnet: ipaddress.IPv4Network
    guards: tuple[str, ...]
    """IDs of the security groups (AWS) or firewalls (Hetzner) that guard it."""
    boot: dict = field(repr=False)
    """The cloud-config of its first boot."""
    bundle: dict = field(repr=False)
    """Its bundle as the channel carries it (on AWS secrets are named, not carried)."""
    files: dict[str, File] = field(repr=False)
    """Its files once the bundle is applied: the first boot's, then the bundle's (secrets resolved)."""
    config_version: str
    poll: tuple[str, str] | None = None
    """AWS: (region, parameter) its kumomta-sync.service polls; `up` writes its bundle to `<label>-bundle`."""
    push: Push | None = field(default=None, repr=False)
    """Hetzner: the SSH push `up` hands it its bundle with."""

    @property
    def runcmd(self) -> tuple[str, ...]:
        return tuple(c if isinstance(c, str) else " ".join(c) for c in self.boot.get("runcmd", []))


@dataclass(frozen=True)
class CloudRule:
    """One registered cloud firewall rule with exactly one peer: a CIDR, or a referenced group."""

    guard: str
    direction: str  # "in" | "out"
    protocol: str  # "tcp" | "udp" | "icmp" | "all"
    ports: tuple[int, int] | None
    peer: str | None
    peer_group: str | None
    name: str


@dataclass(frozen=True)
class Parameter:
    type: str
    value: str = field(repr=False)


@dataclass(frozen=True)
class Plan:
    stack: str
    settings: Settings
    hosts: tuple[Host, ...]
    rules: tuple[CloudRule, ...]
    network: ipaddress.IPv4Network
    """The VPC (AWS) or the private network (Hetzner)."""
    token: str = field(repr=False)
    outputs: dict = field(repr=False)
    parameters: dict[str, "Parameter"] = field(default_factory=dict, repr=False)
    """AWS: every SSM parameter the program registers, by name (the bundles and the secrets they name)."""
    txt: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Every TXT record the program registers (DKIM, SPF, DMARC): its FQDN and its character-strings."""

    @property
    def cloud(self) -> str:
        return self.settings.cloud

    def of_role(self, role: Role) -> list[Host]:
        return [h for h in self.hosts if h.role == role]

    def host(self, label: str) -> Host:
        (found,) = [h for h in self.hosts if h.label == label]
        return found


def plan(stack: str, overrides: dict[str, Any] | None = None) -> Plan:
    """Run the program for Pulumi.<stack>.yaml (plus `overrides`) and read what the lab needs."""
    values = {**stack_config(stack), **(overrides or {})}
    settings = settings_of(values)
    run = run_program(stack, values)
    return read(run, settings)


def read(run: Run, settings: Settings) -> Plan:
    outputs = {k: _reveal(v) for k, v in run.outputs.items()}
    entries = outputs.get("hosts") or {}
    if not entries:
        raise PlanError("the plan has no `hosts` output")
    by_id = {r.id: r for r in run.registrations if r.custom}
    reader = _aws if settings.cloud == "aws" else _hcloud
    parameters = {
        _reveal(r.inputs["name"]): Parameter(
            r.inputs["type"], _reveal(r.inputs.get("insecureValue") or r.inputs["value"])
        )
        for r in run.of_type("aws:ssm/parameter:Parameter")
    }
    hosts, rules, network = reader(run, by_id, entries, parameters)
    order = sorted(hosts, key=lambda h: (list(Role).index(h.role), h.label))
    token = str(outputs.get("injectToken", ""))
    return Plan(run.stack, settings, tuple(order), tuple(rules), network, token, outputs, parameters, txt_records(run))


def txt_records(run: Run) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The TXT records as the DNS will serve them: pulumi-aws joins a Route53 value's strings with `""`;
    Hetzner takes them quoted as in a zone file, under a name relative to the zone (components/dns.py)."""
    out = []
    for r in run.of_type("aws:route53/record:Record"):
        if r.inputs["type"] == "TXT":
            out += [(r.inputs["name"], tuple(value.split('""'))) for value in r.inputs["records"]]
    zones = {z.id: z.inputs["name"] for z in run.of_type("hcloud:index/zone:Zone")}
    for r in run.of_type("hcloud:index/zoneRrset:ZoneRrset"):
        if r.inputs["type"] == "TXT":
            origin = zones.get(r.inputs["zone"], r.inputs["zone"])
            name = origin if r.inputs["name"] == "@" else f"{r.inputs['name']}.{origin}"
            out += [(name, tuple(re.findall(r'"((?:[^"\\]|\\.)*)"', rec["value"]))) for rec in r.inputs["records"]]
    return tuple(out)


def cloud_config(user_data: str) -> dict:
    document = yaml.safe_load(user_data)
    if not isinstance(document, dict):
        raise PlanError("user data is not a cloud-config mapping")
    return document


def bundle_value(value: str) -> dict:
    """A bundle parameter's value: JSON, or gzip and base64 behind `gz:` (as kumomta-sync decodes it)."""
    if value.startswith("gz:"):
        value = gzip.decompress(base64.b64decode(value[3:])).decode()
    return json.loads(value)


def _host(label: str, entry: dict, subnet: str, guards: list[str], user_data: str, bundle: dict, secrets, **channel):
    doc = cloud_config(user_data)
    files = {
        f["path"]: File(f.get("content", ""), str(f.get("permissions", "0644"))) for f in doc.get("write_files", [])
    }
    for f in bundle.get("files", []):
        content = f.get("content")
        if content is None:
            if f.get("parameter") not in secrets:
                raise PlanError(f"{label}: the bundle names {f.get('parameter')!r}, which the plan does not register")
            content = secrets[f["parameter"]].value
        files[f["path"]] = File(content, f.get("mode", "0644"))
    return Host(
        label=label,
        role=Role(entry["role"]),
        fqdn=entry["fqdn"],
        public_ip=entry["publicIp"],
        private_ip=entry["privateIp"],
        subnet=ipaddress.ip_network(subnet),
        guards=tuple(guards),
        boot=doc,
        bundle=bundle,
        files=files,
        config_version=str(entry.get("configVersion", "")),
        **channel,
    )


def _aws(run: Run, by_id: dict[str, Registration], entries: dict, parameters: dict[str, Parameter]):
    vpcs = run.of_type("aws:ec2/vpc:Vpc")
    if len(vpcs) != 1:
        raise PlanError("the lab models a dedicated VPC (kumomta:aws without vpcId/subnetId)")
    hosts = []
    for label, entry in entries.items():
        instance = by_id[str(entry["instanceId"])]
        eni = by_id[instance.inputs["primaryNetworkInterface"]["networkInterfaceId"]]
        subnet = by_id[eni.inputs["subnetId"]].inputs["cidrBlock"]
        user_data = gzip.decompress(base64.b64decode(_reveal(instance.inputs["userDataBase64"]))).decode()
        name = _reveal(_named(run, f"{label}-bundle", "aws:ssm/parameter:Parameter").inputs["name"])
        bundle = bundle_value(parameters[name].value)
        guards = list(eni.inputs.get("securityGroups", []))
        hosts.append(_host(label, entry, subnet, guards, user_data, bundle, parameters, poll=_polls(label, user_data)))
    rules = []
    for kind, direction in (("Ingress", "in"), ("Egress", "out")):
        for r in run.of_type(f"aws:vpc/securityGroup{kind}Rule:SecurityGroup{kind}Rule"):
            rules.append(_sg_rule(r, direction))
    for group in run.of_type("aws:ec2/securityGroup:SecurityGroup"):
        if group.inputs.get("ingress") or group.inputs.get("egress"):
            raise PlanError(f"{group.name}: inline security group rules are not modelled by the lab")
    return hosts, rules, ipaddress.ip_network(vpcs[0].inputs["cidrBlock"])


def _sg_rule(r: Registration, direction: str) -> CloudRule:
    """One `aws.vpc` rule: AWS's own IpProtocol names; `-1` is every protocol and port."""
    i = r.inputs
    protocol = {"-1": "all", "6": "tcp", "17": "udp", "1": "icmp"}.get(str(i["ipProtocol"]), str(i["ipProtocol"]))
    ports = None if protocol in ("all", "icmp") else (int(i["fromPort"]), int(i["toPort"]))
    if i.get("prefixListId"):
        raise PlanError(f"{r.name}: prefix lists are not modelled by the lab")
    peer = i.get("cidrIpv4") or i.get("cidrIpv6")  # IPv6 peers are kept, and skipped by the IPv4 lab
    return CloudRule(i["securityGroupId"], direction, protocol, ports, peer, i.get("referencedSecurityGroupId"), r.name)


def _hcloud(run: Run, by_id: dict[str, Registration], entries: dict, parameters: dict[str, Parameter]):
    networks = run.of_type("hcloud:index/network:Network")
    if len(networks) != 1:
        raise PlanError("the lab models one Hetzner private network")
    attached: dict[str, list[str]] = {}
    for a in run.of_type("hcloud:index/firewallAttachment:FirewallAttachment"):
        for server in a.inputs.get("serverIds") or []:
            attached.setdefault(str(int(server)), []).append(str(int(a.inputs["firewallId"])))
    hosts = []
    for label, entry in entries.items():
        server = by_id[str(entry["instanceId"])]
        (net,) = server.inputs.get("networks") or [{}]
        subnet = net.get("subnetId", "").partition("-")[2]
        guards = [str(int(f)) for f in server.inputs.get("firewallIds") or []] + attached.get(server.id, [])
        user_data = _reveal(server.inputs["userData"])
        if not user_data.startswith("#cloud-config"):
            user_data = gzip.decompress(base64.b64decode(user_data)).decode()
        push = _push(_named(run, f"{label}-sync", "command:remote:Command"))
        bundle = json.loads(push.stdin)
        hosts.append(_host(label, entry, subnet, guards, user_data, bundle, parameters, push=push))
    rules = []
    for fw in run.of_type("hcloud:index/firewall:Firewall"):
        for n, rule in enumerate(fw.inputs.get("rules") or []):
            peers = rule.get("sourceIps") if rule["direction"] == "in" else rule.get("destinationIps")
            port = str(rule.get("port") or "any")
            ports = None if port == "any" or rule["protocol"] not in ("tcp", "udp") else _range(port)
            for peer in peers or []:
                rules.append(
                    CloudRule(fw.id, rule["direction"], rule["protocol"], ports, peer, None, f"{fw.name}[{n}]")
                )
    return hosts, rules, ipaddress.ip_network(networks[0].inputs["ipRange"])


def _polls(label: str, user_data: str) -> tuple[str, str]:
    """(region, parameter) of the host's kumomta-sync.service, as its first boot writes it."""
    for f in cloud_config(user_data).get("write_files", []):
        if f["path"].endswith("/kumomta-sync.service"):
            found = re.search(r"^ExecStart=\S*kumomta-sync (\S+) (\S+)\s*$", f.get("content", ""), re.MULTILINE)
            if found:
                return found.group(1), found.group(2)
    raise PlanError(f"{label}: the user data has no kumomta-sync.service that names a region and a parameter")


def _push(command: Registration) -> Push:
    i = {k: _reveal(v) for k, v in command.inputs.items()}
    connection = i["connection"]
    return Push(
        host=connection["host"],
        user=connection["user"],
        private_key=_reveal(connection["privateKey"]),
        host_key=connection["hostKey"].strip(),
        command=i["update"] or i["create"],
        stdin=i["stdin"],
    )


def _named(run: Run, name: str, type_: str) -> Registration:
    found = [r for r in run.of_type(type_) if r.name == name]
    if len(found) != 1:
        raise PlanError(f"the plan registers {len(found)} {type_} named {name!r}; the lab needs exactly one")
    return found[0]


def _range(port: str) -> tuple[int, int]:
    low, _, high = port.partition("-")
    return int(low), int(high or low)


def _reveal(value: Any) -> Any:
    if isinstance(value, dict) and _SECRET_SIG in value:
        return value.get("value")
    return value
