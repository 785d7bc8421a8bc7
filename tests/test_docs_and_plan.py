"""The README tells the truth: its port tables come from the matrix, and its two commands work."""

import json
import re
from pathlib import Path

from tests.stacks import plan, run
from tools import readme_tables


def test_readme_port_tables_match_the_matrix():
    readme = readme_tables.README.read_text()
    assert readme_tables.START in readme and readme_tables.END in readme
    assert readme_tables.spliced(readme) == readme, "README tables drifted: run `make readme`"


def test_readme_names_the_two_commands_first():
    readme = readme_tables.README.read_text()
    first_block = readme.split("```sh", 1)[1].split("```", 1)[0]
    assert "make plan STACK=prod" in first_block and "make test" in first_block


def test_plan_of_prod_exits_0_and_prints_each_roles_matrix(tmp_path):
    out = tmp_path / "plan.json"
    done = plan("--stack", "prod", "--json", str(out))
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "KumoMTA host ports" in text and "KumoProxy host ports" in text
    assert "Inbound    5000/tcp    KumoMTA hosts (security group)  proxy.yourdomain.com  SOCKS5 proxy listener." in text
    assert "Outbound   25/tcp      proxy.yourdomain.com            0.0.0.0/0             SMTP delivery." in text
    assert "  + mta-eip  (aws:ec2/eip:Eip)  create  [protect, retain on delete]" in text
    assert "Policy pack: 0 mandatory, 0 advisory violation(s)" in text

    document = json.loads(out.read_text())
    assert document["stack"] == "prod" and document["cloud"] == "aws"
    mta_ports = {(line["direction"], line["port"]) for line in document["matrix"]["mta"]}
    assert ("Inbound", "8000/tcp") in mta_ports  # shown as loopback only
    loopback = [line for line in document["matrix"]["mta"] if line["port"] == "8000/tcp"]
    assert loopback[0]["source"] == "Localhost only" and "No firewall rule" in loopback[0]["purpose"]
    assert {r["name"] for r in document["resources"] if r["protect"]} == {"mta-eip", "proxy-eip", "mta-spool"}
    assert document["violations"] == []


def test_two_plans_of_the_same_code_are_identical(tmp_path):
    outputs = []
    for name in ("a.json", "b.json"):
        assert plan("--json", str(tmp_path / name)).returncode == 0
        outputs.append((tmp_path / name).read_text())
    assert outputs[0] == outputs[1]


def test_the_readmes_import_command_names_the_eip_as_the_program_registers_it():
    """README, "What is protected": a retained sending IP is taken into a new stack with `pulumi import <type>
    <name> <id> --parent '<parent>=<urn>'`; only the type, name and parent the program registers adopt it (Pulumi
    docs, `pulumi import`: the resource must match the program's declaration, or the next `up` replaces it)."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    typ, name, parent, component = re.search(
        r"`pulumi import (\S+) (\S+) eipalloc-\.\.\. --parent '(\w+)=<urn of the (\w+)>'`", readme
    ).groups()
    result = run("prod")
    eip = result.by_name(name)
    assert eip.type == typ
    owner = next(r for r in result.registrations if r.urn == eip.parent)
    assert owner.name == parent and owner.type == f"kumomta:index:{component}"
    assert eip.custom and eip.inputs.get("domain") == "vpc"
