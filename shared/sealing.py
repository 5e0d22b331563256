"""Sealing a case's contact details to that case's own key (crypto-shredding).

Contact details must travel on a topic, and a topic is kept for its retention and can be
replayed. So notify makes one key pair per case and keeps the private half in its database;
intake seals the contact to the public half (HPKE, RFC 9180). When notify erases the case it
deletes the private key, and every copy of the contact left on the topic is unreadable.
"""

import base64
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
RAW = serialization.Encoding.Raw


class Unsealable(ValueError):
    """Not sealed to this key, or sealed for another case."""


def _info(case_id: uuid.UUID) -> bytes:
    """Binds a sealed contact to its case: it cannot be passed off as another case's."""
    return b"peer-support contact v1 " + case_id.bytes


def new_case_key() -> tuple[bytes, str]:
    """A private key to keep (raw bytes) and its public half to publish (base64)."""
    private = x25519.X25519PrivateKey.generate()
    public = private.public_key().public_bytes(RAW, serialization.PublicFormat.Raw)
    raw = private.private_bytes(RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return raw, base64.b64encode(public).decode()


def seal(public_key: str, case_id: uuid.UUID, plaintext: bytes) -> str:
    public = x25519.X25519PublicKey.from_public_bytes(base64.b64decode(public_key))
    return base64.b64encode(SUITE.encrypt(plaintext, public, info=_info(case_id))).decode()


def unseal(private_key: bytes, case_id: uuid.UUID, sealed: str) -> bytes:
    private = x25519.X25519PrivateKey.from_private_bytes(private_key)
    try:
        return SUITE.decrypt(base64.b64decode(sealed), private, info=_info(case_id))
    except (InvalidTag, ValueError) as error:
        raise Unsealable(f"the contact of case {case_id} is not sealed to its key") from error
