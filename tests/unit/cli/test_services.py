"""`kran service` flags, tables and progress, without a cluster."""

from __future__ import annotations

import io

import pytest
from click.testing import CliRunner

from cli import services
from cli.main import cli
from cli.service_flags import create_kwargs, duration_ns, update_kwargs
from cli.service_progress import progress_lines, slot_states
from kran import errors
from kran.api.v1 import services_pb2
from kran.client.servicespec import service_attrs, service_spec

SECOND = 1_000_000_000


def parsed(command, *args: str) -> dict:
    """The options click parses for a command line."""
    return dict(command.make_context(command.name, list(args)).params)


def test_create_flags_make_a_spec() -> None:
    options = parsed(
        services.create, "--name", "web", "--replicas", "3", "--constraint", "node.hostname==h1",
        "--placement-strategy", "binpack", "--restart-condition", "on-failure",
        "--restart-delay", "1s", "--restart-max-attempts", "4", "--update-parallelism", "2",
        "--update-delay", "500ms", "--update-failure-action", "rollback",
        "--update-monitor", "1m30s", "--update-order", "start-first",
        "--rollback-parallelism", "0", "-e", "A=1", "-l", "tier=front",
        "--container-label", "c=1", "--limit-cpu", "0.5", "--limit-memory", "64m",
        "--reserve-cpu", "0.25", "--reserve-memory", "32m", "--stop-grace-period", "2s",
        "-d", "busybox", "sleep", "100")
    assert options["detach"]
    spec = service_spec(options["image"], **create_kwargs(options))
    assert (spec.name, spec.replicas, spec.task.image) == ("web", 3, "busybox")
    assert list(spec.task.cmd) == ["sleep", "100"] and not spec.task.entrypoint_set
    assert list(spec.placement.constraints) == ["node.hostname==h1"]
    assert spec.placement.strategy == "binpack"
    assert spec.restart_policy == services_pb2.TaskRestartPolicy(
        condition="on-failure", delay_ns=SECOND, max_attempts=4)
    update = spec.update_config
    assert (update.parallelism, update.delay_ns, update.failure_action, update.monitor_ns,
            update.order) == (2, SECOND // 2, "rollback", 90 * SECOND, "start-first")
    assert spec.rollback_config.parallelism == 0
    assert spec.rollback_config.monitor_ns == 5 * SECOND  # defaults for what is not given
    assert list(spec.task.env) == ["A=1"] and dict(spec.labels) == {"tier": "front"}
    assert dict(spec.task.labels) == {"c": "1"}
    assert spec.task.nano_cpus == SECOND // 2 and spec.task.memory_bytes == 64 << 20
    assert spec.placement.reserve_nano_cpus == SECOND // 4
    assert spec.placement.reserve_memory_bytes == 32 << 20
    assert spec.task.stop_timeout == 2


def test_create_defaults() -> None:
    spec = service_spec("busybox", **create_kwargs(parsed(services.create, "busybox")))
    assert spec.replicas == 1
    assert spec.restart_policy.condition == "any" and spec.restart_policy.delay_ns == 5 * SECOND
    assert spec.update_config.parallelism == 1 and spec.update_config.monitor_ns == 5 * SECOND
    assert spec.update_config.failure_action == "pause"


@pytest.mark.parametrize("args, message", [
    (["--replicas", "abc"], 'invalid argument "abc" for "--replicas" flag'),
    (["--replicas", "-1"], 'invalid argument "-1" for "--replicas" flag'),
    (["--restart-delay", "5"], 'time: invalid duration "5"'),
    (["--restart-condition", "always"], "expected one of any, on-failure, none"),
    (["--update-failure-action", "panic"], "expected one of pause, continue, rollback"),
    (["--update-order", "random"], "expected one of stop-first, start-first"),
    (["--limit-memory", "lots"], 'invalid argument "lots" for "--limit-memory" flag'),
])
def test_bad_flags_are_refused_as_docker_does(args, message) -> None:
    result = CliRunner().invoke(cli, ["service", "create", *args, "busybox"])
    assert result.exit_code == 125
    assert message in result.output


def test_durations() -> None:
    assert duration_ns("1m30s") == 90 * SECOND and duration_ns("0s") == 0
    assert duration_ns("250ms") == SECOND // 4
    with pytest.raises(errors.InvalidArgument):
        duration_ns("-1s")


def current_attrs() -> dict:
    spec = service_spec("busybox", name="web", replicas=2, args=["sleep", "9"],
                        env=["A=1", "B=2"], labels={"keep": "1", "drop": "2"},
                        container_labels={"c": "1"}, constraints=["node.labels.zone==a"],
                        update_config={"Parallelism": 3, "Monitor": 2 * SECOND})
    return service_attrs(services_pb2.Service(id="s" * 25, spec=spec, version=5))


def test_update_flags_change_only_what_is_given() -> None:
    options = parsed(services.update, "--env-add", "B=3", "--env-add", "C=4", "--env-rm", "A",
                     "--label-add", "new=1", "--label-rm", "drop",
                     "--constraint-add", "node.hostname==h2", "--constraint-rm",
                     "node.labels.zone==a", "--update-delay", "1s", "--image", "busybox:1",
                     "web")
    kwargs = update_kwargs(current_attrs(), options)
    assert kwargs["image"] == "busybox:1"
    assert kwargs["env"] == ["B=3", "C=4"]
    assert kwargs["labels"] == {"keep": "1", "new": "1"}
    assert kwargs["constraints"] == ["node.hostname==h2"]
    assert kwargs["update_config"]["Delay"] == SECOND
    assert kwargs["update_config"]["Parallelism"] == 3  # kept
    assert "restart_policy" not in kwargs and "replicas" not in kwargs
    assert "container_labels" not in kwargs and "resources" not in kwargs


def test_scale_specifiers() -> None:
    assert services.scale_targets(["web=5", "api=0"]) == [("web", 5), ("api", 0)]
    with pytest.raises(errors.InvalidArgument, match="invalid scale specifier 'web'"):
        services.scale_targets(["web"])
    with pytest.raises(errors.InvalidArgument, match="invalid replicas value x"):
        services.scale_targets(["web=x"])
    result = CliRunner().invoke(cli, ["service", "scale", "web=many"])
    assert result.exit_code == 1 and "invalid replicas value many" in result.output


def task(task_id: str, slot: int, state: str, desired: str = "running", created: str = "2",
         error: str = "") -> dict:
    return {"ID": task_id, "ServiceID": "s", "ServiceName": "web", "Slot": slot,
            "NodeName": "h1", "DesiredState": desired, "CreatedAt": created,
            "Spec": {"ContainerSpec": {"Image": "docker.io/library/busybox:latest"}},
            "Status": {"State": state, "Err": error, "Timestamp": "1970-01-01T00:00:10Z"}}


def test_tasks_table_shows_history_under_each_slot() -> None:
    tasks = [task("a" * 25, 1, "running"),
             task("b" * 25, 1, "failed", "shutdown", "1", "task: non-zero exit (1) and more text"),
             task("c" * 25, 2, "running")]
    lines = services.tasks_table(tasks, no_trunc=False, now=15).splitlines()
    assert lines[0].split() == ["ID", "NAME", "IMAGE", "NODE", "DESIRED", "STATE", "CURRENT",
                                "STATE", "ERROR", "PORTS"]
    assert lines[1].startswith("aaaaaaaaaaaa   web.1   ")
    assert " \\_ web.1 " in lines[2] and "Failed 5 seconds ago" in lines[2]
    assert '"task: non-zero exit (1) and m…"' in lines[2]
    assert "busybox:latest" in lines[1] and "Running 5 seconds ago" in lines[1]
    full = services.tasks_table(tasks, no_trunc=True, now=15)
    assert "a" * 25 in full and '"task: non-zero exit (1) and more text"' in full


def test_slot_states_and_progress_lines() -> None:
    tasks = [task("b", 1, "failed", "shutdown", "3"), task("a", 1, "running"),
             task("c", 2, "starting"), task("d", 4, "running")]
    states = slot_states(tasks, 3)
    assert states == {1: "running", 2: "starting", 3: ""}
    lines = progress_lines(states, 3, rolling_back=False, terminal=False)
    assert lines == ["overall progress: 1 out of 3 tasks", "1/3: running", "2/3: starting",
                     "3/3: new"]
    assert progress_lines(states, 3, True, False)[0] == \
        "overall progress: rolling back update: 1 out of 3 tasks"
    assert "[" in progress_lines(states, 3, False, True)[1]


def test_services_table_and_pretty() -> None:
    attrs = current_attrs()
    attrs["ServiceStatus"] = {"RunningTasks": 1, "DesiredTasks": 2}

    class Fake:
        id, name = attrs["ID"], "web"
    Fake.attrs = attrs
    lines = services.services_table([Fake()]).splitlines()  # type: ignore[list-item]
    assert lines[0].split() == ["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"]
    assert lines[1].split() == ["s" * 12, "web", "replicated", "1/2", "busybox:latest"]
    shown = services.pretty(attrs)
    assert "Name:\t\tweb" in shown and " Replicas:\t2" in shown
    assert " Constraints:\t[node.labels.zone==a]" in shown and " Parallelism:\t3" in shown


def test_log_prefix() -> None:
    class Line:
        task_id, slot, node_name = "k" * 25, 2, "h3"
    assert services.log_prefix(Line, "web", False, True) == "web.2.kkkkkkkkkkkk@h3"
    assert services.log_prefix(Line, "web", True, False) == "web.2@h3"


def test_plain_progress_prints_changes_only() -> None:
    from cli.service_progress import _Printer
    out = io.StringIO()
    printer = _Printer(out, terminal=False)
    printer.show(["overall progress: 0 out of 1 tasks", "1/1: new"])
    printer.show(["overall progress: 0 out of 1 tasks", "1/1: starting"])
    assert out.getvalue().splitlines() == ["overall progress: 0 out of 1 tasks", "1/1: new",
                                           "1/1: starting"]
