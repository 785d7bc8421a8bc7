"""Pulumi entry point: validate the stack config, build the hosts, export what operators need."""

import pulumi

from components.platform import build, inject_token, outputs
from components.settings import ConfigError, load

try:
    settings = load()
except ConfigError as err:
    # RunError is reported as one error line, without a Python traceback.
    raise pulumi.RunError(str(err)) from None

token = inject_token(settings)
hosts, mail = build(settings, token)
pulumi.export("hosts", outputs(hosts))
pulumi.export("dkim", mail.public_keys)  # each DKIM record as the stack publishes it (or you must, publish: false)
pulumi.export("injectToken", token)  # a secret output: `pulumi stack output --show-secrets injectToken`
