"""Elasticsearch's EQL functions: their signatures, type checks and null rules.

Theory of operation. Each function has a :class:`Signature`: the kind of each argument
(``string``, ``number``, ``boolean`` or ``any``), the kind it returns, whether it has a
case-insensitive ``~`` form, and its implementation on plain Python values. The parser
checks what it can before a query runs, as Elasticsearch does: the number of arguments,
constant arguments of the wrong kind (``startsWith(process.name, 1)``), and ``cidrMatch``
blocks that are not networks. What only a document can tell (a field holding a number
where a string is wanted) is decided when the query runs: such an argument is null.

Null rules (Elasticsearch's): a function with a null argument returns null, except
where an optional argument's null means its default (``indexOf``'s start). A null result
never satisfies a condition (:mod:`.compute`). Numbers are ints and floats, never
booleans. ``divide`` of two integers truncates toward zero, and ``modulo`` takes the
sign of the dividend, as Java's ``long`` arithmetic does; dividing by zero is null.
``string`` spells booleans ``true``/``false``. ``number`` parses base 10 by default
(integers, then decimals) and accepts ``0x`` in base 16; text it cannot parse is null.
``substring`` slices as Python does (negative offsets count from the end). ``between``
and ``indexOf`` return ``""`` and null when the delimiters or the text are not found.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from kexecwatch.core.detect.rule.ast import (
    Arith,
    Call,
    Field,
    Length,
    Literal,
    Negate,
    Scalar,
    Value,
)
from kexecwatch.core.text.frozen import Frozen, set_field

__all__ = [
    "FUNCTION_NAMES",
    "Signature",
    "apply",
    "kind_of",
    "lookup",
    "network",
    "returns",
]

#: What an argument or result may be: ``any`` is a field, whose kind only a document tells.
Kind = str
_Impl = Callable[..., Any]


class Signature(Frozen):
    """A function: its name as Elasticsearch spells it, argument kinds and result kind.

    Attributes:
        name: the canonical spelling (``stringContains``).
        required: the kinds of the required arguments, in order.
        optional: the kinds of optional arguments after them.
        variadic: the kind of any further arguments (``concat``, ``cidrMatch``), or ``None``.
        result: the kind it returns.
        nocase: whether ``name~`` (case-insensitive) exists.
        impl: ``impl(nocase, *args)`` on Python values; ``None`` is null.
    """

    __slots__ = (  # noqa: RUF023 - the fields, in order
        "name",
        "required",
        "optional",
        "variadic",
        "result",
        "nocase",
        "impl",
    )

    name: str
    required: tuple[Kind, ...]
    optional: tuple[Kind, ...]
    variadic: Kind | None
    result: Kind
    nocase: bool
    impl: _Impl

    def __init__(  # noqa: PLR0917 - a dataclass's positional fields
        self,
        name: str,
        required: tuple[Kind, ...],
        optional: tuple[Kind, ...],
        variadic: Kind | None,
        result: Kind,
        nocase: bool,
        impl: _Impl,
    ) -> None:
        set_field(self, "name", name)
        set_field(self, "required", required)
        set_field(self, "optional", optional)
        set_field(self, "variadic", variadic)
        set_field(self, "result", result)
        set_field(self, "nocase", nocase)
        set_field(self, "impl", impl)

    def check(self, args: Sequence[Value]) -> tuple[int, str] | None:
        """The first problem with ``args`` as ``(argument index, message)``, or ``None``."""
        most = len(self.required) + len(self.optional)
        if len(args) < len(self.required) or (self.variadic is None and len(args) > most):
            wanted = str(len(self.required))
            if self.variadic is not None:
                wanted = f"at least {wanted}"
            elif self.optional:
                wanted = f"{wanted} to {most}"
            return len(args), f"{self.name}() takes {wanted} arguments, not {len(args)}"
        for i, arg in enumerate(args):
            kinds = (*self.required, *self.optional)
            expected = kinds[i] if i < len(kinds) else self.variadic
            actual = returns(arg)
            if isinstance(arg, Literal) and arg.value is None:
                continue
            if expected not in (None, "any") and actual not in ("any", expected):
                return i, f"{self.name}(): argument {i + 1} must be a {expected}, not a {actual}"
        if self.name == "cidrMatch":
            for i, arg in enumerate(args[1:], 1):
                if not isinstance(arg, Literal) or not isinstance(arg.value, str):
                    return i, "cidrMatch(): the networks must be string constants"
                if network(arg.value) is None:
                    return i, f"cidrMatch(): {arg.value!r} is not an IP address or CIDR block"
        return None


def kind_of(value: Scalar) -> Kind:
    """The kind of a constant: ``string``, ``number``, ``boolean`` (``any`` for null)."""
    if value is None:
        return "any"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    return "number"


def returns(value: Value) -> Kind:
    """The kind ``value`` evaluates to, as far as the query alone tells."""
    if isinstance(value, Literal):
        return kind_of(value.value)
    if isinstance(value, Call):
        signature = lookup(value.name)
        return "any" if signature is None else signature.result
    if isinstance(value, Length | Arith | Negate):
        return "number"
    assert isinstance(value, Field)
    return "any"


def apply(signature: Signature, nocase: bool, args: Sequence[Any]) -> Any:
    """Run a function on argument values (``None`` for null); ``None`` means null."""
    kinds = (*signature.required, *signature.optional)
    for i, value in enumerate(args):
        expected = kinds[i] if i < len(kinds) else signature.variadic
        if value is None:
            if i < len(signature.required) or signature.variadic is not None:
                return None
            continue
        if expected == "string" and type(value) is not str:
            return None
        if expected == "number" and not _is_number(value):
            return None
        if expected == "boolean" and type(value) is not bool:
            return None
    return signature.impl(nocase, *args)


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


def _fold(nocase: bool, *texts: str) -> tuple[str, ...]:
    return tuple(t.lower() for t in texts) if nocase else texts


# -- implementations -------------------------------------------------------------------


def _add(_: bool, a: float, b: float) -> float:
    return a + b


def _subtract(_: bool, a: float, b: float) -> float:
    return a - b


def _multiply(_: bool, a: float, b: float) -> float:
    return a * b


def _divide(_: bool, a: float, b: float) -> float | None:
    if b == 0:
        return None
    if type(a) is int and type(b) is int:
        quotient = abs(a) // abs(b)
        return quotient if (a < 0) == (b < 0) else -quotient
    return a / b


def _modulo(_: bool, a: float, b: float) -> float | None:
    if b == 0:
        return None
    if type(a) is int and type(b) is int:
        rest = abs(a) % abs(b)
        return rest if a >= 0 else -rest
    return math.fmod(a, b)


def _between(nocase: bool, source: str, left: str, right: str, greedy: bool | None = None) -> str:
    text, lhs, rhs = _fold(nocase, source, left, right)
    start = text.find(lhs)
    if start < 0:
        return ""
    start += len(lhs)
    end = text.rfind(rhs, start) if greedy else text.find(rhs, start)
    return "" if end < 0 else source[start:end]


def _cidr_match(_: bool, ip: str, *blocks: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for block in blocks:
        net = network(block)
        if net is not None and net.version == address.version and address in net:
            return True
    return False


@lru_cache(maxsize=1024)
def network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """``text`` (``10.0.0.0/8``, ``::1``) as a network, or ``None`` if it is not one."""
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _concat(_: bool, *values: Any) -> str:
    return "".join(_to_string(v) for v in values)


def _ends_with(nocase: bool, source: str, suffix: str) -> bool:
    text, end = _fold(nocase, source, suffix)
    return text.endswith(end)


def _starts_with(nocase: bool, source: str, prefix: str) -> bool:
    text, start = _fold(nocase, source, prefix)
    return text.startswith(start)


def _string_contains(nocase: bool, source: str, part: str) -> bool:
    text, sub = _fold(nocase, source, part)
    return sub in text


def _index_of(nocase: bool, source: str, part: str, start: float | None = None) -> int | None:
    text, sub = _fold(nocase, source, part)
    begin = max(0, int(start)) if start is not None else 0
    if begin > len(text):
        return None
    found = text.find(sub, begin)
    return None if found < 0 else found


def _length(_: bool, source: str) -> int:
    return len(source)


def _number(_: bool, text: str, base: float | None = None) -> int | float | None:
    radix = 10 if base is None else int(base)
    if not 2 <= radix <= 36:
        return None
    body = text
    if radix == 16 and body.lower().startswith(("0x", "-0x")):
        body = body.replace("0x", "", 1).replace("0X", "", 1)
    try:
        return int(body, radix)
    except ValueError:
        pass
    if radix != 10:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _to_string(value: Any) -> str:
    if type(value) is bool:
        return "true" if value else "false"
    return str(value)


def _string(_: bool, value: Any) -> str:
    return _to_string(value)


def _substring(_: bool, source: str, start: float, end: float | None = None) -> str:
    return source[int(start) : None if end is None else int(end)]


_S, _N, _B, _A = "string", "number", "boolean", "any"
_SIGNATURES = (
    Signature("add", (_N, _N), (), None, _N, False, _add),
    Signature("between", (_S, _S, _S), (_B,), None, _S, True, _between),
    Signature("cidrMatch", (_S, _S), (), _S, _B, False, _cidr_match),
    Signature("concat", (_A,), (), _A, _S, False, _concat),
    Signature("divide", (_N, _N), (), None, _N, False, _divide),
    Signature("endsWith", (_S, _S), (), None, _B, True, _ends_with),
    Signature("indexOf", (_S, _S), (_N,), None, _N, True, _index_of),
    Signature("length", (_S,), (), None, _N, False, _length),
    Signature("modulo", (_N, _N), (), None, _N, False, _modulo),
    Signature("multiply", (_N, _N), (), None, _N, False, _multiply),
    Signature("number", (_S,), (_N,), None, _N, False, _number),
    Signature("startsWith", (_S, _S), (), None, _B, True, _starts_with),
    Signature("string", (_A,), (), None, _S, False, _string),
    Signature("stringContains", (_S, _S), (), None, _B, True, _string_contains),
    Signature("substring", (_S, _N), (_N,), None, _S, False, _substring),
    Signature("subtract", (_N, _N), (), None, _N, False, _subtract),
)
_BY_NAME = {s.name.lower(): s for s in _SIGNATURES}
#: Every supported function, as Elasticsearch spells it.
FUNCTION_NAMES = tuple(s.name for s in _SIGNATURES)


def lookup(name: str) -> Signature | None:
    """The function called ``name`` (any letter case, without ``~``), or ``None``."""
    return _BY_NAME.get(name.lower())
