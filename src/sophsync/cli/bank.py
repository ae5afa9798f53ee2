"""Bank commands: ``credentials``, ``institutions``, ``connect`` and ``connections``.

``connect`` and ``connections reconnect`` walk the bank's MFA steps in the terminal, or answer them
from an answers file (JSON) for scripts; see :class:`Answers` for its format. Nothing secret is
ever printed: not the Access Key, not the bank password, not the answers.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console

from ..core import connect as connect_core
from ..core import credentials as credentials_core
from ..core import link
from ..core.app import Core
from ..core.families import Actor
from ..errors import BadInput, NeedsUser, NotFound, Retryable, SophsyncError
from ..sophtron import (
    CaptchaPrompt,
    Institution,
    PhoneConfirmationPrompt,
    Prompt,
    SecurityQuestionsPrompt,
    TokenInputPrompt,
    TokenMethodPrompt,
)
from ..store.models import ConnectionStatus
from .context import acting, emit, json_option, print_table, settings_of

#: An InstitutionID as Sophtron writes it (a GUID).
INSTITUTION_ID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
#: Seconds between two reads of a job while the bank works.
POLL_INTERVAL = 0.5
#: Most institutions listed in an "ambiguous name" error.
LISTED = 10

Answer = str | list[str] | bool


class Failed(SophsyncError):
    """The bank refused or the connection failed (exit code 1)."""

    exit_code = 1


def interactive() -> bool:
    """True when a person can answer prompts (stdin is a terminal)."""
    return sys.stdin.isatty()


def read_secret_line(what: str) -> str:
    """One line from stdin (a secret handed over by a script), without its line ending."""
    line = sys.stdin.readline()
    if not line:
        raise BadInput(f"Expected the {what} on stdin, found nothing", field=what)
    return line.rstrip("\r\n")


@contextmanager
def quiet_sophtron() -> Iterator[None]:
    """Hide the SDK's warning about a refused request: the command's error says it in one line."""
    logger = logging.getLogger("sophsync.sophtron")
    if logger.getEffectiveLevel() != logging.WARNING:  # -v asked to see it
        yield
        return
    before = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)


# --- credentials -------------------------------------------------------------------------------


@click.group("credentials")
def credentials_group() -> None:
    """Manage the household's Sophtron User ID and Access Key (the key is never printed)."""


def _show_status(status: credentials_core.CredentialsStatus) -> None:
    verified = status.verified_at.isoformat(timespec="seconds") if status.verified_at else "never"
    click.echo(f"User ID:     {status.user_id}")
    click.echo(f"Base URL:    {status.base_url}")
    click.echo(f"Customer ID: {status.customer_id or '-'}")
    click.echo(f"Verified at: {verified}")


@credentials_group.command("set")
@click.option("--user-id", metavar="ID", help="Sophtron User ID [env SOPHTRON_USER_ID].")
@click.option(
    "--access-key-stdin",
    is_flag=True,
    help="Read the Access Key from the first line of stdin [else env SOPHTRON_ACCESS_KEY, "
    "else a hidden prompt].",
)
@click.option("--base-url", metavar="URL", help="Sophtron API base URL [env SOPHTRON_BASE_URL].")
@json_option
@click.pass_context
def credentials_set(
    ctx: click.Context,
    user_id: str | None,
    access_key_stdin: bool,
    base_url: str | None,
    as_json: bool,
) -> None:
    """Verify the Sophtron credentials with Sophtron and save them (the key encrypted).

    Missing values come from SOPHTRON_USER_ID / SOPHTRON_ACCESS_KEY / SOPHTRON_BASE_URL, then from
    the saved credentials; anything still missing is asked for when stdin is a terminal.
    """
    settings = settings_of(ctx)
    access_key = read_secret_line("access_key") if access_key_stdin else None
    with acting(ctx) as (core, actor):
        saved = credentials_core.credentials_status(core, actor)
        if interactive():
            if not user_id and not settings.sophtron_user_id and saved is None:
                user_id = click.prompt("Sophtron User ID").strip()
            if not access_key and not settings.sophtron_access_key and saved is None:
                access_key = click.prompt("Sophtron Access Key", hide_input=True).strip()
        with quiet_sophtron():
            status = credentials_core.save_credentials(core, actor, user_id, access_key, base_url)

    def show() -> None:
        click.echo("Sophtron accepted the credentials; they are saved.")
        _show_status(status)

    emit(as_json, status, show)


@credentials_group.command("show")
@json_option
@click.pass_context
def credentials_show(ctx: click.Context, as_json: bool) -> None:
    """Show the saved User ID, base URL, customer id and when they were verified (never the key)."""
    with acting(ctx) as (core, actor):
        status = credentials_core.credentials_status(core, actor)
    if status is None:
        raise NotFound(credentials_core.MISSING, code="no_credentials")
    emit(as_json, status, lambda: _show_status(status))


@credentials_group.command("verify")
@json_option
@click.pass_context
def credentials_verify(ctx: click.Context, as_json: bool) -> None:
    """Check the saved credentials with Sophtron again."""
    with acting(ctx) as (core, actor):
        if credentials_core.credentials_status(core, actor) is None:
            raise NotFound(credentials_core.MISSING, code="no_credentials")
        with quiet_sophtron():
            status = credentials_core.save_credentials(core, actor)

    def show() -> None:
        click.echo("Sophtron accepts the saved credentials.")
        _show_status(status)

    emit(as_json, status, show)


@credentials_group.command("remove")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def credentials_remove(ctx: click.Context, yes: bool) -> None:
    """Forget the saved Sophtron credentials (syncing stops until new ones are set)."""
    with acting(ctx) as (core, actor):
        if credentials_core.credentials_status(core, actor) is None:
            raise NotFound(credentials_core.MISSING, code="no_credentials")
        if not yes:
            _confirm("Remove the saved Sophtron credentials?")
        credentials_core.remove_credentials(core, actor)
    click.echo("The Sophtron credentials are removed.")


def _confirm(question: str) -> None:
    if not interactive():
        raise BadInput("Confirmation needed: add --yes to do this without a terminal", field="yes")
    click.confirm(question, abort=True)


# --- institutions ------------------------------------------------------------------------------


@click.group()
def institutions() -> None:
    """Find the banks Sophtron can connect."""


def _institution_row(item: Institution) -> dict[str, Any]:
    return {"id": item.institution_id, "name": item.institution_name, "url": item.url}


@institutions.command("search")
@click.argument("name")
@json_option
@click.pass_context
def institutions_search(ctx: click.Context, name: str, as_json: bool) -> None:
    """List the institutions whose name matches NAME (at least two characters)."""
    with acting(ctx) as (core, actor):
        found = connect_core.search_institutions(core, actor, name)
    rows = [_institution_row(item) for item in found]
    emit(
        as_json,
        rows,
        lambda: print_table(
            None,
            ["Name", "ID", "URL"],
            [[r["name"], r["id"], r["url"]] for r in rows],
            empty=f"No institution matches {name!r}.",
        ),
    )


def resolve_institution(core: Core, actor: Actor, wanted: str) -> tuple[str, str | None]:
    """An InstitutionID and its name (None when given an id) from a name or an id."""
    wanted = wanted.strip()
    if INSTITUTION_ID.fullmatch(wanted):
        return wanted, None
    found = connect_core.search_institutions(core, actor, wanted)
    exact = [i for i in found if (i.institution_name or "").casefold() == wanted.casefold()]
    if len(exact) == 1:
        found = exact
    if not found:
        raise BadInput(
            f"No institution matches {wanted!r}: try `sophsync institutions search`",
            field="institution",
        )
    if len(found) == 1:
        return found[0].institution_id, found[0].institution_name
    if not interactive():
        names = "; ".join(f"{i.institution_name} ({i.institution_id})" for i in found[:LISTED]) + (
            "; ..." if len(found) > LISTED else ""
        )
        raise BadInput(
            f"{len(found)} institutions match {wanted!r}, give the exact name or id: {names}",
            field="institution",
        )
    click.echo(f"{len(found)} institutions match {wanted!r}:")
    shown = found[:50]
    for number, item in enumerate(shown, 1):
        click.echo(f"  {number}. {item.institution_name}  {item.url or ''}".rstrip())
    choice = click.prompt("Which one", type=click.IntRange(1, len(shown)))
    chosen = shown[choice - 1]
    return chosen.institution_id, chosen.institution_name


# --- answers and MFA ---------------------------------------------------------------------------

ANSWER_KINDS = {
    "username",
    "security_questions",
    "token_method",
    "token_input",
    "captcha",
    "phone_confirmation",
}


class Answers:
    """Answers to the bank's prompts, read from a JSON file for scripts.

    The file is one object; every key is optional::

        {
          "security_questions": {"What is your favorite color?": "blue", "*": "fallback"},
          "token_method": "Email",          (an option's text, or its index: 0, 1, ...)
          "token_input": "123456",
          "captcha": "K7QX2",
          "phone_confirmation": true
        }

    ``security_questions`` may also be a list (answers in order) or one text for every
    question. A prompt the file does not answer is asked in the terminal, or, without one, the
    command stops with exit code 3.
    """

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    @classmethod
    def load(cls, path: Path | None) -> Answers:
        if path is None:
            return cls({})
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise BadInput(f"Cannot read the answers file {path}: {error.strerror}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise BadInput(f"The answers file {path} is not valid JSON: {error}") from None
        if not isinstance(values, dict):
            raise BadInput(f"The answers file {path} must hold a JSON object")
        unknown = sorted(set(values) - ANSWER_KINDS)
        if unknown:
            raise BadInput(
                f"The answers file {path} has unknown key(s) {', '.join(unknown)}; known keys: "
                + ", ".join(sorted(ANSWER_KINDS))
            )
        questions = values.get("security_questions")
        if questions is not None and not (
            isinstance(questions, str)
            or (isinstance(questions, list) and all(isinstance(q, str) for q in questions))
            or (isinstance(questions, dict) and all(isinstance(q, str) for q in questions.values()))
        ):
            raise BadInput(
                f"In {path}, security_questions must be a text, a list of texts or an object "
                "mapping question to answer"
            )
        for key in ("token_input", "captcha", "username"):
            if key in values and not isinstance(values[key], str):
                raise BadInput(f"In {path}, {key} must be a text")
        method = values.get("token_method")
        if method is not None and (isinstance(method, bool) or not isinstance(method, str | int)):
            raise BadInput(f"In {path}, token_method must be an option's text or its index")
        if "phone_confirmation" in values and values["phone_confirmation"] is not True:
            raise BadInput(f"In {path}, phone_confirmation must be true")
        return cls(values)

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def security_answer(self, question: str) -> str | None:
        given = self.values.get("security_questions")
        if isinstance(given, dict):
            for key in (question, html.unescape(question), "*"):
                if isinstance(given.get(key), str):
                    return str(given[key])
        return None


def _needs_you(connection_id: int, what: str) -> NoReturn:
    raise NeedsUser(
        f"The bank asks for {what}, and there is no terminal to ask in and no answer in "
        f"--answers. Answer it with `sophsync connections reconnect {connection_id}`.",
        code="needs_input",
    )


def answer_security_questions(
    prompt: SecurityQuestionsPrompt, answers: Answers, connection_id: int
) -> list[str]:
    given = answers.get("security_questions")
    if isinstance(given, list):
        if len(given) < len(prompt.questions):
            raise BadInput(
                f"The bank asks {len(prompt.questions)} security question(s); the answers file "
                f"gives {len(given)} answer(s)"
            )
        return [str(a) for a in given[: len(prompt.questions)]]
    result = []
    for question in prompt.questions:
        answer = given if isinstance(given, str) else answers.security_answer(question)
        if answer is None:
            if not interactive():
                _needs_you(connection_id, f"the answer to {html.unescape(question)!r}")
            answer = click.prompt(f"Security question: {html.unescape(question)}", hide_input=True)
        result.append(answer)
    return result


def answer_token_method(prompt: TokenMethodPrompt, answers: Answers, connection_id: int) -> str:
    given = answers.get("token_method")
    if given is None:
        if not interactive():
            _needs_you(connection_id, "where to send a code")
        click.echo("Where should the bank send a code?")
        for number, label in enumerate(prompt.labels, 1):
            click.echo(f"  {number}. {label}")
        choice = click.prompt("Choose", type=click.IntRange(1, len(prompt.labels)))
        return str(choice - 1)
    if isinstance(given, int) or (isinstance(given, str) and given.strip().isdigit()):
        index = int(given)
        if not 0 <= index < len(prompt.options):
            raise BadInput(
                f"token_method {index} is out of range: the bank offers {len(prompt.options)} "
                f"options (0 to {len(prompt.options) - 1})"
            )
        return str(index)
    wanted = str(given).strip().casefold()
    for index, (option, label) in enumerate(zip(prompt.options, prompt.labels, strict=True)):
        if wanted in {option.strip().casefold(), label.casefold()}:
            return str(index)
    matches = [i for i, label in enumerate(prompt.labels) if wanted in label.casefold()]
    if len(matches) == 1:
        return str(matches[0])
    raise BadInput(
        f"token_method {given!r} matches none of the bank's options: " + "; ".join(prompt.labels)
    )


def answer_token_input(prompt: TokenInputPrompt, answers: Answers, connection_id: int) -> str:
    given = answers.get("token_input")
    if isinstance(given, str):
        return given
    if not interactive():
        _needs_you(connection_id, f"the {prompt.label or 'code'} it sent")
    return str(click.prompt(f"Enter the {prompt.label or 'code'} the bank sent")).strip()


def answer_phone(prompt: PhoneConfirmationPrompt, answers: Answers, connection_id: int) -> bool:
    given = answers.get("phone_confirmation") is True
    if not given and not interactive():
        _needs_you(connection_id, f"a phone confirmation (code {prompt.code})")
    click.echo(
        f"The bank calls or shows a prompt on your phone: enter the code {prompt.code}.", err=True
    )
    if given:
        return True
    reply = click.prompt(
        "Press Enter (or type y) once it is confirmed", default="y", show_default=False
    )
    if reply.strip().lower() not in {"", "y", "yes"}:
        raise click.Abort()
    return True


def show_inline(png: bytes) -> None:
    """Show an image in the terminal, with the kitty or iTerm2 protocol, when it is one of those."""
    if not sys.stdout.isatty():
        return
    data = base64.b64encode(png).decode("ascii")
    if os.environ.get("TERM") == "xterm-kitty":
        chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)] or [""]
        for number, chunk in enumerate(chunks):
            first = "a=T,f=100," if number == 0 else ""
            more = 1 if number < len(chunks) - 1 else 0
            sys.stdout.write(f"\x1b_G{first}m={more};{chunk}\x1b\\")
        sys.stdout.write("\n")
    elif os.environ.get("TERM_PROGRAM") == "iTerm.app":
        sys.stdout.write(f"\x1b]1337;File=inline=1;size={len(png)}:{data}\x07\n")
    sys.stdout.flush()


def answer_captcha(
    prompt: CaptchaPrompt, answers: Answers, connection_id: int, captcha_dir: Path
) -> str:
    png = prompt.image_png
    captcha_dir.mkdir(parents=True, exist_ok=True)
    path = (captcha_dir / f"sophsync-captcha-{connection_id}.png").resolve()
    path.write_bytes(png)
    given = answers.get("captcha")
    if not isinstance(given, str) and not interactive():
        _needs_you(connection_id, f"the text of the captcha in {path}")
    click.echo(f"The bank shows a captcha: {path}", err=True)
    if isinstance(given, str):
        return given
    show_inline(png)
    return str(click.prompt("Type the text of the captcha")).strip()


def answer_for(prompt: Prompt, answers: Answers, connection_id: int, captcha_dir: Path) -> Answer:
    """The answer to one prompt: from the answers file, else asked in the terminal."""
    if isinstance(prompt, SecurityQuestionsPrompt):
        return answer_security_questions(prompt, answers, connection_id)
    if isinstance(prompt, TokenMethodPrompt):
        return answer_token_method(prompt, answers, connection_id)
    if isinstance(prompt, TokenInputPrompt):
        return answer_token_input(prompt, answers, connection_id)
    if isinstance(prompt, PhoneConfirmationPrompt):
        return answer_phone(prompt, answers, connection_id)
    return answer_captcha(prompt, answers, connection_id, captcha_dir)


def wait(core: Core, connection_id: int, console: Console) -> connect_core.ConnectionView:
    with console.status("The bank is working..."):
        return connect_core.wait_for_connection(
            core,
            connection_id,
            interval=POLL_INTERVAL,
            timeout=core.settings.connect_timeout_seconds + 5,
        )


def walk(
    core: Core,
    actor: Actor,
    view: connect_core.ConnectionView,
    answers: Answers,
    captcha_dir: Path,
    console: Console,
) -> connect_core.ConnectionView:
    """Answer prompts until the connection settles without one; then raise unless connected."""
    while True:
        if view.prompt is None:
            view = wait(core, view.id, console)
        if view.prompt is not None:
            answer = answer_for(view.prompt, answers, view.id, captcha_dir)
            view = connect_core.answer_challenge(core, actor, view.id, answer)
            continue
        if view.status is not ConnectionStatus.CONNECTING:
            break
    if view.status is ConnectionStatus.CONNECTED:
        return view
    if view.status is ConnectionStatus.TIMED_OUT:
        raise Retryable(
            f"{view.message} (`sophsync connections check {view.id}`)", code="timed_out"
        )
    hint = (
        f" Send the new login with `sophsync connections reconnect {view.id} --username U`."
        if view.needs_login
        else f" Try again with `sophsync connections reconnect {view.id}`."
    )
    raise Failed(f"{view.institution_name}: {view.message}{hint}", code=view.error_code)


def connection_json(view: connect_core.ConnectionView) -> dict[str, Any]:
    return {
        "id": view.id,
        "institution": view.institution_name,
        "status": view.status.value,
        "message": view.message,
        "error_code": view.error_code,
        "prompt": None if view.prompt is None else view.prompt.kind,
        "last_success_at": view.last_success_at,
    }


def print_accounts(accounts: Sequence[link.ProviderAccountView]) -> None:
    print_table(
        "Accounts at the bank",
        ["ID", "Name", "Mask", "Type", "Currency", "Linked to"],
        [
            [a.id, a.name, a.mask, a.kind.value, a.currency, a.linked_account_id or "-"]
            for a in accounts
        ],
        empty="No accounts.",
    )


def finish(
    core: Core,
    actor: Actor,
    view: connect_core.ConnectionView,
    as_json: bool,
    extra: Callable[[], None] | None = None,
) -> None:
    accounts = link.provider_accounts(core, actor, view.id)

    def show() -> None:
        click.echo(f"{view.institution_name}: connected (connection {view.id}).")
        print_accounts(accounts)
        if extra is not None:
            extra()

    emit(as_json, {"connection": connection_json(view), "accounts": accounts}, show)


def _link_hint() -> None:
    click.echo("Link them to local accounts with `sophsync accounts link --all`.")


def login_values(
    username: str | None, password_stdin: bool, pin_stdin: bool, answers: Answers
) -> tuple[str, str, str]:
    """Username, password and PIN: from options and stdin, else asked in the terminal."""
    password = read_secret_line("password") if password_stdin else None
    pin = read_secret_line("pin") if pin_stdin else ""
    username = username or answers.get("username")
    if not username:
        if not interactive():
            raise BadInput("Give the bank username with --username", field="username")
        username = click.prompt("Bank username")
    if password is None:
        if not interactive():
            raise BadInput(
                "Give the bank password on stdin with --password-stdin", field="password"
            )
        password = click.prompt("Bank password", hide_input=True)
    return str(username).strip(), password, pin


answers_option = click.option(
    "--answers",
    "answers_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON file answering the bank's prompts without a terminal (see docs/cli.md).",
)
captcha_dir_option = click.option(
    "--captcha-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default="the current folder",
    help="Where a captcha image is written.",
)
username_option = click.option("--username", metavar="U", help="The bank username.")
password_option = click.option(
    "--password-stdin", is_flag=True, help="Read the bank password from the first line of stdin."
)
pin_option = click.option(
    "--pin-stdin",
    is_flag=True,
    help="Also send a PIN, read from stdin (the line after the password, if both).",
)


@click.command("connect")
@click.argument("institution", required=False)
@username_option
@password_option
@pin_option
@answers_option
@captcha_dir_option
@json_option
@click.pass_context
def connect_command(
    ctx: click.Context,
    institution: str | None,
    username: str | None,
    password_stdin: bool,
    pin_stdin: bool,
    answers_file: Path | None,
    captcha_dir: Path,
    as_json: bool,
) -> None:
    """Connect a bank login: INSTITUTION is a name or an InstitutionID.

    Asks for anything missing, then walks every verification step the bank asks for
    (questions, where to send a code, the code, phone confirmation, captcha). Exit code 0 when
    connected, 3 when a person must answer, 2 for bad input, 1 when the bank refused.
    """
    answers = Answers.load(answers_file)
    console = Console(stderr=as_json)
    with acting(ctx) as (core, actor):
        if not institution:
            if not interactive():
                raise BadInput("Name the institution to connect", field="institution")
            institution = str(click.prompt("Bank name"))
        institution_id, name = resolve_institution(core, actor, institution)
        user, password, pin = login_values(username, password_stdin, pin_stdin, answers)
        with console.status("Sending the login to the bank..."):
            view = connect_core.start_connection(
                core, actor, institution_id, user, password, pin, institution_name=name
            )
        view = walk(core, actor, view, answers, captcha_dir, console)
        finish(core, actor, view, as_json, _link_hint)


# --- connections -------------------------------------------------------------------------------


@click.group()
def connections() -> None:
    """List, check, reconnect and remove bank logins."""


def _when(value: Any) -> str:
    return value.isoformat(sep=" ", timespec="minutes") if value is not None else "never"


@connections.command("list")
@json_option
@click.pass_context
def connections_list(ctx: click.Context, as_json: bool) -> None:
    """List the bank logins with their status, last sync and message."""
    with acting(ctx) as (core, actor):
        views = connect_core.list_connections(core, actor)
    emit(
        as_json,
        [connection_json(v) for v in views],
        lambda: print_table(
            None,
            ["ID", "Bank", "Status", "Last sync", "Message"],
            [
                [v.id, v.institution_name, v.status.value, _when(v.last_success_at), v.message]
                for v in views
            ],
            empty="No bank is connected yet: run `sophsync connect`.",
        ),
    )


@connections.command("show")
@click.argument("connection_id", metavar="ID", type=int)
@json_option
@click.pass_context
def connections_show(ctx: click.Context, connection_id: int, as_json: bool) -> None:
    """Show one bank login with its accounts at the bank and the local accounts they feed."""
    with acting(ctx) as (core, actor):
        view = connect_core.get_connection(core, actor, connection_id)
        accounts = link.provider_accounts(core, actor, connection_id)

    def show() -> None:
        click.echo(f"Connection {view.id}: {view.institution_name}")
        click.echo(f"Status:    {view.status.value}")
        click.echo(f"Message:   {view.message}")
        click.echo(f"Last sync: {_when(view.last_success_at)}")
        if view.prompt is not None:
            click.echo(
                f"Waiting for: {view.prompt.kind} (`sophsync connections reconnect {view.id}`)"
            )
        print_accounts(accounts)

    emit(as_json, {"connection": connection_json(view), "accounts": accounts}, show)


def exit_for(view: connect_core.ConnectionView) -> int:
    if view.status is ConnectionStatus.CONNECTED:
        return 0
    if view.waiting_for_person or view.status is ConnectionStatus.REQUIRES_UPDATE:
        return 3
    if view.status in {ConnectionStatus.TIMED_OUT, ConnectionStatus.CONNECTING}:
        return 4
    return 1


@connections.command("check")
@click.argument("connection_id", metavar="ID", type=int)
@json_option
@click.pass_context
def connections_check(ctx: click.Context, connection_id: int, as_json: bool) -> None:
    """Read the bank login's job once (again, if it had timed out) and print its status.

    Exit code 0 connected, 3 waiting for a person, 4 still working or timed out, 1 failed.
    """
    with acting(ctx) as (core, actor):
        view = connect_core.get_connection(core, actor, connection_id)
        if view.status is ConnectionStatus.TIMED_OUT:
            view = connect_core.check_again(core, actor, connection_id)
        else:
            view = connect_core.poll_connection(core, connection_id)
    emit(
        as_json,
        connection_json(view),
        lambda: click.echo(f"{view.institution_name}: {view.status.value}. {view.message}"),
    )
    sys.exit(exit_for(view))


@connections.command("reconnect")
@click.argument("connection_id", metavar="ID", type=int)
@username_option
@password_option
@pin_option
@click.option("--retry", is_flag=True, help="Start the login over at the bank.")
@answers_option
@captcha_dir_option
@json_option
@click.pass_context
def connections_reconnect(
    ctx: click.Context,
    connection_id: int,
    username: str | None,
    password_stdin: bool,
    pin_stdin: bool,
    retry: bool,
    answers_file: Path | None,
    captcha_dir: Path,
    as_json: bool,
) -> None:
    """Bring a bank login back: answer what the bank asks, send a new login, or start over.

    A login waiting for an answer (needs_input / requires_update) gets it, from the terminal or
    --answers. A login the bank refused needs --username (and the password). A failed or timed
    out login starts over (as with --retry). Then every verification step is walked as in
    `sophsync connect`.
    """
    answers = Answers.load(answers_file)
    console = Console(stderr=as_json)
    with acting(ctx) as (core, actor):
        view = connect_core.get_connection(core, actor, connection_id)
        if username or password_stdin:
            user, password, pin = login_values(username, password_stdin, pin_stdin, answers)
            view = connect_core.update_login(core, actor, connection_id, user, password, pin)
        elif retry:
            view = connect_core.retry_connection(core, actor, connection_id)
        elif view.prompt is not None:
            pass
        elif view.needs_login:
            if not interactive():
                raise BadInput(
                    "The bank refused the login: send the new one with --username U "
                    "--password-stdin",
                    field="username",
                )
            user, password, pin = login_values(None, False, pin_stdin, answers)
            view = connect_core.update_login(core, actor, connection_id, user, password, pin)
        elif view.status in {ConnectionStatus.FAILED, ConnectionStatus.TIMED_OUT}:
            view = connect_core.retry_connection(core, actor, connection_id)
        elif view.status is ConnectionStatus.CONNECTED:
            emit(
                as_json,
                connection_json(view),
                lambda: click.echo(f"{view.institution_name} is connected: nothing to do."),
            )
            return
        view = walk(core, actor, view, answers, captcha_dir, console)
        finish(core, actor, view, as_json)


@connections.command("remove")
@click.argument("connection_id", metavar="ID", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def connections_remove(ctx: click.Context, connection_id: int, yes: bool) -> None:
    """Remove a bank login here and at Sophtron; linked accounts keep their history."""
    with acting(ctx) as (core, actor):
        view = connect_core.get_connection(core, actor, connection_id)
        if not yes:
            _confirm(f"Remove the connection to {view.institution_name} ({view.id})?")
        connect_core.remove_connection(core, actor, connection_id)
    click.echo(f"Connection {connection_id} ({view.institution_name}) is removed.")


COMMANDS: tuple[click.Command, ...] = (
    credentials_group,
    institutions,
    connect_command,
    connections,
)
