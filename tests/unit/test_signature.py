"""X-Hub-Signature-256 against a real Meta-delivered body and its real signature."""

from __future__ import annotations

import json

from coexist.meta.signature import is_valid, sign
from tests.conftest import FIXTURES

VECTOR = json.loads((FIXTURES / "signature" / "vector.json").read_text())
RAW = (FIXTURES / "signature" / VECTOR["raw_body_file"]).read_bytes()


def test_metas_test_vector_verifies():
    assert is_valid(RAW, VECTOR["x_hub_signature_256"], VECTOR["app_secret"])
    assert sign(RAW, VECTOR["app_secret"]) == VECTOR["x_hub_signature_256"]


def test_one_changed_byte_fails():
    tampered = RAW[:-2] + bytes([RAW[-2] ^ 1]) + RAW[-1:]
    assert not is_valid(tampered, VECTOR["x_hub_signature_256"], VECTOR["app_secret"])


def test_re_serialised_json_fails_because_bytes_matter():
    reserialised = json.dumps(json.loads(RAW)).encode()
    assert reserialised != RAW
    assert not is_valid(reserialised, VECTOR["x_hub_signature_256"], VECTOR["app_secret"])


def test_missing_malformed_or_wrong_secret_fail():
    header = VECTOR["x_hub_signature_256"]
    assert not is_valid(RAW, None, VECTOR["app_secret"])
    assert not is_valid(RAW, header.removeprefix("sha256="), VECTOR["app_secret"])
    assert not is_valid(RAW, "sha256=é" + header[8:], VECTOR["app_secret"])
    assert not is_valid(RAW, header, "another-secret")
    assert not is_valid(RAW, header, "")
