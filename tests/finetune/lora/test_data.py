"""The grounded-QA data builder: serve-format prompts, valid [n] targets, splits by document,
deduplication and length filters, on synthetic documents with a fake retriever."""

from __future__ import annotations

import json
import re

import pytest

from chatbot.engine.answer import find_citations, language_ok
from chatbot.prompts import PromptLibrary
from finetune.lora.data import (
    DataConfig,
    Doc,
    build,
    cite,
    doc_group,
    en_target_units,
    split_of,
    target_in_passage,
    zh_target_units,
)
from knowledge_base.records import Passage

EN_ANSWER = ("Asthma is a chronic disease that affects your airways. Your airways are tubes that "
             "carry air in and out of your lungs. If you have asthma, the walls of your airways "
             "become sore and swollen. That makes them very sensitive.")
ZH_ANSWER = "你好，高血压患者要控制食盐摄入，多吃新鲜蔬菜水果。平时要适当运动，保持情绪稳定。祝您健康！"


def _doc(i: int, lang: str, question: str | None = None, answer: str | None = None,
         group: str | None = None) -> Doc:
    doc_id = f"GARD_{i:07d}_Sec1" if lang == "en" else f"Toyhom_IM_{i}"
    question = question or (f"What is condition number {i} ?" if lang == "en" else f"第{i}种病怎么办？")
    answer = answer or (f"Condition {i} is a disease that affects the lungs of adults. It causes "
                        f"cough and fever in many people. Doctors treat condition {i} with rest."
                        if lang == "en" else f"第{i}种病需要注意休息和饮食清淡。要按时复查，必要时就医治疗。")
    text = f"{question}\n{answer}"
    passage = Passage(id=f"{doc_id}#c0", doc_id=doc_id, text=text, title=f"T{i}", url="",
                      source="MedQuAD/GARD" if lang == "en" else "Toyhom/内科", lang=lang,
                      score=0.0, question=question)
    return Doc(doc_id, group or doc_group(doc_id), "medquad" if lang == "en" else "toyhom", lang,
               question, answer, passage)


class FakeRetriever:
    """Returns the first k docs of the other topics: plausible distractors, never the gold."""

    def __init__(self, docs: list[Doc]) -> None:
        self.docs = docs

    def search(self, query: str, k: int = 10, lang: str | None = None) -> list[Passage]:
        same = [d.passage for d in self.docs if d.lang == lang and d.question != query]
        return same[:k]


@pytest.fixture
def built(tmp_path):
    docs = [_doc(i, "en") for i in range(60)] + [_doc(i, "zh") for i in range(60)]
    docs.append(_doc(999, "en", question="What is condition number 3 ?"))  # duplicate question
    docs.append(_doc(998, "en", answer="Too short."))  # target under the length bound
    cfg = DataConfig(out_dir=str(tmp_path / "ft"), written_file=str(tmp_path / "none.jsonl"),
                     eval_dir=str(tmp_path / "no_eval"), train_size=40, dev_size=4, test_size=4,
                     dev_percent=10, test_percent=10, train_passage_tokens=0)
    stats = build(cfg, retriever=FakeRetriever(docs), counter=lambda t: len(t) // 3, docs=docs,
                  echo=lambda _m: None)
    rows = {s: [json.loads(line) for line in (tmp_path / "ft" / f"{s}.jsonl").read_text().splitlines()]
            for s in ("train", "dev", "test")}
    return stats, rows, tmp_path / "ft"


def test_targets_cite_the_gold_passage_in_the_question_language(built):
    _, rows, _ = built
    prompts = PromptLibrary()
    for row in rows["train"]:
        target = row["target"]
        assert target.endswith("<end_of_turn>")
        body = target[: -len("<end_of_turn>")]
        assert language_ok(body, row["lang"])
        if row["kind"] == "no_source":
            assert body == prompts.text(row["lang"], "answer.no_evidence") and not find_citations(body)
            assert row["gold_doc"] is None
            continue
        cited = find_citations(body)
        assert len(cited) == 1
        assert row["passages"][cited[0] - 1] == row["gold_doc"]
        # the prompt numbers that passage the same way
        assert f"[{cited[0]}] " in row["messages"][-1]["content"]


def test_prompts_are_the_serve_format(built):
    _, rows, _ = built
    prompts = PromptLibrary()
    row = next(r for r in rows["train"] if r["lang"] == "zh" and r["kind"] == "zh")
    assert row["messages"][0] == {"role": "system", "content": prompts.template("zh", "system")}
    user = row["messages"][-1]["content"]
    assert user.endswith("请用中文回答，并用 [n] 标注出处：") and row["question"] in user
    assert user.count("<<<") == 3


def test_splits_are_by_document_group_and_deterministic(built, tmp_path):
    stats, rows, _ = built
    groups = {s: {r["group"] for r in rows[s] if r["kind"] != "no_source"} for s in rows}
    assert not groups["train"] & groups["test"] and not groups["train"] & groups["dev"]
    for split, gs in groups.items():
        assert all(split_of(g, 10, 10, set()) == split for g in gs)
    assert split_of("GARD_0000001", 5, 5, set()) == split_of("GARD_0000001", 5, 5, set())
    assert split_of("GARD_0000001", 5, 5, {"GARD_0000001"}) == "test"
    assert stats["splits"]["train"]["total"] == 40


def test_dedup_and_length_filter(built):
    stats, rows, _ = built
    assert stats["dropped"]["duplicate_question"] >= 1
    assert stats["dropped"]["target_length_or_style"] + stats["dropped"].get("no_clean_target", 0) >= 1
    questions = [r["question"] for s in rows.values() for r in s if r["kind"] != "no_source"]
    assert len(questions) == len(set(questions))


def test_mix_of_kinds_and_data_card(built):
    stats, rows, out = built
    kinds = {r["kind"] for r in rows["train"]}
    assert {"en", "zh", "no_source"} <= kinds and kinds & {"en_multiturn", "zh_multiturn"}
    multi = next(r for r in rows["train"] if r["kind"].endswith("multiturn"))
    assert [m["role"] for m in multi["messages"]] == ["system", "user", "assistant", "user"]
    card = (out / "DATA_CARD.md").read_text()
    assert "| train | 40 |" in card and "CC BY 4.0" in card and "MIT" in card
    questions = [json.loads(line) for line in (out / "test_questions.jsonl").read_text().splitlines()]
    assert questions and all("[" not in q.get("reference", "") for q in questions)


def test_eval_documents_are_forced_into_test(tmp_path):
    docs = [_doc(i, "en") for i in range(30)] + [_doc(i, "zh") for i in range(30)]
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    forced = [d.doc_id for d in docs[:10]]
    (eval_dir / "x.jsonl").write_text(json.dumps({"question": "q", "relevant": forced}) + "\n")
    cfg = DataConfig(out_dir=str(tmp_path / "ft"), written_file="", eval_dir=str(eval_dir),
                     train_size=20, dev_size=0, test_size=0, train_passage_tokens=0)
    build(cfg, retriever=FakeRetriever(docs), counter=lambda t: len(t) // 3, docs=docs, echo=lambda _m: None)
    train = [json.loads(x) for x in (tmp_path / "ft" / "train.jsonl").read_text().splitlines()]
    assert not {r["gold_doc"] for r in train} & set(forced)


def test_english_target_units_join_lists_and_skip_headings():
    answer = ("What are the signs and symptoms of gout?\nGout causes sudden joint pain. "
              "Common symptoms include:\n- red joints\n- swelling\n- warmth\nSee a doctor.")
    units = en_target_units(answer)
    assert units == ["Gout causes sudden joint pain.",
                     "Common symptoms include: red joints, swelling and warmth.", "See a doctor."]
    assert en_target_units(answer, max_sentences=1) == ["Gout causes sudden joint pain."]
    assert target_in_passage(units, answer)
    assert not target_in_passage(["Gout is caused by chocolate."], answer)
    assert en_target_units(EN_ANSWER)[0].startswith("Asthma is a chronic disease")


def test_chinese_target_units_drop_greetings_and_signoffs():
    units = zh_target_units(ZH_ANSWER)
    assert units == ["高血压患者要控制食盐摄入，多吃新鲜蔬菜水果。", "平时要适当运动，保持情绪稳定。"]
    assert zh_target_units("您好，感谢您的咨询。") == []


def test_cite_puts_markers_before_end_punctuation():
    assert cite(["Gout hurts.", "It swells."], 2) == "Gout hurts [2]. It swells [2]."
    assert cite(["痛风很疼。", "关节会肿。"], 1) == "痛风很疼[1]。关节会肿[1]。"
    assert re.fullmatch(r"[^\[]+\[3\]\.", cite(["No end"], 3))


def test_bad_config_is_refused():
    from finetune.lora.data import DataBuildError

    with pytest.raises(DataBuildError):
        DataConfig(share_no_source=0.6, share_multiturn=0.5)


TOPICS_EN = ["glaucoma", "asthma", "gout", "psoriasis", "anemia", "migraine", "shingles", "scabies"]
TOPICS_ZH = ["胃炎", "痛风", "哮喘", "湿疹", "贫血", "偏头痛", "带状疱疹", "鼻炎"]


def _topic_doc(i: int, lang: str) -> Doc:
    topic = (TOPICS_EN if lang == "en" else TOPICS_ZH)[i % 8]
    n = i // 8
    question = f"What causes {topic} {n} ?" if lang == "en" else f"{topic}{n}型是什么原因引起的？"
    doc = _doc(i, lang, question=question)
    doc.passage.title = topic if lang == "en" else question
    doc.passage.lang = lang
    return doc


def test_near_negatives_keep_related_passages_but_none_on_the_topic(tmp_path):
    docs = [_topic_doc(i, "en") for i in range(64)] + [_topic_doc(i, "zh") for i in range(64)]
    cfg = DataConfig(out_dir=str(tmp_path / "ft"), written_file=str(tmp_path / "none.jsonl"),
                     eval_dir=str(tmp_path / "no_eval"), train_size=40, dev_size=0, test_size=0,
                     dev_percent=0, test_percent=0, share_no_source=0.3, share_near_negative=1.0,
                     train_passage_tokens=0)
    stats = build(cfg, retriever=FakeRetriever(docs), counter=lambda t: len(t) // 3, docs=docs,
                  echo=lambda _m: None)
    rows = [json.loads(line) for line in (tmp_path / "ft" / "train.jsonl").read_text().splitlines()]
    near = [r for r in rows if r.get("negative") == "near"]
    assert {r["lang"] for r in near} == {"en", "zh"}
    by_id = {d.doc_id: d for d in docs}
    topics = TOPICS_EN + TOPICS_ZH
    for row in near:
        topic = next(t for t in topics if t in row["question"])
        assert all(topic not in by_id[doc_id].question for doc_id in row["passages"]), row
        assert row["target"].startswith(PromptLibrary().text(row["lang"], "answer.no_evidence"))
    assert stats["splits"]["train"]["by_negative"]["near"] == len(near)
    assert "near " in (tmp_path / "ft" / "DATA_CARD.md").read_text()


def test_near_negative_share_is_checked():
    with pytest.raises(Exception, match="share_near_negative"):
        DataConfig(share_near_negative=1.5)


def test_renderer_keeps_the_serve_prompt_byte_for_byte():
    """Rendered before the prompt builder left the engine's service (issue 13): unchanged."""
    from finetune.lora.data import Renderer

    passages = [Passage(id="d1#c0", doc_id="d1", text="Asthma is a chronic disease of the airways. " * 40,
                        title="Asthma", url="", source="MedQuAD/GARD", lang="en", score=0.0),
                Passage(id="d2#c0", doc_id="d2", text="高血压患者要控制食盐摄入。", title="高血压", url="",
                        source="Toyhom/内科", lang="zh", score=0.0)]
    renderer = Renderer(lambda t: len(t) // 3, passage_tokens=64)
    messages, given = renderer.render("zh", "高血压要注意什么？", passages, [("user", "你好"), ("assistant", "您好")])
    assert [m.role for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0].content == PromptLibrary().template("zh", "system")
    assert [m.content for m in messages[1:3]] == ["你好", "您好"]
    assert messages[3].content == (
        "参考资料：\n[1] Asthma（MedQuAD/GARD）\n<<<\n"
        + "Asthma is a chronic disease of the airways. " * 4 + "Asthma is a chro\n>>>\n\n"
        "[2] 高血压（Toyhom/内科）\n<<<\n高血压患者要控制食盐摄入。\n>>>\n\n"
        "患者的问题：高血压要注意什么？\n\n请用中文回答，并用 [n] 标注出处：")
    assert [(p.doc_id, len(p.text)) for p in given] == [("d1", 192), ("d2", 13)]


def _tiny_build(tmp_path, written_lines: list[str] | None = None) -> dict:
    """12/2/3 examples from 24 English and 24 Chinese docs, with a written zh_en file (one row on a
    missing document, a blank line) and an eval file forcing two groups into test."""
    docs = [_doc(i, "en") for i in range(24)] + [_doc(i, "zh") for i in range(24)]
    written = tmp_path / "written.jsonl"
    if written_lines is None:
        written_lines = [
            json.dumps({"id": "w1", "doc_id": docs[1].doc_id, "question": "第1种病是什么？",
                        "answer": "第1种病会影响成人的肺。它会引起咳嗽和发烧。"}, ensure_ascii=False), "",
            json.dumps({"id": "w2", "doc_id": "GARD_missing", "question": "没有的病？", "answer": "没有。"},
                       ensure_ascii=False)]
    written.write_text("\n".join(written_lines) + "\n", encoding="utf-8")
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    (eval_dir / "x.jsonl").write_text(json.dumps({"question": "q", "relevant": [docs[2].doc_id]}) + "\n\n"
                                      + json.dumps({"question": "q", "doc_id": docs[30].doc_id}) + "\n")
    cfg = DataConfig(out_dir=str(tmp_path / "ft"), written_file=str(written), eval_dir=str(eval_dir),
                     train_size=12, dev_size=2, test_size=3, dev_percent=10, test_percent=10,
                     share_zh_en=0.1, train_passage_tokens=0,
                     # the shares the rows were pinned with (the defaults changed in stop 25)
                     share_no_source=0.18, share_near_negative=0.8)
    return build(cfg, retriever=FakeRetriever(docs), counter=lambda t: len(t) // 3, docs=docs,
                 echo=lambda _m: None)


def _en(i: int, n: int) -> str:
    return (f"Condition {i} is a disease that affects the lungs of adults [{n}]. It causes cough and fever "
            f"in many people [{n}]. Doctors treat condition {i} with rest [{n}].")


def _zh(i: int, n: int) -> str:
    return f"第{i}种病需要注意休息和饮食清淡[{n}]。要按时复查，必要时就医治疗[{n}]。"


def test_tiny_build_rows_are_pinned(tmp_path):
    """Computed on the code before build/_build_split were split into steps (issue 13): the same
    seed gives the same rows in the same order, kinds, passages and targets."""
    stats = _tiny_build(tmp_path)
    g, t = "GARD_{:07d}_Sec1".format, "Toyhom_IM_{}".format
    expected = [
        ("train_0011_Toyhom_IM_14", "no_source", "far", [t(0), t(1), t(2)], None),
        ("train_0006_Toyhom_IM_8", "zh", None, [t(8), t(0), t(1)], _zh(8, 1)),
        ("train_0004_GARD_0000006_Sec1", "en", None, [g(6), g(0), g(1)], _en(6, 1)),
        ("train_0000_w1", "zh_en", None, [t(0), g(1), t(1)], "第1种病会影响成人的肺[2]。它会引起咳嗽和发烧[2]。"),
        ("train_0001_GARD_0000020_Sec1", "en", None, [g(0), g(20), g(1)], _en(20, 2)),
        ("train_0002_GARD_0000023_Sec1", "en", None, [g(23), g(0), g(1)], _en(23, 1)),
        ("train_0005_GARD_0000012_Sec1", "no_source", "far", [g(0), g(1), g(2)], None),
        ("train_0010_Toyhom_IM_4", "zh_multiturn", None, [t(4), t(0), t(1)], _zh(4, 1)),
        ("train_0009_Toyhom_IM_16", "zh", None, [t(16), t(0), t(1)], _zh(16, 1)),
        ("train_0003_GARD_0000017_Sec1", "en", None, [g(0), g(17), g(1)], _en(17, 2)),
        ("train_0008_Toyhom_IM_23", "zh", None, [t(23), t(0), t(1)], _zh(23, 1)),
        ("train_0007_Toyhom_IM_7", "zh", None, [t(7), t(0), t(1)], _zh(7, 1)),
        ("dev_0001_Toyhom_IM_5", "zh", None, [t(0), t(5), t(1)], _zh(5, 2)),
        ("dev_0000_GARD_0000003_Sec1", "en", None, [g(3), g(0), g(1)], _en(3, 1)),
        ("test_0000_GARD_0000010_Sec1", "en", None, [g(10), g(0), g(1)], _en(10, 1)),
        ("test_0001_Toyhom_IM_1", "zh", None, [t(1), t(0), t(2)], _zh(1, 1)),
        ("test_0002_Toyhom_IM_6", "no_source", "far", [t(0), t(2), t(3)], None),
    ]
    prompts = PromptLibrary()
    rows = [json.loads(line) for s in ("train", "dev", "test")
            for line in (tmp_path / "ft" / f"{s}.jsonl").read_text(encoding="utf-8").splitlines()]
    got = [(r["id"], r["kind"], r.get("negative"), r["passages"],
            None if r["kind"] == "no_source" else r["reference"]) for r in rows]
    assert got == expected
    assert all(r["reference"] == prompts.text(r["lang"], "answer.no_evidence")
               for r in rows if r["kind"] == "no_source")
    multi = next(r for r in rows if r["kind"] == "zh_multiturn")
    assert [m["content"] for m in multi["messages"][1:3]] == [
        "第9种病怎么办？", _zh(9, 1) + "\n\n" + prompts.text("zh", "answer.disclaimer")]
    assert stats["dropped"] == {"written_doc_missing": 1, "train_too_long": 0, "dev_too_long": 0,
                                "test_too_long": 0}
    questions = [json.loads(x) for x in (tmp_path / "ft" / "test_questions.jsonl").read_text().splitlines()]
    assert [q["id"] for q in questions] == ["test_0000_GARD_0000010_Sec1", "test_0001_Toyhom_IM_1"]


def test_a_bad_written_line_is_a_data_error_naming_file_and_line(tmp_path):
    from finetune.lora.data import DataBuildError

    with pytest.raises(DataBuildError, match=r"written\.jsonl:3: not JSON"):
        _tiny_build(tmp_path, ['{"id": "w1", "doc_id": "x", "question": "q", "answer": "a"}', "", "{oops"])
    (tmp_path / "b").mkdir()
    with pytest.raises(DataBuildError, match=r"written\.jsonl:1: missing doc_id, answer"):
        _tiny_build(tmp_path / "b", ['{"id": "w1", "question": "q"}'])


def test_a_bad_eval_line_is_a_data_error_naming_file_and_line(tmp_path):
    from finetune.lora.data import DataBuildError, eval_groups

    (tmp_path / "x.jsonl").write_text('{"relevant": ["GARD_0000001_Sec2"]}\n\n[1, 2]\n')
    with pytest.raises(DataBuildError, match=r"x\.jsonl:3: each line must be a JSON object"):
        eval_groups(tmp_path)
    (tmp_path / "x.jsonl").write_text('{"relevant": ["GARD_0000001_Sec2"]}\n\n{"doc_id": "Toyhom_IM_4"}\n')
    assert eval_groups(tmp_path) == {"GARD_0000001", "Toyhom_IM_4"}


def test_default_targets_quote_several_sentences_not_one_line():
    # issue 15: an answer is 3-8 sentences; the targets of stop 20 (3 sentences / 50 words) taught
    # one-line answers
    cfg = DataConfig()
    answer = " ".join(f"Sentence {i} explains one more fact about the disease." for i in range(8))
    units = en_target_units(answer, cfg.en_target_sentences, cfg.en_target_words)
    assert 4 <= len(units) <= 8
    zh = "。".join(f"第{i}点需要注意休息和饮食清淡" for i in range(8)) + "。"
    assert 4 <= len(zh_target_units(zh, cfg.zh_target_sentences, cfg.zh_target_chars)) <= 8
