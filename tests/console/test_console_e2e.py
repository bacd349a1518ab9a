"""The web console end to end in Chromium, on the real embedded stack (control plane, Ray, Redis, Mongo).

One user's path through the console, each step checked by what the page shows: register → create a
gateway and watch it reach ``Started`` → completions and a hover for ``imp`` in the editor → type a
new function into Monaco → a syntax error is marked at its line → fix it, save, run it in the Run
panel → publish to dev → create an application and a grant, the key shown once → call the function
with it from the page → see the key's tools on the agents page → promote to staging and prod through
the diff → a second version, its diff in the history and the first restored → the calls show in the
live logs (one of them made while the page follows) → a secret variable is masked → the calls are
counted in the metrics → delete the gateway. axe-core finds no critical violation on the main
screens on the way.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import assert_accessible
from tests.fixtures.live_stack import PASSWORD, LiveStack
from tests.fixtures.polling import eventually

pytestmark = [pytest.mark.services, pytest.mark.ray]

BROKEN = """import imp


def main(name: str = "world"):
    if name = "nobody":
        raise imp.HTTPError(404, "nobody here")
    imp.log("hello", name)
    return {"hello": name}
"""
FIXED = BROKEN.replace('if name = "nobody":', 'if name == "nobody":')
STARTED_TIMEOUT_MS = 180_000


def choose(page: Page, label: str, option: str) -> None:
    """Pick ``option`` in the Mantine select labelled ``label``."""
    page.get_by_role("textbox", name=label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def type_code(page: Page, code: str) -> None:
    """Replace the editor's text by typing ``code`` key by key, as a person would.

    Monaco indents a new line by itself and closes brackets and quotes (typing the closing character
    then overtypes it). So each new line's automatic indentation is selected (Shift+Home) and typed
    over with the line as written. The line break is typed as text, not as the Enter key, which
    would accept an open suggestion instead.
    """
    editor = page.get_by_test_id("code-editor")
    editor.locator(".view-lines").click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.press("Delete")
    for number, line in enumerate(code.split("\n")):
        if number:
            page.keyboard.insert_text("\n")
            page.keyboard.press("Shift+Home")
        if line:
            page.keyboard.type(line)
        else:
            page.keyboard.press("Delete")  # the selected indentation, if any
    expect(editor.locator(".view-lines")).to_contain_text("return {")


def shoot(page: Page, name: str) -> None:
    """Screenshots for the docs when IMPRUN_CONSOLE_SCREENSHOTS names a folder."""
    folder = os.environ.get("IMPRUN_CONSOLE_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"console-{name}.png"))


def test_the_console_end_to_end(live_stack: LiveStack, console_page: Page) -> None:
    page = console_page
    username = f"web-{uuid.uuid4().hex[:8]}"
    gw = live_stack.gateway_id("web")

    # Register (signed out: every path leads to the sign-in page).
    page.goto(f"{live_stack.url}/gateways/anything")
    expect(page.get_by_role("heading", name="Sign in to imprun")).to_be_visible()
    assert_accessible(page, "sign-in")
    shoot(page, "sign-in")
    page.get_by_role("button", name="Register").click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Register and sign in").click()
    expect(page.get_by_test_id("signed-in-user")).to_have_text(username)
    assert page.evaluate("() => document.cookie") == "", "the console uses no cookie"
    assert page.evaluate("() => sessionStorage.getItem('imprun.token')"), "the token lives in session storage"

    # Create a gateway (on the shared tier, the form's default); its page follows the phases until Started.
    expect(page.get_by_role("heading", name="Gateways")).to_be_visible()
    page.get_by_role("button", name="Create gateway").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill("Web console")
    dialog.get_by_label("Gateway id").fill(gw)
    expect(dialog.get_by_label("CPU per replica")).to_have_count(0)  # sizing is for the dedicated tier
    dialog.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(f"/gateways/{gw}$"))
    expect(page.get_by_role("heading", name="Web console")).to_be_visible()
    header_phase = page.locator("main [data-phase]").first
    expect(header_phase).to_have_attribute("data-phase", re.compile("Creating|Created|Starting|Started"))
    expect(header_phase).to_have_attribute("data-phase", "Started", timeout=STARTED_TIMEOUT_MS)
    page.get_by_role("tab", name="Environments").click()
    rows = page.get_by_test_id("environment-table").locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.filter(has_text="prod")).to_contain_text(f"/{gw}/prod")
    expect(page.locator("main [data-tier]").first).to_have_attribute("data-tier", "shared")
    expect(rows.filter(has_text="prod")).to_contain_text("idle (not loaded)")  # nothing called it
    assert_accessible(page, "gateway page")
    shoot(page, "environments")
    page.get_by_role("link", name="Gateways").click()
    gateway_row = page.locator(f'tr[data-gateway="{gw}"]')
    expect(gateway_row.locator("[data-phase]").first).to_have_attribute("data-phase", "Started")
    assert_accessible(page, "gateway list")
    shoot(page, "gateways")

    # A new function typed into Monaco; the syntax error is marked at line 5.
    gateway_row.get_by_role("link", name="Web console").click()
    page.get_by_role("button", name="New function").click()
    page.get_by_label("Function name").fill("greet")
    editor = page.get_by_test_id("code-editor")
    expect(editor).to_have_attribute("data-ready", "true")
    # Completions and hovers for imp come from the runtime's own definitions.
    editor.locator(".view-line", has_text="return").click()
    page.keyboard.press("End")
    page.keyboard.insert_text("\n")
    page.keyboard.type("imp.fe")
    suggestions = editor.locator(".suggest-widget")
    expect(suggestions).to_contain_text("fetch")
    page.keyboard.press("Escape")
    editor.locator(".view-line", has_text="imp.log(").click()  # the hover by keyboard: cursor on "log",
    page.keyboard.press("Home")  # then Ctrl+K Ctrl+I (Show Hover)
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("ControlOrMeta+k")
    page.keyboard.press("ControlOrMeta+i")
    expect(page.locator(".monaco-hover:not(.hidden)").first).to_contain_text("imp.log(*args: Any) -> None")
    type_code(page, BROKEN)
    page.keyboard.press("ControlOrMeta+s")
    expect(page.get_by_test_id("problems")).to_contain_text("Line 5, column")
    squiggle = page.get_by_test_id("code-editor").locator(".squiggly-error").first
    expect(squiggle).to_be_attached()
    line_five = page.get_by_test_id("code-editor").locator(".view-lines .view-line").nth(4)
    expect(line_five).to_contain_text('if name = "nobody":')
    squiggle_box, line_box = squiggle.bounding_box(), line_five.bounding_box()
    assert squiggle_box and line_box
    assert line_box["y"] - 2 <= squiggle_box["y"] < line_box["y"] + line_box["height"], (
        squiggle_box,
        line_box,
    )
    assert_accessible(page, "editor")
    shoot(page, "editor-error")

    # Fix, save (the draft is created), run it in the Run panel.
    type_code(page, FIXED)
    page.get_by_role("button", name=re.compile("^Save")).click()
    expect(page).to_have_url(re.compile(f"/gateways/{gw}/functions/greet$"))
    expect(page.get_by_test_id("problems")).to_have_text("")
    expect(page.get_by_test_id("code-editor").locator(".squiggly-error")).to_have_count(0)
    token = page.evaluate("() => sessionStorage.getItem('imprun.token')")
    saved = httpx.get(
        f"{live_stack.url}/v1/api-gateways/{gw}/functions/greet", headers={"Authorization": f"Bearer {token}"}
    )
    assert saved.json()["code"] == FIXED, "the draft holds exactly what was typed"
    page.get_by_test_id("run-body").fill('{"name": "debug-run"}')
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_test_id("run-status")).to_have_text("200", timeout=60_000)
    expect(page.get_by_test_id("run-response-body")).to_contain_text('"hello": "debug-run"')
    page.get_by_role("tab", name=re.compile("^Logs")).click()
    expect(page.get_by_test_id("run-logs")).to_contain_text("hello debug-run")
    shoot(page, "editor-run")

    # Publish to dev.
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.get_by_test_id("published-dev")).to_have_text("dev v1")

    # An application and a grant on dev: the key is shown once; call the function with it.
    page.get_by_role("link", name="Applications & keys").click()
    page.get_by_label("New application").fill("mobile")
    page.get_by_role("button", name="Create application").click()
    card = page.locator('[data-application="mobile"]')
    expect(card).to_be_visible()
    card.get_by_role("textbox", name="Gateway").click()
    page.get_by_role("option", name=gw, exact=True).click()
    card.get_by_role("button", name="Grant access").click()
    dialog = page.get_by_role("dialog", name="Your API key")
    expect(dialog.get_by_test_id("key-warning")).to_contain_text("shown only this once")
    api_key = dialog.get_by_test_id("issued-key").locator("code").inner_text()
    assert re.fullmatch(r"imp_dev_[A-Za-z0-9_-]{43}", api_key), api_key
    assert_accessible(page, "key shown once")
    dialog.get_by_label("JSON body").fill('{"name": "console-call"}')
    call = dialog.get_by_role("button", name="Call greet in dev")
    status = dialog.get_by_test_id("call-status")

    def called_ok() -> bool:  # a new grant reaches the data plane within a second or so
        call.click()
        expect(status).to_be_visible()
        expect(call).to_be_enabled()
        return status.inner_text() == "200"

    assert any(called_ok() for _ in range(20)), f"the key never opened dev: {status.inner_text()}"
    expect(dialog.get_by_test_id("call-body")).to_contain_text('"hello": "console-call"')
    shoot(page, "key-shown-once")
    dialog.get_by_role("button", name="I have copied it").click()
    expect(page.get_by_text(api_key)).to_have_count(0)
    expect(card.get_by_test_id("grant-table")).to_contain_text(api_key[:12])
    shoot(page, "applications")

    # The agents page: the key's tools, with a form from the inputSchema.
    page.get_by_role("link", name="Agents (MCP tools)").click()
    choose(page, "Application", "mobile")
    page.get_by_role("textbox", name="Grant", exact=True).click()
    page.get_by_role("option", name=f"{gw} / dev").click()
    tools = page.get_by_test_id("tool-list")
    expect(tools).to_contain_text("greet")
    expect(page.get_by_text(f"{live_stack.data_plane_url}/mcp").first).to_be_visible()
    tools.get_by_role("button", name=re.compile("greet")).click()
    expect(tools).to_contain_text('"name"')
    tools.get_by_label("name", exact=True).fill("agent-form")
    tools.get_by_role("button", name="Try greet").click()
    expect(tools.get_by_test_id("call-status")).to_have_text("200")
    expect(tools.get_by_test_id("call-body")).to_contain_text("agent-form")
    assert_accessible(page, "agents")
    shoot(page, "agents")

    # Promote dev → staging → prod, each through the diff of what will change.
    page.get_by_role("link", name="Gateways").click()
    page.locator(f'tr[data-gateway="{gw}"]').get_by_role("link", name="Web console").click()
    page.get_by_role("link", name="greet").click()
    for stage in ("staging", "prod"):
        page.get_by_role("button", name="Promote…").click()
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_role("textbox", name="Promote to")).to_have_value(stage)
        diff = dialog.get_by_test_id("diff-editor")
        expect(diff.locator(".modified .view-lines[role=presentation]")).to_contain_text(
            'imp.log("hello", name)'
        )
        expect(diff.locator(".line-insert").first).to_be_attached()
        if stage == "prod":
            shoot(page, "promote-diff")
        dialog.get_by_role("button", name=f"Promote to {stage}").click()
        expect(page.get_by_test_id(f"published-{stage}")).to_have_text(f"{stage} v1")

    # History: a second version, its diff against the first, and the first restored as a third.
    page.get_by_test_id("code-editor").locator(".view-lines").click()
    page.keyboard.press("ControlOrMeta+End")
    page.keyboard.type("# second version")
    page.keyboard.press("ControlOrMeta+s")
    expect(page.get_by_text("draft v2", exact=True)).to_be_visible()  # not the "greet: draft v2" toast
    page.get_by_role("button", name="History").click()
    drawer = page.get_by_role("dialog", name="History")
    expect(drawer.get_by_role("button", name=re.compile("^v2"))).to_be_visible()
    drawer.get_by_role("button", name=re.compile("^v1")).click()
    diff = drawer.get_by_test_id("diff-editor")
    expect(diff.locator(".modified .view-lines[role=presentation]")).to_contain_text("# second version")
    expect(diff.locator(".original .view-lines[role=presentation]")).not_to_contain_text("# second version")
    shoot(page, "history")
    drawer.get_by_role("button", name="Restore v1").click()
    expect(page.get_by_text("draft v3", exact=True)).to_be_visible()
    expect(page.get_by_test_id("code-editor").locator(".view-lines")).not_to_contain_text("# second version")

    # The live logs of dev: the earlier calls, and one made while the page follows.
    page.get_by_role("link", name=gw).click()
    page.get_by_role("tab", name="Logs").click()
    logs = page.get_by_test_id("log-table")
    expect(logs).to_contain_text("hello console-call")
    expect(page.get_by_test_id("log-status")).to_have_text("live")
    marker = f"live-{uuid.uuid4().hex[:6]}"
    answer = httpx.post(
        f"{live_stack.data_plane_url}/{gw}/dev/greet",
        json={"name": marker},
        headers={"apikey": api_key},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    expect(logs).to_contain_text(f"hello {marker}")
    assert_accessible(page, "logs")
    shoot(page, "logs")

    # A secret variable is masked once set.
    page.get_by_role("tab", name="Variables").click()
    page.get_by_label("Name").fill("API_TOKEN")
    page.get_by_label("Value").fill("s3cret-value")
    page.get_by_label("Secret (masked, never shown again)").check()
    page.get_by_role("button", name="Set variable").click()
    variables = page.get_by_test_id("variable-table")
    expect(variables).to_contain_text("API_TOKEN")
    expect(variables).to_contain_text("never shown again")
    expect(variables).not_to_contain_text("s3cret-value")
    shoot(page, "variables")

    # Metrics: the calls made above, summed from the replicas' series (Ray exports them every few s).
    page.get_by_role("tab", name="Metrics").click()
    metrics_row = (
        page.get_by_test_id("metrics-table").locator("tbody tr", has_text="greet").filter(has_text="dev")
    )
    refresh = page.get_by_role("button", name="Refresh")

    def counted() -> bool:
        refresh.click()
        expect(refresh).to_be_enabled()
        return metrics_row.count() == 1 and int(metrics_row.locator("td").nth(2).inner_text()) >= 3

    assert eventually(counted, timeout=60, interval=1.0), "the dev calls never showed in the metrics"
    expect(page.get_by_role("link", name="Ray dashboard (operators)")).to_have_attribute(
        "href", live_stack.dashboard_url
    )
    assert_accessible(page, "metrics")
    shoot(page, "metrics")

    # Delete the gateway: confirmation, then it goes away.
    page.get_by_role("button", name=f"Delete {gw}").click()
    page.get_by_role("dialog").get_by_role("button", name=f"Delete {gw}").click()
    expect(page.get_by_role("heading", name="Gateways")).to_be_visible()
    expect(page.locator(f'tr[data-gateway="{gw}"]')).to_have_count(0, timeout=120_000)
