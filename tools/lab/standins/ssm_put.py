"""What `pulumi up` does to SSM Parameter Store for this stack: write each changed parameter, delete removed ones.

Run on the lab's deploy node against the lab's SSM endpoint (a moto server), with boto3 as the
AWS provider would call the same API (PutParameter with Overwrite, DeleteParameter).
`python -m tools.lab.standins.ssm_put ENDPOINT CA_FILE REGION REQUEST.json`; REQUEST is
{"put": {name: {"type", "value"}}, "delete": [name]}.
"""

import json
import sys

import boto3


def main(endpoint: str, ca_file: str, region: str, request_path: str) -> int:
    with open(request_path) as f:
        request = json.load(f)
    ssm = boto3.client("ssm", region_name=region, endpoint_url=endpoint, verify=ca_file,
                       aws_access_key_id="kumolab", aws_secret_access_key="kumolab")  # fmt: skip
    for name, parameter in request["put"].items():
        ssm.put_parameter(Name=name, Type=parameter["type"], Value=parameter["value"], Overwrite=True)
    for name in request["delete"]:
        ssm.delete_parameter(Name=name)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
