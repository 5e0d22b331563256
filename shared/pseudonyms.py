"""Keyed pseudonyms for staff: stable per hospital and staff id, useless without the key.

Keys can be rotated: pseudonyms are made with today's key and recognised with the keys it
replaced, each named by its fingerprint (its key id), which travels with what was made with
it. Once nothing made with a retired key is kept, dropping that key makes whatever a topic
still holds of it unrecognisable for good.
"""

import hashlib
import hmac
import uuid
from dataclasses import dataclass


def key_fingerprint(key: bytes) -> str:
    """Names a key without giving it away: whether two processes use the same key."""
    return hmac.new(key, b"peer-support key fingerprint", hashlib.sha256).hexdigest()[:16]


def pseudonymise(key: bytes, hospital_id: str, staff_id: str) -> str:
    """HMAC-SHA256 over hospital and staff id, truncated to 128 bits (32 hex digits).

    The hospital is part of the input because staff ids are only unique within a hospital.
    """
    message = f"{hospital_id}\x1f{staff_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def case_salt(key: bytes, case_id: uuid.UUID) -> str:
    """A case's own salt: the same for every event of the case, unguessable without the key."""
    message = b"peer-support case salt " + case_id.bytes
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def settled_incident(key: bytes, incident_key: str) -> str:
    """What an incident is kept as once it settled: a late change to it is still recognised,
    yet without the key nobody reading the store learns which incident it was."""
    message = b"peer-support settled incident " + incident_key.encode()
    return "settled-" + hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def tagged(salt: str | None, pseudonym: str, key: bytes | None = None) -> str:
    """A pseudonym as one case's events carry it: two tagged with the same salt are equal only
    for the same person, and nothing links it to that person's other cases, or to the
    pseudonym itself once the case's records are gone. With `key` (`EXCLUSION_KEY`, which
    only intake and matching hold), nobody else can make a tag, even from the salt on the
    topic and a pseudonym; without (cases tagged before the key), the salt alone. No salt:
    the pseudonym as it is (events from before case salts)."""
    if salt is None:
        return pseudonym
    if key is None:
        return hmac.digest(bytes.fromhex(salt), pseudonym.encode(), "sha256").hex()[:32]
    return hmac.digest(key, bytes.fromhex(salt) + pseudonym.encode(), "sha256").hex()[:32]


@dataclass(frozen=True)
class PseudonymKeys:
    current: bytes
    retired: tuple[bytes, ...] = ()
    """Keys `current` replaced, still recognised: until every case opened with one has ended."""
    tag_key: bytes | None = None
    """`EXCLUSION_KEY`: what a case's tags of pseudonyms are made with (`tagged`)."""

    @property
    def key_id(self) -> str:
        return key_fingerprint(self.current)

    def by_id(self) -> dict[str, bytes]:
        """Today's key first."""
        return {key_fingerprint(key): key for key in (self.current, *self.retired)}

    def of(self, hospital_id: str, staff_id: str) -> str:
        return pseudonymise(self.current, hospital_id, staff_id)

    def every(self, hospital_id: str, staff_id: str) -> dict[str, str]:
        """The person's pseudonym under each key, by key id, today's first."""
        return {kid: pseudonymise(key, hospital_id, staff_id) for kid, key in self.by_id().items()}
