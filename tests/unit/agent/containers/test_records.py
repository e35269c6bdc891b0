"""Container records: Docker's config merge, create-time validation, persistence, timestamps."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from agent.containers import records
from agent.containers.records import ContainerRecord
from kran import errors
from kran.api.v1 import containers_pb2

ID = "ab" * 32
IMAGE = {"Env": ["PATH=/bin", "LANG=C"], "Cmd": ["sh"], "WorkingDir": "/srv", "User": "daemon",
         "Labels": {"a": "image", "b": "image"}, "StopSignal": "SIGQUIT"}


def merge(image=IMAGE, **request) -> containers_pb2.ContainerConfig:
    return records.effective_config(containers_pb2.ContainerConfig(image="busybox", **request), image, ID)


def test_image_defaults_fill_what_the_request_leaves_out() -> None:
    config = merge()
    assert list(config.cmd) == ["sh"] and list(config.entrypoint) == []
    assert list(config.env) == ["PATH=/bin", "LANG=C"]
    assert (config.working_dir, config.user, config.stop_signal) == ("/srv", "daemon", "SIGQUIT")
    assert config.hostname == ID[:12] and config.restart_policy.name == "no"
    assert dict(config.labels) == {"a": "image", "b": "image"}
    assert records.command(config) == ("sh", [])


def test_the_request_wins_key_by_key() -> None:
    config = merge(cmd=["echo", "hi"], env=["LANG=fr", "X=1"], working_dir="/tmp", user="1000:1000",
                   labels={"b": "request", "c": "request"}, hostname="box", stop_signal="SIGINT")
    assert list(config.cmd) == ["echo", "hi"]
    assert list(config.env) == ["LANG=fr", "X=1", "PATH=/bin"]
    assert (config.working_dir, config.user, config.hostname, config.stop_signal) == (
        "/tmp", "1000:1000", "box", "SIGINT")
    assert dict(config.labels) == {"a": "image", "b": "request", "c": "request"}


def test_an_entrypoint_from_the_request_drops_the_image_cmd() -> None:
    image = {**IMAGE, "Entrypoint": ["/entry"], "Cmd": ["--default"]}
    assert records.command(merge(image)) == ("/entry", ["--default"])
    assert records.command(merge(image, cmd=["--mine"])) == ("/entry", ["--mine"])
    assert records.command(merge(image, entrypoint=["echo"], entrypoint_set=True)) == ("echo", [])
    assert records.command(merge(image, entrypoint=["echo"], entrypoint_set=True, cmd=["x"])) == ("echo", ["x"])
    assert records.command(merge(image, entrypoint_set=True, cmd=["ls", "-l"])) == ("ls", ["-l"])
    with pytest.raises(errors.InvalidArgument, match="^No command specified$"):
        records.command(merge(image, entrypoint_set=True))


def test_no_command_anywhere_is_refused() -> None:
    with pytest.raises(errors.InvalidArgument, match="^No command specified$"):
        records.command(merge({}))


@pytest.mark.parametrize("fields, message", [
    ({"memory_bytes": 4 << 20}, "Minimum memory limit allowed is 6MB"),
    ({"memory_bytes": -1}, "limits cannot be negative"),
    ({"nano_cpus": 5_000_000}, "range of CPUs is from 0.01 to 2.00"),
    ({"nano_cpus": 3_000_000_000}, "as there are only 2 CPUs available"),
    ({"working_dir": "relative"}, "the working directory 'relative' is invalid"),
    ({"restart_policy": {"name": "sometimes"}}, "invalid restart policy: unknown policy 'sometimes'"),
    ({"restart_policy": {"name": "always", "maximum_retry_count": 3}}, "can only be used with 'on-failure'"),
    ({"restart_policy": {"name": "on-failure", "maximum_retry_count": -1}}, "cannot be negative"),
    ({"restart_policy": {"name": "always"}, "auto_remove": True}, "^Conflicting options: --restart and --rm$"),
    ({"stop_signal": "SIGNOPE"}, "^Invalid signal: SIGNOPE$"),
])
def test_validate_refuses_what_docker_refuses(fields, message) -> None:
    config = merge(**fields)
    with pytest.raises(errors.InvalidArgument, match=message):
        records.validate(config, cpus=2)


def test_validate_accepts_limits_docker_accepts() -> None:
    records.validate(merge(memory_bytes=6 << 20, nano_cpus=1_500_000_000, pids_limit=10,
                           restart_policy=containers_pb2.RestartPolicy(name="on-failure", maximum_retry_count=2)),
                     cpus=2)
    records.validate(merge(auto_remove=True, restart_policy=containers_pb2.RestartPolicy(name="no")), cpus=2)
    assert merge(pids_limit=-1).pids_limit == 0


def test_process_env_adds_path_hostname_and_term() -> None:
    config = merge({}, cmd=["sh"], tty=True, hostname="h")
    assert records.process_env(config) == [f"PATH={records.DEFAULT_PATH}", "HOSTNAME=h", "TERM=xterm"]
    config = merge(cmd=["sh"], env=["HOSTNAME=mine"])
    assert records.process_env(config) == ["HOSTNAME=mine", "PATH=/bin", "LANG=C"]


def test_names_and_ids() -> None:
    assert records.valid_name("/web-1.a_b") == "web-1.a_b"
    for bad in ("a", "-x", "has space", "sl/ash", ""):
        with pytest.raises(errors.InvalidArgument, match="Invalid container name"):
            records.valid_name(bad)
    assert records.valid_id(ID) == ID
    for bad in ("abc", ID.upper(), ID + "0"):
        with pytest.raises(errors.InvalidArgument):
            records.valid_id(bad)


def test_timestamps_keep_nanoseconds() -> None:
    stamp = records.timestamp("2024-01-02T03:04:05.123456789Z")
    assert stamp.ToJsonString() == "2024-01-02T03:04:05.123456789Z"
    assert records.timestamp("2024-01-02T03:04:05Z").nanos == 0
    assert records.timestamp("2024-01-02T03:04:05.5Z").nanos == 500_000_000
    assert records.timestamp("").seconds == 0 and records.timestamp("garbage").seconds == 0


def test_a_record_survives_save_and_load(tmp_path: Path) -> None:
    config = merge(memory_bytes=64 << 20, restart_policy=containers_pb2.RestartPolicy(name="on-failure",
                                                                                       maximum_retry_count=2))
    record = ContainerRecord(id=ID, name="web", created="2024-01-02T03:04:05.000000001Z", image_id="sha256:" + "1" * 64,
                             config=config, path="sh", args=["-c", "exit 3"], lowers=[tmp_path / "l1", tmp_path / "l0"],
                             dir=tmp_path / ID,
                             state=containers_pb2.ContainerState(status="exited", exit_code=3, sequence=7,
                                                                 restart_count=2),
                             stopped_by_user=True)
    record.dir.mkdir()
    record.save()
    (tmp_path / "not-a-container").mkdir()
    [loaded] = records.load_all(tmp_path)
    assert loaded == record
    assert loaded.upper == record.dir / "upper" and loaded.log_path == record.dir / "container.log"
    assert not loaded.running
    loaded.bump()
    assert loaded.state.sequence == 8


@pytest.mark.parametrize("text, number", [("KILL", 9), ("SIGKILL", 9), ("kill", 9), ("9", 9), ("hup", 1),
                                          ("SIGTERM", int(signal.SIGTERM)), ("USR1", int(signal.SIGUSR1))])
def test_parse_signal(text, number) -> None:
    assert records.parse_signal(text) == number


@pytest.mark.parametrize("text", ["", "0", "999", "SIGNOPE", "-1"])
def test_parse_signal_refuses(text) -> None:
    with pytest.raises(errors.InvalidArgument, match="Invalid signal"):
        records.parse_signal(text)
