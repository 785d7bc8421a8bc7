"""The rendered Nginx site under a real nginx: the guide's verification checks, on loopback."""

import pytest

from components.bootstrap import layout, nginx
from tests.bootstrap.conftest import TOKEN, need
from tests.bootstrap.nginx_harness import Site, request, running

INJECT = "/api/inject/v1"
RIGHT = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    need("nginx", "openssl")
    with running(tmp_path_factory.mktemp("nginx"), TOKEN) as pair:
        yield pair


def test_nginx_accepts_the_rendered_site(tmp_path):
    need("nginx", "openssl")
    checked = Site.render(tmp_path, TOKEN, layout.KUMOD_HTTP).nginx("-t")
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}])
def test_injection_without_the_right_bearer_token_is_401_and_never_reaches_kumod(live, headers):
    site, seen = live
    before = len(seen.requests)
    status, response_headers, _ = request(site.https_port, "POST", INJECT, headers, body=b"{}")
    assert status == 401
    assert response_headers["WWW-Authenticate"].startswith("Bearer")
    assert len(seen.requests) == before


@pytest.mark.parametrize(
    "value",
    [f"Bearer {TOKEN.swapcase()}", f"Bearer {TOKEN.lower()}", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x",
     f"Basic {TOKEN}", f"Bearer{TOKEN}", f"xBearer {TOKEN}"],
)  # fmt: skip
def test_the_token_must_match_exactly_in_case_and_length(live, value):
    """Nginx map keys that are plain strings match case-insensitively (ngx_http_map_module lowercases the
    key and the value), so the token with its case changed got 200; the map entry is a case-sensitive regex now."""
    site, seen = live
    before = len(seen.requests)
    assert request(site.https_port, "POST", INJECT, {"Authorization": value}, body=b"{}")[0] == 401
    assert len(seen.requests) == before


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "Bearer  "])
def test_the_scheme_word_is_case_insensitive(live, scheme):
    """RFC 7235 section 2.1: the auth-scheme is a case-insensitive token; 1*SP separates it from the credentials."""
    site, _ = live
    header = {"Authorization": f"{scheme.strip()}{' ' * max(1, len(scheme) - 5)}{TOKEN}"}
    assert request(site.https_port, "POST", INJECT, header, body=b"{}")[0] == 200


def test_a_token_with_dots_and_pluses_matches_only_itself(tmp_path):
    """`.` and `+` are regex metacharacters; in the map they must match only themselves."""
    need("nginx", "openssl")
    token = "abc.def+ghi" + "Z" * 24
    with running(tmp_path, token) as (site, _):
        assert request(site.https_port, "POST", INJECT, {"Authorization": f"Bearer {token}"}, body=b"{}")[0] == 200
        for forged in (token.replace(".", "x"), token.replace("+", ""), token.replace("def+", "deff")):
            assert request(site.https_port, "POST", INJECT, {"Authorization": f"Bearer {forged}"}, body=b"{}")[0] == 401


def test_right_token_reaches_kumod_without_the_authorization_header(live):
    site, seen = live
    status, _, body = request(site.https_port, "POST", INJECT, RIGHT, body=b'{"content": "x"}')
    assert (status, body) == (200, b"kumod stub\n")
    method, path, headers = seen.requests[-1]
    assert (method, path) == ("POST", INJECT)
    assert "authorization" not in headers


def test_metrics_needs_the_token_too(live):
    site, seen = live
    assert request(site.https_port, "GET", "/metrics")[0] == 401
    assert request(site.https_port, "GET", "/metrics", RIGHT)[0] == 200
    assert seen.requests[-1][:2] == ("GET", "/metrics")


@pytest.mark.parametrize(
    "path",
    ["/", "/unknown", "/api/admin/bounce/v1", "/api/admin/suspend/v1", "/metrics.json", "/rapidoc",
     "/api-docs/openapi.json", "/api/inject/v1/../../admin/bounce/v1", "/api/inject/v2"],
)  # fmt: skip
def test_everything_else_is_404_even_with_the_token(live, path):
    site, seen = live
    before = len(seen.requests)
    assert request(site.https_port, "GET", path, RIGHT)[0] == 404
    assert request(site.https_port, "POST", path, RIGHT, body=b"{}")[0] == 404
    assert len(seen.requests) == before


def test_dot_segments_reach_kumod_as_the_plain_path(live):
    site, seen = live
    assert request(site.https_port, "POST", "/api/admin/../inject/v1", RIGHT, body=b"{}")[0] == 200
    assert seen.requests[-1][1] == INJECT


def test_wrong_method_is_refused_before_kumod(live):
    site, seen = live
    before = len(seen.requests)
    assert request(site.https_port, "GET", INJECT, RIGHT)[0] == 403
    assert request(site.https_port, "DELETE", "/metrics", RIGHT)[0] == 403
    assert len(seen.requests) == before


def test_bodies_over_the_shared_limit_are_413(live):
    site, _ = live
    too_big = b"x" * (layout.BODY_LIMIT_MIB * 1024 * 1024 + 1)
    assert request(site.https_port, "POST", INJECT, RIGHT, body=too_big)[0] == 413


def test_port_80_serves_acme_challenges_and_redirects_the_rest(live):
    site, _ = live
    status, _, body = request(site.http_port, "GET", "/.well-known/acme-challenge/probe-token", tls=False)
    assert (status, body) == (200, b"probe-token.thumbprint")
    status, headers, _ = request(site.http_port, "GET", f"{INJECT}?x=1", RIGHT, tls=False)
    assert status == 301
    assert headers["Location"] == f"https://mta.example.com:{site.https_port}{INJECT}?x=1"
    assert request(site.http_port, "GET", "/.well-known/acme-challenge/missing", tls=False)[0] == 404


def test_redirect_names_the_host_not_the_client_supplied_host_header(live):
    site, _ = live
    _, headers, _ = request(site.http_port, "GET", "/", {"Host": "evil.example"}, tls=False)
    assert headers["Location"].startswith("https://mta.example.com")


@pytest.mark.parametrize(
    "token", ["", "short", "a" * 129, "has space" * 4, 'quo"te' * 8, "semi;colon" * 4, "brace}" * 8, "dollar$" * 8]
)
def test_tokens_that_could_break_the_map_are_refused(token):
    with pytest.raises(ValueError):
        nginx.token_map_line(token)


def test_ipv6_listens_only_when_enabled():
    assert "[::]" not in nginx.site("mta.example.com")
    assert nginx.site("mta.example.com", ipv6=True).count("listen [::]:") == 2
