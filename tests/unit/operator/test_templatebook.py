"""The template book: a group's spec and pod templates reused while the spec stays the same."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest
from pydantic import ValidationError

from heteroscale.api.enums import Role
from heteroscale.operator.naming import GroupPlan
from heteroscale.operator.templatebook import TemplateBook, render
from heteroscale.placement.result import PlannedGroup

KEY = ("ns", "chat")


def raw_spec(image: str = "engine:1") -> dict[str, Any]:
    template = {"spec": {"containers": [{"name": "e", "image": image}]}}
    return {
        "decode": {"targetTPSPerInstance": {"H20": 100}},
        "roles": {
            "prefill": {"template": copy.deepcopy(template), "gpuTypes": ["L20"]},
            "decode": {"template": copy.deepcopy(template), "gpuTypes": ["H20"]},
        },
    }


def group(domain: str = "s2-a", replicas: int = 2, nodes: int = 4) -> GroupPlan:
    planned = PlannedGroup("chat-decode-g0", "g0", Role.DECODE, "H20", domain, replicas, 8, nodes)
    return GroupPlan(planned.name, Role.DECODE, "H20", domain, replicas, True, planned, "g0")


def test_an_unchanged_spec_is_parsed_once_and_a_scale_step_renders_nothing() -> None:
    book = TemplateBook()
    spec = book.spec(KEY, raw_spec())
    first = book.template(KEY, spec, group())
    assert first == render("chat", spec, group()), "the same template as rendering it"
    again = book.spec(KEY, raw_spec())  # the next tick: an equal spec, in a new object
    assert again is spec
    assert book.template(KEY, again, group(replicas=5, nodes=3)) is first, "replicas are not in the template"


def test_an_edited_spec_or_another_domain_is_rendered_anew() -> None:
    book = TemplateBook()
    spec = book.spec(KEY, raw_spec())
    before = book.template(KEY, spec, group())
    moved = book.template(KEY, spec, group(domain="s2-b"))
    assert before is not None
    assert moved is not None
    assert moved.digest != before.digest
    edited = book.spec(KEY, raw_spec(image="engine:2"))
    assert edited is not spec
    after = book.template(KEY, edited, group())
    assert after is not None
    assert after.digest != before.digest
    assert after.body["spec"]["containers"][0]["image"] == "engine:2"


def test_a_spec_changed_in_place_is_seen() -> None:
    book = TemplateBook()
    raw = raw_spec()
    spec = book.spec(KEY, raw)
    raw["roles"]["decode"]["template"]["spec"]["containers"][0]["image"] = "engine:2"
    assert book.spec(KEY, raw) is not spec, "the book compares with a copy of what it parsed"


def test_templates_not_asked_for_are_dropped_a_tick_later() -> None:
    book = TemplateBook()
    spec = book.spec(KEY, raw_spec())
    kept, other = book.template(KEY, spec, group()), book.template(KEY, spec, group(domain="s2-b"))
    book.spec(KEY, raw_spec())
    assert book.template(KEY, spec, group()) is kept, "asked for in the tick before"
    book.spec(KEY, raw_spec())
    assert book.template(KEY, spec, group()) is kept
    assert book.template(KEY, spec, group(domain="s2-b")) is not other, "not asked for a tick: rendered again"


def test_an_invalid_spec_raises_and_forgets_the_group() -> None:
    book = TemplateBook()
    spec = book.spec(KEY, raw_spec())
    with pytest.raises(ValidationError):
        book.spec(KEY, {**raw_spec(), "mode": "Sometimes"})
    assert book.spec(KEY, raw_spec()) is not spec, "parsed again after the invalid one"


def test_a_spec_the_book_did_not_hand_out_is_rendered_and_not_kept() -> None:
    book = TemplateBook()
    book.spec(KEY, raw_spec())
    outsider = book.spec(("ns", "other"), raw_spec(image="engine:3"))
    found = book.template(KEY, outsider, group())
    assert found is not None
    assert found.body["spec"]["containers"][0]["image"] == "engine:3"
    assert book.template(KEY, outsider, group()) is not found
    book.forget(KEY)
    assert book.template(KEY, outsider, replace(group(), replicas=9)) is not None
