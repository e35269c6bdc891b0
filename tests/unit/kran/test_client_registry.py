"""The SDK's registry helpers: references of pull and push, search terms, auth, progress."""

from __future__ import annotations

import pytest

from kran import errors
from kran.api.v1 import images_pb2
from kran.client.credentials import CredentialStore, Credentials
from kran.client.registry import (RegistryError, auth_message, credentials_for, progress_dict,
                                  pull_reference, push_reference, raise_on_error,
                                  search_registry)


def test_pull_references():
    assert pull_reference("busybox").full() == "docker.io/library/busybox:latest"
    assert pull_reference("busybox", "1.36").full() == "docker.io/library/busybox:1.36"
    assert pull_reference("127.0.0.1:5000/x:1").full() == "127.0.0.1:5000/x:1"
    digest = "sha256:" + "a" * 64
    assert pull_reference("busybox@" + digest).full() == "docker.io/library/busybox@" + digest
    assert pull_reference("busybox", digest).digest == digest
    assert pull_reference("busybox", all_tags=True).full() == "docker.io/library/busybox"


def test_pull_and_push_refuse_what_docker_refuses():
    with pytest.raises(errors.InvalidArgument, match="tag can't be used with --all-tags/-a"):
        pull_reference("busybox:1", all_tags=True)
    with pytest.raises(errors.InvalidArgument, match="invalid reference format"):
        pull_reference("Busybox")
    with pytest.raises(errors.InvalidArgument, match="digest"):
        push_reference("busybox@sha256:" + "a" * 64)
    assert push_reference("127.0.0.1:5000/busybox").tag == "latest"


def test_search_registry():
    assert search_registry("busybox") == "docker.io"
    assert search_registry("library/busybox") == "docker.io"
    assert search_registry("127.0.0.1:5000/busy") == "127.0.0.1:5000"
    assert search_registry("localhost/busy") == "localhost"
    assert search_registry("reg.example.com/x") == "reg.example.com"


def test_credentials_come_from_the_call_or_the_store(tmp_path):
    store = CredentialStore(tmp_path / "config.json")
    assert credentials_for(store, "127.0.0.1:5000") is None
    store.store("127.0.0.1:5000", Credentials("alice", "pw"))
    assert credentials_for(store, "127.0.0.1:5000") == Credentials("alice", "pw")
    assert credentials_for(store, "other:1") is None
    given = credentials_for(store, "127.0.0.1:5000", {"username": "bob", "password": "x"})
    assert given == Credentials("bob", "x")
    with pytest.raises(errors.InvalidArgument, match="token"):
        credentials_for(store, "a", {"token": "x"})


def test_auth_message():
    assert auth_message("127.0.0.1:5000", None) == images_pb2.RegistryAuth()
    message = auth_message("http://127.0.0.1:5000/", Credentials("alice", "pw"))
    assert (message.username, message.password, message.server_address) == \
        ("alice", "pw", "127.0.0.1:5000")


def test_progress_dicts_are_dockers_json_lines():
    assert progress_dict(images_pb2.Progress(status="Digest: x")) == {"status": "Digest: x"}
    line = progress_dict(images_pb2.Progress(id="abc", status="Downloading", current=1,
                                             total=2, node_name="node-1"))
    assert line == {"status": "Downloading", "id": "abc", "node": "node-1",
                    "progressDetail": {"current": 1, "total": 2}}
    failed = progress_dict(images_pb2.Progress(error="manifest unknown"))
    assert failed["error"] == failed["errorDetail"]["message"] == "manifest unknown"


def test_raise_on_error():
    assert raise_on_error(iter([{"status": "a"}])) == [{"status": "a"}]
    with pytest.raises(RegistryError, match="denied"):
        raise_on_error(iter([{"status": "a"}, {"status": "", "error": "denied"}]))
