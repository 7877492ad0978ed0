"""Headless Chromium (Debian's, driven by playwright) for the map page's tests and its benchmark.

`watch(page)` records what a user would call broken: console errors, failed requests, HTTP errors
and Content-Security-Policy violations.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
# Screenshots of the tests: INDOOR_TEST_ARTIFACTS, else tests/artifacts/ (ignored by git).
ARTIFACTS = Path(os.environ.get("INDOOR_TEST_ARTIFACTS", ROOT / "tests" / "artifacts"))
# WebGL without a GPU: ANGLE on SwiftShader (Chromium no longer falls back to it by itself).
CHROMIUM_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--disable-dev-shm-usage", "--no-sandbox"]
VIEWPORT = {"width": 1280, "height": 800}

# Recorded in the page before any of its scripts run.
_RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


@dataclass
class Watch:
    console_errors: list = field(default_factory=list)
    failed_requests: list = field(default_factory=list)
    http_errors: list = field(default_factory=list)  # (status, url) of responses >= 400
    requests: list = field(default_factory=list)  # playwright Request objects, in order

    def problems(self, page, allow_http: tuple = ()) -> list[str]:
        """Everything wrong, except HTTP errors with a status in `allow_http` (and their console line)."""
        allowed = [url for status, url in self.http_errors if status in allow_http]
        console = [
            text
            for text in self.console_errors
            if not (allowed and "Failed to load resource" in text and any(str(s) in text for s in allow_http))
        ]
        http = [f"{status} {url}" for status, url in self.http_errors if status not in allow_http]
        csp = page.evaluate("window.__cspViolations || []")
        # The change events stream never ends: leaving or reloading the page aborts it.
        failed = [f for f in self.failed_requests if not (f.startswith("net::ERR_ABORTED") and "/api/events/" in f)]
        return [*console, *failed, *http, *(f"CSP: {v}" for v in csp)]


def watch(page) -> Watch:
    seen = Watch()
    page.add_init_script(_RECORD_CSP_VIOLATIONS)
    page.on("console", lambda m: m.type == "error" and seen.console_errors.append(m.text))
    page.on("pageerror", lambda e: seen.console_errors.append(f"uncaught: {e}"))
    page.on("request", lambda r: seen.requests.append(r))
    page.on("requestfailed", lambda r: seen.failed_requests.append(f"{r.failure} {r.url}"))
    page.on("response", lambda r: r.status >= 400 and seen.http_errors.append((r.status, r.url)))
    return seen


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
