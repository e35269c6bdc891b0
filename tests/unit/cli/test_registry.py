"""The registry commands' own logic: search's table, login's flag rules, quiet progress."""

from __future__ import annotations

from click.testing import CliRunner

from cli.main import cli
from cli.registry import follow, search_table


def test_search_table_truncates_descriptions_and_marks_official():
    out = search_table([
        {"name": "busybox", "description": "Busybox base image.\nSmall.", "star_count": 3,
         "is_official": True},
        {"name": "x/y", "description": "d" * 60, "star_count": 0, "is_official": False},
    ])
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]
    assert "Busybox base image. Small." in lines[1] and lines[1].endswith("[OK]")
    assert "d" * 44 + "…" in lines[2] and "d" * 45 not in lines[2]
    assert "d" * 60 in search_table([{"name": "x", "description": "d" * 60}], no_trunc=True)


def test_follow_quietly_returns_the_error_and_prints_nothing(capsys):
    lines = iter([{"status": "a"}, {"status": "", "error": "boom"}])
    assert follow(lines, None, quiet=True) == "boom"  # type: ignore[arg-type]
    assert capsys.readouterr().out == ""


def test_login_flag_rules_need_no_cluster(tmp_path):
    runner = CliRunner()
    env = {"KRAN_CONFIG": str(tmp_path), "KRAN_HOST": "127.0.0.1:1"}
    both = runner.invoke(cli, ["login", "-u", "a", "-p", "b", "--password-stdin", "r:1"], env=env)
    assert both.exit_code == 1
    assert "--password and --password-stdin are mutually exclusive" in both.output
    nouser = runner.invoke(cli, ["login", "--password-stdin", "r:1"], input="pw\n", env=env)
    assert nouser.exit_code == 1
    assert "Must provide --username with --password-stdin" in nouser.output
    notty = runner.invoke(cli, ["login", "r:1"], env=env)
    assert notty.exit_code == 1
    assert "Cannot perform an interactive login from a non TTY device" in notty.output


def test_logout_without_credentials(tmp_path):
    result = CliRunner().invoke(cli, ["logout", "127.0.0.1:5000"],
                                env={"KRAN_CONFIG": str(tmp_path)})
    assert result.exit_code == 0
    assert result.output == "Not logged in to 127.0.0.1:5000\n"
    assert not (tmp_path / "config.json").exists()


def test_pull_refuses_a_tag_with_all_tags_before_any_call():
    result = CliRunner().invoke(cli, ["pull", "-a", "busybox:1"],
                                env={"KRAN_HOST": "127.0.0.1:1"})
    assert result.exit_code == 1
    assert result.output == "tag can't be used with --all-tags/-a\n"
