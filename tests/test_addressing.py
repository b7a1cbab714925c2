"""Tests for wildpy.addressing: domains, addresses, wildcards, resolution, targets, usernames."""

from __future__ import annotations

import pytest

from wildpy.addressing import (
    MAX_ALLOWED_WILDCARD_LENGTH,
    ForwardTarget,
    ParsedAddress,
    address_view,
    best_candidate,
    default_address_for,
    domain_to_ascii,
    forward_target,
    lookup_view,
    normalize_address,
    normalize_domain,
    parse_address,
    resolution_candidates,
    username_view,
    validate_username,
)
from wildpy.errors import InputValidationError

WILDCARD_FORM = 'Invalid wildcard address, use "*@domain" or "user@*"'


def _fullwidth(text: str) -> str:
    """Full-width forms of ASCII letters (U+FF21...), spelled out to keep the source readable."""
    return "".join(chr(ord(char) + 0xFEE0) for char in text)


# "EXAMPLE" in full-width letters, then an ideographic full stop (U+3002)
FULLWIDTH_EXAMPLE_COM = _fullwidth("EXAMPLE") + "\u3002com"
# Cyrillic look-alike of "apple" (a, er, er, palochka, ie)
CYRILLIC_APPLE = "\u0430\u0440\u0440\u04cf\u0435"

# ---------------------------------------------------------------------------------------------
# normalize_domain


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("example.com", "example.com"),
        ("Example.COM", "example.com"),
        ("  example.com  ", "example.com"),
        ("example.com.", "example.com"),  # fully qualified: root dot dropped
        ("localhost", "localhost"),
        ("a_b.example.com", "a_b.example.com"),  # underscore: odd but harmless
        ("ab--cd.example", "ab--cd.example"),  # hyphens in 3rd/4th position, not an A-label
        ("123.example", "123.example"),
        # punycode is decoded to Unicode, in any label and any case
        ("xn--mller-kva.de", "müller.de"),
        ("XN--MLLER-KVA.DE", "müller.de"),
        ("mail.xn--mller-kva.de", "mail.müller.de"),
        ("müller.de", "müller.de"),
        ("MÜLLER.DE", "müller.de"),
        ("xn--strae-oqa.de", "straße.de"),  # IDNA 2008 keeps ß (no transitional mapping)
        ("straße.de", "straße.de"),
        ("xn--80ak6aa92e.com", f"{CYRILLIC_APPLE}.com"),  # a look-alike: stored as what it is
        ("bücher.example", "bücher.example"),
        # NFC: a decomposed ü (u + U+0308) becomes the composed one
        ("mu\u0308ller.de", "müller.de"),
        # UTS 46 mapping: full-width letters and the ideographic full stop
        (FULLWIDTH_EXAMPLE_COM, "example.com"),
        (_fullwidth("m") + "ü" + _fullwidth("ller") + ".de", "müller.de"),
        # UTS 46 drops "ignored" code points (zero-width space, soft hyphen): folded, not a twin
        ("exa\u200bmple.com", "example.com"),
        ("exa\u00admple.com", "example.com"),
        # emoji domains are refused by IDNA 2008 and UTS 46 but exist: kept, both spellings
        ("xn--ls8h.la", "💩.la"),
        ("💩.la", "💩.la"),
    ],
)
def test_normalize_domain(given: str, expected: str) -> None:
    assert normalize_domain(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        "",
        "   ",
        ".",
        "a..b",
        ".example.com",
        "-example.com",
        "example-.com",
        "exa mple.com",
        "exa\tmple.com",
        "exa\x00mple.com",
        "example.com/path",
        "user@example.com",
        "[192.0.2.1]",
        "*",
        "xn--zz.com",  # not valid punycode
        "xn--abc.com",  # decodes to control characters
        "xn--abc-.com",  # an "A-label" of pure ASCII
        "a" * 64 + ".com",  # label over 63 octets
        ".".join(["a" * 63] * 4) + ".com",  # name over 253 octets
        "ü" * 60 + ".de",  # its A-label is over 63 octets
    ],
)
def test_normalize_domain_rejects(given: str) -> None:
    with pytest.raises(InputValidationError) as info:
        normalize_domain(given)
    assert info.value.details == {"domain": '"domain" must be a valid domain name'}


def test_normalize_domain_field_name_in_details() -> None:
    with pytest.raises(InputValidationError) as info:
        normalize_domain("a..b", field="alias")
    assert info.value.details == {"alias": '"alias" must be a valid domain name'}


def test_normalize_domain_longest_label() -> None:
    label = "a" * 63
    assert normalize_domain(f"{label}.com") == f"{label}.com"


@pytest.mark.parametrize(
    ("unicode_form", "punycode_form"),
    [
        ("müller.de", "xn--mller-kva.de"),
        ("straße.de", "xn--strae-oqa.de"),
        ("пример.рф", "xn--e1afmkfd.xn--p1ai"),
        ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
        ("💩.la", "xn--ls8h.la"),
    ],
)
def test_idn_spellings_meet(unicode_form: str, punycode_form: str) -> None:
    assert normalize_domain(unicode_form) == normalize_domain(punycode_form) == unicode_form
    assert domain_to_ascii(unicode_form) == domain_to_ascii(punycode_form) == punycode_form
    assert normalize_address(f"user@{unicode_form}") == normalize_address(f"user@{punycode_form}")
    assert address_view(f"u.ser@{unicode_form}") == address_view(f"U.SER@{punycode_form}")


def test_normalize_domain_is_idempotent() -> None:
    for domain in ["müller.de", "xn--mller-kva.de", FULLWIDTH_EXAMPLE_COM, "💩.la", "a_b.com"]:
        once = normalize_domain(domain)
        assert normalize_domain(once) == once


# ---------------------------------------------------------------------------------------------
# normalize_address / address_view / lookup_view


@pytest.mark.parametrize(
    ("given", "normalized", "view"),
    [
        ("user@example.com", "user@example.com", "user@example.com"),
        ("John.Doe@Example.COM", "john.doe@example.com", "johndoe@example.com"),
        (" john.doe@example.com ", "john.doe@example.com", "johndoe@example.com"),
        ("ÕÄÖÜ@example.com", "õäöü@example.com", "õäöü@example.com"),
        ("Õ.Ä.Ö.Ü@example.com", "õ.ä.ö.ü@example.com", "õäöü@example.com"),
        ("u\u0308ser@example.com", "üser@example.com", "üser@example.com"),  # NFC
        ("user@xn--mller-kva.de", "user@müller.de", "user@müller.de"),
        ("User@MÜLLER.de", "user@müller.de", "user@müller.de"),
        ("a.b+tag@example.com", "a.b+tag@example.com", "ab+tag@example.com"),  # label kept
        # wildcard forms keep their star; the dots go from the view only
        ("*@Example.com", "*@example.com", "*@example.com"),
        ("*.Smith@example.com", "*.smith@example.com", "*smith@example.com"),
        ("J.Doe*@example.com", "j.doe*@example.com", "jdoe*@example.com"),
        ("Postmaster@*", "postmaster@*", "postmaster@*"),
    ],
)
def test_normalize_address_and_view(given: str, normalized: str, view: str) -> None:
    assert normalize_address(given) == normalized
    assert address_view(given) == view


@pytest.mark.parametrize("given", ["", "user", "@example.com", "user@", "user@a..b", "  "])
def test_normalize_address_rejects(given: str) -> None:
    with pytest.raises(InputValidationError) as info:
        normalize_address(given)
    assert info.value.details == {"address": '"address" must be a valid email'}


def test_dotted_addresses_share_one_view() -> None:
    views = {address_view(a) for a in ["johndoe@x.com", "john.doe@x.com", "J.o.h.n.D.o.e@X.com"]}
    assert views == {"johndoe@x.com"}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("john@example.com", "john@example.com"),
        ("John.Doe+News@Example.com", "johndoe@example.com"),
        ("john+a+b@example.com", "john@example.com"),  # from the first "+"
        ("+tag@example.com", "+tag@example.com"),  # nothing but a label: kept
        ("john@xn--mller-kva.de", "john@müller.de"),
    ],
)
def test_lookup_view(given: str, expected: str) -> None:
    assert lookup_view(given) == expected


# ---------------------------------------------------------------------------------------------
# parse_address


@pytest.mark.parametrize(
    ("given", "local", "domain"),
    [
        ("user@example.com", "user", "example.com"),
        ("John.Doe@Example.com", "john.doe", "example.com"),
        ("ÕÄÖÜ@example.com", "õäöü", "example.com"),
        ("用户@例子.广告", "用户", "例子.广告"),
        ("user@xn--mller-kva.de", "user", "müller.de"),
        ("o'brien@example.com", "o'brien", "example.com"),
        ("a!#$%&'-/=?^_`{|}~@example.com", "a!#$%&'-/=?^_`{|}~", "example.com"),
        ("user@localhost", "user", "localhost"),
        ("a" * 64 + "@example.com", "a" * 64, "example.com"),
        ("ä" * 32 + "@example.com", "ä" * 32, "example.com"),  # 64 octets of UTF-8
    ],
)
def test_parse_address_valid(given: str, local: str, domain: str) -> None:
    parsed = parse_address(given)
    assert parsed == ParsedAddress(local=local, domain=domain, wildcard=None)
    assert not parsed.is_wildcard
    assert parsed.address == f"{local}@{domain}"
    assert parsed.addrview == address_view(given)


@pytest.mark.parametrize(
    "given",
    [
        "",
        "user",
        "user@",
        "@example.com",
        "a@b@example.com",  # more than one "@"
        '"john doe"@example.com',  # quoted local parts are not supported
        "john doe@example.com",
        " john @example.com",
        "john\t@example.com",
        "jo\x00hn@example.com",
        "jo\u200bhn@example.com",  # zero-width space
        "jo\u202ehn@example.com",  # right-to-left override
        ".john@example.com",
        "john.@example.com",
        "jo..hn@example.com",
        "jo(hn)@example.com",
        "jo,hn@example.com",
        "jo:hn@example.com",
        "jo\\hn@example.com",
        "a" * 65 + "@example.com",
        "ä" * 33 + "@example.com",  # 66 octets of UTF-8
        "user@[192.0.2.1]",
        "user@exa mple.com",
        "user@-example.com",
        "user@example..com",
        "a" * 64 + "@" + ".".join(["b" * 60] * 4) + ".com",  # over 254 octets in all
    ],
)
def test_parse_address_invalid_syntax(given: str) -> None:
    with pytest.raises(InputValidationError) as info:
        parse_address(given, allow_wildcard=True)
    assert info.value.text == '"address" must be a valid email'
    assert info.value.details == {"address": '"address" must be a valid email'}


def test_parse_address_field_name() -> None:
    with pytest.raises(InputValidationError) as info:
        parse_address("nope", field="email")
    assert info.value.details == {"email": '"email" must be a valid email'}


@pytest.mark.parametrize(
    ("given", "allow_wildcard", "message"),
    [
        ("john+tag@example.com", False, "Address can not contain +"),
        ("john+tag@example.com", True, "Address can not contain +"),
        ("+@example.com", False, "Address can not contain +"),
        ("*@example.com", False, "Address can not contain *"),
        ("*john@example.com", False, "Address can not contain *"),
        ("john*@example.com", False, "Address can not contain *"),
        ("john@*", False, "Address can not contain *"),
    ],
)
def test_parse_address_plus_and_star(given: str, allow_wildcard: bool, message: str) -> None:
    with pytest.raises(InputValidationError) as info:
        parse_address(given, allow_wildcard=allow_wildcard)
    assert info.value.text == message
    assert info.value.details == {"address": message}


@pytest.mark.parametrize(
    ("given", "local", "domain", "kind", "view"),
    [
        ("*@example.com", "*", "example.com", "domain", "*@example.com"),
        ("*@XN--MLLER-KVA.DE", "*", "müller.de", "domain", "*@müller.de"),
        ("*Smith@example.com", "*smith", "example.com", "suffix", "*smith@example.com"),
        ("*j.smith@example.com", "*j.smith", "example.com", "suffix", "*jsmith@example.com"),
        ("Info*@example.com", "info*", "example.com", "prefix", "info*@example.com"),
        ("in.fo*@example.com", "in.fo*", "example.com", "prefix", "info*@example.com"),
        ("Postmaster@*", "postmaster", "*", "any_domain", "postmaster@*"),
        ("abuse_desk2@*", "abuse_desk2", "*", "any_domain", "abuse_desk2@*"),
        ("*" + "a" * 32 + "@example.com", "*" + "a" * 32, "example.com", "suffix", None),
        ("a" * 32 + "*@example.com", "a" * 32 + "*", "example.com", "prefix", None),
    ],
)
def test_parse_address_wildcards(
    given: str, local: str, domain: str, kind: str, view: str | None
) -> None:
    parsed = parse_address(given, allow_wildcard=True)
    assert (parsed.local, parsed.domain, parsed.wildcard) == (local, domain, kind)
    assert parsed.is_wildcard
    assert parsed.addrview == (view or address_view(given))


@pytest.mark.parametrize(
    "given",
    [
        "**@example.com",
        "*john*@example.com",
        "jo*hn@example.com",  # star in the middle
        "*.smith@example.com",  # suffix is not a valid local part
        "john.*@example.com",  # prefix is not a valid local part
        "*@*",
        "*john@*",
        "john*@*",
        "john.doe@*",  # user@* needs a plain word
        "jöhn@*",
        "jo-hn@*",
        "*" + "a" * (MAX_ALLOWED_WILDCARD_LENGTH + 1) + "@example.com",
        "a" * (MAX_ALLOWED_WILDCARD_LENGTH + 1) + "*@example.com",
    ],
)
def test_parse_address_invalid_wildcards(given: str) -> None:
    with pytest.raises(InputValidationError) as info:
        parse_address(given, allow_wildcard=True)
    assert info.value.text == WILDCARD_FORM
    assert info.value.details == {"address": WILDCARD_FORM}


def test_parse_address_wildcard_domain_still_validated() -> None:
    with pytest.raises(InputValidationError) as info:
        parse_address("*@exa mple.com", allow_wildcard=True)
    assert info.value.text == '"address" must be a valid email'


# ---------------------------------------------------------------------------------------------
# resolution


def test_resolution_candidates_order() -> None:
    assert resolution_candidates("Jo.hn+news@Example.com", "Alias.example") == [
        # the domain: longest first, prefix before suffix at equal length, then the catch-all
        "john*@example.com",
        "*john@example.com",
        "joh*@example.com",
        "*ohn@example.com",
        "jo*@example.com",
        "*hn@example.com",
        "j*@example.com",
        "*n@example.com",
        "*@example.com",
        # the alias target domain, same order
        "john*@alias.example",
        "*john@alias.example",
        "joh*@alias.example",
        "*ohn@alias.example",
        "jo*@alias.example",
        "*hn@alias.example",
        "j*@alias.example",
        "*n@alias.example",
        "*@alias.example",
        # a catch-all user at any domain comes last
        "john@*",
    ]


def test_resolution_candidates_without_alias() -> None:
    assert resolution_candidates("ab@x.com", None) == [
        "ab*@x.com",
        "*ab@x.com",
        "a*@x.com",
        "*b@x.com",
        "*@x.com",
        "ab@*",
    ]


def test_resolution_candidates_alias_same_as_domain_is_not_repeated() -> None:
    assert resolution_candidates("ab@x.com", "X.COM") == resolution_candidates("ab@x.com", None)


def test_resolution_candidates_include_exact() -> None:
    candidates = resolution_candidates("a.b@xn--mller-kva.de", "alias.de", include_exact=True)
    assert candidates[:3] == ["ab@müller.de", "ab@alias.de", "ab*@müller.de"]
    assert candidates[-1] == "ab@*"


def test_resolution_candidates_cap_at_32() -> None:
    local = "".join(chr(ord("a") + i % 26) for i in range(40))
    candidates = resolution_candidates(f"{local}@x.com", None)
    assert candidates[0] == f"{local[:32]}*@x.com"
    assert candidates[1] == f"*{local[-32:]}@x.com"
    assert len(candidates) == 2 * MAX_ALLOWED_WILDCARD_LENGTH + 2
    assert len(set(candidates)) == len(candidates)


def test_resolution_candidates_match_stored_wildcard_views() -> None:
    """Stored wildcard addresses (through parse_address) are found by the candidates."""
    stored = [
        parse_address(a, allow_wildcard=True).addrview
        for a in ["*@example.com", "*doe@x.com", "*D.oe@example.com", "Jo.Hn.D*@x.com"]
    ]
    candidates = resolution_candidates("John.Doe@Example.com", None)
    assert best_candidate(candidates, stored) == "*doe@example.com"
    assert best_candidate(candidates, ["*@example.com", "jo.h*@x.com", "joh*@example.com"]) == (
        "joh*@example.com"
    )


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        ([], None),
        (["unrelated@example.com"], None),
        (["john@*"], "john@*"),
        (["john@*", "*@example.com"], "*@example.com"),
        (["*@example.com", "*hn@example.com"], "*hn@example.com"),
        (["*hn@example.com", "jo*@example.com"], "jo*@example.com"),  # prefix wins a tie
        (["*john@alias.example", "*@example.com"], "*@example.com"),  # domain before alias
        (["*@alias.example", "john@*"], "*@alias.example"),
    ],
)
def test_best_candidate(found: list[str], expected: str | None) -> None:
    candidates = resolution_candidates("john@example.com", "alias.example")
    assert best_candidate(candidates, found) == expected
    assert best_candidate(candidates, reversed(found)) == expected


# ---------------------------------------------------------------------------------------------
# forward targets


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("user@example.com", ForwardTarget("mail", "user@example.com")),
        ("  User.Name@Example.COM ", ForwardTarget("mail", "user.name@example.com")),
        ("user+tag@example.com", ForwardTarget("mail", "user+tag@example.com")),
        ("user@xn--mller-kva.de", ForwardTarget("mail", "user@müller.de")),
        ("smtp://mx.example.com", ForwardTarget("relay", "smtp://mx.example.com")),
        ("smtp://mx.example.com:2525", ForwardTarget("relay", "smtp://mx.example.com:2525")),
        (
            "smtps://user:pass@mx.example.com:465",
            ForwardTarget("relay", "smtps://user:pass@mx.example.com:465"),
        ),
        ("SMTP://192.0.2.1", ForwardTarget("relay", "SMTP://192.0.2.1")),
        ("smtp://[2001:db8::1]:25", ForwardTarget("relay", "smtp://[2001:db8::1]:25")),
        ("http://example.com/hook", ForwardTarget("http", "http://example.com/hook")),
        (
            "https://user@example.com/upload?x=1",
            ForwardTarget("http", "https://user@example.com/upload?x=1"),
        ),
        ("HTTPS://example.com", ForwardTarget("http", "HTTPS://example.com")),
    ],
)
def test_forward_target(given: str, expected: ForwardTarget) -> None:
    assert forward_target(given) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("example.com", 'Unknown target type "example.com"'),
        ("", 'Unknown target type ""'),
        ("ftp://files.example.com", 'Unknown target type "ftp://files.example.com"'),
        ("ftp://user@files.example.com", 'Unknown target type "ftp://user@files.example.com"'),
        ("lmtp://mx.example.com", 'Unknown target type "lmtp://mx.example.com"'),
        ("smtp:mx.example.com", 'Unknown target type "smtp:mx.example.com"'),
        ("smtp://", 'Invalid target URL "smtp://"'),
        ("https://", 'Invalid target URL "https://"'),
        ("smtp://:25", 'Invalid target URL "smtp://:25"'),
        ("smtp://mx.example.com:99999", 'Invalid target URL "smtp://mx.example.com:99999"'),
        ("smtp://mx.example.com:abc", 'Invalid target URL "smtp://mx.example.com:abc"'),
        ("http://exa mple.com/", 'Invalid target URL "http://exa mple.com/"'),
        ("john doe@example.com", 'Invalid target address "john doe@example.com"'),
        ("*@example.com", 'Invalid target address "*@example.com"'),
        ("mailto:user@example.com", 'Invalid target address "mailto:user@example.com"'),
    ],
)
def test_forward_target_rejects(given: str, message: str) -> None:
    with pytest.raises(InputValidationError) as info:
        forward_target(given)
    assert info.value.text == message
    assert info.value.details == {"targets": message}


# ---------------------------------------------------------------------------------------------
# usernames


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("john", "john"),
        ("John", "john"),
        ("john-doe", "john-doe"),
        ("-", "-"),
        ("123", "123"),
        ("john.doe", "john.doe"),
        ("john_doe", "john_doe"),
        ("john=doe", "john=doe"),
        ("john:doe", "john:doe"),
        ("a.b_c=d:e", "a.b_c=d:e"),
        ("John.Doe@Example.com", "john.doe@example.com"),
        ("john@mail.example.com", "john@mail.example.com"),
        ("john@xn--mller-kva.de", "john@xn--mller-kva.de"),
        ("john@localhost", "john@localhost"),
        ("a" * 128, "a" * 128),
        ("a" * 100 + "@" + "b" * 27, "a" * 100 + "@" + "b" * 27),  # 128 in all
    ],
)
def test_validate_username_valid(given: str, expected: str) -> None:
    assert validate_username(given) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("", '"username" is not allowed to be empty'),
        ("a" * 129, '"username" length must be less than or equal to 128 characters long'),
        (
            "a" * 100 + "@" + "b" * 28,
            '"username" length must be less than or equal to 128 characters long',
        ),
    ],
)
def test_validate_username_length(given: str, message: str) -> None:
    with pytest.raises(InputValidationError) as info:
        validate_username(given)
    assert info.value.text == message
    assert info.value.details == {"username": message}


@pytest.mark.parametrize(
    "given",
    [
        " john",
        "john ",
        "jo hn",
        "john\n",
        ".john",
        "john.",
        "jo..hn",
        "jo._hn",
        "_john",
        "john+tag",
        "john*",
        "jöhn",
        "john@",
        "@example.com",
        "john@example..com",
        "john@example.com.",
        "john@müller.de",
        "john@@example.com",
        "john@a@b",
        "john/doe",
    ],
)
def test_validate_username_pattern(given: str) -> None:
    with pytest.raises(InputValidationError) as info:
        validate_username(given)
    message = f'"username" with value "{given}" fails to match the username pattern'
    assert info.value.text == message
    assert info.value.details == {"username": message}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("john", "john"),
        ("John.Doe", "johndoe"),
        ("j.o.h.n", "john"),
        ("john_doe", "john_doe"),
        ("John.Doe@Example.com", "johndoe@example.com"),
        ("john.doe@mail.example.com", "johndoe@mail.example.com"),  # domain dots stay
        ("John.Doe+News@Example.com", "johndoe@example.com"),  # resolving by address
        ("john@xn--mller-kva.de", "john@xn--mller-kva.de"),
        ("john@müller.de", "john@xn--mller-kva.de"),  # finds the ASCII-only username
        ("john@exa mple", "john@exa mple"),  # never raises
    ],
)
def test_username_view(given: str, expected: str) -> None:
    assert username_view(given) == expected


def test_username_views_collide_on_dots() -> None:
    assert username_view("john.doe") == username_view("johndoe") == username_view("J.ohnDoe")


# ---------------------------------------------------------------------------------------------
# default address


@pytest.mark.parametrize(
    ("username", "email_domain", "expected"),
    [
        ("john", "example.com", "john@example.com"),
        ("John.Doe", "Example.COM", "john.doe@example.com"),
        ("john", "xn--mller-kva.de", "john@müller.de"),
        ("john@other.example", "example.com", "john@other.example"),
        ("John@XN--MLLER-KVA.DE", "example.com", "john@müller.de"),
    ],
)
def test_default_address_for(username: str, email_domain: str, expected: str) -> None:
    assert default_address_for(username, email_domain) == expected
