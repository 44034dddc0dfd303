"""Rate limits shared by every API node through Redis.

`gcra` holds the one-round-trip limiter, `budgets` says which budget a request spends and
raises `RateLimited`, `addresses` finds the client address behind trusted proxies, and
`sessions` caps Socket.IO sessions per address and per user. Nothing here knows Litestar;
`server/rate_limit.py` wires the budgets into the HTTP API and `realtime/server.py` into
Socket.IO.
"""

from mailbox_service.ratelimit.addresses import ClientAddresses
from mailbox_service.ratelimit.budgets import Budgets
from mailbox_service.ratelimit.gcra import RateLimiter, limiter_redis
from mailbox_service.ratelimit.sessions import SocketSessions

__all__ = ["Budgets", "ClientAddresses", "RateLimiter", "SocketSessions", "limiter_redis"]
