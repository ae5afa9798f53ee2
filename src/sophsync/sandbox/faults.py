"""Fault injection and rate limiting for the sandbox.

``--faults`` takes ``KIND=RATE`` pairs separated by commas, each rate a fraction of requests
(``429=0.05,500=0.02,drop=0.01``), plus two settings: ``retry-after=SECONDS`` (sent with injected
429s, default 1) and ``slow-seconds=SECONDS`` (the delay of ``slow``, default 2). Kinds:

* ``429``: Too Many Requests with ``Retry-After``; the request is not handled.
* ``500``, ``502``, ``503``: a server error; the request is not handled.
* ``slow``: the answer is delayed by ``slow-seconds``, then handled normally.
* ``drop``: the request *is* handled, then the connection is cut mid-answer (the client cannot
  know whether its request took effect).
* ``malformed``: the request is handled and answered 200 with a truncated, invalid JSON body.

Draws come from a generator seeded with the sandbox seed, one draw per ``/api`` request, so a
sequence of requests meets the same faults every run.

``--rate-limit N/UNIT`` (UNIT one of SEC, MIN, HOUR, DAY) answers 429 with ``Retry-After`` once a
user id has sent N requests within the window.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field

FAULT_KINDS = ("429", "500", "502", "503", "slow", "drop", "malformed")
_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "day": 86400.0,
    "d": 86400.0,
}


@dataclass(frozen=True)
class FaultSpec:
    rates: dict[str, float] = field(default_factory=dict)
    retry_after: float = 1.0
    slow_seconds: float = 2.0

    @classmethod
    def parse(cls, spec: str) -> FaultSpec:
        rates: dict[str, float] = {}
        settings = {"retry-after": 1.0, "slow-seconds": 2.0}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            key, sep, raw = item.partition("=")
            key = key.strip().lower()
            if not sep:
                raise ValueError(f"fault {item!r} needs a value, as in {key}=0.05")
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"fault {key!r} needs a number, not {raw.strip()!r}") from None
            if key in settings:
                if value < 0:
                    raise ValueError(f"{key} must be zero or more seconds")
                settings[key] = value
            elif key in FAULT_KINDS:
                if not 0 <= value <= 1:
                    raise ValueError(f"fault rate {key}={raw} must be between 0 and 1")
                rates[key] = value
            else:
                known = ", ".join((*FAULT_KINDS, *settings))
                raise ValueError(f"unknown fault {key!r}; use one of {known}")
        if sum(rates.values()) > 1 + 1e-9:
            raise ValueError("fault rates add up to more than 1")
        return cls(rates, settings["retry-after"], settings["slow-seconds"])

    def __str__(self) -> str:
        parts = [f"{kind}={rate:g}" for kind, rate in self.rates.items()]
        return ",".join(
            [*parts, f"retry-after={self.retry_after:g}", f"slow-seconds={self.slow_seconds:g}"]
        )


class FaultInjector:
    """Draws the fault (or ``None``) for each request, reproducibly from the seed."""

    def __init__(self, spec: FaultSpec, seed: int) -> None:
        self.spec = spec
        self._rng = random.Random(f"faults:{seed}")

    def draw(self) -> str | None:
        roll = self._rng.random()
        for kind in FAULT_KINDS:
            rate = self.spec.rates.get(kind, 0.0)
            if roll < rate:
                return kind
            roll -= rate
        return None


@dataclass(frozen=True)
class RateLimit:
    limit: int
    window: float

    @classmethod
    def parse(cls, spec: str) -> RateLimit:
        count, sep, unit = spec.strip().partition("/")
        try:
            limit = int(count)
        except ValueError:
            limit = 0
        seconds = _UNITS.get(unit.strip().lower()) if sep else None
        if limit < 1 or seconds is None:
            raise ValueError(
                f"rate limit {spec!r} must look like 60/MIN (a count of 1 or more per SEC, MIN, "
                "HOUR or DAY)"
            )
        return cls(limit, seconds)

    def __str__(self) -> str:
        unit = {1.0: "SEC", 60.0: "MIN", 3600.0: "HOUR", 86400.0: "DAY"}[self.window]
        return f"{self.limit}/{unit}"


class RateLimiter:
    """A sliding window of request times per user id."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._seen: dict[str, deque[float]] = {}

    def check(self, user_id: str, now: float) -> float | None:
        """Record a request; return the seconds to wait if it is over the limit, else ``None``."""
        seen = self._seen.setdefault(user_id, deque())
        while seen and seen[0] <= now - self.limit.window:
            seen.popleft()
        if len(seen) >= self.limit.limit:
            return max(1.0, math.ceil(seen[0] + self.limit.window - now))
        seen.append(now)
        return None
