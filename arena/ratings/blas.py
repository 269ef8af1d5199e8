"""One BLAS thread inside the rating engine.

The engine's matrices are small (a few hundred rows) and its callers already run two
solves at once on two cores: OpenBLAS's own threads then spin against ours and make a
300 x 300 solve ~100x slower under load. The limit is scoped to the engine's calls
(nothing is set process-wide); without threadpoolctl it changes nothing.
"""

from __future__ import annotations

from contextlib import nullcontext
from functools import lru_cache


@lru_cache(maxsize=1)
def _controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - optional
        return None
    return ThreadpoolController()  # scans the loaded libraries once (~1 ms)


def one_blas_thread():
    """Context manager: BLAS limited to one thread inside (~15 µs to enter)."""
    controller = _controller()
    if controller is None:  # pragma: no cover - optional
        return nullcontext()
    return controller.limit(limits=1, user_api="blas")
