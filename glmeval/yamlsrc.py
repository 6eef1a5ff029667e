"""YAML loading that remembers where every value came from.

Suite errors must name the file and the line. PyYAML's composed node tree carries marks for
every node, so we load the data normally and keep the tree to answer "which line holds
``cases[3].checks[0]``?" when validation later complains about that path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from glmeval.errors import SuiteError


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys instead of silently keeping the last."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
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
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


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


def load_yaml(path: Path, text: str | None = None) -> Source:
    """Parse a YAML file. Syntax errors become a SuiteError naming file, line and column."""
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SuiteError([f"{path}: file not found"]) from None
        except IsADirectoryError:
            raise SuiteError([f"{path}: is a directory, expected a YAML file"]) from None
        except UnicodeDecodeError as exc:
            raise SuiteError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
        except OSError as exc:
            raise SuiteError([f"{path}: cannot read ({exc.strerror})"]) from None
    try:
        root = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise SuiteError([f"{path}{line}: YAML syntax error: {problem}"]) from None
    except yaml.YAMLError as exc:
        raise SuiteError([f"{path}: YAML error: {exc}"]) from None
    except RecursionError:
        raise SuiteError([f"{path}: YAML nested too deeply"]) from None
    return Source(path=path, data=data, root=root)
