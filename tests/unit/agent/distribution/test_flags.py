"""The agent's registry flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import config
from agent.distribution.registries import DEFAULT_CERTS_DIRS, RegistryOptions
from kran import errors


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REGISTRY_MIRROR", "INSECURE_REGISTRY", "CERTS_DIR"):
        monkeypatch.delenv(f"KRAN_AGENT_{name}", raising=False)
    assert config.parse([]).registry == RegistryOptions()
    assert RegistryOptions().certs_dirs == DEFAULT_CERTS_DIRS


def test_flags() -> None:
    options = config.parse([
        "--registry-mirror", "https://m1.example/", "--registry-mirror", "http://127.0.0.1:5000",
        "--insecure-registry", "127.0.0.1:5000", "--certs-dir", "/tmp/certs",
        "--max-concurrent-downloads", "2", "--max-concurrent-uploads", "7"]).registry
    assert options == RegistryOptions(mirrors=("https://m1.example", "http://127.0.0.1:5000"),
                                      insecure=("127.0.0.1:5000",), certs_dirs=(Path("/tmp/certs"),),
                                      max_downloads=2, max_uploads=7)


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRAN_AGENT_REGISTRY_MIRROR", "https://a.example, https://b.example")
    monkeypatch.setenv("KRAN_AGENT_MAX_CONCURRENT_DOWNLOADS", "5")
    options = config.parse([]).registry
    assert (options.mirrors, options.max_downloads) == (("https://a.example", "https://b.example"), 5)


@pytest.mark.parametrize("argv", [["--registry-mirror", "mirror.example"], ["--max-concurrent-downloads", "0"],
                                  ["--insecure-registry", "a/b"], ["--max-concurrent-uploads", "x"]])
def test_bad_values(argv: list[str]) -> None:
    with pytest.raises(errors.InvalidArgument):
        config.parse(argv)
