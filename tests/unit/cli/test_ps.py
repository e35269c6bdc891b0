"""The ps table: ids, quoted and cut commands, status text, NODE column, --format."""

from __future__ import annotations

from cli.ps import command_cell, formatted, go_quote, ps_table
from kran import containerinspect
from kran.api.v1 import containers_pb2 as pb
from kran.client import Container

NOW = 1_700_000_000


def container(cid, name, path, args, status, node="node-1", image="busybox", created=NOW - 5,
              started=0, finished=0, code=0):
    message = pb.Container(id=cid * 64, name=name, node_id=node + "-id", node_name=node,
                           image_id="sha256:" + "e" * 64, path=path, args=args,
                           config=pb.ContainerConfig(image=image),
                           state=pb.ContainerState(status=status, exit_code=code))
    message.created.seconds = created
    message.state.started_at.seconds = started
    message.state.finished_at.seconds = finished
    return Container(containerinspect.inspect(message), None, None, message=message)


def test_command_cell_cut_to_20_with_ellipsis_and_go_quoted():
    assert command_cell("sh -c 'echo hello world'", False) == '"sh -c \'echo hello w…"'
    assert command_cell("sh -c 'echo hello world'", True) == '"sh -c \'echo hello world\'"'
    assert command_cell("/hello", False) == '"/hello"'
    assert go_quote('a"b\\c\nd\x01') == '"a\\"b\\\\c\\nd\\x01"'


def test_ps_table_exact_layout():
    rows = [
        container("a", "web", "sh", ["-c", "echo hello; sleep 100"], "running",
                  started=NOW - 3),
        container("b", "done", "echo", ["hi"], "exited", created=NOW - 600, started=NOW - 600,
                  finished=NOW - 300),
        container("c", "fresh", "/hello", [], "created", image="hello-world", created=NOW - 1),
    ]
    lines = ps_table(rows, now=NOW).splitlines()
    assert lines[0] == ("CONTAINER ID   IMAGE         COMMAND                  CREATED          "
                        "STATUS                     PORTS     NAMES")
    assert lines[1] == ('aaaaaaaaaaaa   busybox       "sh -c \'echo hello; …"   5 seconds ago    '
                        "Up 3 seconds                         web")
    assert lines[2] == ('bbbbbbbbbbbb   busybox       "echo hi"                10 minutes ago   '
                        "Exited (0) 5 minutes ago             done")
    assert lines[3] == ('cccccccccccc   hello-world   "/hello"                 1 second ago     '
                        "Created                              fresh")


def test_no_trunc_shows_full_ids_and_commands():
    out = ps_table([container("a", "web", "sh", ["-c", "echo hello; sleep 100"], "running",
                              started=NOW - 3)], no_trunc=True, now=NOW)
    assert "a" * 64 in out and '"sh -c \'echo hello; sleep 100\'"' in out


def test_node_column_at_the_end():
    out = ps_table([container("a", "web", "true", [], "created", node="node-2")],
                   show_node=True, now=NOW)
    header, row = out.splitlines()
    assert header.endswith("NAMES     NODE") and row.endswith("web       node-2")


def test_format_templates_and_json():
    rows = [container("a", "web", "true", [], "created")]
    assert formatted(rows, "{{.ID}} {{.Names}} {{.State}} {{.Node}}", False) == \
        "aaaaaaaaaaaa web created node-1\n"
    assert '"Names":"web"' in formatted(rows, "json", False)
