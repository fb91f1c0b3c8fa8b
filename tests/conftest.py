"""Shared fixtures: reference data copied from the original release, small models, markers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

DATA = Path(__file__).parent / "data"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def parity() -> dict:
    """The numerical parity vector made with the original MM-RealSR code (see tests/data/README.md)."""
    return torch.load(DATA / "mmrrdbnet_parity_small.pt", weights_only=True)


@pytest.fixture(scope="session")
def released_layout() -> list[tuple[str, tuple[int, ...]]]:
    """Every tensor name and shape of the released x4 checkpoints."""
    rows = []
    for line in (DATA / "mmrrdbnet_x4_state_dict.tsv").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        key, shape = line.split("\t")
        dims = tuple(int(d) for d in shape.strip("()").split(",") if d.strip())
        rows.append((key, dims))
    return rows
