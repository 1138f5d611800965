"""The built-in detectors: what each finds, as an RE2 pattern plus a validator that runs on candidates.

Patterns are RE2 syntax (linear time, no backreferences or look-around) and are matched against
UTF-8 bytes. `\\b` is RE2's ASCII word boundary, so a value written next to CJK text without spaces
is still found. Patterns never match a NUL byte, except in `_KEY_VALUE`: the scanner joins several
values with NUL between them and scans them in one pass, and JSON is scanned as its strings with a key
and its value joined by NULs around a colon, which the detectors that need a label accept as the
label's separator (`{"phone": "..."}` is a labelled number; two strings side by side are not).

A detector's `group` names the capture group that holds the value when the pattern needs context
(the `password` in `postgres://app:password@db`, the number after `Tel.:`); 0 means the whole match.
Overlapping findings are merged into one replacement, labelled by the detector with the higher
`priority`, so no part of either value survives.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from spanhouse.redact import _validators as v

Validator = Callable[[bytes, int, int], "tuple[int, int] | None"]


@dataclass(frozen=True)
class Detector:
    """A named pattern whose matches are replaced by `<TOKEN:hash>`.

    Guarantees: `pattern` compiles with RE2; `validators` run in order on each candidate and may narrow
    it; `normalize` maps a found value to the form that is hashed, so `Bob@X.com` and `bob@x.com` get
    the same token."""

    name: str
    pattern: str
    priority: int = 50
    group: int = 0
    validators: tuple[Validator, ...] = ()
    normalize: Callable[[str], str] = field(default=lambda s: s)

    @property
    def token(self) -> str:
        return self.name.upper()


def _digits(s: str) -> str:
    return "".join(filter(str.isdigit, s))


def _phone_norm(s: str) -> str:
    return ("+" if s.lstrip().startswith("+") else "") + _digits(s)


_L = r"\p{Latin}0-9"  # letters of Latin-script languages (accents included) and digits
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_H = r"[0-9A-Fa-f]{1,4}"
_KEY_VALUE = r"\x00+:\x00+"  # a key and its value, as spanhouse.redact.text joins them
# a label starts a word or follows `_` (`DB_PASSWORD=`, `customer_phone`); CJK labels need no boundary
_LABEL_START = r"(?:\b|_)"
_PHONE_WORDS = (
    rf"(?:{_LABEL_START}(?i:phone|tel|telephone|mobile|cell|whatsapp|fax|sms|handy|telefon|telefone|teléfono|"
    r"téléphone)|电话|手机|電話|携帯|전화|휴대폰|телефон)"
)
_SECRET_WORDS = (
    r"password|passwd|passwort|pwd|client_?secret|secret_?key|api_?key|apikey|access_?token|auth_?token|secret"
)
# words that name a secret only as a key: in prose `authorization` or `credentials` is a word like another
_SECRET_KEY_WORDS = (
    _SECRET_WORDS + r"|passphrase|api-key|private[_\-]?key|client[_\-]secret|"
    r"(?:access|refresh|id|auth|session|bearer|api|oauth|csrf|xsrf)[_\-]?token|authorization|credentials?"
)
_AWS_SECRET_WORDS = r"aws_?secret_?access_?key|secret_?access_?key|aws_?secret"
_AUTH_SCHEME = r"(?:(?i:bearer|basic|token|digest|apikey)[ \t]+)?"  # of an Authorization header
_AWS_KEY_ID = r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}"

EMAIL = Detector(
    "email",
    # `%40` is the @ of an email inside a URL's query (`?email=bob%40example.com`), `\u0040` the @
    # of one that a JSON escape was written out in plain text (`bob\u0040example.com`)
    rf"[{_L}_%+\-](?:[{_L}._%+\-]*[{_L}_%+\-])?(?:@|%40|\\u0040)(?:[{_L}](?:[{_L}\-]*[{_L}])?\.)+[A-Za-z]{{2,24}}\b",
    priority=60,
    validators=(v.email,),
    normalize=lambda s: s.lower().replace("%40", "@").replace("\\u0040", "@"),
)

PHONE = Detector(
    "phone",
    "|".join(
        (
            # international: +CC then digit groups, optional (0) or (area) part
            r"\(?\+[1-9][0-9]{0,3}\)?(?:[ .\-]?(?:\([0-9]{1,4}\)|[0-9]{1,5})){1,7}\b",
            # the same with the 00 international prefix, groups separated: 0049 170 1234567
            r"\b00[1-9][0-9]{0,2}(?:[ .\-](?:\([0-9]{1,4}\)|[0-9]{1,8})){2,6}\b",
            # North American national: (415) 555-0123, 415-555-0123, 415.555.0123, 1-415-555-0123
            r"(?:\b1[ .\-])?(?:\([2-9][0-9]{2}\)|\b[2-9][0-9]{2})[ .\-]?[2-9][0-9]{2}[ .\-][0-9]{4}\b",
            # Chinese mobile with separators: 138 0013 8000
            r"\b1[3-9][0-9][ \-][0-9]{4}[ \-][0-9]{4}\b",
        )
    ),
    priority=30,
    validators=(v.phone,),
    normalize=_phone_norm,
)

PHONE_TRUNK = Detector(
    "phone",
    # trunk-prefixed national (Europe, Asia, Oceania): 020 7946 0958, 03-1234-5678, 06 12 34 56 78;
    # not right after a digit and a separator, so the month of 2025-03-14 is no candidate
    r"(?:^|[^0-9.\-/])((?:\(0[1-9][0-9]{0,4}\)|\b0[1-9][0-9]{0,4})(?:[ .\-/][0-9]{2,8}){1,5})\b",
    priority=30,
    group=1,
    validators=(v.phone,),
    normalize=_phone_norm,
)

PHONE_CONTEXT = Detector(
    "phone",
    _PHONE_WORDS +
    rf"(?:[^0-9\n\x00]|{_KEY_VALUE}){{0,12}}(\+?[0-9]{{8,15}})\b",
    priority=30,
    group=1,
    validators=(v.phone,),
    normalize=_phone_norm,
)

CARD = Detector(
    "card",
    # with spaces, dashes or nothing between digits; or in groups of 3 or more separated by dots
    r"\b[0-9](?:[ \-]?[0-9]){12,18}\b|\b[0-9]{4}(?:\.[0-9]{3,6}){2,4}\b",
    priority=50,
    validators=(v.card,),
    normalize=_digits,
)

IBAN = Detector(
    "iban",
    r"\b[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11,30}\b",
    priority=55,
    validators=(v.iban,),
    normalize=lambda s: s.replace(" ", "").upper(),
)

SSN = Detector(
    "ssn", r"\b[0-9]{3}[ \-][0-9]{2}[ \-][0-9]{4}\b", priority=45, validators=(v.ssn,), normalize=_digits
)

IPV4 = Detector("ipv4", rf"\b(?:{_OCTET}\.){{3}}{_OCTET}\b", priority=35, validators=(v.ipv4,))

IPV6 = Detector(
    "ipv6",
    rf"(?:{_H}:){{7}}{_H}|(?:{_H}(?::{_H})*)?::(?:{_H}(?::{_H})*)?(?::(?:{_OCTET}\.){{3}}{_OCTET})?",
    priority=40,
    validators=(v.ipv6,),
    normalize=str.lower,
)

JWT = Detector("jwt", r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*", priority=90)

OPENAI_KEY = Detector(
    "openai_key",
    r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}",
    priority=80,
    validators=(v.random_token,),
)

ANTHROPIC_KEY = Detector(
    "anthropic_key", r"\bsk-ant-(?:api|admin|oat|sid)[0-9]{2}-[A-Za-z0-9_\-]{20,}", priority=85
)

AWS_KEY = Detector("aws_key", _AWS_KEY_ID + r"\b", priority=80)

AWS_SECRET = Detector(
    "aws_key",
    # a secret access key is 40 base64 characters, told apart from hashes only by its label
    rf"(?i:{_AWS_SECRET_WORDS})"
    rf"(?:[\"']?\s*[:=]\s*[\"']?|{_KEY_VALUE})([A-Za-z0-9/+]{{40}})",
    priority=80,
    group=1,
    validators=(v.b64_end, v.mixed_case_token),
)

AWS_SECRET_BESIDE_ID = Detector(
    "aws_key",
    # or by the access key id right before it, as credential files, CSV exports and env dumps pair them
    _AWS_KEY_ID + r"[\"']?(?:[ \t]*[,:;|=][ \t]*|[ \t]+)[\"']?([A-Za-z0-9/+]{40})",
    priority=80,
    group=1,
    validators=(v.b64_end, v.mixed_case_token),
)

GITHUB_TOKEN = Detector(
    "github_token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b", priority=80
)

SLACK_TOKEN = Detector(
    "slack_token",
    r"\bxox[abposre]-[A-Za-z0-9\-]{10,}|https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_\-]{20,}",
    priority=80,
)

STRIPE_KEY = Detector(
    "stripe_key", r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}\b|\bwhsec_[A-Za-z0-9]{20,}\b", priority=80
)

GOOGLE_KEY = Detector(
    "google_key",
    r"\bAIza[0-9A-Za-z_\-]{35}|\bya29\.[0-9A-Za-z_\-]{20,}",
    priority=80,
    validators=(v.token_end,),
)

BEARER_TOKEN = Detector(
    "bearer_token",
    r"\b(?i:bearer)\s+([A-Za-z0-9\-._~+/]{20,}=*)",
    priority=70,
    group=1,
    validators=(v.random_token,),
)

PRIVATE_KEY = Detector(
    "private_key",
    # the whole block, header to END line, whatever lies between: armor headers (`Version: GnuPG
    # v2.0.22`, `Proc-Type: 4,ENCRYPTED`), line breaks written as `\n` escapes; without an END line
    # (a cut value) everything to the end of the text. Only a run of five dashes (the next armor line)
    # or a NUL (the next value of a joined scan) ends it early.
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?:[^\x00\-]|-{1,4}[^\x00\-])*"
    r"(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----)?",
    priority=100,
)

_USERINFO = r"[A-Za-z0-9\-._~%!$&*+,;=]"  # RFC 3986 userinfo characters (ASCII, percent-encoded)

URL_PASSWORD = Detector(
    "url_password",
    # a password may hold `#` or `^` unencoded (`redis://:s3cr#t@cache`): not valid in a URL, yet written
    rf"://{_USERINFO}*:((?:{_USERINFO}|[#^])+)@",
    priority=75,
    group=1,
    validators=(v.url_password,),
)

PASSWORD = Detector(
    "password",
    # the value after a label that names a secret: `password=…` in a connection or query string,
    # `"client_secret": "…"` in JSON, `API_KEY: …` in a config file
    rf"{_LABEL_START}(?i:{_SECRET_WORDS})"
    rf"(?:[\"']?\s*[:=]\s*[\"']?|{_KEY_VALUE}){_AUTH_SCHEME}([^\s\"'&;,\x00]{{4,}})",
    priority=60,
    group=1,
    validators=(v.labelled_secret,),
)

AUTH_HEADER = Detector(
    "password",
    # an Authorization header written out in text (`Authorization: Token 9f8e…` in a log line or a
    # pasted curl command): in prose the word is a word like another, so only with its scheme; Bearer
    # and Basic credentials have detectors of their own
    rf"{_LABEL_START}(?i:(?:proxy-)?authorization)[\"']?[ \t]*[:=][ \t]*[\"']?(?i:token|apikey|api-key)[ \t]+"
    r"([A-Za-z0-9\-._~+/=]{8,})",
    priority=60,
    group=1,
    validators=(v.labelled_secret,),
)

PASSWORD_PROSE = Detector(
    "password",
    # a secret named in prose, with no `:` or `=` (`the secret wJalrXUtn…`, `password is Xk9…`, `use api
    # key 7f3a…`): the validator keeps only values that read as machine-made
    r"\b(?i:password|passwd|passphrase|secret|token|api[ _\-]?key|access[ _\-]?key|secret[ _\-]?key)\b"
    r"(?:[ \t]+(?i:is|was|now|set|to)\b){0,3}[ \t]+[`\"']?([A-Za-z0-9+/=_\-]{16,})",
    priority=58,
    group=1,
    validators=(v.prose_secret,),
)

PASSWORD_QUOTED = Detector(
    "password",
    # a quoted value is whole, blanks included: `DB_PASSWORD='correct horse battery staple'`
    rf"{_LABEL_START}(?i:{_SECRET_WORDS})[\"']?[ \t]*[:=][ \t]*[\"']([^\"'\n\x00]{{4,}})[\"']",
    priority=60,
    group=1,
    validators=(v.labelled_secret,),
)

PASSWORD_KEY = Detector(
    "password",
    # the whole value of a key that names a secret (an attribute, map or JSON key: `db.password`,
    # `x-api-key`, `authorization`, `refresh_token`), after the scheme of an Authorization header; a
    # value is all of a string, so it may hold blanks (`correct horse battery staple`)
    rf"{_LABEL_START}(?i:{_SECRET_KEY_WORDS}){_KEY_VALUE}{_AUTH_SCHEME}([^\x00\n][^\x00]{{3,}})",
    priority=60,
    group=1,
    validators=(v.key_secret,),
)

PASSWORD_KEY_QUOTED = Detector(
    "password",
    # the same written as JSON (`"x-api-key": "…"`): what the raw text of a document shows, so that a
    # document whose raw text matches nothing is known to hold nothing
    rf"{_LABEL_START}(?i:{_SECRET_KEY_WORDS})\"[ \t\r\n]*:[ \t\r\n]*\"{_AUTH_SCHEME}([^\x00\n\"][^\x00\"]{{3,}})",
    priority=60,
    group=1,
    validators=(v.key_secret,),
)

BASIC_AUTH = Detector(
    "basic_auth",
    r"\b(?i:basic)\s+([A-Za-z0-9+/]{8,}={0,2})",
    priority=70,
    group=1,
    validators=(v.basic_credentials,),
)

BUILTIN: tuple[Detector, ...] = (
    EMAIL,
    PHONE,
    PHONE_TRUNK,
    PHONE_CONTEXT,
    CARD,
    IBAN,
    SSN,
    IPV4,
    IPV6,
    JWT,
    OPENAI_KEY,
    ANTHROPIC_KEY,
    AWS_KEY,
    AWS_SECRET,
    AWS_SECRET_BESIDE_ID,
    GITHUB_TOKEN,
    SLACK_TOKEN,
    STRIPE_KEY,
    GOOGLE_KEY,
    BEARER_TOKEN,
    PRIVATE_KEY,
    URL_PASSWORD,
    PASSWORD,
    PASSWORD_QUOTED,
    PASSWORD_PROSE,
    AUTH_HEADER,
    PASSWORD_KEY,
    PASSWORD_KEY_QUOTED,
    BASIC_AUTH,
)
"""Every built-in detector, in no particular order (priority decides overlaps)."""

BUILTIN_NAMES: tuple[str, ...] = tuple(dict.fromkeys(d.name for d in BUILTIN))
"""The names accepted in the `detectors` setting."""

LABEL_KEY = re.compile(rf"{_LABEL_START}(?i:{_SECRET_KEY_WORDS}|{_AWS_SECRET_WORDS})|{_PHONE_WORDS}"
                       r"|(?i:version|release|build|firmware)\Z")
"""Finds, in a key, a word that the label detectors read as the label of the key's value (or, for a
version, that the address detector reads as saying `1.2.3.4` is none): only the values of keys it
finds need scanning with their key before them (what it finds beyond the labels is harmless: the
detectors decide)."""

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def custom(name: str, pattern: str, group: int = 0, priority: int = 65) -> Detector:
    """A user pattern from the configuration (RE2 syntax), replaced as `<NAME:hash>`."""
    if not _NAME_RE.match(name):
        raise ValueError(f"pattern name {name!r} must be lower_snake_case letters, digits and '_' (max 40)")
    return Detector(name, pattern, priority=priority, group=group)
