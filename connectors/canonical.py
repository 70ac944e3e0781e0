"""The canonical register: the one shape every connector produces and the release builder reads.

It follows the register's own records (Sổ A0 snapshot plus the monthly P0 change slips of
Thông tư 01/2022/TT-BYT): a snapshot of households and persons at a reference date, and an event
log after it. Each table is a CSV file with a header, UTF-8, one row per record.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class EventType(StrEnum):
    BIRTH = "birth"
    DEATH = "death"
    MOVE_IN = "move_in"
    MOVE_OUT = "move_out"
    MARRIAGE = "marriage"
    DIVORCE = "divorce"
    CONTRACEPTION_CHANGE = "contraception_change"
    HOUSEHOLD_FORMED = "household_formed"
    HOUSEHOLD_DISSOLVED = "household_dissolved"


class ContraceptiveMethod(StrEnum):
    """Methods of the MoH report forms; the first seven are modern methods."""

    IUD = "iud"
    PILL = "pill"
    CONDOM = "condom"
    INJECTABLE = "injectable"
    IMPLANT = "implant"
    FEMALE_STERILIZATION = "female_sterilization"
    MALE_STERILIZATION = "male_sterilization"
    TRADITIONAL = "traditional"


MODERN_METHODS: Final = frozenset(m for m in ContraceptiveMethod if m is not ContraceptiveMethod.TRADITIONAL)

MARITAL_STATUSES: Final = ("single", "married", "widowed", "divorced")
RESIDENCE_KINDS: Final = ("permanent", "temporary")

# Column order is the file header. Dates are ISO `YYYY-MM-DD`; sex is 1 (male) or 2 (female);
# area codes are GSO commune codes of the named geography version.
HOUSEHOLD_COLUMNS: Final = ("household_id", "area_code", "geography")

PERSON_COLUMNS: Final = (
    "person_id",
    "household_id",
    "sex",
    "birth_date",
    "area_code",
    "geography",
    "residence",
    "marital_status",
    "contraceptive_method",  # only for married women 15-49; empty otherwise
)

# Type-specific fields stay empty where they do not apply:
# - birth: person_id is the newborn; sex, birth_date (= event_date), household_id, mother_id,
#   mother_birth_date, birth_order.
# - death: person_id; area_code where the person lived.
# - move_in: person_id, household_id, origin_area_code (empty: abroad or unknown); sex and
#   birth_date when the person is new to the register (arrives from outside it).
# - move_out: person_id, destination_area_code (empty: abroad or unknown). A move between two
#   communes of the register is a move_out at the origin and a move_in at the destination.
# - marriage / divorce: person_id and spouse_id; one event per couple, area of person_id.
# - contraception_change: person_id, contraceptive_method (empty when the woman stops).
# - household_formed / household_dissolved: household_id; person_id empty.
EVENT_COLUMNS: Final = (
    "event_id",
    "event_type",
    "event_date",
    "person_id",
    "area_code",
    "geography",
    "household_id",
    "sex",
    "birth_date",
    "mother_id",
    "mother_birth_date",
    "birth_order",
    "spouse_id",
    "origin_area_code",
    "destination_area_code",
    "contraceptive_method",
)

# Column types once parsed (connectors hand the builder frames of exactly these types).
_TYPES: Final[dict[str, str]] = {
    "sex": "Int8",
    "birth_order": "Int16",
    "birth_date": "Date",
    "event_date": "Date",
    "mother_birth_date": "Date",
}


def column_type(column: str) -> str:
    """The polars dtype name of a canonical column: text unless listed in `_TYPES`."""
    return _TYPES.get(column, "String")


TABLES: Final = {
    "households": HOUSEHOLD_COLUMNS,
    "persons": PERSON_COLUMNS,
    "events": EVENT_COLUMNS,
}
