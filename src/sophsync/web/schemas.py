"""JSON shapes of the REST API (they also make the OpenAPI description)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from ..core.importer import to_decimal
from ..sophtron import (
    CaptchaPrompt,
    PhoneConfirmationPrompt,
    Prompt,
    SecurityQuestionsPrompt,
    TokenInputPrompt,
    TokenMethodPrompt,
)
from ..store.models import AccountType, ConnectionStatus, Role, RunStatus

#: The largest id the databases store (a 32-bit INTEGER column).
MAX_ID = 2**31 - 1
#: The largest amount a filter takes (fits any currency's minor units in 64 bits).
MAX_AMOUNT = 10**12
IdField = Annotated[int, Field(ge=1, le=MAX_ID)]
#: An id in a path, bounded so that no database sees an integer it cannot hold.
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]


class Model(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def no_nul(value: Any) -> Any:
    """Text without NUL characters (PostgreSQL stores none, and no name or address has one), in
    a string or a list of them; anything else as it is."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("remove the NUL character (\\u0000) from the text")
    if isinstance(value, list):
        for item in value:
            no_nul(item)
    return value


#: Text in a query parameter.
QueryText = Annotated[str, AfterValidator(no_nul)]


class InModel(Model):
    """A request's body: its text holds no NUL character."""

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return no_nul(value)


class ErrorBody(Model):
    code: str = Field(description="Stable machine-readable code, e.g. `forbidden`.")
    message: str = Field(description="What failed and what to do, for a person.")
    field: str | None = Field(default=None, description="The input field at fault, if any.")


class Error(Model):
    error: ErrorBody


def money(minor: int | None, currency: str) -> str | None:
    """Minor units as a decimal string (``-12.34``): never a float."""
    return None if minor is None else str(to_decimal(minor, currency))


# --- requests ---------------------------------------------------------------------------------


class SetupIn(InModel):
    family: str = Field(min_length=1, max_length=200)
    email: str
    password: str


class LoginIn(InModel):
    email: str
    password: str


class UserIn(InModel):
    email: str
    password: str
    role: Role = Role.MEMBER


class RoleIn(InModel):
    role: Role


class TokenIn(InModel):
    name: str


class CredentialsIn(InModel):
    user_id: str | None = None
    access_key: str | None = Field(default=None, description="Sophtron's base64 Access Key.")
    base_url: str | None = None


class ConnectIn(InModel):
    institution_id: str
    username: str
    password: str = ""
    pin: str = ""
    institution_name: str | None = None


class AnswerIn(InModel):
    answer: str | list[str] | bool = Field(
        description="Security answers (a list, one per question), the chosen token method "
        "(its text or index), the code, the captcha text, or `true` for a phone confirmation."
    )


class LoginUpdateIn(InModel):
    username: str
    password: str
    pin: str = ""


class LinkIn(InModel):
    provider_account_id: IdField
    account_id: IdField | None = Field(
        default=None, description="Link to this existing account instead."
    )
    name: str | None = None
    type: AccountType | None = None
    subtype: str | None = None
    sync_start_date: dt.date | None = None
    history_days: Annotated[int, Field(ge=1, le=3 * 366)] | None = None
    invert_sign: bool = False


class AccountPatch(InModel):
    name: str | None = None
    type: AccountType | None = None
    subtype: str | None = None
    invert_sign: bool | None = None
    sync_start_date: dt.date | None = None


class SyncIn(InModel):
    connection_id: IdField | None = None
    backfill_from: dt.date | None = None


# --- responses --------------------------------------------------------------------------------


class UserOut(Model):
    id: int
    email: str
    role: Role
    family_id: int


class TokenOut(Model):
    id: int
    name: str
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None


class NewTokenOut(TokenOut):
    token: str = Field(description="Shown once: store it now.")


class CredentialsOut(Model):
    user_id: str
    base_url: str
    customer_id: str | None
    verified_at: dt.datetime | None


class InstitutionOut(Model):
    institution_id: str
    name: str | None
    url: str | None
    logo: str | None
    username_label: str | None
    needs_password: bool


class ChallengeOut(Model):
    kind: Literal[
        "security_questions", "token_method", "token_input", "phone_confirmation", "captcha"
    ]
    questions: list[str] | None = None
    options: list[str] | None = Field(
        default=None, description="Token methods, cleaned for display."
    )
    label: str | None = None
    code: str | None = None
    image_png_base64: str | None = None

    @classmethod
    def of(cls, prompt: Prompt | None) -> ChallengeOut | None:
        """What a person must see of a prompt (``None`` when nothing is asked)."""
        if isinstance(prompt, SecurityQuestionsPrompt):
            return cls(kind="security_questions", questions=list(prompt.questions))
        if isinstance(prompt, TokenMethodPrompt):
            return cls(kind="token_method", options=list(prompt.labels))
        if isinstance(prompt, TokenInputPrompt):
            return cls(kind="token_input", label=prompt.label)
        if isinstance(prompt, PhoneConfirmationPrompt):
            return cls(kind="phone_confirmation", code=prompt.code)
        if isinstance(prompt, CaptchaPrompt):
            return cls(kind="captcha", image_png_base64=prompt.image_base64)
        return None


class ConnectionOut(Model):
    id: int
    institution_name: str
    status: ConnectionStatus
    message: str
    error_code: str | None
    last_success_at: dt.datetime | None = Field(description="The last successful sync.")
    challenge: ChallengeOut | None


class ProviderAccountOut(Model):
    id: int
    connection_id: int
    name: str
    mask: str
    kind: AccountType
    provider_type: str | None
    provider_subtype: str | None
    currency: str
    balance: str | None
    linked_account_id: int | None


class AccountOut(Model):
    id: int
    name: str
    type: AccountType
    subtype: str | None
    currency: str
    balance: str
    available: str | None
    balance_at: dt.datetime | None
    linked: bool
    invert_sign: bool
    sync_start_date: dt.date | None
    last_synced_at: dt.datetime | None


class TransactionOut(Model):
    id: int
    account_id: int
    provider_id: str | None
    date: dt.date
    posted_date: dt.date | None
    pending: bool
    amount: str = Field(description="Decimal string; negative when money leaves the account.")
    amount_minor: int
    currency: str
    description: str
    merchant: str | None
    category: str | None


class TransactionPage(Model):
    items: list[TransactionOut]
    next_cursor: int | None = Field(default=None, description="Pass as `cursor` for the next page.")


class SyncRunOut(Model):
    id: int
    connection_id: int | None
    trigger: str
    status: RunStatus
    added: int
    updated: int
    unchanged: int
    removed: int
    requests: int
    error: str | None
    error_code: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None


class QueuedOut(Model):
    queued: list[int] = Field(description="Connections whose sync was queued.")
    already_queued: list[int] = Field(description="Connections with a sync waiting already.")


class Health(Model):
    status: str
    details: dict[str, Any] = Field(default_factory=dict)
