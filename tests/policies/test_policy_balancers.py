"""Load balancers that publish a guarded port, judged at stack level where scheme and targets show.

Property names, from the pulumi-aws and pulumi-hcloud SDKs (pulumi_aws/lb/*.py, pulumi_hcloud/*.py):
- aws `lb.LoadBalancer`: internal (optional, default false: internet-facing), securityGroups
  https://www.pulumi.com/registry/packages/aws/api-docs/lb/loadbalancer/
- aws `lb.Listener`: loadBalancerArn, port, protocol, defaultActions[].targetGroupArn and
  defaultActions[].forward.targetGroups[].arn; `lb.ListenerRule`: listenerArn, actions[]
  https://www.pulumi.com/registry/packages/aws/api-docs/lb/listener/
- aws `lb.TargetGroup`: port, protocol, targetType; `lb.TargetGroupAttachment`: targetGroupArn, targetId, port
  (which overrides the group's port) https://www.pulumi.com/registry/packages/aws/api-docs/lb/targetgroupattachment/
- hcloud `LoadBalancerService`: loadBalancerId, protocol (tcp, http, https), listenPort, destinationPort
  ("required if protocol is tcp") https://www.pulumi.com/registry/packages/hcloud/api-docs/loadbalancerservice/
- hcloud `LoadBalancerTarget`: loadBalancerId, type, serverId, labelSelector; `LoadBalancerNetwork`:
  loadBalancerId, enablePublicInterface (default true)
  https://www.pulumi.com/registry/packages/hcloud/api-docs/loadbalancernetwork/
"""

import pytest

from tests.policies.kit import (
    INGRESS_RULE,
    SG,
    UNKNOWN,
    assert_no_violation,
    assert_violation,
    aws_stack,
    hcloud_stack,
    node,
    stack,
    violations,
)

POLICY = "no-public-guarded-ports"
LB = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
LISTENER_RULE = "aws:lb/listenerRule:ListenerRule"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
ATTACHMENT = "aws:lb/targetGroupAttachment:TargetGroupAttachment"
HC_LB = "hcloud:index/loadBalancer:LoadBalancer"
HC_SERVICE = "hcloud:index/loadBalancerService:LoadBalancerService"
HC_TARGET = "hcloud:index/loadBalancerTarget:LoadBalancerTarget"
HC_NETWORK = "hcloud:index/loadBalancerNetwork:LoadBalancerNetwork"


def nlb(
    port: int = 5000,
    target_port: int | None = 5000,
    attach_port: int | None = None,
    target: str = "proxy-i",
    lb: dict | None = None,
    listener: dict | None = None,
    types: tuple = (LB, LISTENER, TARGET_GROUP, ATTACHMENT),
) -> list:
    """An NLB forwarding `port` to a target group on `target_port`, attached to the proxy instance."""
    lb_type, listener_type, group_type, attachment_type = types
    attachment = {"port": attach_port} if attach_port is not None else {}
    group = {"port": target_port} if target_port is not None else {}
    return [
        node(lb_type, "nlb", id="arn:lb", arn="arn:lb", loadBalancerType="network", **(lb or {})),
        node(group_type, "proxy-tg", id="arn:tg", arn="arn:tg", protocol="TCP", **group),
        node(
            listener_type,
            "nlb-listener",
            loadBalancerArn="arn:lb",
            port=port,
            protocol="TCP",
            **(listener or {"defaultActions": [{"type": "forward", "targetGroupArn": "arn:tg"}]}),
        ),
        node(attachment_type, "proxy-att", targetGroupArn="arn:tg", targetId=target, **attachment),
    ]


def test_an_internet_facing_nlb_publishing_the_proxys_5000_is_caught_though_the_proxy_group_is_tight():
    (message,) = violations(POLICY, stack(*aws_stack(*nlb())))
    assert message == (
        "nlb (an internet-facing load balancer; targets: proxy-instance) nlb-listener listener 5000 -> proxy-tg "
        "(tcp 5000 from internet-facing, no securityGroups = 0.0.0.0/0): opens 5000/tcp (the KumoProxy SOCKS5 "
        "listener) to public source 0.0.0.0/0. Fix: make nlb private (internal=True, or security groups that admit "
        "only private sources), or stop forwarding to 5000/tcp."
    )


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"port": 443, "target_port": 80, "attach_port": 5000}, "5000/tcp (the KumoProxy"),  # attachment port wins
        ({"port": 80, "target_port": 8000, "target": "mta-i"}, "8000/tcp (the KumoMTA HTTP"),
        ({"port": 9101, "target_port": 9101}, "9101/tcp (a metrics port)"),
        ({"port": 2222, "target_port": 22}, "22/tcp (SSH)"),
        ({"lb": {"internal": False}}, "5000/tcp"),
        ({"lb": {"internal": UNKNOWN}}, "internal unknown in preview, read as everything"),
        ({"target_port": None}, "every port"),  # no port known: fail closed
        (
            {"listener": {"defaultActions": [{"type": "forward", "forward": {"targetGroups": [{"arn": "arn:tg"}]}}]}},
            "5000/tcp",
        ),
        (
            {"listener": {"defaultActions": [{"type": "forward", "targetGroupArn": "arn:elsewhere"}]}},
            "target group arn:elsewhere, not in this stack (any port)",
        ),
    ],
)
def test_every_way_of_reaching_a_guarded_port_through_an_aws_lb_is_caught(kwargs, named):
    assert_violation(POLICY, stack(*aws_stack(*nlb(**kwargs))), named)


def test_the_alb_namespace_is_the_same_resource():
    alb = (
        "aws:alb/loadBalancer:LoadBalancer",
        "aws:alb/listener:Listener",
        "aws:alb/targetGroup:TargetGroup",
        "aws:alb/targetGroupAttachment:TargetGroupAttachment",
    )
    assert_violation(POLICY, stack(*aws_stack(*nlb(types=alb))), "5000/tcp")


def test_a_listener_rule_forwarding_to_the_proxy_is_caught():
    nodes = nlb(listener={"defaultActions": [{"type": "fixed-response"}]})
    rule = node(
        LISTENER_RULE, "to-proxy", listenerArn="arn:listener", actions=[{"type": "forward", "targetGroupArn": "arn:tg"}]
    )
    nodes[2].props.update(id="arn:listener", arn="arn:listener")
    assert_no_violation(POLICY, stack(*aws_stack(*nodes)))
    assert_violation(POLICY, stack(*aws_stack(*nodes, rule)), "5000/tcp")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lb": {"internal": True}},
        {"port": 443, "target_port": 443, "target": "mta-i"},
        {"target_port": 5001},
    ],
)
def test_internal_or_unguarded_balancers_pass(kwargs):
    assert_no_violation(POLICY, stack(*aws_stack(*nlb(**kwargs))))


def test_udp_and_lambda_targets_are_not_the_tcp_services():
    udp = nlb()
    udp[1].props["protocol"] = "UDP"
    assert_no_violation(POLICY, stack(*aws_stack(*udp)))
    lambda_ = nlb(target_port=None)
    lambda_[1].props["targetType"] = "lambda"
    assert_no_violation(POLICY, stack(*aws_stack(*lambda_)))


def lb_group(source: dict, port: int = 5000):
    return [
        node(SG, "lb-sg", id="lb-sg"),
        node(INGRESS_RULE, "lb-in", securityGroupId="lb-sg", ipProtocol="tcp", fromPort=port, toPort=port, **source),
    ]


def test_an_alb_with_its_own_security_group_is_judged_by_what_that_group_admits():
    tight = stack(*aws_stack(*nlb(lb={"securityGroups": ["lb-sg"]}), *lb_group({"cidrIpv4": "10.42.0.0/16"})))
    assert_no_violation(POLICY, tight)
    open_ = stack(*aws_stack(*nlb(lb={"securityGroups": ["lb-sg"]}), *lb_group({"cidrIpv4": "0.0.0.0/0"})))
    assert_violation(POLICY, open_, "from lb-sg rule cidrIpv4 = 0.0.0.0/0")
    elsewhere = stack(*aws_stack(*nlb(lb={"securityGroups": ["sg-0elsewhere"]})))
    assert_violation(POLICY, elsewhere, "securityGroups = sg-0elsewhere, which this stack does not show")
    other_port = stack(*aws_stack(*nlb(lb={"securityGroups": ["lb-sg"]}), *lb_group({"cidrIpv4": "0.0.0.0/0"}, 443)))
    assert_no_violation(POLICY, other_port)


def test_a_prefix_list_on_the_load_balancers_group_fails_closed_too():
    nodes = aws_stack(*nlb(lb={"securityGroups": ["lb-sg"]}), *lb_group({"prefixListId": "pl-0aws"}))
    assert_violation(POLICY, stack(*nodes), "from prefix list pl-0aws")


# Hetzner


def hc_lb(destination: int | None = 5000, listen: int = 5000, protocol: str = "tcp", *extra) -> list:
    service = {"destinationPort": destination} if destination is not None else {}
    return [
        node(HC_LB, "lb", id="301", labels={}),
        node(HC_SERVICE, "lb-svc", loadBalancerId="301", protocol=protocol, listenPort=listen, **service),
        node(HC_TARGET, "lb-proxies", loadBalancerId=301, type="label_selector", labelSelector="kumomta-role=proxy"),
        *extra,
    ]


def test_a_hetzner_load_balancer_service_to_5000_is_caught():
    (message,) = violations(POLICY, stack(*hcloud_stack(*hc_lb())))
    assert message.startswith(
        "lb (an internet-facing load balancer; targets: proxy) lb-svc service 5000 -> 5000 (tcp 5000 from public "
        "interface = 0.0.0.0/0): opens 5000/tcp (the KumoProxy SOCKS5 listener)"
    )
    assert message.endswith(
        "Fix: make lb private (a LoadBalancerNetwork with enablePublicInterface=False), or stop forwarding to 5000/tcp."
    )


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ((5000, 443), "service 443 -> 5000"),
        ((None, 5000), "service 5000 -> 5000"),  # tcp without destinationPort: the listen port
        ((8000, 80, "http"), "8000/tcp (the KumoMTA HTTP"),
        ((9101, 9101), "9101/tcp (a metrics port)"),
    ],
)
def test_hetzner_services_are_judged_by_the_port_they_reach(args, named):
    assert_violation(POLICY, stack(*hcloud_stack(*hc_lb(*args))), named)


@pytest.mark.parametrize("args", [(443, 5000), (None, 443), (None, 5000, "http"), (None, 5000, "https")])
def test_hetzner_services_reaching_other_ports_pass(args):
    assert_no_violation(POLICY, stack(*hcloud_stack(*hc_lb(*args))))


def test_a_hetzner_load_balancer_without_its_public_interface_passes():
    private = node(HC_NETWORK, "lb-net", loadBalancerId=301, networkId=1, enablePublicInterface=False)
    assert_no_violation(POLICY, stack(*hcloud_stack(*hc_lb(5000, 5000, "tcp", private))))
    public = node(HC_NETWORK, "lb-net", loadBalancerId=301, networkId=1, enablePublicInterface=True)
    assert_violation(POLICY, stack(*hcloud_stack(*hc_lb(5000, 5000, "tcp", public))), "5000/tcp")


def test_hetzner_targets_are_named_inline_or_by_server():
    nodes = hc_lb()
    nodes[0].props["targets"] = [{"type": "server", "serverId": 1}]
    nodes[2] = node(HC_TARGET, "t", loadBalancerId=301, type="server", serverId=2)
    assert_violation(POLICY, stack(*hcloud_stack(*nodes)), "targets: mta, proxy")


def test_a_listener_of_a_load_balancer_outside_the_stack_counts_as_internet_facing():
    nodes = [n for n in nlb() if n.type != LB]
    assert_violation(POLICY, stack(*aws_stack(*nodes)), "load balancer arn:lb (not in this stack)", "5000/tcp")
