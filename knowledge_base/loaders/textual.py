"""Whole-file documents: Markdown, plain text, HTML and PDF. Each file becomes ONE Document (the
chunker splits it later); its id is the file's path relative to the source root. Also home of
``decode_text``, the strict encoding detection every text-type loader uses."""

from __future__ import annotations

import codecs
import io
import re
from pathlib import Path

from knowledge_base.errors import LoaderError
from knowledge_base.records import Document
from knowledge_base.text import clean_text, detect_lang

TITLE_MAX = 120

# Try order for undeclared encodings. Both are decoded strictly: a wrong guess raises instead of
# filling the text with U+FFFD. UTF-8 goes first because valid GB18030 byte sequences are rarely
# valid UTF-8, while plain ASCII/UTF-8 Chinese text would often also decode (wrongly) as GB18030.
_ENCODINGS = ("utf-8-sig", "gb18030")
# GB2312 and GBK are subsets of GB18030; browsers treat these labels the same way (WHATWG).
_ENCODING_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "utf-8": "utf-8-sig",
                     "utf8": "utf-8-sig"}


def decode_text(data: bytes, declared: str | None = None, declared_by: str = "") -> str:
    """Decode strictly: the ``declared`` encoding if it is a known codec, else UTF-8 (with or
    without BOM), then GB18030. Raises LoaderError when nothing fits."""
    codec = _known_codec(declared)
    if codec:
        try:
            return data.decode(codec)
        except UnicodeDecodeError as exc:
            raise LoaderError(f"text is not valid {declared} (declared by {declared_by}): {exc.reason} "
                              f"at byte {exc.start}") from exc
    for encoding in _ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue  # next candidate; the error below names everything tried
    raise LoaderError("unknown text encoding (tried UTF-8, GB18030)")


def _known_codec(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().lower()
    try:
        codecs.lookup(label)
    except LookupError:
        return None  # an unknown label is treated as undeclared, like browsers do
    return _ENCODING_ALIASES.get(label, label)


def _first_line(text: str) -> str:
    return next((line.strip()[:TITLE_MAX] for line in text.splitlines() if line.strip()), "")


def _document(text: str, title: str, rel: str, source: str) -> list[Document]:
    text = clean_text(text)
    if not text:
        return []  # nothing left to retrieve
    title = clean_text(title)[:TITLE_MAX] or _first_line(text)
    return [Document(id=rel, text=text, title=title, source=source, lang=detect_lang(text), path=rel)]


def _source_name(rel: str) -> str:
    """The collection a file belongs to: its top folder under the source root ("" at the top)."""
    parts = rel.split("/")
    return parts[0] if len(parts) > 1 else ""


# --- plain text ----------------------------------------------------------------------------------

def load_txt(data: bytes, path: Path, rel: str) -> list[Document]:
    text = decode_text(data)
    return _document(text, _first_line(text), rel, _source_name(rel))


# --- Markdown ------------------------------------------------------------------------------------

_MD_COMMENT = re.compile(r"<!--.*?-->", re.S)
_MD_RAW_SCRIPT = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.S | re.I)  # raw HTML is legal Markdown
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_H1 = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.M)


def markdown_to_text(text: str) -> str:
    """Headings stay as ``#`` lines (the chunker cuts sections on them); images, comments and
    raw scripts go; a link keeps only its visible text."""
    text = _MD_COMMENT.sub("", text)
    text = _MD_RAW_SCRIPT.sub("", text)
    text = _MD_IMAGE.sub("", text)  # before links: an image is a link with a leading "!"
    return _MD_LINK.sub(r"\1", text)


def load_markdown(data: bytes, path: Path, rel: str) -> list[Document]:
    text = markdown_to_text(decode_text(data))
    heading = _MD_H1.search(text)
    return _document(text, heading.group(1) if heading else _first_line(text), rel, _source_name(rel))


# --- HTML ----------------------------------------------------------------------------------------

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
# Never text: code, styling, page chrome. Attributes (onerror=...) never reach get_text() at all.
_HTML_DROP = ("script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "nav",
              "header", "footer", "head", "title")
_HTML_BLOCKS = ("p", "div", "dt", "dd", "tr", "table", "section", "article", "main", "aside",
                "blockquote", "pre", "ul", "ol", "dl", "figure", "figcaption", "address", "td", "th")


def html_to_text(markup: str) -> tuple[str, str]:
    """(title, text). Headings become Markdown ``#`` lines so sections survive; block elements
    are separated by newlines; inline elements stay inside their sentence."""
    from bs4 import BeautifulSoup  # lazy: keep ``import knowledge_base.loaders`` cheap

    soup = BeautifulSoup(markup, "html.parser")
    h1 = soup.find("h1")  # looked up before <header> goes: a page's h1 often sits inside it
    title = next((t.get_text(" ", strip=True) for t in (soup.title, h1) if t and t.get_text(strip=True)), "")
    for tag in soup.find_all(_HTML_DROP):
        tag.decompose()
    for heading in soup.find_all(re.compile(r"^h[1-6]$")):
        level = int(heading.name[1])
        heading.replace_with(f"\n{'#' * level} {heading.get_text(' ', strip=True)}\n")
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for item in soup.find_all("li"):
        item.insert_before("\n- ")  # no newline after: consecutive items stay one list
    for block in soup.find_all(_HTML_BLOCKS):
        block.insert_before("\n")
        block.insert_after("\n")
    return title, soup.get_text()


def load_html(data: bytes, path: Path, rel: str) -> list[Document]:
    declared = _META_CHARSET.search(data[:4096])  # a <meta charset> must come early in <head>
    text = decode_text(data, declared.group(1).decode("ascii") if declared else None, "<meta charset>")
    title, body = html_to_text(text)
    return _document(body, title, rel, _source_name(rel))


# --- PDF -----------------------------------------------------------------------------------------

def load_pdf(data: bytes, path: Path, rel: str) -> list[Document]:
    from pypdf import PdfReader  # lazy: pypdf is slow to import and only needed for PDFs
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):  # many PDFs use an empty user password
            raise LoaderError("cannot parse PDF: encrypted and needs a password")
        text = "\n\n".join(page.extract_text() or "" for page in reader.pages)
        title = (reader.metadata.title or "") if reader.metadata else ""
    # pypdf reports damaged files with its own errors, but some truncations surface as plain
    # ValueError/KeyError/TypeError from its parser; all of them mean "this file cannot be read".
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise LoaderError(f"cannot parse PDF: {exc}") from exc
    if not clean_text(text):
        raise LoaderError("PDF has no extractable text (scanned image?)")
    return _document(text, str(title), rel, _source_name(rel))
