"""Messages pushed to browsers over Channels groups, one TypedDict per type."""

import hashlib
from typing import Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer


class BoardUpdated(TypedDict):
    type: Literal["board.updated"]
    scope: str
    snapshot_id: int
    n_votes: int


def board_group(scope: str) -> str:
    # Group names allow only ASCII alphanumerics, hyphens, underscores and periods.
    return "board." + hashlib.sha1(scope.encode()).hexdigest()[:20]


def broadcast_board(scope: str, snapshot_id: int, n_votes: int) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message: BoardUpdated = {
        "type": "board.updated",
        "scope": scope,
        "snapshot_id": snapshot_id,
        "n_votes": n_votes,
    }
    async_to_sync(layer.group_send)(board_group(scope), message)
