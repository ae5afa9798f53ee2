"""The SDK and the sandbox: request signing, a connect flow with MFA, request latency over
HTTP, parsing a large transactions payload, and the sandbox's world generation."""

from __future__ import annotations

import datetime as dt
import statistics
import time
import uuid

import simplejson
from common import ACCESS_KEY, TODAY, USER_ID, Record, connect, per_second, percentile, timed

from sophsync.sandbox import SandboxConfig, SandboxServer
from sophsync.sandbox.catalogue import TEST_BANKS
from sophsync.sandbox.world import LoginData, LoginOptions
from sophsync.sophtron import Client
from sophsync.sophtron import _calls as calls
from sophsync.sophtron.auth import sign


def run(record: Record) -> None:
    # 1. Signing.
    count = 50_000
    start = time.perf_counter()
    for index in range(count):
        sign(USER_ID, ACCESS_KEY, "POST", f"https://api.sophtron.com/api/Job/Get{index}")
    record(
        "sign",
        per_second(count, time.perf_counter() - start),
        "signatures/s",
        f"{count} FIApiAUTH headers",
    )

    config = SandboxConfig(users={USER_ID: ACCESS_KEY}, seed=1, today=TODAY)
    with (
        SandboxServer(config) as server,
        Client(
            USER_ID, ACCESS_KEY, base_url=server.url, poll_interval=0.001, max_poll_interval=0.005
        ) as client,
    ):
        bank = client.get_institution_by_name("Sophtron Bank")[0]

        # 2. A whole connect flow with four MFA steps.
        flows = timed(lambda: connect(client, bank.institution_id, f"b-{uuid.uuid4()}"), 10)
        record(
            "connect_flow_p50",
            statistics.median(flows) * 1000,
            "ms",
            "Sophtron Bank: login, captcha, question, token method, token, success",
        )

        # 3. Request latency over HTTP.
        login_id = connect(client, bank.institution_id, "latency+daily=3+years=3")
        account = client.get_user_institution_accounts(login_id)[0]
        job = client.refresh_user_institution(login_id)
        reads = timed(lambda: client.get_job_information_by_id(job.job_id), 300)
        record("job_read_p50", percentile(reads, 0.5) * 1000, "ms", "GetJobInformationByID")
        record("job_read_p95", percentile(reads, 0.95) * 1000, "ms", "GetJobInformationByID")
        start_day = TODAY - dt.timedelta(days=3 * 365)
        rows = client.get_transactions_by_transaction_date(account.account_id, start_day, TODAY)
        pages = timed(
            lambda: client.get_transactions_by_transaction_date(
                account.account_id, start_day, TODAY
            ),
            20,
        )
        record(
            "transactions_3y_p50",
            percentile(pages, 0.5) * 1000,
            "ms",
            f"GetTransactionsByTransactionDate, {len(rows)} rows",
        )

        # 4. Parsing a large transactions payload.
        payload = server.app.transactions_in(
            server.app.state.login(USER_ID, login_id),
            server.app.state.login(USER_ID, login_id).data.accounts[0],
            start_day,
            TODAY,
            v2=False,
        )
        text = simplejson.dumps(payload, use_decimal=True)
        call = calls.get_transactions_by_transaction_date(
            client, account.account_id, start_day, TODAY
        )
        reply = calls.Reply(200, text, call.route)
        parse = timed(lambda: call.parse(reply), 5)
        record(
            "parse_transactions",
            per_second(len(payload), statistics.median(parse)),
            "transactions/s",
            f"{len(payload)} rows, {len(text) // 1024} KiB of JSON",
        )

    # 5. World generation.
    institution = TEST_BANKS[1]
    start = time.perf_counter()
    generated = 0
    for index in range(20):
        login = LoginData(
            str(uuid.uuid4()),
            1,
            institution,
            f"user{index}",
            LoginOptions.parse(f"user{index}"),
            TODAY,
        )
        login.extend_to(TODAY)
        generated += sum(len(a.txns) for a in login.accounts)
    elapsed = time.perf_counter() - start
    record(
        "world_generation",
        per_second(generated, elapsed),
        "transactions/s",
        f"20 logins x 6 accounts x 2 years, {generated} transactions",
    )
