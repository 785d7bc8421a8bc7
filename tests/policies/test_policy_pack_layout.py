"""The pack stands alone: it imports only the standard library, the policy SDK and itself, so the
engine can run it from its own virtualenv, and it never reads the port matrix of `components/`."""

import ast
import sys
from pathlib import Path

import yaml

POLICIES = Path(__file__).resolve().parents[2] / "policies"
ALLOWED = set(sys.stdlib_module_names) | {"pulumi_policy", "kumoguard"}


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_the_pack_imports_nothing_outside_itself_the_sdk_and_the_standard_library():
    files = sorted(POLICIES.rglob("*.py"))
    outside = {str(f.relative_to(POLICIES)): imported_modules(f) - ALLOWED for f in files}
    assert len(files) >= 7
    assert {f: mods for f, mods in outside.items() if mods} == {}


def calls(path: Path) -> list[ast.Call]:
    body = ast.parse(path.read_text()).body
    return [node.value for node in body if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)]


def test_the_entry_point_keeps_secret_marks_then_only_builds_the_pack():
    """keep_marks() must come first: the SDK reads properties through the function it replaces."""
    body = ast.parse((POLICIES / "__main__.py").read_text()).body
    logic = [node for node in body if not isinstance(node, ast.Import | ast.ImportFrom | ast.Expr)]
    names = [ast.unparse(call.func) for call in calls(POLICIES / "__main__.py")]
    assert (logic, names) == ([], ["secrets.keep_marks", "PolicyPack"])


def test_pulumi_policy_yaml_names_a_python_runtime_with_its_own_virtualenv_and_a_version():
    project = yaml.safe_load((POLICIES / "PulumiPolicy.yaml").read_text())
    assert project["runtime"] == {"name": "python", "options": {"virtualenv": "venv"}}
    assert project["version"]
    assert "pulumi-policy" in (POLICIES / "requirements.txt").read_text()


# The keys of PulumiPolicy.yaml: `PolicyPackProject` in pulumi/pulumi sdk/go/common/workspace/project.go
# (runtime, version, main, description, author, website, license) and the reference page
# https://www.pulumi.com/docs/discovery-governance/reference/policy-project-file/. There is no `name`: the
# pack's name is the one its PolicyPack is built with.
POLICY_PROJECT_KEYS = {"runtime", "version", "main", "description", "author", "website", "license"}


def test_pulumi_policy_yaml_has_only_keys_of_the_policy_project_schema():
    project = yaml.safe_load((POLICIES / "PulumiPolicy.yaml").read_text())
    assert set(project) <= POLICY_PROJECT_KEYS
    assert "name" not in project


def test_the_pack_name_comes_from_the_entry_point():
    (call,) = [call for call in calls(POLICIES / "__main__.py") if ast.unparse(call.func) == "PolicyPack"]
    assert {k.arg: k.value.value for k in call.keywords if isinstance(k.value, ast.Constant)}["name"] == "kumoguard"
