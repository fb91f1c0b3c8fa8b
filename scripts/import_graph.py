#!/usr/bin/env python3
"""Prints who imports whom among the project's packages, and fails (exit 1) on an import cycle
between modules or an import that points up the layers.

    python scripts/import_graph.py

Layers, bottom to top (an import may only point to a lower layer, or stay inside its own unit):

    errors, _version -> io, models -> plan -> analysis -> settings -> preflight -> passes -> jobs
    -> engine -> mmrealsr_video (the API) -> cli, vsmmrealsr (VapourSynth), mmrealsr_training

Imports are read from the source (every ``import`` and ``from ... import``, at module level or
inside functions), so nothing is executed.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Import name of each top-level folder.
PACKAGES = {"mmrealsr_video": "mmrealsr_video", "vs_plugin": "vsmmrealsr", "training": "mmrealsr_training"}
#: Rank of each unit: imports must point to a strictly lower rank (or stay in the unit).
RANKS = {
    "errors": 0,
    "_version": 0,
    "io": 1,
    "models": 1,
    "plan": 2,
    "analysis": 3,
    "settings": 4,
    "preflight": 5,
    "passes": 6,
    "jobs": 7,
    "engine": 8,
    "mmrealsr_video": 9,
    "cli": 10,
    "vsmmrealsr": 10,
    "mmrealsr_training": 10,
    "__main__": 11,
}


def modules() -> Iterator[tuple[str, Path]]:
    """(dotted module name, file) of every module of the three packages."""
    for folder, name in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join([name, *parts]), path


def unit(module: str) -> str:
    """The layer unit of a module: a stage package or module of the core, or a whole front."""
    parts = module.split(".")
    if parts[0] != "mmrealsr_video":
        return parts[0]
    return parts[1] if len(parts) > 1 else "mmrealsr_video"


def imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The project modules that ``module`` imports (``from a import b`` counts ``a.b`` when that is a
    module, else ``a``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for name in names:
            # The longest known module that the name is, or lies in.
            parts = name.split(".")
            for k in range(len(parts), 0, -1):
                candidate = ".".join(parts[:k])
                if candidate in known:
                    if candidate != module:
                        found.add(candidate)
                    break
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def check() -> tuple[list[str], list[str]]:
    """(listing lines, problems)."""
    files = dict(modules())
    known = set(files)
    graph = {m: imports(m, p, known) for m, p in files.items()}
    problems = [f"import cycle: {' -> '.join(c)}" for c in cycles(graph)]
    uses: dict[str, set[str]] = defaultdict(set)
    for m, targets in graph.items():
        a = unit(m)
        if a not in RANKS:
            problems.append(f"{m}: unit {a!r} has no layer (add it to RANKS)")
            continue
        for t in targets:
            b = unit(t)
            if a == b:
                continue
            uses[a].add(b)
            if RANKS.get(b, 99) >= RANKS[a]:
                problems.append(f"upward import: {m} ({a}, layer {RANKS[a]}) imports {t} ({b}, layer {RANKS.get(b)})")
    listing = [
        f"{u:18} layer {RANKS[u]}  imports {', '.join(sorted(uses[u], key=lambda x: (RANKS[x], x))) or '-'}"
        for u in sorted(RANKS, key=lambda x: (RANKS[x], x))
    ]
    return listing, problems


def main() -> int:
    listing, problems = check()
    print("\n".join(listing))
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    print(f"{'no cycle, no upward import' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
