"""Reading a spec written in YAML, shared by experiment and canary specs: the size and alias
limits, safe loading, and validation against a pydantic model with every problem reported at
once with its file, line and field (:class:`SpecError`).

This module never imports streamlit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

__all__ = [
    "MAX_ALIASES",
    "MAX_SPEC_BYTES",
    "SpecError",
    "SpecProblem",
    "parse_document",
    "read_spec_file",
    "read_yaml",
]

#: A spec is a page of YAML: longer texts, or ones built from many aliases, are refused unread.
MAX_SPEC_BYTES = 256 * 1024
MAX_ALIASES = 50


@dataclass(frozen=True, slots=True)
class SpecProblem:
    """One problem of a spec: the file, the 1-based line (None when unknown), the field path."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.field or '(document)'}: {self.message}"


class SpecError(ValueError):
    """A spec file (or several) is unreadable, not YAML, or invalid; ``problems`` lists each one."""

    def __init__(self, problems: Sequence[SpecProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def _node_at(node: yaml.Node | None, loc: Sequence[Any]) -> yaml.Node | None:
    """The node where the field at ``loc`` is written: the key of a mapping entry (its line is
    the field's), an item of a sequence, or the deepest existing parent when the field is missing."""
    for depth, part in enumerate(loc):
        last = depth == len(loc) - 1
        if isinstance(node, yaml.MappingNode):
            entry = next((kv for kv in node.value if str(kv[0].value) == str(part)), None)
            if entry is None:
                return node
            node = entry[0] if last else entry[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
        else:
            return node
    return node


def _line(root: yaml.Node | None, loc: Sequence[Any]) -> int | None:
    node = _node_at(root, loc)
    return None if node is None else node.start_mark.line + 1


def _field(loc: Sequence[Any]) -> str:
    return ".".join(str(p) for p in loc)


def _duplicate_keys(node: yaml.Node | None, path: tuple[Any, ...] = ()) -> list[tuple[int, str, str]]:
    """(line, field, message) of every mapping key written twice (YAML would keep the last)."""
    found: list[tuple[int, str, str]] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                found.append((key.start_mark.line + 1, _field((*path, name)), "key written twice"))
            seen.add(name)
            found += _duplicate_keys(value, (*path, name))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found += _duplicate_keys(item, (*path, i))
    return found


def read_yaml(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    """The YAML ``text`` of a spec as (its node tree, for line numbers; the loaded document),
    within the limits every spec shares: at most ``MAX_SPEC_BYTES`` and ``MAX_ALIASES`` aliases
    (no "billion laughs"), safe loading only.

    Raises:
        SpecError: too large, too many aliases, or not valid YAML (with its line).
    """
    if len(text.encode("utf-8", "replace")) > MAX_SPEC_BYTES:
        raise SpecError(
            [SpecProblem(source, None, "", f"the spec is larger than {MAX_SPEC_BYTES // 1024} KiB")]
        )
    try:
        aliases = sum(
            isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=yaml.SafeLoader)
        )
        if aliases > MAX_ALIASES:
            raise SpecError(
                [
                    SpecProblem(
                        source, None, "", f"the spec uses {aliases} YAML aliases (at most {MAX_ALIASES})"
                    )
                ]
            )
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise SpecError([SpecProblem(source, line, "", f"not valid YAML: {reason}")]) from None
    return root, document


_Spec = TypeVar("_Spec", bound=BaseModel)
_Problems = list[tuple[tuple[Any, ...], str]]


def parse_document(
    text: str,
    source: str,
    model: type[_Spec],
    *,
    shape: str,
    message: Callable[[Any], str],
    semantic: Callable[[_Spec], _Problems],
    when_invalid: Callable[[dict[str, Any]], _Problems] | None = None,
) -> _Spec:
    """Validate the YAML ``text`` of one spec against ``model``, every problem with its line and
    field: keys written twice, pydantic's errors (worded by ``message``) and, when those pass,
    ``semantic(spec)``; ``when_invalid(document)`` adds problems found in the raw document when
    the model refused it.  ``shape`` is the message for a document that is not a mapping.

    Raises:
        SpecError: not YAML, not a mapping, or not a valid spec.
    """
    root, document = read_yaml(text, source)
    if not isinstance(document, dict):
        raise SpecError([SpecProblem(source, 1, "", shape)])
    problems = [SpecProblem(source, line, f, m) for line, f, m in _duplicate_keys(root)]
    try:
        spec = model.model_validate(document)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            problems.append(SpecProblem(source, _line(root, loc), _field(loc), message(err)))
        for loc, msg in when_invalid(document) if when_invalid is not None else ():
            problems.append(SpecProblem(source, _line(root, loc), _field(loc), msg))
        raise SpecError(problems) from None
    problems += [SpecProblem(source, _line(root, loc), _field(loc), m) for loc, m in semantic(spec)]
    if problems:
        raise SpecError(problems)
    return spec


def read_spec_file(file: Path) -> str:
    """The text of the spec file ``file``.

    Raises:
        SpecError: it cannot be read (the message names the file).
    """
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([SpecProblem(str(file), None, "", f"cannot read the spec: {exc}")]) from None
