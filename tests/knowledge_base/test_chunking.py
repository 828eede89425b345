from knowledge_base.chunking import Chunker
from knowledge_base.config import ChunkerConfig
from knowledge_base.records import Document


def _doc(text, **kw):
    return Document(id=kw.pop("id", "d1"), text=text, **kw)


def test_chinese_splits_at_sentence_ends_and_respects_size():
    sentences = [f"第{i}句话讲高血压的治疗方法和注意事项。" for i in range(40)]
    chunks = Chunker(ChunkerConfig(chunk_chars_zh=100)).split(_doc("".join(sentences), lang="zh"))
    assert len(chunks) > 5
    for c in chunks:
        assert len(c.text) <= 100
        assert c.text.endswith("。"), c.text  # never cut inside a sentence
        assert c.lang == "zh"


def test_english_splits_at_sentences_with_overlap():
    text = " ".join(f"Sentence number {i} explains the asthma inhaler." for i in range(60))
    chunks = Chunker(ChunkerConfig(chunk_chars_en=300, overlap_ratio=0.2)).split(_doc(text))
    assert len(chunks) >= 8
    assert all(len(c.text) <= 300 for c in chunks)
    # overlap: the start of each chunk already appeared at the end of the previous one
    first_sentence_of_second = chunks[1].text.split(". ")[0]
    assert first_sentence_of_second in chunks[0].text
    assert [c.n for c in chunks] == list(range(len(chunks)))
    assert chunks[3].id == "d1#c3"


def test_question_is_kept_with_every_chunk_of_the_answer():
    answer = " ".join(f"Gout point {i} is about uric acid and diet." for i in range(80))
    doc = _doc(answer, question="What causes gout?", title="Gout", section="causes")
    chunks = Chunker(ChunkerConfig(chunk_chars_en=200, embed_chars=120)).split(doc)
    assert len(chunks) > 3
    for c in chunks:
        assert c.text.startswith("What causes gout?\n")
        assert c.embed_text.startswith("What causes gout?")
        assert len(c.embed_text) <= 120
        assert c.section == "causes" and c.question == "What causes gout?"


def test_markdown_headings_become_sections():
    text = "# Asthma\nIntro text about asthma.\n\n## Treatment\nUse an inhaler every day.\n\n## Outlook\nMost people live normal lives."
    chunks = Chunker().split(_doc(text, title="Asthma"))
    assert [c.section for c in chunks] == ["Asthma", "Treatment", "Outlook"]
    assert chunks[1].text == "Use an inhaler every day."
    assert chunks[1].embed_text.startswith("Asthma\n")  # the title leads the embedded text


def test_tiny_trailing_piece_is_merged():
    text = ("A" * 90 + ". ") * 2 + "Thanks."
    chunks = Chunker(ChunkerConfig(chunk_chars_en=190, overlap_ratio=0.0, min_chunk_chars=40)).split(_doc(text))
    assert chunks[-1].text.endswith("Thanks.")
    assert all(len(c.text) >= 40 for c in chunks)


def test_mixed_language_document_uses_its_lang_or_detects():
    doc = _doc("我有高血压，最近头晕。请问需要换药吗？" * 3, lang="zh")
    assert {c.lang for c in Chunker().split(doc)} == {"zh"}
