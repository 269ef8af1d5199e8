import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT / "arena" / "fixtures" / "datasets"
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"


def dataset(*parts: str) -> Path:
    """A real dataset file: the project's copy (arena/fixtures/datasets)."""
    path = DATASETS.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"missing dataset {path}")
    return path


@pytest.fixture
def datasets_dir() -> Path:
    return DATASETS


def pytest_collection_modifyitems(config, items):
    # Browser tests last: they are the slowest and need the app fully working.
    items.sort(key=lambda item: "tests/e2e/" in str(item.fspath))


os.environ.setdefault("ARENA_BOOTSTRAP_ROUNDS", "200")
