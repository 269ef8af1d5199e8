"""Judge audit use cases: stored verdicts -> arrays -> :mod:`judges.audit` metrics -> page data.

Each ``*_report`` function returns plain, JSON-ready data for one dashboard page: tables
and charts, every chart a list of flat rows that is also its CSV download. Reports are
cached briefly, keyed by a fingerprint of the prompt set's judgments (a new judgment or
a newly flagged voter is seen at once). The database side is :mod:`judges.audit_data`;
the conventions every page shares are in :mod:`judges.audit_service.common`.
"""

from judges.audit_service.agreement import agreement_report
from judges.audit_service.integrity import integrity_report
from judges.audit_service.judge import judge_metrics, judge_report, overview_report
from judges.audit_service.perturbations import perturbation_report, side_verdicts

__all__ = [
    "agreement_report",
    "integrity_report",
    "judge_metrics",
    "judge_report",
    "overview_report",
    "perturbation_report",
    "side_verdicts",
]
