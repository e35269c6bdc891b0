"""Reference -> endpoint resolution, mirrors, insecure and loopback registries, flag values."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.distribution.registries import (Endpoint, RegistryOptions, check_insecure, check_mirror, endpoints,
                                           is_loopback, registry_of)
from kran import errors


def urls(found: list[Endpoint]) -> list[tuple[str, bool, bool]]:
    return [(e.url, e.verify, e.mirror) for e in found]


def test_docker_hub_only_when_allowed() -> None:
    for pull in (True, False):
        with pytest.raises(errors.FailedPrecondition, match="docker.io is not reachable from this node"):
            endpoints("docker.io", RegistryOptions(), pull=pull)
    assert urls(endpoints("docker.io", RegistryOptions(allow_hub=True), pull=True)) == [
        ("https://registry-1.docker.io", True, False)]


def test_docker_hub_pulls_go_to_the_mirrors_only() -> None:
    options = RegistryOptions(mirrors=("https://m1.example", "http://127.0.0.1:5000"))
    assert urls(endpoints("docker.io", options, pull=True)) == [
        ("https://m1.example", True, True), ("http://127.0.0.1:5000", False, True)]
    # Pushes and logins never go to a mirror, and to Docker Hub only when allowed.
    with pytest.raises(errors.FailedPrecondition):
        endpoints("docker.io", options, pull=False)
    allowed = RegistryOptions(mirrors=options.mirrors, allow_hub=True)
    assert urls(endpoints("docker.io", allowed, pull=False)) == [("https://registry-1.docker.io", True, False)]
    assert urls(endpoints("index.docker.io", options, pull=True))[0][0] == "https://m1.example"


def test_insecure_registry_tries_tls_unverified_then_http() -> None:
    options = RegistryOptions(insecure=("reg.example:5000",))
    assert urls(endpoints("reg.example:5000", options, pull=True)) == [
        ("https://reg.example:5000", False, False), ("http://reg.example:5000", False, False)]


def test_loopback_falls_back_to_http_but_verifies_tls() -> None:
    assert urls(endpoints("localhost:5000", RegistryOptions(), pull=True)) == [
        ("https://localhost:5000", True, False), ("http://localhost:5000", False, False)]
    assert urls(endpoints("reg.example", RegistryOptions(), pull=False)) == [("https://reg.example", True, False)]


@pytest.mark.parametrize("host, loopback", [
    ("localhost:5000", True), ("127.0.0.1", True), ("127.9.9.9:80", True), ("[::1]:5000", True),
    ("foo.localhost", True), ("10.0.0.1:5000", False), ("reg.example", False), ("[fe80::1]:5000", False)])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_mirror_and_insecure_values() -> None:
    assert check_mirror("https://m.example:5000/") == "https://m.example:5000"
    for bad in ("m.example", "ftp://m.example", "https://m.example/path", "https://"):
        with pytest.raises(errors.InvalidArgument):
            check_mirror(bad)
    assert check_insecure("http://Reg.Example:5000/") == "reg.example:5000"
    with pytest.raises(errors.InvalidArgument):
        check_insecure("reg/path")


@pytest.mark.parametrize("address, domain", [
    ("", "docker.io"), ("https://index.docker.io/v1/", "docker.io"), ("registry-1.docker.io", "docker.io"),
    ("myreg:5000", "myreg:5000"), ("https://MyReg:5000/v2/", "myreg:5000")])
def test_registry_of(address: str, domain: str) -> None:
    assert registry_of(address) == domain


def test_trust_hint_names_the_certs_dir_and_flag() -> None:
    endpoint = Endpoint("https://r:5000", "r:5000", certs_dirs=(Path("/etc/kran/certs.d"),))
    assert endpoint.trust_hint() == ("to trust it, put the registry's CA certificate in "
                                     "/etc/kran/certs.d/r:5000/ca.crt on the node, or start kran-agent "
                                     "with --insecure-registry r:5000")
    assert Endpoint("http://r:5000", "r:5000").ssl_context() is False
