"""AES-256-GCM through libcrypto (``store.aes_gcm``): the published test vectors, byte for byte
what ``cryptography``'s AESGCM makes (so stores sealed before keep opening), and refusals."""

from __future__ import annotations

import ctypes
import secrets

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strato.errors import SealedSecretError
from strato.store.aes_gcm import AesGcm, _libcrypto

# The GCM specification's AES-256 cases with a 96-bit IV (McGrew and Viega, "The Galois/Counter
# Mode of Operation", test cases 13, 14 and 16): key, IV, plaintext, AAD, ciphertext, tag.
VECTORS = [
    ("00" * 32, "00" * 12, "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"),
    ("00" * 32, "00" * 12, "00" * 16, "", "cea7403d4d606b6e074ec5d3baf39d18",
     "d0d1c8a799996bf0265b98b5d48ab919"),
    ("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"),
]


@pytest.mark.parametrize(("key", "iv", "plaintext", "aad", "ciphertext", "tag"), VECTORS)
def test_the_specifications_vectors(key: str, iv: str, plaintext: str, aad: str,
                                    ciphertext: str, tag: str) -> None:
    aead = AesGcm(bytes.fromhex(key))
    sealed = aead.encrypt(bytes.fromhex(iv), bytes.fromhex(plaintext), bytes.fromhex(aad))
    assert sealed.hex() == ciphertext + tag
    assert aead.decrypt(bytes.fromhex(iv), sealed, bytes.fromhex(aad)).hex() == plaintext


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 255, 4096, 70_000])
def test_the_same_bytes_as_cryptography(size: int) -> None:
    key, nonce = secrets.token_bytes(32), secrets.token_bytes(12)
    plaintext, aad = secrets.token_bytes(size), secrets.token_bytes(size % 41)
    theirs = AESGCM(key).encrypt(nonce, plaintext, aad)
    assert AesGcm(key).encrypt(nonce, plaintext, aad) == theirs
    assert AesGcm(key).decrypt(nonce, theirs, aad) == plaintext


def _refused(aead: AesGcm, nonce: bytes, sealed: bytes, aad: bytes) -> None:
    with pytest.raises(SealedSecretError):
        aead.decrypt(nonce, sealed, aad)
    # OpenSSL's error queue, which the interpreter's ssl and hashlib read too, is left empty.
    peek = _libcrypto().ERR_peek_error
    peek.restype = ctypes.c_ulong
    assert peek() == 0


def test_anything_altered_is_refused() -> None:
    key, nonce = secrets.token_bytes(32), secrets.token_bytes(12)
    aead = AesGcm(key)
    sealed = aead.encrypt(nonce, b"the secret", b"bound to")
    for index in range(len(sealed)):
        altered = sealed[:index] + bytes([sealed[index] ^ 0x80]) + sealed[index + 1:]
        _refused(aead, nonce, altered, b"bound to")
    _refused(aead, nonce, sealed, b"bound to another")
    _refused(aead, secrets.token_bytes(12), sealed, b"bound to")
    _refused(AesGcm(secrets.token_bytes(32)), nonce, sealed, b"bound to")
    _refused(aead, nonce, sealed[:-1], b"bound to")
    _refused(aead, nonce, sealed[:15], b"bound to")


def test_sizes_are_checked() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        AesGcm(b"short")
    with pytest.raises(ValueError, match="12 bytes"):
        AesGcm(secrets.token_bytes(32)).encrypt(b"\x00" * 16, b"x", b"")
