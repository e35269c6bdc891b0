"""Image references parse and normalise as Docker's do."""

from __future__ import annotations

import pytest

from kran import errors, reference

HEX = "a" * 64


@pytest.mark.parametrize("text, full, familiar", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox:1", "docker.io/library/busybox:1", "busybox:1"),
    ("user/app:v2", "docker.io/user/app:v2", "user/app:v2"),
    ("docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"),
    ("myreg:5000/a/b:1", "myreg:5000/a/b:1", "myreg:5000/a/b:1"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app:latest"),
    ("localhost:5000", "docker.io/library/localhost:5000", "localhost:5000"),
    ("quay.io/coreos/etcd:v3.5.0", "quay.io/coreos/etcd:v3.5.0", "quay.io/coreos/etcd:v3.5.0"),
    ("[::1]:5000/app:x", "[::1]:5000/app:x", "[::1]:5000/app:x"),
    ("192.168.1.1:5000/a", "192.168.1.1:5000/a:latest", "192.168.1.1:5000/a:latest"),
    ("a_b.c-d__e---f", "docker.io/library/a_b.c-d__e---f:latest", "a_b.c-d__e---f:latest"),
    ("app:Tag_1.x-Y", "docker.io/library/app:Tag_1.x-Y", "app:Tag_1.x-Y"),
    (f"app@sha256:{HEX}", f"docker.io/library/app@sha256:{HEX}", f"app@sha256:{HEX}"),
    (f"app:1@sha256:{HEX}", f"docker.io/library/app:1@sha256:{HEX}", f"app:1@sha256:{HEX}"),
    ("Registry.Example.com/app", "Registry.Example.com/app:latest", "Registry.Example.com/app:latest"),
])
def test_valid_references_normalise(text, full, familiar):
    ref = reference.parse(text)
    assert ref.full() == full
    assert ref.familiar() == familiar
    assert str(ref) == familiar


@pytest.mark.parametrize("text", [
    "", ":tag", "a:b:c", "-app", "app-", "a//b", "a/", "/a", "app:", "app:-x", "app:.x",
    "app:" + "x" * 129, "app@sha256:123", "app@md5:" + HEX, "app b", "a..b", "app@",
    "myreg:port/app", "a" * 256,
])
def test_invalid_references_are_refused(text):
    with pytest.raises(errors.InvalidArgument, match="invalid reference format"):
        reference.parse(text)


@pytest.mark.parametrize("text", ["Busybox", "user/App:1", "myreg:5000/A"])
def test_uppercase_repository_is_refused_with_dockers_words(text):
    with pytest.raises(errors.InvalidArgument) as exc:
        reference.parse(text)
    assert exc.value.message == "invalid reference format: repository name must be lowercase"


def test_a_64_hex_name_is_refused():
    with pytest.raises(errors.InvalidArgument, match="cannot specify 64-byte hexadecimal strings"):
        reference.parse(HEX)


def test_parts_and_familiar_name():
    ref = reference.parse("myreg:5000/team/app:2")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("myreg:5000", "team/app", "2", None)
    assert ref.name() == "myreg:5000/team/app"
    assert ref.familiar_name() == "myreg:5000/team/app"
    assert reference.parse("busybox").familiar_name() == "busybox"
    assert reference.parse("user/app").familiar_name() == "user/app"


def test_latest_only_without_tag_and_digest():
    assert reference.parse(f"app@sha256:{HEX}").tag is None
    assert reference.parse("app", default_tag=False).tag is None
    assert reference.parse("app").tag == "latest"


def test_with_tag_and_with_digest():
    ref = reference.parse("app:1")
    assert ref.with_tag("2").familiar() == "app:2"
    assert ref.with_digest(f"sha256:{HEX}").familiar() == f"app@sha256:{HEX}"
    with pytest.raises(errors.InvalidArgument):
        ref.with_tag("-bad")
    with pytest.raises(errors.InvalidArgument):
        ref.with_digest("sha256:../../etc")


def test_parse_tagged_refuses_digests():
    assert reference.parse_tagged("app:1").full() == "docker.io/library/app:1"
    with pytest.raises(errors.InvalidArgument, match="digest"):
        reference.parse_tagged(f"app@sha256:{HEX}")


def test_ids_and_prefixes():
    assert reference.is_full_id(HEX)
    assert reference.is_full_id(f"sha256:{HEX}")
    assert not reference.is_full_id(HEX[:63])
    assert reference.id_prefix("sha256:ab") == "ab"
    assert reference.id_prefix("a") == "a"
    assert reference.id_prefix("busybox") is None
    assert reference.id_prefix("ABC") is None
