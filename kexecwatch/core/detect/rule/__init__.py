"""The Elasticsearch EQL subset used by Elastic's Linux ``process where`` rules.

Pure: no I/O. Compile a query once with :func:`compile_query` and call
``CompiledQuery.matches(doc)`` on each ECS document; load a detection-rules TOML file
with :func:`load_rule`. Semantics follow Elasticsearch, not the ``eql`` Python package:
see :mod:`kexecwatch.core.detect.rule.evaluate` for the exact rules.
"""

from __future__ import annotations

from kexecwatch.core.detect.rule.evaluate import CompiledQuery, Document
from kexecwatch.core.detect.rule.query import compile_query
from kexecwatch.core.detect.rule.ruleset import Rule, Technique, Threat, ThreatRef, load_rule

__all__ = [
    "CompiledQuery",
    "Document",
    "Rule",
    "Technique",
    "Threat",
    "ThreatRef",
    "compile_query",
    "load_rule",
]
