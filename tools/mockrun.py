"""Run the real Pulumi program under Pulumi's mock engine, with no CLI and no cloud account.

The offline plan, the policy pack's end-to-end run and the tests all use this: it loads
`Pulumi.<stack>.yaml`, runs `__main__.py` exactly as the engine would, and records every
RegisterResource request (inputs with camelCase wire names, and the resource options that the
mocks would otherwise never see). Cloud-computed values (IDs, addresses) are placeholders
drawn deterministically from documentation ranges, so two plans of the same code are equal.
"""

import asyncio
import base64
import functools
import hashlib
import ipaddress
import json
import math
import random
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from pulumi.runtime import config as runtime_config
from pulumi.runtime import rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import massage
from pulumi.runtime.sync_await import _sync_await

from components.settings import Settings, decode, parse
from tools import stackfile
from tools.stackfile import StackFileError

ROOT = Path(__file__).resolve().parent.parent
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Placeholder public addresses. IPv4: RFC 5737's three documentation /24s first, then the upper half of
# RFC 2544's benchmarking range (the lab's own actors sit in the lower half, 198.18.0.0/16). IPv6: RFC 3849's
# 2001:db8::/32, one /40 per kind of allocation so a /56, a /64 and a single address never overlap.
_PUBLIC_V4 = (("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"), ("198.19.0.0/16",))
_PUBLIC_V6 = {56: "2001:db8:100::/40", 64: "2001:db8:200::/40", 128: "2001:db8:300::/40"}
# Reserved addresses of a subnet, (at its start, at its end), which no host gets:
# - AWS: "the first four and the last IPv4 address in each subnet's CIDR block" (EC2 API Reference,
#   CreateSubnet; VPC User Guide, "Subnet CIDR blocks"), the same for IPv6 subnet blocks.
# - Hetzner: the range's own address, then "the first IP of the subnet's IP range" is its gateway (Cloud API
#   reference, Networks: `gateway`; docs.hetzner.com networking/networks/technical-concepts/architecture,
#   10.0.0.1 the gateway of 10.0.0.0/24, 10.0.0.2 its first server); the last, as settings.py counts it.
AWS_RESERVED = (4, 1)
HCLOUD_RESERVED = (2, 1)
# What the plan assumes for an existing subnet (`kumomta:aws.subnetId`), which only AWS knows: the widest
# subnet AWS allows (/16, CreateSubnet), so any fleet the settings accept has room in it.
EXISTING_SUBNET = "10.0.0.0/16"
# The AWS account and the role that runs `pulumi up`, as the plan shows them.
ACCOUNT = "123456789012"
DEPLOYER = "kumomta-deploy"


@dataclass
class Registration:
    """One RegisterResource request as the engine would have received it."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    protect: bool = False
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    ignore_changes: list[str] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)
    aliases: list[dict[str, Any]] = field(default_factory=list)
    """As sent: `{"urn": ...}` or a spec `{"name", "type", "stack", "project", "parentUrn", "noParent"}`."""
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    """Per input property (wire name), the URNs of the resources its value came from."""


@dataclass
class Run:
    """The outcome of one program run: every registration in order, and the stack outputs. `root` is the
    stack resource as the engine keeps it, its state the registered outputs with secrets still marked."""

    stack: str
    registrations: list[Registration]
    outputs: dict[str, Any]
    root: Registration

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_]

    def by_name(self, name: str) -> Registration:
        (match,) = [r for r in self.registrations if r.name == name]
        return match


def stack_config(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """The `config:` block of Pulumi.<stack>.yaml, keyed as the engine hands it to the program.

    `secure:` values are decrypted when the passphrase is in the environment, as the Pulumi CLI would
    (tools/passphrase.py); otherwise they are left out, and `secure_keys` names them. Any problem with the
    file is a StackFileError, one line per problem (tools/stackfile.py)."""
    return stackfile.decrypted(stackfile.read(root / f"Pulumi.{stack}.yaml"))


def secure_keys(stack: str, root: Path = ROOT) -> list[str]:
    """The keys of Pulumi.<stack>.yaml (`kumomta:injectToken`) whose value is, or holds, a `secure:` value."""
    return stackfile.read(root / f"Pulumi.{stack}.yaml").secure_keys


def stack_encryption(stack: str, root: Path = ROOT) -> str | None:
    """The stack file's passphrase salt, or None when another secrets provider (or none) encrypts it."""
    return stackfile.read(root / f"Pulumi.{stack}.yaml").encryption_salt


def engine_config(values: dict[str, Any]) -> dict[str, str]:
    """Encode values as the engine hands them to a program: strings as they are, the rest as JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


def settings_of(values: dict[str, Any]) -> Settings:
    """The program's settings for stack-file values, passed through the engine's encoding as `load()` sees them."""
    return parse(decode(engine_config(values)), region=values.get("aws:region"))


def run_stack(stack: str, overrides: dict[str, Any] | None = None, root: Path = ROOT) -> Run:
    """Run the program for Pulumi.<stack>.yaml (plus `overrides`, keyed like `kumomta:ipv6`)."""
    values = {**stack_config(stack, root), **(overrides or {})}
    return run_program(stack, values, root)


def run_program(stack: str, values: dict[str, Any], root: Path = ROOT) -> Run:
    project = (yaml.safe_load((root / "Pulumi.yaml").read_text()) or {}).get("name", "project")
    runtime_config.set_all_config(engine_config(values))
    mocks = PlaceholderCloud(values)
    monitor = RecordingMonitor(mocks)
    runtime_settings.ROOT.set(None)  # a fresh root stack for every run in this process
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)

    def program() -> None:
        runpy.run_path(str(root / "__main__.py"), run_name="__main__")

    try:
        _sync_await(pulumi.runtime.stack.run_pulumi_func(program))
    except BaseException:
        _cancel_in_flight()
        raise
    stack_resource = runtime_settings.get_root_resource()
    outputs = _sync_await(pulumi.Output.from_input(stack_resource.outputs).future(with_unknowns=True))
    return Run(stack, monitor.registrations, outputs or {}, _root(stack_resource))


def _cancel_in_flight() -> None:
    """A failed run leaves registrations in flight; cancel them, or they would land in the next run's mocks."""
    loop = asyncio.get_event_loop()
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    _sync_await(asyncio.gather(*pending, return_exceptions=True))
    # The SDK keeps these across set_mocks; the next run would wait on this one's outputs and see its error.
    runtime_settings.SETTINGS.outputs.clear()
    runtime_settings.SETTINGS.rpc_manager.clear()
    loop.set_exception_handler(_unreported_only)


def _unreported_only(loop, context: dict) -> None:
    """A failed run's futures still hold its error, which its caller reports in one line; asyncio would log
    each again ("Future exception was never retrieved") when it collects them."""
    if not isinstance(context.get("exception"), StackFileError | pulumi.RunError):
        loop.default_exception_handler(context)


def _root(stack_resource) -> Registration:
    """The mock engine takes the stack's outputs before the program exports them; serialise them as
    register_outputs would have sent them, secrets marked."""
    urn = _sync_await(stack_resource.urn.future())
    registered = _sync_await(rpc.serialize_properties(massage(stack_resource.outputs, []), {}))
    state = _sync_await(_deserialize(registered))
    return Registration(urn, "pulumi:pulumi:Stack", urn.split("::")[-1], "", False, {}, state)


class RecordingMonitor(MockMonitor):
    """Keeps the full request, because options such as `protect` never reach `Mocks.new_resource`."""

    def __init__(self, mocks: "PlaceholderCloud"):
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        if request.additionalSecretOutputs:
            response = self._with_secret_outputs(response, set(request.additionalSecretOutputs))
        self.registrations.append(
            Registration(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent,
                custom=request.custom,
                inputs=_sync_await(_deserialize(request.object)),
                state=self.resources[response.urn].state,
                id=response.id,
                protect=request.protect,
                retain_on_delete=request.retainOnDelete,
                delete_before_replace=request.deleteBeforeReplace,
                ignore_changes=list(request.ignoreChanges),
                depends_on=list(request.dependencies),
                aliases=[_alias(alias) for alias in request.aliases],
                property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
            )
        )
        return response

    def _with_secret_outputs(self, response, names: set[str]):
        """The engine marks `additionalSecretOutputs` secret (pulumi-tls's private keys, say); so must the mocks,
        or what the program builds from them would reach its inputs in plain text, as it never does for real."""
        state = {
            key: {rpc._special_sig_key: rpc._special_secret_sig, "value": value} if key in names else value
            for key, value in self.resources[response.urn].state.items()
        }
        obj = _sync_await(rpc.serialize_properties(state, {}))
        return type(response)(urn=response.urn, id=response.id, object=obj)


def _alias(alias) -> dict[str, Any]:
    if alias.WhichOneof("alias") == "urn":
        return {"urn": alias.urn}
    spec = alias.spec
    return {
        "name": spec.name,
        "type": spec.type,
        "stack": spec.stack,
        "project": spec.project,
        "parentUrn": spec.parentUrn,
        "noParent": spec.noParent,
    }


async def _deserialize(struct) -> dict[str, Any]:
    return rpc.deserialize_properties(struct)


class PlaceholderError(StackFileError):
    """The stack asks for more than a stand-in can give: a subnet with no free address for a host."""


class Pool:
    """Stand-in addresses, or networks of one size, from `blocks` in a fixed order of slots.

    A name starts at the slot its digest picks and takes the first free slot from there: every slot is used
    before the pool is full, and a name keeps its slot when others come and go (so a plan diff shows no address
    change a cloud would not make). The engine registers resources from threads, in an order that varies from
    run to run, so the names the stack will ask for are `promise`d their slots up front, in config order: which
    of two names whose digests collide gets the slot never depends on timing. Slots overlapping `avoid` are
    never given."""

    def __init__(self, blocks: list[Network], prefix: int, reserved: tuple[int, int] = (0, 0), avoid=()):
        self.prefix = prefix
        self.spans = []  # (block, first unit, units)
        for block in blocks:
            units = 1 << (prefix - block.prefixlen)
            self.spans.append((block, reserved[0], max(0, units - reserved[0] - reserved[1])))
        self.size = sum(count for _, _, count in self.spans)
        self.used: set[int] = set()
        self.avoid = [net for net in avoid if blocks and net.version == blocks[0].version]
        self.promised: dict[str, Network] = {}

    def promise(self, name: str) -> bool:
        """Set a slot aside for a name the stack will ask for; False when the pool is full."""
        unit = self._probe(name)
        if unit is not None:
            self.promised[name] = unit
        return unit is not None

    def take(self, name: str) -> Network | None:
        return self.promised.pop(name) if name in self.promised else self._probe(name)

    def _probe(self, name: str) -> Network | None:
        start = int(_digest(name), 16) % self.size if self.size else 0
        for step in range(self.size):
            if len(self.used) >= self.size:
                break
            slot = (start + step) % self.size
            if slot in self.used:
                continue
            self.used.add(slot)  # an avoided slot too: it is never looked at again
            unit = self._unit(slot)
            if not any(unit.overlaps(net) for net in self.avoid):
                return unit
        return None

    def mark(self, address: str) -> None:
        """An address the program pinned: no one else gets it."""
        ip = ipaddress.ip_address(address)
        offset = 0
        for block, first, count in self.spans:
            if ip in block:
                unit = (int(ip) - int(block.network_address)) >> (block.max_prefixlen - self.prefix)
                if first <= unit < first + count:
                    self.used.add(offset + unit - first)
            offset += count

    def _unit(self, slot: int) -> Network:
        for block, first, count in self.spans:
            if slot < count:
                base = int(block.network_address) + ((first + slot) << (block.max_prefixlen - self.prefix))
                return ipaddress.ip_network((base, self.prefix))
            slot -= count
        raise IndexError(slot)


class PlaceholderCloud(pulumi.runtime.Mocks):
    """Answers for the values a cloud would compute: IDs, addresses, zones, image IDs."""

    def __init__(self, values: dict[str, Any]):
        self.region = values.get("aws:region", "us-east-1")
        renamed = _written(values.get("kumomta:hostAliases"))
        # Only well-formed pairs: settings refuse the rest before any resource is registered.
        self.renamed: dict[str, str] = (
            {k: v for k, v in renamed.items() if isinstance(k, str) and isinstance(v, str)}
            if isinstance(renamed, dict)
            else {}
        )
        # Host labels as the stand-ins know them: a renamed host's by its first name (see new_resource).
        self.hosts = {
            role: [self._first_name(label) for label in _labels(values, f"kumomta:{role}Hosts", [role])]
            for role in ("mta", "proxy")
        }
        labels = self.hosts["mta"] + self.hosts["proxy"]
        # Public stand-ins never equal an address the stack names (the PING8 app, monitoring, resolvers...).
        avoid = _configured_networks(values)
        self.public_v4 = [Pool([ipaddress.ip_network(b) for b in tier], 32, (1, 1), avoid) for tier in _PUBLIC_V4]
        self.public_v6 = {p: Pool([ipaddress.ip_network(b)], p, avoid=avoid) for p, b in _PUBLIC_V6.items()}
        # The names the program gives the resources that get addresses (components/aws.py, hcloud.py).
        kind = "ipv4" if values.get("kumomta:cloud") == "hcloud" else "eip"
        for label in labels:
            for pool in self.public_v4:
                if pool.promise(f"{label}-{kind}"):
                    break
            self.public_v6[64].promise(f"{label}-ipv6")
        self.subnets: dict[str, tuple[str, Pool, Pool | None]] = {}  # AWS subnet id -> config key, v4 and v6 pools
        self.networks: dict[str, list[tuple[str, Pool]]] = {}  # hcloud network id -> its subnets' key and pool
        self.primary_ips: dict[str, dict] = {}  # hcloud primary IP id -> its state

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        # A renamed host's parts are the same cloud resources as before (Pulumi aliases them): same IDs, same
        # addresses, same auto-names. The stand-ins derive from names, so they derive from the first ones.
        args.name = self._first_name(args.name)
        state = dict(args.inputs)
        if args.typ.startswith("hcloud:"):
            return self._hcloud(args, state)
        if args.typ == "tls:index/privateKey:PrivateKey":
            return self._tls_key(args, state)
        kind = args.typ.split(":")[-1]
        resource_id = args.resource_id or f"{kind.lower()}-{_digest(args.name)[:17]}"
        if "name" not in state and args.typ.startswith("aws:"):
            state["name"] = f"{args.name}-{_digest(args.name)[:7]}"
        state.setdefault("arn", self._arn(args.typ, resource_id, state))
        state.update(self._computed(args, resource_id, state))
        return resource_id, state

    def _first_name(self, name: str) -> str:
        for label, first in self.renamed.items():
            if name == label or name.startswith(f"{label}-"):
                return first + name[len(label) :]
        return name

    def _arn(self, typ: str, resource_id: str, state: dict) -> str:
        """ARNs in the shapes AWS gives them where a policy names them; a recognisable stand-in elsewhere."""
        if typ == "aws:iam/role:Role":
            return f"arn:aws:iam::{ACCOUNT}:role/{state['name']}"
        if typ == "aws:ssm/parameter:Parameter":
            return f"arn:aws:ssm:{self.region}:{ACCOUNT}:parameter{state['name']}"
        if typ == "aws:kms/key:Key":
            return f"arn:aws:kms:{self.region}:{ACCOUNT}:key/{resource_id}"
        return f"arn:aws:mock:::{typ.split(':')[-1].lower()}/{resource_id}"

    def _computed(self, args, resource_id: str, inputs: dict) -> dict:
        if args.typ == "aws:ec2/vpc:Vpc" and inputs.get("assignGeneratedIpv6CidrBlock"):
            return {"ipv6CidrBlock": str(self._public(args.name, 56))}
        if args.typ == "aws:ec2/subnet:Subnet":
            role = args.name.removesuffix("-subnet")
            self.subnets[resource_id] = self._subnet(
                f"kumomta:aws.{role}SubnetCidr", inputs["cidrBlock"], inputs.get("ipv6CidrBlock"), self.hosts.get(role)
            )
            return {"availabilityZone": inputs.get("availabilityZone") or f"{self.region}a"}
        if args.typ == "aws:ec2/networkInterface:NetworkInterface":
            return self._eni(args.name, inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            # Stands for the generated secret: letters and digits, as the program asks for.
            return {"result": _digest(f"password/{args.name}")[: int(inputs["length"])]}
        if args.typ == "aws:kms/key:Key":
            return {"keyId": resource_id}
        if args.typ == "aws:ec2/eip:Eip":
            return {"publicIp": self._address(args.name), "allocationId": f"eipalloc-{_digest(args.name)[:17]}"}
        return {}

    def _tls_key(self, args, state: dict) -> tuple[str, dict]:
        """A real key pair, derived from the resource name so the plan is the same every run."""
        seed = f"tls/{args.name}"
        if state.get("algorithm") == "ED25519":
            key = ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.encode()).digest())
            private = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
        elif state.get("algorithm") == "RSA":
            key = _rsa_key(seed, int(state.get("rsaBits", 2048)))
            # pulumi-tls gives RSA keys as PKCS#1 ("RSA PRIVATE KEY"), and PKCS#8 in privateKeyPemPkcs8.
            private = key.private_bytes(Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption()).decode()
        else:
            raise NotImplementedError(f"placeholder {state.get('algorithm')} keys")
        public = key.public_key()
        state.update(
            privateKeyOpenssh=_fixed_checkint(key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())),
            privateKeyPem=private,
            privateKeyPemPkcs8=key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode(),
            publicKeyOpenssh=public.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode() + "\n",
            publicKeyPem=public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode(),
        )
        return args.resource_id or _digest(seed)[:40], state

    def _hcloud(self, args, state: dict) -> tuple[str, dict]:
        """Hetzner IDs are integers (subnets and RRSets have composite ones); addresses follow the links."""
        kind = args.typ.split(":")[-1]
        resource_id = args.resource_id or str(_number(f"{args.typ}/{args.name}"))
        if kind == "Network":
            self.networks[resource_id] = []
        elif kind == "NetworkSubnet":
            resource_id = f"{_id_text(state['networkId'])}-{state['ipRange']}"
            key = f"kumomta:hcloud.{args.name.removesuffix('-subnet')}SubnetCidr"
            pool = Pool([ipaddress.ip_network(state["ipRange"])], 32, HCLOUD_RESERVED)
            self.networks.setdefault(_id_text(state["networkId"]), []).append((key, pool))
        elif kind == "ZoneRrset":
            resource_id = f"{state['name']}/{state['type']}"
        elif kind == "PrimaryIp":
            if state.get("type") == "ipv6":
                network = self._public(args.name, 64)
                state.update(ipNetwork=str(network), ipAddress=str(network.network_address))
            else:
                state["ipAddress"] = self._address(args.name)
            self.primary_ips[resource_id] = state
        elif kind == "Server":
            state.update(self._hcloud_server(args.name, state), status="running")
        elif kind == "Volume":
            state["linuxDevice"] = f"/dev/disk/by-id/scsi-0HC_Volume_{resource_id}"
        return resource_id, state

    def _hcloud_server(self, name: str, state: dict) -> dict:
        """Public addresses from the linked primary IPs (or fresh ones), private ones from the subnets."""
        public = (state.get("publicNets") or [{}])[0]
        out: dict[str, Any] = {}
        if public.get("ipv4Enabled", True):
            linked = self.primary_ips.get(_id_text(public.get("ipv4")))
            out["ipv4Address"] = linked["ipAddress"] if linked else self._address(f"{name}/ipv4")
        if public.get("ipv6Enabled", True):
            linked = self.primary_ips.get(_id_text(public.get("ipv6")))
            network = ipaddress.ip_network(linked["ipNetwork"]) if linked else self._public(f"{name}/ipv6", 64)
            out.update(ipv6Network=str(network), ipv6Address=str(network[1]))
        out["networks"] = []
        for attachment in state.get("networks") or []:
            network_id = _id_text(attachment.get("networkId")) or (attachment.get("subnetId") or "").partition("-")[0]
            out["networks"].append(
                {**attachment, "networkId": int(network_id), "ip": self._hcloud_private(name, network_id, attachment)}
            )
        return out

    def _hcloud_private(self, name: str, network_id: str, attachment: dict) -> str:
        """The pinned address (kept from everyone else), or the first free one of the attachment's subnet."""
        subnets = self.networks.get(network_id) or [("kumomta:hcloud.networkCidr", Pool([], 32))]
        ip_range = (attachment.get("subnetId") or "").partition("-")[2]
        if ip_range:
            subnets = [(key, pool) for key, pool in subnets if str(pool.spans[0][0]) == ip_range] or subnets
        if attachment.get("ip"):
            for _, pool in subnets:
                pool.mark(attachment["ip"])
            return attachment["ip"]
        key, pool = subnets[0]
        return self._private(name, key, pool, "Hetzner keeps its first two addresses and the last")

    def _eni(self, name: str, inputs: dict) -> dict:
        key, v4, v6 = self.subnets.get(inputs.get("subnetId")) or self._existing_subnet(inputs.get("subnetId"))
        reserved = "AWS keeps the first four addresses of every subnet and the last"
        out: dict[str, Any] = {"privateIp": inputs.get("privateIp") or self._private(name, key, v4, reserved)}
        if inputs.get("privateIp"):
            v4.mark(inputs["privateIp"])
        if inputs.get("ipv6AddressCount"):
            out["ipv6Addresses"] = [
                self._private(name, key, v6, reserved) if v6 else str(self._public(name, 128).network_address)
            ]
        return out

    def _existing_subnet(self, subnet_id: Any) -> tuple[str, Pool, Pool | None]:
        """`kumomta:aws.subnetId`: a subnet only AWS knows, which both roles share; EXISTING_SUBNET stands for it."""
        if str(subnet_id) not in self.subnets:
            hosts = self.hosts["mta"] + self.hosts["proxy"]
            self.subnets[str(subnet_id)] = self._subnet("kumomta:aws.subnetId", EXISTING_SUBNET, None, hosts)
        return self.subnets[str(subnet_id)]

    @staticmethod
    def _subnet(key: str, cidr: str, ipv6: str | None, labels: list[str] | None) -> tuple[str, Pool, Pool | None]:
        """An AWS subnet's pools, with its hosts' network interfaces (`<label>-eni`) promised their addresses."""
        pools = [Pool([ipaddress.ip_network(cidr)], 32, AWS_RESERVED)]
        if ipv6:
            pools.append(Pool([ipaddress.ip_network(ipv6)], 128, AWS_RESERVED))
        for pool in pools:
            for label in labels or []:
                pool.promise(f"{label}-eni")
        return key, pools[0], pools[1] if ipv6 else None

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        if args.token == "aws:ec2/getAmi:getAmi":
            return {"id": "ami-0placeholder0000", "name": "ubuntu-jammy-22.04 (looked up at deploy time)"}
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            # The deployer as an assumed role, the usual case in CI (OIDC) and with SSO.
            arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/{DEPLOYER}/session"
            return {"id": ACCOUNT, "accountId": ACCOUNT, "arn": arn, "userId": "AROAPLACEHOLDER:session"}
        if args.token == "aws:iam/getSessionContext:getSessionContext":
            return {"arn": args.args["arn"], "issuerArn": f"arn:aws:iam::{ACCOUNT}:role/{DEPLOYER}"}
        if args.token == "aws:index/getPartition:getPartition":
            return {"id": "aws", "partition": "aws", "dnsSuffix": "amazonaws.com"}
        if args.token == "aws:ec2/getSubnet:getSubnet":
            # The real CIDR and zone are only known to AWS; the plan shows a stand-in.
            return {"id": args.args.get("id"), "cidrBlock": EXISTING_SUBNET, "availabilityZone": f"{self.region}a"}
        if args.token == "hcloud:index/getZone:getZone":
            # An existing zone: only Hetzner knows its ID, the plan shows a stand-in.
            name = args.args.get("name")
            return {"id": args.args.get("id") or _number(f"zone/{name}"), "name": name, "mode": "primary", "ttl": 3600}
        return dict(args.args)

    def _address(self, name: str) -> str:
        """A public IPv4 stand-in: from the documentation ranges while they last, then the benchmarking range."""
        for pool in self.public_v4:
            unit = pool.take(name)
            if unit is not None:
                return str(unit.network_address)
        raise PlaceholderError(f"{name}: more public IPv4 stand-ins than the plan has ({_size(self.public_v4):,})")

    def _public(self, name: str, prefix: int) -> Network:
        """A public IPv6 stand-in of this size: a /56 for a VPC, a /64 for a server, or one address."""
        unit = self.public_v6[prefix].take(name)
        if unit is None:
            raise PlaceholderError(f"{name}: more public IPv6 /{prefix} stand-ins than the plan has")
        return unit

    def _private(self, name: str, key: str, pool: Pool, reserved: str) -> str:
        unit = pool.take(name)
        if unit is None:
            subnet = pool.spans[0][0] if pool.spans else "the network"
            raise PlaceholderError(
                f"{key}: {subnet} has no address left for {name}: it holds {pool.size} hosts ({reserved})"
            )
        return str(unit.network_address)


def _configured_networks(values: dict[str, Any]) -> list[Network]:
    """What the stack names as outside addresses (the lab puts its PING8 app, monitoring and admin actors at
    their first address): a narrow network whole, a wide one's first two addresses, so stand-ins stay apart."""
    found = []
    for key in (
        "ping8Cidrs",
        "trustedCidrs",
        "monitoringCidrs",
        "adminCidrs",
        "deployCidrs",
        "resolverCidrs",
        "ntpCidrs",
    ):
        entries = _written(values.get(f"kumomta:{key}"))
        for entry in entries if isinstance(entries, list) else []:
            try:
                net = ipaddress.ip_network(str(entry).strip(), strict=False)
            except ValueError:
                continue
            if net.num_addresses <= 256:
                found.append(net)
            else:
                found += [ipaddress.ip_network(net.network_address + i) for i in (0, 1)]
    return found


def _written(value: Any) -> Any:
    """A config value as the program decodes it: `pulumi config set` writes lists and objects as JSON text."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _labels(values: dict[str, Any], key: str, default: list[str]) -> list[str]:
    """Host labels from config as written."""
    labels = _written(values.get(key, default))
    return [str(label) for label in labels] if isinstance(labels, list) else []


def _size(pools: list[Pool]) -> int:
    return sum(pool.size for pool in pools)


@functools.cache
def _rsa_key(seed: str, bits: int) -> rsa.RSAPrivateKey:
    """An RSA key from primes found by a PRNG seeded with `seed`: the same key every run (cryptography only
    generates from the system's randomness). Miller-Rabin with 40 rounds, as FIPS 186-5 C.3.1 allows."""
    rng = random.Random(seed)

    def prime() -> int:
        while True:
            candidate = rng.getrandbits(bits // 2) | (3 << (bits // 2 - 2)) | 1
            if all(candidate % p for p in _SMALL_PRIMES) and _probably_prime(candidate, rng):
                return candidate

    e = 65537
    while True:
        p, q = prime(), prime()
        phi = (p - 1) * (q - 1)
        if p != q and math.gcd(e, phi) == 1:
            break
    d = pow(e, -1, phi)
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q), rsa.RSAPublicNumbers(e, p * q)
    )
    return numbers.private_key()


_SMALL_PRIMES = [n for n in range(3, 2000, 2) if all(n % k for k in range(3, int(n**0.5) + 1, 2))]


def _probably_prime(n: int, rng: random.Random, rounds: int = 40) -> bool:
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _fixed_checkint(pem: bytes) -> str:
    """OpenSSH's private key format opens its private section with a random check number, twice
    (PROTOCOL.key in OpenSSH's source); a fixed one keeps the key, and so the plan, the same every run."""
    lines = pem.decode().splitlines()
    blob = bytearray(base64.b64decode("".join(lines[1:-1])))
    offset = len(b"openssh-key-v1\0")
    for _ in range(3):  # cipher name, KDF name, KDF options
        offset += 4 + int.from_bytes(blob[offset : offset + 4], "big")
    offset += 4  # the number of keys
    offset += 4 + int.from_bytes(blob[offset : offset + 4], "big")  # the public key
    blob[offset + 4 : offset + 12] = b"KUMOKUMO"  # past the private section's length: check, check
    body = base64.b64encode(bytes(blob)).decode()
    return "\n".join([lines[0], *(body[i : i + 70] for i in range(0, len(body), 70)), lines[-1]]) + "\n"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _number(text: str) -> int:
    """A stable positive integer ID, in the range Hetzner's own IDs take."""
    return 1 + int(_digest(text)[:8], 16) % 99_999_999


def _id_text(value: Any) -> str | None:
    """An integer ID as it arrives through the engine (a float, since protobuf numbers are doubles)."""
    return None if value is None else str(int(value))
