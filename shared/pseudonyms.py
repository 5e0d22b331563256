"""Keyed pseudonyms for staff: stable per hospital and staff id, useless without the key."""

import hashlib
import hmac


def key_fingerprint(key: bytes) -> str:
    """Names a key without giving it away: whether two processes use the same key."""
    return hmac.new(key, b"peer-support key fingerprint", hashlib.sha256).hexdigest()[:16]


def pseudonymise(key: bytes, hospital_id: str, staff_id: str) -> str:
    """HMAC-SHA256 over hospital and staff id, truncated to 128 bits (32 hex digits).

    The hospital is part of the input because staff ids are only unique within a hospital.
    """
    message = f"{hospital_id}\x1f{staff_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]
