"""The report in a real browser (Debian's chromium driven by Playwright, offline): at 1280 and
390 px wide, a non-blank screenshot, no horizontal overflow, no console error, every image
loaded, the summary first. Skipped, with the reason, where chromium or playwright is
missing (`.ci/run` installs chromium)."""

import shutil
import warnings

import pytest
from conftest import make_model, make_tokenizer

from collapsekit.studies import run_scan

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
WIDTHS = (1280, 390)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: "
                                "apt-get install chromium; .ci/run installs it)")


@pytest.fixture(scope="module")
def report(tmp_path_factory, one_thread):
    """index.html of a real scan (geometry, diversity, passkey) of the tiny llama."""
    tmp = tmp_path_factory.mktemp("browser")
    make_model("llama").save_pretrained(tmp / "tiny", safe_serialization=True)
    make_tokenizer().save_pretrained(tmp / "tiny")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_scan(tmp / "run", model=str(tmp / "tiny"),
                 studies=["geometry", "diversity", "passkey"], params={
                     "geometry.n": 6, "geometry.max_length": 32, "geometry.batch_size": 4,
                     "diversity.k": 2, "diversity.max_new_tokens": 6,
                     "diversity.n_prompts": 2})
    return tmp / "run" / "index.html"


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install .[test])")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_report_in_chromium(report, browser, width, tmp_path):
    import numpy as np
    from PIL import Image

    page = browser.new_page(viewport={"width": width, "height": 900})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda r: None if r.url.startswith(("file:", "data:"))
            else errors.append(f"network request {r.url}"))
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    assert errors == []
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    images = page.evaluate("Array.from(document.images).map(i => [i.alt, i.naturalWidth])")
    assert len(images) >= 10 and [a for a, w in images if w == 0] == []
    assert page.evaluate("document.querySelector('h2').textContent") == "Summary"
    verdicts = page.locator("#summary .verdict")
    assert verdicts.count() >= 4
    assert verdicts.first.get_attribute("title").startswith(("lower", "higher"))
    links = page.evaluate("Array.from(document.querySelectorAll('nav a')).map(a => "
                          "a.getBoundingClientRect().right)")
    assert links and max(links) <= width  # the nav bar wraps: no cut link
    shot = tmp_path / f"report-{width}.png"
    page.screenshot(path=str(shot))
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape[1] == width and pixels.std() > 10  # not blank
    page.close()
