"""The stages of a Dockerfile: ARGs before the first FROM, each FROM and its steps, and what a target needs.

A stage starts at each FROM (`FROM image [AS name]`). A later stage can
start FROM an earlier one by name and COPY --from it by name or index. The
target (`--target`, else the last stage) is built with the stages it
needs, in file order; the others are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from agent.build import shellwords
from agent.build.dockerfile import Dockerfile, ParseError
from agent.build.instructions import Copy, From, Instruction, Pairs, parse_instruction
from kran import errors


@dataclass
class Stage:
    """One FROM and the instructions after it."""

    index: int
    base: From
    steps: list[Instruction] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The stage's name (lower case), or "" when it has none."""
        return self.base.name


@dataclass
class Plan:
    """A parsed Dockerfile: meta ARGs (before the first FROM), stages, escape character."""

    meta_args: list[Pairs]
    stages: list[Stage]
    escape: str = "\\"

    def stage_named(self, name: str, before: int | None = None) -> Stage | None:
        """The stage called `name` (or numbered, as COPY --from allows) before index `before`."""
        limit = len(self.stages) if before is None else before
        for stage in self.stages[:limit]:
            if stage.name and stage.name == name.lower():
                return stage
        return None

    def target(self, name: str) -> Stage:
        """The stage to build: the one named, or the last."""
        if not name:
            return self.stages[-1]
        stage = self.stage_named(name)
        if stage is None:
            raise errors.InvalidArgument(f"failed to reach build target {name} in Dockerfile")
        return stage


def plan(dockerfile: Dockerfile, filename: str = "Dockerfile") -> Plan:
    """Group the instructions into stages; ParseError for one Docker refuses."""
    if not dockerfile.nodes:
        raise errors.InvalidArgument(f"the Dockerfile ({filename}) cannot be empty")
    meta: list[Pairs] = []
    stages: list[Stage] = []
    names: set[str] = set()
    for node in dockerfile.nodes:
        instruction = parse_instruction(node)
        if isinstance(instruction, From):
            if instruction.name and instruction.name in names:
                raise ParseError(node.line, f'duplicate stage name "{instruction.name}"')
            names.add(instruction.name)
            stages.append(Stage(len(stages), instruction))
        elif stages:
            stages[-1].steps.append(instruction)
        elif node.keyword == "arg":
            assert isinstance(instruction, Pairs)
            meta.append(instruction)
        else:
            raise ParseError(node.line, "no build stage in current context")
    if not stages:
        raise errors.InvalidArgument("no build stage in current context: a Dockerfile needs a FROM")
    return Plan(meta, stages, dockerfile.escape)


def meta_values(plan_: Plan, build_args: Mapping[str, str]) -> dict[str, str | None]:
    """The values of the ARGs before the first FROM: a build arg, else the default (expanded)."""
    values: dict[str, str | None] = {}
    for instruction in plan_.meta_args:
        for name, default in instruction.pairs:
            if name in build_args:
                values[name] = build_args[name]
            elif default is not None:
                values[name] = shellwords.process_word(default, values, plan_.escape)
            else:
                values[name] = None
    return values


def base_names(plan_: Plan, meta: Mapping[str, str | None]) -> list[str]:
    """Each stage's FROM image with the meta ARGs expanded."""
    names = []
    for stage in plan_.stages:
        name = shellwords.process_word(stage.base.image, meta, plan_.escape)
        if not name:
            raise stage.base.error(f"base name ({stage.base.image}) should not be blank")
        names.append(name)
    return names


def copy_source_stage(plan_: Plan, stage: Stage, text: str) -> Stage | None:
    """The stage COPY --from=`text` means (an earlier stage's name or index), None for an image."""
    if text.isdigit():
        index = int(text)
        if index >= stage.index:
            raise errors.InvalidArgument(
                f"invalid from flag value {text}: refers to current or future build stage")
        return plan_.stages[index]
    return plan_.stage_named(text, stage.index)


def needed(plan_: Plan, target: Stage, bases: list[str]) -> list[Stage]:
    """The target and the stages it builds on or copies from, in file order."""
    wanted: set[int] = set()
    pending = [target]
    while pending:
        stage = pending.pop()
        if stage.index in wanted:
            continue
        wanted.add(stage.index)
        base = plan_.stage_named(bases[stage.index], stage.index)
        if base is not None:
            pending.append(base)
        for step in stage.steps:
            if isinstance(step, Copy) and step.source_stage:
                source = copy_source_stage(plan_, stage, step.source_stage)
                if source is not None:
                    pending.append(source)
    return [s for s in plan_.stages if s.index in wanted]
