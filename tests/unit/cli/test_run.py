"""run/create flags: parsing into create() keywords, env files, and docker's flag errors."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.main import cli
from cli.run import create_kwargs, env_flag, familiar, pull_policy, read_env_file
from kran import errors


def options(**given):
    base = {"env": (), "env_file": (), "label": (), "restart": "no"}
    base.update(given)
    return base


def test_flags_to_create_keywords():
    kwargs = create_kwargs(options(
        name="web", env=("A=1", "HOME"), label=("x=1", "y"), workdir="/srv", user="1000:1000",
        hostname="box", memory=64 << 20, cpus=1_500_000_000, pids_limit=100,
        restart="on-failure:3", init=True, rm=False, tty=True, interactive=True,
        entrypoint="/bin/sh", node="node-1"), environ={"HOME": "/root"})
    assert kwargs["name"] == "web" and kwargs["node"] == "node-1"
    assert kwargs["environment"] == ["A=1", "HOME=/root"]
    assert kwargs["labels"] == ["x=1", "y"]
    assert kwargs["working_dir"] == "/srv" and kwargs["user"] == "1000:1000"
    assert kwargs["hostname"] == "box"
    assert kwargs["mem_limit"] == 64 << 20 and kwargs["nano_cpus"] == 1_500_000_000
    assert kwargs["pids_limit"] == 100 and kwargs["init"]
    assert kwargs["restart_policy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert kwargs["tty"] and kwargs["stdin_open"] and not kwargs["auto_remove"]
    assert kwargs["entrypoint"] == ["/bin/sh"]


def test_empty_entrypoint_resets_and_absent_keeps_the_images():
    assert create_kwargs(options(entrypoint=""))["entrypoint"] == []
    assert "entrypoint" not in create_kwargs(options())


def test_restart_and_rm_conflict():
    with pytest.raises(errors.InvalidArgument, match="--restart and --rm"):
        create_kwargs(options(restart="always", rm=True))
    assert create_kwargs(options(restart="no", rm=True))["auto_remove"]


def test_env_flag_takes_value_from_our_environment():
    assert env_flag("A=1", {}) == "A=1"
    assert env_flag("A=", {}) == "A="
    assert env_flag("USER", {"USER": "me"}) == "USER=me"
    assert env_flag("UNSET", {}) == "UNSET"
    with pytest.raises(errors.InvalidArgument):
        env_flag("=x", {})


def test_env_file(tmp_path):
    path = tmp_path / "env"
    path.write_bytes("\ufeffA=1\n# comment\n\n   B=two words  \nHOME\nMISSING\nC=\n".encode())
    assert read_env_file(str(path), {"HOME": "/root"}) == [
        "A=1", "B=two words  ", "HOME=/root", "C="]


@pytest.mark.parametrize("content, message", [
    ("BAD KEY=1\n", "variable 'BAD KEY' contains whitespaces"),
    ("=1\n", "no variable name"),
])
def test_env_file_refused(tmp_path, content, message):
    path = tmp_path / "env"
    path.write_text(content)
    with pytest.raises(errors.InvalidArgument, match=message):
        read_env_file(str(path), {})


def test_env_file_missing(tmp_path):
    with pytest.raises(errors.InvalidArgument, match="no such file"):
        read_env_file(str(tmp_path / "nope"), {})


def test_env_files_come_before_env_flags(tmp_path):
    path = tmp_path / "env"
    path.write_text("A=file\n")
    kwargs = create_kwargs(options(env=("A=flag",), env_file=(str(path),)), environ={})
    assert kwargs["environment"] == ["A=file", "A=flag"]


def test_familiar_image_names():
    assert familiar("busybox") == "busybox:latest"
    assert familiar("docker.io/library/busybox:1") == "busybox:1"
    assert familiar("Not A Reference") == "Not A Reference"


def kran(*args, stdin=""):
    # An address nothing listens on: these errors must come before any call.
    return CliRunner().invoke(cli, ["-H", "127.0.0.1:9", *args], input=stdin, prog_name="kran")


def test_invalid_memory_is_dockers_flag_error():
    result = kran("run", "-m", "x", "busybox")
    assert result.exit_code == 125
    assert result.output.splitlines()[0] == \
        """invalid argument "x" for "-m, --memory" flag: invalid size: 'x'"""
    assert "Usage:  kran run [OPTIONS] IMAGE [COMMAND] [ARG...]" in result.output
    assert "Run 'kran run --help' for more information" in result.output


def test_invalid_cpus_and_unknown_flag_exit_125():
    result = kran("create", "--cpus", "lots", "busybox")
    assert result.exit_code == 125
    assert 'invalid argument "lots" for "--cpus" flag: failed to parse lots as a rational ' \
           "number" in result.output
    result = kran("run", "--bogus", "busybox")
    assert result.exit_code == 125 and "unknown flag: --bogus" in result.output


def test_bad_restart_policy_is_a_run_error():
    result = kran("run", "--restart", "always:2", "busybox")
    assert result.exit_code == 125
    assert result.output.startswith("kran: invalid restart policy: maximum retry count can "
                                    "only be used with 'on-failure'")


def test_missing_image_argument():
    result = kran("run")
    assert result.exit_code == 1
    assert result.output.startswith("kran: 'kran run' requires at least 1 argument")


def test_options_after_the_image_belong_to_the_command():
    # -l after the image is the command's, not --label: the command fails to connect, not parse.
    result = kran("run", "busybox", "ls", "-l")
    assert result.exit_code == 125
    assert "Cannot connect to the kran controller at 127.0.0.1:9" in result.output


def test_interactive_tty_needs_a_terminal():
    result = kran("run", "-it", "busybox", "sh")
    assert result.exit_code == 1
    assert result.output == "the input device is not a TTY\n"


def test_pull_policies():
    assert pull_policy(None) == pull_policy("") == "missing"
    for policy in ("always", "missing", "never"):
        assert pull_policy(policy) == policy
    with pytest.raises(errors.InvalidArgument,
                       match="invalid pull option: 'sometimes': must be one of "
                             "\"always\", \"missing\" or \"never\""):
        pull_policy("sometimes")


def test_bad_pull_flag_exits_125_before_any_call():
    for command in ("run", "create"):
        result = CliRunner().invoke(cli, [command, "--pull", "sometimes", "busybox"],
                                    env={"KRAN_HOST": "127.0.0.1:1"})
        assert result.exit_code == 125
        assert "invalid pull option: 'sometimes'" in result.output
        assert f"Run 'kran {command} --help'" in result.output
