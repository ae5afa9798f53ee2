"""The sandbox's wire protocol, spoken with raw HTTP: routing, casing, shapes, auth, errors, the
deterministic world, the catalogue and the admin routes."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sophsync.sandbox import FaultSpec, RateLimit, SandboxServer
from sophsync.sandbox.catalogue import is_valid_routing_number
from sophsync.sophtron.auth import sign, signature
from tests.conftest import (
    ACCESS_KEY,
    OTHER_ACCESS_KEY,
    OTHER_USER_ID,
    SEED,
    TODAY,
    USER_ID,
    admin,
    signed_request,
)

MakeSandbox = Callable[..., SandboxServer]

NOMFA = "926623ca-5952-4921-8f77-2023f1cdde8e"
CAPTCHA_BANK = "8ad00f00-72b7-4642-a0de-b3f31e08510a"
TEST_BANKS = {
    "Sophtron Bank": "8d0d9991-5e35-4b82-afa4-e93695e5ca7d",
    "Sophtron Bank NoMFA": NOMFA,
    "Sophtron Bank Captcha": CAPTCHA_BANK,
    "Sophtron Bank SecurityQuestion": "8809dee7-9e23-4039-a723-02bc01fce0f2",
    "Sophtron Bank SecurityQuestion Multiple": "8f32ccc1-acaf-4e6b-93b8-1f2cd398647d",
    "Sophtron Bank Token": "337fe0c2-476e-46f5-a360-bf33f9fe1937",
    "Sophtron Bank TokenRead": "0fe7236b-079a-4fe6-aed9-cf194790a553",
}
ZERO_GUID = "00000000-0000-0000-0000-000000000000"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
V1_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T00:00:00$")
V2_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T00:00:00Z$")
FAR_PAST, FAR_FUTURE = "2000-01-01", "2100-12-31"

INSTITUTION_KEYS = {
    "InstitutionID",
    "InstitutionName",
    "URL",
    "Logo",
    "CountryCode",
    "LanguageCode",
    "IsFinancial",
    "InstitutionDetail",
}
INSTITUTION_DETAIL_KEYS = {
    "LoginFormUserName",
    "LoginFormPassword",
    "RoutingNumber",
    "MultipleRoutingNumbers",
    "LoginFormFields",
}
JOB_KEYS = {
    "JobID",
    "SuccessFlag",
    "SecurityQuestion",
    "SecurityAnswer",
    "TokenMethod",
    "TokenChoice",
    "TokenSentFlag",
    "TokenInputName",
    "TokenInput",
    "TokenRead",
    "VerifyPhoneFlag",
    "CaptchaImage",
    "CaptchaInput",
    "LastStep",
    "LastStatus",
    "JobType",
    "AccountID",
    "UserInstitutionID",
}
ACCOUNT_KEYS = {
    "UserInstitutionID",
    "AccountID",
    "AccountName",
    "AccountNumber",
    "AccountType",
    "Balance",
    "AvailableBalance",
    "BalanceCurrency",
    "LastUpdated",
    "DueDate",
    "Status",
    "FullAccountNumber",
    "RoutingNumber",
    "InstitutionNumber",
    "TransitNumber",
    "OwnerName",
}
ACCOUNT_EXTRA_KEYS = {"SubType", "MemberID", "InstitutionID", "ID", "UserID", "LastModifiedUtc"}
#: The keys Firefly III's importer indexes without defaults.
FIREFLY_TRANSACTION_KEYS = {
    "UserID",
    "TransactionID",
    "UserInstitutionAccountID",
    "Status",
    "Type",
    "Amount",
    "Date",
    "TransactionDate",
    "PostDate",
    "Description",
}
TRANSACTION_KEYS = FIREFLY_TRANSACTION_KEYS | {
    "ID",
    "Currency",
    "Balance",
    "Merchant",
    "Category",
    "CheckNum",
    "Memo",
    "CheckImage",
}
TRANSACTION_EXTRA_KEYS = {"CreatedDateUtc", "LastModifiedUtc", "LastModified"}
EVERY_KIND = {"Checking", "Savings", "Credit_Card", "Loan", "Investment", "Bill"}


# --- helpers ---------------------------------------------------------------------------------

#: One keep-alive HTTP client for the module (a fresh client per request costs ~30 ms).
_HTTP: list[httpx.Client] = []


@pytest.fixture(scope="module", autouse=True)
def _keep_alive() -> Iterator[None]:
    _HTTP.append(httpx.Client(timeout=30))
    yield
    _HTTP.pop().close()


def request(
    server: SandboxServer,
    method: str,
    path: str,
    *,
    json: Any = None,
    content: bytes | None = None,
    user_id: str = USER_ID,
    access_key: str = ACCESS_KEY,
) -> httpx.Response:
    """Like ``conftest.signed_request`` (signed the official way), over the shared client."""
    url = f"{server.url}/{path.lstrip('/')}"
    return _HTTP[0].request(
        method,
        url,
        json=json,
        content=content,
        headers={"Authorization": sign(user_id, access_key, method, url)},
    )


def fiapi_header(user_id: str, access_key: str, method: str, auth_path: str) -> str:
    """An Authorization header over an auth path chosen by the caller (any signing rule)."""
    return f"FIApiAUTH:{user_id}:{signature(access_key, method, auth_path)}:{auth_path}"


def official_header(
    method: str, url: str, user_id: str = USER_ID, access_key: str = ACCESS_KEY
) -> str:
    return fiapi_header(user_id, access_key, method, url[url.rfind("/") :].lower())


def send(method: str, url: str, header: str | None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": header} if header is not None else {}
    return _HTTP[0].request(method, url, headers=headers, **kwargs)


def call(server: SandboxServer, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
    """A signed request that must succeed; returns the JSON (``None`` for an empty body)."""
    response = request(server, method, path, json=body, **kwargs)
    assert response.status_code == 200, (method, path, response.status_code, response.text)
    return response.json() if response.content else None


def decimal_json(response: httpx.Response) -> Any:
    return json.loads(response.text, parse_float=Decimal)


def answer_prompts(server: SandboxServer, job: dict[str, Any], **kwargs: Any) -> None:
    """Answer whatever MFA prompt the (v1) job shows, the way the official samples do."""
    job_id = job["JobID"]
    if job["SecurityQuestion"]:
        questions = json.loads(job["SecurityQuestion"])
        result = call(
            server,
            "POST",
            "Job/UpdateJobSecurityAnswer",
            {"JobID": job_id, "SecurityAnswer": json.dumps(["blue"] * len(questions))},
            **kwargs,
        )
    elif job["TokenMethod"]:
        choice = json.loads(job["TokenMethod"])[0]
        result = call(
            server,
            "POST",
            "Job/UpdateJobTokenInput",
            {"JobID": job_id, "TokenChoice": choice, "TokenInput": None, "VerifyPhoneFlag": None},
            **kwargs,
        )
    elif job["TokenSentFlag"] is True:
        result = call(
            server,
            "POST",
            "Job/UpdateJobTokenInput",
            {"JobID": job_id, "TokenChoice": None, "TokenInput": "123456", "VerifyPhoneFlag": None},
            **kwargs,
        )
    elif job["TokenRead"]:
        result = call(
            server,
            "POST",
            "Job/UpdateJobTokenInput",
            {"JobID": job_id, "TokenChoice": None, "TokenInput": None, "VerifyPhoneFlag": True},
            **kwargs,
        )
    elif job["CaptchaImage"]:
        result = call(
            server,
            "POST",
            "Job/UpdateJobCaptcha",
            {"JobID": job_id, "CaptchaInput": "ABCDE"},
            **kwargs,
        )
    else:
        return
    assert result == 0, job


def finish_job(server: SandboxServer, job_id: str, **kwargs: Any) -> dict[str, Any]:
    """Poll a v1 job, answering its prompts, until it succeeds."""
    for _ in range(40):
        job = call(server, "POST", "Job/GetJobInformationByID", {"JobID": job_id}, **kwargs)
        assert job["SuccessFlag"] is not False, job
        if job["SuccessFlag"] is True:
            return job
        answer_prompts(server, job, **kwargs)
    raise AssertionError(f"job {job_id} did not finish")


def create_login(
    server: SandboxServer, username: str, institution_id: str = NOMFA, **kwargs: Any
) -> dict[str, Any]:
    user_id = kwargs.get("user_id", USER_ID)
    return call(
        server,
        "POST",
        "UserInstitution/CreateUserInstitution",
        {
            "UserID": user_id,
            "InstitutionID": institution_id,
            "UserName": username,
            "Password": "asdf",
            "PIN": "",
        },
        **kwargs,
    )


def connect(
    server: SandboxServer, username: str, institution_id: str = NOMFA, **kwargs: Any
) -> str:
    """Create a v1 login and run its job to success; returns the UserInstitutionID."""
    tracker = create_login(server, username, institution_id, **kwargs)
    finish_job(server, tracker["JobID"], **kwargs)
    return tracker["UserInstitutionID"]


def accounts_of(server: SandboxServer, login_id: str, **kwargs: Any) -> list[dict[str, Any]]:
    response = request(
        server,
        "POST",
        "UserInstitution/GetUserInstitutionAccounts",
        json={"UserInstitutionID": login_id},
        **kwargs,
    )
    assert response.status_code == 200, response.text
    return decimal_json(response)


def transactions_of(
    server: SandboxServer,
    account_id: str,
    start: str = FAR_PAST,
    end: str = FAR_FUTURE,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    response = request(
        server,
        "POST",
        "Transaction/GetTransactionsByTransactionDate",
        json={"AccountID": account_id, "StartDate": start, "EndDate": end},
        **kwargs,
    )
    assert response.status_code == 200, response.text
    return decimal_json(response)


def v2_member(
    server: SandboxServer, unique_id: str, username: str, job_types: str = "aggregate"
) -> tuple[str, str, list[dict[str, Any]]]:
    """A v2 customer with one connected NoMFA member: (CustomerID, MemberID, accounts)."""
    customer = call(
        server,
        "POST",
        "v2/customers",
        {"UniqueID": unique_id, "Name": f"Customer {unique_id}", "Source": "tests"},
    )
    customer_id = customer["CustomerID"]
    created = call(
        server,
        "POST",
        f"v2/customers/{customer_id}/members/{job_types}",
        {"UserName": username, "Password": "asdf", "InstitutionID": NOMFA},
    )
    job = call(server, "GET", f"v2/job/{created['JobID']}")
    assert job["SuccessFlag"] is True, job
    response = request(
        server, "GET", f"v2/customers/{customer_id}/members/{created['MemberID']}/accounts"
    )
    assert response.status_code == 200, response.text
    return customer_id, created["MemberID"], decimal_json(response)


def is_money(value: Any) -> bool:
    """A JSON number (not a string, not a bool) with at most two decimals."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return False
    return Decimal(value).as_tuple().exponent >= -2  # type: ignore[operator]


def check_transaction(txn: dict[str, Any], account_id: str, date_format: re.Pattern[str]) -> None:
    assert txn.keys() >= FIREFLY_TRANSACTION_KEYS, FIREFLY_TRANSACTION_KEYS - txn.keys()
    assert "ID" in txn
    assert txn.keys() <= TRANSACTION_KEYS | TRANSACTION_EXTRA_KEYS, (
        txn.keys() - TRANSACTION_KEYS - TRANSACTION_EXTRA_KEYS
    )
    for key in ("ID", "TransactionID", "UserInstitutionAccountID", "UserID"):
        assert GUID.match(txn[key]), (key, txn)
    assert txn["ID"] != txn["TransactionID"]
    assert txn["UserID"] == USER_ID
    assert txn["UserInstitutionAccountID"] == account_id
    assert txn["Status"] in {"Pending", "Posted"}
    assert is_money(txn["Amount"]), txn["Amount"]
    if txn["Amount"] < 0:
        assert txn["Type"] == "DEBIT", txn
    elif txn["Amount"] > 0:
        assert txn["Type"] == "CREDIT", txn
    else:
        assert txn["Type"] in {"DEBIT", "CREDIT"}
    assert txn["Currency"] == "$"
    assert date_format.match(txn["Date"]), txn["Date"]
    assert date_format.match(txn["TransactionDate"]), txn["TransactionDate"]
    if txn["Status"] == "Posted":
        assert date_format.match(txn["PostDate"]), txn["PostDate"]
        assert txn["PostDate"] >= txn["TransactionDate"]
        assert is_money(txn["Balance"])
    else:
        assert txn["PostDate"] is None or date_format.match(txn["PostDate"])
    assert isinstance(txn["Description"], str)
    assert txn["Description"].strip()


def check_account(account: dict[str, Any], login_id: str, date_format: re.Pattern[str]) -> None:
    assert account.keys() >= ACCOUNT_KEYS, ACCOUNT_KEYS - account.keys()
    assert account.keys() <= ACCOUNT_KEYS | ACCOUNT_EXTRA_KEYS, (
        account.keys() - ACCOUNT_KEYS - ACCOUNT_EXTRA_KEYS
    )
    assert account["UserInstitutionID"] == login_id
    assert GUID.match(account["AccountID"])
    assert account["BalanceCurrency"] == "$"
    assert is_money(account["Balance"])
    assert account["AvailableBalance"] is None or is_money(account["AvailableBalance"])
    assert account["Status"] == "Tracked"
    assert account["DueDate"] is None or date_format.match(account["DueDate"])
    assert isinstance(account["AccountName"], str)
    assert account["AccountName"]


# --- routing and casing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "route",
    [
        "/api/Institution/GetInstitutionByName",
        "/api/institution/getinstitutionbyname",
        "/API/INSTITUTION/GETINSTITUTIONBYNAME",
        "/Api/InStItUtIoN/GetInstitutionBYNAME",
    ],
)
def test_routes_are_case_insensitive(sandbox: SandboxServer, route: str) -> None:
    url = f"{sandbox.root}{route}"
    response = send(
        "POST", url, official_header("POST", url), json={"InstitutionName": "Sophtron Bank NoMFA"}
    )
    assert response.status_code == 200, response.text
    assert [i["InstitutionID"] for i in response.json()] == [NOMFA]


@pytest.mark.parametrize(
    "key",
    [
        "InstitutionName",
        "institutionname",
        "INSTITUTIONNAME",
        "institution_name",
        "institutionName",
    ],
)
def test_request_json_keys_are_matched_in_any_case(sandbox: SandboxServer, key: str) -> None:
    found = call(sandbox, "POST", "Institution/GetInstitutionByName", {key: "sophtron bank nomfa"})
    assert [i["InstitutionName"] for i in found] == ["Sophtron Bank NoMFA"]


def test_camel_case_bodies_like_firefly_work_across_v1(sandbox: SandboxServer) -> None:
    tracker = call(
        sandbox,
        "POST",
        "UserInstitution/CreateUserInstitution",
        {"userID": USER_ID, "institutionID": NOMFA, "userName": "camel-case-1", "password": "asdf"},
    )
    finish_job(sandbox, tracker["JobID"])
    accounts = call(
        sandbox,
        "POST",
        "UserInstitution/GetUserInstitutionAccounts",
        {"userInstitutionID": tracker["UserInstitutionID"]},
    )
    assert accounts
    txns = call(
        sandbox,
        "POST",
        "Transaction/GetTransactionsByTransactionDate",
        {"accountID": accounts[0]["AccountID"], "startDate": "2026-01-01", "endDate": "2026-11-21"},
    )
    assert txns
    assert all("2026-01-01" <= t["TransactionDate"][:10] <= "2026-11-21" for t in txns)


@pytest.fixture(scope="module")
def nomfa_login(sandbox: SandboxServer) -> dict[str, Any]:
    tracker = create_login(sandbox, "shared-nomfa-login")
    finish_job(sandbox, tracker["JobID"])
    return {**tracker, "accounts": accounts_of(sandbox, tracker["UserInstitutionID"])}


def test_guids_are_matched_in_any_case(sandbox: SandboxServer, nomfa_login: dict[str, Any]) -> None:
    login_id = nomfa_login["UserInstitutionID"]
    account_id = nomfa_login["accounts"][0]["AccountID"]
    upper = accounts_of(sandbox, login_id.upper())
    assert [a["AccountID"] for a in upper] == [a["AccountID"] for a in nomfa_login["accounts"]]
    job = call(
        sandbox, "POST", "Job/GetJobInformationByID", {"JobID": nomfa_login["JobID"].upper()}
    )
    assert job["JobID"] == nomfa_login["JobID"]
    assert transactions_of(sandbox, account_id.upper(), "2026-10-01", "2026-10-31") == (
        transactions_of(sandbox, account_id, "2026-10-01", "2026-10-31")
    )
    institution = call(
        sandbox, "POST", "Institution/GetInstitutionByID", {"InstitutionID": NOMFA.upper()}
    )
    assert institution["InstitutionID"] == NOMFA


def test_user_id_is_one_account_in_any_case(
    sandbox: SandboxServer, nomfa_login: dict[str, Any]
) -> None:
    login_id = nomfa_login["UserInstitutionID"]
    upper = {"user_id": USER_ID.upper()}
    # The sandbox accepts the upper-cased User ID as the same developer account ...
    assert request(sandbox, "GET", "Institution/HealthCheckAuth", **upper).status_code == 200
    # ... so it must see that account's logins, as the lower-cased id does.
    response = request(
        sandbox,
        "POST",
        "UserInstitution/GetUserInstitutionByID",
        json={"UserInstitutionID": login_id},
        **upper,
    )
    assert response.status_code == 200, response.text
    assert response.json()["UserInstitutionID"] == login_id
    listed = call(
        sandbox,
        "POST",
        "UserInstitution/GetUserInstitutionsByUser",
        {"UserID": USER_ID.upper()},
        **upper,
    )
    assert login_id in {item["UserInstitutionID"] for item in listed}


@pytest.mark.parametrize(
    "start",
    [
        "2026-10-01",
        "2026/10/01",
        "2026-10-01T00:00:00",
        "2026-10-01T12:32:17.165931+00:00",
        "2026-10-01T00:00:00.0000000+08:00",
        "2026-10-01T00:00:00.000Z",
    ],
)
def test_request_dates_in_every_format_clients_send(
    sandbox: SandboxServer, nomfa_login: dict[str, Any], start: str
) -> None:
    account_id = nomfa_login["accounts"][0]["AccountID"]
    expected = transactions_of(sandbox, account_id, "2026-10-01", "2026-10-31")
    assert expected
    assert min(t["TransactionDate"] for t in expected) == "2026-10-01T00:00:00"
    assert transactions_of(sandbox, account_id, start, "2026-10-31") == expected


def test_reversed_date_range_gives_no_transactions(
    sandbox: SandboxServer, nomfa_login: dict[str, Any]
) -> None:
    account_id = nomfa_login["accounts"][0]["AccountID"]
    assert transactions_of(sandbox, account_id, "2026-12-21", "2026-11-21") == []


def test_delete_user_institution_removes_the_login(sandbox: SandboxServer) -> None:
    login_id = connect(sandbox, "delete-me-1")
    account_id = accounts_of(sandbox, login_id)[0]["AccountID"]
    response = request(
        sandbox,
        "POST",
        "UserInstitution/DeleteUserInstitution",
        json={"UserInstitutionID": login_id},
    )
    assert response.status_code == 200
    gone = request(
        sandbox,
        "POST",
        "UserInstitution/GetUserInstitutionAccounts",
        json={"UserInstitutionID": login_id},
    )
    assert gone.status_code == 404
    txns = request(
        sandbox,
        "POST",
        "Transaction/GetTransactionsByTransactionDate",
        json={"AccountID": account_id, "StartDate": FAR_PAST, "EndDate": FAR_FUTURE},
    )
    assert txns.status_code == 404


def test_institution_has_exactly_the_reference_fields(sandbox: SandboxServer) -> None:
    response = request(
        sandbox,
        "POST",
        "Institution/GetInstitutionByName",
        json={"InstitutionName": "Sophtron Bank"},
    )
    found = response.json()
    assert len(found) >= 7
    for institution in found:
        assert set(institution) == INSTITUTION_KEYS
        assert set(institution["InstitutionDetail"]) == INSTITUTION_DETAIL_KEYS
        assert GUID.match(institution["InstitutionID"])
        assert isinstance(institution["IsFinancial"], bool)
        for form_field in institution["InstitutionDetail"]["LoginFormFields"]:
            assert {"MappedField", "DisplayText"} <= form_field.keys()
    nomfa = next(i for i in found if i["InstitutionName"] == "Sophtron Bank NoMFA")
    assert nomfa["InstitutionID"] == NOMFA
    assert nomfa["URL"] == "https://sophtron.com"
    assert nomfa["CountryCode"] == "US"
    assert nomfa["IsFinancial"] is True
    assert nomfa["InstitutionDetail"]["LoginFormUserName"] == "User ID"
    assert nomfa["InstitutionDetail"]["LoginFormPassword"] == "Password"
    by_id = call(sandbox, "POST", "Institution/GetInstitutionByID", {"InstitutionID": NOMFA})
    assert by_id == nomfa


def test_v2_institutions_have_the_same_fields(sandbox: SandboxServer) -> None:
    found = call(sandbox, "GET", "v2/institutions?query=Sophtron%20Bank%20NoMFA")
    assert [i["InstitutionID"] for i in found] == [NOMFA]
    assert set(found[0]) == INSTITUTION_KEYS
    assert set(found[0]["InstitutionDetail"]) == INSTITUTION_DETAIL_KEYS


def test_create_user_institution_answers_job_and_login_ids(sandbox: SandboxServer) -> None:
    response = request(
        sandbox,
        "POST",
        "UserInstitution/CreateUserInstitution",
        json={
            "UserID": USER_ID,
            "InstitutionID": NOMFA,
            "UserName": "create-shape-1",
            "Password": "asdf",
            "PIN": "",
        },
    )
    assert response.status_code == 200
    tracker = response.json()
    assert set(tracker) == {"JobID", "UserInstitutionID"}
    assert GUID.match(tracker["JobID"])
    assert GUID.match(tracker["UserInstitutionID"])
    assert tracker["JobID"] != tracker["UserInstitutionID"]


def test_job_has_every_reference_field_from_start_to_success(sandbox: SandboxServer) -> None:
    tracker = create_login(sandbox, "job-shape-1", CAPTCHA_BANK)
    seen: list[dict[str, Any]] = []
    for _ in range(10):
        job = call(sandbox, "POST", "Job/GetJobInformationByID", {"JobID": tracker["JobID"]})
        seen.append(job)
        assert job.keys() >= JOB_KEYS, JOB_KEYS - job.keys()
        assert job["JobID"] == tracker["JobID"]
        assert job["UserInstitutionID"] == tracker["UserInstitutionID"]
        assert job["JobType"] == "AddAccounts"
        assert job["AccountID"] == ZERO_GUID
        if job["SuccessFlag"] is True:
            break
        assert job["SuccessFlag"] is None
        answer_prompts(sandbox, job)
    assert seen[0]["LastStatus"] == "Waiting"
    assert seen[0]["CaptchaImage"]
    assert seen[-1]["SuccessFlag"] is True
    assert seen[-1]["LastStatus"] == "Completed"
    v2 = call(sandbox, "GET", f"v2/job/{tracker['JobID']}")
    assert v2.keys() >= JOB_KEYS
    assert v2["SuccessFlag"] is True


def test_v1_accounts_have_the_reference_fields(sandbox: SandboxServer) -> None:
    login_id = connect(sandbox, "accounts-shape-1")
    accounts = accounts_of(sandbox, login_id)
    assert accounts
    for account in accounts:
        check_account(account, login_id, V1_DATE)
        if account["AccountType"] in {"Bill", "Credit_Card", "Loan"}:
            assert V1_DATE.match(account["DueDate"]), account
        one = decimal_json(
            request(
                sandbox,
                "POST",
                "UserInstitutionAccount/GetUserInstitutionAccountByID",
                json={"AccountID": account["AccountID"]},
            )
        )
        assert one == account
    first = accounts[0]
    assert first["AccountName"] == "Primary Checking"
    assert first["AccountNumber"].endswith("1234")


def test_v1_transactions_have_every_field_firefly_requires(sandbox: SandboxServer) -> None:
    login_id = connect(sandbox, "txn-shape-v1")
    checked = 0
    for account in accounts_of(sandbox, login_id):
        txns = transactions_of(sandbox, account["AccountID"], "2026-08-01", "2026-11-21")
        assert txns
        for txn in txns:
            check_transaction(txn, account["AccountID"], V1_DATE)
            checked += 1
    assert checked > 100
    checking = accounts_of(sandbox, login_id)[0]
    recent = transactions_of(sandbox, checking["AccountID"], "2026-11-20", "2026-11-20")
    transfer = next(t for t in recent if "TRANSFER TO SAVINGS" in t["Description"])
    assert transfer["Date"] == "2026-11-20T00:00:00"
    assert transfer["TransactionDate"] == "2026-11-20T00:00:00"
    assert transfer["Amount"] == Decimal("-1000.00")
    assert transfer["Type"] == "DEBIT"


def test_transaction_amounts_are_json_numbers_with_two_decimals_at_most(
    sandbox: SandboxServer,
) -> None:
    login_id = connect(sandbox, "amount-text-1")
    for account in accounts_of(sandbox, login_id):
        response = request(
            sandbox,
            "POST",
            "Transaction/GetTransactionsByTransactionDate",
            json={"AccountID": account["AccountID"], "StartDate": FAR_PAST, "EndDate": FAR_FUTURE},
        )
        raw = response.text
        assert '"Amount": "' not in raw
        assert '"Amount":"' not in raw
        for match in re.finditer(r'"(Amount|Balance)":\s*(-?[0-9.]+|null)', raw):
            number = match.group(2)
            assert number == "null" or re.fullmatch(r"-?\d+(\.\d{1,2})?", number), number
        for txn in decimal_json(response):
            assert is_money(txn["Amount"])


def test_v2_transactions_use_utc_dates(sandbox: SandboxServer) -> None:
    customer_id, member_id, accounts = v2_member(sandbox, "v2-dates-1", "txn-shape-v2")
    assert accounts
    for account in accounts:
        check_account(account, member_id, V2_DATE)
        assert account["MemberID"] == member_id
        assert V2_DATE.match(account["LastUpdated"])
        url = (
            f"v2/customers/{customer_id}/accounts/{account['AccountID']}/transactions"
            "?startDate=2026-09-01&endDate=2026-11-21"
        )
        txns = decimal_json(request(sandbox, "GET", url))
        assert txns
        for txn in txns:
            check_transaction(txn, account["AccountID"], V2_DATE)
    checking = accounts[0]
    url = (
        f"v2/customers/{customer_id}/accounts/{checking['AccountID']}/transactions"
        "?startDate=2026-11-20&endDate=2026-11-20"
    )
    dated = [t["Date"] for t in call(sandbox, "GET", url)]
    assert "2026-11-20T00:00:00Z" in dated


def test_v2_transaction_query_names_in_lower_case_like_odoo(sandbox: SandboxServer) -> None:
    customer_id, _, accounts = v2_member(sandbox, "v2-odoo-query", "odoo-query-1")
    base = f"v2/customers/{customer_id}/accounts/{accounts[0]['AccountID']}/transactions"
    camel = call(sandbox, "GET", f"{base}?startDate=2026-10-01&endDate=2026-10-31")
    lower = call(sandbox, "GET", f"{base}?startdate=2026-10-01&enddate=2026-10-31")
    assert camel
    assert lower == camel
    assert {t["TransactionDate"][:7] for t in camel} == {"2026-10"}


def test_v2_transactions_default_to_the_last_year(sandbox: SandboxServer) -> None:
    customer_id, _, accounts = v2_member(sandbox, "v2-default-range", "default-range-1")
    checking = accounts[0]["AccountID"]
    txns = call(sandbox, "GET", f"v2/customers/{customer_id}/accounts/{checking}/transactions")
    days = sorted(t["TransactionDate"][:10] for t in txns)
    assert days
    assert days[0] >= "2025-11-21"
    assert days[-1] <= "2026-11-21"
    assert days[0] <= "2025-12-31"


def test_v2_transactions_without_dates_on_a_leap_day(make_sandbox: MakeSandbox) -> None:
    server = make_sandbox(today=dt.date(2028, 2, 29))
    customer_id, _, accounts = v2_member(server, "leap-day", "leap-day-1")
    checking = accounts[0]["AccountID"]
    response = request(
        server, "GET", f"v2/customers/{customer_id}/accounts/{checking}/transactions"
    )
    assert response.status_code == 200, response.text
    assert response.json()


def test_health_check_auth_is_a_get_answering_a_json_string(sandbox: SandboxServer) -> None:
    response = request(sandbox, "GET", "Institution/HealthCheckAuth")
    assert response.status_code == 200
    assert response.json() == "this is online."
    assert response.text == '"this is online."'
    assert request(sandbox, "POST", "Institution/HealthCheckAuth").status_code == 405


@pytest.mark.parametrize("route", ["Job/UpdateJobCaptcha", "Job/UpdateJobCaptchaInput"])
def test_both_captcha_routes_take_the_answer(sandbox: SandboxServer, route: str) -> None:
    tracker = create_login(sandbox, f"captcha-route-{route[-5:]}", CAPTCHA_BANK)
    job = call(sandbox, "POST", "Job/GetJobInformationByID", {"JobID": tracker["JobID"]})
    assert job["LastStatus"] == "Waiting"
    assert job["CaptchaImage"].startswith("iVBORw0KGgo")
    response = request(
        sandbox, "POST", route, json={"JobID": tracker["JobID"], "CaptchaInput": "CAGT"}
    )
    assert response.status_code == 200
    assert response.text.strip() == "0"
    job = call(sandbox, "POST", "Job/GetJobInformationByID", {"JobID": tracker["JobID"]})
    assert job["CaptchaImage"] is None
    assert job["CaptchaInput"] == "CAGT"
    assert job["SuccessFlag"] is True
    again = request(
        sandbox, "POST", route, json={"JobID": tracker["JobID"], "CaptchaInput": "CAGT"}
    )
    assert again.status_code == 200
    assert again.text.strip() == "-1"


def test_v1_updates_answer_bare_zero_and_minus_one(sandbox: SandboxServer) -> None:
    tracker = create_login(sandbox, "bare-numbers-1", TEST_BANKS["Sophtron Bank SecurityQuestion"])
    job = call(sandbox, "POST", "Job/GetJobInformationByID", {"JobID": tracker["JobID"]})
    assert json.loads(job["SecurityQuestion"]) == ["What is your favorite color?"]
    wrong_step = request(
        sandbox,
        "POST",
        "Job/UpdateJobTokenInput",
        json={"JobID": tracker["JobID"], "TokenInput": "123456"},
    )
    assert (wrong_step.status_code, wrong_step.text) == (200, "-1")
    accepted = request(
        sandbox,
        "POST",
        "Job/UpdateJobSecurityAnswer",
        json={"JobID": tracker["JobID"], "SecurityAnswer": '["blue"]'},
    )
    assert (accepted.status_code, accepted.text) == (200, "0")
    assert accepted.json() == 0
    twice = request(
        sandbox,
        "POST",
        "Job/UpdateJobSecurityAnswer",
        json={"JobID": tracker["JobID"], "SecurityAnswer": '["blue"]'},
    )
    assert (twice.status_code, twice.text) == (200, "-1")
    assert twice.json() == -1


@pytest.mark.parametrize(
    "job_types",
    ["aggregate|verification", "aggregate%7Cverification", "aggregate%7cidentity%7Chistory"],
)
def test_v2_job_types_with_a_pipe_raw_or_escaped(sandbox: SandboxServer, job_types: str) -> None:
    customer = call(
        sandbox,
        "POST",
        "v2/customers",
        {"UniqueID": f"pipes-{job_types}", "Name": "Pipes", "Source": "tests"},
    )
    path = f"v2/customers/{customer['CustomerID']}/members/{job_types}"
    url = f"{sandbox.url}/{path}"
    response = send(
        "POST",
        url,
        official_header("POST", url),
        json={"UserName": f"pipe-{job_types}", "Password": "asdf", "InstitutionID": NOMFA},
    )
    assert response.status_code == 200, response.text
    created = response.json()
    assert set(created) == {"MemberID", "JobID"}
    job = call(sandbox, "GET", f"v2/job/{created['JobID']}")
    assert job["SuccessFlag"] is True
    assert job["UserInstitutionID"] == created["MemberID"]
    assert "|" in job["JobType"]
    assert "%" not in job["JobType"]
    again = call(sandbox, "GET", f"v2/customers/{customer['CustomerID']}")
    assert again["MemberIDs"] == [created["MemberID"]]
    members = call(sandbox, "GET", f"v2/customers/{customer['CustomerID']}/members")
    assert [m["MemberID"] for m in members] == [created["MemberID"]]


@pytest.mark.parametrize(
    "path",
    [
        "v2/customers?uniqueID={u}",
        "v2/customers?uniqueid={u}",
        "v2/customers/?uniqueId={u}",
        "V2/Customers?UNIQUEID={u}",
    ],
)
def test_customer_lookup_by_unique_id(sandbox: SandboxServer, path: str) -> None:
    unique = "lookup-unique-7"
    customer = call(
        sandbox, "POST", "v2/customers", {"UniqueID": unique, "Name": "Lookup", "Source": "tests"}
    )
    call(sandbox, "POST", "v2/customers", {"UniqueID": "lookup-other-8", "Name": "Other"})
    found = call(sandbox, "GET", path.format(u=unique))
    assert [c["CustomerID"] for c in found] == [customer["CustomerID"]]
    assert found[0]["UniqueID"] == unique
    assert call(sandbox, "GET", path.format(u="nobody-has-this")) == []


def test_mixed_case_v2_paths_like_odoo(sandbox: SandboxServer) -> None:
    customer_id, member_id, accounts = v2_member(sandbox, "odoo-case", "odoo-case-1")
    mixed = call(sandbox, "GET", f"v2/Customers/{customer_id}/Members/{member_id}/accounts")
    assert [a["AccountID"] for a in mixed] == [a["AccountID"] for a in accounts]


# --- authentication ------------------------------------------------------------------------------


def test_unsigned_request_is_401(sandbox: SandboxServer) -> None:
    response = httpx.post(
        f"{sandbox.url}/Institution/GetInstitutionByName",
        json={"InstitutionName": "bank"},
        timeout=30,
    )
    assert response.status_code == 401
    assert isinstance(response.json()["Message"], str)
    bearer = send("GET", f"{sandbox.url}/Institution/HealthCheckAuth", "Bearer abc")
    assert bearer.status_code == 401


def test_unknown_user_id_is_401(sandbox: SandboxServer) -> None:
    url = f"{sandbox.url}/Institution/HealthCheckAuth"
    unknown = official_header("GET", url, user_id="11111111-2222-4333-8444-555555555555")
    assert send("GET", url, unknown).status_code == 401
    assert send("GET", url, official_header("GET", url)).status_code == 200


def test_bad_signature_is_401_with_a_message(sandbox: SandboxServer) -> None:
    url = f"{sandbox.url}/Institution/GetInstitutionByName"
    wrong_key = official_header("POST", url, access_key=OTHER_ACCESS_KEY)
    response = send("POST", url, wrong_key, json={"InstitutionName": "bank"})
    assert response.status_code == 401
    body = response.json()
    assert isinstance(body, dict)
    assert isinstance(body["Message"], str)
    assert body["Message"]
    good = official_header("POST", url)
    user, sig, path = good.split(":", 1)[1].split(":", 2)
    tampered = f"FIApiAUTH:{user}:{sig[:-2]}A=:{path}"
    assert send("POST", url, tampered, json={"InstitutionName": "bank"}).status_code == 401
    wrong_method = official_header("GET", url)
    assert send("POST", url, wrong_method, json={"InstitutionName": "bank"}).status_code == 401


def _transactions_url(server: SandboxServer, customer_id: str, account_id: str) -> str:
    return (
        f"{server.url}/v2/customers/{customer_id}/accounts/{account_id}/transactions"
        "?startDate=2026-10-01&endDate=2026-11-21"
    )


def _firefly_header() -> str:
    header = fiapi_header(USER_ID, ACCESS_KEY, "POST", "/userinstitution/getuserinstitutionsbyuser")
    # The reference's FF-alt test vector.
    assert header.split(":")[2] == "WENUfDSvS/P3wsN1qYcdCtkP6yzteY2C53xJOL0cD88="
    return header


def test_lenient_auth_accepts_every_known_client(sandbox: SandboxServer) -> None:
    customer_id, _, accounts = v2_member(sandbox, "lenient-auth", "lenient-auth-1")
    url = _transactions_url(sandbox, customer_id, accounts[0]["AccountID"])
    official = send("GET", url, official_header("GET", url))
    assert official.status_code == 200, official.text
    assert official.json()
    assert official_header("GET", url).endswith(
        ":/transactions?startdate=2026-10-01&enddate=2026-11-21"
    )
    sure_current = send("GET", url, official_header("GET", url.split("?")[0]))
    assert sure_current.status_code == 200, sure_current.text
    assert sure_current.json() == official.json()
    response = signed_request(
        sandbox, "GET", url.removeprefix(sandbox.url), sign_url=url.split("?")[0]
    )
    assert response.status_code == 200

    ff_url = f"{sandbox.url}/UserInstitution/GetUserInstitutionsByUser"
    firefly = send("POST", ff_url, _firefly_header(), json={"userID": USER_ID})
    assert firefly.status_code == 200, firefly.text
    assert isinstance(firefly.json(), list)
    assert firefly.json()
    multi_segment = fiapi_header(USER_ID, ACCESS_KEY, "GET", "/v2/institutions")
    v2 = send("GET", f"{sandbox.url}/v2/institutions?query=Sophtron", multi_segment)
    assert v2.status_code == 200


def test_strict_auth_accepts_only_the_official_rule(make_sandbox: MakeSandbox) -> None:
    server = make_sandbox(strict_auth=True)
    assert admin(server, "GET", "")["strict_auth"] is True
    customer_id, _, accounts = v2_member(server, "strict-auth", "strict-auth-1")
    url = _transactions_url(server, customer_id, accounts[0]["AccountID"])
    official = send("GET", url, official_header("GET", url))
    assert official.status_code == 200, official.text
    assert official.json()
    sure_current = send("GET", url, official_header("GET", url.split("?")[0]))
    assert sure_current.status_code == 401

    ff_url = f"{server.url}/UserInstitution/GetUserInstitutionsByUser"
    assert (
        send("POST", ff_url, official_header("POST", ff_url), json={"UserID": USER_ID}).status_code
        == 200
    )
    assert send("POST", ff_url, _firefly_header(), json={"userID": USER_ID}).status_code == 401


@pytest.mark.parametrize("strict", [False, True])
def test_auth_path_must_be_a_suffix_of_the_request(make_sandbox: MakeSandbox, strict: bool) -> None:
    server = make_sandbox(strict_auth=strict)
    by_name = f"{server.url}/Institution/GetInstitutionByName"
    by_id = f"{server.url}/Institution/GetInstitutionByID"
    header = fiapi_header(USER_ID, ACCESS_KEY, "POST", "/getinstitutionbyid")
    # The HMAC is valid: the same header opens the route it names ...
    assert send("POST", by_id, header, json={"InstitutionID": NOMFA}).status_code == 200
    # ... but not another one.
    assert send("POST", by_name, header, json={"InstitutionName": "bank"}).status_code == 401
    elsewhere = fiapi_header(USER_ID, ACCESS_KEY, "POST", "/other/getinstitutionbyname")
    assert send("POST", by_name, elsewhere, json={"InstitutionName": "bank"}).status_code == 401
    no_slash = fiapi_header(USER_ID, ACCESS_KEY, "POST", "getinstitutionbyname")
    assert send("POST", by_name, no_slash, json={"InstitutionName": "bank"}).status_code == 401


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "Institution/NoSuchAction"),
        ("POST", "NoSuchController/GetInstitutionByName"),
        ("GET", "v3/customers"),
        ("GET", "v2/customers/a/b/c/d/e/f/g"),
    ],
)
def test_unknown_route_is_404_with_a_message(
    sandbox: SandboxServer, method: str, path: str
) -> None:
    response = request(sandbox, method, path, json={} if method == "POST" else None)
    assert response.status_code == 404
    assert isinstance(response.json()["Message"], str)
    assert response.json()["Message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "Institution/GetInstitutionByName"),
        ("PUT", "UserInstitution/CreateUserInstitution"),
        ("POST", "Institution/HealthCheckAuth"),
        ("DELETE", "v2/job/5e1b2c3d-0000-4000-8000-00000000abcd"),
        ("PATCH", "v2/customers"),
    ],
)
def test_wrong_method_is_405(sandbox: SandboxServer, method: str, path: str) -> None:
    response = request(sandbox, method, path)
    assert response.status_code == 405
    assert isinstance(response.json()["Message"], str)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("Institution/GetInstitutionByName", {}, "InstitutionName"),
        ("Institution/GetInstitutionByName", {"InstitutionName": "  "}, "InstitutionName"),
        ("Institution/GetInstitutionByID", {"Other": 1}, "InstitutionID"),
        (
            "UserInstitution/CreateUserInstitution",
            {"UserID": USER_ID, "InstitutionID": NOMFA, "Password": "asdf"},
            "UserName",
        ),
        ("Job/GetJobInformationByID", {}, "JobID"),
        ("Transaction/GetTransactionsByTransactionDate", {"StartDate": "2026-01-01"}, "AccountID"),
    ],
)
def test_missing_required_field_is_400_naming_it(
    sandbox: SandboxServer, path: str, body: dict[str, Any], field: str
) -> None:
    response = request(sandbox, "POST", path, json=body)
    assert response.status_code == 400, response.text
    assert field in response.text
    assert isinstance(response.json()["Message"], str)


def test_missing_field_of_a_real_account_names_the_date(sandbox: SandboxServer) -> None:
    login_id = connect(sandbox, "missing-date-1")
    account_id = accounts_of(sandbox, login_id)[0]["AccountID"]
    response = request(
        sandbox,
        "POST",
        "Transaction/GetTransactionsByTransactionDate",
        json={"AccountID": account_id, "StartDate": "2026-01-01"},
    )
    assert response.status_code == 400
    assert "EndDate" in response.text
    bad = request(
        sandbox,
        "POST",
        "Transaction/GetTransactionsByTransactionDate",
        json={"AccountID": account_id, "StartDate": "yesterday", "EndDate": "2026-01-01"},
    )
    assert bad.status_code == 400
    assert "StartDate" in bad.text


@pytest.mark.parametrize("content", [b"not json", b'{"InstitutionName": ', b"[1, 2]", b"42"])
def test_body_that_is_not_a_json_object_is_400(sandbox: SandboxServer, content: bytes) -> None:
    response = request(sandbox, "POST", "Institution/GetInstitutionByName", content=content)
    assert response.status_code == 400
    assert isinstance(response.json()["Message"], str)


def test_ids_of_another_user_are_404_never_the_data(sandbox: SandboxServer) -> None:
    other = {"user_id": OTHER_USER_ID, "access_key": OTHER_ACCESS_KEY}
    secret_name = "other-users-secret-login"
    tracker = create_login(sandbox, secret_name, **other)
    finish_job(sandbox, tracker["JobID"], **other)
    login_id = tracker["UserInstitutionID"]
    account_id = accounts_of(sandbox, login_id, **other)[0]["AccountID"]
    assert transactions_of(sandbox, account_id, **other)
    customer = call(sandbox, "POST", "v2/customers", {"UniqueID": "other-customer"}, **other)

    attempts = [
        ("POST", "UserInstitution/GetUserInstitutionByID", {"UserInstitutionID": login_id}),
        ("POST", "UserInstitution/GetUserInstitutionAccounts", {"UserInstitutionID": login_id}),
        ("POST", "UserInstitution/RefreshUserInstitution", {"UserInstitutionID": login_id}),
        ("POST", "UserInstitution/DeleteUserInstitution", {"UserInstitutionID": login_id}),
        ("POST", "UserInstitutionAccount/GetUserInstitutionAccountByID", {"AccountID": account_id}),
        ("POST", "Job/GetJobInformationByID", {"JobID": tracker["JobID"]}),
        (
            "POST",
            "Transaction/GetTransactionsByTransactionDate",
            {"AccountID": account_id, "StartDate": FAR_PAST, "EndDate": FAR_FUTURE},
        ),
        ("GET", f"v2/job/{tracker['JobID']}", None),
        ("GET", f"v2/customers/{customer['CustomerID']}", None),
        ("GET", f"v2/customers/{customer['CustomerID']}/accounts", None),
        ("DELETE", f"v2/customers/{customer['CustomerID']}", None),
    ]
    for method, path, body in attempts:
        response = request(sandbox, method, path, json=body)
        assert response.status_code == 404, (path, response.status_code, response.text)
        assert secret_name not in response.text
        assert account_id not in response.text
    mine = call(sandbox, "POST", "UserInstitution/GetUserInstitutionsByUser", {"UserID": USER_ID})
    assert login_id not in {m["UserInstitutionID"] for m in mine}
    theirs = call(
        sandbox, "POST", "UserInstitution/GetUserInstitutionsByUser", {"UserID": OTHER_USER_ID}
    )
    assert theirs == []
    assert customer["CustomerID"] not in {
        c["CustomerID"] for c in call(sandbox, "GET", "v2/customers")
    }
    # The other user still has everything.
    still = call(
        sandbox,
        "POST",
        "UserInstitution/GetUserInstitutionByID",
        {"UserInstitutionID": login_id},
        **other,
    )
    assert still["UserName"] == secret_name
    assert call(sandbox, "GET", f"v2/customers/{customer['CustomerID']}", **other)


# --- determinism ---------------------------------------------------------------------------------


def _session(server: SandboxServer) -> dict[str, Any]:
    """A fixed request sequence; everything it saw except wall-clock timestamps."""
    found = call(server, "POST", "Institution/GetInstitutionByName", {"InstitutionName": "bank"})
    tracker = create_login(server, "determinism+years=1.5")
    job = finish_job(server, tracker["JobID"])
    accounts = accounts_of(server, tracker["UserInstitutionID"])
    txns = {a["AccountID"]: transactions_of(server, a["AccountID"]) for a in accounts}
    customer_id, member_id, v2_accounts = v2_member(server, "determinism", "determinism-v2")
    v2_txns = [
        call(
            server,
            "GET",
            f"v2/customers/{customer_id}/accounts/{a['AccountID']}/transactions"
            "?startDate=2025-01-01&endDate=2026-11-21",
        )
        for a in v2_accounts
    ]
    return {
        "institutions": [i["InstitutionID"] for i in found],
        "tracker": tracker,
        "job": job,
        "accounts": [{k: v for k, v in a.items() if k != "LastUpdated"} for a in accounts],
        "transactions": txns,
        "customer": customer_id,
        "member": member_id,
        "v2_accounts": v2_accounts,
        "v2_transactions": v2_txns,
    }


def test_same_seed_same_requests_same_answers(make_sandbox: MakeSandbox) -> None:
    first = _session(make_sandbox())
    second = _session(make_sandbox())
    assert first == second
    assert sum(len(t) for t in first["transactions"].values()) > 500


def test_different_seed_different_catalogue(make_sandbox: MakeSandbox) -> None:
    one = make_sandbox()
    other = make_sandbox(seed=SEED + 1)
    catalogue_one = call(one, "GET", "v2/institutions")
    catalogue_other = call(other, "GET", "v2/institutions")
    ids_one = {i["InstitutionID"] for i in catalogue_one}
    ids_other = {i["InstitutionID"] for i in catalogue_other}
    names_one = [i["InstitutionName"] for i in catalogue_one]
    names_other = [i["InstitutionName"] for i in catalogue_other]
    assert names_one != names_other
    # Only the test banks, with their published ids, are shared.
    assert ids_one & ids_other == set(TEST_BANKS.values())
    again = call(make_sandbox(), "GET", "v2/institutions")
    assert again == catalogue_one


# --- the catalogue -------------------------------------------------------------------------------

_QUERIES = (
    "bank",
    "credit union",
    "card",
    "visa",
    "securities",
    "investments",
    "brokerage",
    "wealth",
    "retirement",
    "mortgage",
    "home loans",
    "finance",
    "student loan",
    "lending",
    "electric",
    "power",
    "gas",
    "water",
    "energy",
    "broadband",
    "wireless",
    "trust",
    "savings",
    "caisse",
)
_KIND_SUFFIXES = {
    "bank": ("Bank", "Bank & Trust", "Federal Savings", "Trust Company"),
    "credit union": ("Credit Union",),
    "card issuer": ("Card Services", "Credit Card", "Rewards Card", "Visa", "Mastercard"),
    "broker": (
        "Securities",
        "Investments",
        "Brokerage",
        "Wealth Management",
        "Retirement Services",
    ),
    "loan servicer": (
        "Mortgage",
        "Home Loans",
        "Auto Finance",
        "Student Loan Servicing",
        "Lending",
    ),
    "utility": (
        "Electric",
        "Power & Light",
        "Gas Company",
        "Water Utility",
        "Energy",
        "Broadband",
        "Wireless",
    ),
}


@pytest.fixture(scope="module")
def searched(sandbox: SandboxServer) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for query in _QUERIES:
        for institution in call(
            sandbox, "POST", "Institution/GetInstitutionByName", {"InstitutionName": query}
        ):
            assert all(word in institution["InstitutionName"].lower() for word in query.split())
            found[institution["InstitutionID"]] = institution
    return found


def test_catalogue_holds_over_a_thousand_institutions(
    sandbox: SandboxServer, searched: dict[str, dict[str, Any]]
) -> None:
    assert len(searched) >= 1000
    assert admin(sandbox, "GET", "")["institutions"] >= 1000
    everything = call(sandbox, "GET", "v2/institutions")
    assert len(everything) == admin(sandbox, "GET", "")["institutions"]
    assert set(searched) <= {i["InstitutionID"] for i in everything}
    assert len({i["InstitutionName"] for i in everything}) == len(everything)


def test_catalogue_covers_every_kind(searched: dict[str, dict[str, Any]]) -> None:
    counts: dict[str, int] = defaultdict(int)
    for institution in searched.values():
        name = institution["InstitutionName"]
        for kind, suffixes in _KIND_SUFFIXES.items():
            if name.endswith(suffixes):
                counts[kind] += 1
    for kind in _KIND_SUFFIXES:
        assert counts[kind] >= 20, (kind, dict(counts))
    utilities = [
        i for i in searched.values() if i["InstitutionName"].endswith(_KIND_SUFFIXES["utility"])
    ]
    assert all(i["IsFinancial"] is False for i in utilities)
    banks = [i for i in searched.values() if i["InstitutionName"].endswith(" Bank")]
    assert all(i["IsFinancial"] is True for i in banks)


def test_routing_numbers_pass_the_aba_checksum(
    sandbox: SandboxServer, searched: dict[str, dict[str, Any]]
) -> None:
    numbers: dict[str, str] = {}
    for institution in searched.values():
        detail = institution["InstitutionDetail"]
        for number in [detail["RoutingNumber"], *detail["MultipleRoutingNumbers"].split("/")]:
            if number:
                assert is_valid_routing_number(number), (institution["InstitutionName"], number)
                numbers[number] = institution["InstitutionID"]
    assert len(numbers) >= 300
    assert not is_valid_routing_number("123456789")
    assert is_valid_routing_number("011000015")
    for number, institution_id in itertools.islice(numbers.items(), 5):
        found = call(
            sandbox, "POST", "Institution/GetInstitutionByRoutingNumber", {"RoutingNumber": number}
        )
        assert institution_id in {i["InstitutionID"] for i in found}


def test_the_seven_test_banks_have_the_reference_ids(sandbox: SandboxServer) -> None:
    found = call(
        sandbox, "POST", "Institution/GetInstitutionByName", {"InstitutionName": "Sophtron Bank"}
    )
    by_name = {i["InstitutionName"]: i["InstitutionID"] for i in found}
    for name, institution_id in TEST_BANKS.items():
        assert by_name[name] == institution_id
        exact = call(sandbox, "POST", "Institution/GetInstitutionByName", {"InstitutionName": name})
        assert exact[0]["InstitutionID"] == institution_id
    assert found[0]["InstitutionName"] == "Sophtron Bank"


# --- the world -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bank", list(TEST_BANKS))
def test_each_test_bank_login_has_every_kind_of_account(sandbox: SandboxServer, bank: str) -> None:
    login_id = connect(sandbox, f"every-kind-{bank}", TEST_BANKS[bank])
    accounts = accounts_of(sandbox, login_id)
    assert {a["AccountType"] for a in accounts} >= EVERY_KIND
    bill = next(a for a in accounts if a["AccountType"] == "Bill")
    assert bill["DueDate"] is not None
    assert V1_DATE.match(bill["DueDate"])
    assert bill["DueDate"][:10] > TODAY.isoformat()
    card = next(a for a in accounts if a["AccountType"] == "Credit_Card")
    assert card["DueDate"] is not None
    assert len({a["AccountID"] for a in accounts}) == len(accounts)


@pytest.fixture(scope="module")
def world(sandbox: SandboxServer) -> dict[str, Any]:
    login_id = connect(sandbox, "world-tour-1")
    accounts = accounts_of(sandbox, login_id)
    return {
        "login": login_id,
        "accounts": accounts,
        "transactions": {
            a["AccountID"]: transactions_of(sandbox, a["AccountID"]) for a in accounts
        },
    }


def test_world_has_more_than_a_year_of_history(world: dict[str, Any]) -> None:
    for account in world["accounts"]:
        days = [t["TransactionDate"][:10] for t in world["transactions"][account["AccountID"]]]
        assert days, account["AccountType"]
        assert min(days) <= (TODAY - dt.timedelta(days=365)).isoformat(), account["AccountType"]
        assert max(days) <= TODAY.isoformat()
        assert max(days) >= (TODAY - dt.timedelta(days=40)).isoformat()


def test_world_has_merchants_categories_income_and_expenses(world: dict[str, Any]) -> None:
    every = [t for txns in world["transactions"].values() for t in txns]
    merchants = {t["Merchant"] for t in every if t["Merchant"]}
    categories = {t["Category"] for t in every if t["Category"]}
    assert len(merchants) >= 10
    assert len(categories) >= 10
    checking = world["accounts"][0]
    assert checking["AccountType"] == "Checking"
    own = world["transactions"][checking["AccountID"]]
    income = [t for t in own if t["Amount"] > 0]
    expenses = [t for t in own if t["Amount"] < 0]
    assert len(income) >= 24
    assert len(expenses) >= 100
    assert sum(t["Amount"] for t in income) > 0
    assert any(t["Merchant"] and t["Category"] for t in expenses)


def test_world_transfers_appear_on_both_accounts(world: dict[str, Any]) -> None:
    posted: dict[tuple[str, Decimal], set[str]] = defaultdict(set)
    for account_id, txns in world["transactions"].items():
        for txn in txns:
            if txn["Status"] == "Posted" and txn["Amount"] != 0:
                posted[(txn["TransactionDate"], txn["Amount"])].add(account_id)
    pairs: set[frozenset[str]] = set()
    for (day, amount), accounts in posted.items():
        if amount > 0:
            for source in posted.get((day, -amount), set()):
                for target in accounts:
                    if source != target:
                        pairs.add(frozenset((source, target)))
    by_type = {a["AccountID"]: a["AccountType"] for a in world["accounts"]}
    kinds = {frozenset(by_type[a] for a in pair) for pair in pairs}
    for other in ("Savings", "Credit_Card", "Loan", "Investment", "Bill"):
        assert frozenset({"Checking", other}) in kinds, (other, kinds)
    savings = next(a for a in world["accounts"] if a["AccountType"] == "Savings")
    checking_txns = world["transactions"][world["accounts"][0]["AccountID"]]
    for txn in world["transactions"][savings["AccountID"]]:
        if "TRANSFER FROM CHECKING" in txn["Description"]:
            assert any(
                t["TransactionDate"] == txn["TransactionDate"] and t["Amount"] == -txn["Amount"]
                for t in checking_txns
            ), txn


def test_world_has_pending_transactions(world: dict[str, Any]) -> None:
    pending = [
        t for txns in world["transactions"].values() for t in txns if t["Status"] == "Pending"
    ]
    assert pending
    for txn in pending:
        assert txn["PostDate"] is None
        assert txn["TransactionDate"][:10] >= (TODAY - dt.timedelta(days=5)).isoformat()
    posted = [t for txns in world["transactions"].values() for t in txns if t["Status"] == "Posted"]
    assert len(posted) > 10 * len(pending)


def test_running_balances_follow_posting_order(world: dict[str, Any]) -> None:
    for account in world["accounts"]:
        txns = world["transactions"][account["AccountID"]]
        posted = sorted(
            ((t["PostDate"], index, t) for index, t in enumerate(txns) if t["Status"] == "Posted"),
            key=lambda item: item[:2],
        )
        assert posted
        for (_, _, before), (_, _, after) in itertools.pairwise(posted):
            assert after["Balance"] == before["Balance"] + after["Amount"], after
        assert posted[-1][2]["Balance"] == account["Balance"], account["AccountType"]


# --- admin routes --------------------------------------------------------------------------------


def test_admin_summary_describes_the_config(make_sandbox: MakeSandbox) -> None:
    summary = admin(make_sandbox(), "GET", "")
    assert summary["seed"] == SEED
    assert summary["today"] == TODAY.isoformat()
    assert summary["strict_auth"] is False
    assert summary["faults"] is None
    assert summary["rate_limit"] is None
    assert summary["institutions"] >= 1000
    other = admin(
        make_sandbox(
            seed=99,
            strict_auth=True,
            faults=FaultSpec.parse("500=0.25"),
            rate_limit=RateLimit.parse("5/MIN"),
        ),
        "GET",
        "",
    )
    assert other["seed"] == 99
    assert other["strict_auth"] is True
    assert "500=0.25" in other["faults"]
    assert other["rate_limit"] == "5/MIN"


def test_admin_stats_count_requests_by_route_and_status(make_sandbox: MakeSandbox) -> None:
    server = make_sandbox()
    assert admin(server, "GET", "stats")["total"] == 0
    for _ in range(3):
        request(server, "GET", "Institution/HealthCheckAuth")
    request(server, "POST", "Institution/GetInstitutionByName", json={})
    request(server, "POST", "Institution/Nothing", json={})
    httpx.get(f"{server.url}/Institution/HealthCheckAuth", timeout=30)
    request(server, "GET", "Institution/GetInstitutionByName")
    stats = admin(server, "GET", "stats")
    assert stats["total"] == 7
    assert stats["statuses"] == {"200": 3, "400": 1, "404": 1, "401": 1, "405": 1}
    health = next(
        v for k, v in stats["routes"].items() if k.lower().endswith("institution/healthcheckauth")
    )
    assert health == {"200": 3, "401": 1}
    search = next(
        v
        for k, v in stats["routes"].items()
        if k.lower().endswith("institution/getinstitutionbyname")
    )
    assert search == {"400": 1, "405": 1}
    assert sum(c for counts in stats["routes"].values() for c in counts.values()) == 7
    assert stats["users"][USER_ID] == 4
    assert admin(server, "DELETE", "stats") == {"reset": True}
    cleared = admin(server, "GET", "stats")
    assert cleared["total"] == 0
    assert cleared["routes"] == {}
    assert cleared["statuses"] == {}
    request(server, "GET", "Institution/HealthCheckAuth")
    assert admin(server, "GET", "stats")["total"] == 1


def _api_view(server: SandboxServer, login_id: str) -> dict[str, Any]:
    return {
        account["AccountID"]: {
            "Balance": account["Balance"],
            "Transactions": [
                (t["TransactionID"], t["ID"], t["Amount"], t["Status"])
                for t in transactions_of(server, account["AccountID"])
            ],
        }
        for account in accounts_of(server, login_id)
    }


def _truth_view(server: SandboxServer, login_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.root}/_sandbox/truth", timeout=30)
    truth = json.loads(response.text, parse_float=Decimal)
    login = next(item for item in truth["Logins"] if item["UserInstitutionID"] == login_id)
    return {
        account["AccountID"]: {
            "Balance": account["Balance"],
            "Transactions": [
                (t["TransactionID"], t["ID"], t["Amount"], t["Status"])
                for t in account["Transactions"]
            ],
        }
        for account in login["Accounts"]
    }


def test_truth_lists_everything_the_api_shows(make_sandbox: MakeSandbox) -> None:
    server = make_sandbox()
    mine = connect(server, "truth-one")
    other = {"user_id": OTHER_USER_ID, "access_key": OTHER_ACCESS_KEY}
    theirs = connect(server, "truth-two", TEST_BANKS["Sophtron Bank Token"], **other)
    truth = admin(server, "GET", "truth")
    assert truth["Today"] == TODAY.isoformat()
    assert {item["UserInstitutionID"] for item in truth["Logins"]} == {mine, theirs}
    api = _api_view(server, mine)
    assert len(api) == 6
    assert _truth_view(server, mine) == api
    assert sum(len(a["Transactions"]) for a in api.values()) > 500
    mine_only = admin(server, "GET", f"truth?user_id={USER_ID}")
    assert [item["UserInstitutionID"] for item in mine_only["Logins"]] == [mine]
    login = mine_only["Logins"][0]
    assert login["UserID"] == USER_ID
    assert login["InstitutionID"] == NOMFA
    assert login["UserName"] == "truth-one"


def test_advancing_the_clock_shows_new_data_only_after_a_refresh(
    make_sandbox: MakeSandbox,
) -> None:
    server = make_sandbox()
    login_id = connect(server, "clock+daily=20+years=0.3")
    before = _api_view(server, login_id)
    before_accounts = {a["AccountID"]: a for a in accounts_of(server, login_id)}
    assert admin(server, "POST", "advance", json={"days": 10}) == {"today": "2026-12-01"}
    assert admin(server, "GET", "")["today"] == "2026-12-01"

    # No refresh yet: the bank shows what it showed.
    assert _api_view(server, login_id) == before
    for account_id in before:
        assert not transactions_of(server, account_id, "2026-11-22", FAR_FUTURE)

    tracker = call(
        server, "POST", "UserInstitution/RefreshUserInstitution", {"UserInstitutionID": login_id}
    )
    finish_job(server, tracker["JobID"])
    after = _api_view(server, login_id)
    assert set(after) == set(before)
    assert _truth_view(server, login_id) == after

    new_days = [
        t["TransactionDate"]
        for account_id in after
        for t in transactions_of(server, account_id, "2026-11-22", FAR_FUTURE)
    ]
    assert len(new_days) >= 50
    assert max(new_days)[:10] <= "2026-12-01"

    changed_amount = changed_id = posted_now = 0
    for account_id, old in before.items():
        new_by_record = {
            record: (tid, amount, status)
            for tid, record, amount, status in after[account_id]["Transactions"]
        }
        old_posted = {record for _, record, _, status in old["Transactions"] if status == "Posted"}
        for tid, record, amount, status in old["Transactions"]:
            if status != "Pending" or record not in new_by_record:
                continue
            new_tid, new_amount, new_status = new_by_record[record]
            assert new_status == "Posted", (record, new_status)
            posted_now += 1
            changed_amount += new_amount != amount
            changed_id += new_tid != tid
        for tid, record, amount, status in old["Transactions"]:
            if status == "Posted":
                assert new_by_record[record] == (tid, amount, "Posted")
        newly_posted = sum(
            (
                amount
                for _, record, amount, status in after[account_id]["Transactions"]
                if status == "Posted" and record not in old_posted
            ),
            Decimal(0),
        )
        assert after[account_id]["Balance"] - old["Balance"] == newly_posted, before_accounts[
            account_id
        ]["AccountType"]
    assert posted_now >= 10
    assert changed_amount >= 1
    assert changed_id >= 1


def test_advance_to_a_date_and_never_backwards(make_sandbox: MakeSandbox) -> None:
    server = make_sandbox()
    assert admin(server, "POST", "advance", json={"to": "2026-12-25"}) == {"today": "2026-12-25"}
    assert admin(server, "GET", "")["today"] == "2026-12-25"
    login_id = connect(server, "advance-to-1")
    days = [
        t["TransactionDate"][:10]
        for a in accounts_of(server, login_id)
        for t in transactions_of(server, a["AccountID"])
    ]
    assert max(days) <= "2026-12-25"
    assert max(days) >= "2026-12-20"
    for body in ({"to": "2026-12-24"}, {"days": -1}, {"to": "not a date"}, [1]):
        response = httpx.post(f"{server.root}/_sandbox/advance", json=body, timeout=30)
        assert response.status_code == 400, body
        assert isinstance(response.json()["Message"], str)
    assert admin(server, "GET", "")["today"] == "2026-12-25"
    assert admin(server, "POST", "advance", json={"to": "2026-12-25"}) == {"today": "2026-12-25"}
    assert admin(server, "POST", "advance", json={"days": 7}) == {"today": "2027-01-01"}
