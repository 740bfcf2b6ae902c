"""Identity for the model API: signed, short-lived tokens (JWT through PyJWT).

A token names a *subject* (the client) and its *scopes*:

- ``predict``: may ask for predictions, and gets the top-1 label only;
- ``predict:scores``: also gets class probabilities (as the deployment's output policy allows);
- ``admin``: full probabilities, and may read the audit log.

Tokens are HS256-signed with a random 32-byte key (PyJWT warns below that), expire after
minutes, and every check a token fails is a 401 with the reason; a valid token without the
scope an endpoint needs is a 403. PyJWT compares signatures with ``hmac.compare_digest``
(constant time); :func:`same_secret` is the one place this package compares a secret itself.
Taught in 07_secure_deployment.
"""
from __future__ import annotations

import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Iterable

import jwt

from utils import validation as v

#: Every scope a token may carry.
SCOPES = ("predict", "predict:scores", "admin")
ALGORITHM = "HS256"
MIN_KEY_BYTES = 32


class AuthError(Exception):
    """A request's credential was refused: ``status`` (401 or 403) and ``reason`` (taught in 07_secure_deployment)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class Identity:
    """Who sent a request, as its verified token says (taught in 07_secure_deployment)."""

    subject: str
    scopes: frozenset[str]
    token_id: str = ""

    def has(self, scope: str) -> bool:
        """Whether the token grants ``scope`` (``admin`` grants every scope)."""
        return scope in self.scopes or "admin" in self.scopes


def same_secret(a: str | bytes, b: str | bytes) -> bool:
    """Compare two secrets in constant time (taught in 07_secure_deployment)."""
    a = a.encode() if isinstance(a, str) else a
    b = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a, b)


class TokenIssuer:
    """Issues and verifies the API's tokens with one secret key (taught in 07_secure_deployment).

    Args:
        key: the HMAC key, at least 32 bytes; a fresh random one when None. Keep it out of
            notebooks, logs and images: whoever has it can mint tokens.
        issuer: the ``iss`` claim every token carries and every check requires.
        ttl_s: default lifetime of a token in seconds (short: a leaked token expires soon).
        clock: the time source (seconds), replaceable in tests.
    """

    def __init__(self, key: bytes | None = None, *, issuer: str = "modelsec-api", ttl_s: float = 300.0,
                 clock: Callable[[], float] = time.time):
        where = "TokenIssuer"
        if key is None:
            key = secrets.token_bytes(MIN_KEY_BYTES)
        if not isinstance(key, (bytes, bytearray)) or len(key) < MIN_KEY_BYTES:
            size = len(key) if isinstance(key, (bytes, bytearray, str)) else type(key).__name__
            v.fail(where, f"key is {size} (bytes)", f"key must be at least {MIN_KEY_BYTES} random bytes "
                                                     f"(secrets.token_bytes({MIN_KEY_BYTES}))")
        self._key = bytes(key)
        self.issuer = str(issuer)
        self.ttl_s = v.real(ttl_s, "ttl_s", where, 1.0, 86_400.0)
        self.clock = clock
        self._revoked_subjects: set[str] = set()
        self._revoked_ids: set[str] = set()

    def revoke(self, subject: str | None = None, *, token_id: str | None = None) -> None:
        """Refuse, from now on, every token of ``subject`` or the one token whose ``jti`` is
        ``token_id``, even before it expires (taught in 09_governance_and_audit: the first step of
        an extraction incident's response)."""
        where = "TokenIssuer.revoke"
        if subject is None and token_id is None:
            v.fail(where, "neither subject nor token_id", "name the client (subject) or one token's id")
        if subject is not None:
            if not isinstance(subject, str) or not subject.strip():
                v.fail(where, f"subject = {subject!r}", "subject must be a non-empty string")
            self._revoked_subjects.add(subject)
        if token_id is not None:
            if not isinstance(token_id, str) or not token_id:
                v.fail(where, f"token_id = {token_id!r}", "token_id must be a token's jti claim")
            self._revoked_ids.add(token_id)

    @property
    def revoked(self) -> frozenset[str]:
        """The subjects whose tokens are refused (taught in 09_governance_and_audit)."""
        return frozenset(self._revoked_subjects)

    def issue(self, subject: str, scopes: Iterable[str] = ("predict",), ttl_s: float | None = None) -> str:
        """A signed token for ``subject`` with ``scopes``, valid for ``ttl_s`` seconds."""
        where = "TokenIssuer.issue"
        if not isinstance(subject, str) or not subject.strip() or len(subject) > 64:
            v.fail(where, f"subject = {subject!r}", "subject must be a non-empty string of at most 64 characters")
        scopes = sorted(set(scopes))
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown:
            v.fail(where, f"unknown scopes {unknown}", f"scopes are some of {list(SCOPES)}")
        ttl = self.ttl_s if ttl_s is None else v.real(ttl_s, "ttl_s", where, -86_400.0, 86_400.0)
        now = self.clock()
        claims = {"sub": subject, "scope": " ".join(scopes), "iss": self.issuer, "iat": int(now),
                  "exp": int(now + ttl), "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: str) -> Identity:
        """The identity a token proves, or :class:`AuthError` (401) saying why it proves none."""
        if not isinstance(token, str) or not token:
            raise AuthError(401, "no token: send 'Authorization: Bearer <token>'")
        try:
            # expiry is checked below against this issuer's clock (one clock, replaceable in tests)
            claims = jwt.decode(token, self._key, algorithms=[ALGORITHM], issuer=self.issuer,
                                options={"require": ["exp", "iat", "sub", "iss"], "verify_exp": False,
                                         "verify_iat": False})
        except jwt.InvalidSignatureError:
            raise AuthError(401, "bad token signature: the token was not issued by this API") from None
        except jwt.InvalidIssuerError:
            raise AuthError(401, "token from another issuer") from None
        except jwt.MissingRequiredClaimError as e:
            raise AuthError(401, f"token lacks the claim {e.claim!r}") from None
        except jwt.InvalidAlgorithmError:
            raise AuthError(401, f"token algorithm not allowed (only {ALGORITHM})") from None
        except jwt.InvalidTokenError:
            raise AuthError(401, "malformed token") from None
        if not isinstance(claims["exp"], (int, float)) or claims["exp"] <= self.clock():
            raise AuthError(401, "token expired: ask for a new one")
        if str(claims["sub"]) in self._revoked_subjects or str(claims.get("jti", "")) in self._revoked_ids:
            raise AuthError(401, "token revoked: this client's access was withdrawn")
        scopes = frozenset(str(claims.get("scope", "")).split())
        return Identity(str(claims["sub"]), frozenset(s for s in scopes if s in SCOPES), str(claims.get("jti", "")))


def bearer(header: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or :class:`AuthError` (401)
    (taught in 07_secure_deployment)."""
    if not header:
        raise AuthError(401, "no token: send 'Authorization: Bearer <token>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(401, "the Authorization header must read 'Bearer <token>'")
    return token.strip()
