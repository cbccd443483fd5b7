"""YAML with limits: config files and override values are parsed within a size, node and depth budget.

A few kilobytes of YAML can describe an exponentially large value: each alias (``*a``) names a
node again, and nested aliases multiply (the "billion laughs"). PyYAML builds such a document
as a small graph of shared nodes, but anything that walks the value as a tree (``to_dict``,
``repr`` in an error message, ``json.dumps`` for a hash) expands it. So a document is refused
before it is turned into Python values when

* its text is longer than ``MAX_BYTES`` (suite files are a few kilobytes);
* it nests deeper than ``MAX_DEPTH`` collections;
* it expands to more than ``MAX_NODES`` nodes, every alias counted as a copy of what it names
  (``expanded_size``, linear in the document's own size: each node's expansion is computed once).

``ConfigLoader`` is the loader every config read uses (``metahyper.config.parse_yaml``): a
``SafeLoader`` (no Python tags) that also reads ``1e-3`` and ``1E5`` as floats (YAML 1.2 float
syntax, where PyYAML's YAML 1.1 rules make strings of them). Limits raise ``YamlLimitError``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

MAX_BYTES = 1 << 20
MAX_NODES = 100_000
MAX_DEPTH = 64


class YamlLimitError(ValueError):
    """A YAML text is too long, too deep or expands to too many nodes; the message says which limit."""


def expanded_size(root: yaml.Node, limit: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> int:
    """The number of nodes of ``root`` with every alias expanded (a node reached twice counts
    twice); raises ``YamlLimitError`` past ``limit`` nodes or ``max_depth`` levels of nesting."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, depth: int) -> int:
        if depth > max_depth:
            raise YamlLimitError(f"nested more than {max_depth} levels deep")
        if id(node) in sizes:
            return sizes[id(node)]
        sizes[id(node)] = 1  # a node that contains itself (a recursive alias) counts once
        children = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [item for pair in node.value for item in pair]
        total = 1
        for child in children:
            total += size(child, depth + 1)
            if total > limit:
                raise YamlLimitError(f"expands to more than {limit} values (aliases such as *name count once per "
                                     "use; nested aliases multiply)")
        sizes[id(node)] = total
        return total

    return size(root, 0)


class ConfigLoader(yaml.SafeLoader):
    """``SafeLoader`` with YAML 1.2 floats (``1e-3``) that refuses documents past the module's limits."""

    def get_single_node(self) -> yaml.Node | None:
        try:
            node = super().get_single_node()
        except RecursionError:
            raise YamlLimitError(f"nested more than {MAX_DEPTH} levels deep") from None
        if node is not None:
            expanded_size(node)
        return node


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_text(text: str) -> object:
    """The value of one YAML document, within the limits (``YamlLimitError`` otherwise)."""
    if len(text) > MAX_BYTES:
        raise YamlLimitError(f"{len(text)} characters, more than the {MAX_BYTES} a config may have")
    return yaml.load(text, Loader=ConfigLoader)


def read_text(path: str | os.PathLike) -> str:
    """A config file's UTF-8 text, reading at most ``MAX_BYTES + 1`` bytes (``YamlLimitError``
    when the file is longer: it is not read into memory whole). ``OSError`` and
    ``UnicodeDecodeError`` pass through."""
    with open(Path(path), "rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise YamlLimitError(f"longer than the {MAX_BYTES} bytes a config file may have")
    return data.decode("utf-8")
