"""One ``with`` protocol for the local cluster's parts that start and stop."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

__all__ = ["Started"]


class Started(ABC):
    """A part with ``start()`` (returning itself) and ``stop()``: ``with part:`` runs it."""

    @abstractmethod
    def start(self) -> Self:
        """Start the part; return it."""

    @abstractmethod
    def stop(self) -> None:
        """Stop what ``start`` started."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
