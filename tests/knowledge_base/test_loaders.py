"""Loaders: real MedQuAD/Toyhom samples (tests/data/loaders) plus files generated per test."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from knowledge_base import loaders
from knowledge_base.errors import LoaderError
from knowledge_base.loaders import iter_files, load_file, load_sources, read_source

DATA = Path(__file__).resolve().parents[1] / "data" / "loaders"
MEDQUAD = DATA / "medquad"
GHR_XML = MEDQUAD / "3_GHR_QA" / "0000540.xml"
NHLBI_XML = MEDQUAD / "8_NHLBI_QA_XML" / "0000055.xml"
TOYHOM_CSV = DATA / "toyhom" / "toyhom_sample.csv"


def write(path: Path, content: str | bytes, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def answered_pairs(xml_path: Path, pair: str = "QAPair", answer: str = "Answer") -> list[ET.Element]:
    return [p for p in ET.parse(xml_path).getroot().iter(pair) if (p.findtext(answer) or "").strip()]


def make_pdf(text: str | None, title: str | None = None) -> bytes:
    """A minimal valid one-page PDF; ``text`` is drawn in Helvetica (None: a blank page)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode() if text is not None else b""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ] + ([f"<< /Title ({title}) >>".encode()] if title else [])
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    info = b" /Info 6 0 R" if title else b""
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, info, xref)
    return bytes(out)


# --- MedQuAD -------------------------------------------------------------------------------------

def test_medquad_ghr_fields_come_from_the_xml() -> None:
    root = ET.parse(GHR_XML).getroot()
    pairs = answered_pairs(GHR_XML)
    docs = load_file(GHR_XML)
    assert len(docs) == len(pairs) == 5
    first, pair = docs[0], pairs[0]
    assert first.id == f"{root.get('source')}_{root.get('id')}_Sec{pair.get('pid')}" == "GHR_0000540_Sec1"
    assert first.question == pair.findtext("Question") == "What is (are) Jackson-Weiss syndrome ?"
    assert first.section == pair.find("Question").get("qtype") == "information"
    assert first.url == root.get("url") == "https://ghr.nlm.nih.gov/condition/jackson-weiss-syndrome"
    assert first.title == root.findtext("Focus") == "Jackson-Weiss syndrome"
    assert (first.source, first.lang, first.license) == ("MedQuAD/GHR", "en", "CC BY 4.0")
    assert first.extra == {"qid": "0000540-1", "focus": "Jackson-Weiss syndrome", "synonyms": ["JWS"]}
    assert first.text.startswith("Jackson-Weiss syndrome is a genetic disorder")
    assert "  " not in first.text  # the source has double spaces between sentences
    assert [d.section for d in docs] == [p.find("Question").get("qtype") for p in pairs]
    json.dumps(first.extra)  # must stay JSON-serialisable


def test_medquad_ghr_inline_resource_list_becomes_lines() -> None:
    treatment = next(d for d in load_file(GHR_XML) if d.section == "treatment")
    assert treatment.id == "GHR_0000540_Sec5"
    assert "\n- Gene Review: Gene Review: FGFR-Related Craniosynostosis Syndromes\n" in treatment.text


def test_medquad_nhlbi_keeps_real_pids_and_decodes_entities() -> None:
    docs = load_file(NHLBI_XML)
    expected = [f"NHLBI_0000055_Sec{p.get('pid')}" for p in answered_pairs(NHLBI_XML)]
    assert [d.id for d in docs] == expected
    assert expected[:3] == ["NHLBI_0000055_Sec1", "NHLBI_0000055_Sec4", "NHLBI_0000055_Sec5"]  # pids skip 2-3
    assert "records the heart's electrical activity" in docs[0].text
    assert "\n\n\n" not in docs[0].text and "  " not in docs[0].text
    assert docs[0].title == "Electrocardiogram" and docs[0].extra["synonyms"] == []


def test_medquad_withheld_answer_gives_no_document() -> None:
    path = MEDQUAD / "2_GARD_QA" / "0002079.xml"
    assert ET.parse(path).getroot().find("QAPairs/QAPair/Question") is not None  # the question is there
    assert load_file(path) == []


def test_medquad_old_doc_spelling_is_read() -> None:
    path = MEDQUAD / "6_NINDS_QA" / "0000007.xml"
    docs = load_file(path)
    assert [d.id for d in docs] == [f"NINDS_0000007_Sec{p.get('pid')}" for p in answered_pairs(path, "pair", "answer")]
    assert docs[0].id == "NINDS_0000007_Sec1"
    assert (docs[0].source, docs[0].title, docs[0].section) == ("MedQuAD/NINDS", "Holmes-Adie", "information")
    assert docs[0].question == "what is holmes-adie syndrome ?"
    assert docs[0].text.startswith("Holmes-Adie syndrome (HAS) is a neurological disorder")


def test_medquad_key_points_are_cleaned(tmp_path: Path) -> None:
    xml = ('<Document id="0000001_1" source="CancerGov" url="https://x.test/all"><Focus>ALL</Focus><QAPairs>'
           '<QAPair pid="3"><Question qid="q" qtype="treatment">How to treat ALL ?</Question>'
           '<Answer>Key Points\n      - Point one.    - Point two.   \n\n\n\n   Body   text.</Answer></QAPair>'
           '<QAPair pid="4"><Question qid="q4" qtype="outlook">Outlook?</Question><Answer>  </Answer></QAPair>'
           '</QAPairs></Document>')
    docs = load_file(write(tmp_path / "k.xml", xml))
    assert [d.id for d in docs] == ["CancerGov_0000001_1_Sec3"]
    assert docs[0].text == "Key Points\n- Point one.\n- Point two.\n\nBody text."


def test_truncated_xml_is_a_loader_error() -> None:
    data = GHR_XML.read_bytes()[:1500]
    with pytest.raises(LoaderError, match=r"^malformed XML: (no element found|unclosed token)"):
        loaders.medquad.load_medquad(data, Path("t.xml"), "t.xml")


def test_other_xml_is_unsupported(tmp_path: Path) -> None:
    with pytest.raises(LoaderError, match="unsupported XML: root <rss>"):
        load_file(write(tmp_path / "feed.xml", "<rss><channel><title>x</title></channel></rss>"))


# --- CSV -----------------------------------------------------------------------------------------

def test_toyhom_csv_maps_title_to_question() -> None:
    with TOYHOM_CSV.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    docs = load_file(TOYHOM_CSV)
    assert len(docs) == len(rows) == 19
    doc, row = docs[1], rows[1]
    assert doc.id == "toyhom_sample_2"
    assert doc.question == doc.title == row["title"] == "高血压该治疗什么？"
    assert doc.text == row["answer"]
    assert doc.extra == {"ask": row["ask"], "department": "心血管科"}
    assert (doc.source, doc.lang, doc.license) == ("Toyhom/心血管科", "zh", "")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_encodings_and_chinese_headers(tmp_path: Path, encoding: str) -> None:
    content = '问题,回答\n"高血压, 怎么办？","少吃盐，""按时""服药。\n定期复查。"\n没有答案的问题,\n'
    docs = load_file(write(tmp_path / "qa.csv", content, encoding))
    assert [(d.id, d.question, d.text) for d in docs] == [
        ("qa_1", "高血压, 怎么办？", '少吃盐，"按时"服药。\n定期复查。')]
    assert docs[0].source == "qa" and docs[0].lang == "zh" and docs[0].extra == {}


def test_csv_generic_english_with_id_column(tmp_path: Path) -> None:
    content = "ID,Question,Answer\nasthma-1,What is asthma?,A chronic disease of the airways.\n,Q2?,A2.\n"
    docs = load_file(write(tmp_path / "faq.csv", content))
    assert [(d.id, d.question, d.text, d.lang) for d in docs] == [
        ("asthma-1", "What is asthma?", "A chronic disease of the airways.", "en"), ("faq_2", "Q2?", "A2.", "en")]


def test_csv_without_qa_columns_names_the_columns(tmp_path: Path) -> None:
    with pytest.raises(LoaderError, match="no question/answer columns in CSV \\(found: name, dose\\)"):
        load_file(write(tmp_path / "drugs.csv", "name,dose\naspirin,100mg\n"))


def test_csv_in_unknown_encoding_is_rejected_not_mangled(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.csv", b"question,answer\nwhat?,\xff\xfe caf\xe9 \n")
    with pytest.raises(LoaderError, match=r"unknown text encoding \(tried UTF-8, GB18030\)"):
        load_file(path)


# --- JSONL ---------------------------------------------------------------------------------------

def test_jsonl_reads_good_lines_and_reports_bad_ones(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "who-1", "text": "Asthma is a chronic disease.", "title": "Asthma", "url": "https://who.int/a",
                    "source": "WHO", "license": "CC BY-NC-SA 3.0 IGO", "section": "overview"}),
        json.dumps({"id": "zh-1", "text": "高血压是常见的慢性病。", "lang": "??"}, ensure_ascii=False),
        "{not json",
        json.dumps({"text": "no id"}),
        json.dumps({"id": "x", "text": ["not", "a", "string"]}),
        "",
        json.dumps({"id": "forced-zh", "text": "Mostly English text", "lang": "zh"}),
    ]
    path = write(tmp_path / "docs.jsonl", "\n".join(lines) + "\n")
    result = load_sources([path])
    assert [d.id for d in result.documents] == ["who-1", "zh-1", "forced-zh"]
    who = result.documents[0]
    assert (who.title, who.url, who.source, who.license, who.section, who.lang) == (
        "Asthma", "https://who.int/a", "WHO", "CC BY-NC-SA 3.0 IGO", "overview", "en")
    assert result.documents[1].lang == "zh" and result.documents[1].source == "docs"
    assert result.documents[2].lang == "zh"  # an explicit lang wins over detection
    assert [(s.path, s.reason.split(":")[0]) for s in result.skipped] == [
        (f"{path}:3", "invalid JSON"), (f"{path}:4", 'missing or empty "id" (a non-empty string)'),
        (f"{path}:5", 'missing or non-string "text" in document x')]
    assert result.files[0].n_documents == 3


def test_jsonl_with_only_bad_lines_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LoaderError, match=r"no valid JSONL line \(2 bad; first, line 1: invalid JSON"):
        load_file(write(tmp_path / "bad.jsonl", '{"id": \n[1, 2]\n'))


def test_duplicate_ids_across_files_keep_the_first(tmp_path: Path) -> None:
    a = write(tmp_path / "a.jsonl", '{"id": "d1", "text": "first copy"}\n{"id": "d2", "text": "two"}\n')
    b = write(tmp_path / "b.jsonl", '{"id": "d1", "text": "second copy"}\n{"id": "d3", "text": "three"}\n')
    result = load_sources([tmp_path])
    assert [(d.id, d.text) for d in result.documents] == [("d1", "first copy"), ("d2", "two"), ("d3", "three")]
    assert result.skipped == [loaders.SkippedFile(str(b), f"duplicate document id d1 (first seen in {a})")]
    assert [(f.path, f.n_documents) for f in result.files] == [("a.jsonl", 2), ("b.jsonl", 1)]


# --- Markdown, text, HTML ------------------------------------------------------------------------

def test_markdown_keeps_headings_and_link_text(tmp_path: Path) -> None:
    md = ("<!-- draft: do not index -->\n# Asthma care\n\nUse an ![inhaler](img/inhaler.png) inhaler "
          "as [prescribed](https://example.org/rx).\n\n## Triggers\n\nSmoke   and dust.\n"
          "<script>alert(1)</script>\n")
    write(tmp_path / "guidelines" / "asthma.md", md)
    [doc] = load_sources([tmp_path]).documents
    assert (doc.id, doc.path, doc.title, doc.lang) == ("guidelines/asthma.md", "guidelines/asthma.md", "Asthma care", "en")
    assert doc.text == "# Asthma care\n\nUse an inhaler as prescribed.\n\n## Triggers\n\nSmoke and dust."


def test_chinese_txt_in_gb18030(tmp_path: Path) -> None:
    text = "糖尿病饮食指南\n\n少吃精制糖，多吃蔬菜。𠀀\n"  # the last character only exists in GB18030, not GBK
    [doc] = load_file(write(tmp_path / "diet.txt", text, "gb18030"), tmp_path)
    assert (doc.id, doc.title, doc.lang) == ("diet.txt", "糖尿病饮食指南", "zh")
    assert doc.text == "糖尿病饮食指南\n\n少吃精制糖，多吃蔬菜。𠀀"


def test_html_drops_scripts_and_keeps_sections(tmp_path: Path) -> None:
    page = """<html><head><title>Hypertension facts</title><style>p {color: red}</style>
    <script>var secret = "tracking";</script></head>
    <body><nav>Home | Menu</nav><h1>High blood pressure</h1>
    <p>It is <b>common</b> and treatable.<img src=x onerror=alert(1)></p>
    <script>alert(1)</script><noscript>enable js</noscript>
    <h2>Treatment</h2><ul><li>Less salt</li><li>Exercise</li></ul><footer>© site</footer></body></html>"""
    [doc] = load_file(write(tmp_path / "bp.html", page), tmp_path)
    assert doc.title == "Hypertension facts"
    assert doc.text == ("# High blood pressure\n\nIt is common and treatable.\n\n## Treatment\n\n- Less salt\n- Exercise")
    for banned in ("alert", "onerror", "secret", "color", "Menu", "enable js", "©"):
        assert banned not in doc.text


def test_html_honours_meta_charset(tmp_path: Path) -> None:
    page = '<html><head><meta charset="windows-1252"></head><body><h1>Café</h1><p>Crème brûlée</p></body></html>'
    [doc] = load_file(write(tmp_path / "cafe.htm", page, "cp1252"), tmp_path)
    assert (doc.title, doc.text) == ("Café", "# Café\n\nCrème brûlée")


# --- PDF -----------------------------------------------------------------------------------------

def test_pdf_text_and_metadata_title(tmp_path: Path) -> None:
    [doc] = load_file(write(tmp_path / "asthma.pdf", make_pdf("Hello asthma inhaler", title="Asthma leaflet")), tmp_path)
    assert (doc.id, doc.text, doc.title, doc.lang) == ("asthma.pdf", "Hello asthma inhaler", "Asthma leaflet", "en")
    [untitled] = load_file(write(tmp_path / "b.pdf", make_pdf("Second leaflet")), tmp_path)
    assert untitled.title == "Second leaflet"  # no metadata: first line


def test_pdf_failures_are_loader_errors(tmp_path: Path) -> None:
    pdf = make_pdf("Hello asthma")
    with pytest.raises(LoaderError, match="^cannot parse PDF: "):
        load_file(write(tmp_path / "cut.pdf", pdf[: len(pdf) // 2]))
    with pytest.raises(LoaderError, match=r"^PDF has no extractable text \(scanned image\?\)$"):
        load_file(write(tmp_path / "scan.pdf", make_pdf(None)))


def test_encrypted_pdf_without_password(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf("Secret text"))))
    writer.encrypt(user_password="pw", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(LoaderError, match="^cannot parse PDF: encrypted"):
        load_file(write(tmp_path / "locked.pdf", out.getvalue()))


# --- load_sources: walking, skipping, file info --------------------------------------------------

def test_load_sources_skips_bad_files_and_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = write(tmp_path / "corpus" / "good.txt", "Asthma basics\nInhalers help.\n")
    write(tmp_path / "corpus" / ".hidden" / "secret.md", "# Hidden\ntext")
    write(tmp_path / "corpus" / ".notes.txt", "hidden file")
    for name in ("SOURCE.txt", "LICENSE", "README.md", "ATTRIBUTION.txt", "readme.txt"):
        write(tmp_path / "corpus" / name, "provenance, not a document")
    write(tmp_path / "corpus" / "empty.md", "")
    write(tmp_path / "corpus" / "blank.txt", " \n\t\n")
    write(tmp_path / "corpus" / "junk.txt", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00")
    write(tmp_path / "corpus" / "notes.xyz", "whatever")
    write(tmp_path / "corpus" / "big.md", "# Big\n" + "x" * 200)
    monkeypatch.setattr(loaders, "MAX_FILE_BYTES", 100)
    missing = tmp_path / "nope.md"

    result = load_sources([tmp_path / "corpus", missing])

    assert [d.id for d in result.documents] == ["good.txt"]
    assert result.documents[0].title == "Asthma basics"
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert reasons == {
        "big.md": "file too large (206 bytes; limit 100)",
        "blank.txt": "empty file",
        "empty.md": "empty file",
        "junk.txt": "binary content, not text",
        "notes.xyz": "unsupported file type .xyz",
        "nope.md": "cannot read file: No such file or directory",
    }
    data = good.read_bytes()
    assert result.files == [loaders.FileInfo("good.txt", hashlib.sha256(data).hexdigest(), len(data), 1)]


def test_iter_files_is_sorted_and_recursive(tmp_path: Path) -> None:
    for rel in ("b/z.md", "a.txt", "b/a/y.txt", "c.csv", ".git/config.txt", "b/LICENSE.txt"):
        write(tmp_path / rel, "x")
    listed = [p.relative_to(tmp_path).as_posix() for p in iter_files([tmp_path])]
    assert listed == ["a.txt", "b/a/y.txt", "b/z.md", "c.csv"]
    assert list(iter_files([tmp_path])) == list(iter_files([str(tmp_path)]))


def test_real_samples_load_together() -> None:
    result = load_sources([MEDQUAD, TOYHOM_CSV])
    assert result.skipped == []
    ninds = answered_pairs(MEDQUAD / "6_NINDS_QA" / "0000007.xml", "pair", "answer")
    expected = len(answered_pairs(GHR_XML)) + len(answered_pairs(NHLBI_XML)) + len(ninds) + 19  # GARD: none
    assert len(result.documents) == expected == 33
    assert {f.path: f.n_documents for f in result.files}["2_GARD_QA/0002079.xml"] == 0
    assert read_source(TOYHOM_CSV).sha256 == hashlib.sha256(TOYHOM_CSV.read_bytes()).hexdigest()
