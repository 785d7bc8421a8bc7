"""Every systemd unit the user data installs passes `systemd-analyze verify`, the unit loader's own check.

It is run against a throw-away root holding the distribution's units, the rendered ones and the
programs they start, so an unknown key, a bad value or a missing program fails here, not at boot.
"""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.bootstrap.conftest import need
from tests.bootstrap.test_userdata import _render

SYSTEM_UNITS = Path("/usr/lib/systemd/system")


def _units(text: str) -> dict[str, str]:
    return {f["path"]: f["content"] for f in yaml.safe_load(text)["write_files"] if "/systemd/system/" in f["path"]}


@pytest.mark.parametrize("role", ["mta", "proxy"])
def test_rendered_units_pass_systemd_analyze_verify(tmp_path, cloud, role):
    need("systemd-analyze")
    if not SYSTEM_UNITS.is_dir():
        pytest.skip(f"{SYSTEM_UNITS} is missing (apt-get install systemd)")
    text = _render(role, cloud, monitoringCidrs=["10.9.0.0/24"])
    files = {f["path"]: f for f in yaml.safe_load(text)["write_files"]}
    shutil.copytree(SYSTEM_UNITS, tmp_path / "usr/lib/systemd/system", symlinks=True)
    units = _units(text)
    names = []
    for path, content in units.items():
        target = tmp_path / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        if "/systemd/system/" in path and path.count("/") == 4:  # not a drop-in
            names.append(Path(path).name)
    # The programs the units start: the rendered scripts as they are, stand-ins for packaged binaries.
    for program in ("/opt/kumomta/sbin/proxy-server", "/usr/bin/certbot", "/bin/systemctl"):
        _executable(tmp_path / program.lstrip("/"), "#!/bin/sh\n")
    for path, f in files.items():
        if path.startswith("/usr/local/sbin/"):
            _executable(tmp_path / path.lstrip("/"), f["content"])
    assert names
    done = subprocess.run(
        ["systemd-analyze", "verify", f"--root={tmp_path}", *names], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "ignoring" not in done.stderr and "Unknown" not in done.stderr, done.stderr


def _executable(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    path.chmod(0o755)
