"""RestartBackoff: exponential growth, cap, jitter after the cap, reset time."""

from __future__ import annotations

import pytest

from penguiflow.supervision import RestartBackoff


def test_delay_grows_exponentially_from_min() -> None:
    backoff = RestartBackoff(min_s=0.5, max_s=100.0, mult=2.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(4)] == [0.5, 1.0, 2.0, 4.0]


def test_delay_is_capped_at_max() -> None:
    backoff = RestartBackoff(min_s=1.0, max_s=3.0, jitter=0.0)
    assert backoff.delay(10) == 3.0


def test_jitter_applies_after_the_cap() -> None:
    backoff = RestartBackoff(min_s=1.0, max_s=3.0, jitter=0.5)
    assert backoff.delay(10, rand=0.5) == pytest.approx(3.75)


def test_huge_attempt_does_not_overflow() -> None:
    assert RestartBackoff(min_s=1.0, max_s=2.0, jitter=0.0).delay(10_000) == 2.0


def test_reset_after_defaults_to_min() -> None:
    assert RestartBackoff(min_s=0.25).reset_after == 0.25
    assert RestartBackoff(min_s=0.25, reset_after_s=9.0).reset_after == 9.0


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"min_s": -1.0}, id="negative-min"),
        pytest.param({"min_s": 2.0, "max_s": 1.0}, id="max-below-min"),
        pytest.param({"mult": 0.5}, id="shrinking-mult"),
        pytest.param({"jitter": -0.1}, id="negative-jitter"),
    ],
)
def test_invalid_backoff_is_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RestartBackoff(**kwargs)
