"""Tests for wildpy.passwords: Argon2id hashing and WildDuck hash import formats.

Every imported format is covered by (a) hashes generated in the test by an
implementation other than the verifier where one exists (hashlib for pbkdf2,
the bcrypt package, OpenSSL for md5/sha-crypt) and (b) fixed known-answer
literals taken from the format's spec/reference implementation or produced
by the same Node.js packages WildDuck uses.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
import shutil
import subprocess
import threading
import warnings

import argon2
import bcrypt
import pytest
from argon2.low_level import Type, hash_secret

from wildpy import passwords
from wildpy.passwords import (
    DEFAULT_SCHEME,
    hash_password,
    hash_password_async,
    identify_hash,
    is_insecure_password,
    is_supported_hash,
    needs_rehash,
    verify_password,
    verify_password_async,
)

with warnings.catch_warnings():
    # passlib imports the deprecated stdlib ``crypt`` on Python < 3.13.
    warnings.simplefilter("ignore", DeprecationWarning)
    from passlib.hash import des_crypt, md5_crypt, sha256_crypt, sha512_crypt

HORSE = "correct horse battery staple"


def _phc_b64(data: bytes) -> str:
    """Base64 as @phc/format writes it: standard alphabet, '=' padding cut off."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _wildduck_pbkdf2(password: str, salt: bytes, iterations: int, digest: str) -> str:
    """Build a hash the way WildDuck's @phc/pbkdf2 does, using only hashlib."""
    keylen = {"sha1": 20, "sha256": 32, "sha512": 64}[digest]
    dk = hashlib.pbkdf2_hmac(digest, password.encode(), salt, iterations, keylen)
    return f"$pbkdf2-{digest}$i={iterations}${_phc_b64(salt)}${_phc_b64(dk)}"


def _assert_verifies(password: str, stored: str) -> None:
    assert verify_password(password, stored), stored
    # Prefix, not suffix: DES crypt ignores everything after 8 characters.
    assert not verify_password("x" + password, stored), stored
    assert not verify_password("", stored), stored
    assert is_supported_hash(stored), stored
    # Imported (non-default) hashes are upgraded on the next login.
    assert needs_rehash(stored), stored


# --------------------------------------------------------------------------
# Argon2id (the default)
# --------------------------------------------------------------------------


def test_default_scheme() -> None:
    assert DEFAULT_SCHEME == "argon2id"


def test_hash_roundtrip_argon2id() -> None:
    stored = hash_password(HORSE)
    assert re.fullmatch(
        r"\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}", stored
    ), stored
    assert verify_password(HORSE, stored)
    assert not verify_password(HORSE.upper(), stored)
    assert not verify_password("", stored)
    assert identify_hash(stored) == "argon2id"
    assert is_supported_hash(stored)
    assert not needs_rehash(stored)


def test_hash_is_salted() -> None:
    assert hash_password("same") != hash_password("same")


def test_unicode_passwords_roundtrip() -> None:
    for pw in ("pässwörd €", "密码", "\U0001f600 emoji", " spaces ", "a\x00b"):
        stored = hash_password(pw)
        assert verify_password(pw, stored)
        assert not verify_password(pw[:-1], stored)


def test_lone_surrogate_is_hashed_like_node() -> None:
    # JSON can carry "\ud800"; Node encodes it as U+FFFD, and so do we.
    stored = hash_password("a\ud800b")
    assert verify_password("a\ud800b", stored)
    assert verify_password("a\ufffdb", stored)


def test_overlong_password() -> None:
    limit = passwords.MAX_PASSWORD_LENGTH
    stored = hash_password("x" * limit)
    assert verify_password("x" * limit, stored)
    with pytest.raises(ValueError):
        hash_password("x" * (limit + 1))
    assert not verify_password("x" * (limit + 1), stored)


def test_needs_rehash_argon2_params() -> None:
    assert not needs_rehash(hash_password("pw"))
    other = argon2.PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4)
    stored = other.hash("pw")
    assert verify_password("pw", stored)
    assert needs_rehash(stored)
    # Same cost, different output/salt length: still not "current".
    longer = argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, hash_len=64)
    assert needs_rehash(longer.hash("pw"))


@pytest.mark.parametrize("value", ["", "garbage", "$argon2id$", "$argon2id$v=19$m=1$x$y"])
def test_needs_rehash_unusable(value: str) -> None:
    assert needs_rehash(value)


# Known answers from the phc-winner-argon2 reference test suite (src/test.c):
# password "password", salt "somesalt", t=2, m=65536, p=1.
ARGON2_REFERENCE = [
    "$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$wWKIMhR9lyDFvRz9YTZweHKfbftvj+qf+YFY4NeBbtA",
    "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
    # Version 1.0 (0x10) has no "v=" field.
    "$argon2i$m=65536,t=2,p=1$c29tZXNhbHQ$9sTbSlTio3Biev89thdrlKKiCaYsjjYVJxGAL3swxpQ",
    # Same inputs, argon2d (computed with argon2-cffi's low-level API).
    "$argon2d$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$lV5dWxY6G2C7o1/DbQSWR0+6T2tZrVNihmbwf7L5Pq8",
]


@pytest.mark.parametrize("stored", ARGON2_REFERENCE)
def test_argon2_known_answers(stored: str) -> None:
    _assert_verifies("password", stored)
    assert identify_hash(stored) == stored.split("$")[1]


@pytest.mark.parametrize("kind", [Type.ID, Type.I, Type.D])
def test_argon2_generated(kind: Type) -> None:
    # argon2-browser (WildDuck) defaults: t=1, m=1024 KiB, p=1, 24-byte hash.
    stored = hash_secret(
        HORSE.encode(),
        secrets.token_bytes(16),
        time_cost=1,
        memory_cost=1024,
        parallelism=1,
        hash_len=24,
        type=kind,
    ).decode()
    _assert_verifies(HORSE, stored)


# --------------------------------------------------------------------------
# PBKDF2 (WildDuck's default format)
# --------------------------------------------------------------------------

# Produced by WildDuck's own hashing package under Node.js:
#   require('@phc/pbkdf2').hash('correct horse battery staple',
#                               {iterations, saltSize: 16, digest})
# (@phc/pbkdf2 1.1.14 with @phc/format 0.5.0).
PBKDF2_NODE = [
    "$pbkdf2-sha256$i=100000$EZWKghnDfVrvJMk4P6YmPA$yC3kDaFfD313uLW8Xtb2XbufLbU9bgR/xQpaRonDo6o",
    "$pbkdf2-sha1$i=1000$z3GBAHpWj+7XDh8YHhuYog$QrQrnSkAD1U5unWnIjub4M3Kamo",
    "$pbkdf2-sha512$i=1000$yNisaK04f04Cw2JYW9HVYA$kdqoIR/prUJps5dMoA+K0paKbuJ5NOqP0eGAKnzwANLY4"
    "hZ5CcJGs5YILRtt4S2ApICaSNYhfUUMDZc8rHRHeQ",
]

# Worked by hand, WildDuck semantics (DEFAULT_HASH_ALGO pbkdf2, sha256, i=100000):
#   salt    = b"wildduck-salt-16"                  (16 bytes)
#           -> base64 "d2lsZGR1Y2stc2FsdC0xNg=="  -> '=' stripped: "d2lsZGR1Y2stc2FsdC0xNg"
#   dk      = PBKDF2-HMAC-SHA256(b"correct horse battery staple", salt, 100000, dkLen=32)
#           -> base64 "SavX7y/oen9aqf977oePPfxMk1R8mhUuPot/akM5xa0=" -> '=' stripped
# Node's @phc/pbkdf2 verify() accepts this string too.
PBKDF2_BY_HAND = (
    "$pbkdf2-sha256$i=100000$d2lsZGR1Y2stc2FsdC0xNg$SavX7y/oen9aqf977oePPfxMk1R8mhUuPot/akM5xa0"
)


@pytest.mark.parametrize("stored", [*PBKDF2_NODE, PBKDF2_BY_HAND])
def test_pbkdf2_known_answers(stored: str) -> None:
    _assert_verifies(HORSE, stored)
    assert identify_hash(stored) == stored.split("$")[1]


def test_pbkdf2_by_hand_matches_hashlib() -> None:
    assert _wildduck_pbkdf2(HORSE, b"wildduck-salt-16", 100000, "sha256") == PBKDF2_BY_HAND


@pytest.mark.parametrize("digest", ["sha1", "sha256", "sha512"])
def test_pbkdf2_generated(digest: str) -> None:
    stored = _wildduck_pbkdf2("s3cret!", secrets.token_bytes(16), 1000, digest)
    _assert_verifies("s3cret!", stored)


def test_pbkdf2_both_base64_alphabets() -> None:
    # Salt bytes chosen so that its base64 is full of '+' (value 62).
    salt = b"\xfb\xef\xbe" * 5 + b"\x00"
    stored = _wildduck_pbkdf2("pw", salt, 1000, "sha256")
    salt_b64 = stored.split("$")[3]
    assert "+" in salt_b64
    _assert_verifies("pw", stored)
    # passlib's "adapted base64" writes '.' where standard base64 has '+'.
    _assert_verifies("pw", stored.replace("+", "."))


def test_pbkdf2_passlib_format() -> None:
    # From passlib's documentation: bare rounds field and ab64 encoding.
    _assert_verifies(
        "password",
        "$pbkdf2-sha256$6400$0ZrzXitFSGltTQnBWOsdAw$Y11AchqV4b0sUisdZd0Xr97KWoymNE0LNNrnEgY4H9M",
    )
    from passlib.hash import pbkdf2_sha512

    _assert_verifies("pw", pbkdf2_sha512.using(rounds=1000).hash("pw"))


# --------------------------------------------------------------------------
# bcrypt
# --------------------------------------------------------------------------

# OpenBSD / crypt_blowfish test vectors.
BCRYPT_REFERENCE = [
    ("U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
    ("U*U*", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK"),
    # Produced by bcryptjs (what WildDuck uses): bcrypt.hashSync(pw, 4).
    ("hunter2", "$2b$04$SCjyGhZW6yWLOe737ZMpPu8RyR/11BBF9p623N.iL1YhVh2BuweKO"),
    ("pässwörd €", "$2b$04$WA7EiWT/IzvzYawQAwo70OHcvLJEQAP9WQNK3LZNiQQPUmMO8SITy"),
]


@pytest.mark.parametrize(("password", "stored"), BCRYPT_REFERENCE)
def test_bcrypt_known_answers(password: str, stored: str) -> None:
    _assert_verifies(password, stored)
    assert identify_hash(stored) == "bcrypt"


def test_bcrypt_empty_password_vector() -> None:
    stored = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy"
    assert verify_password("", stored)
    assert not verify_password("x", stored)


@pytest.mark.parametrize("prefix", [b"2a", b"2b"])
def test_bcrypt_generated(prefix: bytes) -> None:
    stored = bcrypt.hashpw(b"s3cret!", bcrypt.gensalt(4, prefix=prefix)).decode()
    _assert_verifies("s3cret!", stored)
    # PHP's $2y$ is the same algorithm as $2b$.
    _assert_verifies("s3cret!", "$2y$" + stored[4:])


def test_bcrypt_long_password_truncated_like_bcryptjs() -> None:
    # bcryptjs.hashSync("x".repeat(80), 4): only the first 72 bytes count.
    stored = "$2b$04$cm63cRL9u.No9afPSpX2aucxGVQ9d4i1OilUI83EFfvgjWyNVgg3y"
    assert verify_password("x" * 80, stored)
    assert verify_password("x" * 72, stored)
    assert not verify_password("x" * 71, stored)


# --------------------------------------------------------------------------
# crypt(3) families: md5-crypt, sha256-crypt, sha512-crypt, DES
# --------------------------------------------------------------------------

# "Hello world!" vectors: sha-crypt ones are from Ulrich Drepper's
# "Unix crypt using SHA-256 and SHA-512" specification; the md5-crypt one is
# what glibc crypt() and `openssl passwd -1 -salt saltstri` both print.
CRYPT_REFERENCE = [
    ("md5-crypt", "$1$saltstri$YMyguxXMBpd2TEZ.vS/3q1"),
    ("sha256-crypt", "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"),
    (
        "sha256-crypt",
        "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA",
    ),
    (
        "sha512-crypt",
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoE"
        "OfaS35inz1",
    ),
    (
        "sha512-crypt",
        "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8v"
        "OuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
    ),
]


@pytest.mark.parametrize(("scheme", "stored"), CRYPT_REFERENCE)
def test_crypt_known_answers(scheme: str, stored: str) -> None:
    _assert_verifies("Hello world!", stored)
    assert identify_hash(stored) == scheme


# Traditional DES crypt; both printed by glibc crypt() (classic Unix examples).
DES_REFERENCE = [("password", "abJnggxhB/yWI"), ("test", "aaqPiZY5xR5l.")]


@pytest.mark.parametrize(("password", "stored"), DES_REFERENCE)
def test_des_crypt_known_answers(password: str, stored: str) -> None:
    _assert_verifies(password, stored)
    assert identify_hash(stored) == "des-crypt"


def test_des_crypt_uses_first_eight_characters() -> None:
    assert verify_password("password-and-more", "abJnggxhB/yWI")


@pytest.mark.parametrize(
    "stored_factory",
    [
        lambda: md5_crypt.hash("s3cret!"),
        lambda: sha256_crypt.using(rounds=5000).hash("s3cret!"),
        lambda: sha512_crypt.using(rounds=5000).hash("s3cret!"),
        lambda: sha512_crypt.using(rounds=20000).hash("s3cret!"),
        lambda: des_crypt.hash("s3cret!"),
    ],
    ids=["md5", "sha256", "sha512", "sha512-rounds", "des"],
)
def test_crypt_generated_with_passlib(stored_factory: object) -> None:
    assert callable(stored_factory)
    _assert_verifies("s3cret!", stored_factory())


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
@pytest.mark.parametrize("flag", ["-1", "-5", "-6"])
def test_crypt_generated_with_openssl(flag: str) -> None:
    # An implementation independent of passlib.
    salt = secrets.token_hex(4)
    out = subprocess.run(
        ["openssl", "passwd", flag, "-salt", salt, "s3cret!"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert out.startswith(f"${flag[1]}${salt}$")
    _assert_verifies("s3cret!", out)


def test_crypt_password_with_nul_is_a_plain_mismatch(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="wildpy.passwords"):
        assert not verify_password("pass\x00word", "abJnggxhB/yWI")
        assert not verify_password("a\x00", "$1$saltstri$YMyguxXMBpd2TEZ.vS/3q1")
    assert caplog.records == []


# --------------------------------------------------------------------------
# unsupported / malformed input
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plaintext",
        "password",
        "$unknown$abc$def",
        "$argon2$v=19$m=1024,t=1,p=1$c29tZXNhbHQ$abcdefghijklmnopqrstuv",
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ",  # no hash
        "$argon2id$v=19$m=x,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n",
        "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$pbkdf2$131000$0Pq/N6a09h4DoPS.V6pVig$iUAqFdPG6Hky5StutY.fWBh90Sk",  # passlib sha1 id
        "$pbkdf2-sha384$i=1000$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$pbkdf2-sha256$i=1000$c29tZXNhbHQ",
        "$pbkdf2-sha256$i=1000$c29tZXNhbHQ$",  # empty hash would match anything
        "$pbkdf2-sha256$i=1000$c29tZXNhbHQ$AAAA",  # 3-byte hash: too short
        "$pbkdf2-sha256$i=0$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$pbkdf2-sha256$i=01$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$pbkdf2-sha256$i=99999999999$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$pbkdf2-sha256$x=1000$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$pbkdf2-sha256$i=1000$c29t*XNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$pbkdf2-sha256$i=1000$c$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",  # bad length
        "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe",  # truncated
        "$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
        "$2a$\u0660\u0665$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",  # Arabic digits
        "$2a$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",  # absurd cost
        "$3$$8846f7eaee8fb117ad06bdd830b7586c",
        "$1$saltstri$YMyguxXMBpd2TEZ.vS/3q",  # truncated
        "$6$rounds=99999999$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI6"
        "8u4OTLiBFdcbYEdFCoEOfaS35inz1",
        "abJnggxhB/yW!",  # DES length, bad alphabet
        "abJnggxhB/yW",  # 12 characters
        "_J9..CCCCXBrJUJV154M",  # BSDi extended DES: not accepted by WildDuck
    ],
)
def test_unsupported_hashes(stored: str) -> None:
    assert not is_supported_hash(stored)
    assert identify_hash(stored) is None
    assert not verify_password("password", stored)
    assert not verify_password("", stored)
    assert needs_rehash(stored)


def test_random_garbage_never_raises() -> None:
    rng = secrets.SystemRandom()
    prefixes = [
        "",
        "$",
        "$argon2id$",
        "$argon2i$v=19$",
        "$pbkdf2-sha256$",
        "$pbkdf2-sha1$i=",
        "$2a$",
        "$2b$10$",
        "$1$",
        "$5$",
        "$6$rounds=",
        "$6$",
    ]
    alphabet = "$=,.+/-_abcdefxyzABCXYZ0123456789\x00\u00e9\u0660"
    for _ in range(2000):
        value = rng.choice(prefixes) + "".join(
            rng.choice(alphabet) for _ in range(rng.randrange(0, 90))
        )
        supported = is_supported_hash(value)
        assert verify_password("password", value) is False or supported
        assert isinstance(needs_rehash(value), bool)


def test_empty_stored_hash_means_no_password() -> None:
    assert not verify_password("", "")
    assert not verify_password("anything", "")


@pytest.mark.parametrize(
    "password", ["", "\x00", "\ud800", "x" * 100_000, "💥", "$2a$05$", "\n\r\t"]
)
@pytest.mark.parametrize(
    "stored",
    [
        ARGON2_REFERENCE[0],
        PBKDF2_BY_HAND,
        BCRYPT_REFERENCE[0][1],
        CRYPT_REFERENCE[0][1],
        CRYPT_REFERENCE[1][1],
        CRYPT_REFERENCE[3][1],
        DES_REFERENCE[0][1],
        "$argon2id$v=19$m=65536,t=2,p=1$!!!!$????",
        "$pbkdf2-sha256$i=1$$",
        "$2b$04$" + "\u00e9" * 53,
        "\x00" * 13,
        "$" * 13,
    ],
)
def test_verify_never_raises(password: str, stored: str) -> None:
    assert verify_password(password, stored) is False


def test_verifier_error_is_logged_without_secrets(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(secret: bytes, stored: str) -> bool:
        raise RuntimeError(f"leaky message {secret!r} {stored}")

    monkeypatch.setitem(passwords._VERIFIERS, "pbkdf2-sha256", boom)
    with caplog.at_level(logging.DEBUG, logger="wildpy.passwords"):
        assert not verify_password("hunter2-secret", PBKDF2_BY_HAND)
    assert caplog.records, "the unexpected error should be logged"
    text = caplog.text
    assert "hunter2-secret" not in text
    assert PBKDF2_BY_HAND not in text
    assert "RuntimeError" in text


# --------------------------------------------------------------------------
# insecure password list
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password", ["password", "123456", "qwerty", "iloveyou", "Password", "QWERTY", "#1bitch"]
)
def test_insecure_passwords(password: str) -> None:
    assert is_insecure_password(password)


@pytest.mark.parametrize(
    "password", [secrets.token_urlsafe(24), "Tr0ub4dor&3-horse-battery", "", " password"]
)
def test_not_insecure_passwords(password: str) -> None:
    assert not is_insecure_password(password)


def test_insecure_list_loaded_once_and_comments_skipped() -> None:
    entries = passwords._insecure_passwords()
    assert passwords._insecure_passwords() is entries  # cached
    assert len(entries) > 19_000
    assert not any(e.startswith("# ") or e == "#" or e == "" for e in entries)
    assert all(e == e.lower() for e in entries)
    # Header/licence lines must not turn into "passwords".
    assert not is_insecure_password("# Copyright (c) Django Software Foundation")


# --------------------------------------------------------------------------
# async wrappers
# --------------------------------------------------------------------------


async def test_async_roundtrip() -> None:
    stored = await hash_password_async(HORSE)
    assert await verify_password_async(HORSE, stored)
    assert not await verify_password_async("nope", stored)
    assert await verify_password_async(HORSE, PBKDF2_NODE[0])


async def test_async_runs_off_the_event_loop_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real_hash, real_verify = passwords.hash_password, passwords.verify_password

    def spy_hash(password: str) -> str:
        seen.append(threading.get_ident())
        return real_hash(password)

    def spy_verify(password: str, stored: str) -> bool:
        seen.append(threading.get_ident())
        return real_verify(password, stored)

    monkeypatch.setattr(passwords, "hash_password", spy_hash)
    monkeypatch.setattr(passwords, "verify_password", spy_verify)
    stored = await hash_password_async("pw")
    assert await verify_password_async("pw", stored)
    assert len(seen) == 2
    assert threading.get_ident() not in seen


@pytest.mark.parametrize(
    "config_string", ["$6$saltsalt", "$6$rounds=5000$saltsalt$", "$5$saltsalt$", "$1$salt$", "$1$s"]
)
def test_crypt_config_strings_hold_no_hash(config_string: str) -> None:
    """passlib (and libpass) parse a crypt(3) salt without its hash; such a "hash" would be
    accepted as imported and then fail every login with a verification error."""
    assert not is_supported_hash(config_string)
    assert verify_password("password", config_string) is False
