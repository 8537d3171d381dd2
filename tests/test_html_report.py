"""The static HTML report: every page parses and every relative link resolves (always), and a real
headless browser (Debian's chromium, where installed) renders every page and the leaderboard."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import pytest

from .conftest import run_cli
from .test_scores_report import SMALL, small_cache, small_specs  # noqa: F401 - fixtures: two small cases, seed 0

pytestmark = pytest.mark.slow

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Page(HTMLParser):
    """Links, ids, table rows and tag balance of one page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.links, self.ids, self.text = [], [], [], set(), []
        self.rows: dict[str, list[list[str]]] = {}
        self._table, self._row = None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag not in VOID:
            self.stack.append(tag)
        if "id" in a:
            self.ids.add(a["id"])
        for k in ("href", "src"):
            if a.get(k):
                self.links.append(a[k])
        if tag == "table":
            self._table = a.get("id", "")
            self.rows.setdefault(self._table, [])
        if tag == "tr" and self._table is not None:
            self._row = []
            self.rows[self._table].append(self._row)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag == "table":
            self._table = None

    def handle_data(self, data):
        self.text.append(data)
        if self._row is not None and data.strip():
            self._row.append(data.strip())


def parse(path: Path) -> Page:
    p = Page()
    p.feed(path.read_text(encoding="utf-8"))
    p.close()
    return p


@pytest.fixture(scope="module")
def site(small_cache, results_dir, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("site")
    r = run_cli("score", "--results", str(results_dir), "--out", str(out), "--case", SMALL[0], "--case", SMALL[1],
                "--seeds", "0", "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def test_every_page_parses_and_every_relative_link_resolves(site):
    found = pages(site)
    detectors = [d["detector"] for d in json.loads((site / "leaderboard.json").read_text())["data"]]
    assert {p.relative_to(site).as_posix() for p in found} == {
        "index.html", "metrics.html", *(f"cases/{c}.html" for c in SMALL),
        *(f"detectors/{d}.html" for d in detectors)}
    for path in found:
        page = parse(path)
        assert not page.errors and not page.stack, (path, page.errors, page.stack)
        for link in page.links:
            u = urlparse(link)
            if u.scheme or link.startswith("#"):
                assert u.scheme in ("http", "https"), (path, link)      # only provenance links leave the site
                continue
            assert (path.parent / u.path).resolve().is_file(), (path, link)


def test_leaderboard_and_pages_hold_what_they_promise(site):
    index = parse(site / "index.html")
    lb = json.loads((site / "leaderboard.json").read_text())
    rows = index.rows["leaderboard"]
    assert rows[0] == lb["headers"] and [r[0] for r in rows[1:]] == [r[0] for r in lb["rows"]]
    assert all("[" in cell for r in rows[1:] for cell in r[2:4])           # intervals shown
    case = parse(site / "cases" / f"{SMALL[0]}.html")
    text = "".join(case.text)
    assert "learning_rate: 0.1" in text and "learning_rate: 0.01" in text   # the YAML diff of the fix
    assert f"../plots/{SMALL[0]}.png" in case.links
    verdicts = case.rows["verdicts"][1:]
    assert len(verdicts) == len(lb["rows"]) * 2                              # every detector, broken and fixed
    nan_guard = parse(site / "detectors" / "nan-guard.html")
    assert "TerminateOnNaN" in "".join(nan_guard.text)                       # its docstring: what it reproduces
    assert nan_guard.rows["per-cause"][1:]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _headless(browser: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-extensions", *args], capture_output=True, text=True, timeout=120)


def test_a_real_browser_renders_every_page(site, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no headless browser installed (apt-get install chromium)")
    detectors = [r[0] for r in json.loads((site / "leaderboard.json").read_text())["rows"]]
    for path in pages(site):
        r = _headless(browser, "--dump-dom", path.as_uri())
        assert r.returncode == 0, r.stderr[-1000:]
        dom = Page()
        dom.feed(r.stdout)
        assert "<h1>" in r.stdout and "trainwreck report" in "".join(dom.text), path
        if path.name == "index.html":
            rendered = [row[0] for row in dom.rows["leaderboard"][1:]]
            assert rendered == detectors
    shot = tmp_path / "index.png"
    r = _headless(browser, f"--screenshot={shot}", "--window-size=1400,1000", (site / "index.html").as_uri())
    assert r.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
