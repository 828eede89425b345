"""Self-care protocols added after blind round 22 (each from an NHS page named in the rules), with
the near miss each must leave to a clinician, and the reading fixes that came with them."""

import pytest

from .conftest import assess, codes


@pytest.mark.parametrize("text,key", [
    ("45F on levothyroxine, forgot this morning's tablet, remembered at lunch, feels fine", "missed_regular_dose"),
    ("患者女，45岁，甲减，今天早上忘记吃药了，中午才想起来，无不适", "missed_regular_dose"),
    ("8yo, wobbly baby tooth came out while eating an apple, bled a little, stopped with gauze", "baby_tooth_out"),
    ("孩子7岁，吃饭时乳牙掉了，出了一点血已经止住，不疼", "baby_tooth_out"),
    ("pink urine this morning after a big beetroot salad last night, no pain, no fever", "red_food_urine"),
    ("昨晚吃了很多红心火龙果，今天早上尿是红色的，不疼，没发烧", "red_food_urine"),
    ("4-day-old, red blotches with tiny white spots on chest, feeding well, no fever", "erythema_toxicum"),
    ("新生儿，生后4天，脸上散在红斑，中间有小白点，吃奶好，无发热", "erythema_toxicum"),
    ("25F, one-sided low tummy ache in the middle of her cycle every month, gone within a day", "ovulation_pain"),
    ("患者女，30岁，每次两次月经中间会一侧小肚子隐痛，一天内自己好", "ovulation_pain"),
    ("itchy ring-shaped patch on the arm with a scaly edge and clearer centre, 2 weeks, new kitten", "ringworm"),
    ("手臂上一块环形红斑，边缘脱屑，中间颜色较淡，很痒，两周了", "ringworm"),
    ("toddler's mercury thermometer broke on the floor, he did not touch it or put it in his mouth", "broken_thermometer"),
    ("水银体温计摔碎了，水银洒在地上，孩子没碰到", "broken_thermometer"),
    ("bruise on the inside of the elbow since giving blood on Monday, no swelling or numbness", "needle_site_bruise"),
    ("前天抽血，今天针眼处一片淤青，不肿不痛", "needle_site_bruise"),
    ("aching varicose veins after standing all day, better with legs up, no redness or ulcers", "varicose_veins_aching"),
    ("双下肢静脉曲张多年，久站后酸胀，抬腿后缓解，无红肿热痛", "varicose_veins_aching"),
])
def test_a_minor_case_matches_its_self_care_protocol_and_goes_home(engine, text, key):
    result = assess(engine, text)
    assert key in codes(result) and result.disposition == "self_care", (codes(result), result.disposition)


@pytest.mark.parametrize("text,key", [
    ("forgot to take my warfarin yesterday", "missed_regular_dose"),            # an anticoagulant
    ("missed two of my contraceptive pills this week", "missed_regular_dose"),  # emergency contraception
    ("漏服了一次抗癫痫药", "missed_regular_dose"),
    ("baby tooth knocked out when he fell off his bike", "baby_tooth_out"),
    ("乳牙摔掉了，嘴唇肿", "baby_tooth_out"),
    ("red urine after beetroot but also burning pain when I pee and fever", "red_food_urine"),
    ("新生儿生后5天，红斑中间有小白点，发热38.5℃，吃奶差", "erythema_toxicum"),
    ("mid-cycle pain but my period is late and the pregnancy test is positive", "ovulation_pain"),
    ("expanding ring-shaped red rash 2 weeks after a tick bite on a hike", "ringworm"),
    ("两周前被蜱虫叮咬，叮咬处环形红斑逐渐扩大，中央较淡", "ringworm"),
    ("my son bit the thermometer and swallowed some of the mercury", "broken_thermometer"),
    ("after a blood test the arm is swollen and numb below the bruise", "needle_site_bruise"),
    ("静脉曲张处发红、发硬，有压痛的条索", "varicose_veins_aching"),
])
def test_the_near_miss_of_each_self_care_protocol_stays_with_a_clinician(engine, text, key):
    result = assess(engine, text)
    assert key not in codes(result) and result.disposition != "self_care", (codes(result), result.disposition)


def test_shingles_pain_of_the_chest_wall_is_not_cardiac_chest_pain(engine):
    shingles = assess(engine, "60M burning pain R side of chest for 2 days, today a band of blisters in the same area")
    assert "shingles" in codes(shingles) and "chest_pain" not in codes(shingles)
    assert shingles.disposition in ("urgent", "routine")
    assert assess(engine, "60M central chest pain for 2 hours, sweaty").disposition == "emergency"


def test_a_chemotherapy_drug_or_cycle_named_makes_a_fever_an_emergency(engine):
    for text in ("52F day 9 after cycle 3 of docetaxel, T 38.3, shivery", "患者女，55岁，紫杉醇治疗中，发热38.4℃"):
        result = assess(engine, text)
        assert "chemotherapy_fever" in codes(result) and result.disposition == "emergency", codes(result)


def test_a_cold_white_limb_written_with_commas_is_limb_ischaemia(engine):
    result = assess(engine, "55F R leg suddenly painful, cold and white from the knee down for 2 hrs, foot numb")
    assert "acute_limb_ischaemia" in codes(result) and result.disposition == "emergency"


def test_accidentally_and_sudden_do_not_change_what_a_chinese_denial_covers(engine):
    cut = assess(engine, "切菜时不小心切到左手食指，伤口0.5cm，压迫5分钟已止血")
    assert "minor_injury" in codes(cut)                      # 不小心 ("accidentally") is no denial
    denied = assess(engine, "奶奶85岁，近两周走路不稳，无突然一侧手脚无力或说话不清")
    assert "stroke_signs" not in codes(denied)
    assert "stroke_signs" in codes(assess(engine, "奶奶85岁，今天突然一侧手脚无力，说话不清"))


def test_giving_blood_is_not_bleeding(engine):
    assert "alarm_word" not in codes(assess(engine, "前天献血，今天针眼处淤青，不肿不痛"))
    bleeding = assess(engine, "前天献血，今天针眼处淤青，大便带血")
    assert "needle_site_bruise" in codes(bleeding) and bleeding.disposition != "self_care"


# After blind round 23.
@pytest.mark.parametrize("text,key,disposition", [
    ("2yo chewed a silica gel sachet from a shoe box, maybe swallowed a few beads, playing happily", "non_toxic_ingestion", "self_care"),
    ("孩子咬破了鞋盒里的硅胶干燥剂，可能吃了几粒，没有呛咳呕吐", "non_toxic_ingestion", "self_care"),
    ("5-day-old boy, both breasts a little swollen, feeding well, no fever", "newborn_hormone_effects", "self_care"),
    ("新生儿出生5天，两边乳房有点鼓，不红不热，吃奶好", "newborn_hormone_effects", "self_care"),
    ("a couple of floaters in my eyes for years, unchanged, no flashes", "longstanding_floaters", "self_care"),
    ("眼前小黑影飘来飘去好几年了，数量没增加，没有闪光", "longstanding_floaters", "self_care"),
    ("woke with a bright red patch on the white of my eye, no pain, vision normal", "subconjunctival_haemorrhage", "self_care"),
    ("dark urine after a hot day without drinking, getting paler since I drank 2 litres, no pain", "concentrated_urine_improving", "self_care"),
    ("started ramipril a month ago, dry tickly cough since, no lip swelling", "ace_inhibitor_cough", "routine"),
    ("59M 3 weeks of chest tightness walking uphill, goes after 2 min rest. None at rest.", "stable_exertional_chest_pain", "urgent"),
    ("近1个月爬楼梯时胸闷，休息几分钟缓解，静息时无胸闷", "stable_exertional_chest_pain", "urgent"),
])
def test_round_23_protocols(engine, text, key, disposition):
    result = assess(engine, text)
    assert key in codes(result) and result.disposition == disposition, (codes(result), result.disposition)


@pytest.mark.parametrize("text", [
    "my son swallowed silica gel beads and now he is coughing and choking",
    "孩子误吃了生石灰干燥剂，嘴里疼",
    "new floaters and flashes since this morning, like a curtain at the bottom",
    "red patch on the white of the eye after he poked it with a stick, painful",
    "on ramipril, cough, and now my tongue and lips are swollen",
    "chest tightness on exertion, goes after rest, none at rest, but now 20 minutes of pain at rest this morning",
    "近1个月爬楼梯时胸闷，休息几分钟缓解，静息时无胸闷，但今天早上休息时也胸痛20分钟",
])
def test_round_23_near_misses_are_not_sent_home_or_downgraded(engine, text):
    result = assess(engine, text)
    assert result.disposition in ("emergency", "urgent"), (codes(result), result.disposition)


def test_a_chinese_no_oliguria_and_old_purple_blotches_are_not_sepsis_or_meningitis(engine):
    renal = assess(engine, "患者女，50岁，体检尿蛋白（++），晨起眼睑浮肿，BP 145/90mmHg，无尿少、无气短")
    assert "sepsis_signs" not in codes(renal)
    assert "sepsis_signs" in codes(assess(engine, "发烧两天，今天一天无尿"))
    purpura = assess(engine, "80F purple blotches on the backs of her forearms after minor knocks for a few years, well")
    assert "meningitis_signs" not in codes(purpura)
    assert "meningitis_signs" in codes(assess(engine, "3yo fever and purple spots that don't fade with a glass"))


def test_a_chinese_note_that_cannot_pass_urine_is_retention(engine):
    result = assess(engine, "患者男，78岁，前列腺增生，今晨至今已10小时解不出小便，下腹胀痛难忍")
    assert "urinary_retention" in codes(result) and result.disposition == "emergency"


# After blind round 24.
@pytest.mark.parametrize("text,key", [
    ("患者男，24岁，前天左前臂骨折打了石膏，今晚手指胀痛越来越厉害，手指发麻、颜色发暗", "tight_cast_danger"),
    ("plaster cast on since yesterday, fingers numb and dusky, painkillers not helping", "tight_cast_danger"),
    ("患者男，78岁，前列腺增生，已经14小时排不出小便，下腹胀痛难忍", "urinary_retention"),
    ("Baby boy 6/7 old, not interested in feeds since this morning, axillary temp 38.1", "infant_fever_under_3m"),
])
def test_round_24_emergencies(engine, text, key):
    result = assess(engine, text)
    assert key in codes(result) and result.disposition == "emergency", (codes(result), result.disposition)


@pytest.mark.parametrize("text,not_key", [
    ("排便时肛门撕裂样痛，纸上有少量鲜红血丝", "tearing_pain"),                        # an anal fissure
    ("男孩6岁，咽痛发热2天，扁桃体有脓点，颌下淋巴结肿大触痛，能吃能喝", "deep_neck_infection"),
    ("28M painful blistering rash in a band on L side of chest, nothing near the eye", "severe_drug_skin_reaction"),
    ("baby girl 5 days old, small smear of blood-stained mucus from the vagina, feeding well", "intussusception_signs"),
    ("hives on the trunk since this morning, no lip, tongue or throat swelling, breathing normal", "anaphylaxis"),
    ("每天喝白酒半斤，早上手抖出汗，从未有过抽搐或幻觉", "seizure"),
])
def test_round_24_look_alikes_are_not_read_as_the_emergency(engine, text, not_key):
    assert not_key not in codes(assess(engine, text))


def test_nurse_shorthand_ages():
    from chatbot.triage.text import extract_age

    assert extract_age("Baby boy 6/7 old, breastfed") == pytest.approx(6 / 365)
    assert extract_age("3/52 old baby") == pytest.approx(3 / 52)
    assert extract_age("4/12 old, teething") == pytest.approx(4 / 12)
    assert extract_age("BP 120/80, old scar") is None


# Protocols written for pregnancy and for a long-term condition (their disqualifier does not apply).
@pytest.mark.parametrize("text,key", [
    ("30F 10/40, nausea and vomiting most mornings, keeping fluids and small meals down, urine normal colour", "morning_sickness_mild"),
    ("孕妇，孕9周，早上恶心，每天吐1-2次，但能进食和喝水，小便正常", "morning_sickness_mild"),
    ("孕妇，孕30周，偶尔肚子发紧变硬，不痛、没规律，躺下休息就消失，胎动正常", "braxton_hicks"),
    ("22/40, sharp twinges in the groin when standing up or rolling over, lasting seconds", "round_ligament_pain"),
    ("55F T2DM, one fasting BG 8.1 after a big birthday dinner, other readings 6-7, feels well", "single_high_glucose_well"),
    ("2型糖尿病，平时空腹血糖6-7，过生日多吃了蛋糕，餐后2小时血糖12.3，无不适", "single_high_glucose_well"),
])
def test_a_protocol_written_for_the_group_sends_a_minor_case_home(engine, text, key):
    result = assess(engine, text)
    assert key in codes(result) and result.disposition == "self_care", (codes(result), result.disposition)
    assert not {"pregnancy", "high_risk_condition", "gynae_routine"} & codes(result)


@pytest.mark.parametrize("text", [
    "孕10周，吐得很厉害，喝水都吐，尿少",
    "10/40, vomiting, can't keep fluids down, dizzy",
    "孕30周，肚子发紧，不痛，但胎动比平时少",
    "孕32周，肚子发紧，越来越频繁，有点见红",
    "32/40 tightenings, irregular, painless, but baby moving less than usual today",
    "T1DM, glucose 22 after dinner, vomiting and ketones 2.1",
])
def test_the_near_misses_of_the_group_protocols_are_not_sent_home(engine, text):
    assert assess(engine, text).disposition != "self_care"


# After blind round 25.
@pytest.mark.parametrize("text,key", [
    ("7yo day 6 post tonsillectomy, spitting out bright red blood for 20 min", "post_tonsillectomy_bleed"),
    ("孩子10岁，踢球被撞，一颗上门牙（已经换过的恒牙）整颗掉出来了", "knocked_out_adult_tooth"),
    ("2岁，开水烫到前胸和肚子，面积比大人两个手掌还大，起大水疱", "large_burn_child"),
    ("3yo scalded by a cup of tea on the chest, the burn is bigger than his hand", "large_burn_child"),
    ("我爸72岁，这三天肚子越来越胀，一直没大便也不放屁，今天吐了好几回", "obstruction_no_wind_vomiting"),
    ("tib/fib fracture in a backslab since yesterday, pain escalating despite oxycodone, toes tingling", "tight_cast_danger"),
])
def test_round_25_emergencies(engine, text, key):
    result = assess(engine, text)
    assert key in codes(result) and result.disposition == "emergency", (codes(result), result.disposition)


def test_round_25_look_alikes(engine):
    assert "knocked_out_adult_tooth" not in codes(assess(engine, "7岁，乳牙掉了，出了一点血"))
    assert "gi_bleed" not in codes(assess(engine, "吃硫酸亚铁一周，大便发黑但成形，无头晕"))
    assert "gi_bleed" in codes(assess(engine, "大便发黑像柏油，头晕心慌"))
    assert "chest_pain" not in codes(assess(engine, "30M sharp L chest pain on twisting and when he presses one spot on his ribs"))


# Blind round 26's protocols (each from the NHS page named in the rules) and their near misses.
@pytest.mark.parametrize("text,key", [
    ("短效避孕药昨天忘了吃一片，今天早上想起来，不到24小时", "missed_pill_once"),
    ("forgot yesterday's pill, remembered this morning, less than 24 hours late", "missed_pill_once"),
    ("手指上长了个寻常疣，不痛不痒，半年了", "warts"),
    ("wart on my thumb for 8 months, not painful, not changing", "warts"),
    ("got some sand in my eye at the beach, rinsed it out, feels fine now and I can see normally", "eye_speck_rinsed"),
    ("灰尘进眼睛了，用清水冲洗后现在没事了，看东西正常", "eye_speck_rinsed"),
    ("heart was racing after two energy drinks this afternoon, settled now, no chest pain", "palpitations_brief_trigger"),
    ("下午喝了两杯浓咖啡后心慌，现在已经好了，没有胸痛", "palpitations_brief_trigger"),
])
def test_round_26_minor_cases_go_home(engine, text, key):
    result = assess(engine, text)
    assert key in codes(result) and result.disposition == "self_care", (codes(result), result.disposition)


@pytest.mark.parametrize("text,key", [
    ("missed two pills this week and had sex at the weekend", "missed_pill_once"),
    ("避孕药漏服了一片，前几天还同房了，又拉肚子", "missed_pill_once"),
    ("wart on my face that has started bleeding and growing", "warts"),
    ("a metal fragment flew into my eye while grinding, rinsed it but still scratchy", "eye_speck_rinsed"),
    ("灰尘进眼睛了，冲洗后还是疼，看东西模糊", "eye_speck_rinsed"),
    ("palpitations after coffee, settled, but I fainted at the time", "palpitations_brief_trigger"),
    ("喝咖啡后心慌，缓解了，但是经常这样，每天都有", "palpitations_brief_trigger"),
])
def test_round_26_near_misses_stay_with_a_clinician(engine, text, key):
    result = assess(engine, text)
    assert key not in codes(result) and result.disposition != "self_care", (codes(result), result.disposition)


@pytest.mark.parametrize("text", [
    "45F at the gym, sudden 'like being hit with a bat' headache at back of head, maxed out within seconds",
    "患者男，52岁，糖尿病。会阴部红肿两天，疼得远比看上去厉害，今天皮肤发黑、起水疱，T 38.9℃",
    "leg red and swollen since yesterday, the pain is far worse than it looks, temp 38.6",
])
def test_round_26_emergencies(engine, text):
    assert assess(engine, text).disposition == "emergency"


def test_the_weeks_of_a_pregnancy_are_no_duration_and_a_babys_months_are_its_age():
    from chatbot.triage.text import durations_days
    assert durations_days("8 weeks pregnant, queasy most mornings") == []
    assert 30 not in durations_days("宝宝1个月，睡觉时鼻子呼噜呼噜响")
    assert durations_days("coughing for 3 weeks") == [21]


def test_moderate_pregnancy_sickness_is_no_self_care(engine):
    mild = assess(engine, "8 weeks pregnant, queasy most mornings and sick about once a day, keeping fluids down and peeing normally")
    moderate = assess(engine, "10 weeks pregnant, vomiting 3-4 times a day, keeping fluids down, urine ketones 1+")
    assert mild.disposition == "self_care" and moderate.disposition != "self_care"


# Blind round 27's emergencies (each presentation names its source) and their near misses.
@pytest.mark.parametrize("text,key", [
    ("45M, grease gun went off into his index finger an hour ago, tiny hole, finger now swelling and pale", "high_pressure_injection"),
    ("修车时被高压油枪喷到左手食指，只看到一个小孔，手指越来越胀", "high_pressure_injection"),
    ("3yo choked on a peanut while running, coughing settled but now wheezy and the left side of his chest isn't moving much", "inhaled_foreign_body"),
    ("孩子边跑边吃花生，呛得很厉害，现在喘气有呼哧呼哧的声音", "inhaled_foreign_body"),
    ("on haemodialysis Mon/Wed/Fri, missed Wednesday, now weak legs and palpitations", "missed_dialysis"),
    ("规律血透，这周三没去，今天浑身没劲，心慌", "missed_dialysis"),
    ("on lithium, started ibuprofen last week, now vomiting, hands shaking badly, walking like he's drunk", "lithium_toxicity"),
    ("吃碳酸锂的病人这两天呕吐、手抖得厉害，走路不稳", "lithium_toxicity"),
    ("2yo with eczema, patches on her face now clusters of punched-out sores, temp 38.6, miserable", "eczema_herpeticum"),
    ("34/40, today she's felt maybe 2 kicks all day, usually very active", "pregnancy_bleeding_pain"),
])
def test_round_27_emergencies(engine, text, key):
    result = assess(engine, text)
    assert key in codes(result) and result.disposition == "emergency", (codes(result), result.disposition)


@pytest.mark.parametrize("text,key", [
    ("wants to know which grease gun is best for the car", "high_pressure_injection"),
    ("on dialysis, feeling fine, can I travel next month?", "missed_dialysis"),
    ("on lithium for 10 years, levels fine, asking about a flu jab", "lithium_toxicity"),
    ("mild eczema on her elbows, a bit dry and itchy, no fever", "eczema_herpeticum"),
])
def test_round_27_near_misses_are_no_emergency(engine, text, key):
    result = assess(engine, text)
    assert key not in codes(result) and result.disposition != "emergency", (codes(result), result.disposition)


@pytest.mark.parametrize("text,key", [
    ("19F missed 2 pills this week and had unprotected sex last night", "missed_pills_ec"),
    ("59F on weekly methotrexate, new mouth ulcers and sore throat for 2 days", "methotrexate_warning"),
    ("我儿子7岁，两边耳朵下面腮帮子肿起来了，低烧", "mumps_possible"),
    ("我儿子5岁，晚上打呼噜特别响，有时候会憋气几秒钟", "sleep_apnoea_signs"),
    ("Mum: 9yo limping for 2 days, hip sore, no injury", "child_limp"),
])
def test_round_27_cases_for_a_clinician(engine, text, key):
    result = assess(engine, text)
    assert key in codes(result) and result.disposition in ("urgent", "routine"), (codes(result), result.disposition)


def test_a_choking_episode_that_settled_is_no_inhaled_object(engine):
    # (the choking presentation still answers for the episode itself)
    assert "inhaled_foreign_body" not in codes(assess(engine, "choked on a peanut at lunch, coughed it up, breathing normally now, no wheeze"))


def test_a_stabbing_pain_is_no_stab_wound_and_food_sticking_is_no_indigestion(engine):
    assert "major_trauma" not in codes(assess(engine, "sudden stabbing pain in my forehead eating ice cream, gone in 20 seconds"))
    assert "major_trauma" in codes(assess(engine, "my brother was stabbed in the leg, bleeding"))
    sticking = assess(engine, "heartburn for months, now food sticks halfway down, lost 3 kg without trying")
    assert sticking.disposition != "self_care"


# Blind round 28.
@pytest.mark.parametrize("text,key", [
    ("Splashed oven cleaner in my right eye 5 minutes ago, burning badly, rinsed it a bit", "chemical_eye"),
    ("洁厕灵溅到眼睛里了，现在眼睛很痛睁不开", "chemical_eye"),
    ("宝宝10个月，发烧两天，叫他也不怎么睁眼，皮肤一块一块发花", "child_red_features"),
    ("18 month old with a fever, mottled legs and hard to wake", "child_red_features"),
    ("宝宝出生第4天，吃完奶吐了好几次，吐出来是绿色的", "bilious_vomiting_child"),
    ("老伴78岁，前列腺增生，十几个小时一滴尿都没尿出来，小肚子胀痛", "urinary_retention"),
])
def test_round_28_emergencies(engine, text, key):
    result = assess(engine, text)
    assert key in codes(result) and result.disposition == "emergency", (codes(result), result.disposition)


def test_round_28_near_misses(engine):
    # constipation while still passing wind and not vomiting is no obstruction
    bowels = assess(engine, "Haven't opened my bowels since flying back 3 days ago, a bit bloated. No pain, no vomiting, passing wind.")
    assert "obstruction_no_wind_vomiting" not in codes(bowels) and bowels.disposition != "emergency"
    # the usual reflux, gone with an antacid, is no cardiac chest pain; new chest pain still is
    reflux = assess(engine, "28F, burning in my upper chest after a curry, same as my usual reflux, gone with Gaviscon")
    assert "chest_pain" not in codes(reflux)
    assert assess(engine, "58M burning central chest pain for an hour, sweaty").disposition == "emergency"
    # Ottawa: bony tenderness or only a couple of steps needs an X-ray
    ankle = assess(engine, "Rolled ankle at netball, tender on the bony bit at the back of the ankle bone, can only hobble a couple of steps")
    assert ankle.disposition != "self_care"
    # dust rinsed out stays self-care, a chemical never does
    assert "chemical_eye" not in codes(assess(engine, "dust in my eye, rinsed it out, fine now"))


def test_round_29_a_kettle_pulled_over_a_toddler_is_an_emergency(engine):
    # (round 29's spurting wrist cut is a red flag of the shared screen: data/safety/rules.yaml examples)
    text = "我家孩子1岁半，刚才把桌上的开水壶拽翻了，胸口和右胳膊大片红肿起水疱"
    assert assess(engine, text).disposition == "emergency"


def test_a_hot_shower_and_a_faint_feeling_is_no_scald(engine):
    text = "患者女，22岁，蹲久了猛一站起来或者洗完热水澡时眼前发黑几秒，扶一下就好，没晕倒过，无心慌胸痛"
    assert "large_burn_child" not in codes(assess(engine, text))
