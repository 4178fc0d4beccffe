"""``tests.support.shards``: the shards of a run are whole files, together exactly the selection, and
every topology file is in shard 1 (one Airflow stack at a time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.paths import REPO
from tests.support.shards import assign, parse_shard, split


@dataclass
class FakeItem:
    path: Path
    name: str
    markers: set[str] = field(default_factory=set)

    def get_closest_marker(self, name: str) -> object | None:
        return name if name in self.markers else None


def _items() -> list[FakeItem]:
    items = []
    for n in range(7):
        items += [FakeItem(REPO / f"tests/e2e/test_f{n}.py", f"t{i}") for i in range(n + 1)]
    items += [FakeItem(REPO / "tests/e2e/test_topo.py", f"t{i}", {"topology"}) for i in range(3)]
    items += [FakeItem(REPO / "tests/e2e/test_topo2.py", "t0", {"topology"})]
    items += [FakeItem(REPO / f"tests/unit/test_u{n}.py", "t0") for n in range(20)]
    return items


@pytest.mark.parametrize("count", [1, 2, 3])
def test_the_shards_are_whole_files_and_together_the_whole_selection(count: int) -> None:
    items = _items()
    shards = [split(items, index, count) for index in range(1, count + 1)]
    kept = [item for shard, _ in shards for item in shard]
    assert sorted(map(id, kept)) == sorted(map(id, items))  # each test in exactly one shard
    for shard, dropped in shards:
        assert len(shard) + len(dropped) == len(items)
        assert [i for i in items if i in shard] == shard  # collection order kept
    files = {}
    for index, (shard, _) in enumerate(shards, start=1):
        for item in shard:
            assert files.setdefault(item.path, index) == index, f"{item.path} split across shards"
    assert files[REPO / "tests/e2e/test_topo.py"] == files[REPO / "tests/e2e/test_topo2.py"] == 1


def test_the_files_are_dealt_by_weight() -> None:
    files = [("tests/e2e/a.py", 10, False), ("tests/e2e/b.py", 9, False), ("tests/e2e/c.py", 1, False),
             ("tests/e2e/t.py", 8, True)]
    assert assign(files, 2) == {"tests/e2e/t.py": 1, "tests/e2e/a.py": 2, "tests/e2e/b.py": 1, "tests/e2e/c.py": 2}


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/2/3"])
def test_a_bad_shard_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="--shard"):
        parse_shard(text)
