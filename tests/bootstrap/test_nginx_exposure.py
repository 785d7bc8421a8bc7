"""No DKIM key (or any other secret) over any web-served path: the guide's "What not to expose", item 4.

Two checks of the rendered site under the real nginx. Statically, `nginx -T` (the configuration after
every include) serves files from exactly one place, the ACME webroot, which holds none of the protected
directories. Live, crafted paths that try to climb out of the webroot, or a symlink planted in it,
never return a protected file's bytes.
"""

import re
from pathlib import Path

import pytest

from components.bootstrap import layout
from tests.bootstrap.conftest import TOKEN, need
from tests.bootstrap.nginx_harness import Site, request, running

# Where secrets live on a host: never under anything Nginx serves.
PROTECTED = (layout.DKIM_DIR, layout.KUMO_ETC, "/etc/nginx/kumomta-secrets", "/etc/nginx/kumomta-tls",
             "/var/lib/cloud", layout.SPOOL_DIR, "/var/lib/kumomta-infra", "/run/kumomta-infra")  # fmt: skip
KEY = b"-----BEGIN RSA PRIVATE KEY-----\nnot-a-real-key\n-----END RSA PRIVATE KEY-----\n"


def test_after_every_include_nginx_serves_files_from_the_acme_webroot_alone(tmp_path):
    need("nginx", "openssl")
    site = Site.render(tmp_path, TOKEN, layout.KUMOD_HTTP)
    dumped = site.nginx("-T")
    assert dumped.returncode == 0, dumped.stderr
    sources = re.findall(r"^\s*(root|alias)\s+([^;]+);", dumped.stdout, re.MULTILINE)
    assert sources == [("root", str(tmp_path / "acme"))]  # the harness's stand-in for /var/www/acme
    for protected in PROTECTED:
        assert not Path(protected).is_relative_to(layout.ACME_ROOT)
        assert not Path(layout.ACME_ROOT).is_relative_to(protected)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The site, with a key file beside the webroot (as /opt is beside /var/www) and a symlink to it inside."""
    need("nginx", "openssl")
    root = tmp_path_factory.mktemp("exposure")
    with running(root, TOKEN) as (site, seen):
        secrets = root / "opt" / "kumomta" / "etc" / "dkim" / "example.com"
        secrets.mkdir(parents=True)
        (secrets / "s1.key").write_bytes(KEY)
        (root / "acme" / ".well-known" / "acme-challenge" / "planted").symlink_to(secrets / "s1.key")
        yield site, seen


CLIMBS = [
    "/.well-known/acme-challenge/../../opt/kumomta/etc/dkim/example.com/s1.key",
    "/.well-known/acme-challenge/%2e%2e/%2e%2e/opt/kumomta/etc/dkim/example.com/s1.key",
    "/.well-known/acme-challenge/..%2f..%2fopt/kumomta/etc/dkim/example.com/s1.key",
    "/.well-known/acme-challenge/%252e%252e/%252e%252e/opt/kumomta/etc/dkim/example.com/s1.key",
    "/.well-known/acme-challenge/..\\..\\opt\\kumomta\\etc\\dkim\\example.com\\s1.key",
    "/.well-known/acme-challenge//../../opt/kumomta/etc/dkim/example.com/s1.key",
    "/.well-known/acme-challenge/planted",
    "/opt/kumomta/etc/dkim/example.com/s1.key",
    "/etc/nginx/kumomta-secrets/bearer.map",
]


@pytest.mark.parametrize("path", CLIMBS)
@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_no_crafted_path_reaches_a_key(live, path, tls):
    site, seen = live
    port = site.https_port if tls else site.http_port
    before = len(seen.requests)
    status, _, body = request(port, "GET", path, {"Authorization": f"Bearer {TOKEN}"}, tls=tls)
    assert b"PRIVATE KEY" not in body
    assert status in (301, 400, 403, 404), status  # :80 redirects everything outside the webroot to https
    assert len(seen.requests) == before  # nor was it handed to kumod


def test_the_challenge_files_themselves_are_still_served(live):
    site, _ = live
    status, _, body = request(site.http_port, "GET", "/.well-known/acme-challenge/probe-token", tls=False)
    assert (status, body) == (200, b"probe-token.thumbprint")
