"""Redaction of identifiers before storage: what must go, and the medical numbers that must stay."""

from __future__ import annotations

import random

import pytest

from chatbot.redact import redact

# Check digits are computed here, independently of chatbot.redact, so a wrong table there fails.
ID_WEIGHTS = [2 ** (17 - i) % 11 for i in range(17)]  # 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2


def id_check(first17: str) -> str:
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS)) % 11]


def luhn_complete(partial: str) -> str:
    """``partial`` + the digit that makes the whole pass Luhn."""
    for d in "0123456789":
        digits = [int(c) for c in partial + d][::-1]
        total = sum(x if i % 2 == 0 else (x * 2 - 9 if x > 4 else x * 2) for i, x in enumerate(digits))
        if total % 10 == 0:
            return partial + d
    raise AssertionError("unreachable")


def luhn_ok(number: str) -> bool:
    return luhn_complete(number[:-1]) == number


ID_BASE = "11010519491231002"
VALID_ID = ID_BASE + id_check(ID_BASE)                     # 11010519491231002X
ID_BASE_2 = "44030119900307123"
VALID_ID_2 = ID_BASE_2 + id_check(ID_BASE_2)
WRONG_CHECK = ID_BASE + ("0" if id_check(ID_BASE) != "0" else "1")
BAD_DATE_BASE = "11010519491331002"                         # month 13
BAD_DATE_ID = BAD_DATE_BASE + id_check(BAD_DATE_BASE)       # right checksum, impossible date
FUTURE_BASE = "11010521990101002"
FUTURE_ID = FUTURE_BASE + id_check(FUTURE_BASE)
CARD_16 = luhn_complete("622202123456789")
CARD_19 = luhn_complete("621700123456789012")
VISA_GROUPED = " ".join(luhn_complete("411111111111111")[i:i + 4] for i in range(0, 16, 4))
NON_LUHN_16 = CARD_16[:-1] + str((int(CARD_16[-1]) + 1) % 10)


def test_fixtures_are_what_they_claim():
    assert VALID_ID == "11010519491231002X"  # a published example number
    assert id_check(WRONG_CHECK[:17]) != WRONG_CHECK[17]
    assert not luhn_ok(WRONG_CHECK)  # so it cannot be taken for a card either
    assert luhn_ok(CARD_16) and luhn_ok(CARD_19) and not luhn_ok(NON_LUHN_16)


POSITIVE = [
    # phones: mainland mobile
    ("我的手机号13812345678请回电", "我的手机号[PHONE]请回电", ["PHONE"]),
    ("电话：138 1234 5678", "电话：[PHONE]", ["PHONE"]),
    ("call 138-1234-5678 please", "call [PHONE] please", ["PHONE"]),
    ("+86 138 1234 5678", "[PHONE]", ["PHONE"]),
    ("+8613812345678", "[PHONE]", ["PHONE"]),
    ("86-13912345678", "[PHONE]", ["PHONE"]),
    ("0086 13912345678", "[PHONE]", ["PHONE"]),
    ("手机１３８１２３４５６７８谢谢", "手机[PHONE]谢谢", ["PHONE"]),  # full-width digits
    ("Tel13812345678", "Tel[PHONE]", ["PHONE"]),
    # phones: mainland landline
    ("办公室010-12345678", "办公室[PHONE]", ["PHONE"]),
    ("座机(021) 1234 5678转分机", "座机[PHONE]转分机", ["PHONE"]),
    ("（0755）8888-6666", "[PHONE]", ["PHONE"]),
    ("0571 8888 6666", "[PHONE]", ["PHONE"]),
    # phones: US / international
    ("call me at +1 415-555-0100.", "call me at [PHONE].", ["PHONE"]),
    ("Phone (415) 555-0100 after 5pm", "Phone [PHONE] after 5pm", ["PHONE"]),
    ("415.555.0100", "[PHONE]", ["PHONE"]),
    ("1-800-555-0199 toll free", "[PHONE] toll free", ["PHONE"]),
    ("London +44 20 7946 0958", "London [PHONE]", ["PHONE"]),
    ("+14155550100", "[PHONE]", ["PHONE"]),
    # e-mail
    ("邮箱zhang.san@qq.com请回复", "邮箱[EMAIL]请回复", ["EMAIL"]),
    ("mail john.doe+clinic@example.co.uk, thanks", "mail [EMAIL], thanks", ["EMAIL"]),
    ("13812345678@163.com", "[EMAIL]", ["EMAIL"]),
    # identity numbers
    (f"身份证号{VALID_ID}，请查", "身份证号[ID]，请查", ["ID"]),
    (f"ID {VALID_ID.lower()}", "ID [ID]", ["ID"]),
    (f"my id is {VALID_ID_2}", "my id is [ID]", ["ID"]),
    (f"{VALID_ID_2[:6]} {VALID_ID_2[6:14]} {VALID_ID_2[14:]}", "[ID]", ["ID"]),
    ("旧身份证110105491231002", "旧身份证[ID]", ["ID"]),
    ("SSN 123-45-6789 on file", "SSN [ID] on file", ["ID"]),
    ("passport: E12345678", "passport: [ID]", ["ID"]),
    ("My passport number is 123456789.", "My passport number is [ID].", ["ID"]),
    ("护照号码：EA1234567", "护照号码：[ID]", ["ID"]),
    ("护照G12345678已过期", "护照[ID]已过期", ["ID"]),
    # cards
    (f"卡号{CARD_16}", "卡号[CARD]", ["CARD"]),
    (f"card {VISA_GROUPED} exp 12/27", "card [CARD] exp 12/27", ["CARD"]),
    (f"银行卡{CARD_19}。", "银行卡[CARD]。", ["CARD"]),
    ("Amex 3782-822463-10005", "Amex [CARD]", ["CARD"]),
    # mixed
    (f"我叫张三，手机13812345678，邮箱zs@163.com，身份证{VALID_ID}，卡{CARD_16}。",
     "我叫[NAME]，手机[PHONE]，邮箱[EMAIL]，身份证[ID]，卡[CARD]。", ["CARD", "EMAIL", "ID", "NAME", "PHONE"]),
    # review (d): what the reliability review found unredacted
    ("手机138.1234.5678", "手机[PHONE]", ["PHONE"]),
    ("身份证 1101 0519 4912 3100 2X", "身份证 [ID]", ["ID"]),
    (f"{VALID_ID_2[:4]} {VALID_ID_2[4:8]} {VALID_ID_2[8:12]} {VALID_ID_2[12:16]} {VALID_ID_2[16:]}", "[ID]", ["ID"]),
    (f"身份证号：{WRONG_CHECK}", "身份证号：[ID]", ["ID"]),
    (f"ID number {BAD_DATE_ID}", "ID number [ID]", ["ID"]),
    (f"credit card {NON_LUHN_16}", "credit card [CARD]", ["CARD"]),
    ("我叫张三今年40岁", "我叫[NAME]今年40岁", ["NAME"]),
    ("姓名：李四 性别：男", "姓名：[NAME] 性别：男", ["NAME"]),
    ("患者：王小明，男，65岁", "患者：[NAME]，男，65岁", ["NAME"]),
    ("My name is Ann Lee and I have asthma", "My name is [NAME] and I have asthma", ["NAME"]),
    ("Mrs. Smith has diabetes", "Mrs. [NAME] has diabetes", ["NAME"]),
    ("我住在北京市朝阳区建国路88号1203室，最近头痛", "我住在[ADDRESS]，最近头痛", ["ADDRESS"]),
    ("家住上海市浦东新区世纪大道100号5栋2单元301室", "家住[ADDRESS]", ["ADDRESS"]),
    ("I live at 221 Baker Street, Apt 4B.", "I live at [ADDRESS].", ["ADDRESS"]),
    ("BP 150/95 today; call 13812345678 or (415) 555-0100, mail a@b.org; dose 120 mg",
     "BP 150/95 today; call [PHONE] or [PHONE], mail [EMAIL]; dose 120 mg", ["EMAIL", "PHONE"]),
]


@pytest.mark.parametrize("text,expected,kinds", POSITIVE)
def test_identifiers_are_replaced(text, expected, kinds):
    assert redact(text) == (expected, kinds)


NEGATIVE = [
    "血压 150/95 mmHg，心率 88 次/分",
    "二甲双胍 500 mg，一天 2 次；阿司匹林 100mg",
    "Take 120 mg twice daily",
    "HbA1c 7.2%, fasting glucose 6.1 mmol/L",
    "2 tablets 3 times a day for 7 days",
    "复诊日期 2024-05-01，上次 2023/12/31",
    "seen on 2024-05-01 at 08:30",
    "体温38.5°C，体温 39.2 ℃",
    "digoxin 0.25mg, levothyroxine 0.025 mg",
    "我今年65岁，体重70kg，身高175cm",
    "急救请拨打120，报警110",
    "In an emergency call 911 (US) or 112 (EU)",
    "血常规：白细胞 12.5×10^9/L，血小板 250×10^9/L",
    f"订单号{WRONG_CHECK}",                      # right shape, wrong check digit
    f"编号{BAD_DATE_ID}",                          # right check digit, no such date
    f"lot {FUTURE_ID}",                           # born in the future
    "我是糖尿病患者，住在北京",                       # a city is not an address; 患者 without a name
    "My name is not important, my BP is 150/95",   # no capitalised name after the cue
    "Take it at 8 pm on Main days",               # no street number + street type
    "订单号202405011234567890",                     # 18 digits: no real birth date, fails Luhn
    f"流水号{luhn_complete('90240501123456789')}",   # passes Luhn, but no card network starts with 9
    f"样本号{luhn_complete('42024050112345678')}",   # passes Luhn, Visa prefix, but 18 digits
    f"random {NON_LUHN_16}",                      # 16 digits that fail Luhn
    "1234567890123",                              # 13 digits, Luhn-invalid
    "LDL 3.4, TG 1.7, TC 5.8, HDL 1.1",
    "pi is 3.14159265358979323846",               # long digit runs after a decimal point
    "odds ratio 0.13812345678",                   # a "mobile" in decimals is a decimal
    "eGFR slope 2.4111111111111111",              # a "card" in decimals too
    "dilution 1/13812345678",
    "passport expired in 2019",                   # keyword but no number
    "SSN 000-12-3456 is not a valid SSN",
    "minute ventilation 6-8 L/min, PEEP 5-10",
    "ratio 1:10000 adrenaline",
    "[PHONE] [EMAIL] [ID] [CARD]",                # already redacted: idempotent
    "",
]


@pytest.mark.parametrize("text", NEGATIVE)
def test_medical_numbers_are_kept(text):
    assert redact(text) == (text, [])


def test_every_check_character_is_validated():
    # Vary the sequence number until each of the 11 check characters has a valid ID, so every
    # entry of the MOD 11-2 table is exercised; the same ID with any other last char must stay.
    by_check: dict[str, str] = {}
    for seq in range(100, 1000):
        base = f"32010219850615{seq}"
        by_check.setdefault(id_check(base), base + id_check(base))
    assert sorted(by_check) == sorted("0123456789X")
    for check, number in by_check.items():
        assert redact(f"身份证{number}") == ("身份证[ID]", ["ID"]), number
        for other in "0123456789X":
            if other != check:
                wrong = number[:17] + other
                assert redact(f"编号{wrong}") == (f"编号{wrong}", []), wrong
                # review (d): named as an ID, a mistyped one is still someone's ID
                assert redact(f"身份证{wrong}") == ("身份证[ID]", ["ID"]), wrong


def test_redaction_is_idempotent_on_mixed_text():
    once, kinds = redact(f"电话13812345678 身份证{VALID_ID}")
    assert redact(once) == (once, [])
    assert kinds == ["ID", "PHONE"]


def test_several_of_one_kind_count_once():
    text, kinds = redact("13812345678 和 13912345678 和 010-12345678")
    assert text == "[PHONE] 和 [PHONE] 和 [PHONE]"
    assert kinds == ["PHONE"]


def test_id_inside_a_longer_digit_run_is_not_cut_out():
    # A valid ID embedded in 20 digits is part of some other number (tracking code): left alone,
    # and no 11-digit "mobile" is carved out of it either.
    text = "9" + VALID_ID[:17] + "99"
    assert redact(text) == (text, [])


def test_long_text_is_fast_enough_and_complete():
    chunk = "患者自述头痛3天，血压150/95。联系13812345678。"
    text = chunk * 2000  # ~70k characters
    out, kinds = redact(text)
    assert out.count("[PHONE]") == 2000 and "13812345678" not in out and kinds == ["PHONE"]
    assert out.count("150/95") == 2000


def test_random_long_numbers_are_rarely_taken_for_identifiers():
    # Order/specimen numbers: 18 random digits. Checksum, birth date, Luhn and network prefix
    # together must let almost all of them through (the ~1% left are indistinguishable from
    # real cards or IDs, and redacting those is the safe side).
    rng = random.Random(20240501)
    numbers = ["".join(rng.choice("0123456789") for _ in range(18)) for _ in range(3000)]
    redacted = [n for n in numbers if redact(f"订单号{n}")[1]]
    assert len(redacted) < 0.02 * len(numbers), redacted[:10]


def test_mastercard_two_series_and_luhn_failure():
    mc = luhn_complete("222100000000000")
    assert redact(f"card {mc}") == ("card [CARD]", ["CARD"])
    broken = mc[:-1] + str((int(mc[-1]) + 5) % 10)
    assert redact(f"order {broken}") == (f"order {broken}", [])
    # review (d): named as a card, a number failing Luhn (a typo) is still a card number
    assert redact(f"card {broken}") == ("card [CARD]", ["CARD"])
    assert redact(f"我的银行卡号是{broken}") == ("我的银行卡号是[CARD]", ["CARD"])
