"""What `make plan` and `make verify` import is installed by what `make venv` installs (requirements.txt and
policies/requirements.txt, with their dependencies), not only by the test requirements that `make test` adds.

A dev-only package imported by an operator tool passes every test and fails on the operator's machine: `make
verify` once imported dnspython, which only dkimpy (a test requirement) had brought in.
"""

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What runs from the runtime virtualenv: the program, plan, verify, readme (tools/lab, the benches and the
# tests run from the test one, tools/actionlint is a built binary).
RUNTIME = [
    ROOT / "__main__.py",
    *ROOT.glob("components/**/*.py"),
    *ROOT.glob("tools/*.py"),
    *ROOT.glob("tools/verify/*.py"),
]
DEV_ONLY_TOOLS = {"bench_plan.py", "bench_policy.py"}
LOCAL = {"components", "tools", "policies", "tests"}


def _requirements(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(_normal(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0]))
    return names


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(names: set[str]) -> set[str]:
    """The distributions these pull in, following each one's unconditional requirements."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for requirement in metadata.requires(name) or []:
            if "extra ==" not in requirement:
                todo.append(_normal(re.split(r"[<>=!~\[; (]", requirement, maxsplit=1)[0]))
    return seen


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_every_package_an_operator_tool_imports_is_a_runtime_requirement():
    installed = _closure(_requirements(ROOT / "requirements.txt") | _requirements(ROOT / "policies/requirements.txt"))
    providers = metadata.packages_distributions()
    missing = {}
    for path in RUNTIME:
        if path.name in DEV_ONLY_TOOLS:
            continue
        for module in _imports(path) - LOCAL - set(sys.stdlib_module_names):
            dists = {_normal(d) for d in providers.get(module, [module])}
            if not dists & installed:
                missing.setdefault(module, []).append(str(path.relative_to(ROOT)))
    assert missing == {}
