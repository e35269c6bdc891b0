"""WWW-Authenticate parsing, credentials and the token cache."""

from __future__ import annotations

import pytest

from agent.distribution.auth import (Challenge, Credentials, TokenCache, parse_challenges, pull_scope, push_scope,
                                     token_from_response)
from kran import errors
from kran.api.v1 import images_pb2


def test_bearer_challenge() -> None:
    header = ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
              'scope="repository:library/alpine:pull"')
    assert parse_challenges(header) == [Challenge("bearer", {
        "realm": "https://auth.docker.io/token", "service": "registry.docker.io",
        "scope": "repository:library/alpine:pull"})]


def test_basic_challenge_and_several_challenges() -> None:
    assert parse_challenges('Basic realm="kran-test"') == [Challenge("basic", {"realm": "kran-test"})]
    both = parse_challenges('Basic realm="a b, c", Bearer realm="https://x/t", service=reg , error=invalid_token')
    assert both == [Challenge("basic", {"realm": "a b, c"}),
                    Challenge("bearer", {"realm": "https://x/t", "service": "reg", "error": "invalid_token"})]


def test_quoted_escapes_and_case() -> None:
    assert parse_challenges(r'BEARER Realm="say \"hi\"\\"') == [Challenge("bearer", {"realm": 'say "hi"\\'})]


@pytest.mark.parametrize("header", ["", "   ", ",,", '"quoted"'])
def test_nothing_usable(header: str) -> None:
    assert parse_challenges(header) == []


def test_unterminated_quote_keeps_what_parsed() -> None:
    assert parse_challenges('Bearer realm="https://x/t", service="oops') == [
        Challenge("bearer", {"realm": "https://x/t"})]


def test_credentials() -> None:
    creds = Credentials("alice", "pw:with:colons")
    assert creds.basic() == "Basic YWxpY2U6cHc6d2l0aDpjb2xvbnM="
    assert "pw" not in repr(creds)
    assert not Credentials() and Credentials(identity_token="t")


def test_credentials_go_only_to_their_registry() -> None:
    message = images_pb2.RegistryAuth(username="u", password="p", server_address="https://myreg:5000/")
    creds = Credentials.from_message(message)
    assert creds.server == "myreg:5000"
    assert creds.for_registry("myreg:5000") is creds
    assert not creds.for_registry("other:5000")
    hub = Credentials.from_message(images_pb2.RegistryAuth(
        username="u", password="p", server_address="https://index.docker.io/v1/"))
    assert hub.for_registry("docker.io") is hub
    anywhere = Credentials.from_message(images_pb2.RegistryAuth(username="u", password="p"))
    assert anywhere.for_registry("any:1") is anywhere


def test_token_answers() -> None:
    assert token_from_response({"token": "t", "expires_in": 300}) == ("t", 300)
    assert token_from_response({"access_token": "a"}) == ("a", 60)
    with pytest.raises(errors.PermissionDenied):
        token_from_response({"expires_in": 3})
    with pytest.raises(errors.PermissionDenied):
        token_from_response(["t"])


def test_token_cache_expires_early() -> None:
    now = [100.0]
    cache = TokenCache(clock=lambda: now[0])
    scopes = (pull_scope("a/b"),)
    cache.put(scopes, "tok", 60)
    assert cache.get(scopes) == "tok"
    assert cache.get((push_scope("a/b"),)) is None
    now[0] = 156.0  # within the 5 s margin before expiry
    assert cache.get(scopes) is None
    cache.put(scopes, "tok2", 60)
    cache.drop(scopes)
    assert cache.get(scopes) is None


def test_scopes() -> None:
    assert pull_scope("library/busybox") == "repository:library/busybox:pull"
    assert push_scope("a") == "repository:a:pull,push"
