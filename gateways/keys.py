"""RSA keys and SHA256withRSA (PKCS#1 v1.5) signatures, on ``cryptography``:
what both Alipay (RSA2) and WeChat Pay (WECHATPAY2-SHA256-RSA2048) sign
with. Keys are read from PEM files named by the settings, once per process;
Alipay's own key files are often the bare base64 body without the PEM
armour, which is accepted too."""

from __future__ import annotations

import base64
import functools
import textwrap

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def _armoured(data: bytes, kind: str) -> bytes:
    text = data.decode("ascii", errors="strict").strip()
    if text.startswith("-----BEGIN"):
        return text.encode()
    body = "\n".join(textwrap.wrap("".join(text.split()), 64))
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n".encode()


@functools.lru_cache(maxsize=16)
def private_key(path: str) -> rsa.RSAPrivateKey:
    with open(path, "rb") as handle:
        key = serialization.load_pem_private_key(
            _armoured(handle.read(), "PRIVATE KEY"), password=None
        )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} is not an RSA private key")
    return key


@functools.lru_cache(maxsize=16)
def public_key(path: str) -> rsa.RSAPublicKey:
    with open(path, "rb") as handle:
        key = serialization.load_pem_public_key(_armoured(handle.read(), "PUBLIC KEY"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError(f"{path} is not an RSA public key")
    return key


def sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    """Base64 of SHA256withRSA over ``message``."""
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def verifies(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature or "", validate=True)
    except ValueError:
        return False
    try:
        key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True
