"""The lab's shape as data: namespaces, the veth links between them, addresses, routes, nftables.

Derived once from the plan, the way each cloud joins its hosts:
- AWS: a `vpc` router holds every host's network interface (the host sees only its private
  address, as on EC2) and enforces the security groups; an `igw` router is the internet gateway
  and maps each Elastic IP 1:1 onto its private address. The Amazon DNS server (VPC base + 2 and
  169.254.169.253) and the metadata service hang off the VPC router.
- Hetzner: an `internet` router in front of each host's public address (on the host's own
  interface, /32 behind the on-link gateway 172.31.1.1, as Hetzner configures it) enforces the
  cloud firewalls; a `private` router is the private network, unfiltered, with no way out.
Around them: `internet` (an untrusted prober, the test MX, a server standing for "anything out
there", the PING8 app, and on AWS the SSM endpoint the hosts poll), `resolver`, `metadata`,
`monitoring`, `admin` and `deploy` (where `pulumi up` runs: on Hetzner the first address of
`deployCidrs`, from which it pushes each host's bundle over SSH).

No node has a route beyond the lab: every address routed anywhere is one of the lab's own.
"""

import hashlib
import ipaddress
from dataclasses import dataclass, field

from tools.lab import cloudfw
from tools.lab.stack import Plan

# Internet addresses of the lab's own servers: RFC 2544's benchmarking range, which no stack names.
UNTRUSTED = "198.18.0.10"
TEST_MX = "198.18.0.25"
ANYWHERE = "198.18.0.80"
MONITORING_STRANGER = "198.18.1.10"
ADMIN_STRANGER = "198.18.2.10"
DEPLOY_STRANGER = "198.18.3.10"
SSM = "198.18.0.43"
"""Where `ssm.<region>.amazonaws.com` resolves in the lab (AWS)."""
METADATA = "169.254.169.254"
HCLOUD_GATEWAY = "172.31.1.1"
HCLOUD_RESOLVERS = ("185.12.64.1", "185.12.64.2")
AMAZON_DNS = "169.254.169.253"
HOST_FIREWALL = "/etc/nftables.conf"
IFNAMSIZ = 15
LINK_LOCAL = ipaddress.ip_network("169.254.0.0/16")


@dataclass(frozen=True)
class Iface:
    name: str
    addresses: tuple[str, ...] = ()
    """With prefix length, e.g. 10.42.1.52/24."""
    proxy_arp: bool = False


@dataclass(frozen=True)
class Link:
    """One veth pair: (node, interface) at each end."""

    a: tuple[str, Iface]
    b: tuple[str, Iface]


@dataclass(frozen=True)
class Route:
    dst: str
    dev: str
    via: str | None = None
    src: str | None = None


@dataclass(frozen=True)
class Node:
    name: str
    routes: tuple[Route, ...] = ()
    forward: bool = False
    local: tuple[str, ...] = ()
    """Addresses on loopback (a router answering for Elastic IPs)."""
    nft: str | None = None
    """A ruleset the node loads as it is, after its links are up."""


@dataclass(frozen=True)
class Places:
    """Where the lab's own actors sit: node names and addresses the checks talk about."""

    internet: str = "internet"
    untrusted: str = UNTRUSTED
    test_mx: str = TEST_MX
    anywhere: str = ANYWHERE
    ping8: tuple[str, ...] = ()
    trusted: tuple[str, ...] = ()
    monitoring: str = MONITORING_STRANGER
    admin: str = ADMIN_STRANGER
    deploy: str = DEPLOY_STRANGER
    ssm: str | None = None
    resolvers: tuple[str, ...] = ()
    """Every address the resolver answers at."""
    dhcp_resolvers: tuple[str, ...] = ()
    """What the cloud's DHCP hands a host that configures nothing else."""
    metadata: str = METADATA


@dataclass(frozen=True)
class Topology:
    prefix: str
    nodes: tuple[Node, ...]
    links: tuple[Link, ...]
    places: Places
    hosts: dict[str, str] = field(default_factory=dict)
    """Host label -> node name."""
    cloud_router: str = ""
    """The node enforcing the cloud firewalls, on `interfaces` (host label -> its interface there)."""
    interfaces: dict[str, str] = field(default_factory=dict)
    unfiltered: tuple[str, ...] = ()

    def netns(self, node: str) -> str:
        return f"{self.prefix}-{node}"

    @property
    def namespaces(self) -> list[str]:
        return [self.netns(n.name) for n in self.nodes]


EXTRA_NODES = ("internet", "resolver", "metadata", "monitoring", "admin", "deploy", "igw", "vpc", "private")


def build(plan: Plan, prefix: str) -> Topology:
    clash = {h.label for h in plan.hosts} & set(EXTRA_NODES)
    if clash:
        raise ValueError(f"host labels {sorted(clash)} clash with the lab's own node names")
    places = _places(plan)
    return (_aws if plan.cloud == "aws" else _hcloud)(plan, prefix, places)


def host_firewall(host) -> str:
    """The rendered /etc/nftables.conf the host runs once its bundle is applied."""
    rendered = host.files.get(HOST_FIREWALL)
    if rendered is None:
        raise ValueError(f"{host.label}: neither the user data nor the bundle writes {HOST_FIREWALL}")
    return rendered.content


def first_host(cidr) -> str:
    net = ipaddress.ip_network(cidr)
    return str(net.network_address if net.num_addresses == 1 else net.network_address + 1)


def _v4(cidrs) -> list:
    return [c for c in cidrs if c.version == 4]


def _places(plan: Plan) -> Places:
    s = plan.settings
    configured = [first_host(c) for c in _v4(s.resolver_cidrs or [])]
    if plan.cloud == "aws":
        dhcp = (str(plan.network.network_address + 2),)
        defaults = (dhcp[0], AMAZON_DNS)
    else:
        dhcp = HCLOUD_RESOLVERS
        defaults = HCLOUD_RESOLVERS
    monitoring = _v4(s.monitoring_cidrs)
    admin = _v4(s.admin_cidrs)
    deploy = _v4(s.deploy_cidrs)
    return Places(
        ping8=tuple(first_host(c) for c in _v4(s.ping8_cidrs)),
        trusted=tuple(first_host(c) for c in _v4(s.trusted_cidrs)),
        monitoring=first_host(monitoring[0]) if monitoring else MONITORING_STRANGER,
        admin=first_host(admin[0]) if admin else ADMIN_STRANGER,
        deploy=first_host(deploy[0]) if deploy else DEPLOY_STRANGER,
        ssm=SSM if plan.cloud == "aws" else None,
        resolvers=tuple(dict.fromkeys([*defaults, *configured])),
        dhcp_resolvers=dhcp,
    )


def _extras(places: Places) -> dict[str, list[str]]:
    """The lab's own nodes and their addresses; the internet's default source is the PING8 app."""
    internet = [*places.ping8, UNTRUSTED, TEST_MX, ANYWHERE, *places.trusted, *([places.ssm] if places.ssm else [])]
    return {
        "internet": list(dict.fromkeys(internet)),
        "resolver": list(places.resolvers),
        "metadata": [places.metadata],
        "monitoring": [places.monitoring],
        "admin": [places.admin],
        "deploy": [places.deploy],
    }


def _attach(
    extras: dict[str, list[str]], inside, private_router: str, public_router: str, private_net: str, default_src
) -> tuple[list[Node], list[Link], dict[str, list[str]]]:
    """Each extra node gets a link to the router of each side its addresses are on."""
    nodes, links, routed = [], [], {private_router: [], public_router: []}
    seen: set[str] = set()
    for name, addresses in extras.items():
        clash = seen & set(addresses)
        if clash:
            raise ValueError(f"{name}: address {sorted(clash)} is taken by another lab node")
        seen |= set(addresses)
        sides = {
            private_router: [a for a in addresses if inside(a)],
            public_router: [a for a in addresses if not inside(a)],
        }
        routes = []
        for router, mine in sides.items():
            if not mine:
                continue
            dev = "priv" if router == private_router else "eth0"
            links.append(
                Link((name, Iface(dev, tuple(f"{a}/32" for a in mine))), (router, Iface(_short(name), proxy_arp=True)))
            )
            routed[router] += [(a, _short(name)) for a in mine]
            if router == private_router:
                routes += [Route(private_net, dev), Route(str(LINK_LOCAL), dev)]
        default_dev = "eth0" if sides[public_router] else "priv"
        routes.append(Route("default", default_dev, src=default_src(name, addresses)))
        nodes.append(Node(name, tuple(routes)))
    return nodes, links, routed


def _short(name: str) -> str:
    return name[:IFNAMSIZ]


def host_interface(label: str) -> str:
    """A host's interface on a router, from its label alone, so a re-plan keeps every other host's."""
    name = f"h-{label}"
    if len(name) <= IFNAMSIZ:
        return name
    return f"h-{label[:7]}-{hashlib.sha256(label.encode()).hexdigest()[:5]}"


def _aws(plan: Plan, prefix: str, places: Places) -> Topology:
    vpc_net = plan.network
    vpc_dns = str(vpc_net.network_address + 2)

    def inside(address: str) -> bool:
        a = ipaddress.ip_address(address)
        return a in vpc_net or a in LINK_LOCAL

    def src(name, addresses):
        return places.ping8[0] if name == "internet" and places.ping8 else addresses[0]

    nodes, links, routed = _attach(_extras(places), inside, "vpc", "igw", str(vpc_net), src)
    vpc_routes = [Route(f"{a}/32", dev) for a, dev in routed["vpc"]]
    igw_routes = [Route(f"{a}/32", dev) for a, dev in routed["igw"]]
    interfaces, nat = {}, []
    hosts = {}
    for host in plan.hosts:
        gateway = str(host.subnet.network_address + 1)
        dev = host_interface(host.label)
        links.append(
            Link(
                (host.label, Iface("ens5", (f"{host.private_ip}/{host.subnet.prefixlen}",))),
                ("vpc", Iface(dev, (f"{gateway}/32",), proxy_arp=True)),
            )
        )
        # The host loads its own firewall as its first boot does (`nft -f /etc/nftables.conf`).
        nodes.append(Node(host.label, (Route("default", "ens5", via=gateway),)))
        vpc_routes.append(Route(f"{host.private_ip}/32", dev))
        interfaces[host.label] = dev
        nat.append((host.public_ip, host.private_ip))
        hosts[host.label] = host.label
    links.append(Link(("vpc", Iface("igw", proxy_arp=True)), ("igw", Iface("vpc", proxy_arp=True))))
    vpc_routes.append(Route("default", "igw"))
    igw_routes.append(Route(str(vpc_net), "vpc"))
    unfiltered = (vpc_dns, *cloudfw.AWS_UNFILTERED)
    nodes.append(Node("vpc", tuple(vpc_routes), forward=True, nft=cloudfw.ruleset(plan, interfaces, unfiltered)))
    nodes.append(
        Node("igw", tuple(igw_routes), forward=True, local=tuple(p for p, _ in nat), nft=_gateway(nat, str(vpc_net)))
    )
    return Topology(prefix, tuple(nodes), tuple(links), places, hosts, "vpc", interfaces, unfiltered)


def _gateway(pairs: list[tuple[str, str]], vpc: str) -> str:
    """The internet gateway: Elastic IPs as 1:1 NAT (also between two hosts' public addresses); only
    an address with an Elastic IP gets out, and the internet reaches private addresses only through one."""
    privates = ", ".join(private for _, private in pairs)
    dnat = "".join(f"\n        ip daddr {public} dnat to {private}" for public, private in pairs)
    snat = "".join(f"\n        ip saddr {private} snat to {public}" for public, private in pairs)
    return (
        "table ip eip {\n"
        "    chain prerouting {\n        type nat hook prerouting priority dstnat; policy accept;"
        f"{dnat}\n    }}\n"
        "    chain postrouting {\n        type nat hook postrouting priority srcnat; policy accept;"
        f"{snat}\n    }}\n"
        "}\n"
        "table inet gateway {\n"
        "    chain forward {\n        type filter hook forward priority filter; policy accept;\n"
        "        ct state established,related accept\n"
        f'        iifname "vpc" ip saddr != {{ {privates} }} drop comment "no Elastic IP, no internet"\n'
        '        iifname != "vpc" ct status dnat accept\n'
        f'        iifname != "vpc" ip daddr {vpc} drop comment "private addresses are not routed from the internet"\n'
        "    }\n"
        "}\n"
    )


def _hcloud(plan: Plan, prefix: str, places: Places) -> Topology:
    net = plan.network
    gateway = str(net.network_address + 1)

    def inside(address: str) -> bool:
        return ipaddress.ip_address(address) in net

    def src(name, addresses):
        return places.ping8[0] if name == "internet" and places.ping8 else addresses[0]

    # The public router is `igw` here too: Hetzner's edge plays the internet gateway's part.
    nodes, links, routed = _attach(_extras(places), inside, "private", "igw", str(net), src)
    public_routes = [Route(f"{a}/32", dev) for a, dev in routed["igw"]]
    private_routes = [Route(f"{a}/32", dev) for a, dev in routed["private"]]
    interfaces, hosts = {}, {}
    for host in plan.hosts:
        dev = host_interface(host.label)
        links.append(
            Link(
                (host.label, Iface("eth0", (f"{host.public_ip}/32",))),
                ("igw", Iface(dev, (f"{HCLOUD_GATEWAY}/32",), proxy_arp=True)),
            )
        )
        links.append(
            Link(
                (host.label, Iface("ens10", (f"{host.private_ip}/32",))),
                ("private", Iface(dev, (f"{gateway}/32",), proxy_arp=True)),
            )
        )
        nodes.append(
            Node(
                host.label,
                (
                    Route(f"{HCLOUD_GATEWAY}/32", "eth0"),
                    Route("default", "eth0", via=HCLOUD_GATEWAY),
                    Route(f"{gateway}/32", "ens10"),
                    Route(str(net), "ens10", via=gateway),
                ),
            )
        )
        public_routes.append(Route(f"{host.public_ip}/32", dev))
        private_routes.append(Route(f"{host.private_ip}/32", dev))
        interfaces[host.label] = dev
        hosts[host.label] = host.label
    unfiltered = cloudfw.HCLOUD_UNFILTERED
    nodes.append(Node("igw", tuple(public_routes), forward=True, nft=cloudfw.ruleset(plan, interfaces, unfiltered)))
    nodes.append(Node("private", tuple(private_routes), forward=True))
    return Topology(prefix, tuple(nodes), tuple(links), places, hosts, "igw", interfaces, unfiltered)
