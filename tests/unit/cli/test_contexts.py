"""`kran context` commands against a temporary config directory (no cluster needed)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cli.main import cli


def kran(tmp_path, *args, **environ):
    env = {"KRAN_CONFIG": str(tmp_path), "KRAN_HOST": "", "KRAN_CONTEXT": "", **environ}
    return CliRunner().invoke(cli, list(args), env=env)


def test_create_use_ls_show_rm(tmp_path):
    created = kran(tmp_path, "context", "create", "prod", "--host", "a:1,b", "--description", "Prod")
    assert (created.exit_code, created.stdout) == (0, "prod\n")
    assert created.stderr == 'Successfully created context "prod"\n'
    listed = kran(tmp_path, "context", "ls")
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NAME", "DESCRIPTION", "KRAN", "ENDPOINT", "ERROR"]
    assert lines[1].startswith("default *") and "127.0.0.1:7640" in lines[1]
    assert lines[2].split() == ["prod", "Prod", "a:1,b:7640"]
    used = kran(tmp_path, "context", "use", "prod")
    assert (used.exit_code, used.stdout, used.stderr) == (0, "prod\n", 'Current context is now "prod"\n')
    assert kran(tmp_path, "context", "show").stdout == "prod\n"
    assert kran(tmp_path, "context", "ls", "-q").stdout == "default\nprod\n"
    marked = kran(tmp_path, "context", "ls", "--format", "json").stdout.splitlines()
    assert [json.loads(line)["Current"] for line in marked] == [False, True]
    assert kran(tmp_path, "--context", "default", "context", "show").stdout == "default\n"
    assert kran(tmp_path, "context", "show", KRAN_HOST="x:1").stdout == "default\n"
    inspected = json.loads(kran(tmp_path, "context", "inspect").stdout)
    assert inspected[0]["Endpoints"]["kran"]["Host"] == "a:1,b:7640"

    refused = kran(tmp_path, "context", "rm", "prod", "default")
    assert refused.exit_code == 1
    assert refused.stderr == ('context "prod" is in use, set -f flag to force remove\n'
                              'default: context "default" cannot be removed\n')
    forced = kran(tmp_path, "context", "rm", "-f", "prod")
    assert (forced.exit_code, forced.stdout) == (0, "prod\n")
    assert kran(tmp_path, "context", "show").stdout == "default\n"


def test_use_warns_when_kran_host_overrides_it(tmp_path):
    kran(tmp_path, "context", "create", "prod", "--host", "a")
    used = kran(tmp_path, "context", "use", "prod", KRAN_HOST="b:1")
    assert used.exit_code == 0 and "KRAN_HOST environment variable overrides" in used.stderr


def test_errors(tmp_path):
    assert kran(tmp_path, "context", "use", "nope").stderr == 'context "nope" does not exist\n'
    missing = kran(tmp_path, "context", "create", "x")
    assert missing.exit_code == 125 and "--host" in missing.stderr
    both = kran(tmp_path, "-H", "a", "--context", "b", "ps")
    assert (both.exit_code, both.stderr) == (
        1, "conflicting options: either specify --host or --context, not both\n")
    gone = kran(tmp_path, "--context", "gone", "ps")
    assert (gone.exit_code, gone.stderr) == (1, 'context "gone" does not exist\n')
