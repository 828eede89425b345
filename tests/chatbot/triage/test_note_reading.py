"""How the engine reads a nurse's note: vitals and labs as nurses write them (Chinese "P 126次/分",
"RR 28" without a unit), denials that cover a list or follow the finding, dated past events, and
the protocol rules that depend on them (DKA, fever during chemotherapy, drooling, teething)."""

import pytest

from chatbot.triage.text import durations_days, find, labs_in_text, normalise, vitals_in_text

from .conftest import assess, codes


@pytest.mark.parametrize("text,expected", [
    ("查体：T 37.9℃，P 126次/分，R 22次/分，BP 168/98mmHg。", {"temp": 37.9, "hr": 126.0, "rr": 22.0, "sbp": 168.0}),
    ("HR 124, RR 28, sats 91% RA, T 38.2", {"hr": 124.0, "rr": 28.0, "spo2": 91.0, "temp": 38.2}),
    ("RR: 18", {"rr": 18.0}),
    ("R 30/min", {"rr": 30.0}),
])
def test_vitals_written_the_way_nurses_write_them(text, expected):
    assert vitals_in_text(normalise(text)) == expected


def test_a_letter_or_a_count_without_its_unit_is_not_a_vital():
    assert vitals_in_text(normalise("呼吸2次")) == {}
    assert "hr" not in vitals_in_text(normalise("ap 120 view of the chest"))


@pytest.mark.parametrize("text,expected", [
    ("Glucose 24.6 mmol/L, blood ketones 3.8", {"glucose": 24.6, "ketones": 3.8}),
    ("随机血糖 28.5mmol/L，尿酮体（+++）", {"glucose": 28.5, "urine_ketones": 3.0}),
    ("blood sugar 180 mg/dL", {"glucose": 10.0}),
    ("BM 450", {"glucose": 25.0}),     # no unit and above 35: mg/dL
    ("urine ketones 2+", {"urine_ketones": 2.0}),
])
def test_point_of_care_labs(text, expected):
    assert labs_in_text(normalise(text)) == expected


def test_a_denial_covers_a_chinese_list_and_a_finding_stated_normal():
    text = normalise("无发热、呕吐、视物模糊、肢体麻木")
    assert find(text, ["麻木"]) is None and find(text, ["发热"]) is None
    assert find(normalise("视力正常，无眼痛"), ["视力"]) is None
    assert find(normalise("自觉视力无明显下降"), ["视力"]) is None
    # the list ends at a comma: a new finding after it is not denied
    assert find(normalise("无发热，肢体麻木"), ["麻木"]) is not None


def test_the_window_of_a_past_event_is_not_how_long_symptoms_lasted():
    assert durations_days(normalise("切菜时划伤手指，半年内打过破伤风")) == []
    assert durations_days(normalise("cut finger 2 days ago, tetanus within 5 years")) == [2.0]


def test_dka_from_the_labs_whatever_the_complaint(engine):
    text = "22M T1DM, vomiting since last night, abdo pain. Glucose 24.6 mmol/L, blood ketones 3.8."
    result = assess(engine, text)
    assert result.disposition == "emergency" and "lab_dka" in codes(result)
    assert result.understood["labs"] == {"glucose": 24.6, "ketones": 3.8}
    zh = assess(engine, "患者男，30岁，1型糖尿病，恶心呕吐1天，随机血糖 26mmol/L，尿酮体（+++）")
    assert zh.disposition == "emergency" and "lab_dka" in codes(zh)
    # a high glucose without ketones is not DKA, nor an emergency on its own below 30 mmol/L
    plain = assess(engine, "2型糖尿病，今天空腹血糖 13mmol/L，无不适")
    assert "lab_dka" not in codes(plain) and plain.disposition != "emergency"
    assert "lab_hhs" in codes(assess(engine, "confused, glucose 34 mmol/L"))


def test_fever_during_chemotherapy_is_an_emergency_other_immunosuppression_urgent(engine):
    chemo = assess(engine, "45F, breast ca, day 9 after 3rd cycle of chemo. T 38.1 at home, 'a bit tired'.")
    assert chemo.disposition == "emergency" and "chemotherapy_fever" in codes(chemo)
    zh = assess(engine, "肺癌化疗后第10天，发热半天，T 38.4℃，自觉就是累点")
    assert zh.disposition == "emergency" and "chemotherapy_fever" in codes(zh)
    steroids = assess(engine, "on long-term steroids, fever 38.3 and a sore throat")
    assert steroids.disposition == "urgent" and "immunocompromised_fever" in codes(steroids)
    assert "chemotherapy_fever" not in codes(assess(engine, "on chemo, no fever, a little tired"))


def test_drooling_is_a_danger_sign_of_a_sore_throat_not_of_teething_or_a_facial_palsy(engine):
    throat = assess(engine, "sore throat since this morning, now I can't even swallow my own spit and I'm drooling")
    assert throat.disposition == "emergency" and "sore_throat_drooling" in codes(throat)
    teething = assess(engine, "8-month-old drooling, chewing everything, bottom front tooth coming through, "
                              "T 37.5, feeding well")
    assert teething.disposition == "self_care" and "sore_throat_drooling" not in codes(teething)
    assert "sore_throat_drooling" not in codes(assess(engine, "face drooping on the right, drooling from the corner of the mouth"))


def test_a_fragment_from_a_grinder_and_a_gaping_wound_need_a_clinician(engine):
    eye = assess(engine, "用角磨机打磨铁件时未戴护目镜，右眼异物感、流泪，视力基本正常，无剧烈眼痛")
    assert eye.disposition == "urgent" and "high_velocity_eye_injury" in codes(eye)
    cut = assess(engine, "切菜时左手拇指割伤1小时，伤口约2cm，边缘裂开，压迫后出血已止")
    assert cut.disposition != "self_care" and "gaping_wound" in codes(cut)
    small = assess(engine, "切菜时左手食指划伤约1cm，伤口浅，按压5分钟后已止血，半年内打过破伤风")
    assert small.disposition == "self_care"


def test_green_vomit_in_a_child_is_an_emergency_a_newborns_stool_colour_is_not(engine):
    baby = assess(engine, "患儿男，12天，足月顺产，今日吃奶后呕吐3次，呕吐物为黄绿色液体，腹部稍胀。T 36.8℃")
    assert baby.disposition == "emergency" and "bilious_vomiting_child" in codes(baby)
    assert baby.understood["age"] < 0.1 and baby.understood["duration_days"] is None
    en = assess(engine, "Day 3 newborn boy, now vomited x3 bright green, tummy a little swollen")
    assert en.disposition == "emergency" and "bilious_vomiting_child" in codes(en)
    stool = assess(engine, "新生儿，生后5天，皮肤发黄，吃奶好，大便已由墨绿色转黄，精神好")
    assert "bilious_vomiting_child" not in codes(stool)
    # an adult bringing up bile after repeated vomiting is not this rule
    assert "bilious_vomiting_child" not in codes(assess(engine, "35M vomiting since last night, now bringing up green bile", age=35))


def test_wordings_of_a_spreading_neck_infection_and_a_severe_drug_rash(engine):
    neck = assess(engine, "38M toothache x5d, swelling under the jaw spreading to the neck, voice muffled, "
                          "struggling to swallow saliva. T 38.8")
    assert neck.disposition == "emergency" and "severe_sore_throat" in codes(neck)
    sjs = assess(engine, "患者女，34岁，1周前开始服用卡马西平，今日全身出现暗红色斑疹，部分起疱，口唇糜烂，双眼红痛")
    assert sjs.disposition == "emergency" and "severe_drug_rash" in codes(sjs)


def test_chinese_wordings_that_are_not_alarms(engine):
    # "无尿痛尿频" denies both (无尿 alone is anuria and stays a finding)
    assert find(normalise("无尿痛尿频，无腰痛"), ["尿频"]) is None
    assert find(normalise("今天突然无尿"), ["无尿"]) is not None
    # bleeding that stopped, a rash worse in summer, a neck stiff on waking without fever
    cut = assess(engine, "切菜时左手示指指腹切伤，伤口约1cm，表浅，按压5分钟后出血停止，手指活动及感觉正常")
    assert "alarm_word" not in codes(cut) and cut.disposition == "self_care"
    assert "worsening" not in codes(assess(engine, "双足趾缝间脱皮、瘙痒1周，夏天加重，无红肿"))
    neck = assess(engine, "今晨起床后颈部僵硬疼痛，向左转头受限，无外伤，无发热头痛")
    assert "meningitis_signs" not in codes(neck) and neck.disposition != "emergency"
    assert assess(engine, "发热39℃，头痛，颈部僵硬").disposition == "emergency"


def test_common_self_care_presentations_at_any_age_and_a_negative_pregnancy_test(engine):
    cramps = assess(engine, "患者女，72岁，近2周夜间小腿抽筋，按摩、拉伸后缓解，小腿无红肿、无压痛")
    assert cramps.disposition == "self_care" and "night_leg_cramps" in codes(cramps)
    assert "night_leg_cramps" not in codes(assess(engine, "leg cramps and a swollen red calf after a long flight"))
    screens = assess(engine, "程序员，每天看电脑10小时，近2周双眼干涩、疲劳，视力正常，无眼红眼痛")
    assert screens.disposition == "self_care" and "eye_strain" in codes(screens)
    late = assess(engine, "患者女，24岁，月经推迟5天，两次早孕试纸阴性，无腹痛，无阴道出血")
    assert late.disposition == "self_care" and not late.understood["pregnant"]
    # a positive test, or a test not yet done beside pain and spotting, is still a possible pregnancy
    assert assess(engine, "早孕试纸两条杠，下腹隐痛").understood["pregnant"]
    ectopic = assess(engine, "28F mild L lower abdo pain and brown spotting, LMP ~7 wks ago, hasn't done a pregnancy test")
    assert ectopic.understood["pregnant"] and ectopic.disposition == "emergency"


# -- emergencies of blind round 20 (after its freeze), each beside the near miss it must not catch
@pytest.mark.parametrize("text,code", [
    ("74M with AF, stopped his apixaban a month ago; left leg suddenly cold, pale and painful 3 hours ago.",
     "acute_limb_ischaemia"),
    ("患者男，70岁，房颤，2小时前突然左腿发凉、苍白、剧痛。", "acute_limb_ischaemia"),
    ("患者女，50岁，服用卡马西平3周，近2天发热、口腔溃烂，今日全身皮疹并出现水疱，部分皮肤脱落。",
     "severe_drug_skin_reaction"),
    ("Started lamotrigine 2 weeks ago, now fever, sore mouth and skin peeling on her chest.",
     "severe_drug_skin_reaction"),
    ("患者男，40岁，重型血友病A，1小时前扭伤后右膝关节迅速肿胀、剧痛。", "haemophilia_bleed"),
    ("58M with prostate cancer, new back pain for a week; today both legs feel weak and numb and he's "
     "struggling to pass urine.", "back_pain_cord_danger"),
    ("慢性肾病，近2天尿量减少，今日化验血钾6.8mmol/L。", "severe_hyperkalaemia"),
    ("CKD4, K+ 7.1 on this morning's bloods.", "severe_hyperkalaemia"),
])
def test_round_20_emergencies(engine, text, code):
    result = assess(engine, text)
    assert code in codes(result) and result.disposition == "emergency"


@pytest.mark.parametrize("text,code", [
    # Raynaud's, sunburn, a strain with the legs stated normal, a potassium in range
    ("Fingers go white and cold in the cold weather, then red; suddenly noticed it this winter.",
     "acute_limb_ischaemia"),
    ("Sunburn from yesterday, now the skin is peeling on my shoulders, no fever.", "severe_drug_skin_reaction"),
    ("Fever for ten days, red eyes and a sore mouth.", "severe_drug_skin_reaction"),
    ("女，74岁，3天前弯腰后腰背痛，双下肢无麻木无力，大小便正常。", "back_pain_cord_danger"),
    ("Potassium 4.6 on routine bloods, feels well.", "severe_hyperkalaemia"),
    ("K 6.2, on ramipril, feels well.", "severe_hyperkalaemia"),
])
def test_round_20_rules_do_not_catch_their_near_misses(engine, text, code):
    assert code not in codes(assess(engine, text))


@pytest.mark.parametrize("text,code", [
    ("孩子10个月，今天下午开始一阵一阵地哭闹，哭时两腿蜷起来，已经吐了3次，尿布里有暗红色黏糊糊的大便。",
     "intussusception_signs"),
    ("9-month-old with bouts of screaming, drawing his legs up, vomited twice, redcurrant jelly stool.",
     "intussusception_signs"),
    ("76M, previous bowel surgery. Vomiting dark fluid since last night, belly swollen and tight, hasn't "
     "opened bowels or passed wind for 2 days.", "obstruction_no_wind_vomiting"),
    ("38M toothache for a week; since yesterday swelling under the jaw spreading onto his neck, tongue "
     "feels pushed up, struggling to swallow, T 38.7.", "deep_neck_infection"),
    ("患者男，35岁，牙痛5天，今日下颌下明显肿胀，吞咽困难，发热38.9℃。", "deep_neck_infection"),
])
def test_round_21_emergencies(engine, text, code):
    result = assess(engine, text)
    assert code in codes(result) and result.disposition == "emergency"


@pytest.mark.parametrize("text,code", [
    # a colicky 6-year-old is no intussusception age; wind passed; a swollen jaw with nothing else
    ("6yo with bouts of crying and tummy ache after sweets, vomited once.", "intussusception_signs"),
    ("Bloated after a big meal, vomited once, passing wind normally.", "obstruction_no_wind_vomiting"),
    ("Wisdom tooth coming through, gum a little swollen, no swelling under the jaw.", "deep_neck_infection"),
])
def test_round_21_rules_do_not_catch_their_near_misses(engine, text, code):
    assert code not in codes(assess(engine, text))
