"""Read `Pulumi.<stack>.yaml` as the Pulumi CLI would, or say in one line per problem why not.

Every way a stack file can be broken ends in `StackFileError`, whose text is one line per problem:
`Pulumi.<stack>.yaml: <what>`, or `Pulumi.<stack>.yaml:<line>:<column>: <what>` where the YAML says
where. The reader never executes anything (YAML is composed with the safe loader), never reads more
than MAX_BYTES, and accepts only what the CLI hands a program as JSON: text, numbers, booleans, null,
lists and mappings with text keys.

The CLI reads stack files with gopkg.in/yaml.v3 (pulumi/pulumi v3.274.1 sdk/go/common/encoding/marshal.go),
a YAML 1.2 reader; PyYAML reads YAML 1.1. Where the two would read a plain scalar differently (`yes`,
`on`, `1:30`, `0o17`, `1e3`, `08`), the offline plan can't know what the deployment would see, so that
is a problem too: quote it or spell it one way. Sources for what the CLI does, in pulumi/pulumi v3.274.1:
- sdk/go/common/workspace/loaders.go, LoadProjectStackBytes: a key without a namespace is read as
  `<project>:<key>`; a UTF-8 byte order mark is skipped.
- sdk/go/common/workspace/project.go, ProjectStack: the keys a stack file has.
- sdk/go/common/resource/config/key.go, ParseKey: `<namespace>:<name>`, or the old
  `<namespace>:config:<name>`, which is the same key.
- sdk/go/common/resource/config/object.go, isSecureValue: `{secure: <text>}` is a secret; with
  anything but text under `secure` it is a plain mapping.
and gopkg.in/yaml.v3 v3.0.1: decode.go refuses a mapping key given twice and excessive aliasing;
resolve.go reads only true/false as booleans and reads numbers with Go's strconv (0o, 0x, 0b).
"""

import base64
import binascii
import datetime
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tools.passphrase import Decrypter, PassphraseError, passphrase_from_env

# A stack file is a few kilobytes; this much is already absurd, and reading stops there.
MAX_BYTES = 1 << 20
# Values after aliases (`*name`) are expanded: a real stack file has hundreds.
MAX_VALUES = 100_000
# The keys of a stack file (ProjectStack); anything else is a typo that the CLI would silently ignore.
STACK_KEYS = ("config", "encryptionsalt", "encryptedkey", "secretsprovider", "environment")
# Namespaces something in this project reads: the program's own, the providers' it uses (requirements.txt),
# and the engine's (`pulumi:tags`, `pulumi:disable-default-providers`).
NAMESPACES = ("kumomta", "aws", "hcloud", "random", "tls", "command", "pulumi")
PROJECT_NAMESPACE = "kumomta"
# The project's name (Pulumi.yaml), the namespace the CLI gives a key written without one.
PROJECT = "kumomta-infra"

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_T = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_T + t for t in ("str", "int", "float", "bool", "null")}
_KINDS = {
    _T + "str": "text",
    _T + "int": "a number",
    _T + "float": "a number",
    _T + "bool": "a boolean",
    _T + "null": "null",
    _T + "timestamp": "a date",
    _T + "seq": "a list",
    _T + "map": "a mapping",
}
# yaml.v3's booleans (resolve.go); YAML 1.1 also reads yes/no/on/off, yaml.v3 reads them as text.
_V3_BOOLEANS = {"true", "True", "TRUE", "false", "False", "FALSE"}
# Numbers as yaml.v3 reads a plain scalar (underscores removed first): Go's strconv with base prefixes, and floats.
_V3_NUMBER = re.compile(
    r"[-+]?(0[bB][01]+|0[oO][0-7]+|0[xX][0-9a-fA-F]+|[0-9]+)"
    r"|[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?"
)
_UNBUILT = object()


class StackFileError(Exception):
    """The stack file is missing or not what the CLI reads; the text is one line per problem."""


@dataclass
class StackFile:
    """What the CLI would read from a stack file: `config` with the keys as the program gets them."""

    name: str
    config: dict[str, Any]
    encryption_salt: str | None
    key_lines: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Line and column of each `config` key as written, for messages."""

    @property
    def secure_keys(self) -> list[str]:
        return [key for key, value in self.config.items() if _holds_secure(value)]


def read(path: Path) -> StackFile:
    """Parse and check a stack file; raise StackFileError with every problem found, one per line."""
    text = _text(path)
    problems = _Problems(path.name)
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise problems.fatal("is empty; a stack file holds a `config:` mapping (see Pulumi.prod.yaml)")
        _Walk(problems, loader).document(node)
        problems.raise_any()
        document = _as_cli(loader.construct_document(node))
    except yaml.MarkedYAMLError as err:
        raise problems.fatal(_yaml_reason(err, text), err.problem_mark or err.context_mark) from None
    except yaml.YAMLError as err:
        raise _reader_problem(err, text, problems) from None
    except RecursionError:
        raise problems.fatal("is nested too deeply to be a stack file") from None
    finally:
        loader.dispose()
    lines = {
        key.value: (key.start_mark.line + 1, key.start_mark.column + 1)
        for key, _ in _config_node(node).value
        if isinstance(key, ScalarNode)
    }
    config = _config(document, problems, lines)
    salt = document.get("encryptionsalt")
    _check_secure(config, salt, problems, lines)
    problems.raise_any()
    return StackFile(path.name, config, salt, lines)


def decrypted(stack: StackFile) -> dict[str, Any]:
    """`config` with `secure:` values decrypted when the passphrase is in the environment, as the CLI would
    (tools/passphrase.py); otherwise with them left out (StackFile.secure_keys names them)."""
    if not stack.secure_keys:
        return stack.config
    problems = _Problems(stack.name)
    try:
        passphrase = passphrase_from_env()
    except PassphraseError as err:
        raise problems.fatal(str(err)) from None
    if passphrase is None or not stack.encryption_salt:
        return _without_secure(stack.config)
    try:
        decrypter = Decrypter(passphrase, stack.encryption_salt)
    except PassphraseError as err:
        raise problems.fatal(str(err)) from None
    values = {}
    for key, value in stack.config.items():
        try:
            values[key] = _decrypted(value, decrypter)
        except PassphraseError as err:
            problems.add(f"{key}: {err}", *stack.key_lines.get(key, ()))
    problems.raise_any()
    return values


def _text(path: Path) -> str:
    """The file's text: a regular file, at most MAX_BYTES, UTF-8 (a byte order mark skipped, as the CLI does)."""
    problems = _Problems(path.name)
    try:
        # Non-blocking, so a FIFO in its place can't hang the plan; fstat then tells what was opened.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        others = sorted(
            p.name[len("Pulumi.") : -len(".yaml")] for p in path.parent.glob("Pulumi.*.yaml") if p.is_file()
        )
        here = f"the stacks here are {', '.join(others)}" if others else "there are no stack files here"
        raise problems.fatal(f"no such file ({here})") from None
    except OSError as err:
        raise problems.fatal(f"cannot be read ({err.strerror or err})") from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))
        kind = next((name for test, name in kinds if test(mode)), "a device")
        raise problems.fatal(f"is {kind}, not a stack file (YAML text)")
    with os.fdopen(descriptor, "rb") as handle:
        try:
            data = handle.read(MAX_BYTES + 1)
        except OSError as err:
            raise problems.fatal(f"cannot be read ({err.strerror or err})") from None
    if len(data) > MAX_BYTES:
        raise problems.fatal(f"is larger than {MAX_BYTES // 1024} KiB; a stack file is a few kilobytes of YAML")
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line, column = _position(data, err.start)
        problems.add(f"is not UTF-8 text (byte 0x{data[err.start]:02x}); save it as UTF-8", line, column)
        raise problems.error() from None


def _position(text: str | bytes, index: int) -> tuple[int, int]:
    """1-based line and column of an offset."""
    newline = "\n" if isinstance(text, str) else b"\n"
    return text.count(newline, 0, index) + 1, index - (text.rfind(newline, 0, index) + 1) + 1


class _Problems:
    """The lines of one StackFileError, each prefixed with the file's name and, when known, line and column."""

    def __init__(self, name: str):
        self.name = name
        self.lines: list[str] = []

    def add(self, what: str, line: int | None = None, column: int | None = None) -> None:
        where = self.name + (f":{line}" if line else "") + (f":{column}" if line and column else "")
        self.lines.append(f"{where}: {what}")

    def at(self, node: Node, what: str) -> None:
        self.add(what, node.start_mark.line + 1, node.start_mark.column + 1)

    def fatal(self, what: str, mark=None) -> StackFileError:
        self.add(what, *((mark.line + 1, mark.column + 1) if mark else ()))
        return self.error()

    def error(self) -> StackFileError:
        return StackFileError("\n".join(self.lines))

    def raise_any(self) -> None:
        if self.lines:
            raise self.error()


class _Walk:
    """Checks the composed YAML before anything is constructed from it: tags, keys, and scalars that
    YAML 1.1 and the CLI's YAML 1.2 read differently. Aliases are followed, with a budget."""

    def __init__(self, problems: _Problems, loader):
        self.problems = problems
        self.loader = loader
        self.values = 0

    def document(self, node: Node) -> None:
        if not isinstance(node, MappingNode) or node.tag != _T + "map":
            raise self.problems.fatal(
                f"is {_kind(node)}, not the mapping a stack file is (`config:` and its keys)", node.start_mark
            )
        self.node(node, "", ())
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.tag == _T + "str" and key.value not in STACK_KEYS:
                self.problems.at(key, f"{key.value}: is not a stack file key ({', '.join(STACK_KEYS)})")
            elif isinstance(key, ScalarNode) and key.value == "config" and value.tag not in (_T + "map", _T + "null"):
                self.problems.at(value, f"config: is {_kind(value)}, not a mapping of `namespace:key: value`")

    def node(self, node: Node, path: str, ancestors: tuple[int, ...]) -> None:
        self.values += 1
        if self.values > MAX_VALUES:
            raise self.problems.fatal(
                f"holds more than {MAX_VALUES:,} values once aliases (*name) are expanded; the CLI refuses "
                "excessive aliasing"
            )
        if id(node) in ancestors:
            self.problems.at(node, f"{path or 'the document'}: an alias (*name) here refers to a value containing it")
            return
        ancestors = (*ancestors, id(node))
        if isinstance(node, ScalarNode):
            self.scalar(node, path)
        elif node.tag not in (_T + "seq", _T + "map"):
            self.problems.at(node, f"{path}: {_tag(node.tag)} {_NOT_A_VALUE}")
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                self.node(item, f"{path}[{index}]", ancestors)
        else:
            self.mapping(node, path, ancestors)

    def mapping(self, node: MappingNode, path: str, ancestors: tuple[int, ...]) -> None:
        seen: dict[str, int] = {}
        for key, value in node.value:
            if key.tag == _T + "merge":  # `<<: *defaults`: those keys are checked where they are written
                self.node(value, path, ancestors)
                continue
            if not (isinstance(key, ScalarNode) and key.tag == _T + "str"):
                if isinstance(key, ScalarNode):
                    shown = key.value or "~"
                    self.problems.at(key, f"{_join(path, shown)}: a key must be text, not {_kind(key)}; quote it")
                else:
                    self.problems.at(key, f"{path or 'the document'}: a key must be text, not {_kind(key)}")
                continue
            line = key.start_mark.line + 1
            if key.value in seen:
                self.problems.at(key, f"{_join(path, key.value)}: given twice (first on line {seen[key.value]})")
            seen.setdefault(key.value, line)
            self.node(value, _join(path, key.value), ancestors)

    def scalar(self, node: ScalarNode, path: str) -> None:
        tag, text, plain = node.tag, node.value, not node.style
        value = None
        if tag == _T + "timestamp":
            pass  # the CLI hands it over as Go prints a time (`_as_cli`)
        elif tag == _T + "value":  # a plain `=`, YAML 1.1's "default value" key
            self.problems.at(node, f"{path}: {text} is not a value on its own in YAML 1.1; quote it")
        elif tag not in _SCALAR_TAGS:
            self.problems.at(node, f"{path}: {_tag(tag)} {_NOT_A_VALUE}")
        elif tag != _T + "str" and (value := self.built(node)) is _UNBUILT:
            self.problems.at(node, f"{path}: {text} is not {_KINDS[tag]}, as its tag {_tag(tag)} says")
        elif isinstance(value, float) and not math.isfinite(value):
            self.problems.at(node, f"{path}: {text} is not a number JSON can hold")
        elif plain and tag == _T + "bool" and text not in _V3_BOOLEANS:
            self.problems.at(
                node,
                f"{path}: {text} is a boolean in YAML 1.1 but the text {text!r} to the CLI (YAML 1.2); "
                "write true or false, or quote it",
            )
        elif plain and tag in (_T + "int", _T + "float") and ":" in text:
            self.problems.at(
                node, f"{path}: {text} is a base-60 number in YAML 1.1 but text to the CLI (YAML 1.2); quote it"
            )
        elif plain and tag == _T + "str" and _V3_NUMBER.fullmatch(text.replace("_", "")):
            self.problems.at(
                node,
                f"{path}: {text} is text in YAML 1.1 but a number to the CLI (YAML 1.2); quote it, or write "
                "the number in decimal",
            )

    def built(self, node: ScalarNode) -> Any:
        """The value YAML builds, or _UNBUILT: an explicit tag on text that isn't one (`!!int abc`, `!!bool maybe`)."""
        try:
            return self.loader.construct_object(node)
        except (yaml.YAMLError, ValueError, KeyError, TypeError):
            return _UNBUILT


_NOT_A_VALUE = "is not a value stack config holds (text, numbers, booleans, null, lists and mappings)"


def _config_node(document: MappingNode) -> MappingNode:
    for key, value in document.value:
        if isinstance(key, ScalarNode) and key.value == "config" and isinstance(value, MappingNode):
            return value
    return MappingNode(_T + "map", [])


def _as_cli(value: Any) -> Any:
    """A YAML timestamp as the CLI hands it on: yaml.v3 builds a Go time.Time, which reaches the program as
    its String(), `2026-11-01 00:00:00 +0000 UTC` (measured with `pulumi config --json`, CLI v3.274.1)."""
    if isinstance(value, dict):
        return {k: _as_cli(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_cli(v) for v in value]
    if isinstance(value, datetime.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
        fraction = f".{moment.microsecond:06d}".rstrip("0") if moment.microsecond else ""
        offset = moment.strftime("%z")
        zone = "UTC" if offset == "+0000" else offset
        return f"{moment:%Y-%m-%d %H:%M:%S}{fraction} {offset} {zone}"
    if isinstance(value, datetime.date):
        return f"{value:%Y-%m-%d} 00:00:00 +0000 UTC"
    return value


def _config(document: dict, problems: _Problems, lines: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """`config`, keyed as the CLI hands it to the program, with keys nothing reads reported."""
    for key in ("encryptionsalt", "encryptedkey", "secretsprovider"):
        if document.get(key) is not None and not isinstance(document[key], str):
            problems.add(f"{key}: is {_value_kind(document[key])}, not text")
    raw = document.get("config")
    if raw is None:
        raise problems.fatal("has no `config:` mapping; a stack's settings go there (see Pulumi.prod.yaml)")
    config: dict[str, Any] = {}
    written: dict[str, str] = {}
    for key, value in raw.items():
        where = lines.get(key, ())
        name = _config_key(key, problems, where)
        if name is None:
            continue
        if name in written:
            first = f"{written[name]} (line {lines[written[name]][0]})" if written[name] in lines else written[name]
            problems.add(f"{key}: is the same key as {first} to Pulumi; give it once", *where)
            continue
        written[name] = key
        config[name] = value
    return config


def _config_key(key: str, problems: _Problems, where: tuple[int, int] | tuple[()]) -> str | None:
    """The key as the program gets it, or None (and a problem) when nothing would read it."""
    parts = key.split(":")
    if len(parts) == 3 and parts[1] == "config":  # the old `<namespace>:config:<name>` form of ParseKey
        parts = [parts[0], parts[2]]
    if len(parts) == 1:
        problems.add(
            f"{key}: has no namespace, so Pulumi reads it as {PROJECT}:{key}, which nothing reads; "
            f"write {PROJECT_NAMESPACE}:{key}",
            *where,
        )
    elif len(parts) != 2 or not all(parts):
        problems.add(
            f"{key}: is not a config key; the form is namespace:name, such as {PROJECT_NAMESPACE}:cloud", *where
        )
    elif parts[0] not in NAMESPACES:
        problems.add(
            f"{key}: nothing in this project reads the namespace {parts[0]!r} ({', '.join(NAMESPACES)}); "
            "check the spelling",
            *where,
        )
    else:
        return ":".join(parts)
    return None


def _check_secure(config: dict[str, Any], salt: Any, problems: _Problems, lines: dict[str, tuple[int, int]]) -> None:
    """`secure:` under a key holds the ciphertext the CLI wrote: text, and with the passphrase provider (an
    `encryptionsalt`) in its `v1:<nonce>:<ciphertext>` form, which can be checked without the passphrase."""
    for key, value in config.items():
        for path, ciphertext in _secure_values(value, key):
            if not isinstance(ciphertext, str):
                problems.add(
                    f"{path}: secure: holds {_value_kind(ciphertext)}, not the ciphertext `pulumi config set --secret` writes",
                    *lines.get(key, ()),
                )
            elif isinstance(salt, str) and salt and not _passphrase_ciphertext(ciphertext):
                problems.add(
                    f"{path}: secure: is not the v1:<nonce>:<ciphertext> that the passphrase secrets provider writes",
                    *lines.get(key, ()),
                )


def _secure_values(value: Any, path: str):
    """(path, ciphertext) of each `{secure: ...}` in a value, whatever the ciphertext's type."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        yield path, value["secure"]
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _secure_values(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _secure_values(item, f"{path}[{index}]")


def _passphrase_ciphertext(text: str) -> bool:
    parts = text.split(":")
    if len(parts) != 3 or parts[0] != "v1":
        return False
    try:
        nonce, sealed = base64.b64decode(parts[1], validate=True), base64.b64decode(parts[2], validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(nonce) == 12 and len(sealed) >= 16  # AES-GCM: a 12-byte nonce, then at least the 16-byte tag


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"} and isinstance(value["secure"], str)


def _holds_secure(value: Any) -> bool:
    if _is_secure(value):
        return True
    if isinstance(value, dict):
        return any(_holds_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_secure(v) for v in value)
    return False


def _without_secure(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_secure(v) for k, v in value.items() if not _is_secure(v)}
    if isinstance(value, list):
        return [_without_secure(v) for v in value if not _is_secure(v)]
    return value


def _decrypted(value: Any, decrypter: Decrypter) -> Any:
    if _is_secure(value):
        return decrypter.decrypt(value["secure"])
    if isinstance(value, dict):
        return {k: _decrypted(v, decrypter) for k, v in value.items()}
    if isinstance(value, list):
        return [_decrypted(v, decrypter) for v in value]
    return value


def _join(path: str, key: str) -> str:
    """A key's path as messages name it: `config` keys as written (`kumomta:aws`), then `.vpcCidr`, `[0]`."""
    return key if path in ("", "config") else f"{path}.{key}"


def _kind(node: Node) -> str:
    if node.tag in _KINDS:
        return _KINDS[node.tag]
    return f"a {_tag(node.tag)} value"


def _value_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else "text"


def _tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_T) if tag.startswith(_T) else tag


def _yaml_reason(err: yaml.MarkedYAMLError, text: str) -> str:
    reason = err.problem or err.context or "not valid YAML"
    if err.context and reason.startswith("but "):  # "expected a single document in the stream, but found another"
        reason = f"{err.context}, {reason}"
    elif err.context and err.context_mark:
        reason += f" ({err.context} on line {err.context_mark.line + 1})"
    mark = err.problem_mark
    if mark and 0 <= mark.index < len(text) and text[mark.index] == "\t":
        reason += "; YAML indents with spaces, never tabs"
    return reason


def _reader_problem(err: yaml.YAMLError, text: str, problems: _Problems) -> StackFileError:
    """A ReaderError: a character YAML does not allow (a NUL, most control characters)."""
    character = getattr(err, "character", None)
    code = ord(character) if isinstance(character, str) else character
    shown = f"U+{code:04X}" if isinstance(code, int) else "a character"
    position = getattr(err, "position", None)
    where = _position(text, position) if isinstance(position, int) else ()
    problems.add(f"holds {shown}, which YAML does not allow in a file", *where)
    return problems.error()
