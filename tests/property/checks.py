"""The invariant of issue 10, "One property over both", as plain functions the property test and the corpus share.

A stack config goes through the documented paths: `settings_of` (what `make plan` validates first), then the
program under Pulumi's mocks. Either both refuse it with the same `kumomta:<key>: <reason>` lines, one per bad
key, each naming a key of the config (or a required one), or the program plans it, and then what every host
gets is handed to the real tools: its first-boot user data to `cloud-init schema`, its bundle's nftables file to
`nft -c`, Nginx site to `nginx -t`, Lua policies to `luac -p`, chrony.conf to `chronyd -p`, and every planned
resource to the policy pack, which must find no MANDATORY violation. Anything else (a traceback, a line in
another shape, a hostile value planned) fails the caller.
"""

import asyncio
import base64
import contextlib
import functools
import gc
import gzip
import json
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import pulumi
import yaml
from pulumi.runtime.settings import SETTINGS

from components.bootstrap import layout, scripts
from components.settings import ConfigError
from tests.bootstrap.nginx_harness import free_port, nginx_conf
from tests.property.strategies import REQUIRED, Case
from tools import policy_run
from tools.mockrun import Run, StackFileError, engine_config, run_program, settings_of, stack_config

HERE = Path(__file__).resolve().parent
# The pack stands alone: its modules are imported as the engine runs them, from policies/ (tests/policies too).
if str(policy_run.POLICIES) not in sys.path:
    sys.path.insert(0, str(policy_run.POLICIES))
from kumoguard.ports import DEFAULT_METRICS_PORTS
from kumoguard.ports import stack_metrics_settings as metrics_settings

STACK = "property"
# `kumomta:<key>: <reason>` (a key the stack file spells `kumomta:` alone has no name to give), or the AWS
# provider's region, `aws:region: <reason>`.
LINE = re.compile(r"(?:kumomta(?::(?P<key>.*?))?|(?P<region>aws:region)): (?P<reason>.+)")
# The one line the program itself adds (components/aws.py), for an AWS provider without a region.
REGION_LINE = "aws:region: is required; the hosts read their configuration from SSM there"
SECRET_SIG = "4dabf18193072939515e22adb298388d"  # how the engine marks a secret value (pulumi/sdk rpc.py)

# What each cloud takes, with its source. EC2 RunInstances: "User data is limited to 16 KB, in raw form, before it
# is base64-encoded" (the raw form here is the gzip); Hetzner Cloud API, Create a Server: user_data "is limited to
# 32KiB" (the API field, here base64 of the gzip); SSM PutParameter: "Advanced parameters have a value limit of
# 8 KB" (Intelligent-Tiering picks Advanced above 4 KB).
AWS_USER_DATA, HCLOUD_USER_DATA, SSM_VALUE = 16 * 1024, 32 * 1024, 8 * 1024

TOOL_NAMES = ("cloud-init schema", "nft -c", "luac -p", "chronyd -p", "nginx -t")


class Broken(AssertionError):
    """The invariant does not hold for this config."""


class Traceback(Broken):
    """A documented path ended in an exception other than its one-line error."""

    def __init__(self, where: str, err: BaseException):
        text = "".join(traceback.format_exception(err))
        super().__init__(f"a traceback from {where}: {type(err).__name__}: {err}\n{text[-4000:]}")


@dataclass
class Verdict:
    refused: list[str] | None = None  # the lines, when settings or the program refused the config
    run: Run | None = None
    tools: dict[str, int] = field(default_factory=dict)  # files each tool accepted


def judge(case: Case, tools: "Tools") -> Verdict:
    """Run `case` through settings and the program; check the refusal or, when planned, everything rendered."""
    values = case.values
    failure = None  # raised outside the `except`, so it holds no reference to the mock engine's frames
    try:
        settings_of(values)
        settings_text = None
    except ConfigError as err:
        settings_text = str(err)
    except Exception as err:  # noqa: BLE001 - anything else is the traceback the invariant forbids
        failure = Traceback("settings_of", err)
    if failure is not None:
        raise failure
    try:
        run = run_program(STACK, values)
        program_text = None
    except pulumi.RunError as err:
        run, program_text = None, str(err)
    except Exception as err:  # noqa: BLE001
        failure = Traceback("the program under mocks", err)
    if failure is not None:
        _drain()
        raise failure
    if settings_text is not None:
        if program_text != settings_text:
            raise Broken(f"settings refused with {settings_text!r} but the program said {program_text!r}")
        lines = settings_text.splitlines()
        _check_lines(case, lines)
        return Verdict(refused=lines)
    if program_text is not None:
        if program_text != REGION_LINE:
            raise Broken(f"settings accepted but the program refused with {program_text!r}")
        return Verdict(refused=[program_text])
    if case.must_refuse:
        hostile = [f"{e.key}: {e.what}" for e in case.edits if e.must]
        hostile += ["SSH or the proxy metrics open to public address space"] if case.exposure else []
        raise Broken(f"planned a config it must refuse: {'; '.join(hostile)}")
    verdict = Verdict(run=run)
    verdict.tools = check_rendered(run, case.cloud, tools)
    mandatory = [v for v in tools.analyze(run, values) if v.level == "mandatory"]
    if mandatory:
        raise Broken("the policy pack found MANDATORY violations:\n" + "\n".join(map(str, mandatory)))
    return verdict


def _drain() -> None:
    """A program that failed leaves the mock engine's tasks in the event loop, where they would fail the next run,
    and futures whose exception nobody read. Collected later, inside whatever runs then (pytest parsing a source
    file for a traceback, say), their finalizers log, and CPython 3.11.7's AST constructor fails on that: so the
    tasks run to their end here and the futures are collected, their "exception was never retrieved" left unsaid.
    """
    loop = asyncio.get_event_loop()
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    if pending:
        loop.run_until_complete(asyncio.wait(pending, timeout=10))
    handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, _context: None)
    try:
        gc.collect()
    finally:
        loop.set_exception_handler(handler)
    # What Pulumi's own `pulumi.runtime.test` clears before a mocked run: the failed run's exception stays in the
    # RPC manager otherwise, and the next run reports it as its own.
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()


def _check_lines(case: Case, lines: list[str]) -> None:
    """One `kumomta:<key>: <reason>` line per bad key, each naming a key of the config or a required one."""
    names = {k.partition(":")[2] for k in case.values if k.startswith("kumomta:")}
    cloud = case.values.get("kumomta:cloud")
    # Required keys, and the stack's own cloud section, which is there with its documented defaults.
    required = (
        REQUIRED[cloud] | {cloud}
        if isinstance(cloud, str) and cloud in REQUIRED
        else REQUIRED["aws"] | REQUIRED["hcloud"]
    )
    keys = []
    if not lines:
        raise Broken("refused with no line at all")
    for line in lines:
        match = LINE.fullmatch(line)
        if match is None or "Traceback" in line:
            raise Broken(f"not a `kumomta:<key>: <reason>` line: {line!r}")
        key = match["region"] or match["key"] or ""
        root = re.split(r"[.\[]", key, maxsplit=1)[0]
        if key not in names and root not in names and root not in required and not match["region"]:
            raise Broken(f"{line!r} names {key!r}, which is neither in the config nor required")
        keys.append(key)
    if len(set(keys)) != len(keys):
        raise Broken(f"a key named on more than one line: {lines}")
    roots = {re.split(r"[.\[]", k, maxsplit=1)[0] for k in keys} | set(keys)
    for edit in case.edits:
        if edit.must and edit.local and not edit.names & roots:
            raise Broken(f"the refusal does not name {sorted(edit.names)} for {edit.key}: {edit.what}: {lines}")


FILE_LINE = re.compile(r"Pulumi\.file\.yaml(:\d+:\d+)?: \S.*")


def read_stack_file(root: Path, text: str) -> list[str] | None:
    """What `make plan` does first (tools/plan.py): read Pulumi.<stack>.yaml, then settings. Returns the error
    lines (None when it reads), which must be one line from the file reader or `kumomta:<key>` lines; a
    traceback is what the plan would print instead."""
    (root / "Pulumi.file.yaml").write_text(text, encoding="utf-8")
    failure = None
    try:
        settings_of(stack_config("file", root=root))
        return None
    except StackFileError as err:
        # tools/stackfile.py: one line per problem, `Pulumi.<stack>.yaml: <what>` or with `:<line>:<column>`.
        lines = str(err).splitlines()
        if not lines or not all(FILE_LINE.fullmatch(line) for line in lines) or len(set(lines)) != len(lines):
            failure = Broken(f"the stack file's error is not one `Pulumi.<stack>.yaml: ...` line a problem: {lines}")
    except ConfigError as err:
        lines = str(err).splitlines()
        bad = [line for line in lines if not LINE.fullmatch(line)]
        if bad:
            failure = Broken(f"not `kumomta:<key>: <reason>` lines: {bad}")
    except Exception as err:  # noqa: BLE001 - the traceback the invariant forbids
        failure = Traceback("reading the stack file", err)
    if failure is not None:
        raise failure
    return lines


# --- what the hosts get -------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    return value["value"] if isinstance(value, dict) and SECRET_SIG in value else value


def hosts(run: Run, cloud: str) -> dict[str, tuple[str, str, dict]]:
    """Per host label: (role, first-boot cloud-config, bundle document), read from the registered resources."""
    out = {}
    for reg in run.registrations:
        if reg.type not in ("kumomta:index:MtaHost", "kumomta:index:ProxyHost"):
            continue
        label = reg.name
        role = "mta" if reg.type.endswith("MtaHost") else "proxy"
        if cloud == "aws":
            packed = run.by_name(f"{label}-instance").inputs["userDataBase64"]
            raw = base64.b64decode(packed, validate=True)
            if len(raw) > AWS_USER_DATA:
                raise Broken(f"{label}: user data is {len(raw)} bytes packed; EC2 takes {AWS_USER_DATA}")
            value = run.by_name(f"{label}-bundle").inputs["insecureValue"]
            if len(value.encode()) > SSM_VALUE:
                raise Broken(f"{label}: the bundle parameter holds {len(value.encode())} bytes; SSM takes {SSM_VALUE}")
            document = gzip.decompress(base64.b64decode(value[3:])) if value.startswith("gz:") else value
        else:
            packed = _plain(run.by_name(f"{label}-server").inputs["userData"])
            if len(packed) > HCLOUD_USER_DATA:
                raise Broken(f"{label}: user data is {len(packed)} characters; Hetzner takes {HCLOUD_USER_DATA}")
            raw = base64.b64decode(packed, validate=True)
            document = _plain(run.by_name(f"{label}-sync").inputs["stdin"])
        out[label] = (role, gzip.decompress(raw).decode(), json.loads(document))
    return out


def bearer_map(run: Run, cloud: str, bundles: list[dict]) -> str:
    """The token map Nginx includes: its own SSM SecureString on AWS, a file of the push on Hetzner."""
    if cloud == "aws":
        return _plain(run.by_name("bearer-map").inputs["value"])
    (content,) = {f["content"] for b in bundles for f in b["files"] if f["path"] == layout.TOKEN_MAP}
    return content


def check_rendered(run: Run, cloud: str, tools: "Tools") -> dict[str, int]:
    """Every host's user data and bundle through the real tools; returns how many files each accepted."""
    found = hosts(run, cloud)
    if not found:
        raise Broken("the program planned no host")
    user_data, firewalls, luas, chronys, sites = {}, {}, {}, {}, {}
    for label, (role, cloud_config, bundle) in found.items():
        if bundle["host"] != label or bundle["role"] != role:
            raise Broken(f"{label}: the bundle is for {bundle['host']} ({bundle['role']})")
        user_data[label] = cloud_config
        files = {f["path"]: f.get("content") for f in bundle["files"]}
        firewalls[f"{label} bundle"] = files[layout.FIREWALL]
        firewalls[f"{label} first boot"] = _first_boot_file(cloud_config, layout.FIREWALL)
        chronys[files[layout.CHRONY_CONF]] = f"{label} bundle"
        chronys.setdefault(_first_boot_file(cloud_config, layout.CHRONY_CONF), f"{label} first boot")
        if role == "mta":
            luas[files[layout.POLICY]] = f"{label} init.lua"
            sites[label] = files[layout.NGINX_SITE]
        else:
            luas[files[layout.PROXY_POLICY]] = f"{label} proxy.lua"
    token_map = bearer_map(run, cloud, [b for _, _, b in found.values()])
    with tempfile.TemporaryDirectory(prefix="kumomta-property-") as tmp:
        root = Path(tmp)
        tools.cloud_init(root, user_data)
        nft(root, firewalls)
        luac(root, {name: text for text, name in luas.items()})
        chronyd(root, {name: text for text, name in chronys.items()})
        nginx(root, sites, token_map)
    return dict(zip(TOOL_NAMES, map(len, (user_data, firewalls, luas, chronys, sites)), strict=True))


def _first_boot_file(cloud_config: str, path: str) -> str:
    (content,) = [f["content"] for f in yaml.safe_load(cloud_config)["write_files"] if f["path"] == path]
    return content


def _write(root: Path, name: str, text: str) -> Path:
    path = root / re.sub(r"[^A-Za-z0-9.-]", "_", name)
    path.write_text(text)
    return path


def nft(root: Path, rulesets: dict[str, str]) -> None:
    """`nft -c -f` once over every ruleset (each file an `include`, so an error names its host)."""
    names = {}
    includes = []
    for name, text in rulesets.items():
        path = _write(root, f"{name}.nft", text)
        names[path.name] = name
        includes.append(f'include "{path}"')
    top = _write(root, "all.nft", "\n".join(includes) + "\n")
    done = subprocess.run(
        [*nft_command(), "-c", "-f", str(top)], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise Broken(f"nft -c refused a host firewall:\n{done.stderr[-3000:]}")


def luac(root: Path, policies: dict[str, str]) -> None:
    """`luac5.4 -p`, one file a call (5.4.4 double-frees given several)."""
    for name, text in policies.items():
        path = _write(root, f"{name}.lua", text)
        done = subprocess.run(["luac5.4", "-p", str(path)], capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0:
            raise Broken(f"luac -p refused {name}: {done.stderr}")


def chronyd(root: Path, configs: dict[str, str]) -> None:
    """`chronyd -p -f`: parses and prints the configuration, failing on any line it does not take (chronyd(8))."""
    for name, text in configs.items():
        path = _write(root, f"{name}.chrony.conf", text)
        done = subprocess.run(
            ["chronyd", "-p", "-f", str(path)], capture_output=True, text=True, timeout=30, check=False
        )
        if done.returncode != 0:
            raise Broken(f"chronyd -p refused the chrony.conf of {name}: {done.stderr}")


# The bundle's Nginx site names these host paths and ports; the test puts them under its own directory and on
# free loopback ports, as tests/bootstrap/nginx_harness.py does, so `nginx -t` runs unprivileged.
_LISTEN = re.compile(r"listen (\[::\]:)?(80|443)( ssl)? default_server;")


def nginx(root: Path, sites: dict[str, str], token_map: str) -> None:
    """`nginx -t` on each MTA's site as its bundle has it, with the self-signed placeholder its first boot makes."""
    if not sites:
        return
    (root / "acme").mkdir()
    (root / "bearer.map").write_text(token_map)
    # The placeholder for the longest name: a CN over 64 characters is what `openssl req -subj` refuses.
    longest = max(sites, key=lambda label: len(_server_name(sites[label])))
    placeholder = root / "sbin" / "kumomta-tls-placeholder"
    placeholder.parent.mkdir()
    placeholder.write_text(scripts.script("kumomta-tls-placeholder"))
    placeholder.chmod(0o755)
    made = subprocess.run(
        [str(placeholder), str(root / "tls"), _server_name(sites[longest])],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if made.returncode != 0:
        raise Broken(f"{longest}: the first boot's placeholder certificate fails: {made.stderr}")
    for label, text in sites.items():
        local = _on_free_ports(text)
        for host_path, here in ((layout.TLS_DIR, root / "tls"), (layout.TOKEN_MAP, root / "bearer.map"),
                                (layout.ACME_ROOT, root / "acme")):  # fmt: skip
            if host_path not in local:
                raise Broken(f"{label}: the site no longer names {host_path}; update this harness")
            local = local.replace(host_path, str(here))
        if _LISTEN.search(local) or local.count("127.0.0.1:") < 2:
            raise Broken(f"{label}: the site's listen lines changed shape; update this harness")
        site = _write(root, f"{label}.site.conf", local)
        conf = nginx_conf(root, site)
        done = subprocess.run(
            ["nginx", "-p", str(root), "-e", str(root / "error.log"), "-c", str(conf), "-t"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise Broken(f"nginx -t refused the site of {label}: {done.stderr}")


def _on_free_ports(site: str) -> str:
    """The site's :80 and :443 listeners (and their IPv6 twins) moved to free loopback ports."""
    ports = {"80": free_port(), "443": free_port()}
    return _LISTEN.sub(
        lambda m: f"listen {'[::1]' if m[1] else '127.0.0.1'}:{ports[m[2]]}{m[3] or ''} default_server;", site
    )


def _server_name(site: str) -> str:
    names = set(re.findall(r"server_name ([^;]+);", site))
    if len(names) != 1:
        raise Broken(f"the site names {sorted(names)} where one server name belongs")
    return names.pop()


# --- the long-lived tools -------------------------------------------------------------------------------------


class _Pack(policy_run.Pack):
    def reconfigure(self, policy_config: dict) -> None:
        """The engine's Configure again, with other policy config: the pack keeps running."""
        self.policy_config = dict(policy_config)
        self._configure()


class Tools:
    """What is slow to start, started once: cloud-init's interpreter and the policy pack. A context manager.

    The engine starts a pack per preview with the stack's config in its environment (PULUMI_CONFIG), and the
    pack guards every port a stack setting names as a metrics port. One pack serves every config here: each
    config's settings are read with the pack's own code (kumoguard.ports) and handed to the running pack as
    `metricsPorts`, the policy config that guards the same ports, and a setting it can't read is what
    `metrics-port-readable` would report."""

    def __enter__(self) -> Self:
        self._pack = _Pack(stack=STACK, stack_config={}, dry_run=False).__enter__()
        self._cloud_init = subprocess.Popen(
            [cloud_init_python(), str(HERE / "cloud_init_schema.py")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        return self

    def __exit__(self, *exc) -> None:
        self._pack.__exit__(*exc)
        self._cloud_init.stdin.close()
        self._cloud_init.wait(timeout=30)
        self._cloud_init.stdout.close()

    def cloud_init(self, root: Path, documents: dict[str, str]) -> None:
        """`cloud-init schema --config-file` on each (tests/property/cloud_init_schema.py)."""
        for label, text in documents.items():
            path = _write(root, f"{label}.user-data", text)
            self._cloud_init.stdin.write(f"{path}\n")
            self._cloud_init.stdin.flush()
            line = self._cloud_init.stdout.readline()
            if not line:
                raise Broken("cloud-init schema stopped")
            result = json.loads(line)
            if not result["valid"]:
                raise Broken(
                    f"cloud-init schema refused the user data of {label}: {result['stderr'] or result['stdout']}"
                )

    def analyze(self, run: Run, values: dict) -> list[policy_run.Violation]:
        """The pack over every planned resource, as `make plan` runs it (tools/plan.py)."""
        found = metrics_settings(json.dumps(engine_config(values)))  # PULUMI_CONFIG, as the engine sets it
        unreadable = [s for s in found if s.ports is None]
        if unreadable:
            raise Broken(f"metrics-port-readable: the pack can't read {unreadable}")
        extra = [f"{s.ports[0]}-{s.ports[1]}" for s in found]
        self._pack.reconfigure({name: {"metricsPorts": [*DEFAULT_METRICS_PORTS, *extra]} for name in METRICS_POLICIES})
        return self._pack.run(policy_run.from_registrations([*run.registrations, run.root]))


# The policies with a `metricsPorts` config (policies/kumoguard/rules.py and stack_rules.py).
METRICS_POLICIES = ("no-public-metrics", "no-public-guarded-ports")


# --- the tools, found once -----------------------------------------------------------------------------------


@functools.cache
def cloud_init_python() -> str:
    """The interpreter of the `cloud-init` command (its shebang): the one that has the `cloudinit` package."""
    path = shutil.which("cloud-init")
    if path is None:
        return ""
    first = Path(path).read_text(errors="replace").splitlines()[0]
    return first[2:].strip().split()[0] if first.startswith("#!") else sys.executable


@functools.cache
def nft_command() -> tuple[str, ...]:
    """`nft -c` opens a netlink socket, which needs CAP_NET_ADMIN: as root, or in a user namespace of our own."""
    probe = "table inet probe {\n}\n"
    with tempfile.NamedTemporaryFile("w", suffix=".nft") as f:
        f.write(probe)
        f.flush()
        for command in (["nft"], ["unshare", "-rn", "nft"]):
            with contextlib.suppress(OSError):
                if subprocess.run([*command, "-c", "-f", f.name], capture_output=True, check=False).returncode == 0:
                    return tuple(command)
    return ()


def missing_tools() -> list[str]:
    """What this machine lacks to check what the hosts get (`.ci/run` installs it all)."""
    out = [tool for tool in ("nginx", "luac5.4", "chronyd", "openssl") if shutil.which(tool) is None]
    if not cloud_init_python():
        out.append("cloud-init")
    if not nft_command():
        out.append("nft -c (nftables, and CAP_NET_ADMIN or user namespaces)")
    return out
