"""The built-in rules' precomputed form: their parsed TOML and query trees, as JSON.

Theory of operation: every run loads the built-in rules, and parsing them (Python's
``tomllib``, pure Python, and the EQL parser for the v7 rule) was a fixed part of every
replay's start-up. ``builtin.json``, beside the rule files, holds for each built-in rule
file its text, what :func:`kexecwatch.core.parse_toml` makes of it and, for an EQL rule,
its query and the query's syntax tree (:mod:`kexecwatch.core.detect.rule.astjson`).
:func:`kexecwatch.rules.load_builtin_rules` takes an entry only when its text is the
file's text, character for character, so an edited rule file is parsed as before; a
missing or damaged ``builtin.json`` is the same as none (every file is parsed). Compiling
still runs on every load. ``python -m tools.builtin_rules`` writes the file from
:func:`entries`, and ``tests/test_builtin_precomputed.py`` checks that the committed file
is what the parsers give today and that the rules load the same either way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kexecwatch.core import QuerySource, astjson, parse_statement, parse_toml

__all__ = ["FILE", "FORMAT", "entries", "read_entries"]

#: The file's name, beside the rule files.
FILE = "builtin.json"
#: The value of its ``format`` key.
FORMAT = "kexecwatch-builtin-rules/1"


def entries(texts: Mapping[str, str]) -> dict[str, Any]:
    """The document ``builtin.json`` holds for rule files ``name -> text``.

    Raises:
        RuleError: a file or its query does not parse (a broken built-in rule).
    """
    files: dict[str, Any] = {}
    for name, text in texts.items():
        data = parse_toml(text, name)
        rule = data.get("rule")
        rule = rule if isinstance(rule, dict) else {}
        query = rule.get("query")
        entry: dict[str, Any] = {"text": text, "toml": data}
        if isinstance(query, str) and rule.get("language") == "eql":
            entry["query"] = query
            entry["tree"] = astjson.to_data(parse_statement(QuerySource(query, name)))
        files[name] = entry
    return {"format": FORMAT, "files": files}


def read_entries(path: Path) -> dict[str, Any]:
    """The entries of ``path`` by file name; empty when it is missing or not this format."""
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return {}
    files = doc.get("files")
    return files if isinstance(files, dict) else {}
