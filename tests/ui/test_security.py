"""The doors Gradio leaves open, closed by ui/security.py (review findings b and f), tested on
the real Gradio app over real HTTP (fake services behind it)."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.ui.browser import free_port
from tests.ui.fakes import make_services
from ui import nurse
from ui.security import SECURITY_HEADERS, Downloads


def test_downloads_are_single_use_and_expire():
    now = [0.0]
    vault = Downloads(ttl_s=60, clock=lambda: now[0])
    first, second = vault.put(b"a", "a.csv"), vault.put(b"b", "b.csv")
    assert first != second and len(first) >= 32
    assert vault.take(first).data == b"a" and vault.take(first) is None
    now[0] = 61
    assert vault.take(second) is None and len(vault) == 0
    assert vault.take("guessed") is None


@pytest.fixture(scope="module")
def running():
    from ui.app import create_demo, launch

    services = make_services()
    demo = create_demo(services)
    port = free_port()
    launch(demo, services, "127.0.0.1", port, block=False)
    yield services, f"http://127.0.0.1:{port}"
    demo.close()


def test_every_response_carries_the_security_headers(running):
    _, base = running
    for path in ("/", "/config", "/gradio_api/info", "/no-such-page"):
        r = httpx.get(base + path, timeout=10)
        for name, value in SECURITY_HEADERS:
            assert r.headers.get(name.decode()) == value.decode(), (path, name)


def test_the_endpoint_listing_is_empty(running):
    # review (f): /gradio_api/info listed all 18 endpoints despite show_api=False
    _, base = running
    info = httpx.get(base + "/gradio_api/info", timeout=10).json()
    assert info == {"named_endpoints": {}, "unnamed_endpoints": {}}
    assert httpx.get(base + "/gradio_api/openapi.json", timeout=10).status_code == 404
    assert httpx.get(base + "/", timeout=10).status_code == 200  # the page itself still loads


def test_the_csv_export_is_served_once_by_its_link_only(running):
    # review (b): the export was a temp file downloadable by URL without login, never deleted
    services, base = running
    services.auth.login("nurse", "right")
    services.nurse.save("nurse", {"complaint": "fever"}, services.nurse.result, "")
    link = nurse.export_csv(services, "tok", "en", "")[6]["value"]
    href = re.search(r'href="([^"]+)"', link).group(1)
    got = httpx.get(f"{base}/{href}", timeout=10)
    assert got.status_code == 200 and got.content.startswith(b"\xef\xbb\xbf") and b"fever" in got.content
    assert got.headers["content-disposition"].startswith("attachment;")
    again = httpx.get(f"{base}/{href}", timeout=10)
    assert again.status_code == 404 and "export again" in again.text and "重新导出" in again.text
    assert httpx.get(f"{base}/medchat/download/guessed-code", timeout=10).status_code == 404
