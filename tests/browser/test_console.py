"""The operator console in a real headless Chromium (Debian's ``chromium``, driven by
Playwright), against the gateway running as a process with its own broker (issue 7's browser
tests). Screenshots go to ``var/test-artifacts/console/`` (not in git).

Without /usr/bin/chromium the tests are skipped with the reason, unless
``IPGW_REQUIRE_BROWSER=1`` (``.ci/run`` sets it after installing the package): then they fail.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from gateway.demo.process import GatewayProcess
from gateway.demo.samples import ke_orgnr, make_notice
from gateway.demo.tokens import ROLE_SCOPES, PartyTokens, Role
from mappings.fhir.notice import notice_to_bundle

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
#: as the machine's notes advise: no background traffic out of this closed network
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts" / "console"
FHIR = {"content-type": "application/fhir+json"}


def ke_entry(nr: str, name: str) -> str:
    return (
        f'[[kommune]]\nnr = "{nr}"\nname = "{name}"\n[kommune.ke]\n'
        f'name = "Koordinerende enhet, {name} kommune"\nher_id = {99_000_000 + int(nr)}\n'
        f'orgnr = "{ke_orgnr(nr)}"\nadapter = "ke_inbox"\n'
    )


MOLDE = ke_entry("1506", "Molde")
KRISTIANSUND = ke_entry("1505", "Kristiansund")

if not Path(CHROMIUM).exists():
    reason = f"{CHROMIUM} is missing: apt-get install chromium"
    if os.environ.get("IPGW_REQUIRE_BROWSER") == "1":
        raise RuntimeError(reason)
    pytestmark = [pytestmark, pytest.mark.skip(reason=reason)]  # type: ignore[assignment]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    directory = tmp_path / "directory.toml"
    directory.write_text(KRISTIANSUND)  # Molde comes later: its notices go DEAD first
    gw = GatewayProcess(
        tmp_path,
        {"IPGW_DIRECTORY_FILE": str(directory), "IPGW_DIRECTORY_RELOAD_SECONDS": "0.5"},
    )
    gw.start()
    yield gw
    gw.stop()


def auth(gw: GatewayProcess) -> PartyTokens:
    """The tokens the tests' own calls carry (the development issuer's, as the console's)."""
    return gw.auth(operator="ops1", role="operator")


def page_as(browser: Browser, gw: GatewayProcess, operator: str, role: Role) -> Page:
    """The console with the operator's token pasted in, as an operator signs in."""
    token = gw.auth().mint("ipgw-console", ROLE_SCOPES[role], None, subject=operator)
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.goto(f"{gw.base_url}/console/")
    page.fill("#token", token)
    page.click("#who button")
    expect(page.get_by_test_id("whoami")).to_have_text(f"{operator} ({role})")
    return page


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def send(gw: GatewayProcess, seed: int, kommune: str) -> str:
    notice = make_notice(random.Random(seed), kommune)
    r = httpx.post(
        f"{gw.base_url}/fhir/$process-message",
        content=orjson.dumps(notice_to_bundle(notice)),
        headers=FHIR,
        timeout=10,
        auth=auth(gw),
    )
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def status_of(gw: GatewayProcess, message_id: str, want: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (
            httpx.get(f"{gw.base_url}/messages/{message_id}", auth=auth(gw)).json()["status"]
            == want
        ):
            return
        time.sleep(0.1)
    raise AssertionError(f"{message_id} never {want}")


def test_the_overview_shows_live_counts_while_traffic_flows(
    browser: Browser, gateway: GatewayProcess
) -> None:
    page = page_as(browser, gateway, "ops1", "viewer")
    expect(page.get_by_test_id("overview")).to_be_visible()
    ids = [send(gateway, 140 + i, "1505") for i in range(5)]
    for m in ids:
        status_of(gateway, m, "DELIVERED")
    # no reload: the page polls, and the count of delivered notices appears by itself
    now = page.get_by_test_id("statuses-now")
    expect(now.locator("tr", has_text="DELIVERED")).to_contain_text("5", timeout=10_000)
    expect(page.get_by_test_id("recipients")).to_contain_text("1505")
    stages = page.get_by_test_id("stages")
    expect(stages.locator("tr", has_text="deliver")).to_contain_text("DELIVERED 5")
    expect(page.get_by_test_id("adapters")).to_contain_text("ke_inbox")
    shot(page, "overview")


def test_search_finds_a_message_and_its_timeline_shows_every_step(
    browser: Browser, gateway: GatewayProcess
) -> None:
    message_id = send(gateway, 150, "1505")
    status_of(gateway, message_id, "DELIVERED")
    page = page_as(browser, gateway, "ops1", "operator")
    page.click("[data-nav=messages]")
    page.select_option("select[name=status]", "DELIVERED")
    page.click("[data-testid=search] button[type=submit]")
    rows = page.get_by_test_id("message-list").locator("tbody tr")
    expect(rows).to_have_count(1)
    rows.first.locator("a").click()
    timeline = page.get_by_test_id("timeline")
    for step in ("RECEIVED", "VALIDATED", "ROUTED", "DELIVERED"):
        expect(timeline).to_contain_text(step)
    expect(page.get_by_test_id("facts")).to_contain_text("født / born")
    shot(page, "message")


def test_retrying_a_dead_message_from_the_console_delivers_it(
    browser: Browser, gateway: GatewayProcess, tmp_path: Path
) -> None:
    message_id = send(gateway, 160, "1506")  # Molde has no KE in the directory yet
    status_of(gateway, message_id, "DEAD")
    (tmp_path / "directory.toml").write_text(KRISTIANSUND + MOLDE)
    r = httpx.post(f"{gateway.base_url}/ops/directory/reload", auth=auth(gateway))
    assert r.status_code == 200, r.text
    page = page_as(browser, gateway, "ops1", "operator")
    page.goto(f"{gateway.base_url}/console/#message/{message_id}")
    expect(page.get_by_test_id("facts")).to_contain_text("DEAD")
    page.once("dialog", lambda d: d.accept())
    page.get_by_test_id("retry").click()
    status_of(gateway, message_id, "DELIVERED")
    page.reload()
    expect(page.get_by_test_id("facts")).to_contain_text("DELIVERED")
    expect(page.get_by_test_id("timeline")).to_contain_text("operator:ops1")
    shot(page, "retried")


def test_a_role_without_content_rights_cannot_see_content(
    browser: Browser, gateway: GatewayProcess
) -> None:
    notice = make_notice(random.Random(170), "1505")
    message_id = send(gateway, 170, "1505")
    status_of(gateway, message_id, "DELIVERED")

    for role, allowed in (("operator", False), ("privileged", True)):
        page = page_as(browser, gateway, f"{role}1", role)
        page.goto(f"{gateway.base_url}/console/#message/{message_id}")
        expect(page.get_by_test_id("timeline")).to_be_visible()
        # masked by default: no person id, no name anywhere on the page
        text = page.content()
        assert notice.patient.person_id not in text
        assert notice.patient.name.family not in text
        page.once("dialog", lambda d: d.accept("the KE asks what was sent"))
        page.get_by_test_id("show-content").click()
        if allowed:
            expect(page.get_by_test_id("content-body")).to_contain_text(notice.need)
        else:
            expect(page.get_by_test_id("error")).to_contain_text("403")
            assert notice.need not in page.content()
        shot(page, f"content-{role}")
    audit = httpx.get(f"{gateway.base_url}/ops/audit", auth=auth(gateway)).json()
    looks = ("view-content", "content-denied")
    assert [(a["actor"], a["action"]) for a in audit if a["action"] in looks] == [
        ("operator:privileged1", "view-content"),
        ("operator:operator1", "content-denied"),
    ]


def test_a_split_kommunes_notice_is_routed_and_a_dead_one_discarded_from_the_console(
    browser: Browser, gateway: GatewayProcess, tmp_path: Path
) -> None:
    alesund = ke_entry("1508", "Ålesund")
    (tmp_path / "directory.toml").write_text(KRISTIANSUND + alesund)
    r = httpx.post(f"{gateway.base_url}/ops/directory/reload", auth=auth(gateway))
    assert r.status_code == 200, r.text
    split = send(gateway, 180, "1507")  # Ålesund 2020-2023: 1508 Ålesund or 1580 Haram now
    dead = send(gateway, 181, "1506")  # Molde: no KE in this directory
    status_of(gateway, split, "HELD_ROUTING")
    status_of(gateway, dead, "DEAD")
    page = page_as(browser, gateway, "ops2", "operator")

    page.goto(f"{gateway.base_url}/console/#message/{split}")
    expect(page.get_by_test_id("facts")).to_contain_text("1580")  # the reason names both
    page.get_by_test_id("route-kommune").fill("1508")
    page.once("dialog", lambda d: d.accept())
    page.get_by_test_id("route").click()
    status_of(gateway, split, "DELIVERED")
    expect(page.get_by_test_id("timeline")).to_contain_text("the operator named kommune 1508")
    shot(page, "routed")

    page.goto(f"{gateway.base_url}/console/#message/{dead}")
    expect(page.get_by_test_id("facts")).to_contain_text("DEAD")
    answers = iter(["Molde is served by another gateway", ""])
    page.on("dialog", lambda d: d.accept(next(answers)))
    page.get_by_test_id("discard").click()
    status_of(gateway, dead, "REJECTED")
    expect(page.get_by_test_id("timeline")).to_contain_text(
        "discarded: Molde is served by another gateway"
    )
    shot(page, "discarded")
