"""The import graph of the three packages: no cycle between modules, no import that points up the
layers (fronts -> engine -> stages -> models/io), and the core never imports training. The
checker is ``scripts/import_graph.py``, which also prints the listing."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "import_graph.py"


@pytest.fixture
def graph() -> dict[str, Any]:
    return runpy.run_path(str(SCRIPT))


def test_the_tree_has_no_cycle_and_no_upward_import(graph: dict[str, Any]) -> None:
    listing, problems = graph["check"]()
    assert problems == []
    units = {line.split()[0] for line in listing}
    assert {"io", "analysis", "plan", "models", "engine", "cli", "vsmmrealsr", "mmrealsr_training"} <= units
    core = [line for line in listing if line.split()[0] not in ("mmrealsr_training",)]
    assert not any("mmrealsr_training" in line.split("imports", 1)[1] for line in core)


def test_a_cycle_is_found(graph: dict[str, Any]) -> None:
    assert graph["cycles"]({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert graph["cycles"]({"a": {"b"}, "b": set()}) == []


def test_an_upward_import_is_reported(graph: dict[str, Any]) -> None:
    ranks = graph["RANKS"]
    ranks["io"] = 9  # io above everything: every import of io now points up
    _, problems = graph["check"]()
    assert problems and all("upward import" in p for p in problems)
    assert any("imports mmrealsr_video.io." in p for p in problems)
