"""Pulumi entry point: validate the stack config, build the hosts, export what operators need."""

import pulumi

from components.platform import build, outputs
from components.settings import ConfigError, load

try:
    settings = load()
except ConfigError as err:
    # RunError is reported as one error line, without a Python traceback.
    raise pulumi.RunError(str(err)) from None

pulumi.export("hosts", outputs(build(settings)))
