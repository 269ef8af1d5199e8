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


@pytest.fixture(scope="session", autouse=True)
def _static_files_from_the_source_tree():
    """In-process tests render pages without a collectstatic step: {% static %} names the
    source files (plain storage) instead of looking them up in the manifest that
    collectstatic writes. The browser tests' server collects them and uses the manifest."""
    # Imported here: pytest-django has set Django up by the time a fixture runs.
    from django.conf import settings
    from django.test import override_settings

    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=storages):
        yield


@pytest.fixture(autouse=True)
def _fresh_module_state():
    """Per-process memos must not leak from one test into the next: the endpoint limits
    (chosen again: a fresh store in the process) and the vote path's memo of open boards
    start empty in every test."""
    # Imported here: pytest-django has set Django up by the time a fixture runs.
    from arena.votes import forget_open_boards
    from llm.limits import use_store

    use_store(None)
    forget_open_boards()
    yield
    use_store(None)
    forget_open_boards()


def pytest_collection_modifyitems(config, items):
    # Browser tests last: they are the slowest and need the app fully working.
    items.sort(key=lambda item: "tests/e2e/" in str(item.fspath))


os.environ.setdefault("ARENA_BOOTSTRAP_ROUNDS", "200")
