"""The admin's configuration: a shard's selectors, and the errors a bad one gets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from heteroscale.api.config import Shard, load_config

SHARD_LABEL = "heteroscale.io/shard"


def shard(name: str, *, default: bool = False) -> Shard:
    return Shard(name=name, group_labels={SHARD_LABEL: name}, node_labels={"pool": name}, unlabelled_groups=default)


def test_a_shard_selects_groups_by_all_its_labels_and_the_default_shard_the_unlabelled() -> None:
    east = shard("east", default=True)
    assert east.serves({SHARD_LABEL: "east", "team": "x"})
    assert not east.serves({SHARD_LABEL: "west"})
    assert east.serves({"team": "x"}), "no shard label: the default shard's"
    assert not shard("west").serves({"team": "x"}), "only the default shard takes unlabelled groups"
    two = Shard(name="a", group_labels={SHARD_LABEL: "a", "tier": "gold"}, node_labels={"pool": "a"})
    assert not two.serves({SHARD_LABEL: "a"}), "every label must match"
    assert east.places_on({"pool": "east", "other": "1"})
    assert not east.places_on({"pool": "west"})
    assert not east.places_on({})


@pytest.mark.parametrize(
    ("shard_yaml", "named"),
    [
        ("{name: a, groupLabels: {}, nodeLabels: {pool: a}}", "config.shard.groupLabels"),
        ("{name: a, groupLabels: {s: a}}", "config.shard.nodeLabels"),
        ("{name: a, groupLabels: {s: 'not a value!'}, nodeLabels: {pool: a}}", "config.shard.groupLabels.s"),
        ("{name: a, groupLabels: {'bad key/x/y': a}, nodeLabels: {pool: a}}", "config.shard.groupLabels"),
        ("{name: A_B, groupLabels: {s: a}, nodeLabels: {pool: a}}", "config.shard.name"),
    ],
)
def test_a_bad_shard_is_refused_naming_the_field(tmp_path: Path, shard_yaml: str, named: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f"shard: {shard_yaml}\n")
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        load_config(path)


def test_a_shard_reads_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("shard: {name: east, groupLabels: {heteroscale.io/shard: east}, nodeLabels: {pool: east}}\n")
    config = load_config(path)
    assert config.shard == Shard(name="east", group_labels={SHARD_LABEL: "east"}, node_labels={"pool": "east"})


LWS = "{apiVersion: leaderworkerset.x-k8s.io/v1, kind: LeaderWorkerSet, plural: leaderworkersets}"


@pytest.mark.parametrize(
    ("targets_yaml", "named", "words"),
    [
        (f"[{LWS}, {LWS}]", "config.scaleTargets", "more than once"),
        (
            "[{apiVersion: v1, kind: LeaderWorkerSet, plural: leaderworkersets}]",
            "config.scaleTargets[0].apiVersion",
            "",
        ),
        ("[{apiVersion: leaderworkerset.x-k8s.io/v1, kind: LeaderWorkerSet}]", "config.scaleTargets[0].plural", ""),
    ],
)
def test_a_bad_scale_target_kind_is_refused_naming_the_field(
    tmp_path: Path, targets_yaml: str, named: str, words: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f"scaleTargets: {targets_yaml}\n")
    with pytest.raises(ValueError, match=re.escape(named)) as caught:
        load_config(path)
    assert words in str(caught.value)


def test_an_unlisted_kind_names_the_field_and_the_admins_fix(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f"scaleTargets: [{LWS}]\n")
    config = load_config(path)
    assert config.scale_target_kind("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet", "f").plural == "leaderworkersets"
    with pytest.raises(
        ValueError, match=r"^spec\.roles\.decode\.scaleTargetRef: .*StatefulSet.*scaleTargets"
    ) as caught:
        config.scale_target_kind("apps/v1", "StatefulSet", "spec.roles.decode.scaleTargetRef")
    assert "LeaderWorkerSet (leaderworkerset.x-k8s.io/v1)" in str(caught.value), "what is listed"
