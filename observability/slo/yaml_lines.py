"""YAML documents loaded with the line of every node, so that a validation error can name the line.

:func:`load_with_lines` composes the document with PyYAML's node API (``SafeLoader``: the same
tags and values as ``yaml.safe_load``), constructs the Python value from those nodes, and keeps
the 1-based line of each mapping key and sequence item by its path, e.g. ``("slos", 1,
"objective") -> 27``.  :func:`line_of` maps a pydantic error location to the line of the deepest
node on it that the document has (the entry's own line when it exists; for a missing field, the
mapping that lacks it).  :func:`format_loc` spells a location as ``slos[1].objective``.

Pure: no file access, no streamlit, no engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = ["LinedDocument", "YAMLSyntaxError", "format_loc", "line_of", "load_with_lines"]

Path = tuple[str | int, ...]


class YAMLSyntaxError(ValueError):
    """The text is not YAML (or holds a duplicate key); ``line`` is 1-based, None when unknown."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class LinedDocument:
    """A YAML document's value and the line (1-based) of each mapping key and sequence item by path
    (``()``: the document's first node)."""

    value: Any
    lines: dict[Path, int] = field(default_factory=dict)


def _walk(node: yaml.Node, path: Path, lines: dict[Path, int]) -> None:
    """Record the line of every entry under ``node`` (keys of mappings, items of sequences)."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            line = key_node.start_mark.line + 1
            if key is None:
                continue
            if key in seen:
                raise YAMLSyntaxError(
                    f"duplicate key {key!r} (first on line {seen[key]}); YAML keeps only the last one", line
                )
            seen[key] = line
            lines[(*path, key)] = line
            _walk(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _walk(item, (*path, index), lines)


def load_with_lines(text: str) -> LinedDocument:
    """The value of the YAML document ``text`` (as ``yaml.safe_load`` gives it; None for an empty
    document) with the line of each of its entries.

    Raises:
        YAMLSyntaxError: the text is not one YAML document (the message names the problem, ``line``
            where it is), or a mapping repeats a key (which ``yaml.safe_load`` would silently drop).
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        value = None if node is None else loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        parts = [p for p in (exc.context, exc.problem) if p]
        raise YAMLSyntaxError(
            "; ".join(parts) or "not valid YAML", None if mark is None else mark.line + 1
        ) from None
    except yaml.YAMLError as exc:
        raise YAMLSyntaxError(str(exc) or "not valid YAML", None) from None
    finally:
        loader.dispose()
    lines: dict[Path, int] = {}
    if node is not None:
        lines[()] = node.start_mark.line + 1
        _walk(node, (), lines)
    return LinedDocument(value, lines)


def line_of(lines: dict[Path, int], loc: Sequence[str | int]) -> int | None:
    """The line of the deepest prefix of ``loc`` that the document has (None: not even its root)."""
    for end in range(len(loc), -1, -1):
        line = lines.get(tuple(loc[:end]))
        if line is not None:
            return line
    return None


def format_loc(loc: Sequence[str | int]) -> str:
    """``("slos", 1, "objective")`` as ``slos[1].objective`` (an empty location as ``(document)``)."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"
