"""The error of a run whose stored rows its design's replay does not produce."""


class ReplayError(RuntimeError):
    """Stored matches or verdicts that the design's replay does not produce."""
