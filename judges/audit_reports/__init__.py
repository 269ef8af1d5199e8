"""The judge audit's reports: stored judgments -> numpy columns -> pure metrics -> page data.

This is the Django side of the audit (the metrics themselves are the pure functions of
:mod:`judges.audit_metrics`). :mod:`~judges.audit_reports.queries` loads judgments as
numpy columns; each page module turns them into one report:

- :mod:`~judges.audit_reports.judge` -- the overview table and one judge's page (the
  metrics of one judge are :mod:`~judges.audit_reports.judge_metrics`);
- :mod:`~judges.audit_reports.agreement` -- inter-rater agreement;
- :mod:`~judges.audit_reports.integrity` -- the vote-integrity panel;
- :mod:`~judges.audit_reports.perturbations` -- perturbation runs against the baseline.

Each ``*_report`` function returns plain, JSON-ready data for one dashboard page: tables
and charts, every chart a list of flat rows that is also its CSV download. Reports are
cached briefly, keyed by a fingerprint of the prompt set's judgments (a new judgment or
a newly flagged voter is seen at once). The conventions every page shares are in
:mod:`~judges.audit_reports.common`; the pages are :mod:`judges.audit_views`.
"""

from judges.audit_reports.agreement import agreement_report
from judges.audit_reports.integrity import integrity_report
from judges.audit_reports.judge import judge_report, overview_report
from judges.audit_reports.judge_metrics import JudgeMetrics, judge_metrics
from judges.audit_reports.perturbations import perturbation_report, side_verdicts

__all__ = [
    "JudgeMetrics",
    "agreement_report",
    "integrity_report",
    "judge_metrics",
    "judge_report",
    "overview_report",
    "perturbation_report",
    "side_verdicts",
]
