"""Benchmark: the web console's bundle sizes, its first render and how soon its editor takes typing.

Run it from the repository root after ``bash console/setup.sh`` (the build) and
``bash console/setup-browser.sh`` (Chromium): ``.venv/bin/python bench/console.py [--rounds N]``.

1. **Bundle sizes** of ``console/dist``: the initial JavaScript (the entry script and the chunks
   ``index.html`` preloads — what the first page costs), gzipped at level 9 as a server would send
   it, against the 300 KB target; and the lazily loaded chunks (the editor route with Monaco, the
   editor worker), which the first page never fetches.
2. Starts its own embedded stack (``_stack.platform_stack``: nx-27017, redis-server, a Ray head, the
   control plane in its own process serving the built console), creates one gateway and one
   function, and drives Debian's Chromium (headless, Playwright) on localhost, ``--rounds`` times:
   - **gateway list**: from navigation start until the gateway table is on screen, in a fresh
     browser context (cold cache) and on a reload in the same context (warm cache);
   - **editor ready**: from navigation start to the function's editor page until Monaco holds the
     code and takes typing (the page's ``imprun:editor-ready`` mark), cold and warm, against the
     1.5 s target;
   - the **baselines**, measured in the same contexts: the round trip of ``GET /v1/api-gateways``
     from the page (the data the list waits for) and the load of a static file of the same size
     class from the same server (``index.html``).

It prints p50/p90/max of each and the ratios of the console's times to the baselines.
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from _measure import Summary, load_average
from _stack import platform_stack, wait_until
from playwright.sync_api import Browser, BrowserContext, sync_playwright

REPO: Final = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' way of starting Chromium, said once
from tests.console.chromium import VIEWPORT, launch  # noqa: E402

DIST: Final = REPO / "console" / "dist"
INITIAL_JS_TARGET_KB: Final = 300.0
EDITOR_READY_TARGET_MS: Final = 1500.0
FUNCTION_CODE: Final = '''import imp


def main(name: str = "world"):
    """Say hello."""
    imp.log("hello", name)
    return {"hello": name}
'''


@dataclass(frozen=True)
class Asset:
    name: str
    raw: int
    gzipped: int


def asset(path: Path) -> Asset:
    data = path.read_bytes()
    return Asset(path.name, len(data), len(gzip.compress(data, compresslevel=9)))


def bundle_sizes() -> tuple[list[Asset], list[Asset]]:
    """(initial JS assets, lazily loaded JS assets) of the build."""
    index = (DIST / "index.html").read_text()
    initial_names = set(re.findall(r'(?:src|href)="/assets/([^"]+\.js)"', index))
    scripts = sorted((DIST / "assets").glob("*.js"))
    initial = [asset(p) for p in scripts if p.name in initial_names]
    lazy = [asset(p) for p in scripts if p.name not in initial_names]
    return initial, sorted(lazy, key=lambda a: -a.gzipped)


def kb(n: int | float) -> str:
    return f"{n / 1024:8.1f} KB"


def print_sizes() -> float:
    initial, lazy = bundle_sizes()
    print("bundle (gzip -9):")
    for a in initial:
        print(f"  initial  {a.name:40s} {kb(a.raw)} raw {kb(a.gzipped)} gzip")
    for a in lazy:
        print(f"  lazy     {a.name:40s} {kb(a.raw)} raw {kb(a.gzipped)} gzip")
    total = sum(a.gzipped for a in initial) / 1024
    verdict = "within" if total <= INITIAL_JS_TARGET_KB else "OVER"
    print(f"  initial JS total: {total:.1f} KB gzip ({verdict} the {INITIAL_JS_TARGET_KB:.0f} KB target)")
    return total


def signed_in_context(browser: Browser, token: str) -> BrowserContext:
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(
        f"sessionStorage.setItem('imprun.token', {token!r}); sessionStorage.setItem('imprun.username', 'bench');"
    )
    return context


def gateway_list_ms(context: BrowserContext, url: str, *, reload: bool) -> tuple[float, float]:
    """(first render of the gateway table, the page's own GET /v1/api-gateways round trip), in ms."""
    page = context.pages[0] if reload and context.pages else context.new_page()
    if reload:
        page.reload()
    else:
        page.goto(f"{url}/")
    page.wait_for_selector("[data-testid=gateway-table] tbody tr")
    rendered: float = page.evaluate("performance.now()")
    api: float = page.evaluate(
        "performance.getEntriesByType('resource').filter(e => e.name.endsWith('/v1/api-gateways'))"
        ".map(e => e.duration).pop() ?? NaN"
    )
    return rendered, api


def editor_ready_ms(context: BrowserContext, url: str, *, reload: bool) -> float:
    page = context.pages[0] if reload and context.pages else context.new_page()
    if reload:
        page.reload()
    else:
        page.goto(url)
    page.wait_for_selector("[data-testid=code-editor][data-ready=true]", timeout=30_000)
    ready: float = page.evaluate("performance.getEntriesByName('imprun:editor-ready')[0].startTime")
    return ready


def static_file_ms(context: BrowserContext, url: str) -> float:
    page = context.new_page()
    page.goto(f"{url}/index.html")
    loaded: float = page.evaluate("performance.getEntriesByType('navigation')[0].responseEnd")
    page.close()
    return loaded


def line(name: str, samples: list[float], baseline: list[float] | None = None) -> None:
    s = Summary.of(samples)
    ratio = ""
    if baseline:
        ratio = f"   x{s.p50 / Summary.of(baseline).p50:6.1f} of its baseline (p50)"
    print(f"  {name:36s} p50 {s.p50:7.0f} ms  p90 {s.p90:7.0f} ms  max {s.max:7.0f} ms{ratio}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="measurements of each kind (default 5)")
    args = parser.parse_args()
    if not (DIST / "index.html").is_file():
        print("console/dist is missing: run `bash console/setup.sh` first", file=sys.stderr)
        return 2
    print_sizes()
    print(f"load average before: {load_average()}")
    with platform_stack(reconcile_interval=0.2) as stack:
        gw = f"bench-console-{int(time.time())}"
        stack.create_gateways([gw])
        stack.wait_started([gw], timeout=300)
        created = stack.api.post(
            f"/v1/api-gateways/{gw}/functions", json={"name": "greet", "code": FUNCTION_CODE}
        )
        created.raise_for_status()
        token = str(stack.api.headers["Authorization"]).removeprefix("Bearer ")
        url = stack.settings.control_plane_url
        editor_url = f"{url}/gateways/{gw}/functions/greet"
        results: dict[str, list[float]] = {
            k: [] for k in ("list cold", "list warm", "api", "static", "editor cold", "editor warm")
        }
        with sync_playwright() as playwright:
            browser = launch(playwright)
            try:
                warm_up = signed_in_context(browser, token)  # Chromium's own first start, unmeasured
                gateway_list_ms(warm_up, url, reload=False)
                warm_up.close()
                for _ in range(args.rounds):
                    context = signed_in_context(browser, token)
                    cold, api = gateway_list_ms(context, url, reload=False)
                    warm, api_warm = gateway_list_ms(context, url, reload=True)
                    results["list cold"].append(cold)
                    results["list warm"].append(warm)
                    results["api"].extend([api, api_warm])
                    results["static"].append(static_file_ms(context, url))
                    context.close()
                    context = signed_in_context(browser, token)
                    results["editor cold"].append(editor_ready_ms(context, editor_url, reload=False))
                    results["editor warm"].append(editor_ready_ms(context, editor_url, reload=True))
                    context.close()
            finally:
                browser.close()
        stack.delete_gateways([gw], timeout=180)
        wait_until(lambda: stack.phase(gw) is None, timeout=60, what="the gateway's deletion")
    print(f"\nlocalhost, Chromium headless, {args.rounds} rounds (times from navigation start):")
    line("baseline: GET /v1/api-gateways", results["api"])
    line("baseline: static index.html", results["static"])
    line("gateway list, cold cache", results["list cold"], results["static"])
    line("gateway list, warm cache", results["list warm"], results["static"])
    line("editor ready, cold cache", results["editor cold"], results["static"])
    line("editor ready, warm cache", results["editor warm"], results["static"])
    worst = Summary.of(results["editor cold"]).p50
    verdict = "within" if worst <= EDITOR_READY_TARGET_MS else "OVER"
    print(f"  editor ready (cold, p50) {worst:.0f} ms: {verdict} the {EDITOR_READY_TARGET_MS:.0f} ms target")
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
