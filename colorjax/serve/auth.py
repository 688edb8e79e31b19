"""Accounts for the app: password hashing, session and API-token secrets, CSRF tokens, log-in throttling.

- Passwords: scrypt (RFC 7914, memory-hard) from the standard library, N = 2**14, r = 8, p = 1 (16 MiB, as
  OWASP's password-storage cheat sheet recommends at minimum), a random 16-byte salt per password, stored as
  `scrypt$N$r$p$salt$hash` so the cost can be raised later without breaking old hashes.
- Sessions: the signed cookie (Starlette's SessionMiddleware, itsdangerous) holds a random session id and the CSRF
  token; the database keeps only the id's SHA-256, so logging out (or deleting the row) ends the session even if
  the cookie was copied.
- API tokens: random, shown once, stored as SHA-256; sent as `Authorization: Bearer <token>`. A bearer request
  carries no ambient browser credentials, so it needs no CSRF token.
- Throttling: growing delays, never a lock. Past `FREE_FAILURES_PER_USERNAME` failed log-ins for one username
  (from any address) within `FAILURE_WINDOW_S`, or `FREE_FAILURES_PER_ADDRESS` from one address (for any
  username: one password tried on many accounts), the next attempt must wait `FIRST_DELAY_S` after the last
  failure, twice as long after each further failure, at most `MAX_DELAY_S`; an attempt made sooner is refused
  unchecked and not counted. A guesser gets a few tries, then one every `MAX_DELAY_S`; the account's owner, behind
  the same SSH tunnel (one address for everyone), waits at most `MAX_DELAY_S` and is never locked out. The client
  address is the connection's own: proxy headers count only with `--forwarded-allow-ips`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
FREE_FAILURES_PER_USERNAME = 5
FREE_FAILURES_PER_ADDRESS = 20  # Above the per-username count: one person's typos delay no one else on the tunnel.
FIRST_DELAY_S = 5.0
MAX_DELAY_S = 60.0
FAILURE_WINDOW_S = 15 * 60.0
SESSION_LIFETIME_S = 14 * 24 * 3600.0
MIN_PASSWORD_LENGTH = 8
USERNAME_PATTERN = re.compile(r"^[a-z0-9_.-]{3,32}$")
API_TOKEN_PREFIX = "cj_"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=2 * 128 * r * (n + p + 2), dklen=32)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        candidate = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(candidate, _unb64(digest))


# Checked against when the username does not exist, so a missing account costs as long as a wrong password.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def check_login(password: str, stored: str | None) -> bool:
    """Whether `password` matches `stored`; runs the KDF even when there is no such user (`stored` None)."""
    if stored is None:
        verify_password(password, _DUMMY_HASH)
        return False
    return verify_password(password, stored)


def normalize_username(username: str) -> str:
    return username.strip().lower()


def signup_problem(username: str, password: str) -> str | None:
    """Why this username/password cannot be registered (one sentence), or None when they can."""
    if not USERNAME_PATTERN.match(username):
        return "A username is 3 to 32 characters: letters, digits, '.', '_' or '-'."
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"A password needs at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > 1024:
        return "A password is at most 1024 characters."
    return None


def new_secret() -> str:
    """A random URL-safe secret (session ids, CSRF tokens)."""
    return secrets.token_urlsafe(32)


def new_api_token() -> str:
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What the database stores for a session id or API token."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same_secret(given: str | None, expected: str | None) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(given, expected)


def failure_delay_s(failures: int, free: int) -> float:
    """How long after its last failure a key (a username, an address) with `failures` recent failures waits."""
    if failures < free:
        return 0.0
    return min(MAX_DELAY_S, FIRST_DELAY_S * 2.0 ** (failures - free))


def throttle_wait_s(username_failures: list[float], address_failures: list[float], now: float) -> float:
    """Seconds until the next log-in attempt for this username from this address may be checked (0: now), given
    the failure times in the window for the username (any address) and for the address (any username)."""
    waits = [
        times[-1] + failure_delay_s(len(times), free) - now
        for times, free in (
            (username_failures, FREE_FAILURES_PER_USERNAME),
            (address_failures, FREE_FAILURES_PER_ADDRESS),
        )
        if times
    ]
    return max([0.0, *waits])
