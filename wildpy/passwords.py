"""Password hashing, verification and the insecure-password check.

New passwords are always hashed with Argon2id (PHC string format).  Hashes
imported from WildDuck (``hashedPassword: true`` on user create/update, or a
database migrated from WildDuck) are verified in their original format and
:func:`needs_rehash` reports ``True`` for them, so the caller can replace the
stored value with an Argon2id hash after the next successful login - the same
"upgrade on login" WildDuck itself does (it re-hashes to pbkdf2).

Formats accepted by :func:`verify_password` and :func:`is_supported_hash`:

* ``$argon2id$`` / ``$argon2i$`` / ``$argon2d$`` PHC strings (with or without
  ``v=``),
* ``$pbkdf2-sha1$`` / ``$pbkdf2-sha256$`` / ``$pbkdf2-sha512$`` as written by
  the ``@phc/pbkdf2`` npm package WildDuck uses (``i=<iterations>``, salt and
  hash in standard base64 without padding); passlib's variant (bare iteration
  count, "adapted" base64 with ``.`` instead of ``+``) is accepted as well,
* bcrypt ``$2a$`` / ``$2b$`` / ``$2y$``,
* md5-crypt ``$1$``, sha256-crypt ``$5$`` and sha512-crypt ``$6$`` (optional
  ``rounds=``),
* traditional 13-character DES crypt.

Anything else is "unsupported": it never verifies and is rejected as
``hashedPassword`` input.  An empty stored value means "no password set" and
never verifies either.

Nothing in this module logs a password or a hash.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import hmac
import logging
import re
from collections.abc import Callable
from importlib import resources
from typing import Any, Final, NamedTuple

import argon2
import bcrypt
from argon2.exceptions import InvalidHashError, VerificationError

# passlib is only used for the legacy crypt(3) families (md5-crypt, sha-crypt,
# DES), and comes from libpass, its maintained fork under the same import name
# (passlib itself has had no release since 2020).  libpass never touches the
# stdlib ``crypt`` module (deprecated, gone in 3.13): it always uses its
# pure-Python implementations, the same results a few times slower.  It is
# deliberately NOT used for bcrypt: the bcrypt package is called directly, with
# its own 72-byte rule (bcrypt 5 rejects longer secrets).
from passlib.hash import des_crypt, md5_crypt, sha256_crypt, sha512_crypt

__all__ = [
    "ARGON2_MEMORY_COST",
    "ARGON2_PARALLELISM",
    "ARGON2_TIME_COST",
    "DEFAULT_SCHEME",
    "MAX_PASSWORD_LENGTH",
    "hash_password",
    "hash_password_async",
    "identify_hash",
    "is_insecure_password",
    "is_supported_hash",
    "needs_rehash",
    "verify_password",
    "verify_password_async",
]

logger = logging.getLogger(__name__)

DEFAULT_SCHEME: Final = "argon2id"

# Argon2id parameters: OWASP Password Storage Cheat Sheet's first option
# (m=19 MiB, t=2, p=1) rather than argon2-cffi's RFC 9106 "low memory" default
# (m=64 MiB, t=3, p=4).  A mail server verifies passwords far more often than a
# web app - every IMAP/POP3/SMTP connection authenticates, and clients
# reconnect constantly - on a small box (2 cores).  The OWASP profile costs
# ~18 ms and 19 MiB per verification here versus ~90 ms and 64 MiB, so a burst
# of logins cannot exhaust memory or starve the thread pool, while still being
# a memory-hard setting OWASP rates as adequate.  Changing these makes
# needs_rehash() report every existing hash, which then upgrades on login.
ARGON2_TIME_COST: Final = 2
ARGON2_MEMORY_COST: Final = 19456  # KiB
ARGON2_PARALLELISM: Final = 1
ARGON2_HASH_LEN: Final = 32
ARGON2_SALT_LEN: Final = 16

_HASHER: Final = argon2.PasswordHasher(
    time_cost=ARGON2_TIME_COST,
    memory_cost=ARGON2_MEMORY_COST,
    parallelism=ARGON2_PARALLELISM,
    hash_len=ARGON2_HASH_LEN,
    salt_len=ARGON2_SALT_LEN,
    type=argon2.Type.ID,
)

# WildDuck's API caps passwords at 256 characters; anything much longer than
# that is not a password but an attempt to make the KDF (sha-crypt cost grows
# with the password length) do extra work.
MAX_PASSWORD_LENGTH: Final = 4096

# Upper bounds on the work factors of *imported* hashes.  They are far above
# anything used in practice (WildDuck: pbkdf2 i=100000, bcrypt cost 11; glibc
# sha-crypt default 5000 rounds, passlib's 656000) and exist only so that a
# hash stored by mistake or malice cannot pin a worker thread for minutes or
# allocate gigabytes on every login attempt.
_MAX_PBKDF2_ITERATIONS: Final = 10_000_000
_MIN_PBKDF2_HASH_BYTES: Final = 16  # an empty/short derived key would match (almost) anything
_MAX_BCRYPT_COST: Final = 16
_MAX_SHA_CRYPT_ROUNDS: Final = 1_000_000
_MAX_ARGON2_MEMORY_KIB: Final = 2 * 1024 * 1024  # RFC 9106's largest profile
_MAX_ARGON2_TIME_COST: Final = 32
_MAX_ARGON2_PARALLELISM: Final = 64

_ARGON2_PREFIXES: Final = ("$argon2id$", "$argon2i$", "$argon2d$")
_PBKDF2_DIGESTS: Final = {"sha1": "sha1", "sha256": "sha256", "sha512": "sha512"}
_HASH_CHARS_RE: Final = re.compile(r"[!-~]+")
_BCRYPT_RE: Final = re.compile(r"\$2[aby]\$([0-9]{2})\$[./A-Za-z0-9]{53}")
_DES_CRYPT_RE: Final = re.compile(r"[./0-9A-Za-z]{13}")
# PHC base64 as @phc/format's regex allows it: standard alphabet, plus '.'
# (passlib's "adapted base64") and '-' (Node's Buffer decodes URL-safe '-').
_PHC_B64_RE: Final = re.compile(r"[A-Za-z0-9+/.\-]*")
_TO_STD_B64: Final = str.maketrans({".": "+", "-": "+"})
_DECIMAL_RE: Final = re.compile(r"[1-9][0-9]*")

_CRYPT_HANDLERS: Final[dict[str, Any]] = {
    "md5-crypt": md5_crypt,
    "sha256-crypt": sha256_crypt,
    "sha512-crypt": sha512_crypt,
    "des-crypt": des_crypt,
}


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _encode(password: str) -> bytes:
    """UTF-8 encode *password* the way Node.js (WildDuck) does.

    A JSON body can carry lone surrogates (``"\\ud800"``) that strict UTF-8
    encoding rejects.  Node turns each one into U+FFFD, so doing the same keeps
    imported hashes verifiable and means hashing never fails on such input.
    """
    try:
        return password.encode("utf-8")
    except UnicodeEncodeError:
        # Round-trip through UTF-16: joins surrogate pairs, replaces lone ones.
        utf16 = password.encode("utf-16-le", "surrogatepass")
        return utf16.decode("utf-16-le", "replace").encode("utf-8")


def _b64decode_phc(text: str) -> bytes | None:
    """Decode unpadded PHC base64 (standard or passlib-adapted alphabet)."""
    if not _PHC_B64_RE.fullmatch(text) or len(text) % 4 == 1:
        return None
    # '.' (passlib) and '-' (URL-safe) both stand for value 62, i.e. '+'.
    normalised = text.translate(_TO_STD_B64)
    try:
        return base64.b64decode(normalised + "=" * (-len(normalised) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


class _Pbkdf2Hash(NamedTuple):
    """A parsed ``$pbkdf2-<digest>$...`` string."""

    digest: str
    iterations: int
    salt: bytes
    checksum: bytes


def _parse_pbkdf2(stored: str) -> _Pbkdf2Hash | None:
    # ['', 'pbkdf2-sha256', 'i=100000', salt, hash]
    fields = stored.split("$")
    if len(fields) != 5 or fields[0] != "":
        return None
    scheme, params, salt_text, hash_text = fields[1:]
    if not scheme.startswith("pbkdf2-"):
        return None
    digest = _PBKDF2_DIGESTS.get(scheme[len("pbkdf2-") :])
    if digest is None:
        return None

    # @phc/pbkdf2 writes "i=N" (other params are ignored, as it does);
    # passlib writes the bare number.
    iterations_text: str | None
    if _DECIMAL_RE.fullmatch(params):
        iterations_text = params
    else:
        iterations_text = None
        for item in params.split(","):
            key, sep, value = item.partition("=")
            if not sep:
                return None
            if key == "i":
                iterations_text = value
    if iterations_text is None or not _DECIMAL_RE.fullmatch(iterations_text):
        return None
    iterations = int(iterations_text)
    if iterations > _MAX_PBKDF2_ITERATIONS:
        return None

    salt = _b64decode_phc(salt_text)
    checksum = _b64decode_phc(hash_text)
    if salt is None or checksum is None or len(checksum) < _MIN_PBKDF2_HASH_BYTES:
        return None
    return _Pbkdf2Hash(digest, iterations, salt, checksum)


def _argon2_params_ok(stored: str) -> bool:
    try:
        params = argon2.extract_parameters(stored)
    except Exception:  # untrusted input: any parse failure means "unsupported"
        return False
    return (
        1 <= params.time_cost <= _MAX_ARGON2_TIME_COST
        and 1 <= params.parallelism <= _MAX_ARGON2_PARALLELISM
        and 8 * params.parallelism <= params.memory_cost <= _MAX_ARGON2_MEMORY_KIB
        and params.hash_len >= 4
        and params.salt_len >= 8
    )


def _crypt_params_ok(scheme: str, stored: str) -> bool:
    handler = _CRYPT_HANDLERS[scheme]
    try:
        parsed = handler.from_string(stored)
    except Exception:  # untrusted input: any parse failure means "unsupported"
        return False
    if not parsed.checksum:
        # a bare "config string" ("$6$salt"): passlib parses it, but it holds no hash, so no
        # password can ever match it
        return False
    if scheme in ("sha256-crypt", "sha512-crypt"):
        return int(parsed.rounds) <= _MAX_SHA_CRYPT_ROUNDS
    return True


def identify_hash(value: str) -> str | None:
    """Return the scheme name of a stored hash, or ``None`` if unsupported.

    Names: ``argon2id``, ``argon2i``, ``argon2d``, ``pbkdf2-sha1``,
    ``pbkdf2-sha256``, ``pbkdf2-sha512``, ``bcrypt``, ``md5-crypt``,
    ``sha256-crypt``, ``sha512-crypt``, ``des-crypt``.  The whole string is
    validated (structure, encodings, sane work factors), not just the prefix.
    """
    # Every supported format is printable ASCII without spaces; checking that
    # first also keeps stray newlines and Unicode digits out of the parsers.
    if not isinstance(value, str) or not _HASH_CHARS_RE.fullmatch(value):
        return None
    if value.startswith(_ARGON2_PREFIXES):
        return value[1 : value.index("$", 1)] if _argon2_params_ok(value) else None
    if value.startswith("$pbkdf2-"):
        parsed = _parse_pbkdf2(value)
        return f"pbkdf2-{parsed.digest}" if parsed is not None else None
    if value.startswith("$2"):
        match = _BCRYPT_RE.fullmatch(value)
        if match is None or not 4 <= int(match.group(1)) <= _MAX_BCRYPT_COST:
            return None
        return "bcrypt"
    if value.startswith("$1$"):
        scheme = "md5-crypt"
    elif value.startswith("$5$"):
        scheme = "sha256-crypt"
    elif value.startswith("$6$"):
        scheme = "sha512-crypt"
    elif _DES_CRYPT_RE.fullmatch(value):
        scheme = "des-crypt"
    else:
        return None
    return scheme if _crypt_params_ok(scheme, value) else None


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """Hash *password* with Argon2id, returning a PHC string.

    Raises ``ValueError`` if the password is longer than
    :data:`MAX_PASSWORD_LENGTH` characters (such a password could never be
    verified, see :func:`verify_password`).
    """
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"password longer than {MAX_PASSWORD_LENGTH} characters")
    return _HASHER.hash(_encode(password))


def _verify_pbkdf2(secret: bytes, stored: str) -> bool:
    parsed = _parse_pbkdf2(stored)
    if parsed is None:
        return False
    # Like @phc/pbkdf2: the derived key length is the stored hash's length.
    candidate = hashlib.pbkdf2_hmac(
        parsed.digest, secret, parsed.salt, parsed.iterations, len(parsed.checksum)
    )
    return hmac.compare_digest(candidate, parsed.checksum)


def _verify_bcrypt(secret: bytes, stored: str) -> bool:
    # bcrypt only ever uses the first 72 bytes; bcryptjs (WildDuck) and
    # OpenBSD truncate silently, bcrypt>=5 raises instead, so truncate here.
    # checkpw compares in constant time and handles $2a$/$2b$/$2y$.
    return bcrypt.checkpw(secret[:72], stored.encode("ascii"))


def _verify_argon2(secret: bytes, stored: str) -> bool:
    try:
        # argon2-cffi picks the variant (id/i/d) from the hash itself and
        # compares in constant time inside libargon2.
        return _HASHER.verify(stored, secret)
    except (VerificationError, InvalidHashError):
        return False


def _verify_crypt(scheme: str) -> Callable[[bytes, str], bool]:
    handler = _CRYPT_HANDLERS[scheme]

    def verify(secret: bytes, stored: str) -> bool:
        # crypt(3) takes a C string, so no such hash can contain a NUL byte
        # (passlib raises for one); that is a plain mismatch, not an error.
        if b"\x00" in secret:
            return False
        # passlib compares with its constant-time consteq().
        return bool(handler.verify(secret, stored))

    return verify


_VERIFIERS: Final[dict[str, Callable[[bytes, str], bool]]] = {
    "argon2id": _verify_argon2,
    "argon2i": _verify_argon2,
    "argon2d": _verify_argon2,
    "pbkdf2-sha1": _verify_pbkdf2,
    "pbkdf2-sha256": _verify_pbkdf2,
    "pbkdf2-sha512": _verify_pbkdf2,
    "bcrypt": _verify_bcrypt,
    **{scheme: _verify_crypt(scheme) for scheme in _CRYPT_HANDLERS},
}


def verify_password(password: str, stored: str) -> bool:
    """Check *password* against a stored hash in any supported format.

    Returns ``False`` - never raises - for a wrong password, an empty stored
    value (no password set), an unsupported or malformed hash, or an
    over-long password.  All hash comparisons are constant-time.
    """
    if not stored or not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
        return False
    scheme = identify_hash(stored)
    if scheme is None:
        return False
    try:
        return _VERIFIERS[scheme](_encode(password), stored)
    except Exception as exc:  # a verifier must never turn a login into a 500
        # Only the scheme and the exception type: messages may quote the hash.
        logger.warning("password verification error (%s): %s", scheme, type(exc).__name__)
        return False


def needs_rehash(stored: str) -> bool:
    """Whether *stored* should be replaced by a fresh :func:`hash_password`.

    ``True`` for every hash that is not Argon2id with exactly the current
    parameters - including all imported WildDuck formats - so callers can
    upgrade the stored value after a successful :func:`verify_password`.
    """
    if not stored or not stored.startswith("$argon2id$"):
        return True
    try:
        return _HASHER.check_needs_rehash(stored)
    except Exception:  # unparseable: replace it if it ever verifies (it won't)
        return True


def is_supported_hash(value: str) -> bool:
    """Whether *value* is a hash this module can verify.

    For validating ``hashedPassword: true`` input on user create/update.
    """
    return identify_hash(value) is not None


@functools.cache
def _insecure_passwords() -> frozenset[str]:
    # Loaded on first use only (~20k entries, ~160 KB); cached for the process.
    text = (
        resources.files("wildpy")
        .joinpath("data/insecure-passwords.txt")
        .read_text(encoding="utf-8")
    )
    # "#" followed by a space (or alone) starts a comment line; a bare "#" prefix
    # is not enough because some listed passwords begin with "#".
    return frozenset(
        line for line in text.splitlines() if line and line != "#" and not line.startswith("# ")
    )


def is_insecure_password(password: str) -> bool:
    """Whether *password* is on the bundled list of common breached passwords.

    Matches exactly or in lower case (the list itself is lower-cased), so
    ``Password`` and ``QWERTY`` count as well.
    """
    passwords = _insecure_passwords()
    return password in passwords or password.lower() in passwords


async def hash_password_async(password: str) -> str:
    """:func:`hash_password` in a worker thread, keeping the event loop free."""
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password: str, stored: str) -> bool:
    """:func:`verify_password` in a worker thread, keeping the event loop free."""
    return await asyncio.to_thread(verify_password, password, stored)
