"""A lexical check of user-written PromQL, run when a spec is validated.

It is not a PromQL parser: it catches what breaks a query before Prometheus sees it (unbalanced
brackets, an unterminated string, an empty query, unknown placeholders), so a malformed query is
rejected with the spec instead of failing on every tick. Prometheus remains the judge of the rest.
"""

from __future__ import annotations

import re

#: Placeholders a custom query may use; the metrics layer fills them in (escaped).
PLACEHOLDERS = frozenset({"namespace", "pods", "window"})
_PAIRS = {")": "(", "]": "[", "}": "{"}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def promql_syntax_error(query: str) -> str | None:
    """Return a description of the first lexical error in ``query``, or None if it looks sound."""
    if not query:
        return None
    if not query.strip():
        return "the query is blank"
    for name in _PLACEHOLDER.findall(query):
        if name not in PLACEHOLDERS:
            return f"unknown placeholder {{{name}}}; allowed: {', '.join(sorted(PLACEHOLDERS))}"
    stack: list[tuple[str, int]] = []
    quote: str | None = None
    pos = 0
    while pos < len(query):
        char = query[pos]
        if quote:
            if char == "\\" and quote != "`":
                pos += 1  # the escaped character cannot end the string
            elif char == quote:
                quote = None
        elif char in "\"'`":
            quote = char
        elif char == "#":
            # A comment runs to the end of the line; brackets in it do not count.
            newline = query.find("\n", pos)
            pos = len(query) if newline < 0 else newline
        elif char in "([{":
            stack.append((char, pos))
        elif char in _PAIRS:
            if not stack or stack[-1][0] != _PAIRS[char]:
                return f"unexpected {char!r} at position {pos}"
            stack.pop()
        pos += 1
    if quote:
        return f"unterminated string starting with {quote}"
    if stack:
        char, pos = stack[-1]
        return f"unclosed {char!r} at position {pos}"
    return None
