"""FIApiAUTH signing and server-side verification (reference §2)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sophsync.sophtron.auth import (
    SCHEME,
    AuthorizationHeader,
    auth_path,
    decode_access_key,
    parse_authorization,
    sign,
    signature,
    verify,
)
from sophsync.sophtron.errors import InvalidAccessKey, SophtronError

# Test-vector accounts from reference §2.3 (all made up).
TV1_USER = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
TV1_KEY = "c2FuZGJveC1zZWNyZXQta2V5LTAxMjM0NTY3ODlhYmM="
TV3_USER = "developer-user"
TV3_KEY = "c2VjcmV0LWtleQ=="
TV4_USER = "8d0d9991-0000-4000-8000-000000000001"
TV4_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=="
TV5_URL = (
    "https://api.sophtron.com/api/v2/customers/0b7c7a4e-1111-4222-8333-444455556666"
    "/accounts/9a8b7c6d-aaaa-4bbb-8ccc-ddddeeeeffff/transactions"
    "?startDate=2024-01-01&endDate=2024-01-31"
)
TV5_PATH, TV5_QUERY = TV5_URL.removeprefix("https://api.sophtron.com").split("?", 1)

# (id, user, key, method, url, authPath, signature), verbatim from the reference table.
VECTORS = [
    (
        "TV1",
        TV1_USER,
        TV1_KEY,
        "POST",
        "https://api.sophtron.com/api/Institution/GetInstitutionByName",
        "/getinstitutionbyname",
        "SuNVjffz2jCy1irLDeZUMf13NCaLG5HbtgIMcSQP71I=",
    ),
    (
        "TV2",
        TV1_USER,
        TV1_KEY,
        "post",
        "https://api.sophtron.com/api/Job/GetJobInformationByID",
        "/getjobinformationbyid",
        "PF3LSe/zU5+xOKou0Ch670ckAuoy1/nOAl4YfWXHl9Y=",
    ),
    (
        "TV3",
        TV3_USER,
        TV3_KEY,
        "POST",
        "/api/UserInstitution/CreateUserInstitution",
        "/createuserinstitution",
        "l8lvmx//1jWrWhzqQBx/kJJ2IGxvK6JLeptzVPGV/f0=",
    ),
    (
        "TV4",
        TV4_USER,
        TV4_KEY,
        "GET",
        "https://api.sophtron.com/api/v2/customers",
        "/customers",
        "BloG2Ra+9mxTYjgN6gyN9WSbvxziIDrhohN/+8Y0Qco=",
    ),
    (
        "TV5",
        TV4_USER,
        TV4_KEY,
        "GET",
        TV5_URL,
        "/transactions?startdate=2024-01-01&enddate=2024-01-31",
        "HQd1tQj3nsybKyMcjhJTnFfLV4yIzns497M2h0LTXc8=",
    ),
    (
        "TV6",
        TV4_USER,
        TV4_KEY,
        "PUT",
        "https://api.sophtron.com/api/v2/job/5e1b2c3d-0000-4000-8000-00000000abcd"
        "/challenge/SecurityQuestion",
        "/securityquestion",
        "hiWJmeKlWAxgYnVB5YoVNcW83cU+/49YErww77LJNEU=",
    ),
    (
        "TV7",
        TV4_USER,
        TV4_KEY,
        "DELETE",
        "https://api.sophtron.com/api/v2/customers/0b7c7a4e-1111-4222-8333-444455556666"
        "/members/7f7f7f7f-0000-4000-8000-000000000007",
        "/7f7f7f7f-0000-4000-8000-000000000007",
        "PzwSe3rwBiYNx+w1+0ZlTs8lGJ0f4mmP6VqtYKqT9LY=",
    ),
    (
        "TV8",
        TV1_USER,
        TV1_KEY,
        "GET",
        "https://api.sophtron.com/api/Institution/HealthCheckAuth",
        "/healthcheckauth",
        "wVuzJaP1kzTZaYFJnO5a3Mc70qv+GXUu0JEp0E4xaZk=",
    ),
]

TV5_ALT_SIGNATURE = "yFa3t6A044WlMbvUsbjFEHnS6eQV3IM6MkfK020Ml0Q="
FF_ALT_PATH = "/userinstitution/getuserinstitutionsbyuser"
FF_ALT_SIGNATURE = "WENUfDSvS/P3wsN1qYcdCtkP6yzteY2C53xJOL0cD88="

NO_DB = settings(database=None, deadline=None, max_examples=200)


# --- signing: the reference test vectors ------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "key", "method", "url", "path", "sig"),
    [pytest.param(*vector[1:], id=vector[0]) for vector in VECTORS],
)
def test_sign_matches_reference_vector(
    user: str, key: str, method: str, url: str, path: str, sig: str
) -> None:
    assert sign(user, key, method, url) == f"FIApiAUTH:{user}:{sig}:{path}"


@pytest.mark.parametrize(
    ("key", "method", "url", "path", "sig"),
    [pytest.param(*vector[2:], id=vector[0]) for vector in VECTORS],
)
def test_signature_and_auth_path_match_reference_vector(
    key: str, method: str, url: str, path: str, sig: str
) -> None:
    assert auth_path(url) == path
    assert signature(key, method, path) == sig


@pytest.mark.parametrize(
    ("key", "method", "path", "sig"),
    [
        pytest.param(TV4_KEY, "GET", "/transactions", TV5_ALT_SIGNATURE, id="TV5-alt"),
        pytest.param(TV1_KEY, "POST", FF_ALT_PATH, FF_ALT_SIGNATURE, id="FF-alt"),
    ],
)
def test_signature_alternative_rule_vectors(key: str, method: str, path: str, sig: str) -> None:
    assert signature(key, method, path) == sig


def test_full_header_for_tv1() -> None:
    """The complete header value printed under the table in §2.3."""
    assert sign(
        TV1_USER, TV1_KEY, "POST", "https://api.sophtron.com/api/Institution/GetInstitutionByName"
    ) == (
        "FIApiAUTH:3f2504e0-4f89-11d3-9a0c-0305e82c3301:"
        "SuNVjffz2jCy1irLDeZUMf13NCaLG5HbtgIMcSQP71I=:/getinstitutionbyname"
    )


def test_sign_accepts_decoded_key_bytes() -> None:
    raw = base64.b64decode(TV1_KEY)
    assert raw == b"sandbox-secret-key-0123456789abc"
    url = "https://api.sophtron.com/api/Institution/GetInstitutionByName"
    assert sign(TV1_USER, raw, "POST", url) == sign(TV1_USER, TV1_KEY, "POST", url)


def test_lower_case_method_signs_like_upper_case() -> None:
    """TV2: the method is upper-cased before signing."""
    url = "https://api.sophtron.com/api/Job/GetJobInformationByID"
    assert sign(TV1_USER, TV1_KEY, "post", url) == sign(TV1_USER, TV1_KEY, "POST", url)
    assert signature(TV1_KEY, "pOsT", "/getjobinformationbyid") == (
        "PF3LSe/zU5+xOKou0Ch670ckAuoy1/nOAl4YfWXHl9Y="
    )


def test_different_methods_give_different_signatures() -> None:
    path = "/customers"
    sigs = {signature(TV4_KEY, method, path) for method in ("GET", "POST", "PUT", "DELETE")}
    assert len(sigs) == 4


# --- auth_path ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.sophtron.com/api/Institution/GetInstitutionByName", "/getinstitutionbyname"),
        ("Institution/GetInstitutionByName", "/getinstitutionbyname"),
        ("/v2/customers", "/customers"),
        ("https://api.sophtron.com/api/v2/customers", "/customers"),
        (
            "https://api.sophtron.com/api/v2/customers/c/members/7F7F7F7F-0000-4000-8000-000000000007",
            "/7f7f7f7f-0000-4000-8000-000000000007",
        ),
        (
            "https://x/api/v2/customers/c/accounts/a/transactions?startDate=2024-01-01&endDate=2024-01-31",
            "/transactions?startdate=2024-01-01&enddate=2024-01-31",
        ),
        # The last "/" may sit inside the query (UCW's old VC call): it still wins.
        (
            "https://vc/api/vc/transactions?startTime=2021/1/1&endTime=2099/12/31",
            "/31",
        ),
        ("https://api.sophtron.com/api/v2/customers/", "/"),
    ],
)
def test_auth_path_is_last_slash_to_end_lower_cased(url: str, expected: str) -> None:
    assert auth_path(url) == expected


def test_relative_and_full_url_sign_the_same() -> None:
    """§2.1: only the text after the last "/" matters, so relative and full URLs agree."""
    full = sign(
        TV3_USER,
        TV3_KEY,
        "POST",
        "https://api.sophtron.com/api/UserInstitution/CreateUserInstitution",
    )
    relative = sign(TV3_USER, TV3_KEY, "POST", "UserInstitution/CreateUserInstitution")
    assert full == relative


# --- access keys -------------------------------------------------------------------------------


def test_decode_access_key_returns_raw_bytes() -> None:
    assert decode_access_key(TV3_KEY) == b"secret-key"
    assert decode_access_key(TV4_KEY) == bytes(range(64))


def test_decode_access_key_ignores_surrounding_whitespace() -> None:
    assert decode_access_key(f"  {TV3_KEY}\n") == b"secret-key"


BAD_KEYS = [
    pytest.param("not base64!!", id="not-base64"),
    pytest.param("", id="empty"),
    pytest.param("   \t\n  ", id="whitespace"),
    pytest.param("====", id="only-padding"),
]


@pytest.mark.parametrize("bad", BAD_KEYS)
def test_decode_access_key_rejects_bad_key(bad: str) -> None:
    with pytest.raises(InvalidAccessKey) as caught:
        decode_access_key(bad)
    error = caught.value
    assert isinstance(error, ValueError)
    assert isinstance(error, SophtronError)
    message = str(error)
    assert "base64" in message
    if bad.strip():
        assert bad.strip() not in message


@pytest.mark.parametrize("bad", BAD_KEYS)
def test_sign_rejects_bad_key(bad: str) -> None:
    with pytest.raises(InvalidAccessKey, match="base64") as caught:
        sign(TV1_USER, bad, "GET", "https://api.sophtron.com/api/Institution/HealthCheckAuth")
    assert isinstance(caught.value, ValueError)
    if bad.strip():
        assert bad.strip() not in str(caught.value)


def test_bad_key_message_does_not_leak_a_long_key() -> None:
    """A mistyped but long key (a secret) must not be echoed back."""
    leaked = TV4_KEY[:-3] + "!!="
    with pytest.raises(InvalidAccessKey) as caught:
        decode_access_key(leaked)
    assert leaked not in str(caught.value)
    assert TV4_KEY[:20] not in str(caught.value)


def test_invalid_access_key_can_be_caught_as_value_error() -> None:
    with pytest.raises(ValueError, match="base64"):
        signature("not base64!!", "GET", "/customers")


# --- parse_authorization -----------------------------------------------------------------------


def test_parse_authorization_splits_a_good_header() -> None:
    header = (
        "FIApiAUTH:3f2504e0-4f89-11d3-9a0c-0305e82c3301:"
        "SuNVjffz2jCy1irLDeZUMf13NCaLG5HbtgIMcSQP71I=:/getinstitutionbyname"
    )
    assert parse_authorization(header) == AuthorizationHeader(
        user_id=TV1_USER,
        signature="SuNVjffz2jCy1irLDeZUMf13NCaLG5HbtgIMcSQP71I=",
        auth_path="/getinstitutionbyname",
    )


def test_parse_authorization_keeps_colons_in_the_auth_path() -> None:
    parsed = parse_authorization("FIApiAUTH:user:c2ln:/transactions?at=10:30")
    assert parsed is not None
    assert parsed.user_id == "user"
    assert parsed.signature == "c2ln"
    assert parsed.auth_path == "/transactions?at=10:30"


def test_parse_authorization_strips_surrounding_whitespace() -> None:
    parsed = parse_authorization("  FIApiAUTH:user:c2ln:/customers \r\n")
    assert parsed == AuthorizationHeader("user", "c2ln", "/customers")


def test_parse_authorization_of_signed_header_round_trips() -> None:
    header = sign(TV4_USER, TV4_KEY, "GET", TV5_URL)
    parsed = parse_authorization(header)
    assert parsed is not None
    assert parsed.user_id == TV4_USER
    assert parsed.signature == "HQd1tQj3nsybKyMcjhJTnFfLV4yIzns497M2h0LTXc8="
    assert parsed.auth_path == "/transactions?startdate=2024-01-01&enddate=2024-01-31"


@pytest.mark.parametrize(
    "header",
    [
        "",
        "   ",
        "Bearer abc.def.ghi",
        "Basic dXNlcjpwYXNz",
        "FIApiAUTH",
        "FIApiAUTH:user",
        "FIApiAUTH:user:c2ln",
        "FIApiAUTH::c2ln:/customers",
        "FIApiAUTH:user::/customers",
        "FIApiAUTH2:user:c2ln:/customers",
        "Authorization: FIApiAUTH:user:c2ln:/customers",
    ],
)
def test_parse_authorization_rejects_other_headers(header: str) -> None:
    assert parse_authorization(header) is None


def test_scheme_constant() -> None:
    assert SCHEME == "FIApiAUTH"


# --- verify (server side) ----------------------------------------------------------------------

TV1_REQ_PATH = "/api/Institution/GetInstitutionByName"
TV1_HEADER = (
    "FIApiAUTH:3f2504e0-4f89-11d3-9a0c-0305e82c3301:"
    "SuNVjffz2jCy1irLDeZUMf13NCaLG5HbtgIMcSQP71I=:/getinstitutionbyname"
)


@pytest.mark.parametrize("strict", [False, True])
def test_verify_accepts_official_header(strict: bool) -> None:
    assert verify(TV1_HEADER, TV1_KEY, "POST", TV1_REQ_PATH, strict=strict)


@pytest.mark.parametrize("strict", [False, True])
def test_verify_accepts_official_header_with_query(strict: bool) -> None:
    header = sign(TV4_USER, TV4_KEY, "GET", TV5_URL)
    assert verify(header, TV4_KEY, "GET", TV5_PATH, TV5_QUERY, strict=strict)


@pytest.mark.parametrize("strict", [False, True])
def test_verify_accepts_decoded_key_bytes(strict: bool) -> None:
    raw = base64.b64decode(TV1_KEY)
    assert verify(TV1_HEADER, raw, "POST", TV1_REQ_PATH, strict=strict)


@pytest.mark.parametrize("strict", [False, True])
def test_verify_lower_case_method(strict: bool) -> None:
    assert verify(TV1_HEADER, TV1_KEY, "post", TV1_REQ_PATH, strict=strict)


@pytest.mark.parametrize("strict", [False, True])
def test_verify_rejects_wrong_signature(strict: bool) -> None:
    # Signature of TV8 pasted into the TV1 header.
    forged = TV1_HEADER.replace(
        "SuNVjffz2jCy1irLDeZUMf13NCaLG5HbtgIMcSQP71I=",
        "wVuzJaP1kzTZaYFJnO5a3Mc70qv+GXUu0JEp0E4xaZk=",
    )
    assert not verify(forged, TV1_KEY, "POST", TV1_REQ_PATH, strict=strict)


@pytest.mark.parametrize("strict", [False, True])
def test_verify_rejects_one_flipped_signature_character(strict: bool) -> None:
    user, sig, path = (
        TV1_USER,
        "SuNVjffz2jCy1irLDeZUMf13NCaLG5HbtgIMcSQP71I=",
        "/getinstitutionbyname",
    )
    tampered = ("T" if sig[0] != "T" else "U") + sig[1:]
    assert not verify(
        f"FIApiAUTH:{user}:{tampered}:{path}", TV1_KEY, "POST", TV1_REQ_PATH, strict=strict
    )


@pytest.mark.parametrize("strict", [False, True])
def test_verify_rejects_wrong_key(strict: bool) -> None:
    assert not verify(TV1_HEADER, TV4_KEY, "POST", TV1_REQ_PATH, strict=strict)
    assert not verify(TV1_HEADER, TV3_KEY, "POST", TV1_REQ_PATH, strict=strict)


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_verify_rejects_wrong_method(strict: bool, method: str) -> None:
    assert not verify(TV1_HEADER, TV1_KEY, method, TV1_REQ_PATH, strict=strict)


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize(
    "header",
    [
        TV1_HEADER.replace("FIApiAUTH:", "Bearer:", 1),
        "Bearer " + TV1_HEADER,
        TV1_HEADER.replace("FIApiAUTH:", "OtherAUTH:", 1),
        "Basic dXNlcjpwYXNz",
        "",
    ],
)
def test_verify_rejects_other_scheme(strict: bool, header: str) -> None:
    assert not verify(header, TV1_KEY, "POST", TV1_REQ_PATH, strict=strict)


@pytest.mark.parametrize("strict", [False, True])
def test_verify_rejects_a_different_request_path(strict: bool) -> None:
    """A valid header for one route does not open another (the auth path is checked)."""
    assert not verify(TV1_HEADER, TV1_KEY, "POST", "/api/Job/GetJobInformationByID", strict=strict)


def test_lenient_accepts_sure_current_rule_without_query() -> None:
    """SURE-current drops the query: auth path ``/transactions`` (TV5-alt)."""
    header = f"FIApiAUTH:{TV4_USER}:{TV5_ALT_SIGNATURE}:/transactions"
    assert verify(header, TV4_KEY, "GET", TV5_PATH, TV5_QUERY)


def test_lenient_accepts_ff_first_slash_rule() -> None:
    """FF signs from the first "/" of ``api/Controller/Action`` (FF-alt)."""
    header = f"FIApiAUTH:{TV1_USER}:{FF_ALT_SIGNATURE}:{FF_ALT_PATH}"
    assert verify(header, TV1_KEY, "POST", "/api/UserInstitution/GetUserInstitutionsByUser")


def test_lenient_accepts_ff_rule_for_v2_institutions() -> None:
    """FF's ``/v2/institutions`` multi-segment auth path (§2.2)."""
    header = (
        f"FIApiAUTH:{TV1_USER}:{signature(TV1_KEY, 'GET', '/v2/institutions')}:/v2/institutions"
    )
    assert verify(header, TV1_KEY, "GET", "/api/v2/institutions")
    assert not verify(header, TV1_KEY, "GET", "/api/v2/institutions", strict=True)


def test_strict_rejects_sure_current_rule() -> None:
    header = f"FIApiAUTH:{TV4_USER}:{TV5_ALT_SIGNATURE}:/transactions"
    assert not verify(header, TV4_KEY, "GET", TV5_PATH, TV5_QUERY, strict=True)


def test_strict_rejects_ff_rule() -> None:
    header = f"FIApiAUTH:{TV1_USER}:{FF_ALT_SIGNATURE}:{FF_ALT_PATH}"
    assert not verify(
        header, TV1_KEY, "POST", "/api/UserInstitution/GetUserInstitutionsByUser", strict=True
    )


@pytest.mark.parametrize("strict", [False, True])
def test_strict_and_lenient_accept_official_rule_for_ff_route(strict: bool) -> None:
    header = sign(TV1_USER, TV1_KEY, "POST", "api/UserInstitution/GetUserInstitutionsByUser")
    assert header.endswith(":/getuserinstitutionsbyuser")
    assert verify(
        header, TV1_KEY, "POST", "/api/UserInstitution/GetUserInstitutionsByUser", strict=strict
    )


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize(
    "claimed",
    ["/getjobinformationbyid", "/institution", "/customers", "getinstitutionbyname", "/byname/x"],
)
def test_auth_path_not_a_suffix_is_rejected_even_with_valid_hmac(
    strict: bool, claimed: str
) -> None:
    header = f"FIApiAUTH:{TV1_USER}:{signature(TV1_KEY, 'POST', claimed)}:{claimed}"
    assert not verify(header, TV1_KEY, "POST", TV1_REQ_PATH, strict=strict)


def test_lenient_rejects_query_only_suffix_that_is_not_in_request() -> None:
    claimed = "/transactions?startdate=2020-01-01&enddate=2020-01-31"
    header = f"FIApiAUTH:{TV4_USER}:{signature(TV4_KEY, 'GET', claimed)}:{claimed}"
    assert not verify(header, TV4_KEY, "GET", TV5_PATH, TV5_QUERY)
    assert not verify(header, TV4_KEY, "GET", TV5_PATH, TV5_QUERY, strict=True)


def test_lenient_accepts_old_ucw_vc_rule_with_slash_dates() -> None:
    """UCW's older VC call signed a query holding "/" dates: auth path ``/31``."""
    url = "https://vc.sophtron.com/api/vc/transactions?startTime=2021/1/1&endTime=2099/12/31"
    header = sign(TV1_USER, TV1_KEY, "GET", url)
    assert header.endswith(":/31")
    path, query = "/api/vc/transactions", "startTime=2021/1/1&endTime=2099/12/31"
    assert verify(header, TV1_KEY, "GET", path, query)
    assert verify(header, TV1_KEY, "GET", path, query, strict=True)


MEMBERS = "/api/v2/customers/0b7c7a4e-1111-4222-8333-444455556666/members"


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize(
    "signed_url",
    [
        f"https://api.sophtron.com{MEMBERS}/aggregate%7Chistory",
        f"https://api.sophtron.com{MEMBERS}/aggregate|history",
    ],
    ids=["signed-encoded", "signed-pipe"],
)
def test_percent_encoded_pipe_and_pipe_both_verify(strict: bool, signed_url: str) -> None:
    """jobTypes joined with "|" travel as ``%7C``; a header over either spelling verifies."""
    header = sign(TV4_USER, TV4_KEY, "POST", signed_url)
    assert verify(header, TV4_KEY, "POST", f"{MEMBERS}/aggregate%7Chistory", strict=strict)


@pytest.mark.parametrize("strict", [False, True])
def test_literal_pipe_on_the_wire_verifies(strict: bool) -> None:
    header = sign(TV4_USER, TV4_KEY, "POST", f"{MEMBERS}/aggregate|history")
    assert verify(header, TV4_KEY, "POST", f"{MEMBERS}/aggregate|history", strict=strict)


@pytest.mark.parametrize("strict", [False, True])
def test_verify_is_case_insensitive_on_the_request_path(strict: bool) -> None:
    assert verify(TV1_HEADER, TV1_KEY, "POST", TV1_REQ_PATH.lower(), strict=strict)
    assert verify(TV1_HEADER, TV1_KEY, "POST", TV1_REQ_PATH.upper(), strict=strict)


# --- property: whatever is signed verifies ----------------------------------------------------

_SEGMENT_CHARS = st.characters(
    codec="ascii", categories=("L", "N"), include_characters="-._~%|:@!$&'()*+,;="
)
_QUERY_CHARS = st.characters(
    codec="ascii", categories=("L", "N"), include_characters="-._~%=&/:@!$'()*+,;?"
)
_user_ids = st.one_of(
    st.uuids().map(str),
    st.text(
        st.characters(codec="ascii", categories=("L", "N"), include_characters="-_."), min_size=1
    ),
)
_keys = st.binary(min_size=1, max_size=96).map(lambda raw: base64.b64encode(raw).decode("ascii"))
_methods = st.sampled_from(
    ["GET", "POST", "PUT", "DELETE", "PATCH", "get", "post", "Put", "delete"]
)
_paths = st.lists(st.text(_SEGMENT_CHARS, max_size=20), min_size=1, max_size=6).map(
    lambda segments: "/" + "/".join(segments)
)
_queries = st.one_of(st.just(""), st.text(_QUERY_CHARS, min_size=1, max_size=40))


@NO_DB
@given(user=_user_ids, key=_keys, method=_methods, path=_paths, query=_queries)
def test_signed_request_always_verifies(
    user: str, key: str, method: str, path: str, query: str
) -> None:
    url = f"{path}?{query}" if query else path
    header = sign(user, key, method, url)
    assert header.startswith(f"FIApiAUTH:{user}:")
    assert verify(header, key, method, path, query)
    assert verify(header, key, method, path, query, strict=True)
    assert verify(header, base64.b64decode(key), method.upper(), path, query, strict=True)


@NO_DB
@given(key=_keys, other=_keys, method=_methods, path=_paths)
def test_signed_request_fails_with_another_key(
    key: str, other: str, method: str, path: str
) -> None:
    assume(base64.b64decode(key) != base64.b64decode(other))
    header = sign("user", key, method, path)
    assert not verify(header, other, method, path)
    assert not verify(header, other, method, path, strict=True)
