"""`cloud-init schema --config-file PATH` for many paths in one interpreter: one JSON line per path.

Run with the interpreter of the `cloud-init` command (it imports the `cloudinit` package, which lives there,
not in the project's virtualenv), with paths as arguments, or none to read one path per line from stdin until
it closes. Each path goes through cloud-init's own command-line entry point, exactly as `cloud-init schema
--config-file PATH` would, so a newer cloud-init checks with its own rules; starting that interpreter once
instead of once per host (about half a second each) keeps the property test fast.
"""

import contextlib
import io
import json
import sys

from cloudinit.cmd.main import main


def check(path: str) -> dict:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["cloud-init", "schema", "--config-file", path]) or 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    valid = code == 0 and "Valid" in out.getvalue()  # "Valid cloud-config: PATH" (22.4), "Valid schema PATH" later
    return {"path": path, "valid": valid, "code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


if __name__ == "__main__":
    for argument in sys.argv[1:] or (line.rstrip("\n") for line in sys.stdin):
        print(json.dumps(check(argument)), flush=True)
