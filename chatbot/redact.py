"""Replace personal identifiers in text before it is written to the chat store.

What is redacted, and as what:

===========  ==================================================================================
``[PHONE]``  mainland mobiles ``1[3-9]`` + 9 digits (optional ``+86`` / ``86`` / ``0086``, spaces,
             dashes or dots as separators); mainland landlines with an area code (``010-12345678``,
             ``(021) 1234 5678``); North-American numbers (``+1 415-555-0100``,
             ``(415) 555-0100``, ``415.555.0100``); other international numbers written with
             ``+`` and a country code (8–15 digits).
``[EMAIL]``  e-mail addresses.
``[ID]``     18-digit Chinese resident identity numbers whose birth date is real and whose
             ISO 7064 MOD 11-2 check character is right; 15-digit old-style ones with a real birth
             date; US social security numbers ``ddd-dd-dddd``; passport-like numbers, but only
             right after a keyword (passport, 护照, 通行证); IDs in groups of any size. Any
             12–19 digit number right after an ID word (身份证, 证件号, ID, ID number), checksum
             or not: a mistyped ID is still an ID.
``[CARD]``   payment card numbers: 13–19 digits (optionally in groups of 4) that pass the Luhn
             check and have the prefix and length of a major network (Visa, Mastercard, Amex,
             UnionPay, Discover, JCB, Diners); any 12–19 digit number right after a card or
             account word (卡号, 银行卡, card, credit card, account number), Luhn or not.
``[NAME]``   names the text says are names: after 我叫, 姓名：, 患者：, 联系人, "my name is",
             "call me", "name:", or a title (Mr, Mrs, Ms, Dr, Prof).
``[ADDRESS]`` Chinese street addresses (district …路/街/巷 + 号, building, unit, room) and English
             ones (number + street name + street type, apartment).
===========  ==================================================================================

Why: the store keeps conversations, feedback, audit events and triage notes for review and
evaluation; none of that needs a patient's phone number or ID, and a log that never holds them
cannot leak them. Only the *stored copy* is redacted — the live reply to the patient is built
from the text they typed and is unaffected.

Why the checks: a medical conversation is full of numbers (血压 150/95, 120 mg, HbA1c 7.2%,
2024-05-01, 38.5°C, emergency numbers 120/110/911/112, order and specimen numbers), and redacting
them would make the logs useless. So every pattern is anchored so it cannot start or end inside a
longer number (``150/95``, ``0.25``), weak shapes (landline, US) need separators or an area-code
shape, and the long-number kinds are validated (ID checksum + birth date, Luhn + network prefix)
so a random 18-digit order number stays. Matching works on Chinese text without spaces
(``我的手机号13812345678请回电``) and on full-width digits (１３８…).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Callable, Iterable

PLACEHOLDERS = {"PHONE": "[PHONE]", "EMAIL": "[EMAIL]", "ID": "[ID]", "CARD": "[CARD]",
                "NAME": "[NAME]", "ADDRESS": "[ADDRESS]"}

# Separators allowed *inside* a number: one space (incl. no-break / ideographic) or one dash.
_SEP = r"[ \u00a0\u3000\-\u2010-\u2015\uff0d]"
_OPEN = r"[(\uff08]"
_CLOSE = r"[)\uff09]"
# Boundaries. A match never starts or ends inside a longer number, nor in the decimal or
# ratio part of one ("0.4111…", "150/95"). Weak shapes also refuse ASCII letters around them
# (lot numbers like "AB0101234567"); strong, validated shapes accept letters ("Tel13812345678").
_NOT_AFTER_NUMBER = r"(?<![0-9][.,/:])"
_L_STRONG = r"(?<![0-9+])" + _NOT_AFTER_NUMBER
_L_WEAK = r"(?<![0-9A-Za-z+])" + _NOT_AFTER_NUMBER
_R_STRONG = r"(?![0-9])(?![.,][0-9])"
_R_WEAK = r"(?![0-9A-Za-z])(?![.,][0-9])"

_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
                    r"\.[A-Za-z]{2,24}(?![A-Za-z0-9-])")
_ID18 = re.compile(_L_STRONG + rf"[1-9][0-9]{{5}}{_SEP}?[0-9]{{8}}{_SEP}?[0-9]{{3}}[0-9Xx]"
                   + _R_WEAK)  # weak on the right: the X check char must not run into a word
_ID15 = re.compile(_L_WEAK + r"[1-8][0-9]{14}" + _R_WEAK)
_SSN = re.compile(_L_WEAK + r"[0-9]{3}-[0-9]{2}-[0-9]{4}" + _R_WEAK)
_PASSPORT = re.compile(
    r"(?i:passport|护照|通行证)(?:\s*(?i:no\.?|number|num|#|号码|号))?\s*(?i:is\s+)?[:：#]?\s*"
    r"(?P<num>[A-Za-z]{0,2}[0-9]{6,9})(?![0-9A-Za-z])")
_CARD = re.compile(_L_STRONG + rf"(?:[0-9]{{13,19}}|[0-9]{{4}}(?:{_SEP}[0-9]{{4}}){{2,3}}"
                   rf"(?:{_SEP}[0-9]{{1,4}})?|[0-9]{{4}}{_SEP}[0-9]{{6}}{_SEP}[0-9]{{4,5}})"
                   + _R_STRONG)
_INTL = re.compile(rf"(?<![0-9A-Za-z])\+[1-9][0-9]{{0,2}}(?:{_SEP}?{_OPEN}[0-9]{{1,4}}{_CLOSE})?"
                   rf"(?:{_SEP}?[0-9]{{2,5}}){{1,5}}" + _R_WEAK)
# Mobiles are also written with dots ("138.1234.5678"); the boundaries keep decimals out.
_CN_MOBILE = re.compile(_L_STRONG + rf"(?:(?:\+|00)?86{_SEP}?)?1[3-9][0-9](?:(?:{_SEP}|\.)?[0-9]{{4}}){{2}}"
                        + _R_STRONG)
_NANP = re.compile(_L_WEAK + rf"(?:\+?1[ .\-]?)?(?:{_OPEN}[2-9][0-9]{{2}}{_CLOSE}{_SEP}?|"
                   rf"[2-9][0-9]{{2}}[ .\-])[2-9][0-9]{{2}}[ .\-][0-9]{{4}}" + _R_WEAK)
_CN_LANDLINE = re.compile(_L_WEAK + rf"(?:{_OPEN}0[1-9][0-9]{{1,2}}{_CLOSE}{_SEP}?|"
                          rf"0[1-9][0-9]{{1,2}}{_SEP}?)[1-9][0-9]{{2,3}}{_SEP}?[0-9]{{4}}" + _R_WEAK)

# A number the patient *names* as an ID or a card is one, checksum or not: a mistyped ID is still
# someone's ID. The checksums only decide for numbers given without such a word (order numbers).
_KEYED_NUMBER = rf"\s*(?:is|[:：#]|是|为)?\s*(?P<num>[0-9](?:{_SEP}?[0-9]){{11,18}}(?:{_SEP}?[Xx])?)" + _R_WEAK
_KEYED_ID = re.compile(r"(?:身份证(?:件)?(?:号码|号)?|证件号(?:码)?|社保号|医保号|(?<![A-Za-z])ID(?:\s*(?:no\.?|number|card))?"
                       r"|(?i:\bid(?:entity)?\s*(?:card\s*)?(?:number|no\.?)|\bmy\s+id\b))" + _KEYED_NUMBER)
_KEYED_CARD = re.compile(r"(?:卡号|银行卡号?|信用卡号?|储蓄卡号?|账号|(?i:\b(?:credit\s+|debit\s+|bank\s+)?card"
                         r"(?:\s*(?:number|no\.?))?|\baccount\s*(?:number|no\.?)?))" + _KEYED_NUMBER)
# IDs are also written in groups of any size ("1101 0519 9003 0712 39"): one separator between
# any two digits, the validation (province, birth date, check character) decides.
_ID18_GROUPED = re.compile(_L_STRONG + rf"[1-9](?:{_SEP}?[0-9]){{16}}{_SEP}?[0-9Xx]" + _R_WEAK)

# Names, only where the text says it is a name: "我叫张三", "姓名：李四", "my name is Ann Lee",
# "Mrs. Smith". A bare "张三" or "Ann" is indistinguishable from ordinary words.
_CJK_NAME_END = r"(?=[，。,.\s；;！!？?、(（:：]|今年|[0-9]|男|女|$)"
_NAME_ZH = re.compile(r"(?:我叫|我的名字(?:是|叫)|本人叫|姓名\s*[:：]?|名字\s*[:：]|患者\s*[:：]|病人\s*[:：]|联系人\s*[:：]?)"
                      r"\s*(?P<name>[\u4e00-\u9fff]{2,4}?)" + _CJK_NAME_END)
_EN_NAME = r"[A-Z][a-z'’\-]+(?:\s+[A-Z][a-z'’\-]+){0,2}"
_NAME_EN = re.compile(r"(?:(?i:\bmy\s+name\s+is|\bmy\s+name's|\bname\s*[:：]|\bpatient\s*[:：]|\bi\s+am\s+called"
                      r"|\bcall\s+me)\s+|\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?\s+)(?P<name>" + _EN_NAME + r")")
# Street addresses: a Chinese road + number (with district, building, unit, room), an English
# number + street name + street type (with apartment). Not a city alone: "北京" is not a person.
_CN_UNIT = r"(?![在住到去是从于往家])[\u4e00-\u9fff]{2,4}(?:省|自治区|市|区|县|镇|乡|村)"
_ADDRESS_ZH = re.compile(rf"(?:{_CN_UNIT})*(?![在住到去是从于往家])[\u4e00-\u9fff]{{1,5}}(?:路|街|大道|大街|巷|弄|胡同)"
                         r"[0-9一二三四五六七八九十百]+号(?:院)?(?:[0-9]+(?:号楼|栋|幢|座))?(?:[0-9]+单元)?"
                         r"(?:[0-9]+(?:室|号))?")
_ADDRESS_EN = re.compile(r"\b[0-9]{1,5}\s+(?:[A-Z][a-z]+\.?\s+){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd"
                         r"|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Way|Terrace|Parkway|Pkwy|Highway|Hwy)\b\.?"
                         r"(?:,?\s*(?:Apt|Apartment|Suite|Unit|#)\s*[A-Za-z0-9\-]+)?")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of an 18-digit resident identity number."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS))
    return _ID_CHECK[total % 11]


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _digits(s: str) -> str:
    return "".join(ch for ch in s if ch.isdigit())


def _real_birth_date(year: int, month: int, day: int) -> bool:
    try:
        born = date(year, month, day)
    except ValueError:
        return False
    return date(1900, 1, 1) <= born <= date.today()


def _valid_id18(match: str) -> bool:
    s = "".join(ch for ch in match if ch.isalnum()).upper()
    if not 11 <= int(s[:2]) <= 91:  # province codes 11 (Beijing) .. 91 (abroad)
        return False
    if not _real_birth_date(int(s[6:10]), int(s[10:12]), int(s[12:14])):
        return False
    return id_check_char(s[:17]) == s[17]


def _valid_id15(match: str) -> bool:
    # Old-style (pre-1999) numbers: YYMMDD birth date in the 1900s, no check digit.
    return (11 <= int(match[:2]) <= 82
            and _real_birth_date(1900 + int(match[6:8]), int(match[8:10]), int(match[10:12])))


def _valid_ssn(match: str) -> bool:
    area, group, serial = match.split("-")
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


# Issuer prefixes and lengths of the major networks. Requiring them (not just 13-19 digits + Luhn,
# which one random number in ten passes) keeps most order and specimen numbers out.
_CARD_NETWORKS: tuple[tuple[re.Pattern[str], range], ...] = tuple(
    (re.compile(prefix), lengths) for prefix, lengths in (
        (r"4", range(13, 20, 3)),                                            # Visa 13/16/19
        (r"5[1-5]|222[1-9]|22[3-9][0-9]|2[3-6][0-9]{2}|27[01][0-9]|2720", range(16, 17)),  # MC
        (r"3[47]", range(15, 16)),                                            # Amex
        (r"62", range(16, 20)),                                               # UnionPay
        (r"6011|64[4-9]|65", range(16, 20)),                                  # Discover
        (r"35(?:2[89]|[3-8][0-9])", range(16, 20)),                           # JCB
        (r"30[0-5]|3[689]", range(14, 20)),                                   # Diners
    ))


def _valid_card(match: str) -> bool:
    d = _digits(match)
    if not any(prefix.match(d) and len(d) in lengths for prefix, lengths in _CARD_NETWORKS):
        return False
    # A "+86"-less Chinese mobile with its country code is a phone, left to the phone pass.
    if re.fullmatch(r"(?:86)?1[3-9][0-9]{9}", d):
        return False
    return luhn_ok(d)


def _valid_intl(match: str) -> bool:
    return 8 <= len(_digits(match)) <= 15


# (kind, pattern, validator, group to replace). Order matters: a span taken by an earlier pass is
# masked for later ones — e-mails first (they contain digits), validated IDs and cards before the
# looser phone shapes so a card's "0212 3456 7890" is never read as a landline.
_Pass = tuple[str, re.Pattern[str], Callable[[str], bool] | None, str | int]
_PASSES: tuple[_Pass, ...] = (
    ("EMAIL", _EMAIL, None, 0),
    ("ID", _KEYED_ID, None, "num"),
    ("CARD", _KEYED_CARD, None, "num"),
    ("ID", _ID18, _valid_id18, 0),
    ("ID", _ID18_GROUPED, _valid_id18, 0),
    ("ID", _ID15, _valid_id15, 0),
    ("ID", _SSN, _valid_ssn, 0),
    ("ID", _PASSPORT, None, "num"),
    ("CARD", _CARD, _valid_card, 0),
    ("PHONE", _INTL, _valid_intl, 0),
    ("PHONE", _CN_MOBILE, None, 0),
    ("PHONE", _NANP, None, 0),
    ("PHONE", _CN_LANDLINE, None, 0),
    ("NAME", _NAME_ZH, None, "name"),
    ("NAME", _NAME_EN, None, "name"),
    ("ADDRESS", _ADDRESS_ZH, None, 0),
    ("ADDRESS", _ADDRESS_EN, None, 0),
)

_MASK = "\ue000"  # private-use character: neither digit nor letter, so it acts as a boundary


def _ascii_digits(text: str) -> str:
    """Same-length view of ``text`` with every decimal digit (full-width, Arabic-Indic...) as
    ASCII, so one set of patterns covers them and match positions map back 1:1."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() and not ch.isascii() else ch
                   for ch in text)


def find_identifiers(text: str) -> list[tuple[int, int, str]]:
    """Sorted, non-overlapping (start, end, kind) spans of the identifiers in ``text``."""
    view = _ascii_digits(text)
    spans: list[tuple[int, int, str]] = []
    for kind, pattern, valid, group in _PASSES:
        found = [m.span(group) for m in pattern.finditer(view)
                 if valid is None or valid(m.group(group))]
        for start, end in found:
            spans.append((start, end, kind))
            view = view[:start] + _MASK * (end - start) + view[end:]
    return sorted(spans)


def _replace(text: str, spans: Iterable[tuple[int, int, str]]) -> str:
    out, pos = [], 0
    for start, end, kind in spans:
        out.append(text[pos:start])
        out.append(PLACEHOLDERS[kind])
        pos = end
    out.append(text[pos:])
    return "".join(out)


def redact(text: str, keep: Iterable[str] = ()) -> tuple[str, list[str]]:
    """``text`` with identifiers replaced by ``[PHONE]``, ``[EMAIL]``, ``[ID]``, ``[CARD]``,
    ``[NAME]``, ``[ADDRESS]``, and the sorted distinct kinds found (``["EMAIL", "PHONE"]``; empty
    when nothing was replaced). ``keep`` names kinds left in place (a staff name in an audit
    field). Idempotent: redacting redacted text changes nothing."""
    if not text:
        return text, []
    kept = set(keep)
    spans = [span for span in find_identifiers(text) if span[2] not in kept]
    return _replace(text, spans), sorted({kind for _, _, kind in spans})
