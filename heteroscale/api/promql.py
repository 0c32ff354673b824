"""The one lexer for user-written PromQL: spec validation checks with it, the metrics layer fills
placeholders with it, so the two can never disagree about what is a string, a comment or a
placeholder.

It is not a PromQL parser: :func:`promql_syntax_error` catches what breaks a query before
Prometheus sees it (unbalanced brackets, an unterminated string, a blank query, unknown or
misplaced placeholders), so a malformed query is rejected with the spec instead of failing on
every tick. Prometheus remains the judge of the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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


def promql_syntax_error(query: str) -> str | None:
    """Return a description of the first lexical error in ``query``, or None if it looks sound."""
    if not query:
        return None
    if not query.strip():
        return "the query is blank"
    for name in _PLACEHOLDER.findall(query):
        if name not in PLACEHOLDERS:
            return f"unknown placeholder {{{name}}}; allowed: {', '.join(sorted(PLACEHOLDERS))}"
    tokens, open_quote = lex(query)
    stack: list[tuple[str, int]] = []
    pos = 0
    for token in tokens:
        if token.placeholder is not None:
            problem = placeholder_problem(token.placeholder, token.quote)
            if problem:
                return problem
        elif token.quote is None and not token.comment:
            char = token.text
            if char in "([{":
                stack.append((char, pos))
            elif char in _PAIRS:
                if not stack or stack[-1][0] != _PAIRS[char]:
                    return f"unexpected {char!r} at position {pos}"
                stack.pop()
        pos += len(token.text)
    if open_quote:
        return f"unterminated string starting with {open_quote}"
    if stack:
        char, pos = stack[-1]
        return f"unclosed {char!r} at position {pos}"
    return None
