"""Restart backoff: exponential delay with jitter and a reset after quiet time."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RestartBackoff"]


@dataclass(frozen=True, slots=True)
class RestartBackoff:
    """How long a supervisor waits before restarting a crashed child.

    The ``n``-th consecutive restart (``n`` from 0) waits
    ``min(max_s, min_s * mult**n) * (1 + jitter * r)`` with ``r`` uniform in
    [0, 1): jitter is applied after the cap, as in Akka, so a delay can exceed
    ``max_s`` by up to ``jitter``. An incarnation that ran at least
    ``reset_after_s`` seconds (default ``min_s``) resets ``n`` to 0. Messages are
    neither stashed nor dropped meanwhile: they wait in the actor's mailbox and
    senders feel its backpressure.

    .. versionadded:: 3.0
    """

    min_s: float = 0.1
    max_s: float = 10.0
    mult: float = 2.0
    jitter: float = 0.2
    reset_after_s: float | None = None

    def __post_init__(self) -> None:
        if self.min_s < 0 or self.max_s < self.min_s:
            raise ValueError("need 0 <= min_s <= max_s")
        if self.mult < 1:
            raise ValueError("mult must be >= 1")
        if self.jitter < 0:
            raise ValueError("jitter must be >= 0")

    def delay(self, attempt: int, rand: float = 0.0) -> float:
        """Seconds to wait before restart number ``attempt`` (0-based); ``rand`` in [0, 1)."""
        # The exponent is capped so a long crash streak cannot overflow a float.
        base = min(self.max_s, self.min_s * self.mult ** min(attempt, 64))
        return base * (1.0 + self.jitter * rand)

    @property
    def reset_after(self) -> float:
        """Run time after which the attempt counter resets."""
        return self.min_s if self.reset_after_s is None else self.reset_after_s
