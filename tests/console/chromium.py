"""How the console's browser tests and ``bench/console.py`` start Chromium: Debian's build, headless.

Playwright's own browser download is not used; ``console/setup-browser.sh`` installs
``/usr/bin/chromium`` (``IMPRUN_CHROMIUM`` names another). ``launch`` gives each browser a fresh
temporary profile (user-data dir).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from playwright.sync_api import Browser, Playwright, ViewportSize

CHROMIUM: Final = Path(os.environ.get("IMPRUN_CHROMIUM", "/usr/bin/chromium"))
FLAGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT: Final[ViewportSize] = {"width": 1280, "height": 800}


def launch(playwright: Playwright) -> Browser:
    if not CHROMIUM.exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing: run `bash console/setup-browser.sh`")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=list(FLAGS))
