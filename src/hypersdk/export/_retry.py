"""How the export toolkit retries: bounded, with backoff and jitter, through stamina."""

from __future__ import annotations

import attrs

from hypersdk import _validation as v

__all__ = ["RetryPolicy"]


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """Bounds and timing of download retries (exponential backoff with jitter).

    A failure that made no progress (a 5xx, a refused connection, a 429) is retried up
    to ``attempts`` times in total and for at most ``timeout`` seconds, waiting
    ``min(wait_max, wait_initial * 2**n + random(0, wait_jitter))`` between attempts,
    or exactly what a 429's ``Retry-After`` asks when that is at most
    ``max_retry_after`` (a longer wait raises :class:`~hypersdk.RateLimitError` at
    once, so the caller can decide; a 503's ``Retry-After`` is honoured up to that
    limit). A transfer that stopped after receiving bytes is
    resumed at once with a fresh budget, at most ``max_resumes`` times.

    >>> fast = RetryPolicy(attempts=3, wait_initial=0.01, wait_max=0.05, wait_jitter=0)
    """

    attempts: int = attrs.field(default=6, validator=v.int_between(1, 1000))
    timeout: float = attrs.field(default=300.0, validator=v.non_negative_seconds)
    wait_initial: float = attrs.field(default=0.5, validator=v.non_negative_seconds)
    wait_max: float = attrs.field(default=30.0, validator=v.non_negative_seconds)
    wait_jitter: float = attrs.field(default=1.0, validator=v.non_negative_seconds)
    max_retry_after: float = attrs.field(default=300.0, validator=v.non_negative_seconds)
    max_resumes: int = attrs.field(default=100, validator=v.int_between(0))
