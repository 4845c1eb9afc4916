"""The sealing of secrets (``store.secretbox``) and the codec's sealed environment."""

from __future__ import annotations

import json
import secrets

import pytest

from strato.errors import SealedSecretError, StoreError
from strato.store.codec import (
    FORMAT,
    PLAINTEXT_FORMAT,
    JsonObject,
    decode_function_version,
    encode_function_version,
)
from strato.store.secretbox import KEY_BYTES, SecretBox
from tests.support.store_contracts import make_version

AD = b"function-environment fn $LATEST r1"


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(secrets.token_bytes(KEY_BYTES))


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


def test_round_trip(box: SecretBox) -> None:
    for plaintext in (b"", b"x", b'{"DB_PASSWORD":"hunter2"}', secrets.token_bytes(5000)):
        assert box.open(box.seal(plaintext, AD), AD) == plaintext


def test_the_format_is_version_nonce_ciphertext_tag(box: SecretBox) -> None:
    sealed = box.seal(b"secret", AD)
    assert sealed[0] == 1
    assert len(sealed) == 1 + 12 + len(b"secret") + 16
    assert b"secret" not in sealed


def test_every_seal_takes_a_fresh_nonce(box: SecretBox) -> None:
    sealed = {box.seal(b"same", AD) for _ in range(50)}
    assert len(sealed) == 50
    assert len({s[1:13] for s in sealed}) == 50


@pytest.mark.parametrize("where", ["nonce", "ciphertext", "tag"])
def test_any_altered_byte_is_refused(box: SecretBox, where: str) -> None:
    sealed = box.seal(b"0123456789", AD)
    index = {"nonce": 5, "ciphertext": 1 + 12 + 3, "tag": len(sealed) - 1}[where]
    with pytest.raises(SealedSecretError, match="failed authentication"):
        box.open(_flip(sealed, index), AD)


def test_other_associated_data_is_refused(box: SecretBox) -> None:
    sealed = box.seal(b"value", AD)
    for other in (b"", AD + b"x", AD.replace(b"fn", b"fo")):
        with pytest.raises(SealedSecretError):
            box.open(sealed, other)


def test_another_key_is_refused(box: SecretBox) -> None:
    sealed = box.seal(b"value", AD)
    with pytest.raises(SealedSecretError, match="another master key"):
        SecretBox(secrets.token_bytes(KEY_BYTES)).open(sealed, AD)


def test_an_unknown_version_byte_is_refused(box: SecretBox) -> None:
    sealed = box.seal(b"value", AD)
    for version in (0, 2, 255):
        with pytest.raises(SealedSecretError, match="unknown sealed format version"):
            box.open(bytes([version]) + sealed[1:], AD)
    with pytest.raises(SealedSecretError, match="version none"):
        box.open(b"", AD)


def test_a_truncated_seal_is_refused(box: SecretBox) -> None:
    sealed = box.seal(b"value", AD)
    for length in (1, 13, 28, len(sealed) - 1):
        with pytest.raises(SealedSecretError):
            box.open(sealed[:length], AD)


def test_a_key_must_be_32_bytes() -> None:
    for length in (0, 16, 24, 31, 33):
        with pytest.raises(ValueError, match="32 bytes"):
            SecretBox(b"k" * length)


# the codec --------------------------------------------------------------------------------

def test_an_encoded_record_holds_no_variable_in_plaintext(box: SecretBox) -> None:
    record = make_version("fn", environment={"DB_PASSWORD": "hunter2-plain", "EMPTY": ""})
    text = json.dumps(encode_function_version(record, box))
    assert "hunter2-plain" not in text and "DB_PASSWORD" not in text
    assert decode_function_version(json.loads(text), box) == record


def test_a_record_without_variables_round_trips(box: SecretBox) -> None:
    record = make_version("fn")
    assert decode_function_version(encode_function_version(record, box), box) == record


def test_a_sealed_environment_moved_to_another_record_does_not_open(box: SecretBox) -> None:
    secret = encode_function_version(make_version("a", environment={"K": "secret"}), box)
    for other in (make_version("b"), make_version("a", version="1"), make_version("a")):
        target = encode_function_version(other, box)
        target["environment_sealed"] = secret["environment_sealed"]
        with pytest.raises(SealedSecretError, match="does not open"):
            decode_function_version(target, box)


def test_a_record_sealed_under_another_key_does_not_open(box: SecretBox) -> None:
    data = encode_function_version(make_version("fn", environment={"K": "v"}), box)
    with pytest.raises(SealedSecretError):
        decode_function_version(data, SecretBox(secrets.token_bytes(KEY_BYTES)))


def test_a_sealed_environment_that_is_not_base64_is_corrupt(box: SecretBox) -> None:
    data = encode_function_version(make_version("fn"), box)
    data["environment_sealed"] = "not base64!"
    with pytest.raises(StoreError, match="corrupt function record"):
        decode_function_version(data, box)


def test_a_plaintext_record_of_format_1_is_still_read(box: SecretBox) -> None:
    record = make_version("fn", environment={"K": "v"})
    data: JsonObject = dict(encode_function_version(record, box))
    assert data.pop("format") == FORMAT
    del data["environment_sealed"]
    data.update(format=PLAINTEXT_FORMAT, environment={"K": "v"})
    assert decode_function_version(data, box) == record
