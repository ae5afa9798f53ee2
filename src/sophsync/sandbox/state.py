"""Everything one sandbox holds, and the operations the HTTP layer calls.

All state lives in memory and is touched from the server's event loop only, so operations need
no locks. Ids are UUIDs derived from the seed and a counter: the same sequence of requests gets
the same ids on every run.
"""

from __future__ import annotations

import base64
import datetime as dt
import random
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from .catalogue import Catalogue, InstitutionRecord, build_catalogue
from .faults import FaultSpec, RateLimit
from .jobs import SandboxJob, plan_steps
from .world import AccountData, LoginData, LoginOptions


def new_credentials() -> tuple[str, str]:
    """A fresh developer User ID and base64 Access Key, shaped like Sophtron's."""
    return str(uuid.uuid4()), base64.b64encode(secrets.token_bytes(32)).decode("ascii")


@dataclass(frozen=True)
class SandboxConfig:
    """How a sandbox behaves. ``users`` maps each accepted User ID to its base64 Access Key."""

    users: dict[str, str]
    seed: int = 0
    job_seconds: float = 0.0
    mfa_timeout: float = 300.0
    faults: FaultSpec | None = None
    rate_limit: RateLimit | None = None
    strict_auth: bool = False
    today: dt.date | None = None
    catalogue_size: int = 1200


@dataclass
class Customer:
    customer_id: str
    user_id: str
    unique_id: str
    name: str
    source: str


@dataclass
class Login:
    """A bank login: a v1 UserInstitution, or a v2 member (the same id)."""

    login_id: str
    user_id: str
    institution: InstitutionRecord
    username: str
    options: LoginOptions
    data: LoginData
    customer_id: str | None = None
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    last_modified: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    connected: bool = False
    accounts_visible: bool = False
    #: For each account index, the world date its data was last refreshed to.
    as_of: dict[int, dt.date] = field(default_factory=dict)
    refreshed_at: dict[int, dt.datetime] = field(default_factory=dict)
    last_job_id: str | None = None

    def account(self, account_id: str) -> AccountData | None:
        for account in self.data.accounts:
            if account.account_id.lower() == account_id.lower():
                return account
        return None


class NotFoundError(LookupError):
    """An id that this user cannot see."""


class SandboxState:
    def __init__(self, config: SandboxConfig, *, clock: Callable[[], float] = time.monotonic):
        self.config = config
        self.clock = clock
        self.today = config.today or dt.datetime.now(dt.UTC).date()
        self.catalogue: Catalogue = build_catalogue(config.seed, config.catalogue_size)
        self.logins: dict[str, Login] = {}
        self.customers: dict[str, Customer] = {}
        self.jobs: dict[str, SandboxJob] = {}
        self.job_owners: dict[str, str] = {}
        self._namespace = uuid.uuid5(
            uuid.NAMESPACE_URL, f"https://sandbox.sophsync.invalid/{config.seed}/ids"
        )
        self._counter = 0

    # --- ids and clock ------------------------------------------------------------------------

    def new_id(self, kind: str) -> str:
        self._counter += 1
        return str(uuid.uuid5(self._namespace, f"{kind}:{self._counter}"))

    def advance(self, days: int) -> dt.date:
        """Move the world's date; new transactions appear at the next refresh."""
        self.today += dt.timedelta(days=days)
        return self.today

    def now(self) -> dt.datetime:
        """The sandbox's current time: today's world date with the wall clock's time of day."""
        wall = dt.datetime.now(dt.UTC)
        return dt.datetime.combine(self.today, wall.time().replace(microsecond=0), dt.UTC)

    # --- lookups (scoped to the caller's user id) ---------------------------------------------

    def login(self, user_id: str, login_id: str) -> Login:
        login = self.logins.get(login_id.strip().lower())
        if login is None or login.user_id != user_id:
            raise NotFoundError("UserInstitution")
        return login

    def logins_of(self, user_id: str, customer_id: str | None = None) -> list[Login]:
        return [
            login
            for login in self.logins.values()
            if login.user_id == user_id
            and (customer_id is None or login.customer_id == customer_id)
        ]

    def find_account(self, user_id: str, account_id: str) -> tuple[Login, AccountData]:
        for login in self.logins_of(user_id):
            if not login.accounts_visible:
                continue
            account = login.account(account_id)
            if account is not None:
                return login, account
        raise NotFoundError("UserInstitutionAccount")

    def job(self, user_id: str, job_id: str) -> SandboxJob:
        job = self.jobs.get(job_id.strip().lower())
        if job is None:
            raise NotFoundError("Job")
        if self.job_owners.get(job.job_id) != user_id:
            raise NotFoundError("Job")
        return job

    def customer(self, user_id: str, customer_id: str) -> Customer:
        customer = self.customers.get(customer_id.strip().lower())
        if customer is None or customer.user_id != user_id:
            raise NotFoundError("Customer")
        return customer

    # --- logins and jobs ------------------------------------------------------------------------

    def create_login(
        self,
        user_id: str,
        institution: InstitutionRecord,
        username: str,
        password: str,
        *,
        customer_id: str | None = None,
        job_type: str = "AddAccounts",
    ) -> tuple[Login, SandboxJob]:
        login_id = self.new_id("login")
        options = LoginOptions.parse(username, password)
        data = LoginData(login_id, self.config.seed, institution, username, options, self.today)
        login = Login(login_id, user_id, institution, username, options, data, customer_id)
        self.logins[login_id] = login
        return login, self.start_job(login, job_type=job_type, refresh=False)

    def update_login(
        self, login: Login, username: str, password: str, job_type: str = "AddAccounts"
    ) -> SandboxJob:
        """New credentials: the same accounts (when the bank user is the same), a new login job."""
        options = LoginOptions.parse(username, password)
        if username.strip().lower() != login.username.strip().lower():
            login.username = username
            login.data = LoginData(
                login.login_id, self.config.seed, login.institution, username, options, self.today
            )
            login.as_of.clear()
        login.options = options
        login.last_modified = self.now()
        return self.start_job(login, job_type=job_type, refresh=False)

    def start_job(
        self, login: Login, *, job_type: str, refresh: bool, account: AccountData | None = None
    ) -> SandboxJob:
        options = login.options
        steps = plan_steps(
            login.institution.mfa,
            refresh=refresh and login.connected,
            ask_again=options.mfa_again,
        )
        scope = [account] if account is not None else list(login.data.accounts)
        failure = None
        if options.bad_password:
            failure = "password"
        elif options.institution_error:
            failure = "institution"
        job_id = self.new_id("job")

        def accounts_ready() -> None:
            login.accounts_visible = True
            for item in scope:
                login.as_of.setdefault(item.index, self.today)
                login.refreshed_at.setdefault(item.index, self.now())

        def succeeded() -> None:
            login.connected = True
            login.last_modified = self.now()
            for item in scope:
                login.as_of[item.index] = self.today
                login.refreshed_at[item.index] = self.now()

        job = SandboxJob(
            job_id=job_id,
            job_type=job_type,
            login_id=login.login_id,
            steps=steps,
            mfa=login.institution.mfa,
            started_at=self.clock(),
            job_seconds=options.job_seconds
            if options.job_seconds is not None
            else self.config.job_seconds,
            mfa_timeout=self.config.mfa_timeout,
            rng=random.Random(f"job:{self.config.seed}:{job_id}"),
            account_id=account.account_id
            if account is not None
            else "00000000-0000-0000-0000-000000000000",
            login_failure=failure,
            never_finishes=options.never_finishes,
            on_accounts=accounts_ready,
            on_success=succeeded,
        )
        self.jobs[job_id] = job
        self.job_owners[job_id] = login.user_id
        login.last_job_id = job_id
        return job

    def delete_login(self, login: Login) -> None:
        self.logins.pop(login.login_id, None)

    # --- customers ----------------------------------------------------------------------------

    def create_customer(self, user_id: str, unique_id: str, name: str, source: str) -> Customer:
        for customer in self.customers.values():
            if customer.user_id == user_id and customer.unique_id == unique_id:
                return customer
        customer = Customer(self.new_id("customer"), user_id, unique_id, name, source)
        self.customers[customer.customer_id] = customer
        return customer

    def delete_customer(self, customer: Customer) -> None:
        for login in self.logins_of(customer.user_id, customer.customer_id):
            self.delete_login(login)
        self.customers.pop(customer.customer_id, None)

    # --- views --------------------------------------------------------------------------------

    def visible_accounts(self, login: Login) -> list[AccountData]:
        return list(login.data.accounts) if login.accounts_visible else []

    def as_of(self, login: Login, account: AccountData) -> dt.date:
        return login.as_of.get(account.index, self.today)
