"""Fixture: the abstract attention backend and its per-step metadata."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass
class AttentionMetadata(ABC):
    pass


class AttentionBackend(ABC):
    @abstractmethod
    def init_attention_metadata(self, forward_meta):
        raise NotImplementedError()

    def forward_mixed(self, q, k, v, qkv, compressed_kv, k_pe, layer, forward_meta):
        raise NotImplementedError()
