"""Reading a complaint: normalisation, pattern matching with negation ("no fever", "denies chest
pain", "不发烧", "无胸痛"), and the facts a vignette states in passing (age, sex, pregnancy,
how long the symptoms have lasted). Deterministic and rule-based so every decision is auditable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from knowledge_base.text import CJK

_CJK = CJK
_FULLWIDTH = {i: i - 0xFEE0 for i in range(0xFF01, 0xFF5F) if chr(i) not in "，；：！？（）"}
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
                         "\u2014": "-", "\u00b0": " "})


# Softeners between a body part and its symptom ("腰有点酸痛", "mildly painful skin") are
# dropped so that one pattern covers the plain and the hedged wording. Intensifiers ("very",
# "剧烈", "很") stay: they carry severity.
_ZH_SOFTENERS = re.compile(r"有点儿?|有一点|有些|稍微|稍稍|比较|挺")
_EN_SOFTENERS = re.compile(r"(?<![a-z])(mildly|slightly|somewhat|a bit|a little|kind of|sort of)(?![a-z]) ?")


def normalise(text: str) -> str:
    """Lower case, full-width ASCII folded, curly quotes straightened, softeners dropped,
    whitespace collapsed. Character offsets are not preserved (callers match and slice the
    normalised text)."""
    text = text.translate(_FULLWIDTH).translate(_QUOTES).lower()
    text = _EN_SOFTENERS.sub("", _ZH_SOFTENERS.sub("", text))
    return " ".join(text.split())


@lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> re.Pattern:
    """Latin patterns match whole words ("uti" not in "cutis"); Chinese patterns match anywhere."""
    if _CJK.search(pattern):
        return re.compile(pattern)
    return re.compile(rf"(?<![a-z0-9])(?:{pattern})(?![a-z])")


# --- negation ------------------------------------------------------------------------------
# English cues and what ends their scope. The window is short (7 words) because a cue rarely
# reaches further in clinical prose ("no fever, chills or night sweats").
_EN_CUE = re.compile(
    r"(?<![a-z])(no|not|denies|denied|deny|denying|without|negative for|free of|absence of|never|nor|"
    r"none|doesn't have|does not have|didn't|did not|hasn't had|has not had|haven't had|"
    r"no signs? of|no history of|ruled out|isn't|is not|wasn't|was not)(?![a-z])")
_EN_BREAK = re.compile(
    r"[.;:!?]|(?<![a-z])(but|however|although|though|yet|except|has|have|had|having|reports?|"
    r"complains?|presents?|now|then|started|developed|since|which|who|with|and is|and has|is|are|was)(?![a-z])")
_EN_POST = re.compile(r"^\s*(?::|-|is|was|were|are)?\s*(absent|denied|none|negative|not present|normal|fine|ok|okay|"
                      r"unaffected|unchanged|clear)(?![a-z])")
# 不小心 / 不慎 ("accidentally") and 没事 are not denials of what follows.
_ZH_CUE = re.compile(
    r"(否认|并无|并未|未见|不伴有?|没有|无(?!力|法|尿(?![痛频急少])|明显诱因|诱因|意识|反应|故)|没(?!事|力气)|未|"
    r"不(?!停|止|断|住|舒服|适|能|明|清|了|好|少|行|动|下|上|让|过|太|知|到|会|可|见好|退|得|小心|慎))")
_ZH_BREAK = re.compile(r"[，,。；;！!？?：:]|但|却|可是|而且|并且|伴有|伴|出现|现在|今天|突然|又|还有|有")
# "从未有过抽搐", "无明显": words between the cue and the finding that belong to the denial
_ZH_QUALIFIER = re.compile(r"^(有过|有|出现过)?(突然|突发|明显)?")
_EN_LAST_ITEM = re.compile(r"(?<![a-z])(or|nor)\s*$")
_EN_LIST_END = re.compile(r"(?<![a-z])(or|nor)(?![a-z])")
# A Chinese finding stated normal right after it: "视力正常", "视力无明显下降", "听力自觉正常".
_ZH_POST = re.compile(r"^(自觉)?(基本)?(正常|无异常|未见异常|良好|尚可|无明显(下降|改变|异常|减退))")
# "无发热、呕吐、视物模糊、肢体麻木": one cue denies a whole 、-list, further than its usual window.
_ZH_LIST_WINDOW_CHARS = 24
_EN_WINDOW_WORDS = 7


def _clause_tail(text: str, end: int) -> str:
    m = re.search(r"[.;:!?]", text[end:])
    return text[end:end + m.start()] if m else text[end:]
_ZH_WINDOW_CHARS = 8


def is_negated(text: str, start: int, end: int) -> bool:
    """Is the match text[start:end] inside a negation? Looks back for a cue in the same clause
    and forward for a trailing denial ("fever: none")."""
    if _CJK.search(text[start:end]):
        if _ZH_POST.match(text[end:end + 8]):
            return True
        before = text[max(0, start - _ZH_LIST_WINDOW_CHARS - 4):start]
        cues = list(_ZH_CUE.finditer(before))
        if not cues:
            return False
        # "无突然一侧手脚无力或说话不清": "sudden" right after the cue qualifies the denied finding
        between = _ZH_QUALIFIER.sub("", before[cues[-1].end():])
        window = _ZH_LIST_WINDOW_CHARS if "、" in between else _ZH_WINDOW_CHARS
        return len(between) <= window and not _ZH_BREAK.search(between)
    before = text[max(0, start - 80):start]
    cues = list(_EN_CUE.finditer(before))
    if cues:
        between = before[cues[-1].end():]
        if len(between.split()) <= _EN_WINDOW_WORDS and not _EN_BREAK.search(between):
            # A comma ends the scope ("no fever, runny nose for 2 days") unless the clause is a
            # list closed by or/nor ("denies fever, chills or night sweats").
            # ... or the finding is the list's last item ("no lip, tongue or throat swelling").
            if "," not in between or _EN_LIST_END.search(_clause_tail(text, end)) or _EN_LAST_ITEM.search(between):
                return True
    return bool(_EN_POST.match(text[end:end + 20]))


@dataclass(frozen=True)
class Hit:
    pattern: str
    start: int
    end: int
    text: str


def find(text: str, patterns: list[str] | tuple[str, ...]) -> Hit | None:
    """First non-negated match of any pattern in normalised ``text``."""
    for pattern in patterns:
        for m in compile_pattern(pattern).finditer(text):
            if not is_negated(text, m.start(), m.end()):
                return Hit(pattern, m.start(), m.end(), m.group(0))
    return None


def find_all(text: str, patterns: list[str] | tuple[str, ...]) -> list[Hit]:
    """Every non-negated match of every pattern, in pattern order."""
    return [Hit(p, m.start(), m.end(), m.group(0)) for p in patterns
            for m in compile_pattern(p).finditer(text) if not is_negated(text, m.start(), m.end())]


def find_negated(text: str, patterns: list[str] | tuple[str, ...]) -> Hit | None:
    """First negated match ("no fever"): used to spot contradictions with measured vitals."""
    for pattern in patterns:
        for m in compile_pattern(pattern).finditer(text):
            if is_negated(text, m.start(), m.end()):
                return Hit(pattern, m.start(), m.end(), m.group(0))
    return None


# --- numbers ------------------------------------------------------------------------------
_EN_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
               "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
               "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "eighteen": 18,
               "twenty": 20, "thirty": 30, "few": 3, "a few": 3, "several": 4, "couple of": 2,
               "a couple of": 2, "couple": 2, "a couple": 2}
_ZH_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
              "八": 8, "九": 9, "半": 0.5, "几": 3, "好几": 4}


def zh_number(s: str) -> float | None:
    """Small Chinese numerals: 三, 十二, 二十, 两, 半, 几 (几 = a few, read as 3)."""
    if not s:
        return None
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    if s in _ZH_DIGITS:
        return float(_ZH_DIGITS[s])
    if "十" in s:
        tens, _, units = s.partition("十")
        t = _ZH_DIGITS.get(tens, 1) if tens else 1
        u = _ZH_DIGITS.get(units, 0) if units else 0
        return float(t * 10 + u)
    return None


def en_number(s: str) -> float | None:
    s = s.strip()
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    return float(_EN_NUMBERS[s]) if s in _EN_NUMBERS else None


_EN_NUM = r"(\d+(?:\.\d+)?|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|eighteen|twenty|thirty)"
_ZH_NUM = r"(\d+(?:\.\d+)?|[零一二两三四五六七八九十半几]+)"
_UNIT_DAYS = {"minute": 1 / 1440, "min": 1 / 1440, "分钟": 1 / 1440, "hour": 1 / 24, "hr": 1 / 24, "day": 1, "night": 1, "week": 7, "wk": 7, "month": 30,
              "year": 365, "yr": 365, "小时": 1 / 24, "天": 1, "日": 1, "晚": 1, "周": 7,
              "星期": 7, "礼拜": 7, "月": 30, "个月": 30, "年": 365}

# --- age ------------------------------------------------------------------------------------
_EN_AGE = [
    (re.compile(rf"(?<![a-z0-9]){_EN_NUM}[- ]?(years?|yrs?|months?|weeks?|days?)[- ]old"), None),
    (re.compile(r"(?<![a-z])(?:aged?|age:?)\s*(\d{1,3})(?![0-9])"), "year"),
    (re.compile(r"(?<![0-9])(\d{1,3})\s*(?:yo|y/o|y\.o\.|yrs? old)(?![a-z])"), "year"),
    # nurse notes open with age and sex: "68F, ...", "pt 45M c/o ..." (only there: "100m" is a run)
    (re.compile(r"(?:^|[,;:(]\s*|\bpt\.?\s|\bpatient\s)(\d{1,3})\s?[fm](?![a-z0-9])"), "year"),
    (re.compile(r"(?<![0-9])(\d{1,3})\s*-?\s*(?:year|yr)s?(?![a-z])(?!\s*(?:ago|history|of|since))(?=.{0,12}(?:man|woman|male|female|boy|girl|patient|old))"), "year"),
]
_ZH_CHILD = "(?:宝宝|婴儿|孩子|男婴|女婴|儿子|女儿|小孩)"
_ZH_PATIENT_OPENING = r"患儿\s*[，,]?\s*(?:男|女)?(?:婴)?\s*[，,]?\s*"
_ZH_AGE = [
    (re.compile(rf"{_ZH_NUM}\s*(?:周)?岁(半)?"), "岁"),
    (re.compile(rf"{_ZH_NUM}\s*个?(月)(?:大|龄)"), "月"),
    (re.compile(rf"{_ZH_NUM}\s*个?(月)的(?:宝宝|婴儿|孩子|男婴|女婴|儿子|女儿|小孩|宝贝)"), "月"),
    (re.compile(rf"{_ZH_CHILD}(?:才|刚|今年)?{_ZH_NUM}\s*个?(月)(?!前)"), "月"),
    (re.compile(rf"(?:出生|生下来|生后)(?:才|刚)?(?:第)?{_ZH_NUM}\s*(天|周)"), "天周"),
    (re.compile(rf"{_ZH_NUM}\s*(天|周)大"), "天周"),
    # the age of a Chinese paediatric note's opening: "患儿男，12天", "患儿，女，11个月"
    (re.compile(rf"{_ZH_PATIENT_OPENING}{_ZH_NUM}\s*(天|周)(?!前)"), "天周"),
    (re.compile(rf"{_ZH_PATIENT_OPENING}{_ZH_NUM}\s*个?(月)(?!前)"), "月"),
]
_AGE_WORDS = [
    (re.compile(r"(?<![a-z])(newborn|neonate|new-born)(?![a-z])|新生儿|刚出生"), 0.02),
    (re.compile(r"(?<![a-z])(infant|baby|babies)(?![a-z])|婴儿"), 0.5),
    (re.compile(r"(?<![a-z])(toddler)(?![a-z])|幼儿"), 2.0),
    (re.compile(r"(?<![a-z])(elderly|old (man|woman|lady|gentleman)|grand(mother|father|ma|pa|mum|dad)|pensioner|nursing home)(?![a-z])|"
                r"老人|老年|老太太|老大爷|爷爷|奶奶|外公|外婆|姥姥|姥爷|老伴"), 75.0),
]


# Nurse shorthand for an age: "6/7 old" (days), "3/52 old" (weeks), "4/12 old" (months).
_NURSE_AGE = re.compile(r"(?<![0-9/])(\d{1,2})/(7|52|12)(?=\s*(?:old|of age))")
_NURSE_UNITS = {"7": "days", "52": "weeks", "12": "months"}
_ZH_AND_A_HALF = re.compile(r"(\d+|[一二两三四五六七八九十]+)个半(月|星期|小时)")
_YEARS_PER = {"year": 1, "yr": 1, "month": 1 / 12, "week": 1 / 52, "day": 1 / 365,
              "岁": 1, "月": 1 / 12, "周": 1 / 52, "天": 1 / 365}


def extract_age(text: str) -> float | None:
    """Age in years stated in the text ("a 45-year-old man", "3-month-old", "45岁", "三个月大的
    宝宝", "newborn"); None when the text does not say."""
    text = _ZH_AND_A_HALF.sub(lambda m: f"{zh_number(m.group(1)) + 0.5}个{m.group(2)}", text)
    text = _NURSE_AGE.sub(lambda m: f"{m.group(1)} {_NURSE_UNITS[m.group(2)]} old", text)
    for patterns, number in ((_EN_AGE, en_number), (_ZH_AGE, zh_number)):
        for rx, unit in patterns:
            m = rx.search(text)
            n = number(m.group(1)) if m else None
            if n is None:
                continue
            extra = m.group(2) if m.lastindex and m.lastindex >= 2 else None
            if unit == "岁":  # 3岁半
                return n + (0.5 if extra else 0)
            u = (unit if unit not in (None, "天周") else extra).rstrip("s")
            years = n * _YEARS_PER[u]
            if years <= 125:
                return years
    for rx, years in _AGE_WORDS:
        if rx.search(text):
            return years
    return None


# --- duration -------------------------------------------------------------------------------
_EN_DURATION = re.compile(
    rf"(?<![a-z0-9]){_EN_NUM}\s*(?:-|to|or)?\s*(?:\d+\s*)?(minutes?|mins?|hours?|hrs?|days?|nights?|weeks?|wks?|months?|years?|yrs?)(?![a-z])"
    r"(?![- ]old)(?!\s+(?:pregnant|gestation|postpartum|post-partum))")
_EN_FUZZY = [(re.compile(r"(?<![a-z])(a few|few|several|a couple of|couple of)\s+(days|weeks|months)"), None),
             (re.compile(r"(?<![a-z])(since yesterday|yesterday|last night|overnight)(?![a-z])"), 1.0),
             (re.compile(r"(?<![a-z])(this morning|today|tonight|this afternoon|this evening|just now|minutes? ago)(?![a-z])"), 0.3)]
_ZH_DURATION = re.compile(rf"{_ZH_NUM}\s*(?:个)?\s*(?:多|来)?\s*(个月|个星期|个礼拜|分钟|小时|天|日|周|星期|礼拜|月|年|晚)(?:多|来)?(?!大|龄|的宝宝|的婴儿|的孩子)")
_ZH_FUZZY = [(re.compile(r"昨天|昨晚|一夜"), 1.0), (re.compile(r"前天"), 2.0), (re.compile(r"今天|今早|刚才|早上|上午|下午|晚上"), 0.3),
             (re.compile(r"好几天|几天"), 3.0), (re.compile(r"一直|长期|多年"), 30.0)]


# A duration that dates a past event ("tetanus booster 3 years ago", "3年前打过破伤风") or counts a
# frequency ("a few times a year") is not how long the symptoms have lasted.
_EN_PAST_EVENT = re.compile(r"(?<![a-z])(booster|vaccin\w*|immuni[sz]\w*|jabs?|shots?|tetanus|surgery|operation|scan)(?![a-z])[^.;]{0,12}$")
_EN_FREQUENCY = re.compile(r"(?<![a-z])(times|once|twice)\s*$")
_ZH_PAST_EVENT = re.compile(r"^\s*(以前|前|内|之内|以内).{0,3}(打过|接种|做过|做了|手术|疫苗|破伤风)")
# "tetanus within 5 years", "booster in the last 2 years": the window of a past event, not a duration
_EN_EVENT_WINDOW = re.compile(r"(within|in the (last|past)|last)\s*$")


def _past_event_or_frequency(text: str, start: int, end: int) -> bool:
    if _CJK.search(text[start:end]):
        return bool(_ZH_PAST_EVENT.match(text[end:end + 10]))
    before, after = text[max(0, start - 30):start], text[end:end + 5]
    dated = after.lstrip().startswith("ago") or bool(_EN_EVENT_WINDOW.search(before))
    return bool(_EN_FREQUENCY.search(before)) or (dated and bool(_EN_PAST_EVENT.search(before)))


# What stands before a Chinese number that makes it the baby's age ("患儿男，12天", "出生第4天",
# "宝宝1个月"), not how long it has been ill.
_ZH_AGE_BEFORE = re.compile(rf"(?:{_ZH_PATIENT_OPENING}|出生(?:第)?|生后(?:第)?|{_ZH_CHILD}(?:才|刚|今年)?)$")


def durations_days(text: str) -> list[float]:
    """Every duration the text states, in days ("for 3 days" -> 3, "2 weeks" -> 14, "三天" -> 3,
    "昨天" -> 1). Ages ("3-month-old"), gestation ("20 weeks pregnant"), dated past events
    ("booster 3 years ago") and frequencies ("twice a year") are not durations."""
    found: list[float] = []
    for m in _EN_DURATION.finditer(text):
        if _past_event_or_frequency(text, m.start(), m.end()):
            continue
        n = en_number(m.group(1))
        unit = m.group(2).rstrip("s")
        if n is not None:
            found.append(n * _UNIT_DAYS.get(unit, 1))
    for rx, days in _EN_FUZZY:
        for m in rx.finditer(text):
            if days is None:
                found.append(en_number(m.group(1)) * _UNIT_DAYS[m.group(2).rstrip("s")])
            else:
                found.append(days)
    for m in _ZH_DURATION.finditer(text):
        start = m.start()
        if start > 0 and text[start - 1] == "孕":  # 孕20周 is gestation
            continue
        if _ZH_AGE_BEFORE.search(text[max(0, start - 8):start]):
            continue  # "患儿男，12天", "出生20天", "宝宝1个月": the baby's age, not how long it has been ill
        if _past_event_or_frequency(text, m.start(), m.end()):
            continue
        n = zh_number(m.group(1))
        unit = m.group(2).replace("个", "")
        if n is not None:
            found.append(n * _UNIT_DAYS.get(unit, 1))
    for rx, days in _ZH_FUZZY:
        if rx.search(text):
            found.append(days)
    return found


_SENTENCE_END = re.compile(r"[.;!?。；！？\n]")


def sentence_at(text: str, pos: int) -> str:
    """The sentence of ``text`` around character ``pos``: a duration counts for a symptom only
    when it is said in the same sentence ("runny nose for 2 days", not "vaccinated 3 months ago")."""
    start = 0
    for m in _SENTENCE_END.finditer(text, 0, pos):
        start = m.end()
    m = _SENTENCE_END.search(text, pos)
    return text[start:m.start() if m else len(text)]


def days_near(text: str, pos: int) -> float | None:
    return max(durations_days(sentence_at(text, pos)), default=None)


# --- vital signs written in the complaint ----------------------------------------------------
_TEMP = [re.compile(r"(?:temperature|temp|fever|pyrexia)\s*(?:of|is|was|at|to|up to|reaching|around|about|:)?\s*(\d{2,3}(?:\.\d+)?)\s*(°?\s?[cf](?![a-z])|degrees?(?: ?[cf](?![a-z])| celsius| fahrenheit)?)?"),
         re.compile(r"(\d{2,3}(?:\.\d+)?)\s*(°\s?[cf]|℃|℉|degrees?(?: (?:celsius|fahrenheit|c|f)(?![a-z]))?)"),
         re.compile(r"(?:体温|发烧|发热|高烧|烧到|烧)\s*(?:到|达|是|有|为|:)?\s*(\d{2}(?:\.\d+)?)\s*(度|℃|°c)?"),
         re.compile(r"(\d{2}(?:\.\d+)?)\s*(度|℃)"),
         re.compile(r"(?:thermometer|reading|measured|temp\w*)\D{0,20}?(\d{2}\.\d)(?![0-9])()"),
         re.compile(r"(?:温度计|体温计|量了|测了)\D{0,8}?(\d{2}(?:\.\d)?)()"),
         # nurse notes: "T 38.3", "T:39", "T 37.9℃" (the range check below drops anything else)
         re.compile(r"(?<![a-z])t\s*[:=]?\s*(\d{2}(?:\.\d)?)(?![\d.])\s*(℃|°c)?")]
_SPO2 = re.compile(r"(?:spo2|sats?|saturation|oxygen(?: saturation| level)?|o2 sat\w*|血氧(?:饱和度)?)\s*(?:of|is|was|at|:)?\s*(\d{2,3})\s*%?")
# "P 96次/分" / "R 20次/分" are how Chinese nursing notes write pulse and respiration: a lone letter
# counts only with its unit, which no other number in a note carries ("T 36.8℃, P 96次/分").
_HR = re.compile(r"(?:heart rate|pulse|hr|心率|脉搏)\s*(?:of|is|was|at|:)?\s*(\d{2,3})"
                 r"|(?<![a-z])p\s*:?\s*(\d{2,3})\s*(?:次|bpm|/min)")
_BP = re.compile(r"(?:blood pressure|bp|血压)\s*(?:of|is|was|at|:)?\s*(\d{2,3})\s*/\s*\d{2,3}")
_PAIN = re.compile(r"(?:pain|severity|painscore|pain score|疼痛评分|疼痛)\D{0,20}?(\d{1,2})\s*(?:/|out of|分（满分)\s*10")
# "RR 28" needs no unit (the abbreviation is unambiguous); the words and a lone "R" need one
# ("呼吸2次" after a count of events is not a rate, "R 22次/分" is).
_RR = re.compile(r"(?<![a-z])rr\s*(?:of|is|was|at|:)?\s*(\d{1,2})(?!\s*[.]\d|\d)"
                 r"|(?:respiratory rate|breathing rate|呼吸频率|呼吸|(?<![a-z])r)\s*(?:of|is|was|at|:)?\s*(\d{1,2})\s*(?:/min|breaths|次)")


def vitals_in_text(text: str) -> dict[str, float]:
    """Vital signs written in a vignette or message ("temperature of 39.5", "102 F", "体温39度",
    "SpO2 88%", "BP 80/50"). Fahrenheit is converted. Implausible readings are left out: a
    number in the text is a hint, not a measurement to reject the intake for."""
    out: dict[str, float] = {}
    for rx in _TEMP:
        m = rx.search(text)
        if not m:
            continue
        value = float(m.group(1))
        unit = (m.group(2) or "") if m.lastindex and m.lastindex >= 2 else ""
        if "f" in unit or "℉" in unit or (95 <= value <= 110):
            value = (value - 32) / 1.8
        if 30 <= value <= 44:
            out["temp"] = round(value, 1)
            break
    for name, rx, low, high in (("spo2", _SPO2, 50, 100), ("hr", _HR, 20, 250), ("sbp", _BP, 40, 280),
                                ("rr", _RR, 4, 70), ("pain", _PAIN, 0, 10)):
        m = rx.search(text)
        number = next((g for g in m.groups() if g is not None), None) if m else None
        if number is not None and low <= float(number) <= high:
            out[name] = int(number) if name == "pain" else float(number)
    return out


# Point-of-care labs a nurse note carries: capillary glucose and ketones. mg/dL is converted
# (glucose / 18); a glucose number above 35 without a unit can only be mg/dL (35 mmol/L is
# already a hyperosmolar emergency, 35 mg/dL a severe low that a note would write as "35 mg/dl").
_GLUCOSE = re.compile(r"(?<![a-z])(?:glucose|blood sugar|sugar|bg|bm|cbg|fingerstick|(?:随机|空腹|指尖)?血糖)\s*(?:of|is|was|at|:|为)?\s*"
                      r"(\d{1,3}(?:\.\d+)?)\s*(mmol/l|mmol|mg/dl)?")
_KETONES = re.compile(r"(?<![a-z])(?:blood )?(?:ketones?|血酮体?|β-?羟丁酸)\s*(?:of|is|was|at|:|为)?\s*(\d{1,2}(?:\.\d+)?)")
# urine ketones as a dipstick grade: "urine ketones ++", "ketones 3+", "尿酮体（+++）" / "尿酮（++）"
_URINE_KETONES = re.compile(r"(?:urine ketones?|ketonuria|尿酮体?)\s*[:：(（]?\s*(\+{1,4}|[1-4]\s*\+)")


def labs_in_text(text: str) -> dict[str, float]:
    """Glucose (mmol/L), blood ketones (mmol/L) and urine ketones (dipstick pluses) written in a
    note ("glucose 24.6 mmol/L, blood ketones 3.8", "随机血糖 28.5mmol/L，尿酮体（+++）")."""
    out: dict[str, float] = {}
    urine = _URINE_KETONES.search(text)
    if urine:
        grade = urine.group(1).replace(" ", "")
        out["urine_ketones"] = float(grade.count("+") if grade.strip("+") == "" else int(grade.rstrip("+")))
    m = _GLUCOSE.search(text)
    if m:
        value, unit = float(m.group(1)), (m.group(2) or "")
        if unit == "mg/dl" or (not unit and value > 35):
            value = value / 18.0
        if 0.5 <= value <= 60:
            out["glucose"] = round(value, 1)
    for k in _KETONES.finditer(text):
        if urine and urine.start() <= k.start() < urine.end():
            continue   # the dipstick grade, read above
        value = float(k.group(1))
        if value <= 15:
            out["ketones"] = value
            break
    return out


# --- stated negatives, for "what the engine understood" ------------------------------------
# The cues are the negation filter's own (_EN_CUE, _ZH_CUE, with their exclusions: "无力" is
# weakness, not a denial); what follows a cue up to the end of its phrase is the finding denied.
_EN_DENIED = re.compile(r"\s+((?:[a-z0-9/%-]+\s?){1,4}?)(?=\s*(?:[,.;:!?]|$|\bor\b|\band\b|\bbut\b|\bsince\b))")
_ZH_DENIED = re.compile(r"((?:明显)?[\u4e00-\u9fff]{1,6}?)(?=[，,。；;、！？?]|$)")
# what follows "not" that is a state, or an absence that is itself the finding ("no urine")
_NOT_A_NEGATIVE = re.compile(r"^(breathing|responding|responsive|waking|moving|able|sure|improving|better|"
                             r"eating|drinking|feeding|passing|peeing|weeing|urine|wet|wees?|pees?|pulse|tears)\b")
_ZH_NOT_A_NEGATIVE = re.compile(r"^(尿|小便|呼吸|意识|反应|脉搏|心跳|眼泪|泪|解|排|进食|吃|喝|睡)")


def stated_negatives(text: str) -> list[str]:
    """The findings a vignette states as absent, as written ("fever" of "denies fever", "胸痛" of
    "无胸痛"): shown to the nurse as read, not used to decide."""
    found: list[str] = []
    for cue in _EN_CUE.finditer(text):
        m = _EN_DENIED.match(text, cue.end())
        if m and not _NOT_A_NEGATIVE.match(m.group(1).strip()):
            found.append(m.group(1).strip())
    for cue in _ZH_CUE.finditer(text):
        m = _ZH_DENIED.match(text, cue.end())
        if m and not _ZH_NOT_A_NEGATIVE.match(m.group(1)):
            found.append(m.group(1))
    return list(dict.fromkeys(found))
