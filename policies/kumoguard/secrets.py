"""Which property values are Pulumi secrets, as the engine marks them.

The engine sends `Analyze` and `AnalyzeStack` properties with secrets kept: a secret is the map
`{"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": ...}`
(`MarshalOptions{KeepSecrets: true}` in pulumi/pulumi sdk/go/common/resource/plugin/analyzer_plugin.go).
pulumi-policy 1.21 unwraps that map and drops the mark (`deserialize_properties(...)` without
`proxy_secrets` in pulumi_policy/policy.py, `Analyze` and `AnalyzeStack`), so a policy cannot tell a
secret from plain text. `keep_marks()` puts a step in front of it that keeps the mark on the text:
every string that was secret, or inside a secret list or map, becomes a `SecretText`, which is a
`str` in every other respect, so no other policy sees a difference.
"""

from typing import Any

import pulumi_policy.policy

SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


class SecretText(str):
    """A string the engine marked secret."""

    __slots__ = ()


def mark(value: Any, secret: bool = False) -> Any:
    """Wire properties with each secret map replaced by its value, its strings made SecretText.
    Other signature maps (assets, archives) are left for the SDK to read."""
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return mark(value.get("value"), True)
        if SIG_KEY in value:
            return value
        return {key: mark(item, secret) for key, item in value.items()}
    if isinstance(value, list):
        return [mark(item, secret) for item in value]
    if secret and isinstance(value, str):
        return SecretText(value)
    return value


_sdk_deserialize = pulumi_policy.policy.deserialize_properties


def deserialize(props: dict[str, Any], proxy_secrets: bool = False) -> dict[str, Any]:
    """The SDK's deserialize_properties, secret marks kept. Remediations (proxy_secrets) keep the SDK's own."""
    return _sdk_deserialize(props, True) if proxy_secrets else _sdk_deserialize(mark(props))


def keep_marks() -> None:
    """Make the SDK hand policies SecretText for secrets; the pack's entry point calls this."""
    current = pulumi_policy.policy.deserialize_properties
    if current not in (_sdk_deserialize, deserialize):
        raise RuntimeError("pulumi_policy.policy.deserialize_properties is not the SDK's own: refusing to wrap it")
    pulumi_policy.policy.deserialize_properties = deserialize
