"""A label-selector string, as a ``/scale`` subresource's ``status.selector`` gives it, read back
into a LabelSelector (``matchLabels`` and ``matchExpressions``) (pure).

The grammar is Kubernetes' (``k8s.io/apimachinery/pkg/labels``): requirements separated by commas,
each ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k`` (exists) or ``!k`` (does
not exist). The numeric ``k>n`` and ``k<n`` that grammar also has are refused: a LabelSelector
object cannot express them, and drains must never act on a guess about which pods a selector means.
"""

from __future__ import annotations

import re
from typing import Any

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_EQUALS = re.compile(rf"^(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>{_VALUE})$")
_SET = re.compile(rf"^(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_EXISTS = re.compile(rf"^(?P<neg>!?)\s*(?P<key>{_KEY})$")


def _requirements(text: str) -> list[str]:
    """The comma-separated requirements, keeping the commas inside ``(...)`` value sets."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return parts


def parse(text: str) -> dict[str, Any]:
    """The LabelSelector ``text`` means; ValueError naming the part that cannot be read. An empty
    selector is refused: it would select every pod of the namespace."""
    if not text.strip():
        raise ValueError("the selector is empty (it would match every pod in the namespace)")
    match_labels: dict[str, str] = {}
    expressions: list[dict[str, Any]] = []
    for part in _requirements(text):
        if m := _EQUALS.match(part):
            if m["op"] == "!=":
                expressions.append({"key": m["key"], "operator": "NotIn", "values": [m["value"]]})
            elif match_labels.get(m["key"], m["value"]) != m["value"]:
                raise ValueError(f"selector {text!r} asks for two values of {m['key']!r}: it matches nothing")
            else:
                match_labels[m["key"]] = m["value"]
        elif m := _SET.match(part):
            values = [v.strip() for v in m["values"].split(",") if v.strip()]
            if not values or not all(re.fullmatch(_VALUE, v) for v in values):
                raise ValueError(f"cannot read the value set of {part!r} in selector {text!r}")
            expressions.append({"key": m["key"], "operator": "In" if m["op"] == "in" else "NotIn", "values": values})
        elif m := _EXISTS.match(part):
            expressions.append({"key": m["key"], "operator": "DoesNotExist" if m["neg"] else "Exists"})
        else:
            raise ValueError(
                f"cannot read {part!r} in selector {text!r}: only k=v, k!=v, k in (...), k notin (...), k and !k "
                "are understood"
            )
    selector: dict[str, Any] = {}
    if match_labels:
        selector["matchLabels"] = match_labels
    if expressions:
        selector["matchExpressions"] = expressions
    return selector
