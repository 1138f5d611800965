"""Checks that run on detector candidates only (never on whole texts): checksums, shapes, boundaries.

Each validator gets the scanned bytes and a candidate span and returns the span to redact (possibly
narrowed) or None to reject the candidate. All of them are linear in the candidate's length.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re

Span = tuple[int, int] | None

_DIGITS = frozenset(b"0123456789")
_WORD = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_TOKEN = _WORD | frozenset(b"-")
_HEX_COLON = frozenset(b"0123456789ABCDEFabcdef:")
# candidates hold ASCII digits only (every pattern that reaches a digit-group check spells them [0-9])
_DIGIT_RUN = re.compile(r"[0-9]+")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_brand_ok(d: str) -> bool:
    """The issuer prefix belongs to a card network and the length fits it. 12- and 13-digit Visa and
    Maestro numbers are left out: they are rare and look like EAN-13 barcodes."""
    n = len(d)
    p2, p4 = int(d[:2]), int(d[:4])
    if d[0] == "4":
        return n in (16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16
    if p2 in (34, 37):
        return n == 15
    if d.startswith("6011") or 644 <= int(d[:3]) <= 649 or p2 == 65:
        return 16 <= n <= 19
    if 3528 <= p4 <= 3589:
        return 16 <= n <= 19
    if 300 <= int(d[:3]) <= 305 or p2 in (36, 38, 39):
        return 14 <= n <= 19
    if p2 == 62 or 2200 <= p4 <= 2204:
        return 16 <= n <= 19
    if p2 == 50 or 56 <= p2 <= 69:
        return 16 <= n <= 19
    return False


def card(data: bytes, start: int, end: int) -> Span:
    """Luhn-valid, a known issuer prefix, 13-19 digits; one separator style (space, dash or dot) and
    groups of 3 or more digits, as cards are written. A candidate that runs into more digit groups
    is retried without its trailing groups, unless dotted: a dotted card stands alone, since a longer
    dotted run of numbers is a version or an address."""
    text = data[start:end].decode("ascii")
    if text.isdigit():
        return (start, end) if _card_brand_ok(text) and luhn_ok(text) else None
    sep = " " if " " in text else "-" if "-" in text else "."
    if sep == "." and _continues_number(data, start, end, b"."):
        return None
    groups = text.split(sep)
    # the last group of a 4-4-4-x grouping may be short: 3056 9309 0259 04
    short_end = len(groups) > 2 and all(len(g) == 4 for g in groups[:-1])
    if any(len(g) < 3 or not g.isdigit() for g in (groups[:-1] if short_end else groups)):
        return None
    if not groups[-1].isdigit():
        return None
    while len(groups) > 1:
        digits = "".join(groups)
        if 13 <= len(digits) <= 19 and _card_brand_ok(digits) and luhn_ok(digits):
            return start, start + len(sep.join(groups))
        if sep == ".":
            return None
        groups.pop()
    return None


_IBAN_LENGTHS = {
    "AD": 24,
    "AE": 23,
    "AL": 28,
    "AT": 20,
    "AZ": 28,
    "BA": 20,
    "BE": 16,
    "BG": 22,
    "BH": 22,
    "BR": 29,
    "BY": 28,
    "CH": 21,
    "CR": 22,
    "CY": 28,
    "CZ": 24,
    "DE": 22,
    "DK": 18,
    "DO": 28,
    "EE": 20,
    "EG": 29,
    "ES": 24,
    "FI": 18,
    "FO": 18,
    "FR": 27,
    "GB": 22,
    "GE": 22,
    "GI": 23,
    "GL": 18,
    "GR": 27,
    "GT": 28,
    "HR": 21,
    "HU": 28,
    "IE": 22,
    "IL": 23,
    "IQ": 23,
    "IS": 26,
    "IT": 27,
    "JO": 30,
    "KW": 30,
    "KZ": 20,
    "LB": 28,
    "LC": 32,
    "LI": 21,
    "LT": 20,
    "LU": 20,
    "LV": 21,
    "MC": 27,
    "MD": 24,
    "ME": 22,
    "MK": 19,
    "MR": 27,
    "MT": 31,
    "MU": 30,
    "NL": 18,
    "NO": 15,
    "PK": 24,
    "PL": 28,
    "PS": 29,
    "PT": 25,
    "QA": 29,
    "RO": 24,
    "RS": 22,
    "SA": 24,
    "SC": 31,
    "SE": 24,
    "SI": 19,
    "SK": 24,
    "SM": 27,
    "ST": 25,
    "SV": 28,
    "TL": 23,
    "TN": 24,
    "TR": 26,
    "UA": 29,
    "VA": 22,
    "VG": 24,
    "XK": 20,
}


def iban_ok(compact: str) -> bool:
    if len(compact) != _IBAN_LENGTHS.get(compact[:2], -1):
        return False
    rearranged = compact[4:] + compact[:4]
    try:
        return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1
    except ValueError:
        return False


# countries whose code is made of hex letters, so a lower-case hex id may start like their IBANs; their
# account numbers (BBAN) are all digits, which random hex rarely is
_HEX_COUNTRIES = {"AE", "BA", "BE", "DE"}


def iban(data: bytes, start: int, end: int) -> Span:
    """A known country, that country's length, and the ISO 13616 mod-97 checksum. The candidate is
    cut to the country's length, so a word that follows the IBAN is not swallowed. Written in lower
    case (`de89 3704 ...`) the cut must fall before a space or the end, since lower-case hex ids are
    common and a piece of one passes the checksum once in 97 times."""
    text = data[start:end].decode("ascii")
    upper = text.upper()
    want = _IBAN_LENGTHS.get(upper[:2])
    if want is None:
        return None
    lower = not text[:2].isupper()
    count = 0
    for i, ch in enumerate(text):
        if ch != " ":
            count += 1
            if count == want:
                if lower and text[i + 1 : i + 2] not in ("", " "):
                    return None
                if lower and upper[:2] in _HEX_COUNTRIES and not text[4 : i + 1].replace(" ", "").isdigit():
                    return None
                compact = upper[: i + 1].replace(" ", "")
                return (start, start + i + 1) if iban_ok(compact) else None
    return None


def ssn(data: bytes, start: int, end: int) -> Span:
    """US SSN `AAA-GG-SSSS`: one separator style; no 000/666/9xx area, 00 group or 0000 serial; not a
    piece of a longer number."""
    text = data[start:end].decode("ascii")
    if text[3] != text[6]:
        return None
    area, group, serial = text[:3], text[4:6], text[7:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return None
    if _continues_number(data, start, end, text[3].encode()):
        return None
    return start, end


def _continues_number(data: bytes, start: int, end: int, seps: bytes, lead: bytes = b"") -> bool:
    """True when digits, or one of `seps` and digits, touch the candidate on either side; `lead`
    separators count on the left side only (`5529 0296 6499 3708` is one number, not a phone)."""
    before = data[start - 2 : start] if start >= 2 else data[:start]
    after = data[end : end + 2]
    if before[-1:] and before[-1] in _DIGITS:
        return True
    if after[:1] and after[0] in _DIGITS:
        return True
    if len(before) == 2 and (before[1] in seps or before[1] in lead) and before[0] in _DIGITS:
        return True
    return len(after) == 2 and after[0] in seps and after[1] in _DIGITS


_VERSION_LABEL = re.compile(rb"(?i)(?:version|ver|release|build|firmware)[\s\x00:=\"']*\Z")


def ipv4(data: bytes, start: int, end: int) -> Span:
    """Four octets that are not part of a longer dotted run (version numbers such as 1.2.3.4.5) and
    not labelled a version (`version 1.2.3.4`, a key such as `app.lib_version`); the unspecified
    address and loopback name no one."""
    if _continues_number(data, start, end, b"."):
        return None
    if data.startswith((b"0.0.0.0", b"127."), start):
        return None
    if _VERSION_LABEL.search(data, max(0, start - 24), start) is not None:
        return None
    return start, end


def ipv6(data: bytes, start: int, end: int) -> Span:
    """Parses as an IPv6 address; stands alone (no hex or colon right around it); a compressed form
    needs three groups or a group of three or more digits, so `a[1::2]` or `Foo::Bar` stay."""
    if start > 0 and (data[start - 1] in _HEX_COLON or data[start - 1] in _WORD):
        return None
    if end < len(data) and (data[end] in _HEX_COLON or data[end] in _WORD):
        return None
    text = data[start:end].decode("ascii")
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return None
    if address.is_unspecified or address.is_loopback:
        return None
    if "::" in text:
        groups = [g for g in text.replace("::", ":").split(":") if g]
        if len(groups) < 3 and not any(len(g) >= 3 for g in groups):
            return None
    return start, end


def _digit_groups(text: str) -> list[str]:
    return _DIGIT_RUN.findall(text)


def _looks_like_date(text: str, groups: list[str]) -> bool:
    """`05.06.2024 10.30`, `2024-05-06 ...`: the first three groups form a date with a 4-digit year."""
    if len(groups) < 3:
        return False
    a, b, c = groups[:3]
    if len(a) == 4 and len(b) <= 2 and len(c) <= 2:
        return 1 <= int(b) <= 12 and 1 <= int(c) <= 31
    if len(a) <= 2 and len(b) <= 2 and len(c) == 4:
        return 1 <= int(a) <= 31 and 1 <= int(b) <= 31
    return False


def phone(data: bytes, start: int, end: int) -> Span:
    """8-15 digits (E.164 allows 15, plus a trunk zero), not a date, not part of a longer number."""
    text = data[start:end].decode("utf-8", "replace")
    groups = _digit_groups(text)
    joined = "".join(groups)
    if not 8 <= len(joined) <= 16:
        return None
    if _looks_like_date(text, groups):
        return None
    if len(set(joined)) == 1:
        return None
    if _continues_number(data, start, end, b".-/", lead=b" "):
        return None
    return start, end


def token_end(data: bytes, start: int, end: int) -> Span:
    """A fixed-length token is not cut out of a longer run of token characters."""
    if end < len(data) and data[end] in _TOKEN:
        return None
    return start, end


_B64 = _WORD | frozenset(b"/+=")


def b64_end(data: bytes, start: int, end: int) -> Span:
    """A fixed-length base64 secret is not cut out of a longer base64 run."""
    if end < len(data) and data[end] in _B64:
        return None
    return start, end


def random_token(data: bytes, start: int, end: int) -> Span:
    """A secret looks random: letters and digits both present (rules out `sk-learn-this-weekend`)."""
    body = data[start:end]
    if not any(c in _DIGITS for c in body) or not any(65 <= c <= 90 or 97 <= c <= 122 for c in body):
        return None
    return start, end


def mixed_case_token(data: bytes, start: int, end: int) -> Span:
    """Upper case, lower case and digits (rules out hex hashes such as 40-character git SHAs)."""
    body = data[start:end]
    if not (
        any(65 <= c <= 90 for c in body)
        and any(97 <= c <= 122 for c in body)
        and any(c in _DIGITS for c in body)
    ):
        return None
    return start, end


_IMAGE_TLDS = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "tif", "tiff", "avif"})


def email(data: bytes, start: int, end: int) -> Span:
    """Rejects retina image names (`logo@2x.png`)."""
    tld = data[data.rfind(b".", start, end) + 1 : end].lower()
    if tld.decode("ascii", "replace") in _IMAGE_TLDS:
        return None
    return start, end


def url_password(data: bytes, start: int, end: int) -> Span:
    """Skips placeholders (`${PASSWORD}`, `****`, `<password>`) that hold no secret."""
    body = data[start:end]
    if body.startswith((b"${", b"{{", b"<", b"%s")) or set(body) <= {ord("*"), ord("x"), ord("X")}:
        return None
    return start, end


_NOT_SECRETS = frozenset({
    b"true", b"false", b"null", b"none", b"nil", b"required", b"optional", b"string", b"empty",
    b"redacted", b"hidden", b"masked", b"changeme", b"undefined", b"unset", b"default",
})


# code that reads a secret rather than holding one: `getpass.getpass(`, `os.environ[`, `resp.json()[`,
# `settings.SECRET_KEY`, `OpenAI(api_key=api_key)` — what a code assistant's prompts are full of
_CODE_READ = re.compile(
    rb"[A-Za-z_][\w.]*(?:\(\))?[(\[][)\],;]*\Z|(?:[A-Za-z_]\w*\.)+[A-Z][A-Z0-9]*_[A-Z0-9_]+\b|"
    rb"(?i:api_?key|apikey|password|passwd|pwd|secret|token|access_token|auth_token|client_secret|secret_key)"
    rb"[),;]*\Z"
)


def labelled_secret(data: bytes, start: int, end: int) -> Span:
    """The value after a `password=` style label, unless it is a placeholder, a path, a word that
    stands for no value (`password: required`, `api_key=None`, `secret: ${SECRET}`) or code that reads
    the secret from elsewhere (`password = getpass.getpass(`, `api_key=os.environ[`, `api_key=api_key`)."""
    value = data[start:end]
    if value.lower() in _NOT_SECRETS or value.startswith(b"/"):  # `pwd=/home/app` is a directory
        return None
    if _CODE_READ.match(value) is not None:
        return None
    return url_password(data, start, end)


_HEX = frozenset(b"0123456789abcdefABCDEF")
_PROSE_LABEL = re.compile(
    rb"(?i)(password|passwd|passphrase|secret[ _\-]?key|api[ _\-]?key|access[ _\-]?key|secret|token)"
)
_LOWER_RUN = re.compile(rb"[a-z]+")
_IMAGE_BASE64 = (b"iVBORw0KGgo", b"/9j/", b"R0lGOD", b"UklGR")


def prose_secret(data: bytes, start: int, end: int) -> Span:
    """A value named a secret in prose (`the secret wJalr…`, `password is …`): in prose the next word is
    usually a word, so only what reads as machine-made counts.

    After `password` or `passphrase`, letters with digits (people choose `Summer2024Breeze`). After
    `secret`, `token` or a key, only random-looking text: a name (`ChatCompletionChunk2`,
    `Meta-Llama-3-70B-Instruct`, `prod/MyApp/DbCredentials2024`) has lower-case runs of words, which
    random text rarely has; hex digests (git SHAs, checksums) follow `token` and `secret` in CI logs, so
    hex counts only after an `api key`, `access key` or `secret key`; base64 images and blobs longer than
    any key are none."""
    value = data[start:end]
    if len(value) > 128 or value.startswith(_IMAGE_BASE64):
        return None
    chars = set(value)
    digit = any(48 <= c <= 57 for c in chars)
    upper = any(65 <= c <= 90 for c in chars)
    lower = any(97 <= c <= 122 for c in chars)
    if not digit or not (upper or lower):
        return None
    labels = _PROSE_LABEL.findall(data, max(0, start - 48), start)
    label = labels[-1].lower() if labels else b""
    if label.startswith(b"pass"):
        return labelled_secret(data, start, end)
    if chars <= _HEX:
        keyed = label.endswith(b"key") and label != b"key"
        return labelled_secret(data, start, end) if keyed and len(value) >= 32 else None
    runs = _LOWER_RUN.findall(value)
    words = sum(len(r) for r in runs) / len(runs) if runs else 0.0
    if len(value) < 16 or words >= 2.6 or not (upper and lower):
        return None
    return labelled_secret(data, start, end)


_NOT_KEY_SECRETS = _NOT_SECRETS | {b"bearer", b"basic", b"token", b"n/a"}
_AFTER_KEY = re.compile(rb"\x00+:")


def key_secret(data: bytes, start: int, end: int) -> Span:
    """The value of a key that names a secret, unless it is a placeholder (`none`, `${TOKEN}`, `****`)
    or the next key of a map (the secret's value was a map or a number, which holds no such text)."""
    value = data[start:end]
    if value.lower() in _NOT_KEY_SECRETS or _AFTER_KEY.match(data, end) is not None:
        return None
    return url_password(data, start, end)


def basic_credentials(data: bytes, start: int, end: int) -> Span:
    """HTTP Basic credentials: base64 that decodes to printable `user:password`."""
    try:
        decoded = base64.b64decode(data[start:end], validate=True)
    except (binascii.Error, ValueError):
        return None
    if b":" not in decoded or not all(32 <= c < 127 for c in decoded):
        return None
    return start, end
