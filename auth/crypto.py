"""Secrets of the access layer: generated tokens, their keyed hashes, password hashing, key encryption.

Every secret the portal hands out has a visible prefix (`pdp_cs_` client secret, `pdp_rt_` refresh
token, `pdp_ac_` authorization code, `pdp_key_` API key, `pdp_iat_` initial access token), so that a
leaked value is recognisable by secret scanners, and is stored only as HMAC-SHA256 keyed by a key
derived from PORTAL_SIGNING_SECRET: a stolen database alone does not let anyone use a credential.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

CLIENT_SECRET = "pdp_cs_"
REFRESH_TOKEN = "pdp_rt_"
AUTHORIZATION_CODE = "pdp_ac_"
API_KEY = "pdp_key_"
INITIAL_ACCESS_TOKEN = "pdp_iat_"

# scrypt (RFC 7914) is in the standard library and memory-hard; n=2^15 costs ~32 MiB and ~60 ms.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1


def derive_key(secret: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose, so that one leaked derived key does not expose the others."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
        secret.encode()
    )


def new_secret(prefix: str, nbytes: int = 32) -> str:
    return prefix + secrets.token_urlsafe(nbytes)


def new_id(nbytes: int = 12) -> str:
    return secrets.token_urlsafe(nbytes)


class SecretHasher:
    """Keyed hashes of handed-out secrets; the hash is what the database stores and looks up."""

    def __init__(self, signing_secret: str) -> None:
        self._key = derive_key(signing_secret, "portal token hashes v1")

    def hash(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()

    def matches(self, value: str, stored_hash: str | None) -> bool:
        """Constant-time check of a presented secret against a stored hash (also when none is stored)."""
        expected = stored_hash or "0" * 64
        return hmac.compare_digest(self.hash(value), expected) and stored_hash is not None


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, maxmem=64 * 1024 * 1024
    )
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${encoded[0]}${encoded[1]}"


# A fixed hash verified when the username is unknown, so that both cases take the same time.
_DUMMY_HASH = (
    f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}$"
    f"{base64.b64encode(bytes(16)).decode()}${base64.b64encode(bytes(64)).decode()}"
)


def verify_password(password: str, stored: str | None) -> bool:
    try:
        scheme, n, r, p, salt, digest = (stored or _DUMMY_HASH).split("$")
        if scheme != "scrypt":
            return False
        computed = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=64 * 1024 * 1024,
        )
    except ValueError:
        return False
    return hmac.compare_digest(computed, base64.b64decode(digest)) and stored is not None


class KeyVault:
    """Encrypts private signing keys at rest (AES-256-GCM with a key derived from the signing secret)."""

    def __init__(self, signing_secret: str) -> None:
        self._aead = AESGCM(derive_key(signing_secret, "portal signing keys v1"))

    def seal(self, plaintext: bytes, context: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def open(self, sealed: bytes, context: str) -> bytes:
        return self._aead.decrypt(sealed[:12], sealed[12:], context.encode())
