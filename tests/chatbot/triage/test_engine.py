"""Complaint rules, negation, modifiers, contradictions, departments, note and the chat line, in
both languages. Expected levels come from the guidance named in data/triage/*.yaml, not from
running the engine."""

import pytest

from chatbot.triage import Intake, TriageEngine

from .conftest import KeywordScreen, assess, codes


@pytest.mark.parametrize("text,disposition", [
    ("A 45-year-old man with crushing chest pain radiating to the left arm for 30 minutes, sweating", "emergency"),
    ("男，56岁，胸口压榨样疼痛40分钟，伴大汗", "emergency"),
    ("sudden weakness of the left arm and slurred speech", "emergency"),
    ("突然说话不清，右侧手脚无力", "emergency"),
    ("A 30-year-old woman with 3 days of burning on urination, no fever", "routine"),
    ("尿频、尿急、尿痛两天", "routine"),
    ("A 25-year-old with a runny nose and sore throat for 2 days", "self_care"),
    ("感冒两天，流鼻涕，嗓子有点疼", "self_care"),
    ("被狗咬伤了手", "urgent"),
    ("bitten by a stray dog on the hand", "urgent"),
    # light sensitivity: an eye problem without fever (NHS red eye: urgent), meningitis with one
    ("女，32岁，一只眼睛红痛，怕光，看东西有点模糊", "urgent"),
    ("painful red eye and sensitivity to light since this morning", "urgent"),
    ("双眼发红有点疼，见不得光，戴隐形眼镜", "urgent"),
    ("fever of 39 with a headache and sensitivity to light", "emergency"),
    ("发烧39度，头痛，怕光", "emergency"),
    ("打篮球手指擦破点皮，已经不出血了", "self_care"),
    ("工作压力大，这两三天晚上睡不好", "self_care"),
    ("stiff neck after sleeping awkwardly, can still turn it, no fever", "self_care"),
])
def test_presentations_in_both_languages(engine, text, disposition):
    assert assess(engine, text).disposition == disposition


@pytest.mark.parametrize("text,absent,present", [
    ("no fever, runny nose for two days", "fever_unexplained", "common_cold"),
    ("denies chest pain; mild cough", "chest_pain", "common_cold"),
    ("no chest pain but short of breath at rest", "chest_pain", "breathing_difficulty"),
    ("不发烧，流鼻涕两天", "fever_unexplained", "common_cold"),
    ("无胸痛，咳嗽三天", "chest_pain", "common_cold"),
    ("没有呕吐，拉肚子一天", None, "gastroenteritis_mild"),
    ("Fever: none. Sneezing.", "fever_unexplained", "common_cold"),
    ("denies fever, chills or night sweats; sneezing", "fever_unexplained", "common_cold"),
])
def test_negation(engine, text, absent, present):
    found = codes(assess(engine, text, age=30))
    if absent:
        assert absent not in found
    assert present in found


def test_negation_does_not_swallow_later_clauses(engine):
    # "不停" is not a negation, and a new clause ends the scope of "no"
    assert "persistent_vomiting" in codes(assess(engine, "不停地呕吐，喝水就吐"))
    assert "无明显诱因出现胸痛" and assess(engine, "无明显诱因出现胸痛").disposition == "emergency"
    assert assess(engine, "No fever. Has crushing chest pain.").disposition == "emergency"


COLD = "runny nose and sneezing for 2 days"


@pytest.mark.parametrize("kwargs,code", [
    ({"age": 0.6}, "infant"),
    ({"pregnant": True, "sex": "F", "age": 28}, "pregnancy"),
    ({"comorbidities": ("on chemotherapy",), "age": 40}, "immunocompromised"),
    ({"comorbidities": ("COPD",), "age": 40}, "high_risk_condition"),
])
def test_self_care_disqualifiers(engine, kwargs, code):
    assert assess(engine, COLD, age=30).disposition == "self_care"
    result = assess(engine, COLD, **kwargs)
    assert result.disposition in ("routine", "urgent") and code in codes(result)


def test_older_age_disqualifies_self_care_only_where_the_self_care_page_sets_an_age_limit(engine):
    # a fall or a strain at 70 needs a look (falls guidance); a cold, constipation or dry skin do not
    bruise = "bumped her forearm on the door yesterday, a bruise, moves the arm normally"
    assert assess(engine, bruise, age=30).disposition == "self_care"
    older = assess(engine, bruise, age=70)
    assert older.disposition == "routine" and "older_adult" in codes(older)
    for text in (COLD, "入冬后小腿皮肤干燥、脱屑、瘙痒，无皮疹，无破溃"):
        result = assess(engine, text, age=80)
        assert result.disposition == "self_care" and "older_adult" not in codes(result), text


def test_self_care_disqualifiers_in_text(engine):
    assert assess(engine, "I'm 20 weeks pregnant and have a runny nose").disposition != "self_care"
    assert assess(engine, "怀孕5个月，感冒流鼻涕").disposition != "self_care"
    long = assess(engine, "runny nose and sneezing for 5 weeks", age=30)
    assert long.disposition == "routine" and "long_duration:common_cold" in codes(long)
    worse = assess(engine, "sore throat for 4 days and getting worse", age=30)
    assert worse.disposition == "routine" and "worsening" in codes(worse)
    assert assess(engine, "咳嗽一个多月了", age=30).disposition == "routine"


def test_fever_for_more_than_three_days_is_urgent(engine):
    result = assess(engine, "fever and aches for 5 days", age=30)
    assert result.disposition == "urgent" and "fever_days" in codes(result)
    assert assess(engine, "发烧五天了", age=30).disposition == "urgent"
    # a duration in another sentence is not the fever's
    assert assess(engine, "Mild fever since yesterday. Vaccinated 3 months ago.", age=30).disposition == "self_care"


@pytest.mark.parametrize("text,kwargs", [
    ("fever", {"age": 0.15}),
    ("6-week-old baby with a fever", {}),
    ("两个月大的宝宝发烧", {}),
    ("baby feels hot", {"age": 0.1, "vitals": {"temp": 38.2}}),
])
def test_infant_fever_under_three_months_is_an_emergency(engine, text, kwargs):
    result = assess(engine, text, **kwargs)
    assert result.disposition == "emergency"
    assert result.reasons[0].code in ("infant_fever", "infant_fever_under_3m")


def test_age_modifiers(engine):
    young = assess(engine, "fell and hit her head, no other symptoms", age=30)
    old = assess(engine, "fell and hit her head, no other symptoms", age=80)
    assert young.acuity == 3 and old.acuity == 2
    assert any(r.code == "head_injury" and r.acuity == 2 for r in old.reasons)
    assert "65" in next(r for r in old.reasons if r.code == "head_injury").text_en


@pytest.mark.parametrize("kwargs,code", [
    ({"text": "no fever, just tired", "vitals": {"temp": 39.5}}, "no_fever_but_temp"),
    ({"text": "不发烧，有点累", "vitals": {"temp": 39.5}}, "no_fever_but_temp"),
    ({"text": "runny nose", "pregnant": True, "sex": "M"}, "pregnant_male"),
    ({"text": "feels unwell", "vitals": {"gcs": 15, "avpu": "U"}}, "gcs_avpu"),
])
def test_contradictions_are_flagged_and_lean_safer(engine, kwargs, code):
    text = kwargs.pop("text")
    result = assess(engine, text, **kwargs)
    flagged = [r for r in result.reasons if r.kind == "contradiction"]
    assert flagged and flagged[0].code == code
    assert result.warnings and flagged[0].text(result.lang) in result.warnings
    assert result.disposition != "self_care"
    if code == "gcs_avpu":
        assert result.acuity == 1  # the worse reading (AVPU U) decides
    if code == "no_fever_but_temp":
        assert "temp_39_1_or_more" in codes(result)


def test_unrecognised_complaint_leans_safer_and_says_so(engine):
    result = assess(engine, "something feels off with my blorp", age=30)
    assert result.disposition == "routine"
    assert result.reasons[0].kind == "uncertainty" and result.reasons[0].code == "complaint_unrecognised"


def test_several_presentations_take_the_most_urgent(engine):
    result = assess(engine, "runny nose and vomiting blood", age=30)
    assert result.disposition == "emergency" and "several_presentations" in codes(result)


def test_departments_are_bilingual_and_children_go_to_paediatrics(engine):
    adult = assess(engine, "burning when urinating", age=30)
    assert adult.department == {"key": "urology", "en": "Urology", "zh": "泌尿外科"}
    child = assess(engine, "cough with fever and yellow phlegm", age=6)
    assert child.department["key"] == "paediatrics" and child.department["zh"] == "儿科"
    assert assess(engine, "crushing chest pain").department["zh"] == "急诊科"


def test_red_flag_hits_become_reasons(engine):
    screen = KeywordScreen({"blorp": "self_harm", "zap": "unlisted_category", "zonk": "airway"})
    e = TriageEngine(screen=screen, prompts=engine.prompts)
    result = assess(e, "my blorp and zap", age=30)
    assert screen.calls == [("my blorp and zap", "en")]
    assert [f["category"] for f in result.red_flags] == ["self_harm", "unlisted_category"]
    flags = [r for r in result.reasons if r.kind == "red_flag"]
    assert {r.code for r in flags} == {"test_self_harm", "test_unlisted_category"}
    # modifiers.yaml: self_harm -> 2 (psychiatry); unlisted -> default 2; airway -> 1
    assert all(r.acuity == 2 for r in flags) and result.disposition == "emergency"
    assert result.department["key"] == "emergency"
    assert assess(e, "zonk").acuity == 1


def test_without_a_screen_the_result_says_so():
    e = TriageEngine(screen=None)
    result = e.assess(__import__("chatbot.triage", fromlist=["Intake"]).Intake("cough"), with_evidence=False)
    assert any("red-flag screen is off" in w for w in result.warnings)


def test_note_is_a_bilingual_template(engine):
    en = assess(engine, "crushing chest pain", age=60, sex="M", vitals={"hr": 135})
    assert en.note.startswith("TRIAGE NOTE") and "60 years, male" in en.note
    assert "Heart rate 135/min" in en.note and "Emergency" in en.note and "[2]" in en.note
    zh = assess(engine, "胸痛半小时", age=60, sex="M")
    assert zh.lang == "zh" and zh.note.startswith("预检分诊记录") and "60 岁，男" in zh.note
    assert "急诊科" in zh.note and "急诊预检分诊 2 级" in zh.note
    forced = assess(engine, "胸痛半小时", lang="en")
    assert forced.note.startswith("TRIAGE NOTE") and forced.reasons[0].text("en") in forced.note


def test_to_json_contract(engine):
    data = assess(engine, "crushing chest pain").to_json()
    assert set(data) == {"acuity", "disposition", "department", "reasons", "red_flags", "evidence",
                         "note", "lang", "warnings", "opinion", "understood"}
    assert set(data["reasons"][0]) == {"kind", "code", "acuity", "text", "value"}
    assert set(data["department"]) == {"key", "en", "zh"}


@pytest.mark.parametrize("text,lang,level", [
    ("I've had a runny nose and sneezing for 2 days", "en", "self_care"),
    ("My son has had a fever for 5 days", "en", "urgent"),
    ("我这两天流鼻涕、打喷嚏", "zh", "self_care"),
    ("我尿频尿痛两天了", "zh", "routine"),
])
def test_chat_disposition_for_own_symptoms(engine, text, lang, level):
    found = engine.chat_disposition(text, lang)
    assert found is not None and found["level"] == level
    assert found["line"] == engine.prompts.text(lang, f"triage.line.{level}")
    assert engine.disposition_line(text, lang) == found["line"]


@pytest.mark.parametrize("text,lang", [
    ("What causes gout?", "en"),
    ("How is high blood pressure treated?", "en"),
    ("高血压怎么治疗？", "zh"),
    ("I would like to know more about MedChat", "en"),
])
def test_no_chat_disposition_for_topic_questions(engine, text, lang):
    assert engine.disposition_line(text, lang) is None


def test_infant_self_care_only_for_baby_specific_complaints(engine):
    # NHS: nappy rash and teething are treated at home; any other illness in a baby needs a clinician
    assert assess(engine, "my baby has nappy rash").disposition == "self_care"
    assert assess(engine, "宝宝出牙，有点烦").disposition == "self_care"
    assert assess(engine, "my baby has a runny nose").disposition == "routine"
    assert assess(engine, "my baby has nappy rash and a runny nose").disposition == "routine"


def test_unexplained_alarm_words_block_self_care(engine):
    # a wording no rule knows must not send the patient home when it touches a vital system
    result = assess(engine, "sore throat and a weird numb feeling in my face", age=30)
    assert result.disposition == "routine" and "alarm_word" in codes(result)
    assert "numb" in next(r for r in result.reasons if r.code == "alarm_word").text_en
    # ... but words explained by the matched self-care rule, negated or reassuring, do not
    assert assess(engine, "流鼻血，按压五分钟后止住了", age=30).disposition == "self_care"
    assert assess(engine, "手指划了个小口子，已经不出血了", age=30).disposition == "self_care"
    assert assess(engine, "sticky red eye, vision is normal", age=30).disposition == "self_care"
    assert assess(engine, "acne on his face and chest", age=17).disposition == "self_care"


def test_a_written_or_measured_temperature_counts_as_fever(engine):
    text = "headache, vomiting and a blotchy rash on his legs"
    assert assess(engine, text, age=23).disposition != "emergency"
    assert assess(engine, text + ", temperature of 39.8", age=23).disposition == "emergency"
    assert assess(engine, text, age=23, vitals={"temp": 39.8}).disposition == "emergency"


@pytest.mark.parametrize("text,disposition", [
    ("A 30-year-old afebrile woman with dysuria for 2 days", "routine"),
    ("65M with hemiparesis and aphasia for 1 hour", "emergency"),
    ("A 40-year-old with rhinorrhea and sneezing, afebrile", "self_care"),
    ("A 70-year-old, hypotensive and tachycardic, with melena", "emergency"),
])
def test_clinical_terms_are_read_as_plain_words(engine, text, disposition):
    assert assess(engine, text).disposition == disposition


# Classes that blind clinical round 7 (data/eval/triage_holdout7.jsonl) found wrong, in new wording.
# Levels from the guidance each presentation names (NHS conditions pages, NICE NG232 head injury,
# Ottawa ankle rules, NHS sepsis / HUS / intussusception / anaphylaxis / suicide pages).
@pytest.mark.parametrize("text,level", [
    # emergencies that looked mild
    ("70M, aching left eye since the evening, sees haloes round street lamps, vomited twice", "em"),
    ("患者女，66岁，左眼胀痛，看灯有彩虹圈，伴恶心呕吐", "em"),
    ("3yo girl had bloody diarrhoea four days ago, now pale and sleepy and hasn't had a wet nappy since the morning", "em"),
    ("患儿5岁，上周血便，今天面色苍白、尿很少", "em"),
    ("81F on rivaroxaban knocked her forehead on a cupboard door, small graze, feels well", "em"),
    ("患者男，85岁，跌倒后左髋痛，左腿缩短外旋，不能站立", "em"),
    ("患者女，19岁，脐周痛半天后转移至右下腹，按压痛明显", "em"),
    ("孩子3岁，家里的纽扣电池不见了一颗，怀疑被吞了，现在没什么不适", "em"),
    ("8-month-old screaming in bouts, draws his legs up, then quiet; vomited and passed a jelly-like red stool", "em"),
    ("30F, 38/40, primip, headache and flashing lights since this morning, feet and face swollen", "em"),
    ("19M with a known peanut allergy, ate satay 15 min ago, lips tingling and voice going hoarse", "em"),
    ("60M on naproxen, three black, tarry, smelly stools since yesterday, dizzy on standing", "em"),
    ("his wife says he has been saving up his tablets and plans to take them all tonight", "em"),
    # not emergencies the rules had sent to the emergency department
    ("患者男，58岁，今晨一次无痛性肉眼血尿，无尿痛，排尿通畅", "ne"),
    ("29F, band-like headache after long shifts for 2 days, no fever, no stiff neck, eased with rest", "sc"),
    # self-care the rules had sent to a doctor
    ("患者男，30岁，打羽毛球崴了左脚踝，外侧肿，能走路，踝骨无压痛", "sc"),
    ("患者女，35岁，炒菜时手背被热油溅到，发红刺痛，无水疱，已冲冷水", "sc"),
    ("46M nicked his thumb with a bread knife, bleeding stopped with pressure, tetanus booster 2 years ago", "sc"),
    ("患者男，40岁，切菜切到食指，按压后止血，5年前打过破伤风", "sc"),
    ("33M, calves sore and tight since his first half marathon yesterday, no swelling, both the same size", "sc"),
    ("患者女，27岁，入睡困难4天，最近工作压力大，白天有点累，无情绪低落", "sc"),
    ("患者女，26岁，吃火锅后身上起了几个风团，发痒，无嘴唇肿胀，无胸闷", "sc"),
    ("6yo hasn't done a poo for 2 days, tummy soft, eating and playing, no vomiting", "sc"),
    ("患者女，31岁，连续熬夜后双侧头部紧箍样胀痛1天，无发热，无呕吐", "sc"),
    ("25M felt light-headed for a few seconds when he stood up quickly after a hot bath, fine now", "sc"),
    ("30F dizzy for a moment when she got up too fast from the sofa, didn't faint, no palpitations", "sc"),
    ("4yo knocked his head on the slide, cried straight away, small bump, back to playing, no vomiting", "sc"),
    ("患儿4岁，头磕到门框，马上就哭了，起了个小包，精神好，没有呕吐", "sc"),
    ("4yo knocked his head on the slide, cried straight away, vomited twice since and is sleepy", "em"),
    ("7-month-old, T 37.8 the evening after her jabs, feeding well, injection site a little red", "sc"),
    ("患者男，28岁，有痔疮，大便后手纸上有一点鲜血，无黑便，无头晕", "sc"),
    ("35M, productive cough for 6 days, T 38.4, HR 90, SpO2 97%", "ne"),
    # self-care forms rounds 8-11 kept missing (NHS self-care pages), in new wording
    ("31F went over on her L ankle stepping off a bus, mild swelling, walking on it, no bony tenderness", "sc"),
    ("31F went over on her L ankle, unable to bear weight, tender over the lateral malleolus", "ne"),  # Ottawa
    ("患者女，45岁，下台阶时扭了一下左脚踝，稍肿，能自行行走，外踝无压痛", "sc"),
    ("患者女，45岁，扭伤右脚踝后不能负重行走，外踝压痛明显", "ne"),                           # Ottawa
    ("40M spilled boiling water from the kettle onto his wrist, red and sore, no blisters, cooled 20 min", "sc"),
    ("患者男，52岁，削苹果时水果刀划伤拇指，伤口浅，已止血，活动正常", "sc"),
    ("患者女，28岁，晨起脖子疼，转头受限，昨晚枕头太高，无发热，无手麻", "sc"),
    ("22M quads very sore and stiff 2 days after his first leg day at the gym, urine normal colour", "sc"),
    ("患者女，38岁，近1周大便干硬，排便费力，饮水少，无便血，无腹痛", "sc"),
    ("5-week-old brings up a little milk after most feeds, gaining weight, happy, not projectile", "sc"),
    ("患儿女，1岁，天热后脖子和背上长了痱子，不发烧，吃奶好", "sc"),
    ("30F pressure across her forehead after long screen days this week, eased by paracetamol, no fever", "sc"),
    ("4-year-old passed meconium normally at birth; now hard stools twice a week, eating well", "sc"),
    ("患儿女，9月龄，天气热、衣服穿多后后背出现密集针尖大小的小红疹，精神好，吃奶好，无发热", "sc"),
    ("患者男，30岁，换了新的沐浴露后双前臂红疹发痒2天，无水疱，无嘴唇肿胀", "sc"),
    ("患者女，20岁，游泳完左耳朵发闷，像有水，无耳痛，无流脓，无发热", "sc"),
    ("患者男，24岁，吃火锅后拉肚子2次，水样便，轻微腹痛，无发热，无便血，能喝水", "sc"),
    ("患者女，30岁，口腔溃疡1个，吃辣的食物加重，已4天，无发热", "sc"),
])
def test_blind_round_7_classes_in_new_wording(text, level):
    from chatbot.app import make_triage_engine
    from chatbot.settings import load_settings

    real = _REAL_ENGINE.setdefault("engine", make_triage_engine(load_settings()))  # the real screen
    result = assess(real, text)
    given = {"emergency": "em", "urgent": "ne", "routine": "ne", "self_care": "sc"}[result.disposition]
    assert given == level, codes(result)


_REAL_ENGINE: dict = {}


@pytest.mark.parametrize("text,expected", [
    ("68F, discharged 9 days ago after a pneumonia admission, on apixaban for AF. L calf swelling x2d. "
     "Denies chest pain, no fever.",
     {"age": 68.0, "sex": "F", "risk_factors": {"recent_hospital_stay", "anticoagulant", "long_term_condition"},
      "negatives": {"chest pain", "fever"}}),
    ("患者男，66岁，肺癌化疗后第10天，发热半天，无咳嗽、无腹泻。",
     {"age": 66.0, "sex": "M", "risk_factors": {"immunosuppression", "long_term_condition"},
      "negatives": {"咳嗽", "腹泻"}}),
])
def test_the_result_says_what_the_engine_understood(engine, text, expected):
    understood = assess(engine, text).to_json()["understood"]
    assert understood["age"] == expected["age"] and understood["sex"] == expected["sex"]
    assert set(understood["risk_factors"]) == expected["risk_factors"]
    assert set(understood["negatives"]) == expected["negatives"]
    # "no urine" is a finding, not a stated absence
    assert "urine" not in assess(engine, "3yo, no urine since this morning, no fever").to_json()["understood"]["negatives"]
    # the negation filter's own cues: "无力" is weakness, "未解大便" a finding, neither a denial
    assert assess(engine, "患者女，70岁，双下肢无力，3天未解大便，无发热").to_json()["understood"]["negatives"] == ["发热"]


# Context emergencies of blind round 15 (reported at freeze first), in new wording here, with the
# look-alikes that must stay non-emergencies.
@pytest.mark.parametrize("text, code, emergency", [
    ("Tib/fib fracture in plaster since yesterday, now agonising pain not helped by morphine, toes numb", "compartment_syndrome", True),
    ("前臂骨折石膏固定后手指麻木、发凉，疼痛进行性加重", "compartment_syndrome", True),
    ("Broken wrist in a cast for a week, mild ache, fingers pink and warm", "compartment_syndrome", False),
    ("Known prostate cancer with bone metastases, new weakness in both legs since this morning", "spinal_cord_compression", True),
    ("肺癌脑转移病史，今日双下肢无力、走路不稳", "spinal_cord_compression", True),
    ("乳腺癌术后5年，复查无复发，近期腰痛，无下肢无力麻木", "spinal_cord_compression", False),
    ("Started lamotrigine 3 weeks ago, now fever, blisters on her lips and a spreading rash", "severe_drug_rash", True),
    ("服用别嘌醇2周后全身红斑、水疱，口腔糜烂，双眼红", "severe_drug_rash", True),
    ("Itchy rash on the arms after a new washing powder, no mouth or eye symptoms", "severe_drug_rash", False),
    ("On carbimazole for Graves, 2 days of sore throat and temperature 38.9", "drug_agranulocytosis", True),
    ("服用丙硫氧嘧啶期间发热39℃，咽痛", "drug_agranulocytosis", True),
    ("On carbimazole, mild runny nose, no fever, no sore throat", "drug_agranulocytosis", False),
    ("82M BPH, hasn't passed urine for 12 hours, lower belly swollen and painful", "urinary_retention", True),
    ("男，80岁，8小时未能排尿，下腹胀痛", "urinary_retention", True),
    ("尿频尿急两天，排尿时有点痛，能排尿", "urinary_retention", False),
])
def test_context_emergencies_of_round_15(engine, text, code, emergency):
    result = engine.assess(Intake(complaint=text), with_evidence=False)
    codes = {r.code for r in result.reasons}
    if emergency:
        assert code in codes and result.disposition == "emergency", (codes, result.disposition)
    else:
        assert code not in codes and result.disposition != "emergency", (codes, result.disposition)
