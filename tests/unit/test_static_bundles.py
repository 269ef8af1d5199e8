"""The vendored JavaScript: provenance as written in its README, one plotly.js version for
the partial bundle and the wheel's whole bundle, and the finder that publishes the latter."""

import hashlib
import re
from pathlib import Path

from django.contrib.staticfiles import finders

from config.staticfiles import PACKAGE_DATA, PlotlyWheelFinder

ROOT = Path(__file__).resolve().parents[2]
PLOTLY = ROOT / "static" / "vendor" / "plotly"
AXE = ROOT / "tests" / "e2e" / "vendor" / "axe-core"


def _version(path: Path) -> str:
    head = path.read_text(errors="replace")[:300]
    return re.search(r"plotly\.js (?:\([^)]*\) )?v(\d+\.\d+\.\d+)", head).group(1)


def _sha256_in_readme(folder: Path) -> str:
    return re.search(r"sha256 of the file: `([0-9a-f]{64})`", (folder / "README.md").read_text())[1]


def test_the_vendored_files_are_the_ones_their_readme_names():
    for folder, name in ((PLOTLY, "plotly-cartesian.min.js"), (AXE, "axe.min.js")):
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        assert digest == _sha256_in_readme(folder), folder / name
        assert (folder / "LICENSE").stat().st_size > 0


def test_the_partial_bundle_is_the_plotly_js_of_the_installed_wheel():
    partial = _version(PLOTLY / "plotly-cartesian.min.js")
    assert partial == _version(PACKAGE_DATA / "plotly.min.js")
    assert f"plotly.js-cartesian-dist-min@{partial}" in (PLOTLY / "README.md").read_text()


def test_the_wheel_finder_publishes_only_plotly_min_js():
    finder = PlotlyWheelFinder()
    assert [path for path, _ in finder.list([])] == ["plotly.min.js"]
    found = finders.find("vendor/plotly/plotly.min.js")
    assert found == str(PACKAGE_DATA / "plotly.min.js")
    assert finder.find("vendor/plotly/widgetbundle.js") is None
    assert finder.find("vendor/plotly/plotly.min.js", find_all=True) == [found]
    assert finder.check() == []
