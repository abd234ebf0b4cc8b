"""DingTalk's robot signature against known answers that neither the plugin nor the fake
computed: a hard-coded vector, and openssl run on the documented scheme (base64 of the
HMAC-SHA256 of "<timestamp_ms>\\n<secret>" keyed by the secret, URL-encoded on the wire)."""

from __future__ import annotations

import base64
import shutil
import subprocess

import pytest
import requests
from notifier_dingtalk.auth import RobotAuth, signature
from notifier_dingtalk.testing import ROBOT_SECRET, robot_signature

from notifier.clock import FakeClock
from notifier.redact import Secret

SECRET = "this is secret"  # the secret in DingTalk's documented example
STAMP_MS = 1_700_000_000_001
EXPECTED = "aOZ0Y/R7BCg4xs87AcG5MYf26YmwfVRTLD0z3X+p/mM="
EXPECTED_ON_THE_WIRE = "aOZ0Y%2FR7BCg4xs87AcG5MYf26YmwfVRTLD0z3X%2Bp%2FmM%3D"
SIGNERS = {"the plugin": signature, "the fake": robot_signature}


def openssl_sign(secret: str, stamp_ms: int) -> str:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed; the hard-coded answers still check the scheme")
    digest = subprocess.run(
        [openssl, "dgst", "-sha256", "-hmac", secret, "-binary"],
        input=f"{stamp_ms}\n{secret}".encode(),
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    return base64.b64encode(digest).decode("ascii")


def test_the_hard_coded_answer_is_what_openssl_computes_from_the_documented_scheme():
    assert openssl_sign(SECRET, STAMP_MS) == EXPECTED


@pytest.mark.parametrize("signer", SIGNERS.values(), ids=SIGNERS.keys())
def test_the_signature_is_the_known_answer(signer):
    assert signer(SECRET, STAMP_MS) == EXPECTED


@pytest.mark.parametrize("signer", SIGNERS.values(), ids=SIGNERS.keys())
@pytest.mark.parametrize("secret", [SECRET, ROBOT_SECRET, "SEC秘密"])
@pytest.mark.parametrize("stamp_ms", [STAMP_MS, 1_577_262_236_757])
def test_the_signature_agrees_with_openssl(signer, secret, stamp_ms):
    assert signer(secret, stamp_ms) == openssl_sign(secret, stamp_ms)


def test_the_plugin_puts_the_known_answer_url_encoded_in_the_query():
    clock = FakeClock(STAMP_MS / 1000)
    request = requests.Request("POST", "https://oapi.dingtalk.com/robot/send").prepare()
    RobotAuth(Secret("token-1"), Secret(SECRET), clock=clock)(request)
    query = dict(p.split("=", 1) for p in request.url.split("?", 1)[1].split("&"))
    assert query["timestamp"] == str(STAMP_MS)
    assert query["sign"] == EXPECTED_ON_THE_WIRE
