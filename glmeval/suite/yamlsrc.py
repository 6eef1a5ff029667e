"""YAML loading that remembers where every value came from.

Suite errors must name the file and the line. PyYAML's composed node tree carries marks for
every node, so we load the data normally and keep the tree to answer "which line holds
``cases[3].checks[0]``?" when validation later complains about that path.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from glmeval.checks.args import short
from glmeval.errors import SuiteError


class _Checked:
    """Constructor behaviour shared by both parsers: a duplicate mapping key is an error instead
    of silently keeping the last, and a scalar that cannot be built (``2024-13-45``,
    ``!!int abc``) becomes a marked error instead of a bare ValueError without a line."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)  # type: ignore[misc]
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, AttributeError, OverflowError, IndexError, KeyError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {node.tag.rsplit(':', 1)[-1]} value {_node_text(node)}: {exc}", node.start_mark
            ) from None


class _Loader(_Checked, yaml.SafeLoader):
    """The pure-Python parser: its error messages are the ones suites have always shown."""


_CSafeLoader: Any = getattr(yaml, "CSafeLoader", None)
_FastLoader: Any = type("_FastLoader", (_Checked, _CSafeLoader), {}) if _CSafeLoader is not None else None
"""libyaml's parser (about 8x faster on a large suite) with the same constructor. A document it
refuses is parsed again by :class:`_Loader`, so every error keeps the wording and marks of the
pure-Python parser."""

_LIBYAML_DIFFERS = re.compile(r"[\t\x85\u2028\u2029]|[|>][-+0-9]*#|!(?=\s|$)")
"""What libyaml accepts and the pure-Python parser refuses or reads otherwise (found by
parsing random documents with both): tabs where YAML 1.1 forbids them, NEL and the Unicode line
separators, ``|#`` block headers and a bare ``!`` tag. Text with any of these takes the
pure-Python parser, so a suite means the same whichever parser is installed."""


def _node_text(node: yaml.Node) -> str:
    return short(node.value if isinstance(node, yaml.ScalarNode) else "...")


def _construct_mapping(loader: Any, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            ) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first at line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    loader.flatten_mapping(node)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


for _loader in (_Loader, _FastLoader):
    if _loader is not None:
        _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass
class Source:
    """Parsed YAML plus the node tree, to turn a data path into a line number."""

    path: Path
    data: Any
    root: yaml.Node | None

    def line(self, loc: Sequence[Any]) -> int | None:
        """1-based line of the value at ``loc``, or of its nearest existing parent."""
        node = self.root
        best = node.start_mark.line + 1 if node is not None else None
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                nxt = None
                for key_node, value_node in node.value:
                    if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                        nxt = value_node
                        best = key_node.start_mark.line + 1
                        break
                if nxt is None:
                    return best
                node = nxt
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                node = node.value[part]
                best = node.start_mark.line + 1
            else:
                return best
        return best

    def key_line(self, loc: Sequence[Any], key: str) -> int | None:
        """Line of the key ``key`` inside the mapping at ``loc`` (for unknown-key errors)."""
        return self.line([*loc, key])

    def where(self, loc: Sequence[Any] = ()) -> str:
        line = self.line(loc)
        return f"{self.path}:{line}" if line else str(self.path)


@dataclass(frozen=True, eq=False)
class Origin:
    """Where one piece of suite data was written, so a later problem can name file and line.

    Data from a YAML file keeps its :class:`Source` and the path inside it, and answers the
    line of any sub-path; a CSV or JSONL row has one fixed line for everything in it.
    """

    path: Path
    source: Source | None = None
    loc: tuple[Any, ...] = ()
    fixed_line: int | None = None

    def line(self, sub: Sequence[Any] = ()) -> int | None:
        if self.source is not None:
            return self.source.line((*self.loc, *sub))
        return self.fixed_line

    def where(self, sub: Sequence[Any] = ()) -> str:
        line = self.line(sub)
        return f"{self.path}:{line}" if line else str(self.path)

    def at(self, *sub: Any) -> Origin:
        """The origin of a value inside this one."""
        if self.source is None:
            return self
        return Origin(self.path, self.source, (*self.loc, *sub), self.fixed_line)


@dataclass(frozen=True, eq=False)
class Row:
    """One record of a case file: its fields and where it was written."""

    data: dict[str, Any]
    origin: Origin


TABLE_SUFFIXES = (".csv", ".jsonl", ".yaml", ".yml", ".json")


def read_text(path: Path, what: str = "file") -> str:
    """A file's UTF-8 text (a leading BOM dropped); every failure is a SuiteError naming it."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SuiteError([f"{path}: {what} not found"]) from None
    except IsADirectoryError:
        raise SuiteError([f"{path}: is a directory, expected a {what}"]) from None
    except UnicodeDecodeError as exc:
        raise SuiteError([_not_utf8(path, exc)]) from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise SuiteError([f"{path}: cannot read ({reason})"]) from None


def _not_utf8(path: Path, exc: UnicodeDecodeError) -> str:
    """``file:line: not UTF-8 text ...`` with the way out. A CSV saved by Chinese Excel is GBK,
    the usual way to get here; Excel's "CSV UTF-8" format is the fix."""
    try:
        data = path.read_bytes()
    except OSError:
        data = b""
    line = data[: exc.start].count(b"\n") + 1 if data else None
    where = f"{path}:{line}" if line else str(path)
    looks = ""
    try:
        if any(ord(ch) > 0x2E7F for ch in data.decode("gb18030")):
            looks = "; it looks like GBK/GB18030"
    except UnicodeDecodeError:
        pass
    hint = "save it as UTF-8" + (" (Excel: 'CSV UTF-8')" if path.suffix.lower() == ".csv" else "")
    return f"{where}: not UTF-8 text (byte {exc.start}: {exc.reason}){looks}; {hint}"


def read_rows(path: Path) -> list[Row]:
    """Read a case file (CSV, JSONL, or a YAML/JSON list of mappings) into rows with lines.

    CSV cells stay text (the suite loader decides what a reserved column means); JSONL and YAML
    rows keep their types. Every malformed row is reported, each with its own line.
    """
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise SuiteError(
            [f"{path}: unsupported case file type {suffix or '(none)'!r}; use .csv, .jsonl, .yaml or .json"]
        )
    text = read_text(path, "case file")
    if suffix == ".csv":
        return _csv_rows(path, text)
    if suffix == ".jsonl":
        return _jsonl_rows(path, text)
    return _yaml_rows(path, text)


def _csv_rows(path: Path, text: str) -> list[Row]:
    problems: list[str] = []
    rows: list[Row] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    last = 0
    try:
        for record in reader:
            start, last = last + 1, reader.line_num
            if not record or not "".join(record).strip():  # no cell holds more than blanks
                continue
            if header is None:
                header = [cell.strip() for cell in record]
                for i, name in enumerate(header):
                    if not name:
                        problems.append(f"{path}:{start}: column {i + 1} of the header has no name")
                    elif name in header[:i]:
                        problems.append(f"{path}:{start}: duplicate column {name!r} in the header")
                continue
            if len(record) != len(header):
                problems.append(
                    f"{path}:{start}: this row has {len(record)} fields but the header has {len(header)} columns"
                )
                continue
            rows.append(Row(dict(zip(header, record)), Origin(path, fixed_line=start)))
    except csv.Error as exc:
        problems.append(f"{path}:{reader.line_num}: CSV error: {exc}")
    if header is None and not problems:
        problems.append(f"{path}:1: the CSV file is empty; expected a header row naming the columns")
    if problems:
        raise SuiteError(problems)
    return rows


def _jsonl_rows(path: Path, text: str) -> list[Row]:
    problems: list[str] = []
    rows: list[Row] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{number}: invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        except RecursionError:
            problems.append(f"{path}:{number}: JSON nested too deeply")
            continue
        if not isinstance(data, dict):
            problems.append(f"{path}:{number}: each line must be a JSON object; got {type(data).__name__}")
            continue
        rows.append(Row(data, Origin(path, fixed_line=number)))
    if problems:
        raise SuiteError(problems)
    return rows


def _yaml_rows(path: Path, text: str) -> list[Row]:
    source = load_yaml(path, text)
    data = source.data
    loc: tuple[Any, ...] = ()
    if isinstance(data, dict) and set(data) == {"cases"}:
        data, loc = data["cases"], ("cases",)
    if data is None:
        return []
    if not isinstance(data, list):
        raise SuiteError(
            [f"{source.where()}: a case file holds a list of cases (or a mapping with only cases:); got {type(data).__name__}"]
        )
    rows: list[Row] = []
    problems: list[str] = []
    for i, item in enumerate(data):
        origin = Origin(path, source, (*loc, i))
        if not isinstance(item, dict):
            problems.append(f"{origin.where()}: each case must be a mapping; got {type(item).__name__}")
            continue
        rows.append(Row(item, origin))
    if problems:
        raise SuiteError(problems)
    return rows


def _reader_problem(path: Path, text: str, exc: yaml.reader.ReaderError) -> str:
    """A character YAML does not allow (a control character, say), with its line."""
    line = text[: exc.position].count("\n") + 1 if isinstance(exc.position, int) else None
    where = f"{path}:{line}" if line else str(path)
    code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
    return f"{where}: YAML error: the character #x{code:04x} is not allowed in YAML (a control character?)"


MAX_EXPANDED_NODES = 1_000_000
"""How many values aliases may add to a document. Only what aliases expand counts: a large
suite written out in full is not a bomb, however many values it holds."""


def _check_aliases(root: yaml.Node, path: Path) -> None:
    """Refuse alias cycles and alias bombs before anything walks the data.

    An anchor used inside itself makes a self-containing list, and nested aliases can expand a
    small file into billions of values ("billion laughs"); either would hang or crash whatever
    walks the data later, so both become one clear error here. The composed tree shares one
    node per anchor, so the first reference to a node is the value as written and every later
    reference (an alias) adds that node's whole expanded size.
    """
    sizes: dict[int, int] = {}
    claimed: set[int] = set()
    active: set[int] = set()
    added = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            total = 1
            for child in _children(node):
                ident = id(child)
                total += sizes[ident]
                if ident in claimed:
                    added += sizes[ident]
                    if added > MAX_EXPANDED_NODES:
                        raise SuiteError(
                            [
                                f"{path}:{node.start_mark.line + 1}: YAML aliases expand to more than "
                                f"{MAX_EXPANDED_NODES:,} values"
                            ]
                        )
                else:
                    claimed.add(ident)
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in active:
            raise SuiteError([f"{path}:{node.start_mark.line + 1}: a YAML alias refers to a value that contains it"])
        active.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in active:
                raise SuiteError(
                    [f"{path}:{child.start_mark.line + 1}: a YAML alias refers to a value that contains it"]
                )
            if id(child) not in sizes:
                stack.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def load_yaml(path: Path, text: str | None = None) -> Source:
    """Parse a YAML file. Syntax errors become a SuiteError naming file, line and column.

    libyaml parses when it is installed; a document it refuses goes through the pure-Python
    parser, whose messages (and marks) are the ones reported.
    """
    if text is None:
        text = read_text(path, "file")
    if _FastLoader is not None and not _LIBYAML_DIFFERS.search(text):
        try:
            loader = _FastLoader(text)
        except yaml.YAMLError:
            pass
        else:
            try:
                return _compose(path, loader, text)
            except (yaml.YAMLError, RecursionError):
                pass
            finally:
                loader.dispose()
    return _load_checked(path, text)


def _compose(path: Path, loader: Any, text: str) -> Source:
    root = loader.get_single_node()
    if root is not None and "&" in text:  # no anchor, no alias: nothing to expand
        _check_aliases(root, path)
    data = loader.construct_document(root) if root is not None else None
    return Source(path=path, data=data, root=root)


def _load_checked(path: Path, text: str) -> Source:
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        raise SuiteError([_reader_problem(path, text, exc)]) from None
    try:
        return _compose(path, loader, text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        start = exc.context_mark
        if exc.problem and exc.context and start is not None and mark is not None and start.line != mark.line:
            problem = f"{problem} ({exc.context} at line {start.line + 1})"
        kind = "YAML error" if isinstance(exc, yaml.constructor.ConstructorError) else "YAML syntax error"
        if "flow mapping" in str(exc.context or "") or "expected ',' or '}'" in problem or "expected ',' or ']'" in problem:
            # The usual cause: an unquoted value with [ ] { } , : # inside {...}, such as
            # `{path: items[0]}` or `{content: What is it?}`.
            problem += "; inside {...} or [...], quote values that contain [ ] { } , : ? or #"
        raise SuiteError([f"{path}{line}: {kind}: {problem}"]) from None
    except yaml.reader.ReaderError as exc:
        raise SuiteError([_reader_problem(path, text, exc)]) from None
    except yaml.YAMLError as exc:
        raise SuiteError([f"{path}: YAML error: {exc}"]) from None
    except RecursionError:
        raise SuiteError([f"{path}: YAML nested too deeply"]) from None
    finally:
        loader.dispose()
