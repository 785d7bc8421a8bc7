"""Only the MTA role can read the injection token: the registered policy documents, evaluated.

Every SSM-managed instance may call ssm:GetParameter on any parameter, because
AmazonSSMManagedInstanceCore grants it on "*". So the proxies can fetch the SecureString; what
they must not be able to do is decrypt it, and that is the secrets key's policy to refuse.
"""

import json

import pytest

from tests.aws.iam import Request, identity_allows, key_allows
from tests.stacks import run
from tools.mockrun import ACCOUNT, DEPLOYER

# The ssm:* statement of the AWS-managed policy the instance roles carry, version 3, as published at
# https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AmazonSSMManagedInstanceCore.html
# (its other statements are ssmmessages:* and ec2messages:*; none touches KMS).
SSM_MANAGED_INSTANCE_CORE = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "ssm:DescribeAssociation",
                "ssm:GetDeployablePatchSnapshotForInstance",
                "ssm:GetDocument",
                "ssm:DescribeDocument",
                "ssm:GetManifest",
                "ssm:GetParameter",
                "ssm:GetParameters",
                "ssm:ListAssociations",
                "ssm:ListInstanceAssociations",
                "ssm:PutInventory",
                "ssm:PutComplianceItems",
                "ssm:PutConfigurePackageResult",
                "ssm:UpdateAssociationStatus",
                "ssm:UpdateInstanceAssociationStatus",
                "ssm:UpdateInstanceInformation",
            ],
            "Resource": "*",
        }
    ],
}
REGION = "eu-central-1"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"


def _role_documents(result, role: str) -> tuple[str, list[dict]]:
    (iam_role,) = [r for r in result.of_type("aws:iam/role:Role") if r.inputs["tags"]["kumomta-role"] == role]
    managed = [a.inputs["policyArn"] for a in result.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")]
    assert managed.count("arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore") == 2, "one per role"
    inline = [
        json.loads(p.inputs["policy"])
        for p in result.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.inputs["role"] == iam_role.id
    ]
    return iam_role.state["arn"], [SSM_MANAGED_INSTANCE_CORE, *inline]


def _can_read_token(result, principal: str, identity: list[dict]) -> tuple[bool, bool]:
    """(may fetch the parameter, may decrypt it through SSM)."""
    (parameter,) = result.of_type("aws:ssm/parameter:Parameter")
    (key,) = result.of_type("aws:kms/key:Key")
    assert parameter.inputs["keyId"] == key.state["arn"], "the token is under the stack's own key"
    fetch = identity_allows(identity, Request(principal, "ssm:GetParameter", parameter.state["arn"]))
    # SSM asks KMS to decrypt on the caller's behalf with this encryption context (AWS KMS developer
    # guide, "How AWS Systems Manager Parameter Store uses AWS KMS").
    context = {
        "kms:ViaService": f"ssm.{REGION}.amazonaws.com",
        "kms:EncryptionContext:PARAMETER_ARN": parameter.state["arn"],
    }
    decrypt = key_allows(
        json.loads(key.inputs["policy"]), identity, Request(principal, "kms:Decrypt", key.state["arn"], context), ROOT
    )
    return fetch, decrypt


def test_the_mta_role_reads_and_decrypts_the_token():
    result = run()
    assert _can_read_token(result, *_role_documents(result, "mta")) == (True, True)


def test_the_proxy_role_can_fetch_the_parameter_but_never_decrypt_it():
    result = run()
    assert _can_read_token(result, *_role_documents(result, "proxy")) == (True, False)


def test_the_mta_role_cannot_decrypt_outside_ssm_or_outside_its_own_path():
    result = run()
    principal, identity = _role_documents(result, "mta")
    (key,) = result.of_type("aws:kms/key:Key")
    policy = json.loads(key.inputs["policy"])
    elsewhere = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/kumomta/prod/proxy/anything"
    for context in (
        {"kms:EncryptionContext:PARAMETER_ARN": elsewhere, "kms:ViaService": f"ssm.{REGION}.amazonaws.com"},
        {"kms:EncryptionContext:PARAMETER_ARN": elsewhere.replace("proxy/anything", "mta/x")},  # direct KMS call
    ):
        assert not key_allows(policy, identity, Request(principal, "kms:Decrypt", key.state["arn"], context), ROOT)


@pytest.mark.parametrize("action", ["kms:Decrypt", "kms:CreateGrant"])
def test_the_account_administers_the_key_but_cannot_use_or_grant_it(action):
    """Were the root delegated Decrypt or CreateGrant, any IAM policy in the account could hand out the token."""
    (key,) = run().of_type("aws:kms/key:Key")
    policy = json.loads(key.inputs["policy"])
    someone = f"arn:aws:iam::{ACCOUNT}:role/any-admin"
    admin = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}
    assert not key_allows(policy, [admin], Request(someone, action, key.state["arn"]), ROOT)
    assert key_allows(policy, [admin], Request(someone, "kms:PutKeyPolicy", key.state["arn"]), ROOT)


def test_the_deployer_is_the_role_behind_the_session_or_the_configured_arns():
    default = json.loads(run().of_type("aws:kms/key:Key")[0].inputs["policy"])
    (deployers,) = [s for s in default["Statement"] if s["Sid"] == "DeployersWriteAndReadSecrets"]
    # A key policy names IAM roles, not sts assumed-role sessions (KMS rejects or never matches those).
    assert deployers["Principal"]["AWS"] == [f"arn:aws:iam::{ACCOUNT}:role/{DEPLOYER}"]
    arns = ["arn:aws:iam::123456789012:role/ci-deploy", "arn:aws:iam::123456789012:user/ops/alice"]
    configured = run(aws={"availabilityZone": "eu-central-1a", "deployerArns": arns})
    policy = json.loads(configured.of_type("aws:kms/key:Key")[0].inputs["policy"])
    (deployers,) = [s for s in policy["Statement"] if s["Sid"] == "DeployersWriteAndReadSecrets"]
    assert deployers["Principal"]["AWS"] == sorted(arns)
