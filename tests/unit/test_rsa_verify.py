"""Our RSASSA-PKCS1-v1_5 verification (a pow() and a compare) agrees with ``cryptography``.

Verification is done without ``cryptography`` so that commands which only check
signatures do not load it; these tests hold it to the library's verdicts, on real
vectors and on forged or malformed signatures.
"""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, utils
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import TESTDATA
from ucimage.assertions import AssertionVerifyError, PrivateKey, PublicKey
from ucimage.assertions.crypto import SHA512_DIGEST_INFO, Signature

KEY_PEM = TESTDATA / "assertions" / "snap-sign" / "keys" / "testkey1.private.pem"
CONTENT = b"type: model\nauthority-id: test\n"


@pytest.fixture(scope="module")
def key() -> PrivateKey:
    return PrivateKey.from_pem(KEY_PEM.read_bytes())


def library_accepts(public: PublicKey, content: bytes, sig: Signature) -> bool:
    size = (public.n.bit_length() + 7) // 8
    try:
        public.to_crypto().verify(
            sig.value.to_bytes(size, "big"),
            sig.digest(content),
            padding.PKCS1v15(),
            utils.Prehashed(hashes.SHA512()),
        )
    except (InvalidSignature, ValueError, OverflowError):
        return False
    return True


def ours_accepts(public: PublicKey, content: bytes, sig: Signature) -> bool:
    try:
        public.verify(content, sig)
    except AssertionVerifyError:
        return False
    return True


def test_good_signature_verifies(key: PrivateKey) -> None:
    sig = key.sign(CONTENT)
    assert library_accepts(key.public_key(), CONTENT, sig)
    assert ours_accepts(key.public_key(), CONTENT, sig)


def test_other_content_fails(key: PrivateKey) -> None:
    sig = key.sign(CONTENT)
    other = CONTENT + b"x"
    # the hash tag would already tell: make it match so the RSA check itself decides
    forged = dataclasses.replace(sig, hash_tag=sig.digest(other)[:2])
    assert not library_accepts(key.public_key(), other, forged)
    with pytest.raises(AssertionVerifyError, match="crypto/rsa: verification error"):
        key.public_key().verify(other, forged)


@pytest.mark.parametrize("delta", [1, -1, 1 << 100])
def test_changed_signature_value_fails(key: PrivateKey, delta: int) -> None:
    sig = key.sign(CONTENT)
    bad = dataclasses.replace(sig, value=sig.value + delta)
    assert not ours_accepts(key.public_key(), CONTENT, bad)
    assert not library_accepts(key.public_key(), CONTENT, bad)


def test_signature_not_below_modulus_fails(key: PrivateKey) -> None:
    sig = key.sign(CONTENT)
    public = key.public_key()
    bad = dataclasses.replace(sig, value=sig.value + public.n)  # same value mod n
    if bad.value.bit_length() <= public.n.bit_length():
        assert not ours_accepts(public, CONTENT, bad)
    too_long = dataclasses.replace(sig, value=1 << (public.n.bit_length() + 8))
    with pytest.raises(AssertionVerifyError, match="signature is too long"):
        public.verify(CONTENT, too_long)


def test_exponent_one_key_is_refused(key: PrivateKey) -> None:
    # with e = 1 the "signature" is the encoded digest itself: anyone could make one
    public = PublicKey(key.public_key().n, 1)
    sig = key.sign(CONTENT)
    digest = sig.digest(CONTENT)
    size = (public.n.bit_length() + 7) // 8
    block = SHA512_DIGEST_INFO + digest
    em = b"\x00\x01" + b"\xff" * (size - len(block) - 3) + b"\x00" + block
    forged = dataclasses.replace(sig, value=int.from_bytes(em, "big"))
    assert not ours_accepts(public, CONTENT, forged)


def test_other_digest_info_is_refused(key: PrivateKey) -> None:
    # a block that is well formed for SHA-256 instead of SHA-512 must not pass
    sig = key.sign(CONTENT)
    d = key.to_crypto().private_numbers().d
    public = key.public_key()
    size = (public.n.bit_length() + 7) // 8
    sha256_info = bytes.fromhex("3031300d060960864801650304020105000420")
    block = sha256_info + hashlib.sha256(CONTENT).digest()
    em = b"\x00\x01" + b"\xff" * (size - len(block) - 3) + b"\x00" + block
    forged = dataclasses.replace(sig, value=pow(int.from_bytes(em, "big"), d, public.n))
    assert not ours_accepts(public, CONTENT, forged)
    assert not library_accepts(public, CONTENT, forged)


@settings(max_examples=60, deadline=None)
@given(value=st.integers(min_value=0, max_value=(1 << 4096) - 1))
def test_random_values_agree_with_the_library(key: PrivateKey, value: int) -> None:
    sig = dataclasses.replace(key.sign(CONTENT, style="snapd"), value=value)
    public = key.public_key()
    assert ours_accepts(public, CONTENT, sig) == library_accepts(public, CONTENT, sig)


def test_real_vectors_still_verify() -> None:
    # every signed vector of the corpus goes through PublicKey.verify in the chain checks
    from ucimage.assertions import decode

    root = TESTDATA / "assertions" / "canonical-root.account-key"
    a = decode(root.read_bytes())
    public = PublicKey.decode(a.body)
    assert ours_accepts(public, a.content, Signature.decode(a.signature))


@pytest.mark.parametrize(
    ("n_bits", "e_bits"),
    [
        (16392, 16),  # modulus over 16384 bits (OpenSSL's limit), e = 65537
        (4096, 31),  # exponent over 2**31 - 1 (Go's crypto/rsa limit)
        (16384, 16383),  # a huge exponent: minutes of pow() if unbounded
    ],
)
def test_oversized_keys_are_refused_at_once(n_bits: int, e_bits: int) -> None:
    import time

    n = (1 << (n_bits - 1)) | 1
    e = (1 << e_bits) + 1
    public = PublicKey(n, e)
    sig = Signature(0, 1, 10, b"", b"", b"", (1 << (n_bits - 2)) + 12345)
    sig = dataclasses.replace(sig, hash_tag=sig.digest(CONTENT)[:2])
    started = time.process_time()
    assert not ours_accepts(public, CONTENT, sig)
    assert time.process_time() - started < 0.5


def test_exponent_over_the_limit_is_refused_even_when_the_math_holds(key: PrivateKey) -> None:
    # a real signature under a key with e > 2**31 - 1: refused by the bound itself
    import math

    numbers = key.to_crypto().private_numbers()
    p, q = numbers.p, numbers.q
    phi = (p - 1) * (q - 1)
    e = (1 << 31) + 1
    while math.gcd(e, phi) != 1:
        e += 2
    n = p * q
    d = pow(e, -1, phi)
    sig = key.sign(CONTENT)
    digest = sig.digest(CONTENT)
    size = (n.bit_length() + 7) // 8
    block = SHA512_DIGEST_INFO + digest
    em = int.from_bytes(b"\x00\x01" + b"\xff" * (size - len(block) - 3) + b"\x00" + block, "big")
    forged = dataclasses.replace(sig, value=pow(em, d, n))
    assert pow(forged.value, e, n) == em  # the arithmetic alone would accept it
    assert not ours_accepts(PublicKey(n, e), CONTENT, forged)
