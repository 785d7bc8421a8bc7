"""Run the real Pulumi program under Pulumi's mock engine, with no CLI and no cloud account.

The offline plan, the policy pack's end-to-end run and the tests all use this: it loads
`Pulumi.<stack>.yaml`, runs `__main__.py` exactly as the engine would, and records every
RegisterResource request (inputs with camelCase wire names, and the resource options that the
mocks would otherwise never see). Cloud-computed values (IDs, addresses) are placeholders
drawn deterministically from documentation ranges, so two plans of the same code are equal.
"""

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
from tools.passphrase import Decrypter, PassphraseError, passphrase_from_env

ROOT = Path(__file__).resolve().parent.parent

# Placeholder public addresses: RFC 5737 and RFC 3849 documentation ranges.
_PUBLIC_V4 = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24")]
_PUBLIC_V6 = ipaddress.ip_network("2001:db8::/32")
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


class StackFileError(Exception):
    """The stack file is missing or not the YAML Pulumi expects."""


def stack_config(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """The `config:` block of Pulumi.<stack>.yaml.

    `secure:` values are decrypted when the passphrase is in the environment, as the Pulumi CLI would
    (tools/passphrase.py); otherwise they are left out, and `secure_keys` names them."""
    path = root / f"Pulumi.{stack}.yaml"
    document = _stack_document(path)
    values = document.get("config") or {}
    if not isinstance(values, dict):
        raise StackFileError(f"{path.name}: `config` must be a mapping")
    if not any(_holds_secure(v) for v in values.values()):
        return values
    passphrase = passphrase_from_env()
    if passphrase is None or not document.get("encryptionsalt"):
        return _without_secure(values)
    try:
        return _decrypted(values, Decrypter(passphrase, document["encryptionsalt"]))
    except PassphraseError as err:
        raise StackFileError(f"{path.name}: {err}") from None


def secure_keys(stack: str, root: Path = ROOT) -> list[str]:
    """The keys of Pulumi.<stack>.yaml (`kumomta:injectToken`) whose value is, or holds, a `secure:` value."""
    values = _stack_document(root / f"Pulumi.{stack}.yaml").get("config") or {}
    return [key for key, value in values.items() if _holds_secure(value)] if isinstance(values, dict) else []


def stack_encryption(stack: str, root: Path = ROOT) -> str | None:
    """The stack file's passphrase salt, or None when another secrets provider (or none) encrypts it."""
    return _stack_document(root / f"Pulumi.{stack}.yaml").get("encryptionsalt")


def _stack_document(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except OSError as err:
        raise StackFileError(f"{path.name}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise StackFileError(f"{path.name}: not valid YAML ({err})") from None
    if not isinstance(document, dict):
        raise StackFileError(f"{path.name}: not the mapping a stack file is")
    return document


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _holds_secure(value: Any) -> bool:
    if _is_secure(value):
        return True
    if isinstance(value, dict):
        return any(_holds_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_secure(v) for v in value)
    return False


def _without_secure(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_secure(v) for k, v in value.items() if not _is_secure(v)}
    if isinstance(value, list):
        return [_without_secure(v) for v in value if not _is_secure(v)]
    return value


def _decrypted(value: Any, decrypter: Decrypter) -> Any:
    if _is_secure(value):
        return decrypter.decrypt(value["secure"])
    if isinstance(value, dict):
        return {k: _decrypted(v, decrypter) for k, v in value.items()}
    if isinstance(value, list):
        return [_decrypted(v, decrypter) for v in value]
    return value


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

    _sync_await(pulumi.runtime.stack.run_pulumi_func(program))
    stack_resource = runtime_settings.get_root_resource()
    outputs = _sync_await(pulumi.Output.from_input(stack_resource.outputs).future(with_unknowns=True))
    return Run(stack, monitor.registrations, outputs or {}, _root(stack_resource))


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


class PlaceholderCloud(pulumi.runtime.Mocks):
    """Answers for the values a cloud would compute: IDs, addresses, zones, image IDs."""

    def __init__(self, values: dict[str, Any]):
        self.region = values.get("aws:region", "us-east-1")
        self.subnets: dict[str, str] = {}  # subnet id -> CIDR, to place private addresses
        self.networks: dict[str, str] = {}  # hcloud network id -> IP range
        self.primary_ips: dict[str, dict] = {}  # hcloud primary IP id -> its state
        self.taken: set[str] = set()
        self.renamed: dict[str, str] = values.get("kumomta:hostAliases") or {}

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
            return {"ipv6CidrBlock": str(self._public(args.name, 6, prefix=56))}
        if args.typ == "aws:ec2/subnet:Subnet":
            self.subnets[resource_id] = inputs["cidrBlock"]
            return {"availabilityZone": inputs.get("availabilityZone") or f"{self.region}a"}
        if args.typ == "aws:ec2/networkInterface:NetworkInterface":
            out = {"privateIp": self._private(args.name, self.subnets.get(inputs.get("subnetId"), "10.0.0.0/24"))}
            if inputs.get("ipv6AddressCount"):
                out["ipv6Addresses"] = [str(self._public(args.name, 6))]
            return out
        if args.typ == "random:index/randomPassword:RandomPassword":
            # Stands for the generated secret: letters and digits, as the program asks for.
            return {"result": _digest(f"password/{args.name}")[: int(inputs["length"])]}
        if args.typ == "aws:kms/key:Key":
            return {"keyId": resource_id}
        if args.typ == "aws:ec2/eip:Eip":
            return {"publicIp": str(self._public(args.name, 4)), "allocationId": f"eipalloc-{_digest(args.name)[:17]}"}
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
            self.networks[resource_id] = state["ipRange"]
        elif kind == "NetworkSubnet":
            resource_id = f"{_id_text(state['networkId'])}-{state['ipRange']}"
        elif kind == "ZoneRrset":
            resource_id = f"{state['name']}/{state['type']}"
        elif kind == "PrimaryIp":
            if state.get("type") == "ipv6":
                network = self._public(args.name, 6, prefix=64)
                state.update(ipNetwork=str(network), ipAddress=str(network.network_address))
            else:
                state["ipAddress"] = str(self._public(args.name, 4))
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
            out["ipv4Address"] = linked["ipAddress"] if linked else str(self._public(f"{name}/ipv4", 4))
        if public.get("ipv6Enabled", True):
            linked = self.primary_ips.get(_id_text(public.get("ipv6")))
            network = (
                ipaddress.ip_network(linked["ipNetwork"]) if linked else self._public(f"{name}/ipv6", 6, prefix=64)
            )
            out.update(ipv6Network=str(network), ipv6Address=str(network[1]))
        out["networks"] = []
        for attachment in state.get("networks") or []:
            network_id, _, ip_range = (attachment.get("subnetId") or "").partition("-")
            network_id = network_id or _id_text(attachment.get("networkId"))
            ip = attachment.get("ip") or self._private(name, ip_range or self.networks.get(network_id, "10.0.0.0/24"))
            out["networks"].append({**attachment, "networkId": int(network_id), "ip": ip})
        return out

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
            return {"id": args.args.get("id"), "cidrBlock": "10.0.0.0/24", "availabilityZone": f"{self.region}a"}
        if args.token == "hcloud:index/getZone:getZone":
            # An existing zone: only Hetzner knows its ID, the plan shows a stand-in.
            name = args.args.get("name")
            return {"id": args.args.get("id") or _number(f"zone/{name}"), "name": name, "mode": "primary", "ttl": 3600}
        return dict(args.args)

    def _public(self, name: str, version: int, prefix: int | None = None):
        """A stable documentation address (or network) for `name`, distinct from the others of this run."""
        for attempt in range(10_000):
            seed = int(_digest(f"{name}/{attempt}"), 16)
            if version == 4:
                pool = _PUBLIC_V4[seed % len(_PUBLIC_V4)]
                candidate = pool[1 + seed % (pool.num_addresses - 2)]
            elif prefix is not None:
                candidate = ipaddress.ip_network((int(_PUBLIC_V6.network_address) + ((seed % 65536) << 72), prefix))
            else:
                candidate = _PUBLIC_V6[seed % (1 << 64)]
            if str(candidate) not in self.taken:
                self.taken.add(str(candidate))
                return candidate
        raise RuntimeError("placeholder address pool exhausted")

    def _private(self, name: str, cidr: str) -> str:
        subnet = ipaddress.ip_network(cidr)
        usable = subnet.num_addresses - 5  # AWS keeps the first four and the last address
        for attempt in range(usable):
            candidate = str(subnet[4 + (int(_digest(f"{name}/{attempt}"), 16) % usable)])
            if candidate not in self.taken:
                self.taken.add(candidate)
                return candidate
        raise RuntimeError(f"placeholder subnet {cidr} is full")


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
