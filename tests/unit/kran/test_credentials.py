"""The credentials store: Docker's config.json shape, mode 0600, round trip, logout."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from kran import errors
from kran.client.credentials import (CONFIG_ENV, CredentialStore, Credentials, config_dir,
                                     server_key)


@pytest.fixture
def store(tmp_path):
    return CredentialStore(tmp_path / "kran" / "config.json")


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_round_trip_in_dockers_shape_with_mode_0600(store):
    key = store.store("127.0.0.1:5000", Credentials("alice", "s3cret:with:colons"))
    assert key == "127.0.0.1:5000"
    assert mode(store.path) == 0o600
    assert mode(store.path.parent) == 0o700
    saved = json.loads(store.path.read_text())
    assert saved == {"auths": {"127.0.0.1:5000": {
        "auth": base64.b64encode(b"alice:s3cret:with:colons").decode()}}}
    assert CredentialStore(store.path).get("127.0.0.1:5000") == \
        Credentials("alice", "s3cret:with:colons")
    assert store.servers() == ["127.0.0.1:5000"]


def test_a_wider_file_becomes_0600_when_written(store):
    store.path.parent.mkdir(parents=True)
    store.path.write_text('{"auths": {}}')
    os.chmod(store.path, 0o644)
    store.store("reg:5000", Credentials("bob", "pw"))
    assert mode(store.path) == 0o600
    assert not [p for p in store.path.parent.iterdir() if p.name != "config.json"]


def test_erase_forgets_one_registry_and_keeps_the_rest(store):
    store.path.parent.mkdir(parents=True)
    store.path.write_text(json.dumps({"auths": {}, "currentContext": "lab"}))
    store.store("a:5000", Credentials("a", "1"))
    store.store("b:5000", Credentials("b", "2"))
    assert store.erase("a:5000") is True
    assert store.erase("a:5000") is False
    assert store.get("a:5000") is None
    assert store.get("b:5000") == Credentials("b", "2")
    assert json.loads(store.path.read_text())["currentContext"] == "lab"


def test_identity_tokens_are_kept(store):
    store.store("reg:5000", Credentials("bob", "pw", identity_token="tok"))
    assert store.get("reg:5000").identity_token == "tok"
    store.store("other:1", Credentials(identity_token="tok2"))
    assert store.get("other:1") == Credentials(identity_token="tok2")


def test_missing_file_means_no_credentials(store):
    assert store.get("reg:5000") is None
    assert store.servers() == []
    assert store.erase("reg:5000") is False
    assert not store.path.exists()


def test_remembered_credentials_come_first_and_are_not_written(store):
    store.store("reg:5000", Credentials("disk", "1"))
    store.remember("reg:5000", Credentials("memory", "2"))
    assert store.get("reg:5000").username == "memory"
    assert CredentialStore(store.path).get("reg:5000").username == "disk"
    assert store.erase("reg:5000") is True
    assert store.get("reg:5000") is None


def test_bad_files_are_clear_errors_that_name_no_secret(store):
    store.path.parent.mkdir(parents=True)
    store.path.write_text("{not json")
    with pytest.raises(errors.InvalidArgument, match="not valid JSON"):
        store.get("reg:5000")
    store.path.write_text(json.dumps({"auths": {"reg:5000": {"auth": "%%%secret"}}}))
    with pytest.raises(errors.InvalidArgument, match="reg:5000") as caught:
        store.get("reg:5000")
    assert "secret" not in str(caught.value)
    store.path.write_text(json.dumps({"auths": []}))
    with pytest.raises(errors.InvalidArgument):
        store.get("reg:5000")


def test_repr_hides_the_password():
    assert "pw" not in repr(Credentials("bob", "pw", "tok"))
    assert "tok" not in repr(Credentials("bob", "pw", "tok"))


def test_server_keys():
    assert server_key(None) == server_key("") == "docker.io"
    assert server_key("https://index.docker.io/v1/") == "docker.io"
    assert server_key("registry-1.docker.io") == "docker.io"
    assert server_key("http://127.0.0.1:5000/v2/") == "127.0.0.1:5000"
    assert server_key("Reg.Example.com:443") == "reg.example.com:443"


def test_config_dir_from_env(tmp_path):
    assert config_dir({CONFIG_ENV: str(tmp_path)}) == tmp_path
    assert config_dir({}).name == ".kran"
