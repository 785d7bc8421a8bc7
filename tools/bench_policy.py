"""Throughput of the policy pack over gRPC: N rule resources through Analyze, as the engine sends them.

    python -m tools.bench_policy [--count 10000] [--threads 1]

Prints the wall time and the cost per resource, then one AnalyzeStack over all of them. Not a test:
numbers depend on the machine, so nothing here passes or fails.
"""

import argparse
import time
from concurrent import futures

from tools.policy_run import Pack, Resource

_SG = "aws:ec2/securityGroup:SecurityGroup"
_SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
_FIREWALL = "hcloud:index/firewall:Firewall"


def resources(count: int) -> list[Resource]:
    """A mix of the four ingress forms, one in seven of them opening a guarded port to the world."""
    out = []
    for i in range(count):
        port = 5000 if i % 7 == 0 else 1024 + i % 4000
        source = "0.0.0.0/0" if i % 7 == 0 else f"10.{i % 250}.0.0/16"
        kind = (_SG, _SG_RULE, _INGRESS_RULE, _FIREWALL)[i % 4]
        name = f"r{i}"
        if kind == _SG:
            entry = {"protocol": "tcp", "fromPort": port, "toPort": port, "cidrBlocks": ["10.0.0.0/8", source]}
            props = {"ingress": [entry] * 3, "tags": {"kumomta-role": "proxy"}}
        elif kind == _SG_RULE:
            props = {"type": "ingress", "protocol": "6", "fromPort": port, "toPort": port, "cidrBlocks": [source]}
        elif kind == _INGRESS_RULE:
            props = {"ipProtocol": "tcp", "fromPort": float(port), "toPort": float(port), "cidrIpv4": source}
        else:
            rule = {"direction": "in", "protocol": "tcp", "port": str(port), "sourceIps": [source, "::/0"]}
            props = {"rules": [rule] * 3, "labels": {"kumomta-role": "mta"}}
        out.append(Resource(f"urn:pulumi:bench::kumomta-infra::{kind}::{name}", kind, name, props, props))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1, help="concurrent Analyze calls, as a busy engine makes")
    args = parser.parse_args(argv)

    batch = resources(args.count)
    with Pack(stack="bench") as pack:
        pack.analyze(batch[0])  # warm up imports and the channel
        start = time.perf_counter()
        with futures.ThreadPoolExecutor(args.threads) as pool:
            found = sum(len(v) for v in pool.map(pack.analyze, batch))
        elapsed = time.perf_counter() - start
        print(
            f"Analyze: {args.count} resources, {args.threads} thread(s): {elapsed:.2f} s, "
            f"{elapsed / args.count * 1000:.3f} ms per resource, {args.count / elapsed:.0f}/s, {found} diagnostics"
        )

        start = time.perf_counter()
        stack_found = pack.analyze_stack(batch)
        elapsed = time.perf_counter() - start
        print(f"AnalyzeStack: {args.count} resources in one call: {elapsed:.2f} s, {len(stack_found)} diagnostics")


if __name__ == "__main__":
    main()
