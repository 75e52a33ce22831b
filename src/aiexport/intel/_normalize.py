"""Normal forms of party names and identifiers, shared by screening and entity resolution.

Names are compared after transliteration (Unidecode: Chinese to pinyin syllables, Cyrillic to
Latin), case folding, and removal of legal-form words ("Co., Ltd.", "Pte Ltd", "OOO", "GmbH",
"有限公司"), as nomenklatura's fingerprints do. Identifiers are reduced to the form two records of
the same company share however it was typed: a phone to its digits, an e-mail to its domain, an
address to its tokens with common abbreviations expanded.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from unidecode import unidecode

# Legal forms, lower case and without punctuation, longest first when matched as token runs.
LEGAL_FORMS: frozenset[str] = frozenset(
    [
        "ltd",
        "limited",
        "co",
        "company",
        "corp",
        "corporation",
        "inc",
        "incorporated",
        "llc",
        "llp",
        "lp",
        "plc",
        "pte",
        "pvt",
        "private",
        "pty",
        "gmbh",
        "ag",
        "kg",
        "se",
        "sa",
        "sas",
        "sarl",
        "srl",
        "spa",
        "bv",
        "nv",
        "ab",
        "oy",
        "as",
        "aps",
        "kk",
        "jsc",
        "pjsc",
        "ojsc",
        "cjsc",
        "ojs",
        "oao",
        "ooo",
        "zao",
        "pao",
        "ao",
        "tov",
        "fzco",
        "fzc",
        "fze",
        "fz",
        "dmcc",
        "sdn",
        "bhd",
        "berhad",
        "tbk",
        "pt",
        "cv",
        "jv",
        "mbh",
        "eood",
        "ead",
        "kft",
        "zrt",
        "nyrt",
        "sro",
        "spzoo",
        "sp",
        "zoo",
        "doo",
        "dd",
        "ltda",
        "eireli",
        "sac",
        "saa",
    ]
)
# Multi-token legal forms, matched after transliteration ("you xian gong si" is 有限公司).
LEGAL_PHRASES: tuple[tuple[str, ...], ...] = (
    ("you", "xian", "gong", "si"),
    ("you", "xian", "ze", "ren", "gong", "si"),
    ("gu", "fen", "you", "xian", "gong", "si"),
    ("gong", "si"),
    ("joint", "stock", "company"),
    ("public", "joint", "stock", "company"),
    ("limited", "liability", "company"),
    ("private", "limited"),
    ("public", "company", "limited"),
    ("sp", "z", "o", "o"),
    ("s", "r", "o"),
    ("s", "a"),
    ("b", "v"),
    ("n", "v"),
    ("k", "k"),
    ("sdn", "bhd"),
)
FREE_MAIL: frozenset[str] = frozenset(
    [
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.co.jp",
        "yahoo.com.hk",
        "yahoo.com.sg",
        "hotmail.com",
        "outlook.com",
        "live.com",
        "msn.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "protonmail.com",
        "proton.me",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.ru",
        "yandex.ru",
        "yandex.com",
        "inbox.ru",
        "bk.ru",
        "list.ru",
        "rambler.ru",
        "163.com",
        "126.com",
        "qq.com",
        "foxmail.com",
        "sina.com",
        "sina.cn",
        "sohu.com",
        "yeah.net",
        "139.com",
        "aliyun.com",
        "naver.com",
        "daum.net",
        "hanmail.net",
        "rediffmail.com",
        "zoho.com",
        "tutanota.com",
    ]
)
_ABBREVIATIONS = {
    "rd": "road",
    "st": "street",
    "ave": "avenue",
    "av": "avenue",
    "blvd": "boulevard",
    "jln": "jalan",
    "bldg": "building",
    "fl": "floor",
    "flr": "floor",
    "ste": "suite",
    "unit": "",
    "no": "",
    "dr": "drive",
    "hwy": "highway",
    "ln": "lane",
    "sq": "square",
    "str": "strasse",
    "strasse": "strasse",
}
_NON_WORD = re.compile(r"[^0-9a-z]+")


@lru_cache(maxsize=200_000)
def ascii_fold(text: str) -> str:
    """Transliterate to lower-case ASCII words separated by single spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = unidecode(text).lower().replace("&", " and ")
    return _NON_WORD.sub(" ", text).strip()


def _drop_phrases(tokens: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for phrase in LEGAL_PHRASES:
            n = len(phrase)
            if tuple(tokens[i : i + n]) == phrase:
                i += n
                break
        else:
            out.append(tokens[i])
            i += 1
    return out


def _join_initials(tokens: list[str]) -> list[str]:
    """Runs of single letters are one abbreviation: 'f z e' -> 'fze', 'k k' -> 'kk'."""
    out: list[str] = []
    run = ""
    for t in tokens:
        if len(t) == 1 and t.isalpha():
            run += t
            continue
        if run:
            out.append(run)
            run = ""
        out.append(t)
    if run:
        out.append(run)
    return out


@lru_cache(maxsize=200_000)
def name_tokens(name: str) -> tuple[str, ...]:
    """The name's distinctive tokens: transliterated, without legal forms.

    >>> name_tokens("Huawei Technologies Co., Ltd.")
    ('huawei', 'technologies')
    >>> name_tokens("ООО «Технологии Будущего»")
    ('tekhnologii', 'budushchego')
    """
    tokens = _drop_phrases(_join_initials(ascii_fold(name).split()))
    kept = [t for t in tokens if t not in LEGAL_FORMS]
    return tuple(kept or tokens)


@lru_cache(maxsize=500_000)
def name_key(name: str) -> str:
    """The name without legal forms, tokens in their order, single-spaced (memoised: one
    worker serves several scenarios of one world, whose consignees are mostly the same)."""
    return " ".join(name_tokens(name))


@lru_cache(maxsize=500_000)
def compact_key(name: str) -> str:
    """The name without legal forms or spaces: 'Hua Wei' and 'Huawei' meet here."""
    return "".join(name_tokens(name))


def phone_key(phone: str | None) -> str | None:
    """Digits of a phone number without an international prefix (00 or +).

    >>> phone_key("(65) 6123-4567") == phone_key("+65 61234567") == phone_key("0065 61234567")
    True
    """
    if not phone:
        return None
    digits = re.sub(r"\D", "", phone)
    if digits.startswith("00"):
        digits = digits[2:]
    return digits if len(digits) >= 6 else None


def email_domain(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    return email.rsplit("@", 1)[1].strip().lower() or None


def website_domain(url: str | None) -> str | None:
    """Host of a web address without scheme, `www.` or path."""
    if not url:
        return None
    host = re.sub(r"^[a-z]+://", "", url.strip().lower()).split("/", 1)[0]
    host = host.removeprefix("www.")
    return host or None


@lru_cache(maxsize=200_000)
def address_key(address: str | None) -> str | None:
    """Address tokens with abbreviations expanded and sorted: order and case no longer matter."""
    if not address:
        return None
    tokens = []
    for t in ascii_fold(address).split():
        t = _ABBREVIATIONS.get(t, t)
        if t:
            tokens.append(t)
    return " ".join(sorted(set(tokens))) or None


def person_keys(name: str) -> frozenset[str]:
    """Keys of a director's name that do not depend on the written order.

    Registries write 'WANG Wei', 'Wang, Wei', 'Wei Wang' and 'Wang Wei': with two full words the
    key is the sorted pair ('wang~wei'), the same in every order. An initial ('W. Wang') only
    gives surname plus initial ('wang|w'), a weaker key that matches other initials only.

    >>> sorted(person_keys("Wang Wei")) == sorted(person_keys("WANG Wei")) == ["wang~wei"]
    True
    >>> sorted(person_keys("W. Wang"))
    ['wang|w']
    """
    tokens = [t for t in ascii_fold(name).split() if t]
    if not tokens:
        return frozenset()
    full = [t for t in tokens if len(t) > 1]
    initials = [t for t in tokens if len(t) == 1]
    if len(full) >= 2:
        return frozenset({"~".join(sorted(full[:1] + full[-1:]))})
    if full and initials:
        return frozenset({f"{full[0]}|{initials[0]}"})
    return frozenset({tokens[0]})


def officer_keys(officers: str | None) -> list[str]:
    if not officers:
        return []
    keys: set[str] = set()
    for p in officers.split(";"):
        keys |= person_keys(p)
    return sorted(keys)
