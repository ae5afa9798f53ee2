"""Typed models of what Sophtron sends.

Sophtron answers in PascalCase (``InstitutionID``, ``UserInstitutionID``...), but real payloads and
the clients that imitate them vary: ``...ID`` or ``...Id`` or camelCase keys, amounts as numbers or
strings, currency *symbols*, several date formats, ``Status`` in any case, lists sent as strings
holding JSON arrays, and nulls almost anywhere. Every model here accepts all of that: keys are
matched ignoring case and underscores, and each field type has a lenient parser (``_parse``).
Fields Sophtron sends that we do not model are kept in ``model_extra``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from . import _parse

__all__ = [
    "Account",
    "AccountKind",
    "Customer",
    "Institution",
    "InstitutionDetail",
    "Job",
    "JobTracker",
    "Member",
    "SophtronModel",
    "Transaction",
    "UserInstitution",
    "classify_account",
]

ZERO_GUID = "00000000-0000-0000-0000-000000000000"

Money = Annotated[Decimal | None, BeforeValidator(_parse.parse_money)]
Flag = Annotated[bool | None, BeforeValidator(_parse.parse_flag)]
Date = Annotated[dt.date | None, BeforeValidator(_parse.parse_date)]
Timestamp = Annotated[dt.datetime | None, BeforeValidator(_parse.parse_datetime)]
StrList = Annotated[list[str], BeforeValidator(_parse.parse_string_list)]
Text = Annotated[str | None, BeforeValidator(_parse.parse_text)]
Id = Annotated[str, BeforeValidator(_parse.parse_text)]
#: A currency symbol or code; one that names no currency makes the reply malformed.
CurrencyText = Annotated[str | None, BeforeValidator(_parse.parse_currency)]


#: Keys a model remembers as sent (a bound, whatever a reply holds).
_SEEN_KEYS = 1024


class SophtronModel(BaseModel):
    """Base of every response model: case-insensitive keys, extra keys kept, immutable."""

    model_config = ConfigDict(
        populate_by_name=True, extra="allow", frozen=True, str_strip_whitespace=False
    )

    #: Other spellings Sophtron or its clients use for a field, by field name.
    _also_known_as: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    #: Field names and aliases by normalised spelling.
    _key_index: ClassVar[dict[str, str]]
    #: Keys as Sophtron sent them, with the field they name (or themselves): a reply repeats the
    #: same keys in every item, and normalising each one again cost 40 % of validating an item.
    _seen_keys: ClassVar[dict[str, str]]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        index: dict[str, str] = {}
        for name, field in cls.model_fields.items():
            for spelling in (name, field.alias or name, *cls._also_known_as.get(name, ())):
                index.setdefault(_parse.normalise_key(spelling), field.alias or name)
        cls._key_index = index
        cls._seen_keys = {}

    @model_validator(mode="before")
    @classmethod
    def _canonical_keys(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        result: dict[str, Any] = {}
        seen = cls._seen_keys
        for key, value in data.items():
            canonical = seen.get(key) if isinstance(key, str) else None
            if canonical is None:
                canonical = cls._key_index.get(_parse.normalise_key(str(key)), str(key))
                if isinstance(key, str) and len(seen) < _SEEN_KEYS:
                    seen[key] = canonical
            # The first spelling wins; a later null never hides an earlier value.
            if canonical not in result or result[canonical] is None:
                result[canonical] = value
        return result


class InstitutionDetail(SophtronModel):
    login_form_user_name: Text = Field(None, alias="LoginFormUserName")
    login_form_password: Text = Field(None, alias="LoginFormPassword")
    routing_number: Text = Field(None, alias="RoutingNumber")
    multiple_routing_numbers: Text = Field(None, alias="MultipleRoutingNumbers")
    login_form_fields: list[dict[str, Any]] = Field(default_factory=list, alias="LoginFormFields")

    @property
    def needs_password(self) -> bool:
        """False when the institution's login form has no password field (``"None"``)."""
        return (self.login_form_password or "").strip().lower() != "none"


class Institution(SophtronModel):
    institution_id: Id = Field(alias="InstitutionID")
    institution_name: Text = Field(None, alias="InstitutionName")
    url: Text = Field(None, alias="URL")
    logo: Text = Field(None, alias="Logo")
    country_code: Text = Field(None, alias="CountryCode")
    language_code: Text = Field(None, alias="LanguageCode")
    is_financial: Flag = Field(None, alias="IsFinancial")
    institution_detail: InstitutionDetail | None = Field(None, alias="InstitutionDetail")

    @property
    def routing_numbers(self) -> list[str]:
        """Every routing number listed for the institution."""
        detail = self.institution_detail
        if detail is None:
            return []
        raw = "/".join(filter(None, [detail.routing_number, detail.multiple_routing_numbers]))
        return [part.strip() for part in raw.replace(",", "/").split("/") if part.strip()]


class JobTracker(SophtronModel):
    """What a call that starts a job returns: the job and the login (member) it works on."""

    job_id: Id = Field(alias="JobID")
    user_institution_id: Text = Field(None, alias="UserInstitutionID")
    member_id: Text = Field(None, alias="MemberID")

    @property
    def login_id(self) -> str | None:
        """The UserInstitutionID (v1) or MemberID (v2); Sophtron uses one id for both."""
        return self.user_institution_id or self.member_id


class UserInstitution(SophtronModel):
    """A login at a bank (v1 ``UserInstitutionInformation``)."""

    user_institution_id: Id = Field(alias="UserInstitutionID")
    user_id: Text = Field(None, alias="UserID")
    institution_id: Text = Field(None, alias="InstitutionID")
    institution_name: Text = Field(None, alias="InstitutionName")
    user_name: Text = Field(None, alias="UserName")
    company_id: Text = Field(None, alias="CompanyID")
    owner_name: Text = Field(None, alias="OwnerName")
    address: Text = Field(None, alias="Address")
    phone: StrList = Field(default_factory=list, alias="Phone")
    email: StrList = Field(default_factory=list, alias="Email")
    last_modified: Timestamp = Field(None, alias="LastModified")

    _also_known_as: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "user_institution_id": ("MemberID",),
        "company_id": ("CompanyName",),
    }


class AccountKind(StrEnum):
    """What kind of account a Sophtron ``AccountType`` / ``SubType`` names."""

    DEPOSITORY = "depository"
    CREDIT_CARD = "credit_card"
    INVESTMENT = "investment"
    LOAN = "loan"
    OTHER = "other"


_KIND_WORDS: tuple[tuple[AccountKind, tuple[str, ...]], ...] = (
    # Loans first: "Line of Credit" is a loan, not a card.
    (AccountKind.LOAN, ("loan", "mortgage", "heloc", "lineofcredit", "auto", "student")),
    (AccountKind.CREDIT_CARD, ("creditcard", "credit", "card", "chargecard")),
    (
        AccountKind.INVESTMENT,
        (
            "investment",
            "brokerage",
            "401k",
            "403b",
            "ira",
            "roth",
            "retirement",
            "529",
            "stock",
            "annuity",
            "pension",
            "hsa",
        ),
    ),
    (
        AccountKind.DEPOSITORY,
        ("checking", "savings", "moneymarket", "deposit", "cd", "certificate", "cash", "prepaid"),
    ),
)


def classify_account(account_type: str | None, sub_type: str | None = None) -> AccountKind:
    """Map Sophtron's free-text account type (and subtype) onto an :class:`AccountKind`."""
    for text in (account_type, sub_type):
        word = _parse.normalise_key(text or "")
        if not word:
            continue
        for kind, words in _KIND_WORDS:
            if word in words or any(w in word for w in words if len(w) > 4):
                return kind
    return AccountKind.OTHER


class Account(SophtronModel):
    """An account under a login (v1 ``UserInstitutionAccount``, v2 account)."""

    account_id: Id = Field(alias="AccountID")
    user_institution_id: Text = Field(None, alias="UserInstitutionID")
    member_id: Text = Field(None, alias="MemberID")
    institution_id: Text = Field(None, alias="InstitutionID")
    account_name: Text = Field(None, alias="AccountName")
    account_number: Text = Field(None, alias="AccountNumber")
    account_type: Text = Field(None, alias="AccountType")
    sub_type: Text = Field(None, alias="SubType")
    balance: Money = Field(None, alias="Balance")
    available_balance: Money = Field(None, alias="AvailableBalance")
    balance_currency: CurrencyText = Field(None, alias="BalanceCurrency")
    last_updated: Timestamp = Field(None, alias="LastUpdated")
    due_date: Date = Field(None, alias="DueDate")
    status: Text = Field(None, alias="Status")
    full_account_number: Text = Field(None, alias="FullAccountNumber")
    routing_number: Text = Field(None, alias="RoutingNumber")
    institution_number: Text = Field(None, alias="InstitutionNumber")
    transit_number: Text = Field(None, alias="TransitNumber")
    owner_name: Text = Field(None, alias="OwnerName")

    _also_known_as: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "account_id": ("UserInstitutionAccountID",),
        "sub_type": ("AccountSubType",),
        "balance": ("AccountBalance", "CurrentBalance"),
        "balance_currency": ("Currency",),
        "status": ("AccountStatus",),
    }

    @property
    def currency(self) -> str:
        """ISO 4217 code of the balance (Sophtron sends a symbol such as ``$``; default USD)."""
        return _parse.currency_code(self.balance_currency)

    @property
    def kind(self) -> AccountKind:
        return classify_account(self.account_type, self.sub_type)

    @property
    def mask(self) -> str:
        """The last four characters of the account number, for display."""
        digits = (self.account_number or "").strip()
        return digits[-4:]

    @property
    def tracked(self) -> bool:
        """False when Sophtron says the account is ``Untracked``."""
        return (self.status or "").strip().lower() not in {"untracked", "1"}


class Transaction(SophtronModel):
    """A transaction (v1 ``TransactionInformation``, v2 transaction)."""

    transaction_id: Text = Field(None, alias="TransactionID")
    id: Text = Field(None, alias="ID")
    user_id: Text = Field(None, alias="UserID")
    account_id: Text = Field(None, alias="UserInstitutionAccountID")
    status: Text = Field(None, alias="Status")
    type: Text = Field(None, alias="Type")
    amount: Money = Field(None, alias="Amount")
    currency_symbol: CurrencyText = Field(None, alias="Currency")
    date: Date = Field(None, alias="Date")
    transaction_date: Date = Field(None, alias="TransactionDate")
    post_date: Date = Field(None, alias="PostDate")
    description: Text = Field(None, alias="Description")
    balance: Money = Field(None, alias="Balance")
    merchant: Text = Field(None, alias="Merchant")
    category: Text = Field(None, alias="Category")
    check_num: Text = Field(None, alias="CheckNum")
    memo: Text = Field(None, alias="Memo")
    check_image: Text = Field(None, alias="CheckImage")

    _also_known_as: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "account_id": ("AccountID",),
        "currency_symbol": ("CurrencyCode",),
    }

    @model_validator(mode="after")
    def _needs_an_id(self) -> Transaction:
        if not (self.transaction_id or self.id):
            raise ValueError("a transaction needs a TransactionID or an ID")
        return self

    @property
    def provider_id(self) -> str:
        """The id to deduplicate on: ``TransactionID``, falling back to ``ID``."""
        return self.transaction_id or self.id or ""

    @property
    def currency(self) -> str:
        return _parse.currency_code(self.currency_symbol)

    @property
    def pending(self) -> bool:
        return (self.status or "").strip().lower() == "pending"

    @property
    def booked_on(self) -> dt.date | None:
        """The transaction's calendar date: TransactionDate, else Date, else PostDate."""
        return self.transaction_date or self.date or self.post_date

    @property
    def signed_amount(self) -> Decimal | None:
        """The amount with money leaving the account negative.

        Sophtron sends signed amounts; when an amount arrives unsigned but ``Type`` says DEBIT,
        the sign is restored from the type.
        """
        if self.amount is None:
            return None
        kind = (self.type or "").strip().upper()
        if kind == "DEBIT" and self.amount > 0:
            return -self.amount
        return self.amount


class Job(SophtronModel):
    """A Sophtron job (``JobInformation``): polled until it succeeds, fails, or asks for input.

    The echoes of MFA answers (``SecurityAnswer``, ``TokenInput``, ``CaptchaInput``) are left out
    of ``repr`` so that a logged job never shows them.
    """

    job_id: Id = Field(alias="JobID")
    job_type: Text = Field(None, alias="JobType")
    user_institution_id: Text = Field(None, alias="UserInstitutionID")
    account_id: Text = Field(None, alias="AccountID")
    success_flag: Flag = Field(None, alias="SuccessFlag")
    last_step: Text = Field(None, alias="LastStep")
    last_status: Text = Field(None, alias="LastStatus")
    security_question: StrList = Field(default_factory=list, alias="SecurityQuestion")
    security_answer: Text = Field(None, alias="SecurityAnswer", repr=False)
    token_method: StrList = Field(default_factory=list, alias="TokenMethod")
    token_choice: Text = Field(None, alias="TokenChoice")
    token_sent_flag: Flag = Field(None, alias="TokenSentFlag")
    token_input_name: Text = Field(None, alias="TokenInputName")
    token_input: Text = Field(None, alias="TokenInput", repr=False)
    token_read: Text = Field(None, alias="TokenRead")
    verify_phone_flag: Flag = Field(None, alias="VerifyPhoneFlag")
    captcha_image: Text = Field(None, alias="CaptchaImage")
    captcha_input: Text = Field(None, alias="CaptchaInput", repr=False)

    _also_known_as: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "user_institution_id": ("MemberID",),
    }

    @property
    def selected_account_id(self) -> str | None:
        """The job's account, or ``None`` for Sophtron's zero GUID."""
        if not self.account_id or self.account_id == ZERO_GUID:
            return None
        return self.account_id


class Customer(SophtronModel):
    """A v2 customer: one end user (for sophsync, one family) under the developer account."""

    customer_id: Id = Field(alias="CustomerID")
    customer_name: Text = Field(None, alias="CustomerName")
    unique_id: Text = Field(None, alias="UniqueID")
    source: Text = Field(None, alias="Source")
    member_ids: StrList = Field(default_factory=list, alias="MemberIDs")

    _also_known_as: ClassVar[Mapping[str, tuple[str, ...]]] = {"customer_name": ("Name",)}


class Member(SophtronModel):
    """A v2 member: a bank login under a customer (the same id as a v1 UserInstitutionID)."""

    member_id: Id = Field(alias="MemberID")
    institution_id: Text = Field(None, alias="InstitutionID")
    institution_name: Text = Field(None, alias="InstitutionName")
    job_id: Text = Field(None, alias="JobID")
    user_name: Text = Field(None, alias="UserName")
    status: Text = Field(None, alias="Status")

    _also_known_as: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "member_id": ("UserInstitutionID",),
    }
