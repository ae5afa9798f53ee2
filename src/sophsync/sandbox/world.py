"""The sandbox's deterministic money: accounts and years of transactions for every bank login.

What a login holds depends only on the seed, the institution, the bank username (and the options
written into it, see :class:`LoginOptions`): the same login always shows the same accounts and
transactions. History is generated day by day, in order, from the account's opening date up to
the sandbox's clock, so advancing the clock adds new days without changing old ones.

A transaction is first *pending* and *posts* a few days later. While pending it may carry a
different amount (a restaurant tip is added when it posts) and, for some, a different
TransactionID (the posted record replaces the pending one); a few authorisations never post and
vanish. What an account shows is always a view at a date: the date its login was last refreshed.
Amounts are integer cents; money out of an account is negative, and balances of cards and loans
are negative when money is owed.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum

from .catalogue import InstitutionRecord


def cents_to_decimal(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


@dataclass(frozen=True)
class LoginOptions:
    """Behaviour chosen by the bank username (and password) of a sandbox login.

    Special usernames (any case, anywhere in the username):
    ``bad-password`` (or the password ``wrong``) fails at login; ``institution-error`` fails
    with an institution error; ``never-finishes`` leaves every job running forever;
    ``mfa-again`` asks the bank's MFA again on each refresh after the first connection;
    ``no-accounts`` connects but holds no account.
    Options as ``key=value`` words, separated by ``+``, ``;`` or ``,``: ``accounts=N`` (1-12
    accounts), ``years=Y`` (history length, default 2), ``daily=X`` (card purchases a day,
    default 1), ``job-seconds=S`` (this login's job step time).
    """

    accounts: int | None = None
    years: float = 2.0
    daily: float = 1.0
    job_seconds: float | None = None
    bad_password: bool = False
    institution_error: bool = False
    never_finishes: bool = False
    mfa_again: bool = False
    no_accounts: bool = False

    @classmethod
    def parse(cls, username: str, password: str = "") -> LoginOptions:
        lowered = username.lower()
        values: dict[str, str] = {}
        for word in lowered.replace(";", "+").replace(",", "+").split("+"):
            key, sep, value = word.partition("=")
            if sep:
                values[key.strip()] = value.strip()

        def number(key: str, default: float, low: float, high: float) -> float:
            try:
                return min(high, max(low, float(values[key])))
            except (KeyError, ValueError):
                return default

        accounts = int(number("accounts", 0, 0, 12)) or None
        job_seconds = number("job-seconds", -1, 0, 3600)
        return cls(
            accounts=accounts,
            years=number("years", 2.0, 0.05, 30),
            daily=number("daily", 1.0, 0, 500),
            job_seconds=None if job_seconds < 0 else job_seconds,
            bad_password="bad-password" in lowered or password.strip().lower() == "wrong",
            institution_error="institution-error" in lowered,
            never_finishes="never-finishes" in lowered,
            mfa_again="mfa-again" in lowered,
            no_accounts="no-accounts" in lowered,
        )


class Template(Enum):
    """Account templates: (AccountType, SubType, name, opening balance range in dollars)."""

    CHECKING = ("Checking", "Checking", "Primary Checking", (1500, 6000))
    SAVINGS = ("Savings", "Savings", "High Yield Savings", (4000, 25000))
    CREDIT_CARD = ("Credit_Card", "Credit Card", "Rewards Visa Signature", (-1800, -300))
    MORTGAGE = ("Loan", "Mortgage", "Home Mortgage", (-260000, -120000))
    INVESTMENT = ("Investment", "Brokerage", "Individual Brokerage", (8000, 90000))
    BILL = ("Bill", "Utility", "Electric Service", (0, 0))
    AUTO_LOAN = ("Loan", "Auto", "Auto Loan", (-32000, -9000))
    MONEY_MARKET = ("Savings", "Money Market", "Money Market", (2000, 15000))
    IRA = ("Investment", "IRA", "Roth IRA", (5000, 60000))
    STORE_CARD = ("Credit_Card", "Credit Card", "Store Card", (-600, -50))
    CASH_MANAGEMENT = ("Checking", "Cash Management", "Cash Management", (500, 8000))

    @property
    def account_type(self) -> str:
        return self.value[0]

    @property
    def sub_type(self) -> str:
        return self.value[1]

    @property
    def label(self) -> str:
        return self.value[2]

    @property
    def opening_range(self) -> tuple[int, int]:
        return self.value[3]

    @property
    def liability(self) -> bool:
        return self.account_type in {"Credit_Card", "Loan", "Bill"}


_FULL_SET = (
    Template.CHECKING,
    Template.SAVINGS,
    Template.CREDIT_CARD,
    Template.MORTGAGE,
    Template.INVESTMENT,
    Template.BILL,
    Template.AUTO_LOAN,
    Template.MONEY_MARKET,
    Template.IRA,
    Template.STORE_CARD,
    Template.CASH_MANAGEMENT,
    Template.CHECKING,
)

# (merchant, category, low, high dollars, description city, tip-able, weight)
_MERCHANTS = (
    ("Coffee Shop", "Coffee Shops", 3, 9, "SEATTLE WA", True, 12),
    ("Starbucks", "Coffee Shops", 4, 12, "SEATTLE WA", True, 12),
    ("Whole Foods Market", "Groceries", 18, 140, "AUSTIN TX", False, 8),
    ("Trader Joe's", "Groceries", 15, 110, "PORTLAND OR", False, 8),
    ("Safeway", "Groceries", 12, 120, "DENVER CO", False, 8),
    ("Shell", "Gas & Fuel", 25, 70, "PHOENIX AZ", False, 6),
    ("Chevron", "Gas & Fuel", 28, 75, "SAN JOSE CA", False, 5),
    ("Amazon.com", "Shopping", 8, 120, "AMZN.COM/BILL WA", False, 7),
    ("Target", "Shopping", 10, 110, "MINNEAPOLIS MN", False, 5),
    ("Costco", "Shopping", 40, 260, "ISSAQUAH WA", False, 2),
    ("Home Depot", "Home Improvement", 12, 200, "ATLANTA GA", False, 2),
    ("Chipotle", "Fast Food", 9, 32, "COLUMBUS OH", False, 8),
    ("Olive Garden", "Restaurants", 28, 95, "ORLANDO FL", True, 3),
    ("Local Bistro", "Restaurants", 35, 140, "BOSTON MA", True, 2),
    ("Uber", "Rideshare", 9, 45, "SAN FRANCISCO CA", True, 5),
    ("CVS Pharmacy", "Pharmacy", 6, 60, "WOONSOCKET RI", False, 5),
    ("Walgreens", "Pharmacy", 5, 50, "DEERFIELD IL", False, 4),
    ("Delta Air Lines", "Travel", 120, 640, "ATLANTA GA", False, 1),
    ("Marriott", "Hotel", 140, 520, "BETHESDA MD", False, 1),
    ("AMC Theatres", "Entertainment", 14, 60, "LEAWOOD KS", False, 2),
    ("Best Buy", "Electronics", 25, 600, "RICHFIELD MN", False, 1),
    ("Petco", "Pets", 12, 95, "SAN DIEGO CA", False, 2),
)
_MERCHANT_WEIGHTS = [merchant[-1] for merchant in _MERCHANTS]
_EMPLOYERS = (
    "ACME CORP",
    "GLOBEX INC",
    "INITECH LLC",
    "UMBRELLA HEALTH",
    "STARK INDUSTRIES",
    "WAYNE ENTERPRISES",
    "HOOLI",
    "VANDELAY IMPORTS",
)
_SUBSCRIPTIONS = (
    (3, "Fitness Club", "Gym", 3900),
    (7, "Netflix", "Streaming", 1549),
    (12, "Spotify", "Music", 1099),
    (18, "Mobile Carrier", "Mobile Phone", 6500),
)


@dataclass
class Txn:
    """One generated transaction: the facts, from which every view is derived."""

    seq: int
    day: dt.date
    post_lag: int
    amount: int
    description: str
    category: str
    merchant: str | None = None
    pending_amount: int | None = None
    new_id_on_post: bool = False
    vanishes: bool = False
    check_num: str | None = None
    memo: str | None = None

    @property
    def post_day(self) -> dt.date:
        return self.day + dt.timedelta(days=self.post_lag)


@dataclass
class AccountData:
    index: int
    template: Template
    name: str
    last4: str
    opening: int
    opened: dt.date
    credit_limit: int = 0
    account_id: str = ""
    txns: list[Txn] = field(default_factory=list)
    running: int = 0

    @property
    def number(self) -> str:
        return f"xxxx{self.last4}"


@dataclass(frozen=True)
class TxnView:
    """A transaction as the API shows it on a given date."""

    txn: Txn
    transaction_id: str
    record_id: str
    pending: bool
    amount: int
    post_day: dt.date | None
    balance: int | None


@dataclass(frozen=True)
class AccountView:
    data: AccountData
    balance: int
    available: int | None
    due_date: dt.date | None


class LoginData:
    """Accounts and transactions of one bank login, generated lazily up to a date."""

    def __init__(
        self,
        login_id: str,
        seed: int,
        institution: InstitutionRecord,
        username: str,
        options: LoginOptions,
        today: dt.date,
    ) -> None:
        self.login_id = login_id
        self._namespace = uuid.UUID(login_id)
        self.key = f"{seed}:{institution.institution_id}:{username.strip().lower()}"
        self.institution = institution
        self.options = options
        rng = random.Random(f"login:{self.key}")
        templates = () if options.no_accounts else _templates(options.accounts)
        history = dt.timedelta(days=max(1, round(options.years * 365.25)))
        opened = today - history
        self.employer = rng.choice(_EMPLOYERS)
        self.salary = rng.randint(2900_00, 4200_00)
        self.card_last4 = f"{rng.randint(1000, 9999)}"
        self.accounts: list[AccountData] = []
        used_labels: dict[str, int] = {}
        for index, template in enumerate(templates):
            low, high = template.opening_range
            count = used_labels.get(template.label, 0) + 1
            used_labels[template.label] = count
            last4 = f"{rng.randint(0, 9999):04d}"
            if index == 0 and institution.name == "Sophtron Bank NoMFA":
                last4 = "1234"
            opening = rng.randint(low * 100, high * 100) if high > low else low * 100
            account = AccountData(
                index=index,
                template=template,
                name=template.label if count == 1 else f"{template.label} {count}",
                last4=last4,
                opening=opening,
                opened=opened,
                credit_limit=rng.choice([5000, 8000, 12000, 20000]) * 100
                if template.account_type == "Credit_Card"
                else 0,
            )
            account.running = opening
            self.accounts.append(account)
        self.generated_through = opened - dt.timedelta(days=1)
        self._seq = 0
        self._statement: dict[int, int] = {}
        self._charges: dict[int, int] = {}
        self._views: dict[tuple[int, dt.date], list[TxnView]] = {}
        for account in self.accounts:
            account.account_id = str(uuid.uuid5(self._namespace, f"account:{account.index}"))

    # --- generation ---------------------------------------------------------------------------

    def extend_to(self, day: dt.date) -> None:
        """Generate every day up to and including ``day``."""
        current = self.generated_through + dt.timedelta(days=1)
        while current <= day:
            self._generate_day(current)
            current += dt.timedelta(days=1)
        if day > self.generated_through:
            self.generated_through = day
            self._views.clear()

    def _add(
        self,
        account: AccountData,
        day: dt.date,
        amount: int,
        description: str,
        category: str,
        *,
        merchant: str | None = None,
        post_lag: int = 0,
        pending_amount: int | None = None,
        new_id_on_post: bool = False,
        vanishes: bool = False,
        check_num: str | None = None,
        memo: str | None = None,
    ) -> Txn:
        self._seq += 1
        txn = Txn(
            seq=self._seq,
            day=day,
            post_lag=post_lag,
            amount=amount,
            description=description,
            category=category,
            merchant=merchant,
            pending_amount=pending_amount,
            new_id_on_post=new_id_on_post,
            vanishes=vanishes,
            check_num=check_num,
            memo=memo,
        )
        account.txns.append(txn)
        if not txn.vanishes:
            account.running += amount
        return txn

    def _first(self, *templates: Template) -> AccountData | None:
        for account in self.accounts:
            if account.template in templates:
                return account
        return None

    def _transfer(
        self,
        day: dt.date,
        source: AccountData | None,
        target: AccountData | None,
        amount: int,
        out_text: str,
        in_text: str,
        category: str,
    ) -> None:
        if source is not None:
            memo = f"to {target.number}" if target else None
            self._add(source, day, -amount, out_text, category, memo=memo)
        if target is not None:
            memo = f"from {source.number}" if source else None
            self._add(target, day, amount, in_text, category, memo=memo)

    def _purchase(
        self, rng: random.Random, account: AccountData, day: dt.date, prefix: str
    ) -> None:
        name, category, low, high, city, tips, _ = rng.choices(_MERCHANTS, _MERCHANT_WEIGHTS)[0]
        amount = rng.randint(low * 100, high * 100)
        pending_amount = None
        if tips and rng.random() < 0.35:
            pending_amount = -amount
            amount = amount + amount * rng.choice([15, 18, 20, 22]) // 100
        vanishes = rng.random() < 0.02
        self._add(
            account,
            day,
            -amount,
            f"{prefix} {day:%m%d} {name.upper()} {city}",
            category,
            merchant=name,
            post_lag=rng.choice([1, 1, 2, 2, 3]),
            pending_amount=pending_amount,
            new_id_on_post=rng.random() < 0.08,
            vanishes=vanishes,
        )

    def _count(self, rng: random.Random, mean: float) -> int:
        if mean <= 0:
            return 0
        if mean > 30:
            return max(0, round(rng.gauss(mean, math.sqrt(mean))))
        limit, product, count = math.exp(-mean), rng.random(), 0
        while product > limit:
            count += 1
            product *= rng.random()
        return count

    def _generate_day(self, day: dt.date) -> None:
        rng = random.Random(f"day:{self.key}:{day.toordinal()}")
        checking = self._first(Template.CHECKING, Template.CASH_MANAGEMENT)
        last_day = (day + dt.timedelta(days=1)).day == 1
        daily = self.options.daily
        for account in self.accounts:
            template = account.template
            if template in (Template.CHECKING, Template.CASH_MANAGEMENT) and account is checking:
                if day.day in (1, 15):
                    pay = self.salary + rng.randint(-2500, 2500)
                    self._add(
                        account,
                        day,
                        pay,
                        f"{self.employer} DIRECT DEP PAYROLL",
                        "Paycheck",
                        merchant=self.employer.title(),
                    )
                for _ in range(self._count(rng, 0.6 * daily)):
                    self._purchase(rng, account, day, "CHECKCARD")
                if rng.random() < 0.03:
                    self._add(
                        account,
                        day,
                        -rng.choice([2000, 4000, 6000, 10000]),
                        f"ATM WITHDRAWAL #{rng.randint(1000, 9999)} MAIN ST",
                        "Cash & ATM",
                    )
                if rng.random() < 0.02:
                    number = f"{1000 + self._seq % 9000}"
                    self._add(
                        account,
                        day,
                        -rng.randint(5000, 40000),
                        f"CHECK #{number}",
                        "Check",
                        check_num=number,
                        post_lag=rng.randint(1, 4),
                    )
                for subscription_day, merchant, category, amount in _SUBSCRIPTIONS:
                    if day.day == subscription_day:
                        self._add(
                            account,
                            day,
                            -amount,
                            f"CHECKCARD {day:%m%d} {merchant.upper()} RECURRING",
                            category,
                            merchant=merchant,
                            post_lag=1,
                        )
            elif template in (Template.SAVINGS, Template.MONEY_MARKET):
                if last_day and account.running > 0:
                    interest = max(1, account.running * 4 // 1200)
                    self._add(account, day, interest, "INTEREST PAYMENT", "Interest Income")
            elif template in (Template.CREDIT_CARD, Template.STORE_CARD):
                for _ in range(self._count(rng, 1.0 * daily)):
                    self._purchase(rng, account, day, "PURCHASE")
                    self._charges[account.index] = (
                        self._charges.get(account.index, 0) - account.txns[-1].amount
                    )
                if rng.random() < 0.03:
                    name = rng.choices(_MERCHANTS, _MERCHANT_WEIGHTS)[0][0]
                    self._add(
                        account,
                        day,
                        rng.randint(500, 8000),
                        f"REFUND {name.upper()}",
                        "Returned Purchase",
                        merchant=name,
                        post_lag=2,
                    )
                if day.day == 1:
                    self._statement[account.index] = self._charges.pop(account.index, 0)
                if day.day == 25 and self._statement.get(account.index, 0) > 0:
                    amount = self._statement.pop(account.index)
                    self._transfer(
                        day,
                        checking,
                        account,
                        amount,
                        f"ONLINE PAYMENT TO {account.name.upper()} {account.number}",
                        "PAYMENT THANK YOU",
                        "Credit Card Payment",
                    )
            elif template in (Template.MORTGAGE, Template.AUTO_LOAN):
                if day.day == 1 and account.running < 0:
                    rate = 6 if template is Template.MORTGAGE else 7
                    interest = -account.running * rate // 1200
                    payment = min(
                        -account.running + interest, max(interest + 20000, -account.opening // 240)
                    )
                    self._add(account, day, -interest, "INTEREST CHARGED", "Loan Interest")
                    self._transfer(
                        day,
                        checking,
                        account,
                        payment,
                        f"ONLINE PAYMENT TO {account.name.upper()} {account.number}",
                        "PAYMENT RECEIVED",
                        "Loan Payment",
                    )
            elif template in (Template.INVESTMENT, Template.IRA):
                if day.day == 5:
                    self._transfer(
                        day,
                        checking,
                        account,
                        50000,
                        f"TRANSFER TO {account.name.upper()} {account.number}",
                        "CONTRIBUTION",
                        "Investments",
                    )
                if day.day == 15 and day.month % 3 == 0:
                    dividend = max(100, account.running * rng.randint(30, 60) // 40000)
                    self._add(account, day, dividend, "DIVIDEND RECEIVED VTSAX", "Dividend")
                    self._add(
                        account, day, -rng.randint(500, 2500), "ADVISORY FEE", "Investment Fees"
                    )
            elif template is Template.BILL:
                if day.day == 8:
                    season = 1.6 if day.month in (1, 2, 7, 8, 12) else 1.0
                    amount = int(rng.randint(6500, 14000) * season)
                    self._add(account, day, -amount, f"STATEMENT {day:%b %Y}".upper(), "Utilities")
                if day.day == 28 and account.running < 0:
                    self._transfer(
                        day,
                        checking,
                        account,
                        -account.running,
                        f"BILL PAY {self.institution.name.upper()} ELECTRIC",
                        "PAYMENT RECEIVED",
                        "Utilities",
                    )
        if checking is not None and day.day == 20:
            savings = self._first(Template.SAVINGS, Template.MONEY_MARKET)
            if savings is not None:
                self._transfer(
                    day,
                    checking,
                    savings,
                    100000,
                    f"ONLINE TRANSFER TO SAVINGS {savings.number}",
                    f"ONLINE TRANSFER FROM CHECKING {checking.number}",
                    "Transfer",
                )

    # --- views ----------------------------------------------------------------------------------

    def _ids(self, account: AccountData, txn: Txn) -> tuple[str, str, str]:
        """(pending TransactionID, posted TransactionID, record ID) of a transaction."""
        base = f"{account.index}:{txn.seq}"
        pending = str(uuid.uuid5(self._namespace, f"txn:{base}"))
        posted = (
            str(uuid.uuid5(self._namespace, f"txn:{base}:posted"))
            if txn.new_id_on_post
            else pending
        )
        return pending, posted, str(uuid.uuid5(self._namespace, f"record:{base}"))

    def transactions(self, account: AccountData, as_of: dt.date) -> list[TxnView]:
        """Every transaction the account shows on ``as_of``, oldest first."""
        key = (account.index, as_of)
        cached = self._views.get(key)
        if cached is not None:
            return cached
        self.extend_to(as_of)
        visible: list[TxnView] = []
        posted: list[tuple[dt.date, int, int]] = []
        for position, txn in enumerate(account.txns):
            if txn.day > as_of:
                break
            pending_id, posted_id, record_id = self._ids(account, txn)
            if txn.post_day > as_of:
                amount = txn.pending_amount if txn.pending_amount is not None else txn.amount
                visible.append(TxnView(txn, pending_id, record_id, True, amount, None, None))
            elif not txn.vanishes:
                visible.append(
                    TxnView(txn, posted_id, record_id, False, txn.amount, txn.post_day, None)
                )
                posted.append((txn.post_day, txn.seq, position))
        # Running balances follow posting order.
        running = account.opening
        balances: dict[int, int] = {}
        for _, seq, position in sorted(posted):
            running += account.txns[position].amount
            balances[seq] = running
        result = [
            view
            if view.pending
            else TxnView(
                view.txn,
                view.transaction_id,
                view.record_id,
                False,
                view.amount,
                view.post_day,
                balances[view.txn.seq],
            )
            for view in visible
        ]
        self._views[key] = result
        return result

    def account_view(self, account: AccountData, as_of: dt.date) -> AccountView:
        views = self.transactions(account, as_of)
        balance = account.opening + sum(v.amount for v in views if not v.pending)
        holds = sum(v.amount for v in views if v.pending)
        template = account.template
        available: int | None
        if template.account_type == "Credit_Card":
            available = account.credit_limit + balance + holds
        elif template.account_type in {"Checking", "Savings"}:
            available = balance + holds
        else:
            available = None
        due = None
        if template.liability:
            due_day = (
                28
                if template is Template.BILL
                else (25 if template.account_type == "Credit_Card" else 1)
            )
            due = _next_day_of_month(as_of, due_day)
        return AccountView(account, balance, available, due)


def _next_day_of_month(after: dt.date, day: int) -> dt.date:
    candidate = after.replace(day=min(day, 28))
    if candidate <= after:
        month = after.month % 12 + 1
        year = after.year + (1 if month == 1 else 0)
        candidate = dt.date(year, month, min(day, 28))
    return candidate


def _templates(count: int | None) -> tuple[Template, ...]:
    """Every login has one account of each of the six kinds, or ``count`` accounts cycling
    through all templates."""
    if count is None:
        return _FULL_SET[:6]
    return tuple(_FULL_SET[i % len(_FULL_SET)] for i in range(count))
