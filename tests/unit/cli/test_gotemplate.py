"""The --format subset of Go templates."""

from __future__ import annotations

import pytest

from cli.gotemplate import Template, TemplateError

DOC = {"Id": "sha256:abc", "RepoTags": ["a:1", "b:2"], "Size": 42, "Parent": "",
       "Config": {"Env": ["A=1"], "Labels": {"x": "y", "a": "b"}, "Cmd": None}}


@pytest.mark.parametrize("fmt, out", [
    ("{{.Id}}", "sha256:abc"),
    ("{{ .Size }}", "42"),
    ("{{json .Config}}", '{"Env":["A=1"],"Labels":{"x":"y","a":"b"},"Cmd":null}'),
    ("{{.RepoTags}}", "[a:1 b:2]"),
    ("{{.Config.Labels}}", "map[a:b x:y]"),
    ("{{.Config.Cmd}}", "<nil>"),
    ("{{.Nope}}", "<no value>"),
    ("{{.Config.Nope.Deeper}}", "<no value>"),
    ('{{index .Config.Labels "x"}}', "y"),
    ("{{index .RepoTags 1}}", "b:2"),
    ('{{join .RepoTags ","}}', "a:1,b:2"),
    ("{{len .RepoTags}}", "2"),
    ("{{.Id | upper}}", "SHA256:ABC"),
    ("{{range .RepoTags}}[{{.}}]{{end}}", "[a:1][b:2]"),
    ("{{if .Parent}}p{{else}}none{{end}}", "none"),
    ("a {{- .Size -}} b", "a42b"),
    ("{{`raw`}}", "raw"),
])
def test_render(fmt, out):
    assert Template(fmt).render(DOC) == out


@pytest.mark.parametrize("fmt", ["{{.Id", "{{end}}", "{{if .Id}}x", "{{nofunc .Id}}", "{{}}"])
def test_errors(fmt):
    with pytest.raises(TemplateError):
        Template(fmt).render(DOC)
