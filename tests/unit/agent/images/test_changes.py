"""Dockerfile change lines applied to an image config (docker import --change)."""

from __future__ import annotations

import pytest

from agent.images.changes import apply_changes
from kran import errors


def test_cmd_and_entrypoint_exec_and_shell_forms():
    config = apply_changes({}, ['CMD ["sh", "-c", "echo hi"]'])
    assert config["Cmd"] == ["sh", "-c", "echo hi"]
    config = apply_changes({}, ["CMD echo $HOME"])
    assert config["Cmd"] == ["/bin/sh", "-c", "echo $HOME"]
    config = apply_changes({"Cmd": ["old"]}, ['ENTRYPOINT ["/bin/app"]'])
    assert config["Entrypoint"] == ["/bin/app"] and "Cmd" not in config
    # A JSON-looking but malformed list falls back to the shell form, as in a Dockerfile.
    assert apply_changes({}, ["CMD [oops"])["Cmd"] == ["/bin/sh", "-c", "[oops"]


def test_env_forms_and_override():
    config = apply_changes({"Env": ["PATH=/bin", "A=0"]},
                           ['ENV A=1 B="two words" C=x\\ y', "ENV LEGACY some value here"])
    assert config["Env"] == ["PATH=/bin", "A=1", "B=two words", "C=x y", "LEGACY=some value here"]


def test_label_workdir_user_stopsignal():
    config = apply_changes({}, ['LABEL a=1 "b c"="d e"', "WORKDIR /srv", "WORKDIR app",
                                "USER 1000:1000", "STOPSIGNAL SIGTERM"])
    assert config["Labels"] == {"a": "1", "b c": "d e"}
    assert config["WorkingDir"] == "/srv/app"
    assert config["User"] == "1000:1000"
    assert config["StopSignal"] == "SIGTERM"


def test_expose_and_volume():
    config = apply_changes({}, ["EXPOSE 80 53/udp 8000-8002/tcp", 'VOLUME ["/data", "/logs"]', "VOLUME /cache"])
    assert config["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}, "8002/tcp": {}}
    assert config["Volumes"] == {"/data": {}, "/logs": {}, "/cache": {}}


def test_keywords_are_case_insensitive_and_input_is_not_changed():
    original = {"Env": ["A=1"]}
    config = apply_changes(original, ["env B=2", "", "cmd ls"])
    assert config == {"Env": ["A=1", "B=2"], "Cmd": ["/bin/sh", "-c", "ls"]}
    assert original == {"Env": ["A=1"]}


@pytest.mark.parametrize("line, words", [
    ("RUN echo hi", "not a valid change command"),
    ("FROM busybox", "not a valid change command"),
    ("CMD", "requires at least one argument"),
    ("ENV", "requires at least one argument"),
    ("ENV A", "ENV must have two arguments"),
    ("ENV =x", "without a value"),
    ('LABEL a="unterminated', "No closing quotation"),
    ("EXPOSE http", "invalid port"),
    ("EXPOSE 70000", "invalid port range"),
    ("EXPOSE 90-80", "invalid port range"),
    ('VOLUME [""]', "can not be an empty string"),
    ("STOPSIGNAL kill -9", "invalid signal"),
])
def test_bad_changes_are_invalid_argument(line, words):
    with pytest.raises(errors.InvalidArgument, match=words):
        apply_changes({}, [line])
