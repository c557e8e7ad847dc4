"""The report page in a real browser: headless Chromium draws every figure and fetches nothing.

Run by ``make test-report`` (which installs Debian's chromium if missing); elsewhere skipped
when chromium is absent, unless REASONMED_REQUIRE_BROWSER=1 makes its absence a failure.
The screenshot is kept under out/test-report/.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cdp_support import chromium, open_page
from daemon_support import TOKEN, daemon
from e2e_support import ROOT, run_cli

pytestmark = pytest.mark.browser

IMAGES = """(async () => {
  const imgs = [...document.images];
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  return imgs.map(i => ({figure: i.dataset.figure, complete: i.complete, width: i.naturalWidth,
                         height: i.naturalHeight, shown: i.getBoundingClientRect().width}));
})()"""


@pytest.fixture(scope="module")
def browser_ok() -> None:
    if chromium() is None:
        if os.environ.get("REASONMED_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed (apt-get install -y chromium)")
        pytest.skip("chromium is not installed: `make test-report` installs it")


async def test_every_figure_is_drawn_and_nothing_is_fetched(browser_ok: None, tmp_path: Path,
                                                            pubmedqa: Path) -> None:
    db, out = tmp_path / "run.db", tmp_path / "report"
    for args in (("run", "--config", ROOT / "examples" / "sim.toml", "--input", pubmedqa, "--limit", 40,
                  "--db", db), ("report", "--db", db, "--out", out)):
        done = run_cli(*args, timeout=120)
        assert done.returncode in (0, 3), done.stderr  # 3: some questions failed (the sim's faults)
    expected = {p.stem for p in out.glob("*.png")}
    assert len(expected) >= 6
    artefacts = ROOT / "out" / "test-report"
    artefacts.mkdir(parents=True, exist_ok=True)
    async with open_page(tmp_path / "profile") as page:
        url = (out / "report.html").as_uri()
        await page.goto(url)
        images = await page.evaluate(IMAGES)
        shot = await page.screenshot(artefacts / "report-screenshot.png")
    print(f"\nscreenshot: {shot}")
    assert {i["figure"] for i in images} == expected
    for i in images:
        assert i["complete"] and i["width"] > 0 and i["height"] > 0 and i["shown"] > 0, i
    assert page.requests and page.requests[0] == url
    fetched = [u for u in page.requests if not u.startswith("data:") and u != url]
    assert fetched == [], f"the page made network requests: {fetched}"
    assert shot.stat().st_size > 50_000  # a drawn page, not a blank one


async def test_a_page_that_fetches_is_caught(browser_ok: None, tmp_path: Path) -> None:
    """The request log sees a page's fetches (the check above can fail)."""
    page_file = tmp_path / "leaky.html"
    page_file.write_text('<html><body><img src="https://example.invalid/x.png"></body></html>')
    async with open_page(tmp_path / "profile") as page:
        await page.goto(page_file.as_uri())
        images = await page.evaluate(IMAGES)
    assert "https://example.invalid/x.png" in page.requests
    assert images[0]["width"] == 0


async def test_the_daemons_live_report_after_signing_in(browser_ok: None, tmp_path: Path) -> None:
    """A browser cannot send a bearer header: it signs in through the form and its cookie opens the page."""
    async with daemon(tmp_path) as url, open_page(tmp_path / "profile") as page:
        await page.goto(f"{url}/report")  # redirected to the form
        assert await page.evaluate("location.pathname") == "/login"
        await page.evaluate(f"document.querySelector('input[name=token]').value = {TOKEN!r}")
        await page.evaluate("document.querySelector('form').submit()")
        await page.event("Page.loadEventFired")
        assert await page.evaluate("location.pathname") == "/report"
        assert await page.evaluate("document.cookie") == ""  # HttpOnly: invisible to scripts
        images = await page.evaluate(IMAGES)
        shot = await page.screenshot(ROOT / "out" / "test-report" / "daemon-report-screenshot.png")
    print(f"\nscreenshot: {shot}")
    assert len(images) >= 5 and all(i["complete"] and i["width"] > 0 for i in images)
    assert all(u.startswith((url, "data:")) for u in page.requests), page.requests
