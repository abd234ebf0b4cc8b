"""Feishu's custom-bot signature against known answers that neither the plugin nor the
fake computed: a hard-coded vector, and openssl run on the documented scheme (base64 of
the HMAC-SHA256 keyed by "<timestamp>\\n<secret>" over an empty message)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import pytest
import requests
from notifier_feishu.signing import BodySignature, signature
from notifier_feishu.testing import BOT_SECRET, bot_signature

from notifier.clock import FakeClock
from notifier.redact import Secret

SECRET = "this is secret"
STAMP = 1_700_000_000
EXPECTED = "OfGzRzoUICBOoc8wVra1e4A1hPfbZ9zqXozA8CWVUuY="
SIGNERS = {"the plugin": signature, "the fake": bot_signature}


def openssl_sign(secret: str, stamp: int) -> str:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed; the hard-coded answer still checks the scheme")
    digest = subprocess.run(
        [openssl, "dgst", "-sha256", "-hmac", f"{stamp}\n{secret}", "-binary"],
        input=b"",
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    return base64.b64encode(digest).decode("ascii")


def test_the_hard_coded_answer_is_what_openssl_computes_from_the_documented_scheme():
    assert openssl_sign(SECRET, STAMP) == EXPECTED


@pytest.mark.parametrize("signer", SIGNERS.values(), ids=SIGNERS.keys())
def test_the_signature_is_the_known_answer(signer):
    assert signer(SECRET, STAMP) == EXPECTED


@pytest.mark.parametrize("signer", SIGNERS.values(), ids=SIGNERS.keys())
@pytest.mark.parametrize("secret", [SECRET, BOT_SECRET, "签名密钥"])
@pytest.mark.parametrize("stamp", [STAMP, 1_599_360_473])
def test_the_signature_agrees_with_openssl(signer, secret, stamp):
    assert signer(secret, stamp) == openssl_sign(secret, stamp)


def test_the_plugin_puts_the_known_answer_in_the_body():
    request = requests.Request(
        "POST", "https://open.feishu.cn/open-apis/bot/v2/hook/x", json={"msg_type": "text"}
    ).prepare()
    BodySignature(Secret(SECRET), clock=FakeClock(STAMP))(request)
    body = json.loads(request.body)
    assert body == {"msg_type": "text", "timestamp": str(STAMP), "sign": EXPECTED}
