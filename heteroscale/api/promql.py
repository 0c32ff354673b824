"""User-written PromQL: one lexer for placeholders, literal escaping, and a real parser for the rest.

Spec validation and the metrics layer share everything here, so the two can never disagree about
what is a string, a comment, a placeholder or a selector:

* :func:`lex` finds ``{placeholders}`` and the string they stand in; :func:`fill_placeholders`
  fills them with values escaped for that string (:func:`string_content`), so no value can end a
  string, add a matcher or change the query around it;
* :func:`promql_syntax_error` parses the query (placeholders filled with sample values) with
  ``promql-parser``, the Rust port of Prometheus' own grammar, so a query Prometheus would refuse
  (``rate(x[5q])``) is refused with the spec instead of failing on every tick;
* :func:`namespace_problem` walks the parsed query and insists that every series selector is
  confined to one namespace: a tenant's query reads the tenant's series only.

The parser's printer does not escape label values, so queries are never printed from its tree;
:func:`render_selector` writes a selector back with our own escaping.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import promql_parser

#: Placeholders a custom query may use; the metrics layer fills them in (escaped).
PLACEHOLDERS = frozenset({"namespace", "pods", "window"})
#: Placeholders whose values are label values: they must stand inside a "..." or '...' string.
STRING_PLACEHOLDERS = frozenset({"namespace", "pods"})
_PAIRS = {")": "(", "]": "[", "}": "{"}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Token:
    """A run of query text as PromQL's lexer reads it."""

    text: str
    quote: str | None = None
    """The quote character of the string literal this text is inside; None outside strings."""
    comment: bool = False
    placeholder: str | None = None
    """The name, when the text is a ``{placeholder}``."""


def lex(query: str) -> tuple[list[Token], str | None]:
    """The query's tokens, and the quote of a string still open at the end (None if closed).

    Placeholders are recognised inside and outside strings, not in comments; an escape sequence
    inside a string is one token, so an escaped quote never ends the string.
    """
    tokens: list[Token] = []
    quote: str | None = None
    pos = 0
    while pos < len(query):
        char = query[pos]
        if char == "{":
            end = query.find("}", pos)
            name = query[pos + 1 : end] if end > 0 else ""
            if name in PLACEHOLDERS:
                tokens.append(Token(query[pos : end + 1], quote, placeholder=name))
                pos = end + 1
                continue
        if quote is None and char == "#":
            newline = query.find("\n", pos)
            end_of_comment = len(query) if newline < 0 else newline
            tokens.append(Token(query[pos:end_of_comment], comment=True))
            pos = end_of_comment
            continue
        if quote is not None and char == "\\" and quote != "`":
            tokens.append(Token(query[pos : pos + 2], quote))
            pos += 2
            continue
        if quote is None and char in "\"'`":
            quote = char
            tokens.append(Token(char))
        elif char == quote:
            tokens.append(Token(char))
            quote = None
        else:
            tokens.append(Token(char, quote))
        pos += 1
    return tokens, quote


def placeholder_problem(name: str, quote: str | None) -> str | None:
    """Why ``{name}`` cannot stand where it does (inside a ``quote`` string or outside), or None."""
    if name in STRING_PLACEHOLDERS and quote not in ('"', "'"):
        return f'{{{name}}} must stand inside a "..." or \'...\' string, e.g. namespace="{{{name}}}"'
    if name not in STRING_PLACEHOLDERS and quote is not None:
        return f"{{{name}}} must stand outside string literals, e.g. rate(x[{{{name}}}])"
    return None


#: What the placeholders stand for while a query is only being checked.
_SAMPLE_VALUES = {"namespace": "namespace", "pods": "pod-[a-z0-9]+-[a-z0-9]+", "window": "60s"}


def promql_syntax_error(query: str) -> str | None:
    """A description of the first problem with ``query``, or None when Prometheus can run it."""
    if not query:
        return None
    if not query.strip():
        return "the query is blank"
    for name in _PLACEHOLDER.findall(query):
        if name not in PLACEHOLDERS:
            return f"unknown placeholder {{{name}}}; allowed: {', '.join(sorted(PLACEHOLDERS))}"
    try:
        found = selectors_of(fill_placeholders(query, _SAMPLE_VALUES))
    except ValueError as exc:
        return str(exc)
    for selector in found:
        if selector.alternatives > 1:
            return f"selector {selector.name or '{...}'} uses 'or' between matchers, which Prometheus 2 cannot run"
    return None


@dataclass(frozen=True)
class Selector:
    """One series selector of a parsed query."""

    name: str
    """Metric name; empty when the selector names none (``{__name__=~"..."}``)."""
    matchers: tuple[tuple[str, str, str], ...]
    """(label, operator, decoded value), operator one of ``=``, ``!=``, ``=~``, ``!~``."""
    alternatives: int = 1
    """Matcher sets joined by ``or`` (Prometheus 3 syntax); 1 for an ordinary selector."""


# The parser's MatchOp is not hashable, so no dict.
_OPS = (
    (promql_parser.MatchOp.Equal, "="),
    (promql_parser.MatchOp.NotEqual, "!="),
    (promql_parser.MatchOp.Re, "=~"),
    (promql_parser.MatchOp.NotRe, "!~"),
)


def _op(op: promql_parser.MatchOp) -> str:
    return next(text for known, text in _OPS if known == op)


def selectors_of(query: str) -> list[Selector]:
    """Every series selector in the query, in the order they appear; ValueError when the query
    does not parse (the parser's message says where)."""
    parsed = promql_parser.parse(query)
    found: list[Selector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            sets = node.matchers.or_matchers or [node.matchers.matchers]
            for matchers in sets:
                found.append(
                    Selector(
                        node.name or "",
                        tuple((m.name, _op(m.op), m.value) for m in matchers),
                        alternatives=len(sets),
                    )
                )

    promql_parser.walk(parsed, visit)
    return found


def namespace_problem(query: str, namespace: str, label: str = "namespace") -> str | None:
    """Why ``query`` (placeholders already filled) could read series outside ``namespace``, or None.

    Every selector (each alternative of an ``or`` selector) must carry ``label="namespace"``: an
    equality matcher on exactly this namespace. Matchers are ANDed, so such a selector matches the
    namespace's series or none, whatever else it says.
    """
    try:
        found = selectors_of(query)
    except ValueError as exc:
        return f"not valid PromQL: {exc}"
    for selector in found:
        if (label, "=", namespace) not in selector.matchers:
            shown = selector.name or render_selector(selector)
            return (
                f"selector {shown} is not confined to namespace {namespace!r}: add "
                f'{label}="{{namespace}}" to it (custom queries read their own namespace\'s series only, '
                "unless the cluster admin allows this namespace cluster-wide queries)"
            )
    return None


def render_selector(selector: Selector) -> str:
    """The selector as PromQL, every value escaped by :func:`string_literal`."""
    matchers = [("__name__", "=", selector.name)] if selector.name else []
    matchers += [m for m in selector.matchers if m[0] != "__name__" or not selector.name]
    return "{" + ",".join(f"{label}{op}{string_literal(value)}" for label, op, value in matchers) + "}"


# Go's regexp.QuoteMeta set: the only characters RE2 gives a meaning to outside a class.
_RE2_SPECIAL = frozenset("\\.+*?()|[]{}^$")
# Escapes Go's strconv (and Prometheus' strutil.Unquote) reads the same way in "..." and '...'.
_SHORT_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def string_content(value: str, quote: str = '"') -> str:
    """``value`` escaped to sit between two ``quote`` characters of a PromQL string literal.

    Printable ASCII stays readable; quotes and backslashes are escaped; control characters and
    everything beyond ASCII become ``\\x``/``\\u``/``\\U`` escapes, which Prometheus decodes back to
    the same code point. Lone surrogates have no UTF-8 form and raise ValueError.
    """
    out: list[str] = []
    for char in value:
        code = ord(char)
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif char == quote:
            out.append("\\" + char)
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"{value!r} holds a lone surrogate, which PromQL cannot represent")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def string_literal(value: str) -> str:
    """``value`` as a double-quoted PromQL string literal."""
    return f'"{string_content(value)}"'


def re2_literal(value: str) -> str:
    """A RE2 pattern matching exactly ``value`` (Go's ``regexp.QuoteMeta``)."""
    return "".join("\\" + char if char in _RE2_SPECIAL else char for char in value)


def fill_placeholders(query: str, values: Mapping[str, str]) -> str:
    """Fill ``{name}`` placeholders (see :func:`heteroscale.metrics.queries.custom_query` for where
    each may stand), reading the query with the same lexer that validated it (:func:`lex`)."""
    out: list[str] = []
    for token in lex(query)[0]:
        if token.placeholder is None:
            out.append(token.text)
            continue
        problem = placeholder_problem(token.placeholder, token.quote)
        if problem:
            raise ValueError(problem)
        value = values[token.placeholder]
        # A label value is escaped for the string it stands in; the window is a bare duration.
        out.append(value if token.quote is None else string_content(value, token.quote))
    return "".join(out)
