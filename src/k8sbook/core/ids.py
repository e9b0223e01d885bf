"""Seeded generation of UIDs and generated names.

Mirrors ``k8s.io/apiserver/pkg/storage/names`` (``SimpleNameGenerator``: ``generateName`` plus
five random characters from ``k8s.io/apimachinery/pkg/util/rand``'s alphabet, which leaves out
vowels and look-alike characters) and the apiserver's use of random (version 4) UUIDs for
``metadata.uid``. Here both come from one seeded generator, so every run gives the same ids.
"""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import Iterator

#: ``k8s.io/apimachinery/pkg/util/rand`` draws generated-name suffixes from this alphabet.
ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"
#: ``names.SimpleNameGenerator``: at most 63 - 5 characters of the prefix are kept.
MAX_GENERATED_NAME_LENGTH = 58
RANDOM_LENGTH = 5


class IdGenerator:
    """Deterministic ids: the same seed gives the same sequence."""

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._rand = random.Random(seed)
        self._side = random.Random(f"side-{seed}")

    @contextlib.contextmanager
    def side_stream(self) -> Iterator[None]:
        """Draw from a second seeded sequence for a while, leaving the main one where it is:
        for objects added to the model's bootstrap later, so that every id, generated name and
        jitter drawn after them stays what it was."""
        main, self._rand = self._rand, self._side
        try:
            yield
        finally:
            self._rand = main

    def uid(self) -> str:
        """A version-4 UUID string drawn from the seeded generator."""
        return str(uuid.UUID(int=self._rand.getrandbits(128), version=4))

    def suffix(self, length: int = RANDOM_LENGTH) -> str:
        return "".join(self._rand.choice(ALPHANUMS) for _ in range(length))

    def generate_name(self, base: str) -> str:
        """``generateName`` handling: truncate the base, add five random characters."""
        return base[:MAX_GENERATED_NAME_LENGTH] + self.suffix()

    def random(self) -> float:
        """A float in [0, 1) for jitter (reflector watch timeouts, backoff)."""
        return self._rand.random()
