"""Judge audit metrics: pure numpy/scipy, no Django.

Every function takes numpy arrays (one row per pair, vote or item) and returns a small
dataclass, usually an :class:`Estimate` (value, 95% interval, n, method). Verdicts are
integer codes (:mod:`judges.audit_metrics.verdicts`). Intervals are Wilson or exact for plain
proportions and a seeded bootstrap over items otherwise (``rng`` accepts a Generator or
a seed; the default seed 0 keeps dashboards reproducible). :func:`by_group` runs any
metric per judge version / category.
"""

from .agreement import (
    accuracy,
    category_table,
    cohen_kappa,
    fleiss_kappa,
    fleiss_kappa_table,
    human_majority,
    pairwise_kappas,
    raw_agreement,
)
from .estimate import Estimate, proportion, wilson_interval
from .groups import as_rows, by_group, flatten
from .integrity import (
    FlaggedVoteImpact,
    TopKChange,
    UpsetScores,
    VoterConcentration,
    VoteTiming,
    bt_strengths,
    flagged_vote_impact,
    top_k_change,
    upset_scores,
    vote_timing,
    voter_concentration,
    votes_to_flip,
)
from .krippendorff import krippendorff_alpha
from .length import LengthBias, LengthCoefficient, length_coefficient, longer_wins
from .position import (
    FirstSlotTest,
    PositionPreference,
    first_slot_win_rate,
    position_consistency,
    position_preference,
)
from .preference import SelfPreference, self_preference
from .score_pairwise import ScorePairwise, score_pairwise_inconsistency
from .stability import flip_rate, repeat_stability
from .transitivity import Transitivity, transitivity_violations
from .verdicts import (
    BOTH_BAD,
    FIRST,
    INVALID,
    MISSING,
    SECOND,
    TIE,
    A,
    B,
    combine_orders,
    swap,
    to_answer_terms,
    to_slot_terms,
    verdict_score,
)

__all__ = [
    "A",
    "B",
    "BOTH_BAD",
    "FIRST",
    "INVALID",
    "MISSING",
    "SECOND",
    "TIE",
    "Estimate",
    "FirstSlotTest",
    "FlaggedVoteImpact",
    "LengthBias",
    "LengthCoefficient",
    "PositionPreference",
    "ScorePairwise",
    "SelfPreference",
    "TopKChange",
    "Transitivity",
    "UpsetScores",
    "VoteTiming",
    "VoterConcentration",
    "accuracy",
    "as_rows",
    "bt_strengths",
    "by_group",
    "category_table",
    "cohen_kappa",
    "combine_orders",
    "first_slot_win_rate",
    "flagged_vote_impact",
    "flatten",
    "fleiss_kappa",
    "fleiss_kappa_table",
    "flip_rate",
    "human_majority",
    "krippendorff_alpha",
    "length_coefficient",
    "longer_wins",
    "pairwise_kappas",
    "position_consistency",
    "position_preference",
    "proportion",
    "raw_agreement",
    "repeat_stability",
    "score_pairwise_inconsistency",
    "self_preference",
    "swap",
    "to_answer_terms",
    "to_slot_terms",
    "top_k_change",
    "transitivity_violations",
    "upset_scores",
    "verdict_score",
    "vote_timing",
    "voter_concentration",
    "votes_to_flip",
    "wilson_interval",
]
