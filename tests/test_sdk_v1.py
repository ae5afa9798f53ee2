"""Every v1 method of ``Client`` (and the main flow with ``AsyncClient``) against the sandbox."""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sophsync.sandbox import SandboxServer
from sophsync.sophtron import (
    Account,
    AccountKind,
    AsyncClient,
    Client,
    Institution,
    Job,
    JobState,
    JobTracker,
    NotFound,
    Transaction,
    UserInstitution,
)
from sophsync.sophtron import client as client_module
from tests.conftest import ACCESS_KEY, FAST, TODAY, USER_ID, admin

#: Sophtron's test banks (names and InstitutionIDs of UCW's testInstitutions.json).
TEST_BANK_IDS = {
    "Sophtron Bank": "8d0d9991-5e35-4b82-afa4-e93695e5ca7d",
    "Sophtron Bank Captcha": "8ad00f00-72b7-4642-a0de-b3f31e08510a",
    "Sophtron Bank Token": "337fe0c2-476e-46f5-a360-bf33f9fe1937",
    "Sophtron Bank NoMFA": "926623ca-5952-4921-8f77-2023f1cdde8e",
    "Sophtron Bank SecurityQuestion": "8809dee7-9e23-4039-a723-02bc01fce0f2",
    "Sophtron Bank SecurityQuestion Multiple": "8f32ccc1-acaf-4e6b-93b8-1f2cd398647d",
    "Sophtron Bank TokenRead": "0fe7236b-079a-4fe6-aed9-cf194790a553",
}
NO_MFA = TEST_BANK_IDS["Sophtron Bank NoMFA"]
ZERO_GUID = "00000000-0000-0000-0000-000000000000"
CENT = Decimal("0.01")

#: A recent window with both pending and posted transactions (``daily=4``: many purchases).
RECENT = (TODAY - dt.timedelta(days=45), TODAY)
BUSY = "+daily=4"


def route_count(sandbox: SandboxServer, route: str) -> int:
    """How many answered requests the sandbox has counted for ``route`` (any status)."""
    stats = admin(sandbox, "GET", "stats")
    return sum(stats["routes"].get(route, {}).values())


def assert_transactions(
    transactions: list[Transaction], account_id: str, start: dt.date, end: dt.date
) -> None:
    for txn in transactions:
        assert isinstance(txn, Transaction)
        assert isinstance(txn.amount, Decimal)
        assert txn.amount == txn.amount.quantize(CENT)
        assert txn.amount != 0
        assert txn.transaction_id
        assert txn.id
        assert txn.account_id == account_id
        assert txn.user_id == USER_ID
        assert txn.booked_on is not None
        assert start <= txn.booked_on <= end
        assert txn.status in {"Pending", "Posted"}
        if txn.pending:
            assert txn.post_date is None
            assert txn.balance is None
        else:
            assert txn.post_date is not None
            assert txn.post_date >= txn.booked_on
            assert isinstance(txn.balance, Decimal)
        assert txn.currency == "USD"
        assert txn.description


@pytest.fixture(scope="module")
def nomfa_login(sandbox: SandboxServer) -> Iterator[JobTracker]:
    """A connected NoMFA login, shared by the read-only tests of this module."""
    with Client(USER_ID, ACCESS_KEY, base_url=sandbox.url, **FAST) as sophtron:
        tracker = sophtron.create_user_institution(NO_MFA, f"v1-shared-login{BUSY}", "asdf")
        status = sophtron.wait_for_job(tracker.job_id)
        assert status.state is JobState.SUCCEEDED
        yield tracker


@pytest.fixture(scope="module")
def nomfa_accounts(sandbox: SandboxServer, nomfa_login: JobTracker) -> list[Account]:
    with Client(USER_ID, ACCESS_KEY, base_url=sandbox.url, **FAST) as sophtron:
        assert nomfa_login.login_id is not None
        return sophtron.get_user_institution_accounts(nomfa_login.login_id)


# --- institutions -----------------------------------------------------------------------------


def test_health_check_auth(client: Client) -> None:
    assert client.health_check_auth() == "this is online."


@pytest.mark.parametrize(
    "query", ["sophtron bank", "Sophtron Bank", "SOPHTRON BANK", "bank  sophtron", " sOpHtRoN "]
)
def test_get_institution_by_name_finds_every_test_bank(client: Client, query: str) -> None:
    found = client.get_institution_by_name(query)
    assert all(isinstance(institution, Institution) for institution in found)
    assert {i.institution_name: i.institution_id for i in found} == TEST_BANK_IDS
    assert len(found) == len(TEST_BANK_IDS)
    # The shortest, exact name ranks first (samples take ``[0]``).
    assert found[0].institution_name == "Sophtron Bank"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "sophtron securityquestion",
            {"Sophtron Bank SecurityQuestion", "Sophtron Bank SecurityQuestion Multiple"},
        ),
        ("Sophtron Bank SecurityQuestion Multiple", {"Sophtron Bank SecurityQuestion Multiple"}),
        ("token sophtron", {"Sophtron Bank Token", "Sophtron Bank TokenRead"}),
        ("sophtron bank nomfa", {"Sophtron Bank NoMFA"}),
        ("sophtron bank no-such-word", set()),
    ],
)
def test_get_institution_by_name_multi_word(client: Client, query: str, expected: set[str]) -> None:
    assert {i.institution_name for i in client.get_institution_by_name(query)} == expected


def test_get_institution_by_name_exact_name_ranks_first(client: Client) -> None:
    found = client.get_institution_by_name("Sophtron Bank Token")
    assert [i.institution_name for i in found] == ["Sophtron Bank Token", "Sophtron Bank TokenRead"]


def test_get_institution_by_name_with_extensive_and_type(client: Client) -> None:
    found = client.get_institution_by_name("sophtron bank", extensive=True, institution_type="All")
    assert {i.institution_name for i in found} == set(TEST_BANK_IDS)


def test_get_institution_by_name_searches_the_catalogue(client: Client) -> None:
    found = client.get_institution_by_name("credit union")
    assert len(found) > 20
    assert all("credit union" in i.institution_name.lower() for i in found)
    assert len({i.institution_id for i in found}) == len(found)


@pytest.mark.parametrize(("name", "institution_id"), sorted(TEST_BANK_IDS.items()))
def test_get_institution_by_id(client: Client, name: str, institution_id: str) -> None:
    institution = client.get_institution_by_id(institution_id)
    assert isinstance(institution, Institution)
    assert institution.institution_id == institution_id
    assert institution.institution_name == name
    assert institution.url == "https://sophtron.com"
    assert institution.country_code == "US"
    assert institution.institution_detail is not None
    assert institution.institution_detail.login_form_user_name == "User ID"
    assert institution.institution_detail.needs_password
    assert institution.routing_numbers == []


def test_get_institution_by_id_ignores_case(client: Client) -> None:
    institution = client.get_institution_by_id(NO_MFA.upper())
    assert institution.institution_id == NO_MFA


def test_get_institution_by_id_unknown(client: Client) -> None:
    with pytest.raises(NotFound) as raised:
        client.get_institution_by_id("11111111-2222-3333-4444-555555555555")
    assert raised.value.status_code == 404


def test_get_institution_by_routing_number(client: Client) -> None:
    candidates = [i for i in client.get_institution_by_name("bank") if i.routing_numbers]
    assert candidates, "the catalogue has banks with routing numbers"
    bank = candidates[0]
    for number in bank.routing_numbers:
        assert len(number) == 9
        assert number.isdigit()
        found = client.get_institution_by_routing_number(number)
        assert bank.institution_id in {i.institution_id for i in found}
        assert all(number in i.routing_numbers for i in found)
        match = next(i for i in found if i.institution_id == bank.institution_id)
        assert match.institution_name == bank.institution_name


def test_get_institution_by_routing_number_with_two_numbers(client: Client) -> None:
    found = client.get_institution_by_name("credit union") + client.get_institution_by_name("bank")
    several = [i for i in found if len(i.routing_numbers) > 1]
    assert several, "some catalogue institutions list more than one routing number"
    institution = several[0]
    second = institution.routing_numbers[1]
    assert institution.institution_id in {
        i.institution_id for i in client.get_institution_by_routing_number(second)
    }


def test_get_institution_by_routing_number_unknown(client: Client) -> None:
    assert client.get_institution_by_routing_number("000000000") == []


# --- creating logins --------------------------------------------------------------------------

VARIANT_ROUTES = {
    "default": "POST /api/UserInstitution/CreateUserInstitution",
    "refresh": "POST /api/UserInstitution/CreateUserInstitutionWithRefresh",
    "full_history": "POST /api/UserInstitution/CreateUserInstitutionWithFullHistory",
}


@pytest.mark.parametrize("variant", sorted(VARIANT_ROUTES))
def test_create_user_institution_variants(
    client: Client, sandbox: SandboxServer, variant: str
) -> None:
    before = {name: route_count(sandbox, route) for name, route in VARIANT_ROUTES.items()}
    username = f"v1-create-{variant}"
    tracker = client.create_user_institution(NO_MFA, username, "asdf", variant=variant)
    after = {name: route_count(sandbox, route) for name, route in VARIANT_ROUTES.items()}
    assert {name: after[name] - before[name] for name in before} == {
        name: int(name == variant) for name in VARIANT_ROUTES
    }
    assert isinstance(tracker, JobTracker)
    assert tracker.job_id
    assert tracker.login_id == tracker.user_institution_id
    assert tracker.login_id

    status = client.wait_for_job(tracker.job_id)
    assert status.state is JobState.SUCCEEDED
    assert status.done
    assert status.accounts_ready
    assert status.prompt is None
    assert status.failure is None
    assert status.job.job_id == tracker.job_id
    assert status.job.user_institution_id == tracker.login_id

    login = client.get_user_institution_by_id(tracker.login_id)
    assert login.user_name == username
    assert login.institution_id == NO_MFA


def test_create_user_institution_rejects_an_unknown_variant(client: Client) -> None:
    with pytest.raises(ValueError, match="variant"):
        client.create_user_institution(NO_MFA, "v1-bad-variant", "asdf", variant="everything")


def test_create_user_institution_unknown_institution(client: Client) -> None:
    with pytest.raises(NotFound):
        client.create_user_institution(
            "11111111-2222-3333-4444-555555555555", "v1-unknown-bank", "asdf"
        )


def test_wait_for_job_reports_the_finished_job(client: Client, nomfa_login: JobTracker) -> None:
    status = client.wait_for_job(nomfa_login.job_id, timeout=5)
    assert status.state is JobState.SUCCEEDED
    assert status.message == "Connected."
    job = client.get_job_information_by_id(nomfa_login.job_id)
    assert isinstance(job, Job)
    assert job.job_id == nomfa_login.job_id
    assert job.job_type == "AddAccounts"
    assert job.success_flag is True
    assert job.last_status == "Completed"
    assert job.user_institution_id == nomfa_login.login_id
    assert job.selected_account_id is None
    assert job.account_id == ZERO_GUID


# --- reading logins and accounts --------------------------------------------------------------


def test_get_user_institutions_by_user(client: Client, nomfa_login: JobTracker) -> None:
    logins = client.get_user_institutions_by_user()
    assert all(isinstance(login, UserInstitution) for login in logins)
    ours = [login for login in logins if login.user_institution_id == nomfa_login.login_id]
    assert len(ours) == 1
    assert ours[0].user_name == f"v1-shared-login{BUSY}"
    assert ours[0].institution_id == NO_MFA
    assert all(login.user_id == USER_ID for login in logins)


def test_get_user_institution_by_id(client: Client, nomfa_login: JobTracker) -> None:
    assert nomfa_login.login_id is not None
    login = client.get_user_institution_by_id(nomfa_login.login_id)
    assert login.user_institution_id == nomfa_login.login_id
    assert login.user_id == USER_ID
    assert login.institution_id == NO_MFA
    assert login.institution_name == "Sophtron Bank NoMFA"
    assert login.user_name == f"v1-shared-login{BUSY}"
    assert login.phone
    assert login.email
    assert login.last_modified is not None
    assert login.last_modified.date() == TODAY


def test_get_user_institution_accounts(
    nomfa_accounts: list[Account], nomfa_login: JobTracker
) -> None:
    accounts = nomfa_accounts
    assert len(accounts) == 6
    first = accounts[0]
    assert first.account_name == "Primary Checking"
    assert first.account_number is not None
    assert first.account_number.endswith("1234")
    assert first.mask == "1234"
    assert {account.kind for account in accounts} == set(AccountKind)
    assert len({account.account_id for account in accounts}) == len(accounts)
    for account in accounts:
        assert account.user_institution_id == nomfa_login.login_id
        assert account.institution_id == NO_MFA
        assert isinstance(account.balance, Decimal)
        assert account.currency == "USD"
        assert account.tracked
        assert account.account_name


def test_accounts_of_each_kind(nomfa_accounts: list[Account]) -> None:
    by_kind: dict[AccountKind, list[Account]] = {}
    for account in nomfa_accounts:
        by_kind.setdefault(account.kind, []).append(account)
    bill = by_kind[AccountKind.OTHER]
    assert [account.account_type for account in bill] == ["Bill"]
    assert bill[0].due_date is not None
    assert TODAY <= bill[0].due_date <= TODAY + dt.timedelta(days=31)
    for account in by_kind[AccountKind.CREDIT_CARD] + by_kind[AccountKind.LOAN]:
        assert account.due_date is not None
        assert account.balance is not None
        assert account.balance < 0
    for account in by_kind[AccountKind.DEPOSITORY]:
        assert account.due_date is None
        assert account.available_balance is not None
    assert by_kind[AccountKind.INVESTMENT][0].balance is not None
    assert by_kind[AccountKind.INVESTMENT][0].balance > 0
    assert by_kind[AccountKind.LOAN][0].sub_type == "Mortgage"


def test_get_user_institution_account_by_id(client: Client, nomfa_accounts: list[Account]) -> None:
    for listed in nomfa_accounts:
        account = client.get_user_institution_account_by_id(listed.account_id)
        assert account.account_id == listed.account_id
        assert account.account_name == listed.account_name
        assert account.account_number == listed.account_number
        assert account.balance == listed.balance
        assert account.kind == listed.kind
        assert account.due_date == listed.due_date


def test_get_user_institution_account_by_id_unknown(client: Client) -> None:
    with pytest.raises(NotFound):
        client.get_user_institution_account_by_id("11111111-2222-3333-4444-555555555555")


# --- transactions -----------------------------------------------------------------------------


def test_get_transactions_by_transaction_date(
    client: Client, nomfa_accounts: list[Account]
) -> None:
    start, end = RECENT
    statuses: set[str] = set()
    total = 0
    for account in nomfa_accounts:
        transactions = client.get_transactions_by_transaction_date(account.account_id, start, end)
        assert_transactions(transactions, account.account_id, start, end)
        statuses |= {txn.status or "" for txn in transactions}
        total += len(transactions)
        assert len({txn.transaction_id for txn in transactions}) == len(transactions)
        assert len({txn.id for txn in transactions}) == len(transactions)
    assert statuses == {"Pending", "Posted"}
    assert total > 50


def test_transactions_of_the_checking_account(
    client: Client, nomfa_accounts: list[Account]
) -> None:
    checking = nomfa_accounts[0]
    start, end = RECENT
    transactions = client.get_transactions_by_transaction_date(checking.account_id, start, end)
    assert any(txn.amount is not None and txn.amount > 0 for txn in transactions)  # payroll
    assert any(txn.amount is not None and txn.amount < 0 for txn in transactions)
    for txn in transactions:
        assert txn.signed_amount == txn.amount
        assert txn.type == ("DEBIT" if txn.amount is not None and txn.amount < 0 else "CREDIT")


def test_transactions_accept_date_strings(client: Client, nomfa_accounts: list[Account]) -> None:
    account = nomfa_accounts[2]
    start, end = RECENT
    as_dates = client.get_transactions_by_transaction_date(account.account_id, start, end)
    as_text = client.get_transactions_by_transaction_date(
        account.account_id, start.isoformat(), end.isoformat()
    )
    as_datetimes = client.get_transactions_by_transaction_date(
        account.account_id,
        dt.datetime.combine(start, dt.time(13, 5)),
        dt.datetime.combine(end, dt.time(23, 59)),
    )
    ids = [txn.provider_id for txn in as_dates]
    assert ids
    assert [txn.provider_id for txn in as_text] == ids
    assert [txn.provider_id for txn in as_datetimes] == ids


def test_transactions_range_is_inclusive(client: Client, nomfa_accounts: list[Account]) -> None:
    account = nomfa_accounts[2]
    start, end = RECENT
    everything = client.get_transactions_by_transaction_date(account.account_id, start, end)
    day = everything[len(everything) // 2].booked_on
    assert day is not None
    one_day = client.get_transactions_by_transaction_date(account.account_id, day, day)
    assert one_day
    assert {txn.booked_on for txn in one_day} == {day}
    assert {txn.provider_id for txn in one_day} == {
        txn.provider_id for txn in everything if txn.booked_on == day
    }


def test_transactions_of_a_reversed_range_are_empty(
    client: Client, nomfa_accounts: list[Account]
) -> None:
    start, end = RECENT
    assert (
        client.get_transactions_by_transaction_date(nomfa_accounts[0].account_id, end, start) == []
    )


def test_transactions_outside_the_history_are_empty(
    client: Client, nomfa_accounts: list[Account]
) -> None:
    assert (
        client.get_transactions_by_transaction_date(
            nomfa_accounts[0].account_id, dt.date(2001, 1, 1), dt.date(2001, 12, 31)
        )
        == []
    )


# --- jobs that change a login -----------------------------------------------------------------


def test_refresh_user_institution(client: Client, nomfa_login: JobTracker) -> None:
    assert nomfa_login.login_id is not None
    tracker = client.refresh_user_institution(nomfa_login.login_id)
    assert tracker.job_id != nomfa_login.job_id
    assert tracker.login_id == nomfa_login.login_id
    status = client.wait_for_job(tracker.job_id)
    assert status.state is JobState.SUCCEEDED
    assert status.job.job_type == "Refresh"
    assert status.job.selected_account_id is None


def test_refresh_user_institution_account(client: Client, nomfa_accounts: list[Account]) -> None:
    account = nomfa_accounts[1]
    tracker = client.refresh_user_institution_account(account.account_id)
    assert tracker.job_id
    status = client.wait_for_job(tracker.job_id)
    assert status.state is JobState.SUCCEEDED
    assert status.job.selected_account_id == account.account_id
    assert status.job.job_type == "Refresh"


def test_update_user_institution(client: Client) -> None:
    tracker = client.create_user_institution(NO_MFA, "v1-update-before", "asdf")
    assert tracker.login_id is not None
    assert client.wait_for_job(tracker.job_id).state is JobState.SUCCEEDED

    update = client.update_user_institution(tracker.login_id, "v1-update-after", "new-pw")
    assert isinstance(update, JobTracker)
    assert update.job_id != tracker.job_id
    assert update.login_id == tracker.login_id
    status = client.wait_for_job(update.job_id)
    assert status.state is JobState.SUCCEEDED
    assert status.job.user_institution_id == tracker.login_id

    login = client.get_user_institution_by_id(tracker.login_id)
    assert login.user_name == "v1-update-after"
    assert client.get_user_institution_accounts(tracker.login_id)


def test_update_user_institution_repairs_a_bad_password(client: Client) -> None:
    tracker = client.create_user_institution(NO_MFA, "v1-repair", "wrong")
    assert tracker.login_id is not None
    job = client.get_job_information_by_id(tracker.job_id)
    assert job.success_flag is False
    update = client.update_user_institution(tracker.login_id, "v1-repair", "right-now")
    assert update is not None
    assert client.wait_for_job(update.job_id).state is JobState.SUCCEEDED


def test_retry_adding_user_institution(client: Client) -> None:
    tracker = client.create_user_institution(NO_MFA, "v1-retry", "asdf")
    assert tracker.login_id is not None
    client.wait_for_job(tracker.job_id)
    retry = client.retry_adding_user_institution(tracker.login_id)
    assert isinstance(retry, JobTracker)
    assert retry.job_id != tracker.job_id
    assert retry.login_id == tracker.login_id
    status = client.wait_for_job(retry.job_id)
    assert status.state is JobState.SUCCEEDED
    assert status.job.job_type == "AddAccounts"


def test_delete_user_institution(client: Client) -> None:
    tracker = client.create_user_institution(NO_MFA, "v1-delete", "asdf")
    login_id = tracker.login_id
    assert login_id is not None
    client.wait_for_job(tracker.job_id)
    account_id = client.get_user_institution_accounts(login_id)[0].account_id

    assert client.delete_user_institution(login_id) is None

    with pytest.raises(NotFound) as raised:
        client.get_user_institution_by_id(login_id)
    assert raised.value.status_code == 404
    assert login_id not in {
        login.user_institution_id for login in client.get_user_institutions_by_user()
    }
    with pytest.raises(NotFound):
        client.get_user_institution_accounts(login_id)
    with pytest.raises(NotFound):
        client.get_user_institution_account_by_id(account_id)
    with pytest.raises(NotFound):
        client.get_transactions_by_transaction_date(account_id, *RECENT)
    with pytest.raises(NotFound):
        client.delete_user_institution(login_id)


# --- the main flow with AsyncClient -----------------------------------------------------------


@pytest.mark.anyio
async def test_async_v1_flow(async_client: AsyncClient) -> None:
    sophtron = async_client
    assert await sophtron.health_check_auth() == "this is online."

    found = await sophtron.get_institution_by_name("SOPHTRON bank")
    assert {i.institution_name: i.institution_id for i in found} == TEST_BANK_IDS
    bank = await sophtron.get_institution_by_id(NO_MFA)
    assert bank.institution_name == "Sophtron Bank NoMFA"
    unions = await sophtron.get_institution_by_name("credit union")
    routed = [i for i in unions if i.routing_numbers]
    by_routing = await sophtron.get_institution_by_routing_number(routed[0].routing_numbers[0])
    assert routed[0].institution_id in {i.institution_id for i in by_routing}

    trackers: dict[str, Any] = {}
    for variant in ("default", "refresh", "full_history"):
        tracker = await sophtron.create_user_institution(
            NO_MFA, f"v1-async-{variant}{BUSY}", "asdf", variant=variant
        )
        status = await sophtron.wait_for_job(tracker.job_id)
        assert status.state is JobState.SUCCEEDED
        trackers[variant] = tracker
    tracker = trackers["default"]
    login_id = tracker.login_id
    assert login_id is not None

    logins = await sophtron.get_user_institutions_by_user()
    assert {t.login_id for t in trackers.values()} <= {x.user_institution_id for x in logins}
    login = await sophtron.get_user_institution_by_id(login_id)
    assert login.user_name == f"v1-async-default{BUSY}"

    accounts = await sophtron.get_user_institution_accounts(login_id)
    assert accounts[0].account_name == "Primary Checking"
    assert accounts[0].mask == "1234"
    assert {a.kind for a in accounts} == set(AccountKind)
    one = await sophtron.get_user_institution_account_by_id(accounts[0].account_id)
    assert one.account_id == accounts[0].account_id
    assert one.balance == accounts[0].balance

    start, end = RECENT
    statuses: set[str] = set()
    for account in accounts:
        transactions = await sophtron.get_transactions_by_transaction_date(
            account.account_id, start, end
        )
        assert_transactions(transactions, account.account_id, start, end)
        statuses |= {txn.status or "" for txn in transactions}
    assert statuses == {"Pending", "Posted"}
    assert (
        await sophtron.get_transactions_by_transaction_date(accounts[0].account_id, end, start)
        == []
    )

    refresh = await sophtron.refresh_user_institution(login_id)
    assert (await sophtron.wait_for_job(refresh.job_id)).state is JobState.SUCCEEDED
    account_refresh = await sophtron.refresh_user_institution_account(accounts[0].account_id)
    status = await sophtron.wait_for_job(account_refresh.job_id)
    assert status.state is JobState.SUCCEEDED
    assert status.job.selected_account_id == accounts[0].account_id

    update = await sophtron.update_user_institution(login_id, "v1-async-renamed", "pw2")
    assert update is not None
    assert update.login_id == login_id
    assert (await sophtron.wait_for_job(update.job_id)).state is JobState.SUCCEEDED
    assert (await sophtron.get_user_institution_by_id(login_id)).user_name == "v1-async-renamed"

    retry = await sophtron.retry_adding_user_institution(login_id)
    assert retry.job_id not in {refresh.job_id, update.job_id, tracker.job_id}
    assert (await sophtron.wait_for_job(retry.job_id)).state is JobState.SUCCEEDED

    assert await sophtron.delete_user_institution(login_id) is None
    with pytest.raises(NotFound):
        await sophtron.get_user_institution_by_id(login_id)
    remaining = {x.user_institution_id for x in await sophtron.get_user_institutions_by_user()}
    assert login_id not in remaining
    assert trackers["refresh"].login_id in remaining


def test_async_clients_opened_at_once_share_one_tls_context() -> None:
    """Reading the CA bundle costs some 25 ms of CPU and lets other threads run: async clients
    that start together must wait for one context, not each build one."""
    client_module._build_tls_context.cache_clear()
    start = threading.Barrier(40)
    contexts: list[ssl.SSLContext] = []

    def open_one() -> None:
        start.wait()
        contexts.append(client_module.tls_context())

    threads = [threading.Thread(target=open_one) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(contexts) == 40
    assert len({id(context) for context in contexts}) == 1


def test_clients_one_after_another_share_a_connection(sandbox: SandboxServer) -> None:
    """A sync sends a few requests in a row, and the next sync to the same host a few more: one
    connection for all of them. Threads sending at once get a connection each, all kept for
    the next requests; the idle ones close on request."""
    client_module.close_idle_connections()
    with Client(USER_ID, ACCESS_KEY, base_url=sandbox.url, **FAST) as client:
        handles = client._transport.handles
        before = handles.opened
        for _ in range(5):
            assert client.health_check_auth() == "this is online."
    with Client(USER_ID, ACCESS_KEY, base_url=sandbox.url, **FAST) as client:
        for _ in range(3):
            assert client.health_check_auth() == "this is online."
        assert handles.opened - before == 1
        assert handles.idle == 1

        def at_once(count: int) -> None:
            start = threading.Barrier(count)
            answers: list[str] = []

            def one() -> None:
                start.wait()
                answers.append(client.health_check_auth())

            threads = [threading.Thread(target=one) for _ in range(count)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert len(answers) == count

        count = 8
        at_once(count)
        # However many the threads needed at once (as many as overlapped), each connection
        # opened is kept, idle, for the next requests.
        opened = handles.opened - before
        assert 1 <= opened <= count
        assert handles.idle == opened
        at_once(count)
        assert handles.opened - before <= count
        assert handles.idle == handles.opened - before
    client_module.close_idle_connections()
    assert handles.idle == 0
    with Client(USER_ID, ACCESS_KEY, base_url=sandbox.url, **FAST) as client:
        assert client.health_check_auth() == "this is online."
    assert handles.opened - before > opened  # a new one: the idle ones were closed


def test_a_closed_client_sends_nothing(sandbox: SandboxServer) -> None:
    requests: list[str] = []
    client = Client(USER_ID, ACCESS_KEY, base_url=sandbox.url, on_request=requests.append)
    assert client.health_check_auth() == "this is online."
    client.close()
    with pytest.raises(RuntimeError, match="client is closed"):
        client.health_check_auth()
    assert requests == ["GET Institution/HealthCheckAuth"]


@pytest.mark.parametrize(
    ("timeout", "connect_ms", "total_ms"),
    [
        (client_module.DEFAULT_TIMEOUT, 10_000, 130_000),
        (0.2, 200, 400),
        (httpx.Timeout(None), 0, 0),  # no limit (libcurl's 0)
        (httpx.Timeout(5.0, connect=None), 0, 5_000),
    ],
)
def test_a_clients_timeout_bounds_its_connection_then_its_answer(
    sandbox: SandboxServer, timeout: httpx.Timeout | float, connect_ms: int, total_ms: int
) -> None:
    """A new connection gets ``connect`` seconds; the whole request ``connect`` + ``read``."""
    with Client(USER_ID, ACCESS_KEY, base_url=sandbox.url, timeout=timeout, **FAST) as client:
        assert client.health_check_auth() == "this is online."
        setup = client._transport.handles._setup
    assert (setup.connect_ms, setup.total_ms) == (connect_ms, total_ms)
