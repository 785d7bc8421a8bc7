"""Reading the rendered KumoMTA policies the way the lab needs them: the literal values they pass.

These are not Lua interpreters: each function finds the one call or table the rendered files use
and fails loudly when it is not there, so a change in the policy's shape breaks the lab, visibly.
"""

import os
import re


class PolicyError(Exception):
    pass


def _block(text: str, call: str) -> str:
    match = re.search(re.escape(call) + r"\s*\{(.*?)\n\s*\}", text, re.DOTALL)
    if match is None:
        raise PolicyError(f"no `{call} {{...}}` in the policy")
    return match.group(1)


def _field(block: str, name: str) -> str | None:
    match = re.search(rf"\b{name}\s*=\s*'([^']*)'", block)
    return match.group(1) if match else None


def kumod_listen(text: str) -> str:
    """`listen` of kumo.start_http_listener, e.g. 127.0.0.1:8000."""
    listen = _field(_block(text, "kumo.start_http_listener"), "listen")
    if listen is None:
        raise PolicyError("kumo.start_http_listener has no literal `listen`")
    return listen


def kumod_sources(text: str) -> list[dict]:
    """The SOCKS5 egress sources: name, server, source_address, ehlo_domain."""
    table = re.search(r"local SOURCES = \{(.*?)\n\}", text, re.DOTALL)
    if table is None:
        raise PolicyError("no `local SOURCES = {...}` table in init.lua")
    sources = []
    for name, body in re.findall(r"\[\s*'([^']+)'\s*\]\s*=\s*\{(.*?)\}", table.group(1), re.DOTALL):
        entry = {"name": name}
        for key in ("server", "source_address", "ehlo_domain"):
            entry[key] = _field(body, key)
        sources.append(entry)
    if not sources:
        raise PolicyError("SOURCES is empty")
    return sources


def proxy_listeners(text: str, env: dict[str, str] | None = None) -> dict:
    """`proxy.start_proxy_listener`'s address, and the metrics listener's when there is one.

    The rendered policy builds `listen` from an environment variable (`LISTEN_IP .. ':5000'`),
    so that one concatenation is evaluated here with the unit's environment.
    """
    env = os.environ if env is None else env
    block = _block(text, "proxy.start_proxy_listener")
    literal = _field(block, "listen")
    if literal is None:
        match = re.search(r"\blisten\s*=\s*(\w+)\s*\.\.\s*'([^']*)'", block)
        if match is None:
            raise PolicyError("proxy.start_proxy_listener has no `listen` the lab can read")
        variable, suffix = match.groups()
        source = re.search(rf"local {variable} = os\.getenv\s*\(?\s*'(\w+)'", text)
        if source is None:
            raise PolicyError(f"`{variable}` is not read from the environment")
        value = env.get(source.group(1))
        if not value:
            raise PolicyError(f"{source.group(1)} is not set")
        literal = (f"[{value}]" if ":" in value else value) + suffix
    out = {"socks": literal, "metrics": None, "trusted": []}
    if "proxy.start_http_listener" in text:
        metrics = _block(text, "proxy.start_http_listener")
        out["metrics"] = _field(metrics, "listen")
        trusted = re.search(r"trusted_hosts\s*=\s*\{([^}]*)\}", metrics)
        out["trusted"] = re.findall(r"'([^']+)'", trusted.group(1)) if trusted else []
    return out


def _constant(text: str, block: str, name: str) -> str | None:
    """A field given as a string literal, or as a `local NAME = '...'` constant of the file."""
    literal = _field(block, name)
    if literal is not None:
        return literal
    match = re.search(rf"\b{name}\s*=\s*([A-Za-z_]\w*)\s*[,}}\n]", block)
    if match is None:
        return None
    constant = re.search(rf"^local {match.group(1)}\s*=\s*'([^']*)'", text, re.MULTILINE)
    if constant is None:
        raise PolicyError(f"`{name} = {match.group(1)}`: no `local {match.group(1)} = '...'` in the policy")
    return constant.group(1)


def queue_refresh(text: str) -> tuple[str, float]:
    """(refresh_strategy, refresh_interval in seconds) of kumo.make_queue_config; KumoMTA's defaults are Ttl
    and 1 minute (crates/kumod/src/queue/config.rs, crates/kumo-api-types/src/egress_path.rs)."""
    block = _block(text, "kumo.make_queue_config")
    interval = _constant(text, block, "refresh_interval")
    return _constant(text, block, "refresh_strategy") or "Ttl", seconds(interval) if interval else 60.0


def cache_ttl(text: str, call: str) -> float:
    """`ttl` of kumo.make_egress_pool or kumo.make_egress_source: how long kumod caches the definition
    (default 60 s, crates/kumod/src/egress_source.rs default_ttl)."""
    ttl = _constant(text, _block(text, call), "ttl")
    return seconds(ttl) if ttl else 60.0


_UNITS = {"ms": 0.001, "s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


def seconds(text: str) -> float:
    """A duration as KumoMTA writes them (humantime: `5 seconds`, `60s`, `1m`, `2 mins`)."""
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", text.lower()):
        unit = unit if unit in _UNITS else unit.rstrip("s")
        if unit not in _UNITS:
            raise PolicyError(f"duration {text!r}: unknown unit {unit!r}")
        total += float(number) * _UNITS[unit]
    return total


def env_file(text: str) -> dict[str, str]:
    """A systemd EnvironmentFile: KEY=VALUE lines."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            out[key.strip()] = value.strip().strip('"')
    return out


def unit_value(text: str, key: str) -> str | None:
    """The last `key=` of a systemd unit (later assignments win)."""
    found = re.findall(rf"^{key}=(.*)$", text, re.MULTILINE)
    return found[-1].strip() if found else None


def split_host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)
