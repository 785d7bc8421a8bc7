"""Run the policy pack as the Pulumi engine does, over gRPC on loopback, with no Pulumi CLI.

The engine starts a Python pack through its `pulumi-analyzer-policy-python` shim, which runs
`python -u -m pulumi.policy <engine-address> .` inside the pack folder; the pack prints the port of
its Analyzer service. The engine then calls Handshake (the Python SDK leaves it unimplemented,
which the engine accepts), ConfigureStack, GetAnalyzerInfo, Configure (every policy's level and
config, schema defaults filled in), then Analyze once per resource with its inputs, and
AnalyzeStack once with every resource's outputs (the stack resource's are its exports). Secrets
travel as the engine sends them, `{"4dabf181...": "1b470612...", "value": ...}`, the form
tools.mockrun records them in. `Pack` plays that part. The pack never dials the
engine address (pulumi-policy 1.21 logs to stderr), but `Pack` serves a loopback Engine Log
service there all the same, so a pack that did log through it would not fail.

`python -m tools.policy_run --stack prod` runs the program under mocks, prints every violation,
and exits 1 when one is mandatory.
"""

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc, engine_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
LEVELS = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.REMEDIATE: "remediate",
    analyzer_pb2.DISABLED: "disabled",
}
_LEVEL_VALUES = {name: value for value, name in LEVELS.items()}


@dataclass(frozen=True)
class Violation:
    """One diagnostic of the pack, as `pulumi preview` would print it."""

    policy: str
    level: str
    urn: str
    message: str

    def __str__(self) -> str:
        return f"[{self.level}] {self.policy}: {self.message.replace(chr(10), ' ')}"


@dataclass
class Resource:
    """What the engine tells an analyzer about one resource."""

    urn: str
    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    protect: bool = False
    parent: str = ""
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)


class _Engine(engine_pb2_grpc.EngineServicer):
    """The engine's Log service, so log calls from a pack end up on stderr as the CLI would show them."""

    def Log(self, request, context):
        print(f"policy pack log: {request.message}", file=sys.stderr)
        return empty_pb2.Empty()


class Pack:
    """A running policy pack; use as a context manager."""

    def __init__(
        self,
        pack_dir: Path = POLICIES,
        stack: str = "dev",
        project: str = "kumomta-infra",
        policy_config: Mapping[str, Mapping[str, Any]] | None = None,
        stack_config: Mapping[str, str] | None = None,
        dry_run: bool = True,
    ):
        self.pack_dir, self.stack, self.project, self.dry_run = pack_dir, stack, project, dry_run
        self.policy_config = dict(policy_config or {})
        self.stack_config = dict(stack_config or {})

    def __enter__(self) -> Self:
        self._engine_server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        engine_pb2_grpc.add_EngineServicer_to_server(_Engine(), self._engine_server)
        self.engine_address = f"127.0.0.1:{self._engine_server.add_insecure_port('127.0.0.1:0')}"
        self._engine_server.start()
        env = {
            **_environ(),
            "PULUMI_PROJECT": self.project,
            "PULUMI_STACK": self.stack,
            "PULUMI_DRY_RUN": str(self.dry_run).lower(),
            "PULUMI_CONFIG": json.dumps(self.stack_config),
        }
        self._process = subprocess.Popen(
            [sys.executable, "-u", "-m", "pulumi.policy", self.engine_address, "."],
            cwd=self.pack_dir,
            env=env,
            stdout=subprocess.PIPE,
        )
        try:
            port = int(self._process.stdout.readline().strip())
        except ValueError:
            self.__exit__(None, None, None)
            raise RuntimeError(f"policy pack in {self.pack_dir} did not print its port") from None
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.analyzer = analyzer_pb2_grpc.AnalyzerStub(self._channel)
        grpc.channel_ready_future(self._channel).result(timeout=30)
        self._configure()
        return self

    def __exit__(self, *_exc) -> None:
        if getattr(self, "_channel", None) is not None:
            self._channel.close()
        self._process.terminate()
        self._process.wait(timeout=10)
        self._process.stdout.close()
        self._engine_server.stop(None)

    def _configure(self) -> None:
        try:
            self.analyzer.Handshake(
                analyzer_pb2.AnalyzerHandshakeRequest(
                    engine_address=self.engine_address,
                    root_directory=str(self.pack_dir),
                    program_directory=str(self.pack_dir),
                )
            )
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
        self.analyzer.ConfigureStack(
            analyzer_pb2.AnalyzerStackConfigureRequest(
                stack=self.stack, project=self.project, organization="organization", dry_run=self.dry_run
            )
        )
        self.info = self.analyzer.GetAnalyzerInfo(empty_pb2.Empty())
        self.analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig=self._reconciled_config()))

    def _reconciled_config(self) -> dict[str, analyzer_pb2.PolicyConfig]:
        """Each policy's level and schema defaults, overlaid with `policy_config` (as the engine does)."""
        out = {}
        for policy in self.info.policies:
            schema = json_format.MessageToDict(policy.configSchema.properties)
            props = {key: spec["default"] for key, spec in schema.items() if "default" in spec}
            given = dict(self.policy_config.get(policy.name, {}))
            level = _LEVEL_VALUES.get(given.pop("enforcementLevel", ""), policy.enforcementLevel)
            out[policy.name] = analyzer_pb2.PolicyConfig(enforcementLevel=level, properties=_struct({**props, **given}))
        return out

    def analyze(self, resource: Resource) -> list[Violation]:
        request = analyzer_pb2.AnalyzeRequest(
            urn=resource.urn,
            type=resource.type,
            name=resource.name,
            properties=_struct(resource.inputs),
            options=analyzer_pb2.AnalyzerResourceOptions(protect=resource.protect, parent=resource.parent),
        )
        return _violations(self.analyzer.Analyze(request), resource.urn)

    def analyze_stack(self, resources: Iterable[Resource]) -> list[Violation]:
        request = analyzer_pb2.AnalyzeStackRequest(
            resources=[
                analyzer_pb2.AnalyzerResource(
                    urn=r.urn,
                    type=r.type,
                    name=r.name,
                    properties=_struct(r.outputs),
                    options=analyzer_pb2.AnalyzerResourceOptions(protect=r.protect, parent=r.parent),
                    parent=r.parent,
                    dependencies=r.dependencies,
                    propertyDependencies={
                        key: analyzer_pb2.AnalyzerPropertyDependencies(urns=urns)
                        for key, urns in r.property_dependencies.items()
                    },
                )
                for r in resources
            ]
        )
        return _violations(self.analyzer.AnalyzeStack(request), "")

    def run(self, resources: list[Resource]) -> list[Violation]:
        """A whole preview's worth of analysis: every resource, then the stack."""
        found = [v for resource in resources for v in self.analyze(resource)]
        return found + self.analyze_stack(resources)


def from_registrations(registrations) -> list[Resource]:
    """tools.mockrun Registrations as the engine would hand them over: outputs carry the id."""
    return [
        Resource(
            urn=r.urn,
            type=r.type,
            name=r.name,
            inputs=r.inputs,
            outputs={**r.state, "id": r.id} if r.custom else dict(r.state),
            protect=r.protect,
            parent=r.parent,
            dependencies=list(r.depends_on),
        )
        for r in registrations
    ]


def analyze(registrations, stack: str = "dev", stack_config: Mapping[str, str] | None = None) -> list[Violation]:
    """Run the pack over a mocked program run, as `pulumi preview --policy-pack policies` would."""
    with Pack(stack=stack, stack_config=stack_config, dry_run=False) as pack:
        return pack.run(from_registrations(registrations))


def _violations(response, default_urn: str) -> list[Violation]:
    return [
        Violation(d.policyName, LEVELS[d.enforcementLevel], d.urn or default_urn, d.message)
        for d in response.diagnostics
    ]


def _struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(_jsonable(dict(values)))
    return out


def _jsonable(value: Any) -> Any:
    """Protobuf Structs hold JSON; anything else (an asset, say) travels as its text."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | bool | int | float):
        return value
    return str(value)


def _environ() -> dict[str, str]:
    """This process's environment without its own PULUMI_* settings, which belong to the pack's stack."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}


def report(violations: list[Violation]) -> tuple[str, int]:
    """The text `make plan` prints for the pack, and its exit status: 1 if any violation is mandatory."""
    mandatory = sum(v.level == "mandatory" for v in violations)
    lines = [str(v) for v in violations]
    lines.append(f"Policy pack: {mandatory} mandatory, {len(violations) - mandatory} advisory violation(s)")
    return "\n".join(lines), 1 if mandatory else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="runs the program for Pulumi.<stack>.yaml under mocks")
    args = parser.parse_args(argv)

    import pulumi

    from components.settings import ConfigError
    from tools import mockrun

    try:
        values = mockrun.stack_config(args.stack)
        run = mockrun.run_program(args.stack, values)
    except (mockrun.StackFileError, ConfigError, pulumi.RunError) as err:
        # One line per problem and exit 2, as `make plan` says them.
        stack_file = f"Pulumi.{args.stack}.yaml"
        for line in str(err).splitlines():
            print(line if line.startswith(stack_file) else f"{stack_file}: {line}", file=sys.stderr)
        return 2
    text, status = report(analyze([*run.registrations, run.root], args.stack, mockrun.engine_config(values)))
    print(text)
    return status


if __name__ == "__main__":
    sys.exit(main())
