"""The plan tool's own input: every broken stack file is one line and exit 2, and the offline plan's stand-ins
for cloud-computed addresses never run out, and stay the same from run to run.

What the Pulumi CLI reads from a stack file (pulumi/pulumi v3.274.1, with gopkg.in/yaml.v3 v3.0.1), checked
against the CLI built from that module (`pulumi config --json` on each file): a bare key is read as
`kumomta-infra:<key>`; `kumomta:config:<key>` is `kumomta:<key>`; `yes` stays the text "yes", `0o17` and `08`
become 15 and 8, `1:30` stays text, `2024-01-01` becomes "2024-01-01 00:00:00 +0000 UTC", `!!binary aGVsbG8=`
becomes "hello"; a key given twice, a key that is a number and `.nan` are errors; `{secure: 5}` is a plain
mapping. The plan reads dates as the CLI hands them on and refuses the rest, since it can't read them the way
the deployment would.
"""

import errno
import ipaddress
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pulumi.runtime import MockResourceArgs

from tests.stacks import plan
from tools import plan as plan_tool
from tools import stackfile
from tools.mockrun import (
    AWS_RESERVED,
    HCLOUD_RESERVED,
    ROOT,
    PlaceholderCloud,
    PlaceholderError,
    Pool,
    run_stack,
    stack_config,
)

CLI_STACK = Path(__file__).parent / "data" / "pulumi-cli" / "Pulumi.prod.yaml"
CLI_PASSPHRASE = "correct horse battery staple"
PROD = (ROOT / "Pulumi.prod.yaml").read_text()
NOT_A_VALUE = "is not a value stack config holds (text, numbers, booleans, null, lists and mappings)"

# (case, file content, the one line after `Pulumi.<stack>.yaml`).
# fmt: off
BROKEN = [
    ("empty", "", ": is empty; a stack file holds a `config:` mapping (see Pulumi.prod.yaml)"),
    ("only comments", "# nothing yet\n", ": is empty; a stack file holds a `config:` mapping (see Pulumi.prod.yaml)"),
    ("a list", "- config\n", ":1:1: is a list, not the mapping a stack file is (`config:` and its keys)"),
    ("a scalar", "prod\n", ":1:1: is text, not the mapping a stack file is (`config:` and its keys)"),
    ("a number", "42\n", ":1:1: is a number, not the mapping a stack file is (`config:` and its keys)"),
    ("no config", "encryptionsalt: v1:abc\n", ": has no `config:` mapping; a stack's settings go there (see Pulumi.prod.yaml)"),
    ("config: a list", "config:\n  - kumomta:cloud\n", ":2:3: config: is a list, not a mapping of `namespace:key: value`"),
    ("config: text", "config: aws\n", ":1:9: config: is text, not a mapping of `namespace:key: value`"),
    ("a typo'd top key", "confg:\n  kumomta:cloud: aws\n", ":1:1: confg: is not a stack file key (config, encryptionsalt, encryptedkey, secretsprovider, environment)"),
    ("!!binary", "config:\n  kumomta:cloud: !!binary YXdz\n", f":2:18: kumomta:cloud: !!binary {NOT_A_VALUE}"),
    ("!!python", "config:\n  kumomta:cloud: !!python/object/apply:os.system [touch /tmp/pwned]\n", f":2:18: kumomta:cloud: !!python/object/apply:os.system {NOT_A_VALUE}"),
    ("a local tag", "config:\n  kumomta:cloud: !aws x\n", f":2:18: kumomta:cloud: !aws {NOT_A_VALUE}"),
    ("!!set", "config:\n  kumomta:mtaHosts: !!set {mta}\n", f":2:21: kumomta:mtaHosts: !!set {NOT_A_VALUE}"),
    (".nan", "config:\n  kumomta:proxyMetricsPort: .nan\n", ":2:29: kumomta:proxyMetricsPort: .nan is not a number JSON can hold"),
    ("-.inf", "config:\n  kumomta:aws:\n    spoolVolumeGb: -.inf\n", ":3:20: kumomta:aws.spoolVolumeGb: -.inf is not a number JSON can hold"),
    ("yes", "config:\n  kumomta:ipv6: yes\n", ":2:17: kumomta:ipv6: yes is a boolean in YAML 1.1 but the text 'yes' to the CLI (YAML 1.2); write true or false, or quote it"),
    ("Off in a list", "config:\n  kumomta:x: [1, Off]\n", ":2:18: kumomta:x[1]: Off is a boolean in YAML 1.1 but the text 'Off' to the CLI (YAML 1.2); write true or false, or quote it"),
    ("base 60", "config:\n  kumomta:proxyMetricsPort: 2:31:41\n", ":2:29: kumomta:proxyMetricsPort: 2:31:41 is a base-60 number in YAML 1.1 but text to the CLI (YAML 1.2); quote it"),
    ("0o octal", "config:\n  kumomta:proxyMetricsPort: 0o21615\n", ":2:29: kumomta:proxyMetricsPort: 0o21615 is text in YAML 1.1 but a number to the CLI (YAML 1.2); quote it, or write the number in decimal"),
    ("08", "config:\n  kumomta:proxyMetricsPort: 09101\n", ":2:29: kumomta:proxyMetricsPort: 09101 is text in YAML 1.1 but a number to the CLI (YAML 1.2); quote it, or write the number in decimal"),
    ("1e3", "config:\n  kumomta:aws:\n    spoolVolumeGb: 1e3\n", ":3:20: kumomta:aws.spoolVolumeGb: 1e3 is text in YAML 1.1 but a number to the CLI (YAML 1.2); quote it, or write the number in decimal"),
    ("=", "config:\n  kumomta:domain: =\n", ":2:19: kumomta:domain: = is not a value on its own in YAML 1.1; quote it"),
    ("a number key", "config:\n  1: x\n", ":2:3: 1: a key must be text, not a number; quote it"),
    ("a boolean key", "config:\n  true: x\n", ":2:3: true: a key must be text, not a boolean; quote it"),
    ("a null key", "config:\n  null: x\n", ":2:3: null: a key must be text, not null; quote it"),
    ("a ~ key", "config:\n  ~: x\n", ":2:3: ~: a key must be text, not null; quote it"),
    ("a nested number key", "config:\n  kumomta:aws:\n    16: vpcCidr\n", ":3:5: kumomta:aws.16: a key must be text, not a number; quote it"),
    ("a list key", "config:\n  ? [a, b]\n  : x\n", ":2:5: config: a key must be text, not a list"),
    ("a key twice", "config:\n  kumomta:cloud: aws\n  kumomta:cloud: hcloud\n", ":3:3: kumomta:cloud: given twice (first on line 2)"),
    ("a nested key twice", "config:\n  kumomta:aws: {vpcCidr: 10.0.0.0/16, vpcCidr: 10.1.0.0/16}\n", ":2:39: kumomta:aws.vpcCidr: given twice (first on line 2)"),
    ("an alias loop", "config:\n  kumomta:mtaHosts: &a [mta, *a]\n", ":2:21: kumomta:mtaHosts[1]: an alias (*name) here refers to a value containing it"),
    ("no namespace", "config:\n  cloud: aws\n", ":2:3: cloud: has no namespace, so Pulumi reads it as kumomta-infra:cloud, which nothing reads; write kumomta:cloud"),
    ("the project's namespace", "config:\n  kumomta-infra:cloud: aws\n", ":2:3: kumomta-infra:cloud: nothing in this project reads the namespace 'kumomta-infra' (kumomta, aws, hcloud, random, tls, command, pulumi); check the spelling"),
    ("a namespace typo", "config:\n  kumomat:adminCidrs: []\n", ":2:3: kumomat:adminCidrs: nothing in this project reads the namespace 'kumomat' (kumomta, aws, hcloud, random, tls, command, pulumi); check the spelling"),
    ("three parts", "config:\n  kumomta:dns:provider: route53\n", ":2:3: kumomta:dns:provider: is not a config key; the form is namespace:name, such as kumomta:cloud"),
    ("no name", "config:\n  'kumomta:': aws\n", ":2:3: kumomta:: is not a config key; the form is namespace:name, such as kumomta:cloud"),
    ("old form and new", "config:\n  kumomta:config:cloud: aws\n  kumomta:cloud: hcloud\n", ":3:3: kumomta:cloud: is the same key as kumomta:config:cloud (line 2) to Pulumi; give it once"),
    ("syntax", "config:\n  kumomta:mtaHosts: [mta\n", ":3:1: did not find expected ',' or ']' (while parsing a flow sequence on line 2)"),
    ("a tab", "config:\n\tkumomta:cloud: aws\n", ":2:1: found character that cannot start any token (while scanning for the next token on line 2); YAML indents with spaces, never tabs"),
    ("two documents", "config: {}\n---\nconfig: {}\n", ":2:1: expected a single document in the stream, but found another document"),
    ("a NUL", "config:\n  kumomta:cloud: a\0ws\n", ":2:19: holds U+0000, which YAML does not allow in a file"),
    ("secure: a number", "config:\n  kumomta:injectToken:\n    secure: 5\n", ":2:3: kumomta:injectToken: secure: holds a number, not the ciphertext `pulumi config set --secret` writes"),
    ("secure: in a list", "config:\n  kumomta:x: [{secure: null}]\n", ":2:3: kumomta:x[0]: secure: holds null, not the ciphertext `pulumi config set --secret` writes"),
    ("secure: not v1", "encryptionsalt: v1:EYlyy2KUkDw=:v1:D2p1+5W65t8EC68a:29maAWYzyMwr1KFofIJ47Q8jKfRtLA==\nconfig:\n  kumomta:injectToken:\n    secure: AAABADcD\n", ":3:3: kumomta:injectToken: secure: is not the v1:<nonce>:<ciphertext> that the passphrase secrets provider writes"),
    ("!!int on text", "config:\n  kumomta:proxyMetricsPort: !!int 9101a\n", ":2:29: kumomta:proxyMetricsPort: 9101a is not a number, as its tag !!int says"),
    ("!!bool on text", "config:\n  kumomta:ipv6: !!bool maybe\n", ":2:17: kumomta:ipv6: maybe is not a boolean, as its tag !!bool says"),
    ("!!float nan", "config:\n  kumomta:proxyMetricsPort: !!float nan\n", ":2:29: kumomta:proxyMetricsPort: nan is not a number JSON can hold"),
    ("encryptionsalt: a number", "encryptionsalt: 5\nconfig:\n  kumomta:cloud: aws\n", ": encryptionsalt: is a number, not text"),
]
# fmt: on


@pytest.fixture
def stack_file():
    """Write Pulumi.<name>.yaml next to the real stacks (as text or bytes); removed afterwards."""
    written: list[Path] = []

    def write(content: str | bytes) -> str:
        name = f"test-input-{uuid.uuid4().hex[:8]}"
        path = ROOT / f"Pulumi.{name}.yaml"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        written.append(path)
        return name

    yield write
    for path in written:
        if path.is_dir() and not path.is_symlink():
            path.rmdir()
        else:
            path.unlink(missing_ok=True)


def planned(stack: str, capsys) -> tuple[int, str, str]:
    """`python -m tools.plan --stack <stack>` as `make plan` runs it, in this process (it starts in a second)."""
    code = plan_tool.main(["--stack", stack, "--base", "none"])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(("content", "line"), [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN])
def test_a_broken_stack_file_is_one_line_and_exit_2(stack_file, capsys, monkeypatch, content, line):
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    stack = stack_file(content)
    assert planned(stack, capsys) == (2, "", f"Pulumi.{stack}.yaml{line}\n")


def test_a_python_tag_is_never_run(stack_file, capsys, tmp_path):
    marker = tmp_path / "ran"
    stack = stack_file(
        f"config:\n  kumomta:cloud: !!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path [{marker}]]\n"
    )
    assert planned(stack, capsys)[0] == 2
    assert not marker.exists()


def test_every_problem_of_a_file_is_its_own_line(stack_file, capsys):
    stack = stack_file("config:\n  kumomta:ipv6: on\n  kumomta:proxyMetricsPort: 09101\n  7: x\n")
    code, out, err = planned(stack, capsys)
    assert (code, out) == (2, "")
    assert [line.split(": ", 1)[0] for line in err.splitlines()] == [
        f"Pulumi.{stack}.yaml:{n}" for n in ("2:17", "3:29", "4:3")
    ]


# An unquoted YAML date or time, and what `pulumi config --json` (CLI v3.274.1, built from its Go module) printed
# for it: yaml.v3 builds a Go time.Time and the CLI passes on its String().
CLI_DATES = [
    ("2026-11-01", "2026-11-01 00:00:00 +0000 UTC"),
    ("2027-01-01T10:00:00Z", "2027-01-01 10:00:00 +0000 UTC"),
    ("2027-01-01T10:00:00.5+02:00", "2027-01-01 10:00:00.5 +0200 +0200"),
]


@pytest.mark.parametrize(("written", "cli"), CLI_DATES)
def test_an_unquoted_date_reaches_the_program_as_the_cli_passes_it(stack_file, written, cli):
    stack = stack_file(f"config:\n  kumomta:dkim:\n    selectors: [{{name: s1, signFrom: {written}}}]\n")
    config = stackfile.read(ROOT / f"Pulumi.{stack}.yaml").config
    assert config["kumomta:dkim"]["selectors"][0]["signFrom"] == cli


def test_a_date_where_text_goes_is_refused_by_the_setting_as_the_deployment_would(stack_file, capsys):
    """The CLI does not refuse a date for `domain`; the program then sees the time's text, and says so."""
    stack = stack_file(PROD.replace("kumomta:domain: yourdomain.com", "kumomta:domain: 2024-01-01"))
    line = f"Pulumi.{stack}.yaml: kumomta:domain: '2024-01-01 00:00:00 +0000 UTC' is not a domain name such as "
    assert planned(stack, capsys) == (2, "", line + "yourdomain.com\n")


def test_file_problems(stack_file, capsys):
    """The file itself: not UTF-8, a directory, a FIFO (which must not hang the plan), a symlink loop, too big."""
    latin1 = stack_file("config:\n  kumomta:domain: café.com\n".encode("latin-1"))
    assert planned(latin1, capsys) == (
        2,
        "",
        f"Pulumi.{latin1}.yaml:2:22: is not UTF-8 text (byte 0xe9); save it as UTF-8\n",
    )

    directory = stack_file(b"")
    (ROOT / f"Pulumi.{directory}.yaml").unlink()
    (ROOT / f"Pulumi.{directory}.yaml").mkdir()
    assert planned(directory, capsys) == (
        2,
        "",
        f"Pulumi.{directory}.yaml: is a directory, not a stack file (YAML text)\n",
    )

    fifo = stack_file(b"")
    (ROOT / f"Pulumi.{fifo}.yaml").unlink()
    os.mkfifo(ROOT / f"Pulumi.{fifo}.yaml")
    assert planned(fifo, capsys) == (
        2,
        "",
        f"Pulumi.{fifo}.yaml: is a FIFO, not a stack file (YAML text)\n",
    )

    loop = stack_file(b"")
    (ROOT / f"Pulumi.{loop}.yaml").unlink()
    (ROOT / f"Pulumi.{loop}.yaml").symlink_to(f"Pulumi.{loop}.yaml")
    assert planned(loop, capsys) == (2, "", f"Pulumi.{loop}.yaml: cannot be read (Too many levels of symbolic links)\n")

    huge = stack_file("config:\n" + "".join(f"  kumomta:k{i}: {'x' * 100}\n" for i in range(12_000)))
    assert planned(huge, capsys) == (
        2,
        "",
        f"Pulumi.{huge}.yaml: is larger than 1024 KiB; a stack file is a few kilobytes of YAML\n",
    )


def test_an_unreadable_file(stack_file, capsys, monkeypatch):
    # Root reads a file whatever its mode, and this suite may run as root: os.open refuses it here instead.
    stack = stack_file(PROD)
    real_open = os.open

    def refuse(path, *args, **kwargs):
        if Path(path).name == f"Pulumi.{stack}.yaml":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    assert planned(stack, capsys) == (2, "", f"Pulumi.{stack}.yaml: cannot be read (Permission denied)\n")


def test_aliases_that_expand_without_end_are_refused(stack_file, capsys):
    # A "billion laughs": nine levels of ten aliases each. The CLI's YAML refuses it ("excessive aliasing").
    levels = "".join(f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9))
    stack = stack_file(f"config:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n{levels}  kumomta:mtaHosts: *a8\n")
    line = f"Pulumi.{stack}.yaml: holds more than 100,000 values once aliases (*name) are expanded; the CLI refuses excessive aliasing\n"
    assert planned(stack, capsys) == (2, "", line)


def test_a_missing_stack_file_prints_its_name_once_through_make(tmp_path):
    """`make plan STACK=...` as the README says: make reports any failure as its own exit 2 (README, "The two
    commands"), after the plan's one line; the file's name appears once."""
    done = subprocess.run(
        ["make", "--no-print-directory", "plan", "STACK=no-such-stack", "BASE=none"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    stacks = ", ".join(
        sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml") if p.is_file())
    )
    plan_line = f"Pulumi.no-such-stack.yaml: no such file (the stacks here are {stacks})"
    assert done.stderr.splitlines()[0] == plan_line
    assert done.stderr.splitlines()[-1].endswith("plan] Error 2")
    assert (done.stdout + done.stderr).count("Pulumi.no-such-stack.yaml") == 1


def test_the_documented_command_gives_the_same_line(stack_file):
    stack = stack_file("config:\n  kumomta:cloud: !!binary YXdz\n")
    done = plan("--stack", stack)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"Pulumi.{stack}.yaml:2:18: kumomta:cloud: !!binary {NOT_A_VALUE}\n"


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("../prod", "--stack '../prod': a stack name is 1 to 100 letters, digits, hyphens, underscores or periods"),
        ("", "--stack '': a stack name is 1 to 100 letters, digits, hyphens, underscores or periods"),
    ],
)
def test_a_stack_name_the_cli_would_refuse(capsys, name, line):
    # pulumi/pulumi sdk/go/common/tokens/stack_name.go, ParseStackName.
    assert planned(name, capsys) == (2, "", line + "\n")


def test_a_bom_and_the_old_key_form_read_as_the_cli_reads_them(stack_file):
    """loaders.go skips a UTF-8 byte order mark; key.go reads `kumomta:config:cloud` as `kumomta:cloud`."""
    stack = stack_file(b"\xef\xbb\xbf" + PROD.replace("kumomta:cloud:", "kumomta:config:cloud:").encode())
    assert stack_config(stack) == stack_config("prod")


@pytest.mark.parametrize(
    ("document", "why"),
    [
        ("[1]", "no `resources` list"),
        ('{"resources": {"inputs": 1}}', "no `resources` list"),
        ('{"format": "kumomta-plan/1", "resources": []}', "format 'kumomta-plan/1', this tool reads 'kumomta-plan/2'"),
        ('{"format": "kumomta-plan/2", "resources": ["inputs"]}', "resources[0] is not an object"),
        ('{"format": "kumomta-plan/2", "resources": [{"inputs": {}}]}', "resources[0].urn is missing or not a str"),
        ("\u00ff", "Expecting value: line 1 column 1 (char 0)"),
    ],
)
def test_a_base_that_is_not_a_saved_plan_is_one_line(capsys, tmp_path, document, why):
    saved = tmp_path / "base.json"
    saved.write_text(document)
    code = plan_tool.main(["--stack", "prod", "--base", str(saved)])
    out = capsys.readouterr()
    assert (code, out.err) == (2, f"BASE={saved}: not a plan written by `make plan PLAN_ARGS=--json` ({why})\n")


def test_a_json_file_that_cannot_be_written_is_one_line(capsys, tmp_path):
    target = tmp_path / "no-such-directory" / "plan.json"
    code = plan_tool.main(["--stack", "prod", "--base", "none", "--json", str(target)])
    assert (code, capsys.readouterr().err) == (2, f"--json {target}: cannot be written (No such file or directory)\n")


@pytest.fixture
def cli_stack(stack_file, monkeypatch):
    """The file the real CLI wrote (tests/data/pulumi-cli), as a stack of this project, with a variant."""
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    text = CLI_STACK.read_text()
    return lambda change=lambda t: t: stack_file(change(text))


def test_passphrase_problems_are_one_line_each(cli_stack, capsys, monkeypatch, tmp_path):
    # tools/passphrase.py: the passphrase provider's format (pulumi/pulumi pkg/secrets/passphrase/manager.go).
    stack = cli_stack()
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "wrong")
    assert planned(stack, capsys) == (
        2,
        "",
        f"Pulumi.{stack}.yaml: incorrect passphrase (PULUMI_CONFIG_PASSPHRASE does not open this stack's secrets)\n",
    )

    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE_FILE", str(tmp_path / "missing"))
    line = f"Pulumi.{stack}.yaml: PULUMI_CONFIG_PASSPHRASE_FILE={tmp_path / 'missing'} cannot be read (No such file or directory)\n"
    assert planned(stack, capsys) == (2, "", line)

    (tmp_path / "latin1").write_bytes(b"caf\xe9")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE_FILE", str(tmp_path / "latin1"))
    assert planned(stack, capsys) == (
        2,
        "",
        f"Pulumi.{stack}.yaml: PULUMI_CONFIG_PASSPHRASE_FILE={tmp_path / 'latin1'} is not UTF-8 text\n",
    )

    # A ciphertext of the right shape that this stack's key did not make (its nonce changed).
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", CLI_PASSPHRASE)
    other = cli_stack(lambda t: t.replace("secure: v1:V3uOESY43w9iesMF:", "secure: v1:AAAAAAAAAAAAAAAA:"))
    line = f"Pulumi.{other}.yaml:27:3: kumomta:injectToken: secure value does not decrypt with this passphrase\n"
    assert planned(other, capsys) == (2, "", line)

    salt = cli_stack(lambda t: t.replace("encryptionsalt: v1:EYlyy2KUkDw=:", "encryptionsalt: v1:EYlyy2KUkDw:"))
    assert planned(salt, capsys) == (2, "", f"Pulumi.{salt}.yaml: encryptionsalt: not base64\n")


# Stack files for Hypothesis: good lines, some with a piece of trouble put in somewhere.
GOOD_LINES = [
    *("  kumomta:cloud: aws\n", "  kumomta:mtaHosts: [mta, proxy]\n", "  aws:region: eu-central-1\n"),
    *("  kumomta:aws:\n    vpcCidr: 10.0.0.0/16\n", "  kumomta:ipv6: true\n", "  kumomta:proxyMetricsPort: 9101\n"),
    *(
        "  kumomta:injectToken:\n    secure: v1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA==\n",
        "  kumomta:dns: {a: &x [1], b: *x}\n",
    ),
]
TROUBLE = [
    *(
        "config:",
        "\n",
        "  ",
        "\t",
        "kumomta:",
        ": ",
        "- ",
        "[",
        "]",
        "{",
        "}",
        ", ",
        "'",
        '"',
        "&a ",
        "*a",
        "<<: ",
        "? ",
    ),
    *(
        "!!binary ",
        "!!python/name:os.system ",
        "!!set ",
        "!!int ",
        "!local ",
        "2024-01-01",
        "yes",
        "0o17",
        "1:30",
        ".nan",
    ),
    *(
        "1e3",
        "08",
        "~",
        "null",
        "true",
        "1",
        "secure: ",
        "#",
        "---\n",
        "\0",
        "\ufeff",
        "kumomta:config:",
        "é",
        "\udcff",
    ),
]
LINE = st.one_of(
    st.sampled_from(GOOD_LINES),
    st.tuples(
        st.sampled_from(GOOD_LINES), st.integers(0, 60), st.one_of(st.sampled_from(TROUBLE), st.text(max_size=3))
    ).map(lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :]),
)
HEADS = [
    "config:\n",
    "encryptionsalt: v1:EYlyy2KUkDw=:v1:D2p1+5W65t8EC68a:29maAWYzyMwr1KFofIJ47Q8jKfRtLA==\nconfig:\n",
    "",
]
STACK_FILES = st.builds(lambda head, lines: head + "".join(lines), st.sampled_from(HEADS), st.lists(LINE, max_size=8))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(STACK_FILES)
def test_any_text_is_read_or_refused_in_lines_never_a_traceback(tmp_path, text):
    path = tmp_path / "Pulumi.fuzz.yaml"
    path.write_text(text, errors="surrogatepass")
    try:
        stack = stackfile.read(path)
    except stackfile.StackFileError as err:
        assert all(line.startswith("Pulumi.fuzz.yaml") for line in str(err).splitlines()), err
        assert str(err)
        return
    # What is read is what the engine can hand a program as JSON, under keys something reads.
    assert json.dumps(stack.config, allow_nan=False)
    assert all(key.split(":")[0] in stackfile.NAMESPACES and key.count(":") == 1 for key in stack.config)


# -- The stand-ins for what the cloud computes -------------------------------------------------------------------

HOSTS = [f"proxy{i}" for i in range(1, 301)]


def addresses(run, kind: str) -> list[str]:
    return [host[kind] for host in run.outputs["hosts"].values()]


@pytest.fixture(scope="module")
def aws_300():
    return run_stack(
        "prod",
        {
            "kumomta:proxyHosts": HOSTS,
            "kumomta:ipv6": True,
            "kumomta:spf": {"publish": False},  # 600 addresses are more than one SPF record holds
            "kumomta:aws": {**stack_config("prod")["kumomta:aws"], "proxySubnetCidr": "10.42.4.0/23"},
        },
    )


@pytest.fixture(scope="module")
def hcloud_300():
    conf = {**stack_config("prod-hcloud")["kumomta:hcloud"], "proxySubnetCidr": "10.43.4.0/23"}
    return run_stack(
        "prod-hcloud",
        {
            "kumomta:proxyHosts": HOSTS,
            "kumomta:ipv6": True,
            "kumomta:spf": {"publish": False},  # 600 addresses are more than one SPF record holds
            "kumomta:hcloud": conf,
        },
    )


@pytest.mark.parametrize("fleet", ["aws_300", "hcloud_300"])
def test_300_proxies_with_ipv6_all_get_their_own_addresses(request, fleet):
    run = request.getfixturevalue(fleet)
    public, private = addresses(run, "publicIp"), addresses(run, "privateIp")
    assert len(public) == len(set(public)) == 301 and len(private) == len(set(private)) == 301
    # RFC 5737's 762 documentation addresses first; the pack counts them as not globally routable.
    assert all(ipaddress.ip_address(ip).is_private for ip in public)
    assert {str(ipaddress.ip_network(f"{ip}/24", strict=False)) for ip in public} <= {
        "192.0.2.0/24",
        "198.51.100.0/24",
        "203.0.113.0/24",
    }
    # Never an address the stack names elsewhere: the PING8 app's stays its own (the lab puts the app there).
    assert "203.0.113.10" not in public


def test_aws_stand_ins_keep_out_of_the_reserved_addresses(aws_300):
    """AWS reserves the first four and the last address of every subnet (EC2 API Reference, CreateSubnet: "Amazon
    Web Services reserves both the first four and the last IPv4 address in each subnet's CIDR block"), IPv6 too."""
    subnets = {r.id: r.inputs for r in aws_300.of_type("aws:ec2/subnet:Subnet")}
    for eni in aws_300.of_type("aws:ec2/networkInterface:NetworkInterface"):
        subnet = subnets[eni.inputs["subnetId"]]
        for block, address in (
            (subnet["cidrBlock"], eni.state["privateIp"]),
            (subnet["ipv6CidrBlock"], eni.state["ipv6Addresses"][0]),
        ):
            net, ip = ipaddress.ip_network(block), ipaddress.ip_address(address)
            assert net[4] <= ip < net[-1], (eni.name, address, block)


def test_hetzner_stand_ins_are_the_pinned_addresses_and_distinct_networks(hcloud_300):
    servers = hcloud_300.of_type("hcloud:index/server:Server")
    assert [s.state["networks"][0]["ip"] for s in servers] == [s.inputs["networks"][0]["ip"] for s in servers]
    primary = hcloud_300.of_type("hcloud:index/primaryIp:PrimaryIp")
    v6 = [ipaddress.ip_network(p.state["ipNetwork"]) for p in primary if p.inputs["type"] == "ipv6"]
    # Each a /64 of RFC 3849's documentation range, as Hetzner gives each server a /64; distinct /64s never overlap.
    assert len(set(v6)) == 301 and all(
        n.prefixlen == 64 and n.subnet_of(ipaddress.ip_network("2001:db8::/32")) for n in v6
    )


def test_a_28_subnet_holds_11_hosts_on_aws_and_a_twelfth_is_one_line(stack_file, capsys):
    fits = run_stack(
        "prod",
        {
            "kumomta:proxyHosts": HOSTS[:11],
            "kumomta:aws": {**stack_config("prod")["kumomta:aws"], "proxySubnetCidr": "10.42.2.0/28"},
        },
    )
    proxies = sorted(
        int(ipaddress.ip_address(ip)) & 0xF for ip in addresses(fits, "privateIp") if ip.startswith("10.42.2.")
    )
    assert proxies == list(range(4, 15))  # 16 addresses less .0-.3 and .15

    config = yaml.safe_load(PROD)["config"]
    config["kumomta:proxyHosts"] = HOSTS[:12]
    config["kumomta:aws"]["proxySubnetCidr"] = "10.42.2.0/28"
    stack = stack_file(yaml.safe_dump({"config": config}))
    code, out, err = planned(stack, capsys)
    assert (code, out) == (2, "")
    assert err.startswith(f"Pulumi.{stack}.yaml: kumomta:aws") and "10.42.2.0/28" in err and "11 hosts" in err
    assert err.count("\n") == 1


def test_the_stand_in_subnet_that_runs_out_names_its_key():
    """Behind the settings, which refuse a fleet its subnet can't hold: the stand-ins' own refusal is one line that
    names the config key, never a traceback."""
    cloud = PlaceholderCloud({"kumomta:cloud": "aws", "kumomta:proxyHosts": HOSTS[:12]})
    subnet, _ = cloud.new_resource(
        MockResourceArgs("aws:ec2/subnet:Subnet", "proxy-subnet", {"cidrBlock": "10.42.2.0/28"})
    )
    eni = "aws:ec2/networkInterface:NetworkInterface"
    given = [
        cloud.new_resource(MockResourceArgs(eni, f"{h}-eni", {"subnetId": subnet}))[1]["privateIp"] for h in HOSTS[:11]
    ]
    assert len(set(given)) == 11
    with pytest.raises(PlaceholderError) as caught:
        cloud.new_resource(MockResourceArgs(eni, "proxy12-eni", {"subnetId": subnet}))
    assert str(caught.value) == (
        "kumomta:aws.proxySubnetCidr: 10.42.2.0/28 has no address left for proxy12-eni: it holds 11 hosts (AWS keeps "
        "the first four addresses of every subnet and the last)"
    )


def test_a_run_that_failed_leaves_nothing_behind_for_the_next(monkeypatch):
    """A run that fails halfway (a stand-in that ran out) cancels what it had in flight: the next run in the same
    process (the lab, the tests, a base plan) sees none of it."""
    before = {r.urn: r.inputs for r in run_stack("prod").registrations}

    def full(self, name, key, pool, reserved):
        raise PlaceholderError(f"{key}: no address left for {name}")

    with monkeypatch.context() as patch:
        patch.setattr(PlaceholderCloud, "_private", full)
        with pytest.raises(PlaceholderError, match=r"^kumomta:aws\.mtaSubnetCidr: no address left for mta-eni$"):
            run_stack("prod")
    assert {r.urn: r.inputs for r in run_stack("prod").registrations} == before


def test_the_pools_are_total_and_keep_a_name_in_its_place():
    pool = Pool([ipaddress.ip_network("10.0.0.0/28")], 32, AWS_RESERVED)
    taken = [pool.take(f"host{i}") for i in range(11)]
    assert sorted(int(net.network_address) & 0xF for net in taken) == list(range(4, 15))
    assert pool.take("one too many") is None
    # A name's slot depends on the name: hosts that come and go leave the others where they were.
    alone = Pool([ipaddress.ip_network("10.0.0.0/24")], 32, HCLOUD_RESERVED).take("proxy7")
    crowded = Pool([ipaddress.ip_network("10.0.0.0/24")], 32, HCLOUD_RESERVED)
    for i in range(1, 7):
        crowded.take(f"proxy{i}")
    assert crowded.take("proxy7") == alone
    # Hetzner: "the first IP of the subnet's IP range" is its gateway (Cloud API reference, Networks, `gateway`;
    # docs.hetzner.com networking/networks/technical-concepts/architecture: 10.0.0.1 the gateway of 10.0.0.0/24).
    full = Pool([ipaddress.ip_network("10.0.0.0/29")], 32, HCLOUD_RESERVED)
    assert sorted(str(full.take(f"host{i}").network_address) for i in range(5)) == [f"10.0.0.{i}" for i in range(2, 7)]
    assert full.take("one too many") is None


def test_two_plans_of_the_same_big_config_are_identical(stack_file):
    config = yaml.safe_load(PROD)["config"]
    config.update({"kumomta:proxyHosts": HOSTS[:40], "kumomta:ipv6": True})
    stack = stack_file(yaml.safe_dump({"config": config}))
    first, second = plan("--stack", stack), plan("--stack", stack)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout


def test_stackfile_names_the_projects_namespace():
    assert yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"] == stackfile.PROJECT


def test_values_the_cli_wrote_as_json_text_place_the_same_stand_ins():
    """`pulumi config set kumomta:hostAliases '{"proxy-a": "proxy"}'` writes JSON text (tests/data/pulumi-cli shows
    the CLI doing so for a list): a renamed host keeps the stand-in addresses of its first name either way."""
    first = run_stack("prod").outputs["hosts"]["proxy"]
    for aliases in ({"proxy-a": "proxy"}, '{"proxy-a": "proxy"}'):
        renamed = run_stack("prod", {"kumomta:proxyHosts": ["proxy-a"], "kumomta:hostAliases": aliases})
        host = renamed.outputs["hosts"]["proxy-a"]
        assert (host["publicIp"], host["privateIp"]) == (first["publicIp"], first["privateIp"])
