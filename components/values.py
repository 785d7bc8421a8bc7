"""What one stack config value may be: the grammar of each kind, strict, with the reason when it is not.

Values reach the program as the engine hands them over: strings, or JSON decoded into numbers, booleans,
lists and maps (`settings.decode`). Pydantic's lax coercion would take `true` as the port 1 and `"9_200"`
as 9200, so every kind here says exactly what it takes, and each error text names the value and why.
"""

import ipaddress
import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# RFC 1035 section 2.3.1 (with RFC 1123's leading digit): a label of letters, digits and inner hyphens, 1-63.
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_DIGITS = re.compile(r"[0-9]{1,12}")
# Route53 hosted zone IDs: "Z" and up to 32 upper-case letters and digits (Route53 API reference, HostedZone.Id).
_ZONE_ID = re.compile(r"Z[0-9A-Z]{1,32}")
# IAM user and role ARNs (IAM User Guide, "IAM ARNs"; names: letters, digits and +=,.@_- up to 64, paths of /).
_IAM_PRINCIPAL = re.compile(r"arn:aws(-cn|-us-gov)?:iam::\d{12}:(role|user)/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}")
# EC2 instance types are "<family>.<size>" (t3.small, m7gd.2xlarge, u-6tb1.metal).
_INSTANCE_TYPE = re.compile(r"[a-z][a-z0-9-]*\.[a-z0-9]+")
_AMI = re.compile(r"ami-([0-9a-f]{8}|[0-9a-f]{17})")

# An RFC 6750 bearer token that Nginx can hold as a quoted map key: 32 to 128 characters.
BEARER_TOKEN = re.compile(r"(?=.{32,128}$)[A-Za-z0-9._~+/-]+=*")


def whole_number(value: Any) -> int:
    """An integer, or a string of digits (what `pulumi config set` stores); never a bool, a float or "+9_200"."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    raise ValueError(f"must be a whole number such as 9101, not {value!r}")


def flag(value: Any) -> bool:
    """`true` or `false`, not "yes", 1 or "on" (which pydantic would take)."""
    if isinstance(value, bool):
        return value
    raise ValueError(f"must be true or false, not {value!r}")


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {value!r}")  # noqa: TRY004 (pydantic reports only ValueError)
    return value


def label(value: str) -> str:
    if not _LABEL.fullmatch(value):
        raise ValueError(f"{value!r} is not a DNS label (lowercase letters, digits and inner '-', at most 63)")
    return value


def domain(value: str) -> str:
    """A DNS name of at least two labels (RFC 1035), at most 253 characters, not an IP address and with a TLD
    that is not all digits (RFC 3696 section 2), so it can only ever be read as a name."""
    name = value.removesuffix(".").lower()
    labels = name.split(".")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        raise ValueError(f"{value!r} is an IP address, not a domain name such as yourdomain.com")
    if len(labels) < 2 or not all(_LABEL.fullmatch(part) for part in labels) or labels[-1].isdigit():
        raise ValueError(f"{value!r} is not a domain name such as yourdomain.com")
    if len(name) > 253:
        raise ValueError(f"{value!r} is {len(name)} characters; a domain name holds at most 253 (RFC 1035)")
    return name


def cidr(value: Any) -> Network:
    if not isinstance(value, str):
        raise ValueError(f"expected a CIDR string such as 203.0.113.10/32, got {value!r}")  # noqa: TRY004
    if "%" in value:
        raise ValueError(f"{value!r} has an IPv6 zone index, which no firewall rule can name")
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as err:
        raise ValueError(f"{value!r} is not a valid CIDR ({err})") from None


def unique(values: list) -> list:
    seen = [v for i, v in enumerate(values) if v in values[:i]]
    if seen:
        raise ValueError(f"{seen[0]} is listed twice")
    return values


def _shaped(pattern: re.Pattern, what: str):
    """A validator for text that must match `pattern` in full; the error says what was expected."""

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return check


zone_id = _shaped(_ZONE_ID, "a Route53 hosted zone ID such as Z0123456789ABCDEFGHIJ")
# A role or user ARN, the form a KMS key policy names a principal in (IAM ARN reference).
iam_principal = _shaped(_IAM_PRINCIPAL, "an IAM role or user ARN such as arn:aws:iam::123456789012:role/deploy")
instance_type = _shaped(_INSTANCE_TYPE, "an EC2 instance type such as c6i.xlarge")
ami = _shaped(_AMI, "an AMI ID such as ami-0123456789abcdef0")


def https_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"{value!r} is not an https:// URL")
    return value


def host(value: str) -> str:
    """A host name or an IP literal, as a probe target."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return domain(value)


def bearer_token(value: str) -> str:
    if not BEARER_TOKEN.fullmatch(value):
        raise ValueError("must be 32 to 128 letters, digits and -._~+/ (then '=' padding)")
    return value


def number(lo: int, hi: int):
    """A whole number within [lo, hi]."""
    return Annotated[int, BeforeValidator(whole_number), Field(ge=lo, le=hi)]


Port = number(1, 65535)
Flag = Annotated[bool, BeforeValidator(flag)]
Text = Annotated[str, BeforeValidator(text)]
Label = Annotated[str, BeforeValidator(text), AfterValidator(label)]
Domain = Annotated[str, BeforeValidator(text), AfterValidator(domain)]
Cidr = Annotated[Any, AfterValidator(cidr)]
