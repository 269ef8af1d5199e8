"""A static-files finder for the one file the site takes from an installed wheel.

The judge audit pages draw ``scattergl`` traces, which no partial plotly.js bundle with
heatmaps holds, so they load the whole ``plotly.min.js``. Rather than a second vendored
copy, the installed ``plotly`` wheel's own file is published as
``vendor/plotly/plotly.min.js``: ``collectstatic`` hashes and compresses it like every
other static file. Only that file is listed; the wheel's other package data is not.
"""

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage

PREFIX = "vendor/plotly"
NAME = "plotly.min.js"
PACKAGE_DATA = Path(plotly.__file__).resolve().parent / "package_data"


class PlotlyWheelFinder(BaseFinder):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(location=PACKAGE_DATA)
        self.storage.prefix = PREFIX  # collectstatic and WhiteNoise put the file under it

    def check(self, **kwargs):
        if not (PACKAGE_DATA / NAME).is_file():
            return [Error(f"{PACKAGE_DATA / NAME} is missing: is the plotly wheel installed?")]
        return []

    def find(self, path, find_all=False, **kwargs):
        if path != f"{PREFIX}/{NAME}":
            return [] if find_all else None
        found = str(PACKAGE_DATA / NAME)
        return [found] if find_all else found

    def list(self, ignore_patterns):
        yield NAME, self.storage
