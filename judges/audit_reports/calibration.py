"""The judge-calibration panel of a run: its judge against the humans who labelled its
matches (issue 20), per model and per model pair, and where they disagree.

Reads the run's labels through :func:`arena.anchoring.run_labels` (the labels the
human-anchored board counts: with an anchor selection, those on its chosen matches,
weighted by 1 / their probability) and hands them to the pure
:func:`judges.audit_metrics.calibration.judge_calibration`.
"""

from __future__ import annotations

import numpy as np

from arena.anchoring import run_labels
from judges.audit_metrics.calibration import judge_calibration


def calibration_report(run_id: int) -> dict | None:
    """The panel's data, or None when nobody labelled the run's matches."""
    labels = run_labels(run_id)
    if labels is None:
        return None
    matches, notes = labels.anchored_matches()
    labelled = matches.labelled
    if not labelled.any():
        return None
    framed = np.isfinite(labels.probability) if labels.has_selection else slice(None)
    report = judge_calibration(
        matches.models,
        matches.first[labelled],
        matches.second[labelled],
        matches.judge[labelled],
        matches.human[labelled],
        1.0 / matches.inclusion[labelled],
        labels.match_ids[framed][labelled],
    )
    report["notes"] = notes
    return report
