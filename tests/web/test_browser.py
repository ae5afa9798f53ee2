"""Browser tests: Chromium drives the real web app, over a real sandbox, through every page.

Each test gets its own web server, core (SQLite), sandbox and frozen clock (see the fixtures in
``tests/web/conftest.py``), and a fresh browser context; one Chromium serves every test of a
pytest-xdist worker. Background jobs (syncs) run on the test's thread with
``Worker.run_until_idle`` right where a person would wait for them, so every assertion sees a
settled state. What the pages show is compared with what the core says.

Every page visited is checked (labelled form controls, the favicon link) and saved as a
full-page screenshot under ``test-artifacts/screenshots/``, named after the test and the step.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from sophsync.core import accounts, connect, credentials, families, link, quota, sync
from sophsync.core.accounts import AccountView
from sophsync.core.families import Actor
from sophsync.jobs import defer_sync
from sophsync.sandbox import SandboxServer
from sophsync.store.models import AccountType, ConnectionStatus, Role, RunStatus
from sophsync.web.pages import format_kind, format_money, sparkline
from tests.conftest import ACCESS_KEY, TODAY, USER_ID
from tests.core.conftest import (
    Clock,
    advance,
    connect_and_link,
    connect_bank,
    institution_id,
)
from tests.web.browser import (
    CHROMIUM,
    LAUNCH_ARGS,
    PNG_SIGNATURE,
    SLOW,
    Snap,
    assert_fits_width,
    csrf_token,
    expect_transactions,
    log_in,
    run_jobs,
)
from tests.web.conftest import WebServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

EMAIL = "admin@example.com"
PASSWORD = "correct horse battery"
KID = "kid@example.com"
KID_PASSWORD = "another password"

ONE_QUESTION = ("What is your favorite color?",)
THREE_QUESTIONS = (
    "What is your favorite color?",
    "What was the name of your first pet?",
    "What is your mother's middle name?",  # sent by the bank as &#39;
)


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def backend() -> str:
    """Browser tests run on SQLite only: they are slow, and the pages call the same core
    services that the API and core tests check on both databases."""
    return "sqlite"


# Module-scoped, not session-scoped: Playwright's sync API keeps its event loop marked as
# running in this thread while it is open, so any later test of the same process that calls
# asyncio.run() (procrastinate's reaper, the web server fixtures) would fail.
@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"The browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium); "
            "Playwright's own browsers are never downloaded."
        )
    expect.set_options(timeout=10_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def open_page(chromium: Browser, web: WebServer) -> Iterator[Callable[..., Page]]:
    """Open a page in a new browser context (its own cookies: another person), 1200x800 unless
    told. A JavaScript error on any of them fails the test."""
    contexts = []
    errors: list[str] = []

    def open_(width: int = 1200, height: int = 800) -> Page:
        context = chromium.new_context(
            base_url=web.url, viewport={"width": width, "height": height}
        )
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
        return page

    yield open_
    for context in contexts:
        context.close()
    assert errors == [], f"JavaScript errors in the pages: {errors}"


@pytest.fixture
def page(open_page: Callable[..., Page]) -> Page:
    return open_page()


@pytest.fixture
def snap(request: pytest.FixtureRequest) -> Snap:
    return Snap(request.node.name)


@pytest.fixture
def smiths(web: WebServer) -> Actor:
    """The household's first admin, with the sandbox's Sophtron credentials saved."""
    actor = families.first_run(web.core, "The Smiths", EMAIL, PASSWORD)
    credentials.save_credentials(web.core, actor, USER_ID, ACCESS_KEY)
    return actor


@pytest.fixture
def admin_page(page: Page, smiths: Actor) -> Page:
    log_in(page, EMAIL, PASSWORD)
    return page


# --- steps ----------------------------------------------------------------------------------


def connect_in_browser(page: Page, snap: Snap, bank: str, username: str) -> int:
    """From the connect page: search the test banks, pick ``bank``, send a bank login. Returns
    the id of the connection whose dialog opens."""
    expect(page.get_by_role("heading", name="Connect a bank")).to_be_visible()
    page.get_by_label("Search your bank").fill("Sophtron Bank")
    results = page.get_by_role("list", name="Institutions")
    for name in BANK_NAMES:
        expect(results.get_by_text(name, exact=True)).to_be_visible()
    snap(page, "connect search")
    results.get_by_role("listitem").filter(has=page.get_by_text(bank, exact=True)).get_by_role(
        "button"
    ).click()
    expect(page.get_by_role("heading", name=f"Log in to {bank}")).to_be_visible()
    for label in ("User ID", "Password", "PIN"):  # the test banks' own labels, and the PIN
        expect(page.get_by_label(label)).to_be_editable()
    snap(page, "login form")
    page.get_by_label("User ID").fill(username)
    page.get_by_label("Password").fill("bank-password")
    page.get_by_role("button", name="Connect", exact=True).click()
    expect(page).to_have_url(re.compile(r"/connections/\d+/dialog$"))
    found = re.search(r"/connections/(\d+)/dialog$", page.url)
    assert found is not None
    return int(found.group(1))


def answer_captcha(page: Page, snap: Snap) -> None:
    image = page.get_by_role("img", name="Captcha image from the bank")
    expect(image).to_be_visible(timeout=SLOW)
    source = image.get_attribute("src") or ""
    prefix = "data:image/png;base64,"
    assert source.startswith(prefix), source[:60]
    assert base64.b64decode(source.removeprefix(prefix), validate=True).startswith(PNG_SIGNATURE)
    # ... and the browser decodes it into a picture.
    page.wait_for_function(
        "() => { const img = document.querySelector('img.captcha');"
        " return img && img.complete && img.naturalWidth > 0 && img.naturalHeight > 0; }"
    )
    snap(page, "captcha")
    page.get_by_label("Characters in the image").fill("K7QX2")
    page.get_by_role("button", name="Send", exact=True).click()


def answer_questions(page: Page, snap: Snap, questions: Sequence[str]) -> None:
    expect(page.get_by_label(questions[0], exact=True)).to_be_visible(timeout=SLOW)
    status = page.locator("#status")
    heading = "Security questions" if len(questions) > 1 else "Security question"
    expect(status.get_by_role("heading")).to_have_text(heading)
    expect(status.get_by_role("textbox")).to_have_count(len(questions))
    answers = ["blue", "rex", "ann"][: len(questions)]
    for question, answer in zip(questions, answers, strict=True):
        page.get_by_label(question, exact=True).fill(answer)
    snap(page, "security questions" if len(questions) > 1 else "security question")
    page.get_by_role("button", name=re.compile(r"^Send answers?$")).click()


def answer_token_method(page: Page, snap: Snap) -> None:
    methods = page.get_by_role("group", name="Where should the bank send your code?")
    expect(methods).to_be_visible(timeout=SLOW)
    expect(methods.get_by_role("radio")).to_have_count(3)
    expect(methods.get_by_role("radio").first).to_be_checked()
    # The option with odd spacing: the bank takes it only when sent back verbatim.
    methods.get_by_role("radio", name=re.compile("Email me")).check()
    snap(page, "token method")
    page.get_by_role("button", name="Send the code").click()


def answer_token_input(page: Page, snap: Snap) -> None:
    field = page.get_by_label("Enter the Token the bank sent you")
    expect(field).to_be_visible(timeout=SLOW)
    snap(page, "token input")
    field.fill("123456")
    page.get_by_role("button", name="Verify").click()


def confirm_by_phone(page: Page, snap: Snap) -> None:
    expect(page.get_by_role("heading", name="Confirm on your phone")).to_be_visible(timeout=SLOW)
    expect(page.locator("#status .code")).to_have_text(re.compile(r"^\d{6}$"))
    snap(page, "phone confirmation")
    page.get_by_role("button", name="I confirmed by phone").click()


STEPS: dict[str, Callable[[Page, Snap], None]] = {
    "captcha": answer_captcha,
    "question": lambda page, snap: answer_questions(page, snap, ONE_QUESTION),
    "questions": lambda page, snap: answer_questions(page, snap, THREE_QUESTIONS),
    "token_method": answer_token_method,
    "token_input": answer_token_input,
    "phone": confirm_by_phone,
}

#: Sophtron's seven test banks and the MFA steps each asks for, in order.
BANKS = {
    "Sophtron Bank": ("captcha", "question", "token_method", "token_input"),
    "Sophtron Bank NoMFA": (),
    "Sophtron Bank Captcha": ("captcha",),
    "Sophtron Bank SecurityQuestion": ("question",),
    "Sophtron Bank SecurityQuestion Multiple": ("questions",),
    "Sophtron Bank Token": ("token_method", "token_input"),
    "Sophtron Bank TokenRead": ("phone",),
}
BANK_NAMES = tuple(BANKS)


def expect_connected(page: Page, accounts_found: int) -> None:
    """The dialog ends connected, offering to link what the bank has."""
    expect(page.get_by_role("link", name="Link accounts")).to_be_visible(timeout=SLOW)
    expect(page.locator("#status").get_by_role("status")).to_have_text(
        f"Connected. Sophtron found {accounts_found} accounts."
    )


def expect_dashboard(page: Page, views: Sequence[AccountView]) -> None:
    """The dashboard shows these accounts with their balances, and their totals."""
    listed = page.get_by_role("region", name="Accounts")
    expect(listed.locator("tbody tr")).to_have_count(len(views))
    for view in views:
        row = listed.get_by_role("row").filter(
            has=page.get_by_role("link", name=view.name, exact=True)
        )
        expect(row).to_contain_text(format_money(view.balance_minor, view.currency))
        expect(row).to_contain_text(format_kind(view.type.value))
        if view.linked:
            expect(row).not_to_contain_text("not linked")
        else:
            expect(row).to_contain_text("not linked")
    summary = accounts.summarize(list(views))
    totals = page.get_by_role("region", name="Totals")
    expect(totals.get_by_test_id("net-worth")).to_have_text(
        [format_money(total.minor, total.currency) for total in summary.net_worth]
    )
    for kind, sums in summary.by_type:
        card = totals.locator(".card").filter(
            has=page.get_by_text(format_kind(kind.value), exact=True)
        )
        expect(card.locator(".value")).to_have_text(
            [format_money(total.minor, total.currency) for total in sums]
        )


def sync_now(page: Page, connections: int = 1) -> None:
    """Press the dashboard's "Sync now"; the syncs are queued."""
    page.goto("/")
    page.get_by_role("button", name="Sync now", exact=True).click()
    expect(page.get_by_role("status")).to_have_text(f"Sync queued for {connections} connection(s).")


def synced_login(server: WebServer, actor: Actor, username: str) -> connect.ConnectionView:
    """A login at Sophtron Bank NoMFA, connected, linked and synced through the core."""
    view = connect_and_link(server.core, actor, username=username)
    defer_sync(server.queue, view.id, trigger="link")
    run_jobs(server)
    return view


# --- first run, login -------------------------------------------------------------------------


def test_first_run_log_out_and_log_in_again(page: Page, web: WebServer, snap: Snap) -> None:
    page.goto("/")
    expect(page).to_have_url(f"{web.url}/setup")
    expect(page.get_by_role("heading", name="Welcome to sophsync")).to_be_visible()
    snap(page, "setup")
    page.get_by_label("Household name").fill("The Smiths")
    page.get_by_label("Your email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create household").click()

    expect(page).to_have_url(f"{web.url}/settings")
    expect(page.get_by_role("status")).to_have_text(
        "Welcome! Next, enter your Sophtron credentials."
    )
    expect(page.get_by_role("banner")).to_contain_text(f"{EMAIL} admin")
    snap(page, "settings")
    admin = families.authenticate(web.core, EMAIL, PASSWORD)
    assert admin.role is Role.ADMIN
    assert [person.email for person in families.list_users(web.core, admin)] == [EMAIL]

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{web.url}/login")
    snap(page, "login")
    page.goto("/setup")  # set up once only
    expect(page).to_have_url(f"{web.url}/login")
    page.goto("/")  # logged out: every page asks to log in first
    expect(page).to_have_url(f"{web.url}/login?next=%2F")

    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password")
    expect(page.get_by_label("Email")).to_have_value(EMAIL)
    expect(page.get_by_label("Password")).to_have_value("")
    snap(page, "wrong password")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{web.url}/")
    expect(page.get_by_role("heading", name="Nothing here yet")).to_be_visible()
    expect(page.get_by_role("link", name="Set up bank sync")).to_have_attribute(
        "href", "/settings#bank-sync"
    )
    snap(page, "dashboard")

    icon = page.request.get(f"{web.url}/static/favicon.svg")
    assert icon.status == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in icon.body()
    assert page.request.get(f"{web.url}/favicon.ico").status == 200  # redirected to the SVG


# --- Sophtron credentials -------------------------------------------------------------------


def test_sophtron_credentials(
    page: Page, web: WebServer, engine_sandbox: SandboxServer, snap: Snap
) -> None:
    admin = families.first_run(web.core, "The Smiths", EMAIL, PASSWORD)
    log_in(page, EMAIL, PASSWORD)
    page.get_by_role("link", name="Set up bank sync").click()
    expect(page).to_have_url(f"{web.url}/settings#bank-sync")
    section = page.locator("#bank-sync")
    expect(section).to_contain_text("No Sophtron credentials yet.")
    snap(page, "empty")

    def save(access_key: str) -> None:
        section.get_by_label("User ID").fill(USER_ID)
        section.get_by_label("Access Key").fill(access_key)
        section.get_by_label("Base URL").fill(engine_sandbox.url)
        section.get_by_role("button", name="Save and verify").click()

    save("not base64 at all!")
    expect(section.get_by_role("alert")).to_contain_text(
        "The Sophtron Access Key is not valid base64"
    )
    snap(page, "not base64")
    save(base64.b64encode(b"a key Sophtron never issued").decode())
    expect(section.get_by_role("alert")).to_contain_text(
        "Sophtron rejected this User ID and Access Key"
    )
    expect(section.get_by_role("alert")).to_contain_text("the Access Key is the base64 key")
    # The form keeps what was typed, except the key; nothing is saved.
    expect(section.get_by_label("User ID")).to_have_value(USER_ID)
    expect(section.get_by_label("Base URL")).to_have_value(engine_sandbox.url)
    expect(section.get_by_label("Access Key")).to_have_value("")
    expect(section).to_contain_text("No Sophtron credentials yet.")
    snap(page, "rejected")
    assert credentials.credentials_status(web.core, admin) is None

    save(ACCESS_KEY)
    saved = credentials.credentials_status(web.core, admin)
    assert saved is not None
    assert saved.customer_id
    expect(page.get_by_role("status")).to_have_text(
        f"Sophtron accepted the credentials (customer {saved.customer_id})."
    )
    assert (saved.user_id, saved.base_url) == (USER_ID, engine_sandbox.url)
    expect(section.get_by_test_id("sophtron-user")).to_have_text(USER_ID)
    expect(section.get_by_test_id("sophtron-customer")).to_have_text(saved.customer_id)
    expect(section.get_by_role("button", name="Verify and save")).to_be_visible()
    expect(section.get_by_test_id("requests-spent")).to_have_text(
        str(quota.usage(web.core, admin.family_id))
    )
    snap(page, "saved")


# --- connecting every test bank --------------------------------------------------------------


@pytest.mark.parametrize(
    ("bank", "steps"), [pytest.param(bank, steps, id=bank) for bank, steps in BANKS.items()]
)
def test_connect_each_test_bank(
    admin_page: Page,
    web: WebServer,
    smiths: Actor,
    snap: Snap,
    bank: str,
    steps: tuple[str, ...],
) -> None:
    page = admin_page
    if bank == "Sophtron Bank":
        snap.for_readme("captcha", "mfa-dialog.png")
    expect(page.get_by_role("heading", name="Nothing here yet")).to_be_visible()
    page.get_by_role("link", name="Connect a bank").click()
    connection_id = connect_in_browser(page, snap, bank, "dana")
    expect(page.get_by_role("heading", name=bank)).to_be_visible()

    for step in steps:
        STEPS[step](page, snap)

    expect_connected(page, 6)
    snap(page, "connected")
    view = connect.get_connection(web.core, smiths, connection_id)
    assert view.status is ConnectionStatus.CONNECTED
    assert view.institution_name == bank
    assert len(link.provider_accounts(web.core, smiths, connection_id)) == 6
    page.get_by_role("link", name="Link accounts").click()
    expect(page.get_by_role("heading", name=f"Link accounts from {bank}")).to_be_visible()
    expect(page.get_by_role("group")).to_have_count(6)
    snap(page, "link")


def test_timed_out_connection_checked_again(
    admin_page: Page, web: WebServer, smiths: Actor, clock: Clock, snap: Snap
) -> None:
    page = admin_page
    page.goto("/connect")
    # Each step of this login's job takes 5 s: the bank is still busy at the dialog's next poll.
    connection_id = connect_in_browser(page, snap, "Sophtron Bank NoMFA", "slow+job-seconds=5")
    expect(page.locator("#status")).to_contain_text("Working with the bank...")
    # Past connect_timeout_seconds (240 s) by the core's clock: the next poll gives up waiting.
    clock.advance(seconds=300)
    expect(page.get_by_role("button", name="Check again")).to_be_visible(timeout=SLOW)
    expect(page.get_by_role("button", name="Start over")).to_be_visible()
    expect(page.locator("#status").get_by_role("alert")).to_have_text(connect.MESSAGES["timed_out"])
    snap(page, "timed out")
    view = connect.get_connection(web.core, smiths, connection_id)
    assert view.status is ConnectionStatus.TIMED_OUT

    page.get_by_role("button", name="Check again").click()
    expect_connected(page, 6)
    snap(page, "connected")
    view = connect.get_connection(web.core, smiths, connection_id)
    assert view.status is ConnectionStatus.CONNECTED


# --- linking ----------------------------------------------------------------------------------


def test_link_new_and_existing_accounts(
    admin_page: Page, web: WebServer, smiths: Actor, snap: Snap
) -> None:
    core = web.core
    page = admin_page
    snap.for_readme("dashboard linked", "dashboard.png")
    page.goto("/connect")
    connection_id = connect_in_browser(page, snap, "Sophtron Bank NoMFA", "lee+accounts=8")
    expect_connected(page, 8)
    page.get_by_role("link", name="Link accounts").click()
    sources = {p.name: p for p in link.provider_accounts(core, smiths, connection_id)}
    assert len(sources) == 8

    def fieldset(name: str) -> Locator:
        return page.get_by_role("group", name=re.compile(f"^{re.escape(name)} "))

    expect(page.get_by_role("group")).to_have_count(8)
    checking = fieldset("Primary Checking")
    checking.get_by_label("Name", exact=True).fill("Joint checking")
    checking.get_by_label("Sync start date").fill("2026-09-01")
    fieldset("High Yield Savings").get_by_label("Name", exact=True).fill("Emergency fund")
    bill = fieldset("Electric Service")
    bill.get_by_label("Name", exact=True).fill("Electricity")
    bill.get_by_label("Type", exact=True).select_option(label="Loan")
    bill.get_by_label("Subtype").fill("utility")
    # The money market account is skipped for now.
    fieldset("Money Market").get_by_label("Link this account").uncheck()
    snap(page, "link form")
    page.get_by_role("button", name="Link and sync").click()
    expect(page).to_have_url(f"{web.url}/")
    expect(page.get_by_role("status")).to_have_text(
        "Linked 7 account(s). The first sync is on its way."
    )
    run_jobs(web)

    views = {view.name: view for view in accounts.list_accounts(core, smiths)}
    assert sorted(views) == sorted(
        [
            "Joint checking",
            "Emergency fund",
            "Rewards Visa Signature",
            "Home Mortgage",
            "Individual Brokerage",
            "Electricity",
            "Auto Loan",
        ]
    )
    joint = views["Joint checking"]
    assert joint.sync_start_date == dt.date(2026, 9, 1)
    assert (joint.type, joint.subtype) == (AccountType.DEPOSITORY, "Checking")
    assert joint.balance_minor == sources["Primary Checking"].balance_minor
    rows = accounts.list_transactions(core, smiths, account_id=joint.id, limit=1000)
    assert rows
    assert min(row.date for row in rows) >= dt.date(2026, 9, 1)
    electricity = views["Electricity"]
    assert (electricity.type, electricity.subtype) == (AccountType.LOAN, "utility")
    assert all(view.last_synced_at is not None for view in views.values())
    page.reload()
    expect_dashboard(page, list(views.values()))
    snap(page, "dashboard")

    # The connection's page shows the skipped account, still to link.
    page.get_by_role("region", name="Bank connections").get_by_role(
        "link", name="Sophtron Bank NoMFA"
    ).click()
    found = page.get_by_role("region", name="Accounts at the bank")
    expect(found.locator("tbody tr")).to_have_count(8)
    expect(found.get_by_role("row").filter(has_text="Money Market")).to_contain_text("not linked")
    expect(page.get_by_role("link", name="Link accounts")).to_be_visible()
    snap(page, "connection")

    # The emergency fund moved to the money market: unlink the account on its own page, and
    # link the skipped money market to it; its history stays.
    emergency = views["Emergency fund"]
    history = accounts.list_transactions(core, smiths, account_id=emergency.id, limit=1000)
    assert history
    page.get_by_role("link", name="Dashboard").click()
    page.get_by_role("link", name="Emergency fund").click()
    expect(page.get_by_role("heading", name="Emergency fund")).to_be_visible()
    expect(page.get_by_test_id("balance")).to_have_text(
        format_money(emergency.balance_minor, emergency.currency)
    )
    expect_transactions(page, history[:50])
    snap(page, "account")
    page.get_by_role("button", name="Unlink from the bank").click()
    expect(page.get_by_role("status")).to_have_text(
        "Unlinked. The account keeps its history; syncs leave it alone."
    )
    assert not accounts.get_account(core, smiths, emergency.id).linked
    chooser = page.get_by_label("Link to a bank account")

    def option(name: str) -> str:
        source = sources[name]
        return f"{source.name} ···{source.mask} ({format_kind(source.kind.value)})"

    expect(chooser.get_by_role("option")).to_have_text(
        ["Choose…", option("High Yield Savings"), option("Money Market")]
    )
    snap(page, "unlinked")
    chooser.select_option(label=option("Money Market"))
    page.get_by_role("button", name="Link", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Linked. The first sync is on its way.")
    run_jobs(web)

    linked = {p.name: p.linked_account_id for p in link.provider_accounts(core, smiths)}
    assert linked["Money Market"] == emergency.id
    assert linked["High Yield Savings"] is None
    moved = accounts.get_account(core, smiths, emergency.id)
    assert moved.linked
    assert moved.balance_minor == sources["Money Market"].balance_minor
    page.reload()
    expect(page.get_by_test_id("balance")).to_have_text(
        format_money(moved.balance_minor, moved.currency)
    )
    # (That the history survives in full is test_linking_to_an_existing_account_keeps_history.)
    kept = accounts.list_transactions(core, smiths, account_id=emergency.id, limit=1000)
    expect_transactions(page, kept[:50])
    expect(page.get_by_role("button", name="Unlink from the bank")).to_be_visible()
    snap(page, "linked to existing")

    page.get_by_role("link", name="Dashboard").click()
    expect_dashboard(page, accounts.list_accounts(core, smiths))
    snap(page, "dashboard linked")


def test_linking_to_an_existing_account_keeps_history(
    admin_page: Page, web: WebServer, smiths: Actor, snap: Snap
) -> None:
    core = web.core
    page = admin_page
    connection = connect_bank(core, smiths, username="moving+accounts=8")
    sources = {p.name: p for p in link.provider_accounts(core, smiths, connection.id)}
    for name, source in sources.items():
        if name != "Money Market":
            link.link_new(core, smiths, source.id, history_days=365)
    defer_sync(web.queue, connection.id, trigger="link")
    run_jobs(web)
    savings = next(
        a for a in accounts.list_accounts(core, smiths) if a.name == "High Yield Savings"
    )
    history = accounts.list_transactions(core, smiths, account_id=savings.id, limit=1000)
    assert history

    page.goto("/")
    page.get_by_role("link", name="High Yield Savings").click()
    page.get_by_role("button", name="Unlink from the bank").click()
    page.get_by_label("Link to a bank account").select_option(
        label=f"Money Market ···{sources['Money Market'].mask} (Depository)"
    )
    page.get_by_role("button", name="Link", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Linked. The first sync is on its way.")
    run_jobs(web)
    page.reload()
    snap(page, "linked to existing")

    kept = accounts.list_transactions(core, smiths, account_id=savings.id, limit=1000)
    lost = sorted({row.id for row in history} - {row.id for row in kept})
    assert lost == [], [(row.date, row.description) for row in history if row.id in lost]
    # The new source's own history arrives too, from the account's sync start date on.
    money_market = [row for row in kept if row.id not in {old.id for old in history}]
    assert money_market
    assert min(row.date for row in money_market) < TODAY - dt.timedelta(days=60)


# --- transactions -----------------------------------------------------------------------------


def test_transactions_filters_and_pages(
    admin_page: Page,
    web: WebServer,
    smiths: Actor,
    engine_sandbox: SandboxServer,
    clock: Clock,
    snap: Snap,
) -> None:
    core = web.core
    page = admin_page
    connection = connect_and_link(core, smiths, username="reader+accounts=3")
    sync_now(page)
    run_jobs(web)
    # A day later, another sync: the balance history has two points.
    advance(engine_sandbox, clock, days=1)
    sync_now(page)
    run_jobs(web)
    runs = sync.sync_runs(core, smiths, connection_id=connection.id)
    assert [run.status for run in runs] == [RunStatus.SUCCEEDED, RunStatus.SUCCEEDED]

    everything = accounts.list_transactions(core, smiths, limit=1000)
    assert len(everything) > 100
    newest = accounts.list_transactions(core, smiths, limit=50)
    older = accounts.list_transactions(core, smiths, after_id=newest[-1].id, limit=50)
    assert newest + older == everything[:100]
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Transactions").click()
    expect(page.get_by_role("heading", name="Transactions", exact=True).first).to_be_visible()
    expect_transactions(page, newest)
    expect(page.get_by_role("link", name="« Newest")).to_have_count(0)
    snap(page, "transactions")

    page.get_by_role("link", name="Older »").click()
    expect(page).to_have_url(re.compile(rf"cursor={newest[-1].id}"))
    expect_transactions(page, older)
    snap(page, "older")
    page.get_by_role("link", name="« Newest").click()
    expect_transactions(page, newest)
    expect(page.get_by_role("link", name="« Newest")).to_have_count(0)

    merchant, _ = Counter(row.merchant for row in everything if row.merchant).most_common(1)[0]
    term = merchant.lower()  # the search ignores case
    found = accounts.list_transactions(core, smiths, search=term, limit=1000)
    assert 0 < len(found) < len(everything)
    page.get_by_label("Search").fill(term)
    expect_transactions(page, found[:50])
    page.wait_for_url(lambda url: parse_qs(urlsplit(url).query).get("q") == [term])
    snap(page, "search")
    page.get_by_label("Search").fill("")
    expect_transactions(page, newest)

    pending = accounts.list_transactions(core, smiths, pending=True, limit=1000)
    assert pending, "the sandbox's card purchases of the last days are pending"
    page.get_by_label("Pending", exact=True).select_option(label="Pending only")
    expect_transactions(page, pending[:50])
    expect(page.locator("#transactions tbody .badge.pending")).to_have_count(len(pending[:50]))
    snap(page, "pending")
    posted = accounts.list_transactions(core, smiths, pending=False, limit=50)
    page.get_by_label("Pending", exact=True).select_option(label="Posted only")
    expect_transactions(page, posted)
    page.get_by_label("Pending", exact=True).select_option(label="Pending and posted")
    expect_transactions(page, newest)

    sized = accounts.list_transactions(
        core, smiths, min_amount=Decimal(100), max_amount=Decimal(250), limit=1000
    )
    assert 0 < len(sized) < len(everything)
    page.get_by_label("Amount from").fill("100")
    page.get_by_label("Amount to").fill("250")
    page.get_by_role("button", name="Filter").click()
    expect_transactions(page, sized[:50])
    snap(page, "amount")

    views = {view.name: view for view in accounts.list_accounts(core, smiths)}
    checking = views["Primary Checking"]
    page.goto("/transactions")
    page.get_by_label("Account", exact=True).select_option(label="Primary Checking")
    in_checking = accounts.list_transactions(core, smiths, account_id=checking.id, limit=1000)
    expect_transactions(page, in_checking[:50])
    snap(page, "account filter")

    # The account's own page: balance, balance history, its transactions and their filters.
    page.get_by_role("link", name="Dashboard").click()
    page.get_by_role("link", name="Primary Checking").click()
    expect(page.get_by_role("heading", name="Primary Checking")).to_be_visible()
    expect(page.get_by_test_id("balance")).to_have_text(
        format_money(checking.balance_minor, checking.currency)
    )
    history = accounts.balance_history(core, smiths, checking.id)
    assert len(history) == 2
    (first_day, first), (last_day, last) = history
    chart = page.get_by_role(
        "img",
        name=f"Balance from {first_day} ({format_money(first, checking.currency)}) "
        f"to {last_day} ({format_money(last, checking.currency)})",
    )
    expect(chart.locator("polyline")).to_have_attribute("points", sparkline(history))
    expect_transactions(page, in_checking[:50])
    expect(page.get_by_role("link", name="Older »")).to_be_visible()
    snap(page, "account")
    word = in_checking[0].description.split()[0].lower()
    matching = accounts.list_transactions(
        core, smiths, account_id=checking.id, search=word, limit=1000
    )
    page.get_by_label("Search").fill(word)
    expect_transactions(page, matching[:50])
    snap(page, "account search")


# --- a member -------------------------------------------------------------------------------


def test_member_sees_everything_and_changes_nothing(
    open_page: Callable[..., Page], web: WebServer, smiths: Actor, snap: Snap
) -> None:
    core = web.core
    connection = synced_login(web, smiths, "family+accounts=2")
    admin = open_page()
    log_in(admin, EMAIL, PASSWORD)
    admin.get_by_role("link", name="Settings").click()
    people = admin.locator("#members")
    people.get_by_label("Email", exact=True).fill(KID)
    people.get_by_label("Password", exact=True).fill(KID_PASSWORD)
    people.get_by_label("Role", exact=True).select_option("member")
    snap(admin, "add member")
    people.get_by_role("button", name="Add").click()
    expect(admin.get_by_role("status")).to_have_text(f"{KID} can now log in as member.")
    expect(admin.get_by_label(f"Role of {KID}")).to_have_value("member")
    snap(admin, "member added")
    assert families.authenticate(core, KID, KID_PASSWORD).role is Role.MEMBER

    member = open_page()
    log_in(member, KID, KID_PASSWORD)
    views = accounts.list_accounts(core, smiths)
    expect(member.get_by_role("banner")).to_contain_text(f"{KID} member")
    expect_dashboard(member, views)
    expect(member.get_by_role("region", name="Bank connections")).to_contain_text("Connected")
    main = member.locator("main")
    for name in ("Connect a bank", "Reconnect", "Open", "Link accounts"):
        expect(main.get_by_role("link", name=name, exact=True)).to_have_count(0)
    expect(main.get_by_role("button")).to_have_count(0)
    expect(main.locator('form[method="post"]')).to_have_count(0)
    snap(member, "member dashboard")

    account = views[0]
    member.get_by_role("link", name=account.name).click()
    expect(member.get_by_role("heading", name=account.name)).to_be_visible()
    expect(member.get_by_role("heading", name="Account settings")).to_have_count(0)
    expect(main.locator('form[method="post"]')).to_have_count(0)
    expect(main.get_by_role("button")).to_have_text(["Filter"])
    snap(member, "member account")

    member.goto(f"/connections/{connection.id}")
    expect(member.get_by_role("heading", name="Sophtron Bank NoMFA")).to_be_visible()
    expect(main.locator('form[method="post"]')).to_have_count(0)
    expect(main.get_by_role("button")).to_have_count(0)
    snap(member, "member connection")

    member.get_by_role("link", name="Settings").click()
    saved = credentials.credentials_status(core, smiths)
    assert saved is not None
    expect(member.get_by_test_id("sophtron-customer")).to_have_text(saved.customer_id or "")
    for label in ("User ID", "Access Key", "Base URL", f"Role of {EMAIL}", "Email"):
        expect(member.get_by_label(label, exact=True)).to_have_count(0)
    # Only their own personal access tokens are theirs to change.
    expect(main.locator('form[method="post"]')).to_have_count(1)
    expect(main.get_by_role("button")).to_have_text(["Create token"])
    snap(member, "member settings")

    # The forms are absent, and the endpoints behind them refuse a member's request.
    token = csrf_token(member)
    refused = {
        "/sync": {},
        f"/connections/{connection.id}/sync": {},
        f"/connections/{connection.id}/link": {},
        f"/connections/{connection.id}/remove": {},
        f"/accounts/{account.id}": {"name": "Mine now"},
        f"/accounts/{account.id}/unlink": {},
        "/settings/credentials": {"user_id": USER_ID, "access_key": ACCESS_KEY},
        "/settings/members": {"email": "friend@example.com", "password": "a long password"},
        f"/settings/members/{smiths.user_id}/role": {"role": "member"},
        "/connect": {"institution_id": "x", "username": "u", "password": "p"},
    }
    for path, fields in refused.items():
        response = member.request.post(f"{web.url}{path}", form={"csrf_token": token, **fields})
        assert response.status == 403, (path, response.status, response.text())
        assert "Only a family admin can" in response.text(), path
    for path in ("/connect", f"/connections/{connection.id}/dialog"):
        response = member.goto(path)
        assert response is not None
        assert response.status == 403, path
        expect(member.get_by_role("heading", name="Not allowed")).to_be_visible()
    snap(member, "member connect refused")

    # Nothing changed.
    assert web.queue.pending() == 0
    assert accounts.list_accounts(core, smiths) == views
    assert len(families.list_users(core, smiths)) == 2
    assert families.get_actor(core, smiths.user_id).role is Role.ADMIN
    assert connect.get_connection(core, smiths, connection.id).status is (
        ConnectionStatus.CONNECTED
    )


# --- a sync that asks for MFA again ----------------------------------------------------------


def test_requires_update_reconnect(
    admin_page: Page, web: WebServer, smiths: Actor, clock: Clock, snap: Snap
) -> None:
    core = web.core
    page = admin_page
    page.goto("/connect")
    # This login asks a security question at every refresh after connecting.
    connection_id = connect_in_browser(page, snap, "Sophtron Bank NoMFA", "pat+mfa-again")
    expect_connected(page, 6)
    page.get_by_role("link", name="Link accounts").click()
    page.get_by_role("button", name="Link and sync").click()
    expect(page.get_by_role("status")).to_contain_text("Linked 6 account(s).")
    run_jobs(web)  # right after connecting, the data is fresh: no refresh, no question

    clock.advance(seconds=sync.FRESH_SECONDS + 60)
    sync_now(page)
    run_jobs(web)  # the refresh asks the question: the sync stops and waits for a person
    view = connect.get_connection(core, smiths, connection_id)
    assert view.status is ConnectionStatus.REQUIRES_UPDATE
    page.reload()
    banner = page.get_by_role("alert").filter(has_text="needs you")
    expect(banner).to_contain_text(f"Sophtron Bank NoMFA needs you: {view.message}")
    snap(page, "requires update banner")

    banner.get_by_role("link", name="Reconnect").click()
    expect(page).to_have_url(f"{web.url}/connections/{connection_id}/dialog")
    expect(page.locator("#status")).to_contain_text(view.message)
    answer_questions(page, snap, ONE_QUESTION)
    expect(page.locator("#status").get_by_role("status")).to_have_text(
        "Connected. The sync picks up where it stopped."
    )
    expect(page.get_by_role("link", name="Go to the dashboard")).to_be_visible()
    snap(page, "reconnected")
    run_jobs(web)  # the sync that reconnecting queued

    runs = sync.sync_runs(core, smiths, connection_id=connection_id)
    assert [(run.status, run.trigger) for run in runs] == [
        (RunStatus.SUCCEEDED, "resume"),
        (RunStatus.NEEDS_INPUT, "manual"),
        (RunStatus.SUCCEEDED, "link"),
    ]
    page.get_by_role("link", name="Go to the dashboard").click()
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(page.get_by_role("region", name="Bank connections")).to_contain_text("Connected")
    page.get_by_role("link", name="All sync runs").click()
    rows = page.locator("main tbody tr")
    expect(rows).to_have_count(3)
    for row, status in zip(
        rows.all(), ["Succeeded resume", "Needs input manual", "Succeeded link"], strict=True
    ):
        expect(row).to_contain_text(status)
    snap(page, "runs")


# --- a phone-sized screen -------------------------------------------------------------------


def test_phone_sized_screen(
    open_page: Callable[..., Page], web: WebServer, smiths: Actor, snap: Snap
) -> None:
    core = web.core
    connection = synced_login(web, smiths, "pocket+accounts=3")
    waiting = connect.start_connection(
        core, smiths, institution_id(core, smiths, "Sophtron Bank"), "pocket", "bank-password"
    )
    waiting = connect.wait_for_connection(core, waiting.id, interval=0, timeout=30)
    assert waiting.prompt is not None
    assert waiting.prompt.kind == "captcha"
    checking = accounts.list_accounts(core, smiths)[0]

    page = open_page(390, 844)
    page.goto("/login")
    assert_fits_width(page, 390)
    snap(page, "login")
    log_in(page, EMAIL, PASSWORD)
    pages = [
        ("/", "Dashboard"),
        (f"/connections/{waiting.id}/dialog", "Sophtron Bank"),
        ("/transactions", "Transactions"),
        (f"/accounts/{checking.id}", checking.name),
        (f"/connections/{connection.id}", "Sophtron Bank NoMFA"),
        ("/connect", "Connect a bank"),
        ("/runs", "Sync runs"),
        ("/settings", "Settings"),
    ]
    for path, heading in pages:
        page.goto(path)
        expect(page.get_by_role("heading", name=heading, exact=True).first).to_be_visible()
        assert_fits_width(page, 390)
        snap(page, heading)
