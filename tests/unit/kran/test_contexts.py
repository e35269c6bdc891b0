"""Contexts kept in a user's config directory, and which one is in effect."""

from __future__ import annotations

import json
import stat

import pytest

from kran import errors
from kran.client import Client, ContextStore, Credentials, CredentialStore


def store(tmp_path, **environ):
    return ContextStore(tmp_path, environ)


def test_default_always_exists(tmp_path):
    contexts = store(tmp_path).list()
    assert [(c.name, c.host) for c in contexts] == [("default", "127.0.0.1:7640")]
    assert store(tmp_path, KRAN_HOST="a:1,b:2").default().host == "a:1,b:2"
    with pytest.raises(errors.FailedPrecondition, match='"default" cannot be removed'):
        store(tmp_path).remove("default")
    with pytest.raises(errors.InvalidArgument, match="reserved"):
        store(tmp_path).create("default", "x")


def test_create_list_inspect(tmp_path):
    contexts = store(tmp_path)
    created = contexts.create("prod", "a,b:7000", "Production")
    assert created.host == "a:7640,b:7000"
    assert [c.name for c in contexts.list()] == ["default", "prod"]
    found = contexts.get("prod")
    assert (found.host, found.description, found.error) == ("a:7640,b:7000", "Production", "")
    assert found.attrs["Endpoints"] == {"kran": {"Host": "a:7640,b:7000"}}
    assert found.attrs["Metadata"] == {"Description": "Production"}
    path = tmp_path / "contexts" / "prod.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(errors.AlreadyExists):
        contexts.create("prod", "c")
    for bad in ("-x", "a b", "x/y", "é"):
        with pytest.raises(errors.InvalidArgument, match="is invalid"):
            contexts.create(bad, "c")
    with pytest.raises(errors.InvalidArgument):
        contexts.create("ok", "a:notaport")
    with pytest.raises(errors.NotFound, match='context "nope" does not exist'):
        contexts.get("nope")


def test_use_keeps_credentials_and_remove_falls_back_to_default(tmp_path):
    credentials = CredentialStore(tmp_path / "config.json")
    credentials.store("127.0.0.1:5000", Credentials("u", "p"))
    contexts = store(tmp_path)
    contexts.create("prod", "a")
    contexts.use("prod")
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["currentContext"] == "prod" and "127.0.0.1:5000" in config["auths"]
    assert stat.S_IMODE((tmp_path / "config.json").stat().st_mode) == 0o600
    assert contexts.current_name() == "prod"
    contexts.remove("prod")
    assert contexts.current_name() == "default"
    assert credentials.get("127.0.0.1:5000") == Credentials("u", "p")
    with pytest.raises(errors.NotFound):
        contexts.use("prod")


def test_precedence(tmp_path):
    base = store(tmp_path)
    base.create("prod", "p:1")
    base.create("test", "t:1")
    base.use("prod")
    assert base.in_effect() == ("p:1", "prod")
    assert store(tmp_path, KRAN_CONTEXT="test").in_effect() == ("t:1", "test")
    assert store(tmp_path, KRAN_CONTEXT="test", KRAN_HOST="h:1").in_effect() == ("h:1", "default")
    assert store(tmp_path, KRAN_HOST="h:1").in_effect(context="test") == ("t:1", "test")
    assert store(tmp_path, KRAN_HOST="h:1").in_effect(host="x:1") == ("x:1", "default")
    assert base.in_effect(context="default") == ("127.0.0.1:7640", "default")
    with pytest.raises(errors.InvalidArgument, match="conflicting options"):
        base.in_effect(host="x", context="prod")
    with pytest.raises(errors.NotFound):
        store(tmp_path, KRAN_CONTEXT="gone").in_effect()


def test_a_broken_context_is_listed_with_its_error(tmp_path):
    contexts = store(tmp_path)
    contexts.create("prod", "a")
    (tmp_path / "contexts" / "prod.json").write_text("{not json")
    [_, broken] = contexts.list()
    assert broken.name == "prod" and "not valid JSON" in broken.error
    with pytest.raises(errors.FailedPrecondition):
        store(tmp_path, KRAN_CONTEXT="prod").in_effect()


def test_sdk_from_env_follows_contexts(tmp_path):
    contexts = store(tmp_path)
    contexts.create("pair", "10.0.0.1:7640,10.0.0.2:7640")
    contexts.use("pair")
    with Client.from_env({"KRAN_CONFIG": str(tmp_path)}) as client:
        assert client.addresses == ["10.0.0.1:7640", "10.0.0.2:7640"]
    with Client.from_env({"KRAN_CONFIG": str(tmp_path), "KRAN_HOST": "10.0.0.3"}) as client:
        assert client.addresses == ["10.0.0.3:7640"]
