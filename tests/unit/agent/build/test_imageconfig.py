"""Metadata instructions on an image config, and the history lines Docker writes for them."""

from __future__ import annotations

import pytest

from agent.build.dockerfile import parse
from agent.build.imageconfig import apply_metadata, created_by_nop, start_config
from agent.build.instructions import parse_instruction
from kran import errors


def apply(line: str, config: dict | None = None, env: dict | None = None, cmd_set: bool = False):
    config = {} if config is None else config
    instruction = parse_instruction(parse(f"FROM busybox\n{line}\n").nodes[-1])
    comment = apply_metadata(instruction, config, env or {}, "\\", cmd_set)
    return config, comment


def test_env_replaces_in_place_and_expands_with_the_values_before_the_step():
    config, comment = apply('ENV A=new B="$A more" C=3', {"Env": ["A=old", "PATH=/bin"]}, {"A": "old"})
    assert config["Env"] == ["A=new", "PATH=/bin", "B=old more", "C=3"]
    assert comment == "ENV A=new B=old more C=3"


def test_cmd_and_entrypoint_use_the_shell_for_their_shell_form():
    config, comment = apply("CMD echo hi", {"Shell": ["/bin/bash", "-c"]})
    assert config["Cmd"] == ["/bin/bash", "-c", "echo hi"]
    assert comment == 'CMD ["/bin/bash" "-c" "echo hi"]'
    assert created_by_nop(config, comment) == '/bin/bash -c #(nop)  CMD ["/bin/bash" "-c" "echo hi"]'
    assert created_by_nop(config, "WORKDIR /x", files=True) == "/bin/bash -c #(nop) WORKDIR /x"


def test_entrypoint_drops_an_inherited_cmd_but_not_one_this_stage_set():
    inherited, _ = apply('ENTRYPOINT ["top"]', {"Cmd": ["sh"]})
    assert inherited == {"Entrypoint": ["top"]}
    kept, _ = apply('ENTRYPOINT ["top"]', {"Cmd": ["-b"]}, cmd_set=True)
    assert kept == {"Cmd": ["-b"], "Entrypoint": ["top"]}


def test_workdir_is_relative_to_the_previous_one_and_expanded():
    config, comment = apply("WORKDIR $SUB/../x", {"WorkingDir": "/app"}, {"SUB": "src"})
    assert config["WorkingDir"] == "/app/x" and comment == "WORKDIR /app/x"


def test_labels_user_stopsignal_expose_volume_shell():
    config = {}
    apply('LABEL a=1 "b c"=2', config)
    apply("USER ${WHO:-nobody}", config)
    apply("STOPSIGNAL SIGINT", config)
    _, expose = apply("EXPOSE 80 $PORT/udp", config, {"PORT": "53"})
    _, volume = apply('VOLUME ["/data", "/logs"]', config)
    _, shell = apply('SHELL ["/bin/ash", "-eo", "pipefail", "-c"]', config)
    assert config["Labels"] == {"a": "1", "b c": "2"}
    assert config["User"] == "nobody" and config["StopSignal"] == "SIGINT"
    assert config["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}} and expose == "EXPOSE 80 53/udp"
    assert config["Volumes"] == {"/data": {}, "/logs": {}} and volume == "VOLUME [/data /logs]"
    assert config["Shell"] == ["/bin/ash", "-eo", "pipefail", "-c"]
    assert shell == 'SHELL ["/bin/ash" "-eo" "pipefail" "-c"]'


def test_healthcheck_and_onbuild_are_stored():
    config, comment = apply("HEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost")
    assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q localhost"], "Interval": 5_000_000_000,
                                     "Retries": 3}
    assert comment == "HEALTHCHECK &{[\"CMD-SHELL\" \"wget -q localhost\"] \"5s\" \"0s\" \"0s\" \"0s\" '\\x03'}"
    config, comment = apply("ONBUILD RUN make", {"OnBuild": ["COPY . /src"]})
    assert config["OnBuild"] == ["COPY . /src", "RUN make"] and comment == "ONBUILD RUN make"


def test_bad_values_are_refused():
    with pytest.raises(errors.InvalidArgument, match="invalid port"):
        apply("EXPOSE eighty")
    with pytest.raises(errors.InvalidArgument, match="invalid signal"):
        apply("STOPSIGNAL 'SIG KILL'")


def test_a_stage_starts_with_a_path_and_without_the_base_images_triggers():
    config = start_config({"Env": ["A=1"], "OnBuild": ["RUN x"], "Cmd": ["sh"]})
    assert config["Env"][0].startswith("PATH=/usr/local/sbin:") and config["Env"][1] == "A=1"
    assert "OnBuild" not in config and config["Cmd"] == ["sh"]
    assert start_config({"Env": ["PATH=/bin"]})["Env"] == ["PATH=/bin"]
