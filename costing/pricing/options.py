"""How the keyed engines work, never what they compute: every option gives the same output."""

from __future__ import annotations

from dataclasses import dataclass

from costing.errors import ConfigError

__all__ = ["EngineOptions"]


@dataclass(frozen=True)
class EngineOptions:
    """Settings of the keyed engines (:func:`costing.price`, :func:`costing.price_lazy`).

    None of them changes a price, a status or a row: they trade memory for speed, or force a
    rare path so that tests can prove it gives the same output
    (docs/performance.md explains the engines).

    Attributes:
        key_batch_rows: rows per batch of ``price_lazy``'s pass over a streamed input to find
            its distinct pricing keys; memory is about this many rows of the key columns.
        check_rows: rows per slice when ``price`` checks every row's second key hash (the
            hash is never held for all rows at once).
        threads: price the distinct keys in a worker thread while the rows find their keys,
            and scan for codes to normalise beside the first pricing (``price``).
        drop_by_slices: up to this many spell changes (merged episodes dropped, first episodes
            replaced) are applied by zero-copy slices; more by one gather.
        colliding_hashes: for tests only: every key's first 64-bit hash is made the same, as
            if all keys collided, so the engines take their exact (128-bit) path.

    Example:
        >>> import costing
        >>> costing.EngineOptions(key_batch_rows=100_000).threads
        True
    """

    key_batch_rows: int = 2_000_000
    check_rows: int = 1 << 21
    threads: bool = True
    drop_by_slices: int = 4096
    colliding_hashes: bool = False

    def __post_init__(self) -> None:
        for name in ("key_batch_rows", "check_rows"):
            if getattr(self, name) < 1:
                raise ConfigError(f"EngineOptions.{name} must be at least 1, not {getattr(self, name)}")
        if self.drop_by_slices < 0:
            raise ConfigError(f"EngineOptions.drop_by_slices must be 0 or more, not {self.drop_by_slices}")


DEFAULT_OPTIONS = EngineOptions()
