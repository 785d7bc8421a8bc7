"""Entry point the Pulumi engine runs (`python -m pulumi.policy <engine> .` in this folder).

It only builds the pack; the policies live in `kumoguard`, where tests import them directly. First it
keeps the engine's secret marks, which the SDK would drop (see kumoguard/secrets.py).
"""

from kumoguard import secrets
from kumoguard.rules import RESOURCE_POLICIES
from kumoguard.stack_rules import STACK_POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

secrets.keep_marks()
PolicyPack(
    name="kumoguard",
    policies=[*RESOURCE_POLICIES, *STACK_POLICIES],
    enforcement_level=EnforcementLevel.MANDATORY,
    description="No public 8000, 5000, metrics or SSH on KumoMTA hosts, however a rule is written, and no private "
    "key in plain text.",
)
