"""How a planned change reaches a running host: a small table, one row per property that a running
host does not pick up the moment `pulumi up` applies it.

The plan names these per host, so a reviewer sees that "merged and applied" is not "running". A new
channel (the day-2 sync of issue 12) is a new row: the resource type and input it travels in, and
what the operator has to know.
"""

from dataclasses import dataclass

FIRST_BOOT = (
    "first-boot configuration changed; running hosts keep the old one (replace the host or use the day-2 channel)"
)


@dataclass(frozen=True)
class Reach:
    type: str
    property: str
    says: str


REACH: tuple[Reach, ...] = (
    # cloud-init runs user data once; the program also lists these in ignoreChanges.
    Reach("aws:ec2/instance:Instance", "userDataBase64", FIRST_BOOT),
    Reach("hcloud:index/server:Server", "userData", FIRST_BOOT),
    Reach("aws:ec2/instance:Instance", "ami", "image changed; running hosts keep theirs, only new hosts get it"),
    Reach("hcloud:index/server:Server", "image", "image changed; running hosts keep theirs, only new hosts get it"),
    Reach(
        "hcloud:index/server:Server",
        "sshKeys",
        "SSH keys changed; Hetzner applies them only when a server is created",
    ),
    # kumomta-token.service reads the parameter at boot (README, "The injection token").
    Reach(
        "aws:ssm/parameter:Parameter",
        "value",
        "injection token changed; each MTA reads it at boot: run `systemctl restart kumomta-token` there",
    ),
)

_BY_KEY = {(r.type, r.property): r for r in REACH}


def reach(type_: str, prop: str) -> Reach | None:
    return _BY_KEY.get((type_, prop))
