"""A labeled corpus for the redaction detectors, generated deterministically.

Positives: realistic LLM message text (support tickets, agent tool output, config snippets, logs) in
several languages, each carrying one or more sensitive values whose detector and exact text are
known. Values are made the way the real ones are: valid Luhn card numbers per network and grouping,
IBANs with correct mod-97 check digits per country, phone numbers in each country's written formats,
JWTs that decode to JSON, provider keys with their real prefixes and lengths, PEM blocks.

Hard negatives: text full of things that look like sensitive values but are not — trace and span
ids, UUIDs, git SHAs, hashes, Luhn-invalid order numbers, EAN barcodes, version strings, timestamps,
dates, prices, provider request ids, code. Each must come out of redaction unchanged.

`positives()` → list of (text, [(detector, value), ...]); `hard_negatives()` → list of text.
"""

from __future__ import annotations

import base64
import json
import random
import string

SEED = 20251127
ALNUM = string.ascii_letters + string.digits
B64URL = ALNUM + "-_"


def _rand(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


# --- value makers ---------------------------------------------------------------------------

FIRST = [
    "john",
    "maria",
    "josé",
    "françois",
    "søren",
    "anna",
    "wei",
    "yuki",
    "olga",
    "ahmed",
    "priya",
    "lukas",
    "chloé",
    "mateo",
    "ingrid",
    "kwame",
    "ana",
    "björn",
    "zoë",
    "raúl",
]
LAST = [
    "smith",
    "garcía",
    "müller",
    "dubois",
    "nielsen",
    "kowalski",
    "zhang",
    "tanaka",
    "ivanova",
    "hassan",
    "sharma",
    "novák",
    "o'brien",
    "rossi",
    "lindqvist",
    "mensah",
    "silva",
    "meier",
]
DOMAINS = [
    "example.com",
    "acme-corp.io",
    "mail.co.uk",
    "gmail.com",
    "empresa.es",
    "firma.de",
    "univ.ac.jp",
    "outlook.fr",
    "contoso.onmicrosoft.com",
    "startup.ai",
    "bank.com.br",
    "yandex.ru",
    "qq.com",
    "web.de",
    "customer-support.example.org",
]


def email(rng: random.Random) -> str:
    f, last = rng.choice(FIRST), rng.choice(LAST).replace("'", "")
    local = rng.choice(
        [
            f"{f}.{last}",
            f"{f}_{last}",
            f"{f[0]}{last}{rng.randint(1, 99)}",
            f"{f}+{rng.choice(['billing', 'support', 'test'])}",
            f"{f}.{last}".title(),
            last,
        ]
    )
    return f"{local}@{rng.choice(DOMAINS)}"


def phone(rng: random.Random) -> str:
    d = lambda n: _digits(rng, n)  # noqa: E731
    nz = lambda: str(rng.randint(2, 9))  # noqa: E731
    forms = [
        lambda: f"({nz()}{d(2)}) {nz()}{d(2)}-{d(4)}",
        lambda: f"{nz()}{d(2)}-{nz()}{d(2)}-{d(4)}",
        lambda: f"{nz()}{d(2)}.{nz()}{d(2)}.{d(4)}",
        lambda: f"+1 {nz()}{d(2)} {nz()}{d(2)} {d(4)}",
        lambda: f"+1-{nz()}{d(2)}-{nz()}{d(2)}-{d(4)}",
        lambda: f"1-800-{nz()}{d(2)}-{d(4)}",
        lambda: f"+44 20 {d(4)} {d(4)}",
        lambda: f"020 {d(4)} {d(4)}",
        lambda: f"+44 7{d(3)} {d(6)}",
        lambda: f"07{d(3)} {d(6)}",
        lambda: f"+49 30 {d(8)}",
        lambda: f"030 {d(8)}",
        lambda: f"+49 151 {d(8)}",
        lambda: f"0151 {d(8)}",
        lambda: f"030/{d(7)}",
        lambda: f"+33 1 {d(2)} {d(2)} {d(2)} {d(2)}",
        lambda: f"01 {d(2)} {d(2)} {d(2)} {d(2)}",
        lambda: f"06.{d(2)}.{d(2)}.{d(2)}.{d(2)}",
        lambda: f"+81 3-{d(4)}-{d(4)}",
        lambda: f"03-{d(4)}-{d(4)}",
        lambda: f"090-{d(4)}-{d(4)}",
        lambda: f"+86 138 {d(4)} {d(4)}",
        lambda: f"139 {d(4)} {d(4)}",
        lambda: f"+91 9{d(4)} {d(5)}",
        lambda: f"+61 2 {d(4)} {d(4)}",
        lambda: f"04{d(2)} {d(3)} {d(3)}",
        lambda: f"+55 11 9{d(4)}-{d(4)}",
        lambda: f"+34 6{d(2)} {d(3)} {d(3)}",
        lambda: f"+7 (495) {d(3)}-{d(2)}-{d(2)}",
        lambda: f"+49151{d(8)}",
        lambda: f"+39 06 {d(4)} {d(4)}",
        lambda: f"+31 6 {d(8)}",
        lambda: f"+44 (0)20 {d(4)} {d(4)}",
        lambda: f"(+44) 20 {d(4)} {d(4)}",
        lambda: f"+353 1 {d(3)} {d(4)}",
        lambda: f"+852 {d(4)} {d(4)}",
        lambda: f"+65 {rng.choice('689')}{d(3)} {d(4)}",
        lambda: f"+82 10-{d(4)}-{d(4)}",
        lambda: f"010-{d(4)}-{d(4)}",
    ]
    return rng.choice(forms)()


def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + _digits(rng, length - len(prefix) - 1)
    for check in "0123456789":
        if _luhn(body + check):
            return body + check
    raise AssertionError


def _luhn(num: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(num)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


CARD_KINDS = [
    ("4", 16),
    ("51", 16),
    ("55", 16),
    ("2221", 16),
    ("2720", 16),
    ("34", 15),
    ("37", 15),
    ("6011", 16),
    ("65", 16),
    ("3530", 16),
    ("36", 14),
    ("62", 16),
    ("62", 19),
    ("4", 19),
]


def card(rng: random.Random) -> str:
    prefix, length = rng.choice(CARD_KINDS)
    num = luhn_complete(prefix, length, rng)
    style = rng.choice(["space", "dash", "compact"])
    if style == "compact":
        return num
    sep = " " if style == "space" else "-"
    if length == 15:
        return sep.join((num[:4], num[4:10], num[10:]))
    if length == 14:
        return sep.join((num[:4], num[4:10], num[10:]))
    return sep.join(num[i : i + 4] for i in range(0, length, 4))


IBAN_FORMATS = {  # country: BBAN shape (n = digits, a = upper letters, c = alphanumeric)
    "DE": "18n",
    "GB": "4a14n",
    "FR": "10n11c2n",
    "ES": "20n",
    "IT": "1a10n12c",
    "NL": "4a10n",
    "BE": "12n",
    "CH": "5n12c",
    "AT": "16n",
    "PL": "24n",
    "SE": "20n",
    "NO": "11n",
    "IE": "4a14n",
    "PT": "21n",
    "DK": "14n",
    "FI": "14n",
}


def _bban(shape: str, rng: random.Random) -> str:
    out, num = [], ""
    for ch in shape:
        if ch.isdigit():
            num += ch
            continue
        alphabet = {
            "n": string.digits,
            "a": string.ascii_uppercase,
            "c": string.ascii_uppercase + string.digits,
        }[ch]
        out.append(_rand(rng, alphabet, int(num)))
        num = ""
    return "".join(out)


def iban(rng: random.Random) -> str:
    country = rng.choice(sorted(IBAN_FORMATS))
    bban = _bban(IBAN_FORMATS[country], rng)
    rearranged = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in rearranged)) % 97
    compact = f"{country}{check:02d}{bban}"
    if rng.random() < 0.6:
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
    return compact


def ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    sep = rng.choice(["-", "-", " "])
    return f"{area:03d}{sep}{rng.randint(1, 99):02d}{sep}{rng.randint(1, 9999):04d}"


def ipv4(rng: random.Random) -> str:
    first = rng.choice([a for a in range(1, 224) if a != 127])
    return ".".join(str(x) for x in (first, rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254)))


def ipv6(rng: random.Random) -> str:
    groups = [format(rng.randint(0, 0xFFFF), "x") for _ in range(8)]
    groups[0] = rng.choice(["2001", "2a00", "2a02", "2607", "fe80", "2600"])
    form = rng.randint(0, 3)
    if form == 0:
        return ":".join(groups)
    if form == 1:
        return ":".join(g.zfill(4) for g in groups)
    if form == 2:
        return ":".join(groups[:3]) + "::" + ":".join(groups[6:])
    return groups[0] + ":" + groups[1] + "::" + groups[7]


def _b64url(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")


def jwt(rng: random.Random) -> str:
    header = {"alg": rng.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}
    payload = {
        "sub": _digits(rng, 10),
        "name": rng.choice(FIRST),
        "iat": 1714567890 + rng.randint(0, 10**6),
        "scope": rng.choice(["read", "read write", "admin"]),
    }
    return f"{_b64url(header)}.{_b64url(payload)}.{_rand(rng, B64URL, rng.choice([43, 86, 342]))}"


def openai_key(rng: random.Random) -> str:
    return rng.choice(
        [
            lambda: "sk-proj-" + _rand(rng, B64URL, 156),
            lambda: "sk-" + _rand(rng, ALNUM, 48),
            lambda: "sk-svcacct-" + _rand(rng, B64URL, 120),
            lambda: "sk-admin-" + _rand(rng, B64URL, 100),
        ]
    )()


def anthropic_key(rng: random.Random) -> str:
    return f"sk-ant-{rng.choice(['api03', 'admin01'])}-{_rand(rng, B64URL, 93)}AA"


def aws_key(rng: random.Random) -> str:
    return rng.choice(["AKIA", "ASIA"]) + _rand(rng, string.ascii_uppercase + "234567", 16)


def aws_secret(rng: random.Random) -> str:
    return _rand(rng, ALNUM + "/+", 40)


def github_token(rng: random.Random) -> str:
    return rng.choice(
        [
            lambda: rng.choice(["ghp_", "gho_", "ghs_", "ghu_"]) + _rand(rng, ALNUM, 36),
            lambda: "github_pat_" + _rand(rng, ALNUM, 22) + "_" + _rand(rng, ALNUM, 59),
        ]
    )()


def slack_token(rng: random.Random) -> str:
    return rng.choice(
        [
            lambda: f"xoxb-{_digits(rng, 12)}-{_digits(rng, 13)}-{_rand(rng, ALNUM, 24)}",
            lambda: (
                f"xoxp-{_digits(rng, 12)}-{_digits(rng, 12)}-{_digits(rng, 13)}-"
                f"{_rand(rng, 'abcdef0123456789', 32)}"
            ),
            lambda: (
                f"https://hooks.slack.com/services/T{_rand(rng, string.ascii_uppercase + string.digits, 8)}/"
                f"B{_rand(rng, string.ascii_uppercase + string.digits, 10)}/{_rand(rng, ALNUM, 24)}"
            ),
        ]
    )()


def stripe_key(rng: random.Random) -> str:
    return rng.choice(["sk_live_", "sk_test_", "rk_live_", "whsec_"]) + _rand(
        rng, ALNUM, rng.choice([24, 32, 99])
    )


def google_key(rng: random.Random) -> str:
    return rng.choice([lambda: "AIza" + _rand(rng, B64URL, 35), lambda: "ya29." + _rand(rng, B64URL, 120)])()


def private_key(rng: random.Random) -> str:
    kind = rng.choice(["RSA ", "EC ", "OPENSSH ", "", "ENCRYPTED "])
    lines = [_rand(rng, ALNUM + "+/", 64) for _ in range(rng.randint(3, 12))]
    return f"-----BEGIN {kind}PRIVATE KEY-----\n" + "\n".join(lines) + f"==\n-----END {kind}PRIVATE KEY-----"


def url_password(rng: random.Random) -> tuple[str, str]:
    password = _rand(rng, ALNUM + "!*_-.~", rng.randint(10, 24)) + rng.choice(["%40", "%23", "9", "Z"])
    scheme, user, host = rng.choice(
        [
            ("postgres", "app_user", "db.internal:5432/orders"),
            ("mysql", "root", "mysql-primary.internal:3306/crm"),
            ("mongodb+srv", "svc-etl", "cluster0.ab1cd.mongodb.net/prod"),
            ("redis", "", "cache.internal:6379/0"),
            ("amqp", "worker", "mq.internal:5672/%2F"),
            ("https", "deploy", "git.example.com/org/repo.git"),
        ]
    )
    return f"{scheme}://{user}:{password}@{host}", password


# --- text templates --------------------------------------------------------------------------

TEMPLATES: dict[str, list[str]] = {
    "email": [
        "Hi, please send the invoice to {v} instead of my old address.",
        "Customer {v} reports that the export button does nothing since Tuesday.",
        "Bitte schicken Sie die Rechnung an {v}, danke!",
        "Merci de répondre à {v} avant vendredi.",
        "Mi correo es {v}, ¿pueden confirmar la devolución?",
        "請將報告寄到{v}，謝謝。",
        "ご連絡は{v}までお願いします。",
        "Пишите на {v}, я отвечу завтра.",
        "From: {v}\nSubject: Refund request #48213",
        "tool result: user record found (email={v}, plan=pro, seats=12)",
        "<{v}> wrote: the summary is missing the Q3 numbers",
    ],
    "phone": [
        "You can reach me at {v} after 5pm.",
        "Call the customer back on {v} about the delayed order.",
        "Rufen Sie mich unter {v} an.",
        "Mon numéro est le {v}.",
        "Mi teléfono es {v}.",
        "電話番号は{v}です。",
        "联系电话：{v}，请尽快回复。",
        "Tel.: {v}",
        "WhatsApp: {v}",
        "caller_id={v} duration=342s outcome=resolved",
        "Phone: {v}\nAddress: 12 Market St",
    ],
    "card": [
        "My card number is {v}, expiry 09/27, please retry the charge.",
        "payment failed for card {v} (insufficient funds)",
        "Kartennummer: {v}",
        "Numéro de carte : {v}",
        "カード番号：{v}",
        "The user pasted their card {v} into the chat, can you update billing?",
        "charge.failed card={v} amount=49.00 currency=usd",
    ],
    "iban": [
        "Please refund to IBAN {v}.",
        "Meine IBAN lautet {v}.",
        "Virement sur le compte {v} svp.",
        "IBAN: {v}\nBIC: DEUTDEFFXXX",
        "Transfer pending to {v} (reference 2024-INV-8812).",
    ],
    "ssn": [
        "My SSN is {v} if you need it for the tax form.",
        "applicant ssn={v} dob=1988-04-12",
        "Social Security Number: {v}",
        "The W-9 shows {v} as the taxpayer id.",
    ],
    "ipv4": [
        "Login attempt from {v} was blocked.",
        "X-Forwarded-For: {v}",
        "The customer says their office IP is {v}, please allowlist it.",
        "connection reset by peer {v}:443",
        "Anmeldung von {v} fehlgeschlagen.",
    ],
    "ipv6": [
        "Login attempt from {v} was blocked.",
        "client_addr={v} status=403",
        "Please allowlist [{v}]:8443 for the webhook.",
        "Die Anfrage kam von {v}.",
    ],
    "jwt": [
        "Authorization header was {v} when it failed.",
        "Here is my session token: {v}",
        "curl -H 'X-Auth: {v}' https://api.internal/v1/me",
        "token={v}&redirect=/home",
    ],
    "api_key": [
        "I set OPENAI_API_KEY={v} but it still says unauthorized.",
        "Use this key for the test: {v}",
        'export API_KEY="{v}"',
        "config.yaml:\n  api_key: {v}\n  model: gpt-4o",
        "Der Schlüssel {v} funktioniert nicht mehr.",
        "错误：密钥 {v} 无效",
    ],
    "aws_secret": [
        "aws_secret_access_key = {v}",
        "AWS_SECRET_ACCESS_KEY={v}",
        '"SecretAccessKey": "{v}",',
    ],
    "bearer_token": [
        "Authorization: Bearer {v}",
        'curl -H "Authorization: Bearer {v}" https://api.example.com/v2/orders',
    ],
    "private_key": [
        "Here is the deploy key, please add it:\n{v}\nthanks",
        "```\n{v}\n```",
        "key_file contents: {v}",
    ],
    "url_password": [
        "DATABASE_URL={v}",
        "The connection string is {v}, but it times out.",
        "Verbindung: {v}",
    ],
}

API_KEY_MAKERS = {
    "openai_key": openai_key,
    "anthropic_key": anthropic_key,
    "aws_key": aws_key,
    "github_token": github_token,
    "slack_token": slack_token,
    "stripe_key": stripe_key,
    "google_key": google_key,
}
MAKERS = {
    "email": email,
    "phone": phone,
    "card": card,
    "iban": iban,
    "ssn": ssn,
    "ipv4": ipv4,
    "ipv6": ipv6,
    "jwt": jwt,
    "private_key": private_key,
}

# Recall thresholds from the issue: 99% for emails, cards, keys, JWTs, private keys; 95% for phones,
# IBANs, SSNs, IPs.
KEY_DETECTORS = (
    "openai_key",
    "anthropic_key",
    "aws_key",
    "github_token",
    "slack_token",
    "stripe_key",
    "google_key",
    "bearer_token",
    "url_password",
)
THRESHOLDS = {
    "email": 0.99,
    "card": 0.99,
    "jwt": 0.99,
    "private_key": 0.99,
    "api keys": 0.99,
    "phone": 0.95,
    "iban": 0.95,
    "ssn": 0.95,
    "ipv4": 0.95,
    "ipv6": 0.95,
    "password": 0.95,
}


def positives(per_detector: int = 120) -> list[tuple[str, list[tuple[str, str]]]]:
    rng = random.Random(SEED)
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for det, make in MAKERS.items():
        for _ in range(per_detector):
            value = make(rng)
            out.append((rng.choice(TEMPLATES[det]).format(v=value), [(det, value)]))
    for det, make in API_KEY_MAKERS.items():
        for _ in range(per_detector // 2):
            value = make(rng)
            out.append((rng.choice(TEMPLATES["api_key"]).format(v=value), [(det, value)]))
    for _ in range(per_detector // 2):
        value = aws_secret(rng)
        out.append((rng.choice(TEMPLATES["aws_secret"]).format(v=value), [("aws_key", value)]))
        value = _rand(rng, ALNUM + "-._~", rng.randint(32, 64))
        out.append((rng.choice(TEMPLATES["bearer_token"]).format(v=value), [("bearer_token", value)]))
        url, password = url_password(rng)
        out.append((rng.choice(TEMPLATES["url_password"]).format(v=url), [("url_password", password)]))
    for _ in range(per_detector):  # several kinds in one realistic message
        e, p, c, ip = email(rng), phone(rng), card(rng), ipv4(rng)
        text = (
            f"Hello, this is {rng.choice(FIRST).title()}. My email is {e} and my phone {p}. "
            f"I was charged twice on card {c}; my IP was {ip} at the time."
        )
        out.append((text, [("email", e), ("phone", p), ("card", c), ("ipv4", ip)]))
    out += [(text, [(det, value)]) for det, text, value in HANDWRITTEN]
    out += later_positives(per_detector // 4)
    out += prose_positives(per_detector // 4)
    return out


# Written by hand after the generated corpus, in forms the generators do not produce (run once as
# a check: 36 of 38 found before the 00-prefix phone form was added; the other miss was a Google
# key one character short, corrected here).
HANDWRITTEN: list[tuple[str, str, str]] = [
    (
        "email",
        "Can you cc anna-lena.schmidt@sub.mail.example.de on this?",
        "anna-lena.schmidt@sub.mail.example.de",
    ),
    ("email", "contact: JOHN.DOE@EXAMPLE.COM", "JOHN.DOE@EXAMPLE.COM"),
    (
        "email",
        "mailto:support+ticket-4821@helpdesk.example.io?subject=Refund",
        "support+ticket-4821@helpdesk.example.io",
    ),
    (
        "email",
        'Reply-To: "Kwame Mensah" <kwame.mensah@mensah-consulting.com.gh>',
        "kwame.mensah@mensah-consulting.com.gh",
    ),
    ("email", "私のメールはtanaka.yuki@example.co.jpです", "tanaka.yuki@example.co.jp"),
    ("phone", "Call me on +1 212 555 0147 ext. 22 tomorrow", "+1 212 555 0147"),
    ("phone", "my cell is (212)555-0147", "(212)555-0147"),
    ("phone", "Numéro : +33 6 12 34 56 78", "+33 6 12 34 56 78"),
    ("phone", "Tel. +49 (0)89 1234567", "+49 (0)89 1234567"),
    ("phone", "Mobile: 0049 170 1234567", "0049 170 1234567"),
    ("phone", "Ring 0161 496 0000 (Manchester office)", "0161 496 0000"),
    ("phone", "call +61 412 345 678 after 6", "+61 412 345 678"),
    ("phone", "+972-3-555-1234 is the Tel Aviv office", "+972-3-555-1234"),
    ("phone", "WhatsApp +55 21 98765-4321", "+55 21 98765-4321"),
    ("phone", "phone:5551234567", "5551234567"),
    ("card", "actually the full number is 4012888888881881 exp 10/28", "4012888888881881"),
    ("card", "Amex 3714 496353 98431", "3714 496353 98431"),
    ("card", "MasterCard: 5555-5555-5555-4444", "5555-5555-5555-4444"),
    ("card", "card=5105105105105100&cvc=123", "5105105105105100"),
    ("iban", "Bitte überweisen an AT61 1904 3002 3457 3201", "AT61 1904 3002 3457 3201"),
    ("iban", "IBAN FR1420041010050500013M02606", "FR1420041010050500013M02606"),
    ("iban", "iban: NL91 ABNA 0417 1643 00", "NL91 ABNA 0417 1643 00"),
    ("ssn", "SSN: 078-05-1120", "078-05-1120"),
    ("ipv4", "ssh root@198.51.100.23 -p 2222", "198.51.100.23"),
    ("ipv4", "Remote address: 10.12.0.254:5432", "10.12.0.254"),
    ("ipv6", "client [2001:db8:3333:4444:5555:6666:7777:8888]", "2001:db8:3333:4444:5555:6666:7777:8888"),
    ("ipv6", "from fe80::21b:77ff:fbd6:7860%eth0", "fe80::21b:77ff:fbd6:7860"),
    (
        "jwt",
        "id_token: eyJraWQiOiIxIiwiYWxnIjoiUlMyNTYifQ."
        "eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNvbSIsInN1YiI6IjEyMyJ9.c2lnbmF0dXJl",
        "eyJraWQiOiIxIiwiYWxnIjoiUlMyNTYifQ.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNvbSIsInN1YiI6IjEyMyJ9.c2lnbmF0dXJl",
    ),
    (
        "openai_key",
        "OPENAI_API_KEY=sk-proj-9xQ2mT7vL4pR8sW1nK6jH3fD0aZ5cB2eY7uI4oP1qA8sD6fG9hJ3kL5zX7cV0bN2m",
        "sk-proj-9xQ2mT7vL4pR8sW1nK6jH3fD0aZ5cB2eY7uI4oP1qA8sD6fG9hJ3kL5zX7cV0bN2m",
    ),
    ("aws_key", "aws_access_key_id=AKIAJ7QZ3X5Y2W6V4U8T", "AKIAJ7QZ3X5Y2W6V4U8T"),
    (
        "github_token",
        "git clone https://ghp_16C7e42F292c6912E7710c838347Ae178B4a@github.com/org/repo.git",
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    ),
    (
        "slack_token",
        "SLACK_BOT_TOKEN=xoxb-2048-4096-abcDEF123ghiJKL456mno",
        "xoxb-2048-4096-abcDEF123ghiJKL456mno",
    ),
    (
        "stripe_key",
        "Stripe.api_key = 'sk_live_51HqLyjWDarjtT1zdp7dcXYZabc123'",
        "sk_live_51HqLyjWDarjtT1zdp7dcXYZabc123",
    ),
    (
        "google_key",
        "maps/api/js?key=AIzaSyB-1234567890abcdefghijklmnopqrstu&v=3",
        "AIzaSyB-1234567890abcdefghijklmnopqrstu",
    ),
    (
        "private_key",
        "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg3bSAvNPcXbC3ciTx5UKbgKrUiAyNM3GfQcA56aB2oAoGCCqGSM49\n"
        "-----END EC PRIVATE KEY-----",
        "MHcCAQEEIBkg3bSAvNPcXbC3ciTx5UKbgKrUiAyNM3GfQcA56aB2oAoGCCqGSM49",
    ),
    ("url_password", "redis://:hunter2hunter2@cache:6379", "hunter2hunter2"),
    ("url_password", "amqps://guest:Sup3r%21Secret@rabbit.internal/vhost", "Sup3r%21Secret"),
    ("url_password", "REDIS_URL=redis://:s3cr#t^99@cache:6379/0", "s3cr#t^99"),
    ("password", "jdbc:mysql://db.internal/shop?user=app&password=K3Secret99&ssl=true", "K3Secret99"),
    ("password", "Server=db;Database=shop;User Id=sa;Password=My$ecretPw1;", "My$ecretPw1"),
    ("password", "Driver={ODBC Driver 18};Uid=report;Pwd=Q7!vR2xw;Encrypt=yes", "Q7!vR2xw"),
    ("password", 'the tool returned {"username": "svc", "client_secret": "c9Fq2LmX0pWz"}', "c9Fq2LmX0pWz"),
    ("password", "SMTP settings: host=mail.internal port=587 password=Winter2024!", "Winter2024!"),
    ("basic_auth", "curl -H 'Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l' https://api.internal/v1",
     "YWxhZGRpbjpvcGVuc2VzYW1l"),
    ("basic_auth", "proxy-authorization: basic c3ZjLWJvdDpTM2NyZXQh", "c3ZjLWJvdDpTM2NyZXQh"),
]

HANDWRITTEN_NEGATIVES = [
    "The meeting is at 10:30 on 2024-11-05, room 4.12.",
    "Call stack depth 12 345 678 exceeded",
    "Error code 0x80070005 at offset 0000:7c00",
    "UUID 123e4567-e89b-12d3-a456-426614174000 assigned",
    "Our phone tree has 3 options; press 1 for sales.",
    "price went from $1,299.00 to $999.00 (-23.1%)",
    "p50=120ms p95=1450ms p99=2890ms over 1,234,567 requests",
    "sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709",
    "order id 1234567890123 shipped",
    "Tracking: 1Z999AA10123456784",
    "git rebase -i HEAD~3 then git push origin feature/login-fix",
    "see RFC 3986 section 3.2.1 on userinfo",
    "We use python3.11 and numpy 1.26.4; CUDA 12.1.105",
    "lat 48.8566, lon 2.3522",
    "ISO 8601: 2024-05-01T12:34:56+02:00",
    "id: 550e8400e29b41d4a716446655440000",
    "ratio 1:2:3 and time 23:59:59.999",
    "ticket DEV-12345 and PR #6789",
    "https://example.com/search?q=hello+world&page=2",
    "The form says password: required, and api_key=None until setup finishes.",
    "cd $(pwd) && ls; pwd=/home/app/current",
    "secret: ${DB_SECRET} is read from the vault at start",
    "A basic understanding of SQL helps; Basic plan costs $10.",
    "max_tokens=512 temperature=0.2 top_p=0.9",
]


def _uuid(rng: random.Random) -> str:
    h = _rand(rng, "0123456789abcdef", 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{rng.choice('89ab')}{h[17:20]}-{h[20:]}"


def _invalid_luhn(rng: random.Random) -> str:
    prefix, length = rng.choice(CARD_KINDS)
    num = luhn_complete(prefix, length, rng)
    bad = num[:-1] + str((int(num[-1]) + rng.randint(1, 9)) % 10)
    style = rng.choice(["space", "dash", "compact"])
    if style == "compact":
        return bad
    sep = " " if style == "space" else "-"
    return sep.join(bad[i : i + 4] for i in range(0, len(bad), 4))


def _ean13(rng: random.Random) -> str:
    body = rng.choice(["400", "590", "500", "560", "690", "978", "979", "871"]) + _digits(rng, 9)
    total = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body))
    return body + str((10 - total % 10) % 10)


NEGATIVE_TEMPLATES = [
    lambda r: f"trace_id={_rand(r, '0123456789abcdef', 32)} span_id={_rand(r, '0123456789abcdef', 16)}",
    lambda r: f"See trace {_rand(r, '0123456789abcdef', 32)} for the slow retrieval step.",
    lambda r: f"request id {_uuid(r)} took 2.4s",
    lambda r: f"Document {_uuid(r).replace('-', '')} was re-indexed.",
    lambda r: f"Fixed in commit {_rand(r, '0123456789abcdef', 40)} (see {_rand(r, '0123456789abcdef', 7)}).",
    lambda r: f"sha256: {_rand(r, '0123456789abcdef', 64)}",
    lambda r: f"Order number {_invalid_luhn(r)} has shipped.",
    lambda r: f"Your order #{_invalid_luhn(r)} is on its way.",
    lambda r: f"Bestellnummer {_invalid_luhn(r)} wurde storniert.",
    lambda r: f"SKU {_ean13(r)} is out of stock.",
    lambda r: f"ISBN 978-{r.randint(0, 9)}-{_digits(r, 2)}-{_digits(r, 6)}-{r.randint(0, 9)}",
    lambda r: (
        f"Upgraded from version {r.randint(0, 9)}.{r.randint(0, 30)}.{r.randint(0, 99)} "
        f"to {r.randint(1, 9)}.{r.randint(0, 30)}.{r.randint(0, 99)}-rc.{r.randint(1, 5)}"
    ),
    lambda r: (
        f"User-Agent: Mozilla/5.0 Chrome/{r.randint(100, 131)}.0.{r.randint(4000, 6999)}.{r.randint(10, 200)}"
    ),
    lambda r: f"Windows build 10.0.{r.randint(19041, 22631)}.{r.randint(1000, 3999)}",
    lambda r: (
        f"Python {r.randint(3, 3)}.{r.randint(8, 13)}.{r.randint(0, 12)}, node "
        f"v{r.randint(16, 22)}.{r.randint(0, 20)}.{r.randint(0, 9)}"
    ),
    lambda r: f"Released v{r.randint(1, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)} yesterday.",
    lambda r: (
        f"created_at=2024-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:"
        f"{r.randint(0, 59):02d}:{r.randint(0, 59):02d}.{_digits(r, 6)}Z"
    ),
    lambda r: (
        f"ts={1700000000 + r.randint(0, 10**8)} ts_ms={1700000000000 + r.randint(0, 10**11)} "
        f"ts_ns={1700000000000000000 + r.randint(0, 10**17)}"
    ),
    lambda r: (
        f"Meeting on {r.randint(1, 28):02d}.{r.randint(1, 12):02d}.2025 "
        f"{r.randint(8, 18)}.{r.choice(['00', '30'])} Uhr"
    ),
    lambda r: (
        f"Due {r.randint(1, 12):02d}/{r.randint(1, 28):02d}/2025 at "
        f"{r.randint(1, 12)}:{r.choice(['00', '15', '30'])} PM"
    ),
    lambda r: (
        f"Total: ${r.randint(1, 99)},{_digits(r, 3)}.{_digits(r, 2)} (tax "
        f"${r.randint(1, 999)}.{_digits(r, 2)})"
    ),
    lambda r: f"Preis: {r.randint(1, 999)}.{_digits(r, 3)},{_digits(r, 2)} € inkl. MwSt.",
    lambda r: f"合計 ¥{r.randint(1, 999)},{_digits(r, 3)}（税込）",
    lambda r: (
        f"Revenue grew +{r.randint(1, 40)}.{r.randint(0, 9)}% to {r.randint(1, 999)} {_digits(r, 3)} "
        f"{_digits(r, 3)} €"
    ),
    lambda r: f"model=gpt-4o-2024-08-06 id=chatcmpl-{_rand(r, ALNUM, 29)}",
    lambda r: f"msg_01{_rand(r, ALNUM, 22)} toolu_01{_rand(r, ALNUM, 22)} req_011C{_rand(r, ALNUM, 20)}",
    lambda r: f"tool_call_id=call_{_rand(r, ALNUM, 24)} model=claude-3-5-sonnet-20241022",
    lambda r: (
        "Log file: "
        f"/var/log/app/2024-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}/worker-{r.randint(1, 64)}.log"
    ),
    lambda r: (
        f"GET https://api.example.com/v1/items?page={r.randint(1, 99)}&limit=50 -> 200 in "
        f"{r.randint(5, 900)}ms"
    ),
    lambda r: f"Listening on localhost:{r.randint(1024, 65535)} and 0.0.0.0:{r.randint(1024, 65535)}",
    lambda r: "Use arr[1::2] to take every other element; std::vector<int> v; Foo::bar();",
    lambda r: (
        f"Aspect ratio {r.choice(['16:9', '4:3', '21:9'])}, duration "
        f"{r.randint(0, 9):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}.{_digits(r, 3)}"
    ),
    lambda r: f"MAC address 00:1A:{_rand(r, '0123456789ABCDEF', 2)}:{_rand(r, '0123456789ABCDEF', 2)}:4D:5E",
    lambda r: f"Coordinates {r.randint(-89, 89)}.{_digits(r, 4)}, {r.randint(-179, 179)}.{_digits(r, 4)}",
    lambda r: f"Ticket #{r.randint(10000, 99999)} escalated; invoice INV-2024-{_digits(r, 6)}.",
    lambda r: f"zip {_digits(r, 5)}-{_digits(r, 4)}, suite {r.randint(100, 999)}",
    lambda r: f"Section {r.randint(1, 9)}.{r.randint(1, 9)}.{r.randint(1, 9)} of the refund policy applies.",
    lambda r: f"The logo is logo@{r.choice(['2x', '3x'])}.png and the icon icon@2x.webp",
    lambda r: (
        f"Install with pip install scikit-learn=={r.randint(0, 1)}.{r.randint(0, 5)}.{r.randint(0, 9)}; "
        "the task-runner-for-nightly-batch-exports must finish first."
    ),
    lambda r: (
        f"color #{_rand(r, '0123456789ABCDEF', 6)}, base64 chunk "
        f"iVBORw0KGgoAAAANSUhEUgAA{_rand(r, ALNUM, 30)}"
    ),
    lambda r: (
        f"Build #{r.randint(1000, 9999)} passed {r.randint(100, 999)} tests in "
        f"{r.randint(1, 59)}m{r.randint(1, 59)}s."
    ),
    lambda r: f"注文番号：{_invalid_luhn(r).replace(' ', '').replace('-', '')}、発送済み。",
    lambda r: (
        f"Numéro de commande {_invalid_luhn(r)} expédié le "
        f"{r.randint(1, 28):02d}/{r.randint(1, 12):02d}/2025."
    ),
    lambda r: (
        f"Embedding dims 1536, top_k {r.randint(1, 50)}, score 0.{_digits(r, 4)}, latency p95 "
        f"{r.randint(100, 9000)} ms"
    ),
    lambda r: f"account_id {_digits(r, 12)} region us-east-1 arn:aws:iam::{_digits(r, 12)}:role/app",
    lambda r: (
        'Postgres replied: duplicate key value violates unique constraint "orders_pkey" '
        f"(id)=({_digits(r, 9)})"
    ),
]


def hard_negatives(count: int = 500) -> list[str]:
    rng = random.Random(SEED + 1)
    generated = [NEGATIVE_TEMPLATES[i % len(NEGATIVE_TEMPLATES)](rng) for i in range(count)]
    later = random.Random(SEED + 3)
    near = [LATER_NEGATIVE_TEMPLATES[i % len(LATER_NEGATIVE_TEMPLATES)](later) for i in range(count // 5)]
    prose = random.Random(SEED + 5)
    prose_near = [PROSE_NEGATIVE_TEMPLATES[i % len(PROSE_NEGATIVE_TEMPLATES)](prose) for i in range(count // 5)]
    return generated + HANDWRITTEN_NEGATIVES + near + LATER_HANDWRITTEN_NEGATIVES + prose_near + PROSE_NEGATIVES


# --- added after the red team's misses: keys as labels, dotted cards, labelled phone numbers without
# separators, AWS secret keys beside their key id (own seeds, so the corpus above is unchanged) ---------


def _dotted_card(rng: random.Random) -> str:
    prefix, length = rng.choice(CARD_KINDS)
    num = luhn_complete(prefix, length, rng)
    if length in (14, 15):
        return ".".join((num[:4], num[4:10], num[10:]))
    return ".".join(num[i : i + 4] for i in range(0, length, 4))


def _aws_secret_mixed(rng: random.Random) -> str:
    while True:
        value = aws_secret(rng)
        if any(c.isupper() for c in value) and any(c.islower() for c in value) and any(c.isdigit() for c in value):
            return value


def _plain_phone(rng: random.Random) -> str:
    d = lambda n: _digits(rng, n)  # noqa: E731
    return rng.choice([
        lambda: f"{rng.randint(2, 9)}{d(2)}{rng.randint(2, 9)}{d(6)}",
        lambda: f"+1{rng.randint(2, 9)}{d(2)}{rng.randint(2, 9)}{d(6)}",
        lambda: f"+447{d(9)}",
        lambda: f"+4915{d(9)}",
        lambda: f"0{rng.randint(6, 7)}{d(8)}",
    ])()


_SECRET_VALUES = [
    lambda r: _rand(r, ALNUM + "-_", r.randint(12, 40)),
    lambda r: " ".join(r.choice(["correct", "horse", "battery", "staple", "orange", "violin", "pepper"])
                       for _ in range(4)),
    lambda r: f"{r.choice(['Winter', 'Summer', 'Sunny'])}-{r.randint(1000, 9999)}!{r.choice('xyzq')}",
]
_KEY_LABEL_TEMPLATES = [
    '{{"x-api-key": "{v}", "accept": "application/json"}}',
    'request headers: {{"Authorization": "Token {v}", "User-Agent": "httpx/0.27"}}',
    '{{"grant_type": "refresh_token", "refresh_token": "{v}"}}',
    '{{"db": {{"host": "db.internal", "port": 5432, "passphrase": "{v}"}}}}',
    '{{"client-secret": "{v}"}}',
    '{{"session_token": "{v}", "expires_in": 3600}}',
    "export DB_PASSWORD='{v}'",
]
_PHONE_LABEL_TEMPLATES = [
    "phone: {v}",
    '{{"mobile": "{v}"}}',
    '{{"customer": {{"name": "A. Smith", "phone_number": "{v}"}}}}',
    "customer_phone={v}&plan=pro",
    "Tel {v}",
]
_AWS_PAIR_TEMPLATES = [
    "Access key ID,Secret access key\n{k},{s}",
    "{k} {s}",
    "creds: {k}:{s}",
    "the leaked pair was '{k}', '{s}' in the build log",
    "{k}\t{s}\tactive",
]


def later_positives(n: int) -> list[tuple[str, list[tuple[str, str]]]]:
    rng = random.Random(SEED + 2)
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for _ in range(n):
        value = _dotted_card(rng)
        out.append((rng.choice(TEMPLATES["card"]).format(v=value), [("card", value)]))
        value = _plain_phone(rng)
        out.append((rng.choice(_PHONE_LABEL_TEMPLATES).format(v=value), [("phone", value)]))
        value = rng.choice(_SECRET_VALUES)(rng)
        out.append((rng.choice(_KEY_LABEL_TEMPLATES).format(v=value), [("password", value)]))
        key, secret = aws_key(rng), _aws_secret_mixed(rng)
        out.append((rng.choice(_AWS_PAIR_TEMPLATES).format(k=key, s=secret), [("aws_key", key), ("aws_key", secret)]))
        # near misses beside a key id: a hash or a longer base64 blob is no secret key (only the id is)
        other = rng.choice([_rand(rng, "0123456789abcdef", 40), _rand(rng, ALNUM + "+/", 60),
                            _rand(rng, "0123456789ABCDEF", 40), _rand(rng, string.ascii_letters, 40)])
        out.append((f"{key} {other}", [("aws_key", key)]))
    return out


LATER_NEGATIVE_TEMPLATES = [
    lambda r: f"upgraded to {r.randint(1, 9)}.{_digits(r, 4)}.{_digits(r, 4)}.{_digits(r, 4)}.{_digits(r, 4)}",
    lambda r: f"build {r.randint(1, 9)}.{_dotted_card(r)} deployed",
    lambda r: f"order {_invalid_luhn(r).replace(' ', '.').replace('-', '.')} shipped",
    lambda r: f"Windows {r.randint(10, 11)}.0.{r.randint(19041, 26100)}.{r.randint(1000, 9999)}",
    lambda r: f"Total {r.randint(1, 9)}.{_digits(r, 3)}.{_digits(r, 3)}.{_digits(r, 3)}.{_digits(r, 3)} units",
    lambda r: json.dumps({"usage": {"input_tokens": r.randint(10**8, 10**9), "output_tokens": r.randint(1, 4096)},
                          "max_tokens": 4096, "stop_reason": "end_turn"}),
    lambda r: json.dumps({"token": r.choice(["Hello", " world", "password", "secret"]), "logprob": -0.31,
                          "top_logprobs": [{"token": "Hi", "logprob": -1.2}]}),
    lambda r: json.dumps({"trace_id": _rand(r, "0123456789abcdef", 32), "span_id": _rand(r, "0123456789abcdef", 16),
                          "next_page_token": _rand(r, ALNUM, 24)}),
    lambda r: json.dumps({"password_sha256": _rand(r, "0123456789abcdef", 64), "password_min_length": 12,
                          "secret_name": "prod-db-credentials"}),
    lambda r: json.dumps({"credentials": {"type": "service_account", "project_id": f"proj-{_digits(r, 6)}"},
                          "authorization": r.choice(["required", "none", "<redacted>", "${API_TOKEN}"])}),
    lambda r: f"commit {_rand(r, '0123456789abcdef', 40)} tree {_rand(r, '0123456789abcdef', 40)}",
    lambda r: f"etag {_rand(r, ALNUM + '+/', 40)}== and digest sha256:{_rand(r, '0123456789abcdef', 64)}",
]

LATER_HANDWRITTEN_NEGATIVES = [
    "the authorization header is missing; check the credentials page",
    "DB_PASSWORD=${DB_PASSWORD} and API_KEY=<your key here>",
    '{"phone_verified": true, "password_set": false, "api_key_count": 3}',
    "tokens used: 1234567890; tokens left: 42",
    "version 4.1111.2222.3333 is not a card, nor is 1.4111.1111.1111.1111",
]


def as_messages(text: str, ensure_ascii: bool) -> str:
    """The text as `gen_ai.input.messages` JSON, as Python's json module (default) or orjson writes it."""
    msgs = [
        {"role": "system", "parts": [{"type": "text", "content": "You are a helpful support agent."}]},
        {"role": "user", "parts": [{"type": "text", "content": text}]},
    ]
    return json.dumps(msgs, ensure_ascii=ensure_ascii)


# --- added for secrets named in prose, with no `:` or `=` after the word (own seeds) ----------------------

_PROSE_TEMPLATES = [
    "the secret {v} was in the build log",
    "my password is {v} please reset it",
    "Use api key {v} for the staging project.",
    "the token {v} was rejected with 401",
    "rotated the access key, new secret key is {v}",
    "passphrase `{v}` for the backup",
    "Password was set to {v} yesterday",
]


def _mixed_secret(rng: random.Random) -> str:
    while True:
        value = _rand(rng, ALNUM + "+/", rng.randint(16, 48))
        if any(c.isupper() for c in value) and any(c.islower() for c in value) and any(c.isdigit() for c in value):
            return value


def prose_positives(n: int) -> list[tuple[str, list[tuple[str, str]]]]:
    rng = random.Random(SEED + 4)
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for _ in range(n):
        value = _mixed_secret(rng)
        out.append((rng.choice(_PROSE_TEMPLATES).format(v=value), [("password", value)]))
        # hex only after a key's name: after `token` or `secret` it is mostly a digest (see the negatives)
        value = _rand(rng, "0123456789abcdef", rng.choice([32, 40, 64]))
        out.append((rng.choice(_PROSE_KEY_TEMPLATES).format(v=value), [("password", value)]))
        value = _mixed_secret(rng).replace("+", "(")
        out.append((rng.choice(_PROSE_CODE_TEMPLATES).format(v=value), [("password", value)]))
    return out


_PROSE_CODE_TEMPLATES = [  # a secret written into code is one, whatever it looks like
    "secret_key = '{v}'",
    'client = OpenAI(api_key="{v}")',
    "DB_PASSWORD={v} python manage.py migrate",
]

_PROSE_KEY_TEMPLATES = [
    "Use api key {v} for the staging project.",
    "rotated the access key, new secret key is {v}",
    "the API key was {v} until Monday",
]


# near misses: the word in prose followed by a word, a count, a path, a name or an id that is not a secret
PROSE_NEGATIVE_TEMPLATES = [
    lambda r: f"the token limit is {r.randint(4096, 200000)} and we used {r.randint(1, 4096)}",
    lambda r: f"tokens {_digits(r, 16)} in total",
    lambda r: f"token {r.choice(['usage', 'count', 'budget'])}_stats_{r.randint(2020, 2026)}_q{r.randint(1, 4)}_report",
    lambda r: f"secret data/secrets/prod{r.randint(2020, 2026)}/key mounted read-only",
    lambda r: f"access key rotation_policy_v{r.randint(1, 9)}_enabled",
    lambda r: f"token gen_ai.usage.input_tokens was {r.randint(1, 9999)}",
    lambda r: f"password reset link sent to user {r.randint(1000, 9999)}",
    lambda r: f"secret santa {r.randint(2020, 2026)} list is ready",
    lambda r: f"api key management page v{r.randint(1, 9)}.{r.randint(0, 20)}",
    lambda r: f"the secret {r.choice(['sauce', 'ingredient', 'of success'])} is brevity",
]

PROSE_NEGATIVES = [
    # digests, images, model and type names after the word (a verifier's finds)
    "Run actions/checkout@v4 with token a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
    "HEAD is now at 3f78685; secret 3f786850e387550fdab836ed7e6dc881de23001b resolved from cache",
    "##[debug]token 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 cache hit",
    "checksum token d41d8cd98f00b204e9800998ecf8427e (md5 of the empty file)",
    "image token iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
    "The token Meta-Llama-3-70B-Instruct is not in the vocabulary",
    "The token Claude-3-5-Sonnet-20241022 is the model's name, not a key",
    "with the token HuggingFaceTB/SmolLM2-360M-Instruct loaded from the hub cache",
    "load the secret meta-llama/Llama-3.1-8B-Instruct weights",
    "rotate the secret prod/MyApp/DbCredentials2024 next week",
    "The token ChatCompletionChunk2 is the streaming type",
    "Our token TokenizerFast2Wrapper handles that",
    "the secret KubernetesSecretManifestV1 is applied by the operator",
    # code that reads a secret from elsewhere, as code assistants' prompts are full of
    "client = OpenAI(api_key=api_key)",
    'api_key = os.environ["OPENAI_API_KEY"]',
    'password = getpass.getpass("Password: ")',
    'access_token = response.json()["access_token"]',
    "secret_key = settings.SECRET_KEY",
    "password = os.getenv('DB_PASSWORD')",
    "headers = {'Authorization': f'Bearer {token}'}; api_key=get_key()",
    "secret ${AWS_SECRET_ACCESS_KEY} is read from the vault",
    "the password is required and must be at least 12 characters",
    "token usage per request: input 1234, output 567",
    "a secret is a value only the service knows",
]
