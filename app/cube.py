"""The release cube: base measures, their breakdown axes, months, and the compact cell encoding.

A cube row holds one measure for one area and one month as a small array over the measure's axes
(sex x single-year age, for example), so that any breakdown of a query is a sum over a few arrays.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import cached_property
from typing import Final

import numpy as np
from numpy.typing import NDArray

from connectors.canonical import ContraceptiveMethod

MAX_AGE: Final = 100  # single years 0..99 and 100+ (the last bin)
AGES: Final = MAX_AGE + 1
SEXES: Final = ("male", "female")
BIRTH_ORDERS: Final = ("1", "2", "3+")
METHODS: Final = tuple(m.value for m in ContraceptiveMethod)


class Axis(StrEnum):
    SEX = "sex"
    AGE = "age"  # the person's age in completed years at the reference moment
    MOTHER_AGE = "mother_age"
    BIRTH_ORDER = "birth_order"
    METHOD = "method"
    SETTLEMENT = "settlement"  # urban, rural (census tables)


AXIS_SIZES: Final = {
    Axis.SEX: len(SEXES),
    Axis.AGE: AGES,
    Axis.MOTHER_AGE: AGES,
    Axis.BIRTH_ORDER: len(BIRTH_ORDERS),
    Axis.METHOD: len(METHODS),
    Axis.SETTLEMENT: 2,
}


class MeasureKind(StrEnum):
    STOCK = "stock"  # counted at the end of each month
    FLOW = "flow"  # counted over each month


@dataclass(frozen=True)
class Measure:
    name: str
    kind: MeasureKind
    axes: tuple[Axis, ...]
    sensitive: bool = False  # health data under Decree 13/2023: stricter disclosure control

    @cached_property
    def shape(self) -> tuple[int, ...]:
        return tuple(AXIS_SIZES[a] for a in self.axes)

    @cached_property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.axes else 1


# The base measures of DESIGN.md, each at the finest grain the register supports.
POPULATION = Measure("population", MeasureKind.STOCK, (Axis.SEX, Axis.AGE))
HOUSEHOLDS = Measure("households", MeasureKind.STOCK, ())
MARRIED_WOMEN = Measure("married_women", MeasureKind.STOCK, (Axis.AGE,))  # currently married, 15-49
CONTRACEPTIVE_USERS = Measure(
    "contraceptive_users", MeasureKind.STOCK, (Axis.METHOD, Axis.AGE), sensitive=True
)
BIRTHS = Measure("births", MeasureKind.FLOW, (Axis.SEX, Axis.MOTHER_AGE, Axis.BIRTH_ORDER))
DEATHS = Measure("deaths", MeasureKind.FLOW, (Axis.SEX, Axis.AGE))
IN_MIGRANTS = Measure("in_migrants", MeasureKind.FLOW, (Axis.SEX, Axis.AGE))
OUT_MIGRANTS = Measure("out_migrants", MeasureKind.FLOW, (Axis.SEX, Axis.AGE))
MARRIAGES = Measure("marriages", MeasureKind.FLOW, ())
DIVORCES = Measure("divorces", MeasureKind.FLOW, ())

# The 2019 census totals of the reference release: urban and rural population.
CENSUS_POPULATION = Measure("census_population", MeasureKind.STOCK, (Axis.SETTLEMENT,))

MEASURES: Final = {
    m.name: m
    for m in (
        POPULATION,
        HOUSEHOLDS,
        MARRIED_WOMEN,
        CONTRACEPTIVE_USERS,
        BIRTHS,
        DEATHS,
        IN_MIGRANTS,
        OUT_MIGRANTS,
        MARRIAGES,
        DIVORCES,
        CENSUS_POPULATION,
    )
}


def month_index(day: date) -> int:
    """Months counted from year 0, so that consecutive months are consecutive integers."""
    return day.year * 12 + day.month - 1


def month_label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@dataclass(frozen=True)
class Layout:
    """The measures of a release's cube rows, in order: each row is their arrays concatenated."""

    measures: tuple[Measure, ...]

    @classmethod
    def named(cls, names: list[str]) -> Layout:
        return cls(tuple(MEASURES[n] for n in names))

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.measures]

    @property
    def size(self) -> int:
        return sum(m.size for m in self.measures)

    def offset(self, name: str) -> int:
        start = 0
        for measure in self.measures:
            if measure.name == name:
                return start
            start += measure.size
        raise KeyError(name)

    def extract(self, row: NDArray[np.int64], name: str) -> NDArray[np.int64]:
        measure = MEASURES[name]
        start = self.offset(name)
        return row[start : start + measure.size].reshape(measure.shape)


def encode_row(values: NDArray[np.int64]) -> bytes:
    """int32 little-endian, zlib-compressed: small-area rows are mostly zeros."""
    return zlib.compress(np.ascontiguousarray(values, dtype="<i4").tobytes(), 1)


def decode_row(blob: bytes) -> NDArray[np.int64]:
    return np.frombuffer(zlib.decompress(blob), dtype="<i4").astype(np.int64)
