"""The documentation site as a reader's browser shows it: the built comparison page, loaded by headless
Chromium from a local server, fetches every image it shows (a path that resolves on disk but not under
the site's URLs, e.g. one level too shallow, fails here and not in `mkdocs build --strict`)."""

import http.server
import re
import shutil
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

from testing_utils import REPO

BROWSER = shutil.which("chromium-headless-shell") or shutil.which("chromium")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)], cwd=REPO,
                   env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"}, check=True, timeout=300)
    return out


def images_a_browser_fetches(site: Path, page: str) -> tuple[list[str], dict[str, int]]:
    """(the <img> URLs of `page` after the browser ran it, {requested path: HTTP status}) from a loopback
    server over the built site."""
    assert BROWSER, "needs chromium-headless-shell: `make test` installs it (apt-get install chromium-headless-shell)"
    requests: dict[str, int] = {}

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_request(self, code="-", size="-"):
            requests[urlparse(self.path).path] = int(code)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{page}"
    try:
        dom = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                              "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True).stdout
    finally:
        server.shutdown()
    images = [urlparse(urljoin(url, src)).path for src in re.findall(r'<img[^>]+src="([^"]+)"', dom)]
    return images, requests


def broken_images(site: Path, page: str) -> list[str]:
    images, requests = images_a_browser_fetches(site, page)
    assert images, f"{page} shows no image"
    return [f"{path} ({requests.get(path, 'never requested')})" for path in images if requests.get(path) != 200]


def test_the_comparison_page_shows_its_plots_in_a_browser(site):
    assert broken_images(site, "compare/") == []


def test_a_broken_image_path_on_the_comparison_page_is_caught(site, tmp_path):
    broken = tmp_path / "site"
    shutil.copytree(site, broken)
    page = broken / "compare" / "index.html"
    page.write_text(page.read_text().replace('src="../benchmarks/', 'src="benchmarks/', 1))  # one level short
    assert len(broken_images(broken, "compare/")) == 1
