"""Hetzner hosts: what must survive a server replacement (sending IPs, PTRs, spool) and what must not
replace a running server (a new image or bootstrap)."""

import ipaddress

from tests.hcloud.common import ATTACHMENT, PRIMARY_IP, RDNS, SERVER, STACK, VOLUME, host_of, per_host
from tests.stacks import run

FLEET = {"mtaHosts": ["mta1", "mta2", "mta3"], "proxyHosts": ["px1", "px2", "px3", "px4"]}


def test_servers_run_ubuntu_22_04_labelled_protected_and_never_replaced_by_a_new_image():
    result = run(STACK)
    servers = {host_of(reg): reg for reg in result.of_type(SERVER)}
    assert set(servers) == {"mta", "proxy"}
    for label, server in servers.items():
        i = server.inputs
        assert i["name"] == f"{label}.yourdomain.com"
        assert i["image"] == "ubuntu-22.04"
        assert i["labels"] == {"kumomta-role": label, "kumomta-stack": STACK}
        assert i["deleteProtection"] is True and i["rebuildProtection"] is True
        assert i["backups"] is False  # they would copy the secrets on the root disk
        assert {"image", "userData"} <= set(server.ignore_changes)
        assert server.delete_before_replace  # its primary IP and name serve one server at a time


def test_protection_follows_config_but_the_reputation_stays_protected():
    result = run(STACK, hcloud={"deleteProtection": False})
    for server in result.of_type(SERVER):
        assert server.inputs["deleteProtection"] is False and server.inputs["rebuildProtection"] is False
    assert all(reg.protect and reg.retain_on_delete for reg in result.of_type(PRIMARY_IP) + result.of_type(VOLUME))


def test_each_host_sends_from_its_own_protected_primary_ip_linked_at_creation():
    result = run(STACK)
    ips = per_host(result, PRIMARY_IP)
    for server in result.of_type(SERVER):
        (ip,) = ips[host_of(server)]
        assert ip.protect and ip.retain_on_delete
        assert ip.inputs["autoDelete"] is False and ip.inputs["deleteProtection"] is True
        assert (ip.inputs["type"], ip.inputs["assigneeType"]) == ("ipv4", "server")
        (public,) = server.inputs["publicNets"]
        assert int(public["ipv4"]) == int(ip.id)
        assert public["ipv6Enabled"] is False  # IPv6 only with `ipv6: true`
        assert result.outputs["hosts"][host_of(server)]["publicIp"] == ip.state["ipAddress"]


def test_the_ptr_of_each_sending_ip_is_the_hosts_fqdn():
    result = run(STACK, ipv6=True)
    ips = {(host_of(ip), ip.inputs["type"]): ip for ip in result.of_type(PRIMARY_IP)}
    ptrs = per_host(result, RDNS)
    assert set(ptrs) == {"mta", "proxy"}
    for label, records in ptrs.items():
        by_ip = {int(r.inputs["primaryIpId"]): r.inputs for r in records}
        v4, v6 = ips[(label, "ipv4")], ips[(label, "ipv6")]
        assert by_ip == {
            int(v4.id): {
                "primaryIpId": int(v4.id),
                "ipAddress": v4.state["ipAddress"],
                "dnsPtr": f"{label}.yourdomain.com",
            },
            int(v6.id): {
                "primaryIpId": int(v6.id),
                "ipAddress": str(ipaddress.ip_network(v6.state["ipNetwork"])[1]),
                "dnsPtr": f"{label}.yourdomain.com",
            },
        }
        assert all(not r.protect for r in records)


def test_the_mta_spool_is_a_protected_volume_attached_outside_the_protected_parent():
    result = run(STACK)
    (volume,) = result.of_type(VOLUME)
    (attachment,) = result.of_type(ATTACHMENT)
    server = result.by_name("mta-server")
    assert host_of(volume) == "mta"
    assert volume.protect and volume.retain_on_delete
    assert volume.inputs["deleteProtection"] is True
    assert (volume.inputs["size"], volume.inputs["location"]) == (50, "fsn1")
    # Protect is inherited from the parent: the attachment must be free to go with a replaced server.
    assert attachment.parent == result.by_name("mta").urn and not attachment.protect
    assert (int(attachment.inputs["volumeId"]), int(attachment.inputs["serverId"])) == (int(volume.id), int(server.id))
    assert attachment.inputs["automount"] is False


def test_a_fleet_of_three_mtas_and_four_proxies_shares_one_private_network():
    result = run(STACK, **FLEET)
    hosts = result.outputs["hosts"]
    assert sorted(hosts) == sorted(FLEET["mtaHosts"] + FLEET["proxyHosts"])
    assert len(result.of_type(PRIMARY_IP)) == len(result.of_type(RDNS)) == 7
    assert {host_of(v) for v in result.of_type(VOLUME)} == set(FLEET["mtaHosts"])
    subnets = {"mta": ipaddress.ip_network("10.43.1.0/24"), "proxy": ipaddress.ip_network("10.43.2.0/24")}
    network_ids = set()
    for server in result.of_type(SERVER):
        role = server.inputs["labels"]["kumomta-role"]
        (attachment,) = server.inputs["networks"]
        network_id, _, ip_range = attachment["subnetId"].partition("-")
        network_ids.add(network_id)
        assert ipaddress.ip_network(ip_range) == subnets[role]
        assert ipaddress.ip_address(hosts[host_of(server)]["privateIp"]) in subnets[role]
    assert len(network_ids) == 1
    assert len({h["publicIp"] for h in hosts.values()}) == 7
