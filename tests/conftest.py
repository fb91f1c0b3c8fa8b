"""Shared fixtures: reference data copied from the original release, small models, markers."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

# PySceneDetect looks for an ffmpeg executable (in a subprocess) when first imported: done here,
# before the guard below, which is about the processes the tests start.
import scenedetect  # noqa: F401
import torch

from mmrealsr_video.cli import main

DATA = Path(__file__).parent / "data"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _subprocesses_only_in_slow_tests(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that starts a process is marked ``slow``: refused otherwise, so the rule holds by itself."""
    if request.node.get_closest_marker("slow") is not None:
        return

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"{request.node.nodeid} starts a process: mark it @pytest.mark.slow")

    monkeypatch.setattr(subprocess, "Popen", refuse)


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


@dataclass(frozen=True)
class CliResult:
    """What a command printed and returned, as ``subprocess.run`` reports it."""

    returncode: int
    stdout: str
    stderr: str


#: The type of the ``cli`` fixture.
Cli = Callable[..., CliResult]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Runs ``mmrealsr-video ARGS`` in this process (``cli.main``), capturing what it prints."""

    def run(*args: object) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    return run
