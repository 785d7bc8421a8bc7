"""Just enough of AWS's policy evaluation to ask "may this role read that secret?" of registered documents.

The rules followed (IAM User Guide, "Policy evaluation logic"; AWS KMS developer guide, "Key policies"):
an explicit Deny wins; within one account an identity policy or a resource policy that names the
principal allows. For KMS the key policy is the gate: IAM policies count only where the key policy
delegates to the account root for that action ("kms:*" or the action itself), which ours never does
for Decrypt.
"""

import fnmatch
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Request:
    principal: str  # the role ARN
    action: str
    resource: str
    context: dict[str, str] = field(default_factory=dict)


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def _matches(patterns, value: str) -> bool:
    """IAM wildcards: `*` and `?`, case-insensitive for actions (service prefixes are case-insensitive)."""
    return any(fnmatch.fnmatchcase(value.lower(), p.lower()) for p in _listed(patterns))


def _conditions_hold(condition: dict, context: dict[str, str]) -> bool:
    for operator, tests in condition.items():
        for key, expected in tests.items():
            actual = context.get(key)
            if actual is None:
                return False
            if operator == "StringEquals" and actual not in _listed(expected):
                return False
            if operator == "StringLike" and not any(fnmatch.fnmatchcase(actual, p) for p in _listed(expected)):
                return False
            if operator not in ("StringEquals", "StringLike"):
                raise NotImplementedError(operator)
    return True


def _statements(document: dict, request: Request, principal_required: bool):
    for statement in _listed(document["Statement"]):
        if principal_required:
            principals = _listed(statement.get("Principal", {}).get("AWS", []))
            if request.principal not in principals:
                continue
        if not _matches(statement["Action"], request.action):
            continue
        if not _matches(statement.get("Resource", "*"), request.resource):
            continue
        if _conditions_hold(statement.get("Condition", {}), request.context):
            yield statement["Effect"]


def identity_allows(policies: list[dict], request: Request) -> bool:
    effects = [e for policy in policies for e in _statements(policy, request, principal_required=False)]
    return "Allow" in effects and "Deny" not in effects


def key_allows(key_policy: dict, identity_policies: list[dict], request: Request, account_root: str) -> bool:
    """Decrypt-style KMS access: the key policy names the principal, or delegates to the account root."""
    direct = list(_statements(key_policy, request, principal_required=True))
    if "Deny" in direct:
        return False
    if "Allow" in direct:
        return True
    delegated = list(_statements(key_policy, Request(account_root, request.action, request.resource), True))
    return "Allow" in delegated and identity_allows(identity_policies, request)
