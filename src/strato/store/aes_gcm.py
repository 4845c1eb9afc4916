"""AES-256-GCM from the OpenSSL library the interpreter already links (libcrypto, via ctypes).

Python's ``hashlib`` and ``ssl`` are built on libcrypto, so a strato process has it mapped
before it seals anything; calling its EVP interface adds no library to the process. The
``cryptography`` wheel would map a second, statically linked OpenSSL (about 8 MB resident)
for the one primitive strato needs. The calls are OpenSSL's documented EVP AEAD sequence
(https://docs.openssl.org/3.0/man3/EVP_EncryptInit/, "AEAD Interface" and the GCM mode
section): init with key and 96-bit IV, associated data as an update without output, the
text, final, then the 16-byte tag out (sealing) or in before final (opening, where final
fails unless the tag authenticates everything).

OpenSSL 3 and 1.1 both serve (the EVP calls used have not changed). Every context is made
and freed within one call, so an ``AesGcm`` is safe to share between threads; ctypes
releases the GIL during each OpenSSL call.
"""

from __future__ import annotations

import ctypes
import functools

from strato.errors import ConfigError, SealedSecretError, StoreError

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
_CTRL_GCM_GET_TAG = 0x10  # EVP_CTRL_AEAD_GET_TAG
_CTRL_GCM_SET_TAG = 0x11  # EVP_CTRL_AEAD_SET_TAG
#: The names libcrypto goes by: OpenSSL 3, then 1.1 (else whatever the linker finds).
_NAMES = ("libcrypto.so.3", "libcrypto.so.1.1")


@functools.cache
def _libcrypto() -> ctypes.CDLL:
    """libcrypto with the signatures of the calls used (pointers as ``c_void_p``, so none is
    truncated to an int). The interpreter's own copy when it links one dynamically: hashlib
    is imported first, so the name resolves to the library already mapped."""
    import hashlib  # noqa: F401  (maps the interpreter's libcrypto, if it links one)

    lib = None
    for name in _NAMES:
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    else:  # another name: ask the linker (slower: it runs ldconfig)
        from ctypes.util import find_library

        found = find_library("crypto")
        lib = ctypes.CDLL(found) if found else None
    if lib is None:
        raise ConfigError("OpenSSL's libcrypto (libcrypto.so.3 or .1.1) is not installed: "
                          "strato needs it to seal environment variables at rest")
    # Output buffers go as addresses (``c_void_p``), inputs as bytes (``c_char_p``).
    pointer, integer, data = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    signatures: dict[str, tuple[list[type], type | None]] = {
        "EVP_CIPHER_CTX_new": ([], pointer),
        "EVP_CIPHER_CTX_free": ([pointer], None),
        "EVP_aes_256_gcm": ([], pointer),
        "EVP_CIPHER_CTX_ctrl": ([pointer, integer, integer, pointer], integer),
        "ERR_clear_error": ([], None),
    }
    for step in ("Encrypt", "Decrypt"):
        signatures[f"EVP_{step}Init_ex"] = ([pointer, pointer, pointer, data, data], integer)
        signatures[f"EVP_{step}Update"] = (
            [pointer, pointer, ctypes.POINTER(integer), data, integer], integer)
        signatures[f"EVP_{step}Final_ex"] = ([pointer, pointer, ctypes.POINTER(integer)], integer)
    for name, (arguments, result) in signatures.items():
        function = getattr(lib, name)
        function.argtypes, function.restype = arguments, result
    return lib


class AesGcm:
    """AES-256-GCM under one key, with 96-bit nonces and 16-byte tags (the format of
    ``cryptography``'s ``AESGCM``: ciphertext then tag). Raises ValueError unless ``key`` is
    32 bytes, and ConfigError if the host has no libcrypto. A failing OpenSSL call (never
    expected with valid arguments) raises StoreError."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"an AES-256 key is {KEY_BYTES} bytes, not {len(key)}")
        self._key = bytes(key)
        self._lib = _libcrypto()

    def encrypt(self, nonce: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
        """``plaintext`` encrypted, followed by the tag over it and ``associated_data``.
        The caller never reuses a ``nonce`` (12 bytes) under this key."""
        lib = self._lib
        ctx = self._begin("Encrypt", nonce)
        try:
            out = ctypes.create_string_buffer(len(plaintext) + TAG_BYTES)
            self._update("Encrypt", ctx, associated_data, plaintext, out)
            written = ctypes.c_int(0)
            tag = ctypes.create_string_buffer(TAG_BYTES)
            end = ctypes.addressof(out) + len(plaintext)
            if (lib.EVP_EncryptFinal_ex(ctx, end, ctypes.byref(written)) != 1
                    or lib.EVP_CIPHER_CTX_ctrl(ctx, _CTRL_GCM_GET_TAG, TAG_BYTES, tag) != 1):
                raise self._failure("EVP_EncryptFinal_ex")
            return out.raw[:len(plaintext)] + tag.raw
        finally:
            lib.EVP_CIPHER_CTX_free(ctx)

    def decrypt(self, nonce: bytes, sealed: bytes, associated_data: bytes) -> bytes:
        """The plaintext of ``sealed`` (ciphertext then tag, as ``encrypt`` returns it).
        Raises SealedSecretError, and returns nothing, unless the tag authenticates the
        ciphertext and ``associated_data`` under this key and ``nonce``."""
        if len(sealed) < TAG_BYTES:
            raise SealedSecretError(f"{len(sealed)} bytes are shorter than a tag")
        ciphertext, tag = sealed[:-TAG_BYTES], sealed[-TAG_BYTES:]
        lib = self._lib
        ctx = self._begin("Decrypt", nonce)
        try:
            out = ctypes.create_string_buffer(len(ciphertext) + TAG_BYTES)
            self._update("Decrypt", ctx, associated_data, ciphertext, out)
            if lib.EVP_CIPHER_CTX_ctrl(ctx, _CTRL_GCM_SET_TAG, TAG_BYTES, tag) != 1:
                raise self._failure("EVP_CTRL_AEAD_SET_TAG")
            written = ctypes.c_int(0)
            end = ctypes.addressof(out) + len(ciphertext)
            if lib.EVP_DecryptFinal_ex(ctx, end, ctypes.byref(written)) != 1:
                lib.ERR_clear_error()
                raise SealedSecretError("the tag does not authenticate the ciphertext")
            return out.raw[:len(ciphertext)]
        finally:
            lib.EVP_CIPHER_CTX_free(ctx)

    def _begin(self, step: str, nonce: bytes) -> int:
        """A new context for ``step`` (``Encrypt`` or ``Decrypt``) with the cipher, the key
        and ``nonce``; the caller frees it."""
        if len(nonce) != NONCE_BYTES:
            raise ValueError(f"a GCM nonce here is {NONCE_BYTES} bytes, not {len(nonce)}")
        init = getattr(self._lib, f"EVP_{step}Init_ex")
        ctx = self._lib.EVP_CIPHER_CTX_new()
        if not ctx:
            raise MemoryError("EVP_CIPHER_CTX_new")
        if init(ctx, self._lib.EVP_aes_256_gcm(), None, self._key, nonce) != 1:
            self._lib.EVP_CIPHER_CTX_free(ctx)
            raise self._failure(f"EVP_{step}Init_ex")
        return int(ctx)

    def _update(self, step: str, ctx: int, associated_data: bytes, text: bytes,
                out: ctypes.Array[ctypes.c_char]) -> None:
        """Feed ``associated_data`` (no output), then ``text`` into ``out``; GCM is a stream
        mode, so all of ``text``'s output is written here, none by final."""
        update = getattr(self._lib, f"EVP_{step}Update")
        written = ctypes.c_int(0)
        if associated_data and update(ctx, None, ctypes.byref(written), associated_data,
                                      len(associated_data)) != 1:
            raise self._failure(f"EVP_{step}Update")
        if text and (update(ctx, ctypes.addressof(out), ctypes.byref(written), text, len(text)) != 1
                     or written.value != len(text)):
            raise self._failure(f"EVP_{step}Update")

    def _failure(self, call: str) -> StoreError:
        """The error of a failed OpenSSL call; OpenSSL's error queue (which the interpreter's
        ssl and hashlib also read) is left empty."""
        self._lib.ERR_clear_error()
        return StoreError(f"OpenSSL's {call} failed")
