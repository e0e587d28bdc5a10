"""Safe YAML loading that remembers where every key and item came from.

Only plain data is built (SafeLoader's scalars, mappings, sequences). The file size
and the number of nodes after alias expansion are capped, so a "billion laughs"
file is refused rather than expanded. Duplicate keys are an error, not a silent
overwrite. Pydantic errors are then mapped back to ``file:line``.

Documents are composed by libyaml (``CSafeLoader``, several times faster) when PyYAML
has it; a document libyaml refuses is composed again by the pure-Python loader, whose
messages (with the offending line) are the ones users see.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from corral.errors import ManifestError, Problem
from corral.manifest._problems import Loc, pydantic_problems

MAX_BYTES = 1_000_000
MAX_NODES = 100_000
_MERGE = "tag:yaml.org,2002:merge"
_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("map", "seq", "str", "int", "float", "bool", "null")
)
_SCALAR_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null"))
_NOT_TEXT = {
    f"tag:yaml.org,2002:{t}": kind
    for t, kind in (("int", "a number"), ("float", "a number"), ("bool", "a boolean"))
} | {"tag:yaml.org,2002:null": "null"}
M = TypeVar("M", bound=BaseModel)


@dataclass
class Located:
    """Parsed YAML data and the line of each path in it."""

    file: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line(self, loc: Loc) -> int:
        """The line of the longest prefix of ``loc`` that the file contains."""
        kept: list[str | int] = []
        best = self.lines.get((), 1)
        for part in loc:
            if (*kept, part) in self.lines:
                kept.append(part)
                best = self.lines[tuple(kept)]
        return best

    def locate(self, problems: list[Problem]) -> list[Problem]:
        """The same problems with this file and the right line attached; a problem
        already in another file (a script's) keeps its place."""
        return [
            p
            if p.file not in (None, self.file)
            else Problem(p.message, p.fix, p.loc, self.file, p.line or self.line(p.loc))
            for p in problems
        ]


MAX_DEPTH = 64
"""How deep brackets may nest in a team or script file."""


def _too_deep(text: str) -> int | None:
    """The line where ``[``/``{`` nesting passes ``MAX_DEPTH`` (quotes and comments
    aside), if any."""
    depth, line, quote, comment = 0, 1, "", False
    for found in _MARKS.finditer(text):  # only these characters change anything
        char = found.group()
        if char == "\n":
            line, quote, comment = line + 1, "", False
        elif comment:
            continue
        elif char == "#" and not quote:
            comment = True
        elif quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line
        elif char in "]}":
            depth = max(0, depth - 1)
    return None


_MARKS = re.compile(r"[\n#'\"\[\]{}]")
_ANCHOR = re.compile(r"(?:^|[\s\[{,:])&\S")
"""Where an anchor may start (``&name`` after a space or a flow mark); "R&D" is no anchor."""


def load_yaml(path: Path) -> Located:
    """Read ``path`` as YAML data with line numbers; ``ManifestError`` on any problem."""
    shown = str(path)
    raw = _read(path, shown)
    text = _decoded(raw, shown)
    deep = _too_deep(text)
    if deep is not None:
        raise ManifestError(
            [
                Problem(
                    f"values are nested more than {MAX_DEPTH} levels deep",
                    "flatten the structure; a team file never needs this depth",
                    file=shown,
                    line=deep,
                )
            ]
        )
    try:
        root = _compose(text)
    except yaml.MarkedYAMLError as exc:
        # The context mark is where the broken construct starts; the problem mark is
        # where the parser gave up, often a line later.
        mark = exc.context_mark or exc.problem_mark
        if "single document" in str(exc.context):  # the problem is where the second begins
            mark = exc.problem_mark or mark
        noticed = f" (noticed at line {exc.problem_mark.line + 1})" if exc.problem_mark else ""
        raise ManifestError(
            [
                Problem(
                    f"not valid YAML: {exc.problem or exc.context}{noticed}",
                    "fix the YAML syntax at that line",
                    file=shown,
                    line=mark.line + 1 if mark else 1,
                )
            ]
        ) from None
    except yaml.reader.ReaderError as exc:  # a character YAML refuses, such as NUL
        line = text[: exc.position].count("\n") + 1
        raise ManifestError(
            [
                Problem(
                    f"not valid YAML: character {_shown_char(exc.character)} is not allowed",
                    "remove it (team files are plain UTF-8 text)",
                    file=shown,
                    line=line,
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        raise ManifestError(
            [Problem(f"not valid YAML: {exc}", "fix the YAML syntax", file=shown, line=1)]
        ) from None
    except RecursionError:
        raise ManifestError(
            [Problem("values are nested too deeply", "flatten the structure", file=shown, line=1)]
        ) from None
    located = Located(shown, None)
    if root is None:
        raise ManifestError(
            [Problem("the file is empty", "write a team definition", file=shown, line=1)]
        )
    builder = _Builder(located)
    try:
        located.data = builder.build(root, ())
    except RecursionError:
        raise ManifestError(
            [Problem("values are nested too deeply", "flatten the structure", file=shown, line=1)]
        ) from None
    if builder.problems:
        raise ManifestError(builder.problems)
    return located


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _read(path: Path, shown: str) -> bytes:
    """The bytes of ``path``, at most ``MAX_BYTES``. Only a regular file is read: a device
    (``/dev/zero``) could be read without end and a FIFO with no writer would wait for
    one forever, so they are refused before a byte is read (opened without blocking)."""

    def refuse(message: str, fix: str) -> ManifestError:
        return ManifestError([Problem(message, fix, file=shown, line=1)])

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                kind = next((k for test, k in _KINDS if test(info.st_mode)), "a special file")
                raise refuse(
                    f"not a regular file ({kind})", "give the path of a team file (YAML text)"
                )
            size = info.st_size
            with open(fd, "rb", closefd=False) as file:  # the size can be wrong (/proc)
                raw = b"" if size > MAX_BYTES else file.read(MAX_BYTES + 1)
        finally:
            os.close(fd)
    except OSError as exc:
        raise refuse(
            f"cannot read the file ({exc})", "check the path and that it is UTF-8 text"
        ) from None
    if size > MAX_BYTES or len(raw) > MAX_BYTES:
        said = f"{size:,} bytes" if size > MAX_BYTES else f"more than {MAX_BYTES:,} bytes"
        raise refuse(
            f"file is {said}, over the {MAX_BYTES:,} limit", "split the file or remove unused parts"
        )
    return raw


def _decoded(raw: bytes, shown: str) -> str:
    """``raw`` as UTF-8 text; a byte that is not UTF-8 is a problem at its own line."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = raw.rfind(b"\n", 0, exc.start) + 1  # the bad byte's line, up to it, is UTF-8
        line = raw.count(b"\n", 0, exc.start) + 1
        column = len(raw[start : exc.start].decode("utf-8")) + 1
        raise ManifestError(
            [
                Problem(
                    f"byte 0x{raw[exc.start]:02x} at column {column} is not UTF-8 ({exc.reason})",
                    "save the file as UTF-8",
                    file=shown,
                    line=line,
                )
            ]
        ) from None


def _compose(text: str) -> yaml.Node | None:
    """The node tree of ``text``, by libyaml when it is there; a document it refuses is
    composed again in Python, so an error is always PyYAML's own (same lines, same text).
    A document that may have an anchor is composed in Python, which says where each alias
    is used: libyaml's tree holds the anchored node itself there."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None and _ANCHOR.search(text) is None:
        try:
            return yaml.compose(text, Loader=fast)
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=_AliasLoader)


class _Alias(yaml.Node):
    """Where an alias is used (``start_mark``), and the node it names (``value``)."""

    id = "alias"


class _AliasLoader(yaml.SafeLoader):
    """The pure-Python safe loader; each alias is an ``_Alias`` at its own place."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            node = super().compose_node(parent, index)
            assert node is not None
            return _Alias(node.tag, node, mark, mark)
        return super().compose_node(parent, index)


class _Builder:
    def __init__(self, located: Located) -> None:
        self.located = located
        self.constructor = yaml.constructor.SafeConstructor()  # scalars only: no loader cycles
        self.count = 0
        self.problems: list[Problem] = []
        self.open: set[int] = set()  # the collections being built, to catch alias cycles

    def build(self, node: yaml.Node, loc: Loc, at: int | None = None) -> Any:
        """The data of ``node`` at ``loc``; ``at``: the line of the alias it was reached
        through (the outermost), where all of it is reported."""
        if isinstance(node, _Alias):
            return self.build(node.value, loc, at or node.start_mark.line + 1)
        self.count += 1
        if self.count > MAX_NODES:
            if self.count == MAX_NODES + 1:
                self.problems.append(
                    Problem(
                        f"the document expands to over {MAX_NODES:,} values (aliases?)",
                        "write the data out instead of nesting aliases",
                        loc,
                        self.located.file,
                        at or node.start_mark.line + 1,
                    )
                )
            return None
        self.located.lines.setdefault(loc, at or node.start_mark.line + 1)
        if id(node) in self.open:  # an alias inside the value its anchor names
            self._problem(
                "an alias refers to the value that contains it (a cycle)",
                "write the data out instead of referring to itself",
                loc,
                self.located.lines[loc],
            )
            return None
        if node.tag not in _PLAIN_TAGS:
            self._problem(
                f"YAML tag {node.tag!r} is not allowed",
                "use plain YAML data (text, numbers, booleans, lists, mappings)",
                loc,
                at or node.start_mark.line + 1,
            )
            return None
        if isinstance(node, yaml.CollectionNode):
            self.open.add(id(node))
            try:
                return self._collection(node, loc, at)
            finally:
                self.open.discard(id(node))
        if isinstance(node, yaml.ScalarNode) and node.tag in _SCALAR_TAGS:
            # the scalar's own constructor, without construct_object's bookkeeping
            return self.constructor.yaml_constructors[node.tag](self.constructor, node)
        return self.constructor.construct_object(node)

    def _collection(self, node: yaml.CollectionNode, loc: Loc, at: int | None) -> Any:
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                line = at or key_node.start_mark.line + 1
                if key_node.tag == _MERGE:
                    self._problem(
                        "YAML merge keys (<<) are not supported", "write the keys out", loc, line
                    )
                    continue
                kind = (
                    _NOT_TEXT.get(key_node.tag) if isinstance(key_node, yaml.ScalarNode) else None
                )
                if kind is not None:  # `on:`, `yes:`, `1:`, `~:` are not the text written
                    self._problem(
                        f"key {key_node.value!r} is read as {kind}, not text",
                        f"quote it: '{key_node.value}':",
                        (*loc, key_node.value),
                        line,
                    )
                    continue
                key = self.build(key_node, loc, at) if key_node.tag in _PLAIN_TAGS else None
                if not isinstance(key, str):
                    self._problem(f"key {key!r} is not text", "use a text key", loc, line)
                    continue
                if key in out:
                    self._problem(
                        f"duplicate key {key!r} (first at line "
                        f"{self.located.lines.get((*loc, key), '?')})",
                        "keep one of them",
                        (*loc, key),
                        line,
                    )
                    continue
                self.located.lines[(*loc, key)] = line
                out[key] = self.build(value_node, (*loc, key), at)
                self.located.lines[(*loc, key)] = line
            return out
        return [self.build(item, (*loc, i), at) for i, item in enumerate(node.value)]

    def _problem(self, message: str, fix: str, loc: Loc, line: int) -> None:
        self.problems.append(Problem(message, fix, loc, self.located.file, line))


More = Callable[[Any, list[Problem]], list[Problem]]


def validate_located(
    model: type[M], located: Located, *, more: More | None = None, **context: Any
) -> M:
    """Validate YAML data into ``model``; every problem comes back with ``file:line``.

    ``more`` finds further problems in data whose structure did not validate, so
    one pass reports every mistake.
    """
    data = located.data
    if isinstance(data, dict):
        data = {**data, **context}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = pydantic_problems(exc, model, data)
        if more is not None:
            problems += more(data, problems)
        found = located.locate(problems)
        raise ManifestError(sorted(found, key=lambda p: p.line or 0)) from None
    except ManifestError as exc:
        found = located.locate(exc.problems)
        raise ManifestError(sorted(found, key=lambda p: p.line or 0)) from None


def _shown_char(character: Any) -> str:
    """A character YAML refused, shown so that even a NUL is visible."""
    return repr(chr(character) if isinstance(character, int) else str(character))
