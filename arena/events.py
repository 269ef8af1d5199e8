"""Messages pushed to browsers over Channels groups, one TypedDict per type.

:func:`push` is the one sender, for both apps. A push is best-effort: a page reads its
state when it loads and on every push, so a push lost while the channel layer (Redis) is
unreachable costs a late update on open pages, never the write that caused it.
"""

import hashlib
import logging
from typing import Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from arena.errors import SERVICE_DOWN

log = logging.getLogger(__name__)


class BoardUpdated(TypedDict):
    type: Literal["board.updated"]
    scope: str
    snapshot_id: int
    n_votes: int


def board_group(scope: str) -> str:
    # Group names allow only ASCII alphanumerics, hyphens, underscores and periods.
    return "board." + hashlib.sha1(scope.encode()).hexdigest()[:20]


def push(group: str, message: dict) -> None:
    """Send ``message`` to the Channels group ``group``; logged and dropped if the layer is down."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except SERVICE_DOWN as exc:
        log.warning("push to %s lost, the channel layer is unreachable: %s", group, exc)


def broadcast_board(scope: str, snapshot_id: int, n_votes: int) -> None:
    message: BoardUpdated = {
        "type": "board.updated",
        "scope": scope,
        "snapshot_id": snapshot_id,
        "n_votes": n_votes,
    }
    push(board_group(scope), message)
