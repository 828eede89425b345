"""Helpers of the browser tests: a headless Debian Chromium driven by Selenium through
/usr/bin/chromedriver, a `medchat serve` started in-process on a free localhost port, and
waits on the page."""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from knowledge_base.paths import PROJECT_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Without the background-networking flags Chromium tries to reach Google services at start and
# its connections are refused on a closed network; --no-sandbox because CI runs as root.
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-dev-shm-usage", "--disable-extensions",
                  "--lang=en-US")
SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"


def browser_available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_chromium(width: int = 1280, height: int = 1000) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="medchat-chromium-")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    if width < 500:
        # Chromium keeps windows at least 500 px wide: emulate the phone's viewport instead.
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": True})
    driver.set_page_load_timeout(60)
    driver._medchat_profile = profile  # removed by stop_chromium
    return driver


def stop_chromium(driver: Any) -> None:
    profile = getattr(driver, "_medchat_profile", None)
    driver.quit()
    if profile:
        shutil.rmtree(profile, ignore_errors=True)


def start_server(settings: Any, generator: Any = None) -> tuple[Any, str]:
    """(demo, url) of `medchat serve` running in this process (a background thread)."""
    from ui.app import serve

    port = free_port()
    demo = serve(settings, "127.0.0.1", port, block=False, generator=generator)
    return demo, f"http://127.0.0.1:{port}/"


def wait_for(condition: Callable[[], Any], timeout: float, what: str, poll: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception as exc:  # noqa: BLE001 - the page is mid-update; retried, reported on timeout
            last_error, value = exc, None
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}"
                         + (f" (last error: {last_error})" if last_error else ""))


def open_app(driver: Any, url: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url)
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#mc-input textarea"), 60, "the app to load")


# Records every distinct text of the last answer bubble: more than one before the final answer
# means the answer was streamed.
WATCH_STREAM_JS = """
window.__mcTexts = [];
const chat = document.querySelector('#mc-chat');
new MutationObserver(() => {
  const bots = chat.querySelectorAll('.message.bot, [data-testid="bot"]');
  if (!bots.length) return;
  const text = bots[bots.length - 1].innerText;
  const seen = window.__mcTexts;
  if (!seen.length || seen[seen.length - 1] !== text) seen.push(text);
}).observe(chat, {subtree: true, childList: true, characterData: true});
"""


def ask(driver: Any, text: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element(By.CSS_SELECTOR, "#mc-input textarea")
    box.clear()
    box.send_keys(text)
    box.send_keys(Keys.ENTER)  # keyboard only: Enter sends


def bot_texts(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, '#mc-chat [data-testid="bot"]')]


def sources_text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, "#mc-sources").text


def message_id(driver: Any) -> str:
    return driver.execute_script(
        "const e = document.querySelector('#mc-sources .mc-sources'); return e ? e.dataset.message : '';") or ""


def wait_answer(driver: Any, previous: str, timeout: float) -> tuple[str, str]:
    """(message id, text) of the next final answer: the sources panel is replaced by the final
    event, after the stream, and names the stored answer it belongs to."""
    current = wait_for(lambda: (m := message_id(driver)) and m != previous and m, timeout,
                       "the final answer")
    # The sources panel and the chat are separate components: the panel can be drawn a moment
    # before the chat's last bubble, so the text is read once it stops changing (two equal reads).
    seen: list[str] = []

    def settled() -> str | None:
        seen.append(bot_texts(driver)[-1])
        return seen[-1] if len(seen) > 1 and seen[-1] == seen[-2] else None

    return current, wait_for(settled, 10, "the answer's text to settle", poll=0.3)


def click(driver: Any, css: str) -> None:
    from selenium.webdriver.common.by import By

    element = driver.find_element(By.CSS_SELECTOR, css)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def open_tab(driver: Any, label: str) -> None:
    from selenium.webdriver.common.by import By

    for button in driver.find_elements(By.CSS_SELECTOR, "button[role='tab']"):
        if button.text.strip() == label:
            button.click()
            return
    raise AssertionError(f"no tab {label!r}")


def screenshot(driver: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.execute_script("window.scrollTo(0, 0);")  # the page as a visitor first sees it
    time.sleep(0.3)
    driver.save_screenshot(str(path))
    return path
