"""Pure helpers for e-mail addresses, domains, usernames and forward targets.

Nothing here does I/O. The services use these functions to turn what a client sent into the
normalised forms that are stored and indexed, the same way every time:

* ``address``  -- what the client sees: local part NFC-normalised and lowercased, ``@``, and the
  domain in its Unicode form (punycode ``xn--`` labels are decoded), see :func:`normalize_address`.
* ``addrview`` -- the unique key of an address: the normalised address with the dots removed from
  the local part (WildDuck's ``uview``), see :func:`address_view`.
* ``unameview`` -- the unique key of a username, see :func:`username_view`.

IDN domains are stored in Unicode form so that ``user@müller.de`` and ``user@xn--mller-kva.de`` are
the same address, whichever spelling was used to create it or to look it up.

Wildcard addresses (``allow_wildcard``) come in four forms, see :func:`parse_address`:

* ``*@domain``        -- catch-all for a domain                 (kind ``"domain"``)
* ``*suffix@domain``  -- any local part ending in ``suffix``      (kind ``"suffix"``)
* ``prefix*@domain``  -- any local part starting with ``prefix``  (kind ``"prefix"``)
* ``user@*``          -- ``user`` at any domain we receive for    (kind ``"any_domain"``)

Resolution of an incoming address, as WildDuck does it (the service drives the queries):

1. exact ``addrview`` (after removing ``+label`` and dots: :func:`lookup_view`);
2. the same local part at the domain-alias target domain;
3. if wildcards are allowed, the best wildcard match: one ``{"addrview": {"$in": candidates}}``
   query with :func:`resolution_candidates`, the winner picked with :func:`best_candidate`.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import idna

from wildpy.errors import InputValidationError

__all__ = [
    "MAX_ALLOWED_WILDCARD_LENGTH",
    "ForwardTarget",
    "ParsedAddress",
    "TargetType",
    "WildcardKind",
    "address_view",
    "best_candidate",
    "default_address_for",
    "domain_to_ascii",
    "forward_target",
    "lookup_view",
    "normalize_address",
    "normalize_domain",
    "parse_address",
    "resolution_candidates",
    "username_view",
    "validate_username",
]

#: the longest ``*suffix`` / ``prefix*`` part a wildcard address may have (WildDuck's
#: ``consts.MAX_ALLOWED_WILDCARD_LENGTH``); resolution never generates longer candidates, so a
#: longer one could never match anything.
MAX_ALLOWED_WILDCARD_LENGTH = 32

#: RFC 5321 4.5.3.1: local part at most 64 octets, a domain at most 255 (253 without the root dot
#: and the length octets), a label at most 63, and a path at most 256 including ``<>``.
MAX_LOCAL_OCTETS = 64
MAX_DOMAIN_OCTETS = 253
MAX_LABEL_OCTETS = 63
MAX_ADDRESS_OCTETS = 254

MAX_USERNAME_LENGTH = 128

WildcardKind = Literal["domain", "suffix", "prefix", "any_domain"]
TargetType = Literal["mail", "relay", "http"]

# WildDuck's username schema (lib/schemas.js), applied after lowercasing. fullmatch() is used
# everywhere below: Python's ``$`` would also match before a trailing newline.
_USERNAME_RE = re.compile(r"[a-z0-9-]+(?:[._=:][a-z0-9-]+)*(?:@[a-z0-9-]+(?:[._=:][a-z0-9-]+)*)?")

# ``user@*`` needs a plain word as the local part (WildDuck: ``/^\w+@\*$/``, JavaScript's ASCII \w;
# Python's \w would also take any Unicode letter, so the class is spelled out).
_ANY_DOMAIN_LOCAL_RE = re.compile(r"[a-z0-9_]+")

# An ASCII label: letters, digits, hyphens, not starting or ending with a hyphen (RFC 5321
# sub-domain). Underscores are not hostname syntax but do occur in real mail domains and harm
# nobody, so they are let through rather than rejected.
_ASCII_LABEL_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?")

# RFC 5322 atext (the ASCII part). ``*`` and ``+`` are atext; the wildcard and plus-label rules
# are applied on top of the syntax check.
_ASCII_ATEXT = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
)

# Unicode categories never acceptable in an address or a domain: controls, format characters
# (zero-width and bidi overrides, which make look-alike addresses), surrogates, private use,
# unassigned, and every kind of space or separator.
_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})

# Label separators that IDNA (RFC 3490 3.1) treats as a full stop: ideographic, fullwidth and
# halfwidth ideographic full stops.
_DOT_EQUIVALENTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})

_WILDCARD_FORM_MESSAGE = 'Invalid wildcard address, use "*@domain" or "user@*"'


# ---------------------------------------------------------------------------------------------
# domains


class _BadDomainError(ValueError):
    """Internal: the domain (or one of its labels) is not acceptable."""


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _graphic(char: str) -> bool:
    return unicodedata.category(char) not in _BAD_CATEGORIES


def _ace_label(label: str) -> str:
    """The ASCII (A-label) form of an already canonical label, for length checks and ASCII keys."""
    if label.isascii():
        return label
    try:
        return idna.alabel(label).decode("ascii")
    except idna.IDNAError:
        # a label only our lenient path accepts (e.g. an emoji): plain punycode, as browsers do
        return "xn--" + label.encode("punycode").decode("ascii")


def _strict_label(label: str) -> str:
    """IDNA 2008 processing of one lowercased NFC label; returns its Unicode form."""
    if label.startswith("xn--"):
        # ulabel decodes the A-label and checks the result under IDNA 2008 (code points, CONTEXTJ,
        # bidi) and that it round-trips, so a bogus A-label never gets in
        return _nfc(idna.ulabel(label))
    if label.isascii():
        if not _ASCII_LABEL_RE.fullmatch(label):
            raise _BadDomainError(label)
        return label
    idna.alabel(label)  # validation only: raises IDNAError for anything IDNA 2008 disallows
    return label


def _lenient_label(label: str) -> str:
    """Last resort for labels IDNA 2008 and UTS 46 refuse, such as emoji domains.

    Such domains do exist and resolve, so refusing them would be unhelpful; what matters is that
    the stored form is stable. We accept any label made of graphic characters and turn a punycode
    label into its Unicode text, so both spellings still meet at one stored form.
    """
    if label.startswith("xn--"):
        try:
            decoded = label[4:].encode("ascii").decode("punycode")
        except (UnicodeError, ValueError) as exc:
            raise _BadDomainError(label) from exc
        if not decoded or decoded.isascii():
            # an A-label must encode something non-ASCII; "xn--abc-" would alias "abc"
            raise _BadDomainError(label)
        label = _nfc(decoded).lower()
        try:
            return _mapped_label(label)
        except (idna.IDNAError, _BadDomainError):
            pass
    if label.isascii():
        if not _ASCII_LABEL_RE.fullmatch(label):
            raise _BadDomainError(label)
        return label
    if label[0] == "-" or label[-1] == "-" or "." in label:
        raise _BadDomainError(label)
    for char in label:
        if char.isascii():
            if not (char.isalnum() or char in "-_"):
                raise _BadDomainError(label)
        elif not _graphic(char):
            raise _BadDomainError(label)
    return label


def _mapped_label(label: str) -> str:
    """IDNA 2008 on the label, then on its UTS 46 mapping (full-width forms, compatibility
    characters and the like fold to their canonical spelling)."""
    try:
        return _strict_label(label)
    except (idna.IDNAError, _BadDomainError):
        pass
    mapped = idna.uts46_remap(label, std3_rules=False, transitional=False)
    if "." in mapped or not mapped:
        # a compatibility character such as U+2488 "1." would smuggle in a label separator
        raise _BadDomainError(label)
    return _strict_label(mapped)


def _canonical_label(label: str) -> str:
    if not label:
        raise _BadDomainError("empty label")
    try:
        result = _mapped_label(label)
    except (idna.IDNAError, _BadDomainError):
        result = _lenient_label(label)
    if len(_ace_label(result)) > MAX_LABEL_OCTETS:
        raise _BadDomainError(label)
    return result


def _canonical_domain(domain: str) -> str:
    text = _nfc(domain.strip()).lower().translate(_DOT_EQUIVALENTS)
    if text.endswith(".") and len(text) > 1:
        # "example.com." (a fully qualified name) is harmless; store it without the root dot
        text = text[:-1]
    if not text:
        raise _BadDomainError("empty domain")
    labels = [_canonical_label(label) for label in text.split(".")]
    result = _nfc(".".join(labels))
    if len(".".join(_ace_label(label) for label in labels)) > MAX_DOMAIN_OCTETS:
        raise _BadDomainError(domain)
    return result


def normalize_domain(domain: str, *, field: str = "domain") -> str:
    """Return the canonical stored form of a domain: lowercase, Unicode (no ``xn--``), NFC.

    Each label is processed with IDNA 2008; a label IDNA 2008 refuses is retried after the UTS 46
    mapping, and a label both refuse but which is still made of printable characters (an emoji
    domain, say) is kept as it is. Unicode and punycode spellings of a domain give the same result.
    A trailing root dot is dropped. Raises InputValidationError for what cannot be a domain (empty
    labels, spaces or control characters, bad punycode, over-long labels or names).
    """
    if not isinstance(domain, str):
        message = f'"{field}" must be a string'
        raise InputValidationError(message, details={field: message})
    try:
        return _canonical_domain(domain)
    except (_BadDomainError, idna.IDNAError, UnicodeError) as exc:
        message = f'"{field}" must be a valid domain name'
        raise InputValidationError(message, details={field: message}) from exc


def domain_to_ascii(domain: str) -> str:
    """The ASCII (punycode) form of a domain, for DNS look-ups and ASCII-only keys.

    Raises InputValidationError for an invalid domain, like :func:`normalize_domain`.
    """
    canonical = normalize_domain(domain)
    return ".".join(_ace_label(label) for label in canonical.split("."))


# ---------------------------------------------------------------------------------------------
# addresses


def _invalid_email(field: str) -> InputValidationError:
    message = f'"{field}" must be a valid email'
    return InputValidationError(message, details={field: message})


def _split(address: str, field: str) -> tuple[str, str]:
    if not isinstance(address, str):
        raise _invalid_email(field)
    text = address.strip()
    # the last "@" separates the domain, as in WildDuck; the syntax check rejects any other "@"
    at = text.rfind("@")
    if at <= 0 or at == len(text) - 1:
        raise _invalid_email(field)
    return text[:at], text[at + 1 :]


def _normalize_parts(local: str, domain: str, field: str) -> tuple[str, str]:
    local = _nfc(local.strip()).lower()
    domain = domain.strip()
    if domain == "*":
        return local, "*"
    try:
        return local, normalize_domain(domain, field=field)
    except InputValidationError as exc:
        raise _invalid_email(field) from exc


def normalize_address(address: str, *, field: str = "address") -> str:
    """Normalise an address: local part NFC + lowercase, domain via :func:`normalize_domain`.

    Dots and ``+labels`` are kept (they are part of what the user chose); ``*`` is kept in
    wildcard forms, and the domain ``*`` of ``user@*`` stays as it is. Only the shape
    ``local@domain`` is checked here; use :func:`parse_address` to validate.
    """
    local, domain = _normalize_parts(*_split(address, field), field)
    if not local:
        raise _invalid_email(field)
    return f"{local}@{domain}"


def _dotless(local: str) -> str:
    return local.replace(".", "")


def address_view(address: str) -> str:
    """The ``addrview`` key of an address: the normalised address, dots removed from the local part.

    ``John.Doe@Example.com`` and ``johndoe@example.com`` share the key ``johndoe@example.com``, so
    they can not both exist. Wildcard forms keep their ``*`` (``*.smith@d`` becomes ``*smith@d``).
    """
    local, _, domain = normalize_address(address).rpartition("@")
    return f"{_dotless(local)}@{domain}"


def _strip_label(local: str) -> str:
    # WildDuck: user.replace(/\+[^@]*$/, ''), i.e. everything from the first "+". An address that
    # is nothing but a label ("+tag@d") keeps it: an empty local part could match nothing anyway.
    base = local.split("+", 1)[0]
    return base or local


def lookup_view(address: str) -> str:
    """The ``addrview`` to look up for an address a message is sent to.

    Like :func:`address_view`, and with the ``+label`` removed: mail to ``john+news@d`` is
    delivered to ``john@d``. Stored addresses never contain ``+`` (:func:`parse_address`).
    """
    local, _, domain = normalize_address(address).rpartition("@")
    return f"{_dotless(_strip_label(local))}@{domain}"


def _check_dot_atom(local: str) -> bool:
    """RFC 5322 dot-atom, extended to UTF-8 (RFC 6531): atext or graphic non-ASCII, no empty
    dot-separated parts."""
    if not local or local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    for char in local:
        if char == ".":
            continue
        if char.isascii():
            if char not in _ASCII_ATEXT:
                return False
        elif not _graphic(char):
            return False
    return True


@dataclass(frozen=True, slots=True)
class ParsedAddress:
    """A validated, normalised address."""

    #: normalised local part (NFC, lowercase, dots kept; ``*`` kept in wildcard forms)
    local: str
    #: normalised domain (Unicode form), or ``*`` for ``user@*``
    domain: str
    #: which wildcard form this is, ``None`` for a plain address
    wildcard: WildcardKind | None = None

    @property
    def is_wildcard(self) -> bool:
        return self.wildcard is not None

    @property
    def address(self) -> str:
        """The normalised address, as stored in ``address``."""
        return f"{self.local}@{self.domain}"

    @property
    def addrview(self) -> str:
        """The unique key, as stored in ``addrview``."""
        return f"{_dotless(self.local)}@{self.domain}"


def _wildcard_kind(local: str, domain: str) -> WildcardKind | None:
    """Classify a syntactically valid local@domain containing ``*``; None if the form is invalid."""
    if (local + domain).count("*") != 1:
        return None
    if domain == "*":
        return "any_domain" if _ANY_DOMAIN_LOCAL_RE.fullmatch(local) else None
    if local == "*":
        return "domain"
    kind: WildcardKind
    if local.startswith("*"):
        part, kind = local[1:], "suffix"
    elif local.endswith("*"):
        part, kind = local[:-1], "prefix"
    else:
        return None  # "jo*hn@d": a star in the middle is not a supported form
    # the part without the star must itself be a valid local part ("*.smith", "john.*" are not),
    # and no longer than resolution ever tries, or it could never match
    if len(part) > MAX_ALLOWED_WILDCARD_LENGTH or not _check_dot_atom(part):
        return None
    return kind


def _parse(address: str, *, allow_wildcard: bool, allow_plus: bool, field: str) -> ParsedAddress:
    raw_local, raw_domain = _split(address, field)
    if not _check_dot_atom(raw_local):
        raise _invalid_email(field)
    local, domain = _normalize_parts(raw_local, raw_domain, field)
    if not _check_dot_atom(local):
        # lowercasing can, in rare scripts, turn a character into something else
        raise _invalid_email(field)
    ascii_domain = "*" if domain == "*" else domain_to_ascii(domain)
    local_octets = len(local.encode("utf-8"))
    if local_octets > MAX_LOCAL_OCTETS or local_octets + 1 + len(ascii_domain) > MAX_ADDRESS_OCTETS:
        raise _invalid_email(field)

    def fail(message: str) -> InputValidationError:
        return InputValidationError(message, details={field: message})

    if "+" in local and not allow_plus:
        raise fail("Address can not contain +")
    if "*" not in local and domain != "*":
        return ParsedAddress(local=local, domain=domain)
    if not allow_wildcard:
        raise fail("Address can not contain *")
    kind = _wildcard_kind(local, domain)
    if kind is None:
        raise fail(_WILDCARD_FORM_MESSAGE)
    return ParsedAddress(local=local, domain=domain, wildcard=kind)


def parse_address(
    address: str, *, allow_wildcard: bool = False, field: str = "address"
) -> ParsedAddress:
    """Validate and normalise an address that is to be stored.

    Checks, in order (messages are WildDuck's, clients show them), with
    ``details={field: message}``:

    * syntax: one ``@``; a dot-atom local part of 1..64 octets (UTF-8 allowed, no spaces, control
      or format characters, no quoted strings); a valid domain (:func:`normalize_domain`; domain
      literals such as ``[192.0.2.1]`` are not accepted); at most 254 octets in all
      -> ``"<field>" must be a valid email``;
    * ``+`` -> ``Address can not contain +`` (plus-labels are resolved, never stored);
    * ``*`` without ``allow_wildcard`` -> ``Address can not contain *``;
    * a ``*`` outside the four forms ``*@d``, ``*suffix@d``, ``prefix*@d``, ``word@*``, or a
      suffix/prefix over 32 characters -> ``Invalid wildcard address, use "*@domain" or "user@*"``.

    A single-label domain (``user@localhost``) is accepted: useful on test and internal systems.
    """
    return _parse(address, allow_wildcard=allow_wildcard, allow_plus=False, field=field)


# ---------------------------------------------------------------------------------------------
# resolution


def _domain_wildcards(local: str, domain: str) -> list[str]:
    """Wildcard keys at one domain, best first: for each length from the longest (the whole local
    part, capped at 32) down to 1, ``prefix*@d`` then ``*suffix@d``; finally ``*@d``.

    At equal length a prefix wins over a suffix: WildDuck orders its candidates the same way (its
    sort by "length without the leading star" leaves the prefix form one character longer).
    """
    keys: list[str] = []
    for length in range(min(len(local), MAX_ALLOWED_WILDCARD_LENGTH), 0, -1):
        keys.append(f"{local[:length]}*@{domain}")
        keys.append(f"*{local[-length:]}@{domain}")
    keys.append(f"*@{domain}")
    return keys


def resolution_candidates(
    address: str, alias_domain: str | None = None, *, include_exact: bool = False
) -> list[str]:
    """The ``addrview`` keys that could match ``address``, best first, for ONE ``$in`` query.

    ``address`` is a concrete address (a recipient); its ``+label`` and dots are removed first,
    as for :func:`lookup_view`. The order, which is the order of preference:

    1. (only with ``include_exact``) the exact key at the domain, then at ``alias_domain``;
    2. the wildcards at the domain: ``prefix*@d`` and ``*suffix@d`` of every length, longest first
       (up to 32 characters; prefix before suffix at equal length), then ``*@d``;
    3. the same wildcards at ``alias_domain`` (the target of a domain alias of ``d``), if given;
    4. ``local@*`` (a catch-all user at any domain).

    Query with ``{"addrview": {"$in": candidates}}`` and pick the result with
    :func:`best_candidate`: the match that comes first in this list wins. That is WildDuck's
    resolution (it queries ``local@*`` separately, after the wildcards; ranking it last gives the
    same answer). WildDuck ranks alias-domain wildcards shortest first, which looks like a slip;
    here they are ranked like the primary domain's, longest first.
    """
    local, _, domain = lookup_view(address).rpartition("@")
    domains = [domain]
    if alias_domain:
        alias = normalize_domain(alias_domain)
        if alias != domain:
            domains.append(alias)
    keys: list[str] = []
    if include_exact:
        keys.extend(f"{local}@{d}" for d in domains)
    for d in domains:
        keys.extend(_domain_wildcards(local, d))
    keys.append(f"{local}@*")
    # a local part of "*" cannot come from a valid recipient, but never return duplicates
    return list(dict.fromkeys(keys))


def best_candidate(candidates: Sequence[str], found: Iterable[str]) -> str | None:
    """The first of ``candidates`` (as returned by :func:`resolution_candidates`) that is among
    the ``addrview`` values ``found`` by the query, or None."""
    present = set(found)
    return next((key for key in candidates if key in present), None)


# ---------------------------------------------------------------------------------------------
# forward targets


@dataclass(frozen=True, slots=True)
class ForwardTarget:
    """A forwarding target of a user or a forwarded address."""

    type: TargetType
    #: the normalised address for ``mail``; the URL as given (trimmed) for ``relay`` and ``http``
    value: str


_SCHEME_RE = re.compile(r"([a-z][a-z0-9+.-]*):", re.IGNORECASE)
_TARGET_SCHEMES: dict[str, TargetType] = {
    "smtp": "relay",
    "smtps": "relay",
    "http": "http",
    "https": "http",
}


def forward_target(value: str, *, field: str = "targets") -> ForwardTarget:
    """Classify and validate one forward target.

    * ``smtp://`` or ``smtps://`` URL -> ``relay`` (needs a host; credentials and port allowed);
    * ``http://`` or ``https://`` URL -> ``http`` (needs a host);
    * anything else containing ``@`` -> ``mail``, the address normalised (a ``+label`` is fine
      here: it is someone else's address);
    * otherwise -> ``Unknown target type "<value>"``.

    URL schemes are checked first, since ``smtp://user:pass@host`` contains an ``@`` too.
    """

    def fail(message: str) -> InputValidationError:
        return InputValidationError(message, details={field: message})

    if not isinstance(value, str):
        raise fail(f'Unknown target type "{value}"')
    text = value.strip()
    scheme_match = _SCHEME_RE.match(text)
    if scheme_match and text[scheme_match.end() :].startswith("//"):
        target_type = _TARGET_SCHEMES.get(scheme_match.group(1).lower())
        if target_type is None:
            raise fail(f'Unknown target type "{value}"')
        try:
            parts = urllib.parse.urlsplit(text)
            _ = parts.port  # raises ValueError for a port that is not a number in range
        except ValueError as exc:
            raise fail(f'Invalid target URL "{value}"') from exc
        if not parts.hostname or not all(_graphic(char) for char in text):
            raise fail(f'Invalid target URL "{value}"')
        return ForwardTarget(type=target_type, value=text)
    if "@" in text:
        try:
            # "+" is refused only in addresses we store; as a destination it is someone's label
            parsed = _parse(text, allow_wildcard=False, allow_plus=True, field=field)
        except InputValidationError as exc:
            raise fail(f'Invalid target address "{value}"') from exc
        return ForwardTarget(type="mail", value=parsed.address)
    raise fail(f'Unknown target type "{value}"')


# ---------------------------------------------------------------------------------------------
# usernames


def username_view(username: str) -> str:
    """The ``unameview`` key of a username, or of an address given where a username is expected.

    Lowercase, dots removed from the part before the first ``@`` (WildDuck's ``uview``), and, for
    e-mail-form names, the ``+label`` dropped and the domain in its ASCII (punycode) form: a
    username can only be spelled in ASCII, so ``john@müller.de`` must find the username
    ``john@xn--mller-kva.de``. Never raises: a domain that cannot be normalised is just lowercased.
    """
    text = username.strip().lower()
    local, at, domain = text.partition("@")
    if not at:
        return _dotless(local)
    with contextlib.suppress(InputValidationError):
        domain = domain_to_ascii(domain)
    return f"{_dotless(_strip_label(local))}@{domain}"


def validate_username(value: str, *, field: str = "username") -> str:
    """Validate a username as WildDuck does and return it lowercased.

    Pattern (after lowercasing)
    ``^[a-z0-9-]+(?:[._=:][a-z0-9-]+)*(?:@[a-z0-9-]+(?:[._=:][a-z0-9-]+)*)?$``
    and 1..128 characters: ``john``, ``john.doe``, ``john_doe``, ``john=doe:x`` and
    ``john.doe@example.com`` are fine (``.``, ``_``, ``=`` and ``:`` only between runs of
    letters, digits and hyphens); spaces, ``+``, doubled separators and non-ASCII letters are
    not. Surrounding whitespace is not trimmed (WildDuck does not either).
    Errors carry ``details={"username": message}``.
    """

    def fail(message: str) -> InputValidationError:
        return InputValidationError(message, details={field: message})

    if not isinstance(value, str):
        raise fail(f'"{field}" must be a string')
    username = value.lower()
    if not username:
        raise fail(f'"{field}" is not allowed to be empty')
    if len(username) > MAX_USERNAME_LENGTH:
        raise fail(
            f'"{field}" length must be less than or equal to {MAX_USERNAME_LENGTH} characters long'
        )
    if not _USERNAME_RE.fullmatch(username):
        raise fail(f'"{field}" with value "{value}" fails to match the username pattern')
    return username


def default_address_for(username: str, email_domain: str) -> str:
    """The main address of a user created without one: the username itself when it is an
    address, otherwise ``<username>@<email_domain>``; normalised (lowercase, Unicode domain).

    The result is not validated beyond that: a username such as ``a:b`` gives ``a:b@domain``, as
    it does in WildDuck.
    """
    if "@" in username:
        return normalize_address(username)
    return normalize_address(f"{username}@{email_domain}")
