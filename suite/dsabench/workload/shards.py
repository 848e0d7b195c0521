"""Which shard of N a case belongs to (`run --shard K/N`): a pure function of its group id, so every
machine of a CI matrix agrees, the variants of a group land in one shard (where their timing is
interleaved), and `compare` can tell a case a shard left out from one a shard planned and lost."""

from __future__ import annotations

import hashlib


def shard_of(group_id: str, n: int) -> int:
    """The case group's shard, 0-based (shard K of `--shard K/N` is shard_of == K - 1)."""
    return int.from_bytes(hashlib.sha256(group_id.encode()).digest()[:8], "big") % n
