"""Voter trust: anomaly scores per voter and per address cluster, flags, trust.

- :mod:`arena.trust.scores` (pure, numpy): the signals and the combined anomaly score.
- :mod:`arena.trust.burst`: the vote-time check (a burst of new sessions from one
  address is counted as flagged at once).
- :mod:`arena.trust.service`: the periodic trust pass (``arena.tasks.score_voters``):
  score recent voters, flag and unflag them, move their votes between the public and the
  flagged running counts, ask for the refits.
"""
