"""What the metadata instructions do to an image's config, and the history lines Docker writes for them.

Each step's history entry has Docker's classic-builder `created_by`: the
shell and `#(nop) ` then the instruction for steps that run nothing
(`/bin/sh -c #(nop)  CMD ["sh"]`), the command for RUN (`|1 A=b /bin/sh -c
make`, with the build args in effect). Values are expanded with the
stage's variables where Docker expands them (ENV, LABEL, USER, WORKDIR,
STOPSIGNAL, EXPOSE, VOLUME); CMD, ENTRYPOINT and SHELL are kept as written.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from typing import Any

from agent.build import shellwords
from agent.build.instructions import Command, Healthcheck, Instruction, Onbuild, Pairs, Value, Words
from agent.images.changes import apply_change
from agent.runtime.oci import DEFAULT_PATH

DEFAULT_SHELL = ["/bin/sh", "-c"]
Env = Mapping[str, "str | None"]


def shell_of(config: Mapping[str, Any]) -> list[str]:
    """The shell that runs shell-form commands: SHELL's, else /bin/sh -c."""
    return list(config.get("Shell") or DEFAULT_SHELL)


def created_by_nop(config: Mapping[str, Any], comment: str, files: bool = False) -> str:
    """A history line for a step that runs no command: `/bin/sh -c #(nop)  CMD ["sh"]`.

    Docker writes one blank less after `#(nop)` for the steps that change
    files (`files`: COPY, ADD, WORKDIR).
    """
    nop = [f"#(nop) {comment}"] if files else ["#(nop) ", comment]
    return " ".join([*shell_of(config), *nop])


def go_quoted(values: list[str]) -> str:
    """A list of strings as Go's %q prints it: ["a" "b c"]."""
    return "[" + " ".join(json.dumps(v, ensure_ascii=False) for v in values) + "]"


def command_args(instruction: Command, config: Mapping[str, Any]) -> list[str]:
    """The argv of RUN, CMD or ENTRYPOINT: the exec form as is, the shell form through the shell."""
    if instruction.exec_form:
        return list(instruction.args)
    return [*shell_of(config), instruction.text]


def start_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A stage's config from its base image's, with Docker's default PATH when it has none."""
    started = json.loads(json.dumps(dict(config)))
    env = started.get("Env") or []
    if not any(item.partition("=")[0] == "PATH" for item in env):
        started["Env"] = [f"PATH={DEFAULT_PATH}", *env]
    # Triggers run once, in the build that starts FROM the image; the child does not inherit them.
    started.pop("OnBuild", None)
    return started


def env_of(config: Mapping[str, Any]) -> dict[str, str]:
    """The config's environment as a mapping."""
    return dict(item.partition("=")[::2] for item in config.get("Env") or [])


def set_env(config: dict[str, Any], pairs: list[tuple[str, str]]) -> None:
    """Set variables, replacing earlier values in place and adding new ones at the end."""
    env = list(config.get("Env") or [])
    for name, value in pairs:
        entry = f"{name}={value}"
        for i, item in enumerate(env):
            if item.partition("=")[0] == name:
                env[i] = entry
                break
        else:
            env.append(entry)
    config["Env"] = env


def _go_duration(nanoseconds: int) -> str:
    """A duration as Go's String() writes it ("30s", "1m30s", "500ms")."""
    if nanoseconds == 0:
        return "0s"
    if nanoseconds < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000)):
            if nanoseconds >= size:
                return f"{nanoseconds / size:g}{unit}"
        return f"{nanoseconds}ns"
    hours, rest = divmod(nanoseconds, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = f"{rest / 1_000_000_000:g}s"
    if hours:
        return f"{hours}h{minutes}m{seconds}"
    return f"{minutes}m{seconds}" if minutes else seconds


def apply_metadata(instruction: Instruction, config: dict[str, Any], env: Env, escape: str,
                   cmd_set: bool = False) -> str:
    """Change `config` as the instruction says; returns the step's history comment ("CMD [...]").

    For CMD, ENTRYPOINT, SHELL, ENV, LABEL, USER, WORKDIR, STOPSIGNAL,
    EXPOSE, VOLUME, HEALTHCHECK, ONBUILD and MAINTAINER (which sets no
    config field: the caller keeps the author). `cmd_set`: a CMD came
    earlier in this stage, so an ENTRYPOINT keeps it. Bad values raise
    errors.InvalidArgument.
    """
    keyword = instruction.keyword
    word = lambda text: shellwords.process_word(text, env, escape)  # noqa: E731
    if isinstance(instruction, Command):
        if keyword == "SHELL":
            config["Shell"] = list(instruction.args)
            return f"SHELL {go_quoted(instruction.args)}"
        args = command_args(instruction, config)
        if keyword == "CMD":
            config["Cmd"] = args
        else:
            config["Entrypoint"] = args
            # A new entrypoint drops the command it inherited, unless this stage set one.
            if not cmd_set:
                config.pop("Cmd", None)
        return f"{keyword} {go_quoted(args)}"
    if isinstance(instruction, Pairs):
        pairs = [(word(name), word(value or "")) for name, value in instruction.pairs]
        if keyword == "ENV":
            set_env(config, pairs)
        else:
            config["Labels"] = {**(config.get("Labels") or {}), **dict(pairs)}
        return f"{keyword} " + " ".join(f"{name}={value}" for name, value in pairs)
    if isinstance(instruction, Value):
        value = word(instruction.value)
        if keyword == "USER":
            config["User"] = value
        elif keyword == "WORKDIR":
            config["WorkingDir"] = posixpath.normpath(posixpath.join(config.get("WorkingDir") or "/", value))
            value = config["WorkingDir"]
        elif keyword == "STOPSIGNAL":
            apply_change(config, f"STOPSIGNAL {value}")
        return f"{keyword} {value}"
    if isinstance(instruction, Words):
        if instruction.node.json:
            values = [word(text) for text in instruction.words]
        else:
            values = [w for text in instruction.words for w in shellwords.process_words(text, env, escape)]
        if keyword == "EXPOSE":
            apply_change(config, "EXPOSE " + " ".join(values))
            return "EXPOSE " + " ".join(values)
        apply_change(config, "VOLUME " + json.dumps(values))
        return "VOLUME [" + " ".join(values) + "]"
    if isinstance(instruction, Healthcheck):
        check: dict[str, Any] = {"Test": instruction.test}
        for key, value in (("Interval", instruction.interval), ("Timeout", instruction.timeout),
                           ("StartPeriod", instruction.start_period),
                           ("StartInterval", instruction.start_interval), ("Retries", instruction.retries)):
            if value:
                check[key] = value
        config["Healthcheck"] = check
        durations = " ".join(json.dumps(_go_duration(v)) for v in (
            instruction.interval, instruction.timeout, instruction.start_period, instruction.start_interval))
        return f"HEALTHCHECK &{{{go_quoted(instruction.test)} {durations} '\\x{instruction.retries:02x}'}}"
    if isinstance(instruction, Onbuild):
        config["OnBuild"] = [*(config.get("OnBuild") or []), instruction.trigger]
        return f"ONBUILD {instruction.trigger}"
    raise AssertionError(f"not a metadata instruction: {keyword}")
