"""Address parsing shared by every process and the CLI."""

import pytest

from kran.defaults import join_hostport, split_hostport


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:7640", ("127.0.0.1", 7640)),
    ("ctl", ("ctl", 7640)),
    ("tcp://ctl:1234", ("ctl", 1234)),
    (":9640", ("0.0.0.0", 9640)),
    ("[::1]:80", ("::1", 80)),
    ("[::1]", ("::1", 7640)),
])
def test_split(text, expected):
    assert split_hostport(text, 7640) == expected


@pytest.mark.parametrize("text", ["", "ctl:http", "ctl:0", "ctl:70000"])
def test_split_refuses(text):
    with pytest.raises(ValueError):
        split_hostport(text, 7640)


def test_join_brackets_ipv6():
    assert join_hostport("::1", 80) == "[::1]:80"
    assert join_hostport("h", 80) == "h:80"
