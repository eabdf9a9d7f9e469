"""Client passwords: stored only as salted scrypt hashes, compared in constant time, never logged.

Format: ``scrypt$<log2 n>$<r>$<p>$<salt hex>$<hash hex>`` (make one with ``oms gateway hash-password``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX = "scrypt"
DEFAULT_LOG2_N, DEFAULT_R, DEFAULT_P = 14, 8, 1
MAX_LOG2_N = 20


class CredentialError(ValueError):
    """A stored hash is malformed (a configuration error, never shown to the client)."""


def hash_password(password: str, *, log2_n: int = DEFAULT_LOG2_N, r: int = DEFAULT_R, p: int = DEFAULT_P) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, log2_n, r, p)
    return f"{PREFIX}${log2_n}${r}${p}${salt.hex()}${digest.hex()}"


def check_hash_format(stored: str) -> tuple[int, int, int, bytes, bytes]:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != PREFIX:
        raise CredentialError("expected scrypt$<log2 n>$<r>$<p>$<salt hex>$<hash hex>")
    try:
        log2_n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, digest = bytes.fromhex(parts[4]), bytes.fromhex(parts[5])
    except ValueError:
        raise CredentialError("numbers and hex expected") from None
    if not (1 <= log2_n <= MAX_LOG2_N and r > 0 and p > 0 and salt and digest):
        raise CredentialError("parameters out of range")
    return log2_n, r, p, salt, digest


def verify_password(password: str, stored: str) -> bool:
    log2_n, r, p, salt, digest = check_hash_format(stored)
    return hmac.compare_digest(_scrypt(password, salt, log2_n, r, p), digest)


def _scrypt(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    n = 1 << log2_n
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + (1 << 20), dklen=32)
