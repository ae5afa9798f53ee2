"""The sandbox's institutions: Sophtron's seven test banks and a generated catalogue.

The test banks carry the names and InstitutionIDs of Sophtron's documentation. The catalogue adds
well over a thousand plausible US and Canadian institutions (banks, credit unions, card issuers,
brokers, loan servicers, utilities), the same for the same seed, each with a login form, routing
numbers where it has them, and an MFA style drawn from the test banks' scripts.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum


class InstitutionKind(StrEnum):
    TEST = "test"
    BANK = "bank"
    CREDIT_UNION = "credit_union"
    CARD_ISSUER = "card_issuer"
    BROKER = "broker"
    LOAN_SERVICER = "loan_servicer"
    UTILITY = "utility"


class Mfa(StrEnum):
    """The MFA script a login at an institution runs (see ``jobs``)."""

    NONE = "none"
    SECURITY_QUESTION = "security_question"
    SECURITY_QUESTIONS = "security_questions"
    TOKEN = "token"
    TOKEN_READ = "token_read"
    CAPTCHA = "captcha"
    ALL = "all"


@dataclass(frozen=True)
class InstitutionRecord:
    institution_id: str
    name: str
    kind: InstitutionKind
    url: str
    mfa: Mfa
    country_code: str = "US"
    routing_numbers: tuple[str, ...] = ()
    login_form_user_name: str = "User ID"
    login_form_password: str = "Password"

    @property
    def logo(self) -> str:
        return f"{self.url.rstrip('/')}/logo.png"

    @property
    def currency_symbol(self) -> str:
        return "CA$" if self.country_code == "CA" else "$"


_TEST_URL = "https://sophtron.com"

TEST_BANKS: tuple[InstitutionRecord, ...] = (
    InstitutionRecord(
        "8d0d9991-5e35-4b82-afa4-e93695e5ca7d",
        "Sophtron Bank",
        InstitutionKind.TEST,
        _TEST_URL,
        Mfa.ALL,
    ),
    InstitutionRecord(
        "926623ca-5952-4921-8f77-2023f1cdde8e",
        "Sophtron Bank NoMFA",
        InstitutionKind.TEST,
        _TEST_URL,
        Mfa.NONE,
    ),
    InstitutionRecord(
        "8ad00f00-72b7-4642-a0de-b3f31e08510a",
        "Sophtron Bank Captcha",
        InstitutionKind.TEST,
        _TEST_URL,
        Mfa.CAPTCHA,
    ),
    InstitutionRecord(
        "8809dee7-9e23-4039-a723-02bc01fce0f2",
        "Sophtron Bank SecurityQuestion",
        InstitutionKind.TEST,
        _TEST_URL,
        Mfa.SECURITY_QUESTION,
    ),
    InstitutionRecord(
        "8f32ccc1-acaf-4e6b-93b8-1f2cd398647d",
        "Sophtron Bank SecurityQuestion Multiple",
        InstitutionKind.TEST,
        _TEST_URL,
        Mfa.SECURITY_QUESTIONS,
    ),
    InstitutionRecord(
        "337fe0c2-476e-46f5-a360-bf33f9fe1937",
        "Sophtron Bank Token",
        InstitutionKind.TEST,
        _TEST_URL,
        Mfa.TOKEN,
    ),
    InstitutionRecord(
        "0fe7236b-079a-4fe6-aed9-cf194790a553",
        "Sophtron Bank TokenRead",
        InstitutionKind.TEST,
        _TEST_URL,
        Mfa.TOKEN_READ,
    ),
)

_PLACES = (
    "Adams",
    "Alder",
    "Allegheny",
    "Anchor",
    "Appalachian",
    "Arbor",
    "Atlantic",
    "Aurora",
    "Bay",
    "Bayou",
    "Beacon",
    "Bear Creek",
    "Belmont",
    "Birch",
    "Blue Ridge",
    "Bluegrass",
    "Boulder",
    "Bridgewater",
    "Brookline",
    "Buckeye",
    "Cardinal",
    "Carolina",
    "Cascade",
    "Cedar",
    "Centennial",
    "Central",
    "Chesapeake",
    "Cimarron",
    "Clearwater",
    "Coastal",
    "Columbia",
    "Commonwealth",
    "Copper",
    "Cornerstone",
    "Crescent",
    "Cumberland",
    "Delta",
    "Desert",
    "Eagle",
    "Eastern",
    "Elm",
    "Empire",
    "Evergreen",
    "Fairview",
    "Falcon",
    "Farmers",
    "First Coast",
    "Flagstaff",
    "Foothills",
    "Fox Valley",
    "Franklin",
    "Frontier",
    "Garden State",
    "Gateway",
    "Glacier",
    "Golden",
    "Granite",
    "Great Lakes",
    "Great Plains",
    "Green Mountain",
    "Gulf",
    "Harbor",
    "Harvest",
    "Hawkeye",
    "Heartland",
    "Heritage",
    "High Desert",
    "Highland",
    "Hill Country",
    "Hoosier",
    "Hudson",
    "Independence",
    "Inland",
    "Iron Range",
    "Jefferson",
    "Keystone",
    "Lakeside",
    "Lakeview",
    "Landmark",
    "Liberty",
    "Lincoln",
    "Lone Star",
    "Magnolia",
    "Main Street",
    "Maple",
    "Meadow",
    "Mesa",
    "Metro",
    "Mid-America",
    "Midland",
    "Mission",
    "Mohawk",
    "Monument",
    "Mountain West",
    "Mystic",
    "Narragansett",
    "New Horizon",
    "North Shore",
    "Northern",
    "Northstar",
    "Oak",
    "Ocean",
    "Old Dominion",
    "Olympic",
    "Ozark",
    "Pacific",
    "Palmetto",
    "Patriot",
    "Peach State",
    "Pelican",
    "Piedmont",
    "Pine",
    "Pinnacle",
    "Pioneer",
    "Prairie",
    "Providence",
    "Puget",
    "Quad City",
    "Red River",
    "Redwood",
    "Regal",
    "Republic",
    "Ridgeline",
    "Rio Grande",
    "River Valley",
    "Riverside",
    "Rocky Mountain",
    "Sagebrush",
    "Salem",
    "Sandhills",
    "Sawtooth",
    "Seaboard",
    "Sequoia",
    "Shoreline",
    "Sierra",
    "Silver State",
    "Skyline",
    "Snake River",
    "Southern",
    "Southwest",
    "Spruce",
    "Summit",
    "Sun Country",
    "Sunrise",
    "Tidewater",
    "Timberline",
    "Tri-County",
    "Twin Rivers",
    "Union",
    "Unity",
    "Valley",
    "Villa",
    "Wabash",
    "Washington",
    "Western",
    "Whitewater",
    "Wildflower",
    "Willow",
    "Windward",
    "Wolverine",
    "Yellowstone",
)
_CANADIAN_PLACES = (
    "Acadia",
    "Alberta",
    "Algonquin",
    "Assiniboine",
    "Athabasca",
    "Cabot",
    "Caribou",
    "Fraser",
    "Fundy",
    "Kootenay",
    "Laurentian",
    "Muskoka",
    "Niagara",
    "Okanagan",
    "Ottawa",
    "Prairie North",
    "Saguenay",
    "Saskatoon",
    "Superior",
    "Yukon",
)
_BANK_SUFFIXES = (
    "Bank",
    "National Bank",
    "Savings Bank",
    "State Bank",
    "Bank & Trust",
    "Community Bank",
    "Trust Company",
    "Federal Savings",
)
_CU_SUFFIXES = (
    "Credit Union",
    "Federal Credit Union",
    "Community Credit Union",
    "Teachers Credit Union",
    "Employees Credit Union",
)
_CARD_SUFFIXES = ("Card Services", "Credit Card", "Rewards Card", "Visa", "Mastercard")
_BROKER_SUFFIXES = (
    "Securities",
    "Investments",
    "Brokerage",
    "Wealth Management",
    "Retirement Services",
)
_LOAN_SUFFIXES = ("Mortgage", "Home Loans", "Auto Finance", "Student Loan Servicing", "Lending")
_UTILITY_SUFFIXES = (
    "Electric",
    "Power & Light",
    "Gas Company",
    "Water Utility",
    "Energy",
    "Broadband",
    "Wireless",
)
_CA_SUFFIXES = ("Caisse Populaire", "Credit Union", "Trust", "Bank")

# Share of the catalogue per kind, and the MFA styles that kind draws from.
_KIND_PLAN: tuple[tuple[InstitutionKind, tuple[str, ...], int], ...] = (
    (InstitutionKind.BANK, _BANK_SUFFIXES, 38),
    (InstitutionKind.CREDIT_UNION, _CU_SUFFIXES, 30),
    (InstitutionKind.CARD_ISSUER, _CARD_SUFFIXES, 8),
    (InstitutionKind.BROKER, _BROKER_SUFFIXES, 8),
    (InstitutionKind.LOAN_SERVICER, _LOAN_SUFFIXES, 8),
    (InstitutionKind.UTILITY, _UTILITY_SUFFIXES, 8),
)
_MFA_WEIGHTS = (
    (Mfa.NONE, 40),
    (Mfa.SECURITY_QUESTION, 25),
    (Mfa.TOKEN, 20),
    (Mfa.SECURITY_QUESTIONS, 5),
    (Mfa.TOKEN_READ, 4),
    (Mfa.CAPTCHA, 4),
    (Mfa.ALL, 2),
)
_USERNAME_LABELS = ("User ID", "Username", "Online ID", "Email", "Customer Number")


def aba_check_digit(first_eight: str) -> str:
    """The ninth digit that makes an ABA routing number's weighted checksum a multiple of 10."""
    weights = (3, 7, 1, 3, 7, 1, 3, 7)
    total = sum(int(d) * w for d, w in zip(first_eight, weights, strict=True))
    return str((10 - total % 10) % 10)


def is_valid_routing_number(number: str) -> bool:
    return len(number) == 9 and number.isdigit() and aba_check_digit(number[:8]) == number[8]


def _routing_number(rng: random.Random) -> str:
    prefix = f"{rng.choice([rng.randint(1, 12), rng.randint(21, 32)]):02d}"
    first_eight = prefix + "".join(str(rng.randint(0, 9)) for _ in range(6))
    return first_eight + aba_check_digit(first_eight)


def _slug(name: str) -> str:
    return "".join(ch for ch in name.lower().replace("&", "and") if ch.isalnum())


class Catalogue:
    """All institutions of one sandbox, searchable by name, id and routing number."""

    def __init__(self, records: list[InstitutionRecord]) -> None:
        self._records = records
        self._by_id = {record.institution_id.lower(): record for record in records}
        self._by_routing: dict[str, list[InstitutionRecord]] = {}
        for record in records:
            for number in record.routing_numbers:
                self._by_routing.setdefault(number, []).append(record)

    def __iter__(self) -> Iterator[InstitutionRecord]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def by_id(self, institution_id: str) -> InstitutionRecord | None:
        return self._by_id.get(institution_id.strip().lower())

    def by_routing_number(self, routing_number: str) -> list[InstitutionRecord]:
        return list(self._by_routing.get(routing_number.strip(), []))

    def search(self, query: str) -> list[InstitutionRecord]:
        """Institutions whose name holds every word of ``query`` (any case), best match first."""
        words = query.lower().split()
        if not words:
            return []
        wanted = query.strip().lower()

        def rank(record: InstitutionRecord) -> tuple[int, int, str]:
            name = record.name.lower()
            if name == wanted:
                score = 0
            elif name.startswith(wanted):
                score = 1
            elif wanted in name:
                score = 2
            else:
                score = 3
            return score, len(name), name

        found = [r for r in self._records if all(w in r.name.lower() for w in words)]
        return sorted(found, key=rank)


def build_catalogue(seed: int, size: int = 1200) -> Catalogue:
    """The test banks plus ``size`` generated institutions, the same for the same seed."""
    rng = random.Random(f"catalogue:{seed}")
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"https://sandbox.sophsync.invalid/{seed}")
    records = list(TEST_BANKS)
    names = {record.name for record in records}
    kind_weights = [weight for _, _, weight in _KIND_PLAN]
    mfa_styles = [style for style, _ in _MFA_WEIGHTS]
    mfa_weights = [weight for _, weight in _MFA_WEIGHTS]
    while len(records) < size + len(TEST_BANKS):
        canadian = rng.random() < 0.06
        if canadian:
            kind = rng.choice([InstitutionKind.BANK, InstitutionKind.CREDIT_UNION])
            name = f"{rng.choice(_CANADIAN_PLACES)} {rng.choice(_CA_SUFFIXES)}"
        else:
            kind, suffixes, _ = rng.choices(_KIND_PLAN, kind_weights)[0]
            name = f"{rng.choice(_PLACES)} {rng.choice(suffixes)}"
        if name in names:
            continue
        names.add(name)
        has_routing = kind in {InstitutionKind.BANK, InstitutionKind.CREDIT_UNION}
        routing: tuple[str, ...] = ()
        if has_routing and not canadian:
            routing = tuple(_routing_number(rng) for _ in range(1 if rng.random() < 0.8 else 2))
        records.append(
            InstitutionRecord(
                institution_id=str(uuid.uuid5(namespace, f"institution:{name}")),
                name=name,
                kind=kind,
                url=f"https://www.{_slug(name)}.example",
                mfa=rng.choices(mfa_styles, mfa_weights)[0],
                country_code="CA" if canadian else "US",
                routing_numbers=routing,
                login_form_user_name=rng.choice(_USERNAME_LABELS),
            )
        )
    return Catalogue(records)
