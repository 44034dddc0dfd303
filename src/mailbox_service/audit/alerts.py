"""Intrusion alerts: repeated failures from one client address or token subject.

Counted in Redis, so every API node adds to the same count: one key per (kind, key, window),
`INCR` plus an expiry, in fixed windows of `window_s` seconds. The request that brings the
count exactly to the threshold logs the one `security.alert` of that window (INCR is atomic, so
exactly one request, on whichever node, sees that number) and counts it in
`mailbox_security_alerts_total{kind}`. A Redis failure costs the alert, never the request.
"""

from __future__ import annotations

import hashlib
import time
from typing import Final, Literal

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from mailbox_service.log import get_logger
from mailbox_service.observability import metrics
from mailbox_service.settings import AlertSettings

log = get_logger(__name__)

AlertKind = Literal["auth_failed", "rate_limited", "not_found"]
KINDS: Final[tuple[AlertKind, ...]] = ("auth_failed", "rate_limited", "not_found")
KEY_PREFIX = "mailbox:alert"


class IntrusionAlerts:
    def __init__(self, redis: aioredis.Redis, settings: AlertSettings) -> None:
        self._redis = redis
        self._settings = settings

    def threshold(self, kind: AlertKind) -> int:
        return int(getattr(self._settings, kind))

    async def observe(self, kind: AlertKind, key: str) -> bool:
        """Count one event of `kind` for `key` (an address or a subject); True when this event
        raised the window's alert."""
        window = self._settings.window_s
        threshold = self.threshold(kind)
        if threshold <= 0 or window <= 0:
            return False
        started = int(time.time()) // window * window
        # Hashed: a subject is attacker-chosen text, and Redis keys should stay short.
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        counter = f"{KEY_PREFIX}:{kind}:{started}:{digest}"
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.incr(counter)
                pipe.expire(counter, window * 2)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("security.alert_count_failed", kind=kind, error=str(exc))
            return False
        if int(count) != threshold:
            return False
        log.warning(
            "security.alert",
            kind=kind,
            key=key[:256],
            count=int(count),
            window_s=window,
            window_start=started,
        )
        metrics.security_alert(kind)
        return True
