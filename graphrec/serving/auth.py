"""API keys with roles, rate limits per key, and the audit log.

Neo4j Community has no roles, so GraphRec enforces them in front of it. A key is a random token
the operator hands out; the service stores only its SHA-256 (keys are high-entropy tokens, not
passwords, so a slow password hash would add latency and no safety) and compares digests in
constant time. Keys come from ``GRAPHREC_API_KEY`` (one admin key, the simple setup) and/or a file
named by ``GRAPHREC_API_KEYS_FILE``: one key per line, ``name:role[,role...]:sha256-hex``
(``graphrec keys add NAME --role R`` prints a new key and the line to append). Blank lines and
``#`` comments are ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger("graphrec.audit")


class Role(str, Enum):
    READER = "reader"  # recommendations, offers, promos
    WRITER = "writer"  # live writes and events
    MARKETER = "marketer"  # campaigns and reports
    ANALYST = "analyst"  # graph queries
    ADMIN = "admin"  # everything, erasure included


class AuthError(Exception):
    """401 (no or unknown key) or 403 (the key lacks the role); the message is safe to show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RateLimited(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limit exceeded; retry after {retry_after:.1f} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Principal:
    """Who called: the key's name (never the key) and its roles."""

    name: str
    roles: frozenset[Role]

    def has(self, role: Role) -> bool:
        return Role.ADMIN in self.roles or role in self.roles


# Reads are open only when no key at all is configured (a local demo); then every endpoint that
# writes or queries the graph is refused, since there is nobody it could be allowed to.
ANONYMOUS = Principal("anonymous", frozenset({Role.READER}))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return "grk_" + secrets.token_urlsafe(32)


def parse_keys_file(path: Path) -> list[tuple[str, frozenset[Role], str]]:
    """``(name, roles, sha256)`` per line; a bad line names the file and line."""
    entries = []
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != 3:
            raise ValueError(f"{path}:{lineno}: expected name:role[,role]:sha256, got {len(parts)} fields")
        name, roles, digest = (p.strip() for p in parts)
        try:
            role_set = frozenset(Role(r.strip()) for r in roles.split(",") if r.strip())
        except ValueError as err:
            raise ValueError(f"{path}:{lineno}: unknown role in {roles!r} "
                             f"(roles: {', '.join(r.value for r in Role)})") from err
        if not name or not role_set:
            raise ValueError(f"{path}:{lineno}: a key needs a name and at least one role")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
            raise ValueError(f"{path}:{lineno}: the third field must be the key's sha256 in hex, not the key")
        entries.append((name, role_set, digest.lower()))
    return entries


class KeyRing:
    """The configured keys; :meth:`authenticate` maps a presented key to its :class:`Principal`."""

    def __init__(self, entries: Iterable[tuple[str, frozenset[Role], str]]) -> None:
        self._entries = [(name, roles, bytes.fromhex(digest)) for name, roles, digest in entries]

    @classmethod
    def from_settings(cls, settings: Any) -> "KeyRing":
        entries: list[tuple[str, frozenset[Role], str]] = []
        admin = settings.api_key.get_secret_value() if settings.api_key is not None else ""
        if admin:
            entries.append(("admin", frozenset({Role.ADMIN}), hash_key(admin)))
        if settings.api_keys_file is not None:
            entries += parse_keys_file(Path(settings.api_keys_file))
        return cls(entries)

    @property
    def configured(self) -> bool:
        return bool(self._entries)

    def authenticate(self, key: str | None) -> Principal:
        if not self._entries:
            return ANONYMOUS
        if not key:
            raise AuthError(401, "missing X-API-Key header")
        digest = hashlib.sha256(key.encode()).digest()
        found = None
        for name, roles, stored in self._entries:  # every entry compared: time does not reveal which
            if hmac.compare_digest(digest, stored) and found is None:
                found = Principal(name, roles)
        if found is None:
            raise AuthError(401, "invalid API key")
        return found

    def authorize(self, key: str | None, role: Role) -> Principal:
        principal = self.authenticate(key)
        if not principal.has(role):
            if principal is ANONYMOUS:
                raise AuthError(403, f"this endpoint needs a key with the {role.value!r} role, and the "
                                     "service has no keys configured (set GRAPHREC_API_KEY or "
                                     "GRAPHREC_API_KEYS_FILE)")
            raise AuthError(403, f"key {principal.name!r} lacks the {role.value!r} role")
        return principal


class RateLimiter:
    """A token bucket per key name: ``rate`` requests per second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, who: str) -> None:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(who, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[who] = (tokens, now)
                raise RateLimited((1.0 - tokens) / self.rate)
            self._buckets[who] = (tokens - 1.0, now)


class AuditLog:
    """Append-only JSON lines: when, who (the key's name), what, and its details. Never a key."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, principal: Principal, action: str, **details: Any) -> None:
        entry = {"at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                 "who": principal.name, "action": action, **details}
        line = json.dumps(entry, ensure_ascii=False, default=str, separators=(",", ":"))
        log.info("%s", line)
        if self.path is None:
            return
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
