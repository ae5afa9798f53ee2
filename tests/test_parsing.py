"""Lenient value parsers and the response models (reference §3, §8, Appendix A, shared fixtures)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sophsync.sophtron import _parse
from sophsync.sophtron.mfa import (
    CaptchaPrompt,
    JobState,
    PhoneConfirmationPrompt,
    SecurityQuestionsPrompt,
    TokenInputPrompt,
    TokenMethodPrompt,
    job_status,
)
from sophsync.sophtron.models import (
    Account,
    AccountKind,
    Customer,
    Institution,
    Job,
    JobTracker,
    Member,
    Transaction,
    UserInstitution,
    classify_account,
)

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "sophtron"
UTC = dt.UTC
NO_DB = settings(database=None, deadline=None, max_examples=300)


def load(relative: str) -> Any:
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


def as_list(data: Any) -> list[Any]:
    return data if isinstance(data, list) else [data]


# --- fixtures: SURE webmock stubs ----------------------------------------------------------------

SURE = "sure/sophtron_test.webmock.json"


def sure_stub(test_name: str) -> dict[str, Any]:
    stubs = [stub for stub in load(SURE)["stubs"] if stub["test"] == test_name]
    assert len(stubs) == 1, test_name
    return stubs[0]


# The model each Sophtron route answers with (by the URL's last segment).
SURE_ROUTE_MODELS: dict[str, type] = {
    "customers": Customer,
    "CreateUserInstitution": JobTracker,
    "GetTransactionsByTransactionDate": Transaction,
    "GetUserInstitutionAccounts": Account,
}


def test_every_sure_json_response_parses_with_its_model() -> None:
    parsed = 0
    for stub in load(SURE)["stubs"]:
        if "response" not in stub:
            continue
        assert stub["status"] == 200
        model = SURE_ROUTE_MODELS[stub["url"].rsplit("/", 1)[-1]]
        for item in as_list(stub["response"]):
            assert isinstance(model.model_validate(item), model)
            parsed += 1
    assert parsed == 6


def test_sure_lists_customers() -> None:
    (data,) = sure_stub("lists v2 customers")["response"]
    customer = Customer.model_validate(data)
    assert customer.customer_id == "cust-1"
    assert customer.customer_name == "Sure family 1"
    assert customer.member_ids == []


def test_sure_created_customer() -> None:
    customer = Customer.model_validate(
        sure_stub("creates customer with documented body")["response"]
    )
    assert (customer.customer_id, customer.customer_name) == ("cust-1", "Sure family 1")


def test_sure_create_user_institution_tracker() -> None:
    stub = sure_stub("creates user institution with documented V1 body")
    tracker = JobTracker.model_validate(stub["response"])
    assert tracker.job_id == "job-1"
    assert tracker.user_institution_id == "ui-1"
    assert tracker.member_id is None
    assert tracker.login_id == "ui-1"


def test_sure_accounts_with_account_balance() -> None:
    (data,) = sure_stub("maps user institution accounts from V1 fields")["response"]
    account = Account.model_validate(data)
    assert account.account_id == "acct-1"
    assert account.account_name == "Checking"
    assert account.account_type == "checking"
    assert account.balance == Decimal("123.45")
    assert isinstance(account.balance, Decimal)
    assert account.account_number == "00001234"
    assert account.mask == "1234"
    assert account.kind is AccountKind.DEPOSITORY
    assert account.currency == "USD"
    assert account.tracked


@pytest.mark.parametrize(
    "test_name",
    [
        "fetches transactions by transaction date with documented body",
        "normalizes TransactionId transaction identifiers",
    ],
)
def test_sure_transactions_with_string_amounts(test_name: str) -> None:
    (data,) = sure_stub(test_name)["response"]
    tx = Transaction.model_validate(data)
    assert tx.provider_id == "tx-1"
    assert tx.transaction_id == "tx-1"
    assert tx.amount == Decimal("-12.34")
    assert str(tx.amount) == "-12.34"
    assert tx.signed_amount == Decimal("-12.34")
    assert tx.transaction_date == dt.date(2026, 1, 15)
    assert tx.booked_on == dt.date(2026, 1, 15)
    assert tx.description == "CHECKCARD 1234 Coffee Shop NY"
    assert tx.currency == "USD"
    assert not tx.pending


def test_sure_classifier_job_objects_parse_as_jobs() -> None:
    jobs = load(SURE)["job_objects_used_by_classifier_tests"]
    assert jobs
    for index, entry in enumerate(jobs):
        data = {"JobID": f"job-{index}", **entry["job"]}
        job = Job.model_validate(data)
        assert job.job_id == f"job-{index}"
        assert job.last_step == entry["job"]["LastStep"]
        assert job.last_status == entry["job"]["LastStatus"]
        assert job.success_flag is entry["job"].get("SuccessFlag")
        assert job.token_input_name == entry["job"].get("TokenInputName")
        assert job.token_input == entry["job"].get("TokenInput")


# --- fixtures: ucw-app ---------------------------------------------------------------------------


def test_ucw_member_payloads() -> None:
    data = load("ucw-app/sophtronMember.json")
    for key in ("createMemberData", "updateMemberData", "getMemberData"):
        member = Member.model_validate(data[key])
        assert member.member_id == "memberId"
        assert member.job_id == "jobId"
        tracker = JobTracker.model_validate(data[key])
        assert tracker.job_id == "jobId"
        assert tracker.member_id == "memberId"
        assert tracker.login_id == "memberId"
    assert Member.model_validate(data["getMemberData"]).institution_id == "institutionId"
    assert Member.model_validate(data["createMemberData"]).institution_id is None


def test_ucw_customer_payloads() -> None:
    data = load("ucw-app/sophtronCustomer.json")
    assert Customer.model_validate(data["customerFromUniqueIdData"]).customer_id == (
        "CustomerIdUniqueId"
    )
    created = Customer.model_validate(data["createCustomerData"])
    assert created.customer_id == "CustomerIdCreate"
    assert created.customer_name is None
    assert created.member_ids == []


def test_ucw_institution_accounts() -> None:
    data = load("ucw-app/institution.json")
    (account,) = [
        Account.model_validate(item) for item in data["sophtronUserInstitutionAccountsData"]
    ]
    assert account.account_id == "AccountID"
    assert account.account_name == "AccountName"
    assert account.account_number == "AccountNumber"
    assert account.balance is None
    assert account.kind is AccountKind.OTHER


def test_ucw_institution_payload() -> None:
    """UCW's GetInstitutionByID stub carries only ``InstitutionID``; it must still parse."""
    data = load("ucw-app/institution.json")["sophtronInstitutionData"]
    institution = Institution.model_validate(data)
    assert institution.institution_id == "institutionId"
    assert not institution.institution_name
    assert institution.institution_detail is None
    assert institution.routing_numbers == []


# §9.7 of the reference: test-bank names and InstitutionIDs.
TEST_BANK_IDS = {
    "Sophtron Bank": "8d0d9991-5e35-4b82-afa4-e93695e5ca7d",
    "Sophtron Bank NoMFA": "926623ca-5952-4921-8f77-2023f1cdde8e",
    "Sophtron Bank Captcha": "8ad00f00-72b7-4642-a0de-b3f31e08510a",
    "Sophtron Bank SecurityQuestion": "8809dee7-9e23-4039-a723-02bc01fce0f2",
    "Sophtron Bank SecurityQuestion Multiple": "8f32ccc1-acaf-4e6b-93b8-1f2cd398647d",
    "Sophtron Bank Token": "337fe0c2-476e-46f5-a360-bf33f9fe1937",
    "Sophtron Bank TokenRead": "0fe7236b-079a-4fe6-aed9-cf194790a553",
}


def test_ucw_test_institutions_build_institutions() -> None:
    data = load("ucw-app/testInstitutions.json")
    assert (
        data["SOPHTRON_BANK_NO_MFA_SOPHTRON_INSTITUTION_ID"] == TEST_BANK_IDS["Sophtron Bank NoMFA"]
    )
    seen = set()
    for entry in data["testInstitutions"]:
        institution = Institution.model_validate(
            {
                "InstitutionID": entry["sophtron"]["id"],
                "InstitutionName": entry["name"],
                "URL": entry["url"],
                "Logo": entry["logo"],
            }
        )
        assert institution.institution_id == TEST_BANK_IDS[institution.institution_name]
        assert institution.url == "https://sophtron.com"
        seen.add(institution.institution_name)
    assert seen == set(TEST_BANK_IDS)


UCW_JOBS = "ucw-app/adapter.test.job-responses.json"


def ucw_job(case: str) -> Job:
    (entry,) = [item for item in load(UCW_JOBS)["job_responses"] if item["case"] == case]
    return Job.model_validate(entry["body"])


def test_every_ucw_job_response_parses() -> None:
    responses = load(UCW_JOBS)["job_responses"]
    assert len(responses) == 9
    for entry in responses:
        job = Job.model_validate(entry["body"])
        assert job.job_id == "testJobId"
        assert job.user_institution_id == "testUserInstitutionId"
        assert job.last_step == "job_step"


def test_ucw_job_success_and_failure() -> None:
    success = job_status(ucw_job("success"))
    assert success.state is JobState.SUCCEEDED
    assert success.done
    failure = job_status(ucw_job("failure"))
    assert failure.state is JobState.FAILED
    assert failure.done
    assert failure.failure is not None


@pytest.mark.parametrize(
    ("case", "job_type"),
    [
        ("AccountsReady (agg)", "agg"),
        ("AccountsReady (verification, singleAccountSelect)", "verification"),
    ],
)
def test_ucw_job_accounts_ready_is_still_running(case: str, job_type: str) -> None:
    job = ucw_job(case)
    assert job.job_type == job_type
    assert job.success_flag is None
    status = job_status(job)
    assert status.state is JobState.RUNNING
    assert status.accounts_ready
    assert not status.done


def test_ucw_job_prompts() -> None:
    security = job_status(ucw_job("SecurityQuestion"))
    assert security.state is JobState.NEEDS_INPUT
    assert security.prompt == SecurityQuestionsPrompt(
        ("securityQuestionString1", "securityQuestionString2")
    )
    method = job_status(ucw_job("TokenMethod"))
    assert method.prompt == TokenMethodPrompt(("tokenMethodString",))
    token = job_status(ucw_job("TokenSentFlag + TokenInputName"))
    assert token.prompt == TokenInputPrompt("testTokenInputName")
    read = job_status(ucw_job("TokenRead"))
    assert read.prompt == PhoneConfirmationPrompt("testTokenRead")
    captcha = job_status(ucw_job("CaptchaImage"))
    assert captcha.prompt == CaptchaPrompt("testCaptchaImage")
    for status in (security, method, token, read, captcha):
        assert status.state is JobState.NEEDS_INPUT
        assert not status.done


# --- fixtures: universal-connect-widget mock -----------------------------------------------------

MOCK = "universal-connect-widget/mock.json"


def test_mock_user_institution_accounts_with_account_id() -> None:
    (data,) = load(MOCK)["post"]["/api/UserInstitution/GetUserInstitutionAccounts"]
    assert "AccountId" in data
    assert "AccountID" not in data
    account = Account.model_validate(data)
    assert account.account_id == "MockedAccountId"
    assert account.account_name == "MockedUserInstitutionAccount"
    assert account.account_type == "AccountType"
    assert account.sub_type == "SubType"


def test_mock_institutions() -> None:
    post = load(MOCK)["post"]
    by_id = Institution.model_validate(post["/api/Institution/GetInstitutionByID"])
    assert by_id.institution_id == "MockedInstitutionID"
    assert by_id.institution_name == "MockedInstitutionName"
    assert by_id.logo == "https://sophtron.com/Images/logo.png"
    for route in (
        "/api/Institution/GetInstitutionByName",
        "/api/Institution/GetInstitutionByRoutingNumber",
    ):
        (institution,) = [Institution.model_validate(item) for item in post[route]]
        assert institution.institution_id == "MockedInstitutionID"
        assert institution.institution_name == "MockedInstitutionName"
    routing = Institution.model_validate(post["/api/Institution/GetInstitutionByRoutingNumber"][0])
    assert routing.url == "http://mocked.com"


def test_mock_user_institution_and_job_trackers() -> None:
    post = load(MOCK)["post"]
    login = UserInstitution.model_validate(
        post["/api/UserInstitution/InternalGetUserInstitutionByID"]
    )
    assert login.user_institution_id == "MockedUserInstitutionID"
    assert login.institution_id == "MockedInstitutionID"
    assert login.phone == []
    for route in (
        "CreateUserInstitutionWithRefresh",
        "CreateUserInstitutionWithFullAccountNumbers",
        "GetUserInstitutionProfileInfor",
        "RefreshUserInstitution",
    ):
        tracker = JobTracker.model_validate(post[f"/api/UserInstitution/{route}"])
        assert tracker.job_id == route
    with_login = JobTracker.model_validate(
        post["/api/UserInstitution/CreateUserInstitutionWithRefresh"]
    )
    assert with_login.login_id == "MockedUserInstitutionID"


def mock_jobs() -> list[Job]:
    jobs = []
    for index, entry in enumerate(load(MOCK)["mfaJobSequence"]):
        data = dict(entry)
        data.setdefault("JobID", f"mock-job-{index}")
        data.setdefault("UserInstitutionID", "MockedUserInstitutionID")
        jobs.append(Job.model_validate(data))
    return jobs


def test_mock_mfa_job_sequence_parses() -> None:
    jobs = mock_jobs()
    assert len(jobs) == 6
    captcha, security, method, token, ready, done = jobs
    # The mock puts the string "Processing" in SuccessFlag: still in progress.
    for job in (captcha, security, method, token):
        assert job.success_flag is None
    assert security.security_question == ["What is your favorite color?"]
    assert method.token_method == ["xxx-xxx-1234", "xxx-xxx-5678"]
    assert token.token_sent_flag is True
    assert token.token_input_name == "pin"
    assert ready.last_status == "AccountsReady"
    assert done.success_flag is True
    assert captcha.captcha_image is not None
    assert captcha.captcha_image.startswith("iVBORw0KGgo")


def test_mock_mfa_job_sequence_statuses() -> None:
    captcha, security, method, token, ready, done = (job_status(job) for job in mock_jobs())
    assert isinstance(captcha.prompt, CaptchaPrompt)
    assert captcha.prompt.image_png.startswith(b"\x89PNG")
    assert security.prompt == SecurityQuestionsPrompt(("What is your favorite color?",))
    assert method.prompt == TokenMethodPrompt(("xxx-xxx-1234", "xxx-xxx-5678"))
    assert token.prompt == TokenInputPrompt("pin")
    for status in (captcha, security, method, token):
        assert status.state is JobState.NEEDS_INPUT
    assert ready.state is JobState.RUNNING
    assert ready.accounts_ready
    assert done.state is JobState.SUCCEEDED


# --- reference Appendix A ------------------------------------------------------------------------

APPENDIX_INSTITUTIONS = """
[{"InstitutionID":"926623ca-5952-4921-8f77-2023f1cdde8e","InstitutionName":"Sophtron Bank NoMFA",
  "URL":"https://sophtron.com",
  "Logo":"https://sophtron.com/Images/logo.png","CountryCode":"US","LanguageCode":"en","IsFinancial":true,
  "InstitutionDetail":{"LoginFormUserName":"User ID","LoginFormPassword":"Password",
                       "RoutingNumber":"","MultipleRoutingNumbers":"",
                       "LoginFormFields":[]}}]
"""
APPENDIX_CREATE = """
{"JobID":"5e1b2c3d-0000-4000-8000-00000000abcd","UserInstitutionID":"7f7f7f7f-0000-4000-8000-000000000007"}
"""
APPENDIX_JOB = """
{"JobID":"5e1b2c3d-0000-4000-8000-00000000abcd","JobType":"AddAccounts",
 "UserInstitutionID":"7f7f7f7f-0000-4000-8000-000000000007",
 "AccountID":"00000000-0000-0000-0000-000000000000","SuccessFlag":null,"LastStep":"LogInPanel",
 "LastStatus":"Waiting",
 "SecurityQuestion":"[\\"What is your favorite color?\\"]","SecurityAnswer":null,"TokenMethod":null,
 "TokenChoice":null,
 "TokenSentFlag":null,"TokenInputName":null,"TokenInput":null,"TokenRead":null,"VerifyPhoneFlag":null,
 "CaptchaImage":null,"CaptchaInput":null}
"""
APPENDIX_ACCOUNTS = """
[{"UserInstitutionID":"7f7f7f7f-0000-4000-8000-000000000007",
  "MemberID":"7f7f7f7f-0000-4000-8000-000000000007",
  "AccountID":"9a8b7c6d-aaaa-4bbb-8ccc-ddddeeeeffff","AccountName":"Primary Checking",
  "AccountNumber":"1234",
  "AccountType":"Checking","SubType":"Checking","Balance":1250.35,"AvailableBalance":1200.00,
  "BalanceCurrency":"$",
  "LastUpdated":"2024-01-31T00:00:00","DueDate":null,"Status":"Tracked","FullAccountNumber":null,
  "RoutingNumber":null,
  "InstitutionNumber":null,"TransitNumber":null,"OwnerName":null}]
"""
APPENDIX_TRANSACTIONS = """
[{"ID":"c1d2e3f4-0000-4000-8000-000000000001","TransactionID":"0f0e0d0c-0000-4000-8000-000000000001",
  "UserID":"3f2504e0-4f89-11d3-9a0c-0305e82c3301",
  "UserInstitutionAccountID":"9a8b7c6d-aaaa-4bbb-8ccc-ddddeeeeffff",
  "Status":"Posted","Type":"DEBIT","Amount":-12.34,"Currency":"$","Date":"2021-03-02T00:00:00",
  "TransactionDate":"2021-03-02T00:00:00","PostDate":"2021-03-03T00:00:00",
  "Description":"CHECKCARD 0302 COFFEE SHOP SEATTLE WA",
  "Balance":1237.99,"Merchant":"Coffee Shop","Category":"Food & Dining","CheckNum":null,"Memo":null,
  "CheckImage":null}]
"""
APPENDIX_CUSTOMERS = """
[{"CustomerID":"0b7c7a4e-1111-4222-8333-444455556666","CustomerName":"Sure family 1",
  "MemberIDs":["7f7f7f7f-0000-4000-8000-000000000007"]}]
"""
APPENDIX_MEMBER = """
{"MemberID":"7f7f7f7f-0000-4000-8000-000000000007","JobID":"5e1b2c3d-0000-4000-8000-00000000abcd"}
"""

LOGIN_ID = "7f7f7f7f-0000-4000-8000-000000000007"
JOB_ID = "5e1b2c3d-0000-4000-8000-00000000abcd"


def json_variants(text: str) -> list[Any]:
    """The payload read with plain floats and with Decimal floats (as the client reads it)."""
    return [json.loads(text), json.loads(text, parse_float=Decimal)]


def test_appendix_institution() -> None:
    (institution,) = [
        Institution.model_validate(item) for item in json.loads(APPENDIX_INSTITUTIONS)
    ]
    assert institution.institution_id == "926623ca-5952-4921-8f77-2023f1cdde8e"
    assert institution.institution_name == "Sophtron Bank NoMFA"
    assert institution.url == "https://sophtron.com"
    assert institution.country_code == "US"
    assert institution.language_code == "en"
    assert institution.is_financial is True
    detail = institution.institution_detail
    assert detail is not None
    assert detail.login_form_user_name == "User ID"
    assert detail.login_form_password == "Password"
    assert detail.needs_password
    assert detail.login_form_fields == []
    assert institution.routing_numbers == []


def test_institution_login_form_password_none_means_no_password() -> None:
    """§8.1: the literal "None" means the login form has no password field."""
    institution = Institution.model_validate(
        {
            "InstitutionID": "i",
            "InstitutionName": "n",
            "InstitutionDetail": {"LoginFormPassword": "None"},
        }
    )
    assert institution.institution_detail is not None
    assert not institution.institution_detail.needs_password


def test_institution_routing_numbers_split_on_slash() -> None:
    institution = Institution.model_validate(
        {
            "InstitutionID": "i",
            "InstitutionName": "n",
            "InstitutionDetail": {
                "RoutingNumber": "125000024",
                "MultipleRoutingNumbers": "121000358/026009593",
            },
        }
    )
    assert institution.routing_numbers == ["125000024", "121000358", "026009593"]


def test_appendix_create_user_institution() -> None:
    tracker = JobTracker.model_validate(json.loads(APPENDIX_CREATE))
    assert tracker.job_id == JOB_ID
    assert tracker.login_id == LOGIN_ID


def test_appendix_v2_member_create() -> None:
    tracker = JobTracker.model_validate(json.loads(APPENDIX_MEMBER))
    assert tracker.job_id == JOB_ID
    assert tracker.member_id == LOGIN_ID
    assert tracker.user_institution_id is None
    assert tracker.login_id == LOGIN_ID
    member = Member.model_validate(json.loads(APPENDIX_MEMBER))
    assert (member.member_id, member.job_id) == (LOGIN_ID, JOB_ID)


def test_appendix_job_waiting_for_security_answer() -> None:
    job = Job.model_validate(json.loads(APPENDIX_JOB))
    assert job.job_id == JOB_ID
    assert job.job_type == "AddAccounts"
    assert job.user_institution_id == LOGIN_ID
    assert job.account_id == "00000000-0000-0000-0000-000000000000"
    assert job.selected_account_id is None
    assert job.success_flag is None
    assert job.last_step == "LogInPanel"
    assert job.last_status == "Waiting"
    assert job.security_question == ["What is your favorite color?"]
    assert job.token_method == []
    assert job.token_sent_flag is None
    assert job.verify_phone_flag is None
    assert job.captcha_image is None


def test_job_selected_account_id_when_set() -> None:
    job = Job.model_validate({"JobID": "j", "AccountID": "9a8b7c6d-aaaa-4bbb-8ccc-ddddeeeeffff"})
    assert job.selected_account_id == "9a8b7c6d-aaaa-4bbb-8ccc-ddddeeeeffff"


@pytest.mark.parametrize("data", json_variants(APPENDIX_ACCOUNTS), ids=["float", "decimal"])
def test_appendix_account(data: list[Any]) -> None:
    (account,) = [Account.model_validate(item) for item in data]
    assert account.account_id == "9a8b7c6d-aaaa-4bbb-8ccc-ddddeeeeffff"
    assert account.user_institution_id == LOGIN_ID
    assert account.member_id == LOGIN_ID
    assert account.account_name == "Primary Checking"
    assert account.account_number == "1234"
    assert account.mask == "1234"
    assert account.balance == Decimal("1250.35")
    assert str(account.balance) == "1250.35"
    assert account.available_balance == Decimal("1200.00")
    assert account.balance_currency == "$"
    assert account.currency == "USD"
    assert account.last_updated == dt.datetime(2024, 1, 31, tzinfo=UTC)
    assert account.due_date is None
    assert account.status == "Tracked"
    assert account.tracked
    assert account.kind is AccountKind.DEPOSITORY
    assert account.full_account_number is None
    assert account.owner_name is None


@pytest.mark.parametrize("data", json_variants(APPENDIX_TRANSACTIONS), ids=["float", "decimal"])
def test_appendix_transaction(data: list[Any]) -> None:
    (tx,) = [Transaction.model_validate(item) for item in data]
    assert tx.transaction_id == "0f0e0d0c-0000-4000-8000-000000000001"
    assert tx.id == "c1d2e3f4-0000-4000-8000-000000000001"
    assert tx.provider_id == "0f0e0d0c-0000-4000-8000-000000000001"
    assert tx.user_id == "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    assert tx.account_id == "9a8b7c6d-aaaa-4bbb-8ccc-ddddeeeeffff"
    assert tx.status == "Posted"
    assert not tx.pending
    assert tx.type == "DEBIT"
    assert tx.amount == Decimal("-12.34")
    assert str(tx.amount) == "-12.34"
    assert tx.signed_amount == Decimal("-12.34")
    assert tx.currency_symbol == "$"
    assert tx.currency == "USD"
    assert tx.date == dt.date(2021, 3, 2)
    assert tx.transaction_date == dt.date(2021, 3, 2)
    assert tx.post_date == dt.date(2021, 3, 3)
    assert tx.booked_on == dt.date(2021, 3, 2)
    assert tx.description == "CHECKCARD 0302 COFFEE SHOP SEATTLE WA"
    assert tx.balance == Decimal("1237.99")
    assert str(tx.balance) == "1237.99"
    assert tx.merchant == "Coffee Shop"
    assert tx.category == "Food & Dining"
    assert tx.check_num is None
    assert tx.memo is None
    assert tx.check_image is None


def test_appendix_customers() -> None:
    (customer,) = [Customer.model_validate(item) for item in json.loads(APPENDIX_CUSTOMERS)]
    assert customer.customer_id == "0b7c7a4e-1111-4222-8333-444455556666"
    assert customer.customer_name == "Sure family 1"
    assert customer.member_ids == [LOGIN_ID]


def test_user_institution_help_page_fields() -> None:
    """§8.2: Phone and Email are stringified (single-quoted) arrays."""
    login = UserInstitution.model_validate(
        {
            "UserID": "u",
            "InstitutionID": "i",
            "UserInstitutionID": LOGIN_ID,
            "UserName": "asdf",
            "Phone": "['Primary: 425-000-1234', 'Secondary: 206-123-5678']",
            "Email": "['Work: xxxx@work.com', 'Home: xxxx@gmail.com']",
            "LastModified": "2024-01-31T00:00:00",
        }
    )
    assert login.phone == ["Primary: 425-000-1234", "Secondary: 206-123-5678"]
    assert login.email == ["Work: xxxx@work.com", "Home: xxxx@gmail.com"]
    assert login.last_modified == dt.datetime(2024, 1, 31, tzinfo=UTC)
    assert login.user_name == "asdf"


# --- tolerance: keys -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["AccountID", "AccountId", "accountID", "accountId", "account_id", "ACCOUNTID", "Account_ID"],
)
def test_account_id_key_spellings(key: str) -> None:
    assert Account.model_validate({key: "acct-1"}).account_id == "acct-1"


@pytest.mark.parametrize(
    "key", ["TransactionID", "TransactionId", "transactionID", "transactionId", "transaction_id"]
)
def test_transaction_id_key_spellings(key: str) -> None:
    tx = Transaction.model_validate({key: "tx-1", "Amount": "1.00"})
    assert tx.transaction_id == "tx-1"
    assert tx.provider_id == "tx-1"


@pytest.mark.parametrize("key", ["JobID", "JobId", "jobID", "jobId", "job_id"])
def test_job_id_key_spellings(key: str) -> None:
    assert Job.model_validate({key: "job-1"}).job_id == "job-1"


def test_camel_case_v2_account_keys() -> None:
    """MARTEN reads camelCase v2 fields (§12)."""
    account = Account.model_validate(
        {
            "accountID": "a",
            "userInstitutionID": "ui",
            "accountName": "Primary Checking",
            "balance": "10.50",
            "balanceCurrency": "$",
            "accountType": "Checking",
        }
    )
    assert account.account_id == "a"
    assert account.user_institution_id == "ui"
    assert account.account_name == "Primary Checking"
    assert account.balance == Decimal("10.50")
    assert account.currency == "USD"
    assert account.kind is AccountKind.DEPOSITORY


def test_snake_case_transaction_keys() -> None:
    tx = Transaction.model_validate(
        {
            "transaction_id": "t",
            "user_institution_account_id": "a",
            "transaction_date": "2021-03-02",
            "post_date": "2021-03-03",
            "amount": "-1.00",
        }
    )
    assert tx.account_id == "a"
    assert tx.transaction_date == dt.date(2021, 3, 2)
    assert tx.post_date == dt.date(2021, 3, 3)
    assert tx.amount == Decimal("-1.00")


def test_alternative_field_names() -> None:
    assert Account.model_validate({"UserInstitutionAccountID": "a"}).account_id == "a"
    assert (
        Account.model_validate({"AccountID": "a", "AccountSubType": "Savings"}).sub_type
        == "Savings"
    )
    assert Account.model_validate({"AccountID": "a", "AccountStatus": "Untracked"}).tracked is False
    assert Transaction.model_validate({"ID": "x", "AccountID": "a"}).account_id == "a"
    assert Member.model_validate({"UserInstitutionID": "m"}).member_id == "m"
    assert Customer.model_validate({"CustomerID": "c", "Name": "Fam"}).customer_name == "Fam"
    assert Job.model_validate({"JobID": "j", "MemberID": "m"}).user_institution_id == "m"


def test_keys_read_again_name_the_same_fields_and_new_keys_stay_bounded() -> None:
    """A model remembers the keys it has read (a reply repeats them in every item): read again,
    each spelling names the same field; a reply of ever new keys is kept whole, and what the
    model remembers stays bounded."""
    spellings = ["AccountID", "AccountId", "account_id", "ACCOUNTID", "UserInstitutionAccountID"]
    for _ in range(2):
        for key in spellings:
            assert Account.model_validate({key: "acct-1"}).account_id == "acct-1"
    many = {f"Unknown{index}": index for index in range(3000)}
    account = Account.model_validate({"AccountID": "a", **many})
    assert account.account_id == "a"
    assert account.model_extra == many
    assert len(Account._seen_keys) <= 1024


def test_later_null_does_not_hide_earlier_value() -> None:
    account = Account.model_validate({"AccountID": "acct-1", "AccountId": None, "Balance": "1.00"})
    assert account.account_id == "acct-1"
    tx = Transaction.model_validate({"TransactionID": "t", "TransactionId": None})
    assert tx.transaction_id == "t"


def test_unknown_keys_are_kept_in_model_extra() -> None:
    tx = Transaction.model_validate(
        {"TransactionID": "t", "Amount": 1, "CreatedDateUtc": "2021-03-02T00:00:00", "Foo": [1, 2]}
    )
    assert tx.model_extra == {"CreatedDateUtc": "2021-03-02T00:00:00", "Foo": [1, 2]}
    account = Account.model_validate({"AccountID": "a", "UserID": "u", "LastModifiedUtc": None})
    assert account.model_extra == {"UserID": "u", "LastModifiedUtc": None}
    job = Job.model_validate({"JobID": "j", "Step": "x"})
    assert job.model_extra == {"Step": "x"}


def test_known_keys_are_not_in_model_extra() -> None:
    tx = Transaction.model_validate({"TransactionId": "t", "amount": "1"})
    assert tx.model_extra == {}


# --- tolerance: nulls ----------------------------------------------------------------------------


def test_null_fields_everywhere() -> None:
    account_fields = [
        "UserInstitutionID", "MemberID", "InstitutionID", "AccountName", "AccountNumber",
        "AccountType", "SubType", "Balance", "AvailableBalance", "BalanceCurrency", "LastUpdated",
        "DueDate", "Status", "FullAccountNumber", "RoutingNumber", "InstitutionNumber",
        "TransitNumber", "OwnerName",
    ]  # fmt: skip
    account = Account.model_validate({"AccountID": "a", **dict.fromkeys(account_fields)})
    assert account.balance is None
    assert account.currency == "USD"
    assert account.mask == ""
    assert account.kind is AccountKind.OTHER
    assert account.tracked

    tx_fields = [
        "ID", "UserID", "UserInstitutionAccountID", "Status", "Type", "Amount", "Currency", "Date",
        "TransactionDate", "PostDate", "Description", "Balance", "Merchant", "Category",
        "CheckNum", "Memo", "CheckImage",
    ]  # fmt: skip
    tx = Transaction.model_validate({"TransactionID": "t", **dict.fromkeys(tx_fields)})
    assert tx.amount is None
    assert tx.signed_amount is None
    assert tx.booked_on is None
    assert tx.currency == "USD"
    assert not tx.pending

    job_fields = [
        "JobType", "UserInstitutionID", "AccountID", "SuccessFlag", "LastStep", "LastStatus",
        "SecurityQuestion", "SecurityAnswer", "TokenMethod", "TokenChoice", "TokenSentFlag",
        "TokenInputName", "TokenInput", "TokenRead", "VerifyPhoneFlag", "CaptchaImage",
        "CaptchaInput",
    ]  # fmt: skip
    job = Job.model_validate({"JobID": "j", **dict.fromkeys(job_fields)})
    assert job.security_question == []
    assert job.token_method == []
    assert job.success_flag is None
    assert job.selected_account_id is None

    institution = Institution.model_validate(
        {
            "InstitutionID": "i",
            "InstitutionName": "n",
            **dict.fromkeys(
                ["URL", "Logo", "CountryCode", "LanguageCode", "IsFinancial", "InstitutionDetail"]
            ),
        }
    )
    assert institution.institution_detail is None
    assert institution.is_financial is None

    customer = Customer.model_validate({"CustomerID": "c", "CustomerName": None, "MemberIDs": None})
    assert customer.member_ids == []
    login = UserInstitution.model_validate({"UserInstitutionID": "u", "Phone": None, "Email": None})
    assert (login.phone, login.email) == ([], [])


@pytest.mark.parametrize(
    "data",
    [
        {"Amount": "-12.34"},
        {"TransactionID": None, "ID": None, "Amount": "1"},
        {"TransactionID": "", "Description": "x"},
        {"TransactionId": None},
        {},
    ],
)
def test_transaction_without_any_id_is_rejected(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Transaction.model_validate(data)


def test_transaction_falls_back_to_id() -> None:
    tx = Transaction.model_validate({"ID": "storage-1", "Amount": "1"})
    assert tx.transaction_id is None
    assert tx.provider_id == "storage-1"


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (Account, {"AccountName": "x"}),
        (Job, {"SuccessFlag": True}),
        (Customer, {"CustomerName": "x"}),
        (Member, {"JobID": "j"}),
        (JobTracker, {"UserInstitutionID": "u"}),
        (UserInstitution, {"UserName": "x"}),
    ],
)
def test_missing_required_id_is_rejected(model: type, data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(data)


def test_nul_characters_are_dropped_from_text() -> None:
    """PostgreSQL stores no NUL character: one in a bank's text would fail every sync."""
    account = Account.model_validate(
        {
            "AccountID": "a\x00 1",
            "AccountName": "Every\x00day Checking",
            "AccountNumber": "12\x0034",
        }
    )
    assert account.account_id == "a 1"
    assert account.account_name == "Everyday Checking"
    assert account.account_number == "1234"


def test_numeric_text_fields_become_text() -> None:
    account = Account.model_validate({"AccountID": 42, "AccountNumber": 1234})
    assert account.account_id == "42"
    assert account.account_number == "1234"
    assert account.mask == "1234"


# --- tolerance: amounts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (12, Decimal("12")),
        (-12.34, Decimal("-12.34")),
        (1250.35, Decimal("1250.35")),
        (Decimal("1200.00"), Decimal("1200.00")),
        ("-12.34", Decimal("-12.34")),
        ("123.45", Decimal("123.45")),
        ("  7.10 ", Decimal("7.10")),
        ("$1,250.35", Decimal("1250.35")),
        ("-$1,250.35", Decimal("-1250.35")),
        ("$-5.00", Decimal("-5.00")),
        ("(5.00)", Decimal("-5.00")),
        ("($5.00)", Decimal("-5.00")),
        ("12.34-", Decimal("-12.34")),
        ("US$3.00", Decimal("3.00")),
        ("C$ 3.00", Decimal("3.00")),
        ("€2.50", Decimal("2.50")),
        ("1,000,000", Decimal("1000000")),
        ("\u221212.34", Decimal("-12.34")),
    ],
)
def test_parse_money_formats(raw: Any, expected: Decimal) -> None:
    result = _parse.parse_money(raw)
    assert isinstance(result, Decimal)
    assert result == expected
    assert result.as_tuple().exponent == expected.as_tuple().exponent


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_parse_money_empty_is_none(raw: Any) -> None:
    assert _parse.parse_money(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        "abc", "12.34.56", "--5", "$", "()", "NaN", "Infinity", "-inf", "sNaN", "(NaN)",
        "(sNaN)", "sNaN-", "(snan)", True, False, [1], {"a": 1}, float("nan"), float("inf"),
    ],
)  # fmt: skip
def test_parse_money_rejects_garbage_with_value_error(raw: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        _parse.parse_money(raw)


@pytest.mark.parametrize("raw", ["abc", "(sNaN)", "NaN", True])
def test_model_rejects_bad_amount_with_validation_error(raw: Any) -> None:
    with pytest.raises(ValidationError):
        Transaction.model_validate({"TransactionID": "t", "Amount": raw})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("$1,250.35", Decimal("1250.35")),
        ("(5.00)", Decimal("-5.00")),
        ("12.34-", Decimal("-12.34")),
        (-12.34, Decimal("-12.34")),
        ("-12.34", Decimal("-12.34")),
    ],
)
def test_model_amount_and_balance_formats(raw: Any, expected: Decimal) -> None:
    tx = Transaction.model_validate({"TransactionID": "t", "Amount": raw, "Balance": raw})
    assert tx.amount == expected
    assert tx.balance == expected
    account = Account.model_validate({"AccountID": "a", "Balance": raw, "AvailableBalance": raw})
    assert account.balance == expected
    assert account.available_balance == expected


# --- tolerance: currency -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("$", "USD"),
        ("US$", "USD"),
        ("C$", "CAD"),
        ("CA$", "CAD"),
        ("€", "EUR"),
        ("", "USD"),
        ("  ", "USD"),
        (None, "USD"),
        ("USD", "USD"),
        ("usd", "USD"),
        ("EUR", "EUR"),
        (" $ ", "USD"),
    ],
)
def test_currency_code(raw: Any, expected: str) -> None:
    assert _parse.currency_code(raw) == expected


@pytest.mark.parametrize("raw", ["XX$", "Dollars", "₿", "US Dollar", "12"])
def test_unknown_currency_raises_value_error(raw: str) -> None:
    with pytest.raises(ValueError, match="currency"):
        _parse.currency_code(raw)


def test_model_currency_properties() -> None:
    assert Transaction.model_validate({"TransactionID": "t", "Currency": "€"}).currency == "EUR"
    assert Transaction.model_validate({"TransactionID": "t", "Currency": None}).currency == "USD"
    assert Account.model_validate({"AccountID": "a", "BalanceCurrency": "C$"}).currency == "CAD"
    assert Account.model_validate({"AccountID": "a", "BalanceCurrency": "US$"}).currency == "USD"
    # A currency that names no money is refused when the reply is read, not later.
    with pytest.raises(ValidationError, match="unknown currency 'XX\\$'"):
        Transaction.model_validate({"TransactionID": "t", "Currency": "XX$"})
    with pytest.raises(ValidationError, match="unknown currency 'dollars'"):
        Account.model_validate({"AccountID": "a", "BalanceCurrency": "dollars"})


# --- tolerance: dates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2021-03-02T00:00:00", dt.date(2021, 3, 2)),
        ("2021-03-02", dt.date(2021, 3, 2)),
        ("2021/03/02", dt.date(2021, 3, 2)),
        ("2018/10/01", dt.date(2018, 10, 1)),
        ("2024-01-15T00:00:00Z", dt.date(2024, 1, 15)),
        ("2023-02-01T00:00:00.0000000+08:00", dt.date(2023, 2, 1)),
        ("2025-11-04T12:32:17.165931+00:00", dt.date(2025, 11, 4)),
        ("2023-02-01T23:30:00-05:00", dt.date(2023, 2, 1)),
        ("03/02/2021", dt.date(2021, 3, 2)),
        ("/Date(1609459200000)/", dt.date(2021, 1, 1)),
        (dt.date(2021, 3, 2), dt.date(2021, 3, 2)),
        (dt.datetime(2021, 3, 2, 23, 0), dt.date(2021, 3, 2)),
    ],
)
def test_parse_date_formats(raw: Any, expected: dt.date) -> None:
    assert _parse.parse_date(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2021-03-02T00:00:00", dt.datetime(2021, 3, 2, tzinfo=UTC)),
        ("2024-01-15T00:00:00Z", dt.datetime(2024, 1, 15, tzinfo=UTC)),
        (
            "2023-02-01T00:00:00.0000000+08:00",
            dt.datetime(2023, 2, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        ),
        (
            "2025-11-04T12:32:17.165931+00:00",
            dt.datetime(2025, 11, 4, 12, 32, 17, 165931, tzinfo=UTC),
        ),
        ("2021-03-02T10:11:12.1234567Z", dt.datetime(2021, 3, 2, 10, 11, 12, 123456, tzinfo=UTC)),
        ("/Date(1609459200000)/", dt.datetime(2021, 1, 1, tzinfo=UTC)),
    ],
)
def test_parse_datetime_formats(raw: str, expected: dt.datetime) -> None:
    result = _parse.parse_datetime(raw)
    assert result == expected
    assert result is not None
    assert result.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_parse_date_empty_is_none(raw: Any) -> None:
    assert _parse.parse_date(raw) is None
    assert _parse.parse_datetime(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        "tomorrow",
        "2021-02-30",
        "2021-13-01",
        "13/45/2021",
        "2021",
        20210302,
        "/Date(253402300800000)/",
    ],
)
def test_parse_date_rejects_garbage_with_value_error(raw: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        _parse.parse_date(raw)


@pytest.mark.parametrize("raw", ["not a date", "2021-02-30", "/Date(253402300800000)/"])
def test_model_rejects_bad_date_with_validation_error(raw: str) -> None:
    with pytest.raises(ValidationError):
        Transaction.model_validate({"TransactionID": "t", "Date": raw})


def test_model_dates_in_many_formats() -> None:
    tx = Transaction.model_validate(
        {
            "TransactionID": "t",
            "Date": "2021/03/02",
            "TransactionDate": "03/02/2021",
            "PostDate": "2023-02-01T00:00:00.0000000+08:00",
        }
    )
    assert tx.date == dt.date(2021, 3, 2)
    assert tx.transaction_date == dt.date(2021, 3, 2)
    assert tx.post_date == dt.date(2023, 2, 1)


def test_booked_on_fallbacks() -> None:
    only_post = Transaction.model_validate({"TransactionID": "t", "PostDate": "2021-03-03"})
    assert only_post.booked_on == dt.date(2021, 3, 3)
    date_and_post = Transaction.model_validate(
        {"TransactionID": "t", "Date": "2021-03-01", "PostDate": "2021-03-03"}
    )
    assert date_and_post.booked_on == dt.date(2021, 3, 1)


# --- tolerance: status, flags, lists -------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "pending"),
    [
        ("Pending", True),
        ("PENDING", True),
        ("pending", True),
        (" Pending ", True),
        ("Posted", False),
        ("POSTED", False),
        ("posted", False),
        (None, False),
        ("", False),
    ],
)
def test_transaction_pending_any_case(status: str | None, pending: bool) -> None:
    tx = Transaction.model_validate({"TransactionID": "t", "Status": status})
    assert tx.pending is pending


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (True, True),
        ("True", True),
        ("true", True),
        (False, False),
        ("false", False),
        ("False", False),
        (None, None),
        ("Processing", None),
    ],
)
def test_success_flag_tri_state(raw: Any, expected: bool | None) -> None:
    assert _parse.parse_flag(raw) is expected
    assert Job.model_validate({"JobID": "j", "SuccessFlag": raw}).success_flag is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('["What is your favorite color?"]', ["What is your favorite color?"]),
        ('["xxx-xxx-1234","xxx-xxx-5678"]', ["xxx-xxx-1234", "xxx-xxx-5678"]),
        ("['a', 'b']", ["a", "b"]),
        (
            "['what is your favorite color?', 'what is your favorite fruit?']",
            ["what is your favorite color?", "what is your favorite fruit?"],
        ),
        ("plain question?", ["plain question?"]),
        ("[not json", ["[not json"]),
        (None, []),
        ("", []),
        ("[]", []),
        (["a", None, "", "b"], ["a", "b"]),
    ],
)
def test_parse_string_list(raw: Any, expected: list[str]) -> None:
    assert _parse.parse_string_list(raw) == expected


def test_stringified_arrays_on_models() -> None:
    job = Job.model_validate(
        {
            "JobID": "j",
            "SecurityQuestion": "['what is your favorite color?', 'what is your favorite fruit?']",
            "TokenMethod": (
                '["Email me at s*****@gmail.com", '
                '"Send verification code by voice call to ***-***-3800"]'
            ),
        }
    )
    assert job.security_question == ["what is your favorite color?", "what is your favorite fruit?"]
    assert job.token_method == [
        "Email me at s*****@gmail.com",
        "Send verification code by voice call to ***-***-3800",
    ]
    single = Job.model_validate({"JobID": "j", "SecurityQuestion": "What is your favorite color?"})
    assert single.security_question == ["What is your favorite color?"]
    as_list_job = Job.model_validate({"JobID": "j", "TokenMethod": ["a", "b"]})
    assert as_list_job.token_method == ["a", "b"]
    customer = Customer.model_validate({"CustomerID": "c", "MemberIDs": '["m1","m2"]'})
    assert customer.member_ids == ["m1", "m2"]


# --- signed amounts and account kinds ------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "kind", "expected"),
    [
        ("12.34", "DEBIT", Decimal("-12.34")),
        ("12.34", "debit", Decimal("-12.34")),
        ("12.34", " Debit ", Decimal("-12.34")),
        ("-12.34", "DEBIT", Decimal("-12.34")),
        ("12.34", "CREDIT", Decimal("12.34")),
        ("-2.34", "CREDIT", Decimal("-2.34")),
        ("-12.34", None, Decimal("-12.34")),
        ("12.34", None, Decimal("12.34")),
        ("0", "DEBIT", Decimal("0")),
    ],
)
def test_signed_amount(amount: str, kind: str | None, expected: Decimal) -> None:
    tx = Transaction.model_validate({"TransactionID": "t", "Amount": amount, "Type": kind})
    assert tx.signed_amount == expected


@pytest.mark.parametrize(
    ("account_type", "kind"),
    [
        ("Checking", AccountKind.DEPOSITORY),
        ("checking", AccountKind.DEPOSITORY),
        ("Savings", AccountKind.DEPOSITORY),
        ("Credit_Card", AccountKind.CREDIT_CARD),
        ("CreditCard", AccountKind.CREDIT_CARD),
        ("credit_card", AccountKind.CREDIT_CARD),
        ("Loan", AccountKind.LOAN),
        ("Mortgage", AccountKind.LOAN),
        ("Investment", AccountKind.INVESTMENT),
        ("401k", AccountKind.INVESTMENT),
        ("Bill", AccountKind.OTHER),
        ("", AccountKind.OTHER),
        (None, AccountKind.OTHER),
    ],
)
def test_classify_account(account_type: str | None, kind: AccountKind) -> None:
    assert classify_account(account_type) is kind
    assert Account.model_validate({"AccountID": "a", "AccountType": account_type}).kind is kind


def test_classify_account_falls_back_to_sub_type() -> None:
    assert classify_account("Other", "Savings") is AccountKind.DEPOSITORY
    assert classify_account(None, "Credit_Card") is AccountKind.CREDIT_CARD
    assert classify_account("Checking", "Loan") is AccountKind.DEPOSITORY
    account = Account.model_validate(
        {"AccountID": "a", "AccountType": "Bill", "SubType": "Mortgage"}
    )
    assert account.kind is AccountKind.LOAN


def test_account_tracked_status() -> None:
    assert Account.model_validate({"AccountID": "a", "Status": "Tracked"}).tracked
    assert not Account.model_validate({"AccountID": "a", "Status": "Untracked"}).tracked
    assert not Account.model_validate({"AccountID": "a", "Status": "untracked"}).tracked


# --- properties (hypothesis) ---------------------------------------------------------------------

_two_places = st.decimals(places=2, allow_nan=False, allow_infinity=False)


@NO_DB
@given(_two_places)
@example(Decimal("-0.00"))
@example(Decimal("1250.35"))
@example(Decimal("-12.34"))
def test_parse_money_round_trips_two_place_decimals(value: Decimal) -> None:
    text = str(value)
    from_str = _parse.parse_money(text)
    assert from_str == value
    assert str(from_str) == text
    from_json = _parse.parse_money(json.loads(text, parse_float=Decimal))
    assert from_json == value
    assert str(from_json) == text


@NO_DB
@given(st.text())
@example("(sNaN)")
@example("sNaN-")
@example("1e999999999")
@example("(")
def test_parse_money_only_raises_value_error(text: str) -> None:
    try:
        result = _parse.parse_money(text)
    except ValueError:
        return
    assert result is None or (isinstance(result, Decimal) and result.is_finite())


@NO_DB
@given(st.text(alphabet="0123456789.,-+()$€£¥ eEnNaAsSiIfFtTyYUDC_", max_size=16))
def test_parse_money_only_raises_value_error_on_amount_like_text(text: str) -> None:
    try:
        result = _parse.parse_money(text)
    except ValueError:
        return
    assert result is None or (isinstance(result, Decimal) and result.is_finite())


@NO_DB
@given(st.lists(st.text(max_size=12), max_size=8))
def test_parse_string_list_of_json_array(items: list[str]) -> None:
    assert _parse.parse_string_list(json.dumps(items)) == [item for item in items if item]
    assert _parse.parse_string_list(json.dumps(items, ensure_ascii=False)) == [
        item for item in items if item
    ]


@NO_DB
@given(st.dates())
def test_parse_date_of_isoformat(day: dt.date) -> None:
    assert _parse.parse_date(day.isoformat()) == day
    assert _parse.parse_date(f"{day.isoformat()}T00:00:00") == day


# strftime's %Y does not zero-pad years below 1000 on every platform.
@NO_DB
@given(st.dates(min_value=dt.date(1000, 1, 1)))
def test_parse_date_of_slash_format(day: dt.date) -> None:
    assert _parse.parse_date(day.strftime("%Y/%m/%d")) == day
