"""Pull/push progress: docker's live lines on a terminal, plain lines without one."""

from __future__ import annotations

import io
import re

from cli.progress import ProgressPrinter, bar, counts, go_duration, is_layer_line, progress_text

PULL = [
    {"id": "latest", "status": "Pulling from library/busybox"},
    {"id": "aaaaaaaaaaaa", "status": "Pulling fs layer"},
    {"id": "bbbbbbbbbbbb", "status": "Pulling fs layer"},
    {"id": "bbbbbbbbbbbb", "status": "Waiting"},
    {"id": "aaaaaaaaaaaa", "status": "Downloading",
     "progressDetail": {"current": 0, "total": 4_000_000}},
    {"id": "aaaaaaaaaaaa", "status": "Downloading",
     "progressDetail": {"current": 1_000_000, "total": 4_000_000}},
    {"id": "aaaaaaaaaaaa", "status": "Downloading",
     "progressDetail": {"current": 2_000_000, "total": 4_000_000}},
    {"id": "aaaaaaaaaaaa", "status": "Verifying Checksum"},
    {"id": "aaaaaaaaaaaa", "status": "Download complete"},
    {"id": "aaaaaaaaaaaa", "status": "Extracting",
     "progressDetail": {"current": 4_000_000, "total": 4_000_000}},
    {"id": "aaaaaaaaaaaa", "status": "Pull complete"},
    {"id": "bbbbbbbbbbbb", "status": "Downloading",
     "progressDetail": {"current": 300, "total": 600}},
    {"id": "bbbbbbbbbbbb", "status": "Download complete"},
    {"id": "bbbbbbbbbbbb", "status": "Pull complete"},
    {"status": "Digest: sha256:" + "c" * 64},
    {"status": "Status: Downloaded newer image for busybox:latest"},
]


def screen(output: str) -> list[str]:
    """What a terminal shows after output: a small interpreter of the moves the printer uses."""
    rows: list[str] = [""]
    row = col = 0
    for token in re.findall(r"\x1b\[(\d*)([ABK])|(\r)|(\n)|([^\x1b\r\n]+)", output):
        count, command, cr, nl, text = token
        if command == "A":
            row -= int(count or 1)
            assert row >= 0, "the cursor went above the first line"
        elif command == "B":
            row += int(count or 1)
            assert row < len(rows), "the cursor went below the last line"
        elif command == "K":
            rows[row] = ""
        elif cr:
            col = 0
        elif nl:
            row, col = row + 1, 0
            if row == len(rows):
                rows.append("")
        else:
            line = rows[row].ljust(col)
            rows[row] = line[:col] + text + line[col + len(text):]
            col += len(text)
    return rows


def run_printer(lines, tty, width=80, show_nodes=False):
    out = io.StringIO()
    clock = iter(float(n) for n in range(1000))
    printer = ProgressPrinter(out, tty=tty, width=width, show_nodes=show_nodes,
                              clock=lambda: next(clock))
    error = printer.show_all(lines)
    return out.getvalue(), error


def test_plain_output_prints_each_status_once_and_no_counters():
    out, error = run_printer(PULL, tty=False)
    assert error is None
    assert "\x1b" not in out and "[" not in out.replace("[OK]", "")
    assert out.splitlines() == [
        "latest: Pulling from library/busybox",
        "aaaaaaaaaaaa: Pulling fs layer",
        "bbbbbbbbbbbb: Pulling fs layer",
        "bbbbbbbbbbbb: Waiting",
        "aaaaaaaaaaaa: Verifying Checksum",
        "aaaaaaaaaaaa: Download complete",
        "aaaaaaaaaaaa: Pull complete",
        "bbbbbbbbbbbb: Download complete",
        "bbbbbbbbbbbb: Pull complete",
        "Digest: sha256:" + "c" * 64,
        "Status: Downloaded newer image for busybox:latest",
    ]


def test_plain_output_repeats_no_status():
    lines = [{"id": "a" * 12, "status": "Pushing"}] * 3 + [{"id": "a" * 12, "status": "Pushed"}]
    out, _ = run_printer(lines, tty=False)
    assert out.splitlines() == ["aaaaaaaaaaaa: Pushing", "aaaaaaaaaaaa: Pushed"]


def test_terminal_keeps_one_line_per_layer_and_ends_with_the_final_states():
    out, error = run_printer(PULL, tty=True)
    assert error is None
    assert [row.rstrip() for row in screen(out)] == [
        "latest: Pulling from library/busybox",
        "aaaaaaaaaaaa: Pull complete",
        "bbbbbbbbbbbb: Pull complete",
        "Digest: sha256:" + "c" * 64,
        "Status: Downloaded newer image for busybox:latest",
        "",
    ]


def test_terminal_shows_a_bar_and_sizes_while_downloading():
    out, _ = run_printer(PULL[:7], tty=True, width=120)
    rows = screen(out)
    assert rows[1].startswith("aaaaaaaaaaaa: Downloading [" + "=" * 25 + ">" + " " * 25 + "] ")
    assert "    2MB/4MB" in rows[1]
    assert rows[2].rstrip() == "bbbbbbbbbbbb: Waiting"


def test_terminal_lines_never_wrap():
    out, _ = run_printer(PULL[:7], tty=True, width=40)
    assert all(len(row) < 40 for row in screen(out))


def test_a_second_block_of_layers_starts_below_the_first():
    lines = PULL[:3] + [{"id": "1", "status": "Pulling from library/busybox"},
                        {"id": "dddddddddddd", "status": "Already exists"}]
    rows = [row.rstrip() for row in screen(run_printer(lines, tty=True)[0])]
    assert rows[-3:] == ["1: Pulling from library/busybox", "dddddddddddd: Already exists", ""]
    assert rows[1:3] == ["aaaaaaaaaaaa: Pulling fs layer", "bbbbbbbbbbbb: Pulling fs layer"]


def test_an_error_stops_the_output_and_is_returned():
    lines = PULL[:2] + [{"status": "", "error": "manifest unknown"}] + PULL[2:]
    out, error = run_printer(lines, tty=False)
    assert error == "manifest unknown"
    assert out.splitlines() == ["latest: Pulling from library/busybox",
                                "aaaaaaaaaaaa: Pulling fs layer"]


def test_nodes_get_their_own_lines():
    lines = [{"id": "a" * 12, "status": "Pulling fs layer", "node": "node-1"},
             {"id": "a" * 12, "status": "Pulling fs layer", "node": "node-2"},
             {"id": "a" * 12, "status": "Pull complete", "node": "node-2"}]
    rows = [row.rstrip() for row in screen(run_printer(lines, tty=True, show_nodes=True)[0])]
    assert rows == ["[node-1] aaaaaaaaaaaa: Pulling fs layer",
                    "[node-2] aaaaaaaaaaaa: Pull complete", ""]


def test_pulling_from_is_a_heading_not_a_layer():
    assert not is_layer_line({"id": "latest", "status": "Pulling from library/busybox"})
    assert is_layer_line({"id": "a" * 12, "status": "Waiting"})
    assert not is_layer_line({"status": "Digest: sha256:x"})


def test_docker_bar_and_counts():
    assert bar(0, 100, 10) == "[>          ] "
    assert bar(50, 100, 10) == "[=====>     ] "
    assert bar(150, 100, 10) == "[==========>] "
    assert bar(1, 2, 0) == ""
    assert counts(1_234_567, 3_400_000) == " 1.235MB/3.4MB"
    assert counts(5, 0) == "      5B"
    assert counts(10, 5) == "     10B"


def test_progress_text_widths_and_time_left():
    assert progress_text(0, 0, 200) == ""
    assert progress_text(500, 0, 200) == "    500B"
    wide = progress_text(1_000_000, 4_000_000, 120, elapsed=2.0)
    assert wide.startswith("[" + "=" * 12 + ">") and wide.endswith("  1MB/4MB 6s")
    assert "[" not in progress_text(1, 2, 65)  # too narrow for a bar of 10 cells
    assert progress_text(1, 2, 80).startswith("[" + "=" * 10 + ">")


def test_go_duration():
    assert go_duration(7) == "7s"
    assert go_duration(125) == "2m5s"
    assert go_duration(3603) == "1h0m3s"
