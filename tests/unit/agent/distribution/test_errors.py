"""How registry answers become kran errors with Docker's words."""

from __future__ import annotations

import json

import pytest

from agent.distribution.auth import Credentials
from agent.distribution.client import RegistryError, error_codes, next_link
from agent.distribution.pull import _pull_error
from kran import errors, reference


def test_error_codes_and_text() -> None:
    body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown", "detail": {}}]})
    codes = error_codes(body.encode())
    assert codes == (("MANIFEST_UNKNOWN", "manifest unknown"),)
    assert RegistryError(404, "Not Found", codes).text() == "manifest unknown: manifest unknown"
    assert RegistryError(502, "Bad Gateway").text() == "received unexpected HTTP status: 502 Bad Gateway"
    assert error_codes(b"<html>") == () and error_codes(b'{"errors": "x"}') == ()


@pytest.mark.parametrize("status, kind", [(401, errors.PermissionDenied), (403, errors.PermissionDenied),
                                          (404, errors.NotFound), (429, errors.Unavailable),
                                          (503, errors.Unavailable), (400, errors.InvalidArgument)])
def test_statuses_map_to_kinds(status: int, kind: type) -> None:
    assert isinstance(RegistryError(status, "x").to_kran(), kind)
    assert str(RegistryError(401, "Unauthorized").to_kran()) == "unauthorized: authentication required"


def test_pull_errors_say_what_docker_says() -> None:
    ref = reference.parse("busybox:nope")
    unknown_tag = _pull_error(RegistryError(404, "", (("MANIFEST_UNKNOWN", "manifest unknown"),)), ref, Credentials())
    assert (type(unknown_tag), str(unknown_tag)) == (
        errors.NotFound, "manifest for busybox:nope not found: manifest unknown: manifest unknown")
    missing = _pull_error(RegistryError(404, "", (("NAME_UNKNOWN", "repository name not known"),)),
                          reference.parse("localhost:5000/x"), Credentials())
    assert str(missing) == ("pull access denied for localhost:5000/x, repository does not exist or may require "
                            "'docker login': denied: requested access to the resource is denied")
    anonymous = _pull_error(RegistryError(401, "", (("UNAUTHORIZED", "authentication required"),)), ref,
                            Credentials())
    assert isinstance(anonymous, errors.NotFound)
    wrong = _pull_error(RegistryError(401, "", (("UNAUTHORIZED", "authentication required"),)), ref,
                        Credentials("u", "bad"))
    assert (type(wrong), str(wrong)) == (errors.PermissionDenied, "unauthorized: authentication required")


def test_next_link() -> None:
    assert next_link('</v2/_catalog?last=b&n=2>; rel="next"') == "/v2/_catalog?last=b&n=2"
    assert next_link("") is None
