"""Pseudonyms: user ids replaced by keyed hashes, so a snapshot can leave the shop without its ids.

A user's pseudonym is ``"u_"`` followed by the first 32 hex digits (128 bits) of
HMAC-SHA256(key, ``"graphrec-user\\0"`` + the id in UTF-8). Without the key nobody can compute the
pseudonym of an id nor map one back: a plain hash would not do, since ids are guessable (sequential
numbers, e-mail addresses) and hashing every candidate would reverse it. The shop keeps the key
(``GRAPHREC_PSEUDONYM_KEY``); the API, given it, finds a user's model row by hashing the real id.

The key's *fingerprint*, 8 hex digits of HMAC-SHA256(key, ``"graphrec-fingerprint"``), is written
into snapshots and artifacts: it names the key without revealing it, so serving a model with
another key fails at load time instead of treating every user as unknown.

Pseudonymised data is still personal data (the shop can re-identify it, and purchase histories
with timestamps can be distinctive): this keeps ids and names away from people who train models,
it does not anonymise.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Iterator, Mapping

from pydantic import SecretStr

PREFIX = "u_"
PSEUDONYM_HEX = 32  # 128 bits: collisions need about 2**64 users
FINGERPRINT_HEX = 8
# A key must carry at least 256 bits, e.g. `openssl rand -hex 32` (64 characters).
MIN_KEY_BYTES = 32
# A guard against placeholders ("changeme-changeme-..."), not a randomness test.
MIN_DISTINCT_BYTES = 10
KEY_VARIABLE = "GRAPHREC_PSEUDONYM_KEY"

_USER_DOMAIN = b"graphrec-user\x00"
_FINGERPRINT_DOMAIN = b"graphrec-fingerprint"


class PseudonymKeyError(ValueError):
    """The pseudonym key is missing or too weak. Messages never include the key."""


class PseudonymKey:
    """A validated pseudonym key. Its repr shows the fingerprint only, so it never reaches a log."""

    __slots__ = ("_user", "fingerprint")

    def __init__(self, secret: str | bytes | SecretStr, source: str = KEY_VARIABLE) -> None:
        raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        # Surrounding whitespace is ignored: a key pasted with its file's newline is the same key.
        key = (raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)).strip()
        if len(key) < MIN_KEY_BYTES:
            raise PseudonymKeyError(
                f"{source} is too short ({len(key)} bytes): a pseudonym key needs at least "
                f"{MIN_KEY_BYTES} random bytes, e.g. the output of `openssl rand -hex 32`")
        if len(set(key)) < MIN_DISTINCT_BYTES:
            raise PseudonymKeyError(
                f"{source} does not look random (only {len(set(key))} distinct characters); "
                "generate one with `openssl rand -hex 32`")
        # The user domain's HMAC state is kept, not the key: each pseudonym copies it and adds the id.
        self._user = hmac.new(key, _USER_DOMAIN, hashlib.sha256)
        self.fingerprint = hmac.new(key, _FINGERPRINT_DOMAIN, hashlib.sha256).hexdigest()[:FINGERPRINT_HEX]

    def pseudonym(self, user_id: str) -> str:
        h = self._user.copy()
        h.update(user_id.encode("utf-8"))
        return PREFIX + h.hexdigest()[:PSEUDONYM_HEX]

    def __repr__(self) -> str:
        return f"PseudonymKey(fingerprint={self.fingerprint!r})"

    # Immutable: copies (an artifact deep-copied) share it. It is never pickled (HMAC state is not).
    def __copy__(self) -> "PseudonymKey":
        return self

    def __deepcopy__(self, memo: dict) -> "PseudonymKey":
        return self


KeyLike = PseudonymKey | SecretStr | str | bytes


def as_key(key: KeyLike, source: str = KEY_VARIABLE) -> PseudonymKey:
    """``key`` as a validated :class:`PseudonymKey` (raises :class:`PseudonymKeyError`)."""
    return key if isinstance(key, PseudonymKey) else PseudonymKey(key, source)


def pseudonym(user_id: str, key: KeyLike) -> str:
    """The pseudonym of ``user_id`` under ``key``: ``"u_"`` + 32 hex digits."""
    return as_key(key).pseudonym(user_id)


def key_from(secret: SecretStr | None) -> PseudonymKey:
    """The configured key (``Settings.pseudonym_key``), or a clear error saying how to set one."""
    if secret is None or not secret.get_secret_value().strip():
        raise PseudonymKeyError(
            f"no pseudonym key: set {KEY_VARIABLE} to a secret the shop keeps (e.g. the output of "
            "`openssl rand -hex 32`); the same key must be given to the API that serves the model")
    return PseudonymKey(secret)


def is_pseudonym(value: str) -> bool:
    """Whether ``value`` has the shape of a pseudonym (it says nothing about which key made it)."""
    body = value[len(PREFIX):]
    return (value.startswith(PREFIX) and len(body) == PSEUDONYM_HEX
            and all(c in "0123456789abcdef" for c in body))


class RealIdIndex(Mapping[str, int]):
    """A pseudonym -> row index that is looked up by *real* user id.

    ``index[real_id]``, ``real_id in index`` and ``index.get(real_id)`` hash the id with the key
    first, so code written for a plain ``{user id: row}`` dict (fold-in, serving) works unchanged.
    Iteration, ``keys()`` and ``items()`` yield the stored pseudonyms: the real ids are not known
    until asked for (a keyed hash cannot be reversed).
    """

    __slots__ = ("rows", "key")

    def __init__(self, rows: Mapping[str, int], key: PseudonymKey) -> None:
        self.rows = rows  # pseudonym -> row
        self.key = key

    def __getitem__(self, user_id: str) -> int:
        if not isinstance(user_id, str):
            raise KeyError(user_id)
        return self.rows[self.key.pseudonym(user_id)]

    def __contains__(self, user_id: object) -> bool:
        return isinstance(user_id, str) and self.key.pseudonym(user_id) in self.rows

    def get(self, user_id: str, default: int | None = None) -> int | None:  # type: ignore[override]
        if not isinstance(user_id, str):
            return default
        return self.rows.get(self.key.pseudonym(user_id), default)

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return f"RealIdIndex({len(self.rows)} pseudonyms, key {self.key.fingerprint})"
