"""Host installations of a language, one per version, found once.

Each runtime family finds its language on the host its own way (Python interpreters, node,
Java homes): it lists the candidates for a version, in the order it prefers them, and
inspects each until one is that version. ``Installations`` holds what the families share:
the first accepted candidate, cached for the life of the process (an installation added
later needs a restart, as the messages say), and the refusal naming how to install one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from strato.errors import InterpreterNotFoundError

Version = TypeVar("Version")
Found = TypeVar("Found")


class Installations(Generic[Version, Found]):
    """``candidates(version)`` lists paths to try, ``inspect(path, version)`` answers what
    was found there (None: not that version), ``missing(version)`` says how to install one.
    Thread-safe enough: a race only resolves the same answer twice."""

    def __init__(self, candidates: Callable[[Version], Iterable[str]],
                 inspect: Callable[[str, Version], Found | None],
                 missing: Callable[[Version], str]) -> None:
        self._candidates = candidates
        self._inspect = inspect
        self._missing = missing
        self._cache: dict[Version, Found | None] = {}

    def find(self, version: Version) -> Found | None:
        """The installation of ``version`` on this host, or None."""
        if version not in self._cache:
            self._cache[version] = next(
                (found for candidate in dict.fromkeys(self._candidates(version))
                 if (found := self._inspect(candidate, version)) is not None), None)
        return self._cache[version]

    def require(self, version: Version) -> Found:
        """The installation of ``version``; InterpreterNotFoundError says how to provide
        one."""
        found = self.find(version)
        if found is None:
            raise InterpreterNotFoundError(self._missing(version))
        return found
