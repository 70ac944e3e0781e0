"""GraphQL object types: thin views of the models and released results that REST serialises too."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from functools import partial
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from app.formats.observations import rounded
from app.models import Area as AreaModel
from app.models import Indicator as IndicatorModel
from app.privacy.released import ReleasedObservation, ReleasedResult
from app.services.data import DataRequest
from app.services.geography import GeographySummary, area_fields, unit_type_label
from app.services.geography import LinkedArea as LinkedAreaModel
from app.services.indicators import indicator_fields, official_fields
from app.services.releases import ReleaseSummary
from schema.context import PortalContext

Info = strawberry.Info[PortalContext, None]


@strawberry.enum(
    description="Access tier of the caller; it fixes the detail and disclosure control of answers"
)
class AccessTier(Enum):
    PUBLIC = strawberry.enum_value("public", description="No credential: open data, coarse published atoms")
    DEPARTMENT = strawberry.enum_value("department", description="A department's credential: finer atoms")
    INTERNAL = strawberry.enum_value("internal", description="The population office: exact counts, audited")


@strawberry.enum(description="SDMX OBS_STATUS of an observation")
class ObservationStatus(Enum):
    A = strawberry.enum_value("A", description="Normal value")
    U = strawberry.enum_value("U", description="Low reliability (small numerator or denominator)")
    Q = strawberry.enum_value("Q", description="Suppressed (confidential); the value is withheld")
    O = strawberry.enum_value("O", description="Missing: no value for this area and period")  # noqa: E741


@strawberry.enum(description="SDMX CONF_STATUS of an observation")
class ConfidentialityStatus(Enum):
    F = strawberry.enum_value("F", description="Free: open data")
    N = strawberry.enum_value("N", description="Restricted to department and internal use")
    C = strawberry.enum_value("C", description="Confidential: not published")


@strawberry.enum(description="Sex, for filters and breakdowns")
class Sex(Enum):
    MALE = strawberry.enum_value("male", description="Males")
    FEMALE = strawberry.enum_value("female", description="Females")


@strawberry.enum(description="A breakdown of observations")
class Breakdown(Enum):
    SEX = strawberry.enum_value("sex", description="By sex")
    AGE5 = strawberry.enum_value("age5", description="By 5-year age group (0-4, ..., 95-99, 100+)")
    AGE1 = strawberry.enum_value("age1", description="By single year of age")
    AGE = strawberry.enum_value("age", description="By the age ranges given in `age`")


@strawberry.type(description="Relay page information of a connection")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether another page follows")
    end_cursor: str | None = strawberry.field(description="Cursor to pass as `after` for the next page")


@strawberry.type(description="How many areas a geography version has at one level")
class LevelCount:
    level: str = strawberry.field(description="province, district or commune")
    count: int = strawberry.field(description="Number of areas at this level")


@strawberry.type(description="A geography version: the administrative units in force over a period")
class Geography:
    id: str = strawberry.field(description="Geography version id, e.g. vn-2025-07")
    name: str = strawberry.field(description="Name in the request's language")
    levels: list[str] = strawberry.field(description="Levels, top level first")
    valid_from: date = strawberry.field(description="First day the units are in force")
    valid_to: date | None = strawberry.field(
        description="Last day the units are in force; null while current"
    )
    area_counts: list[LevelCount] = strawberry.field(description="Number of areas by level")
    source: str = strawberry.field(description="Where the code list comes from")

    @classmethod
    def of(cls, summary: GeographySummary, lang: str) -> Geography:
        g = summary.geography
        return cls(
            id=g.id,
            name=g.name_vi if lang == "vi" else g.name_en,
            levels=g.levels.split(","),
            valid_from=g.valid_from,
            valid_to=g.valid_to,
            area_counts=[LevelCount(level=k, count=v) for k, v in summary.area_counts.items()],
            source=g.source,
        )


@strawberry.type(description="Lower and upper bound of a value shown as a band")
class Interval:
    low: float = strawberry.field(description="Lower bound")
    high: float = strawberry.field(description="Upper bound")


@strawberry.type(description="One released value: a cell of areas x periods x breakdowns, with its flags")
class Observation:
    area: str = strawberry.field(description="GSO code of the area")
    period: str = strawberry.field(description="Period label: 2024, 2024-Q1 or 2024-03")
    sex: str | None = strawberry.field(description="male or female when broken down or filtered by sex")
    age: str | None = strawberry.field(description="Age group (e.g. 15-19, 60+) when broken down or filtered")
    value: float | None = strawberry.field(
        description="The value, to the indicator's decimals; null when suppressed, missing or a band"
    )
    numerator: float | None = strawberry.field(description="Published count the value is computed from")
    denominator: float | None = strawberry.field(description="Published base of a rate; null for counts")
    status: ObservationStatus = strawberry.field(description="SDMX OBS_STATUS")
    conf_status: ConfidentialityStatus = strawberry.field(description="SDMX CONF_STATUS")
    perturbed: bool = strawberry.field(
        description="Computed from perturbed published counts (cell-key method)"
    )
    reason: str | None = strawberry.field(description="Why the value is flagged or withheld")
    interval: Interval | None = strawberry.field(description="Band shown instead of a value near 0% or 100%")
    geography: strawberry.Private[str]

    @strawberry.field(description="Name of the area (Vietnamese, as in the GSO code list)")
    async def area_name(self, info: Info) -> str | None:
        found = await info.context.loaders.area.load((self.geography, self.area))
        return found.name if found else None

    @classmethod
    def of(cls, o: ReleasedObservation, geography: str, decimals: int) -> Observation:
        return cls(
            area=o.area,
            period=o.period,
            sex=o.breakdown.get("sex"),
            age=o.breakdown.get("age"),
            value=rounded(o.value, decimals),  # as REST publishes it: the catalogue's decimals
            numerator=o.numerator,
            denominator=o.denominator,
            status=ObservationStatus(o.status.value),
            conf_status=ConfidentialityStatus(o.conf_status.value),
            perturbed=o.perturbed,
            reason=o.reason,
            interval=Interval(low=o.interval[0], high=o.interval[1]) if o.interval else None,
            geography=geography,
        )


@strawberry.type(
    description="Released observations of one indicator, with what is needed to cite and judge them"
)
class ObservationResult:
    release: str = strawberry.field(description="Id of the release the values come from")
    tier: AccessTier = strawberry.field(description="Tier the values were released for")
    method: str = strawberry.field(description="Disclosure-control method applied")
    ptable: str | None = strawberry.field(description="Version of the p-table of the cell-key method")
    items: list[Observation] = strawberry.field(description="The observations of this page")
    page_info: PageInfo = strawberry.field(description="Paging over the observations")
    total_count: int = strawberry.field(description="Observations over all pages")
    indicator_model: strawberry.Private[IndicatorModel]

    @strawberry.field(description="The indicator the values are of")
    def indicator(self, info: Info) -> Indicator:
        return Indicator.of(self.indicator_model, info.context.lang)

    @classmethod
    def of(
        cls,
        result: ReleasedResult,
        observations: list[ReleasedObservation],
        geography: str,
        page_info: PageInfo,
        total: int,
    ) -> ObservationResult:
        return cls(
            release=result.release.id,
            tier=AccessTier(result.tier.value),
            method=result.method,
            ptable=result.ptable,
            items=[Observation.of(o, geography, result.indicator.decimals) for o in observations],
            page_info=page_info,
            total_count=total,
            indicator_model=result.indicator,
        )


def data_request(
    indicator: str,
    geography: str,
    areas: list[str] | None,
    periods: list[str],
    sex: Sex | None,
    age: list[str] | None,
    by: list[Breakdown] | None,
    release: str | None,
    parent: str | None = None,
    level: str | None = None,
) -> DataRequest:
    """The question as REST spells it, so the data service parses and checks it the same way."""
    return DataRequest(
        indicator=indicator,
        geography=geography,
        period=",".join(periods),
        area=",".join(areas) if areas else None,
        parent=parent,
        level=level,
        # Each enum's value is the data service's code (mypy sees strawberry's value definitions).
        sex=str(sex.value) if sex else None,
        age=",".join(age) if age else None,
        by=",".join(str(b.value) for b in by) if by else None,
        release=release,
    )


IndicatorArg = Annotated[str, strawberry.argument(description="Indicator code, e.g. POP, CBR, TFR")]
PeriodsArg = Annotated[
    list[str], strawberry.argument(description="Periods: 2024, 2024-Q1, 2024-03, or ranges like 2021..2024")
]
SexArg = Annotated[Sex | None, strawberry.argument(description="Only this sex")]
AgeArg = Annotated[
    list[str] | None, strawberry.argument(description="Age ranges: 15-49, 60+, 5 (whole published bands)")
]
ByArg = Annotated[list[Breakdown] | None, strawberry.argument(description="Breakdowns of the observations")]
ReleaseArg = Annotated[
    str | None, strawberry.argument(description="Release id for a reproducible citation; default the current")
]


@strawberry.type(description="An area of another geography version, reached through GSO's official crosswalk")
class LinkedArea:
    geography: str = strawberry.field(description="Geography version of the linked area")
    code: str = strawberry.field(description="GSO code of the linked area")
    kind: str = strawberry.field(
        description="Crosswalk change kind (whole, partial, ...) for communes; aggregate for higher levels"
    )
    population_share: float | None = strawberry.field(
        description="Share of the old unit's population that went here, where the official table states it"
    )
    n_targets: int | None = strawberry.field(description="How many new units the old commune was split over")
    note_vi: str | None = strawberry.field(description="GSO's change note, verbatim")
    communes: int = strawberry.field(description="Commune links behind this entry")
    model: strawberry.Private[AreaModel | None]

    @strawberry.field(description="The linked area; null when the crosswalk names a code its code list lacks")
    def area(self) -> Area | None:
        return Area.of(self.model) if self.model else None

    @classmethod
    def of(cls, link: LinkedAreaModel) -> LinkedArea:
        return cls(
            geography=link.geography,
            code=link.code,
            kind=link.kind,
            population_share=link.population_share,
            n_targets=link.n_targets,
            note_vi=link.note_vi,
            communes=link.communes,
            model=link.area,
        )


@strawberry.type(
    description="An administrative unit (province, district or commune) of one geography version"
)
class Area:
    # Plain fields, copied from the model: a field with a resolver of its own costs Strawberry's
    # argument and info handling on every area of a list, a plain one an attribute read.
    geography: str = strawberry.field(description="Geography version id")
    code: str = strawberry.field(description="GSO code")
    name: str = strawberry.field(description="Full Vietnamese name, e.g. Tỉnh Bắc Giang")
    short_name: str = strawberry.field(description="Name without the unit type, e.g. Bắc Giang")
    name_ascii: str = strawberry.field(description="Lower-case ASCII name, accents folded")
    level: str = strawberry.field(description="province, district or commune")
    unit_type: str = strawberry.field(description="Vietnamese unit type, e.g. tỉnh, xã, phường")
    parent_code: str | None = strawberry.field(description="Code of the parent area; null for provinces")
    urban: bool | None = strawberry.field(
        description="Communes: phường and thị trấn are urban (GSO); null above commune level"
    )
    model: strawberry.Private[AreaModel]

    @classmethod
    def of(cls, model: AreaModel) -> Area:
        return cls(**area_fields(model), model=model)

    @strawberry.field(description="Unit type in the request's language")
    def unit_type_label(self, info: Info) -> str:
        return unit_type_label(self.unit_type, info.context.lang)

    @strawberry.field(description="The parent area; null for provinces")
    async def parent(self, info: Info) -> Area | None:
        if not self.model.parent_code:
            return None
        found = await info.context.loaders.area.load((self.model.geography, self.model.parent_code))
        return Area.of(found) if found else None

    @strawberry.field(description="The areas one level down, ordered by code")
    async def children(self, info: Info) -> list[Area]:
        found = await info.context.loaders.children.load((self.model.geography, self.model.code))
        return [Area.of(a) for a in found]

    @strawberry.field(description="Where the area went in newer geography versions (GSO's crosswalk)")
    async def successors(self, info: Info) -> list[LinkedArea]:
        ctx = info.context
        links = await ctx.store(partial(ctx.geography.successors, self.model.geography, self.model.code))
        return [LinkedArea.of(link) for link in links]

    @strawberry.field(description="Which areas of older geography versions the area came from")
    async def predecessors(self, info: Info) -> list[LinkedArea]:
        ctx = info.context
        links = await ctx.store(partial(ctx.geography.predecessors, self.model.geography, self.model.code))
        return [LinkedArea.of(link) for link in links]

    @strawberry.field(
        description="Released observations of one indicator for this area. Sibling areas asking the same "
        "question are answered by one query together, and their cells count against the request's cost"
    )
    async def observations(
        self,
        info: Info,
        indicator: IndicatorArg,
        periods: PeriodsArg,
        sex: SexArg = None,
        age: AgeArg = None,
        by: ByArg = None,
        release: ReleaseArg = None,
    ) -> ObservationResult:
        shared = data_request(indicator, self.model.geography, None, periods, sex, age, by, release)
        answer = await info.context.loaders.observations.load((shared, self.model.code))
        if isinstance(answer, BaseException):
            raise answer
        total = len(answer.observations)
        return ObservationResult.of(
            answer.result,
            answer.observations,
            self.model.geography,
            PageInfo(has_next_page=False, end_cursor=None),
            total,
        )


@strawberry.type(description="An edge of an area connection")
class AreaEdge:
    cursor: str = strawberry.field(description="Cursor of this area, for `after`")
    node: Area = strawberry.field(description="The area")


@strawberry.type(description="A page of areas (Relay connection)")
class AreaConnection:
    edges: list[AreaEdge] = strawberry.field(description="The areas of this page with their cursors")
    page_info: PageInfo = strawberry.field(description="Paging information")
    total_count: int = strawberry.field(description="Areas matching the filter, over all pages")

    @strawberry.field(description="The areas of this page, without cursors")
    def nodes(self) -> list[Area]:
        return [edge.node for edge in self.edges]


@strawberry.input(description="Which areas to list")
class AreaFilter:
    geography: str = strawberry.field(description="Geography version id, e.g. vn-2025-07")
    level: str | None = strawberry.field(default=None, description="province, district or commune")
    parent: str | None = strawberry.field(default=None, description="Code of the parent area")
    q: str | None = strawberry.field(default=None, description="Name search, accent-insensitive")


@strawberry.type(description="The official indicator an entry of the catalogue implements")
class OfficialIndicator:
    code: str = strawberry.field(description="Official code")
    name_vi: str = strawberry.field(description="Official name in Vietnamese")
    name_en: str = strawberry.field(description="Official name in English")
    definition: str = strawberry.field(description="Official definition")
    disaggregations: str = strawberry.field(description="Official disaggregations")
    periodicity: str = strawberry.field(description="Official periodicity")
    legal_basis: str = strawberry.field(description="Legal basis of the indicator")
    source: str = strawberry.field(description="Source of the metadata")


@strawberry.type(description="An indicator of the catalogue")
class Indicator:
    code: str = strawberry.field(description="Indicator code, e.g. CBR")
    official_code: str = strawberry.field(description="Code of the official indicator it implements")
    name: str = strawberry.field(description="Name in the request's language")
    name_vi: str = strawberry.field(description="Name in Vietnamese")
    name_en: str = strawberry.field(description="Name in English")
    unit: str = strawberry.field(description="Unit in the request's language")
    decimals: int = strawberry.field(description="Decimals to show")
    topic: str = strawberry.field(description="Topic code, e.g. fertility")
    topic_label: str = strawberry.field(description="Topic in the request's language")
    dimensions: list[str] = strawberry.field(description="Breakdowns the portal supports")
    periodicity: list[str] = strawberry.field(description="Periods it is computed for")
    supported: bool = strawberry.field(description="Whether the portal computes it from the register")
    formula: str = strawberry.field(description="Formula over base measures")
    official: OfficialIndicator = strawberry.field(description="The official indicator behind it")

    @classmethod
    def of(cls, i: IndicatorModel, lang: str) -> Indicator:
        return cls(
            **indicator_fields(i, lang),
            name_vi=i.name_vi,
            name_en=i.name_en,
            formula=i.formula,
            official=OfficialIndicator(**official_fields(i)),
        )


@strawberry.type(description="A published release: an immutable snapshot the API answers from")
class Release:
    id: str = strawberry.field(description="Release id")
    kind: str = strawberry.field(description="register (population register) or census (2019 census totals)")
    current: bool = strawberry.field(description="Served when a query names no release")
    synthetic: bool = strawberry.field(description="Built from generated data, not from a real register")
    created_at: datetime = strawberry.field(description="When it was published")
    period_start: str = strawberry.field(description="First month covered")
    period_end: str = strawberry.field(description="Last month covered")
    geographies: list[str] = strawberry.field(description="Geography versions it answers in")
    areas: JSON = strawberry.field(description="Areas covered, by geography and level")
    sources: JSON = strawberry.field(description="Sources it was built from")
    row_counts: JSON = strawberry.field(description="Records read, accepted and rejected")

    @classmethod
    def of(cls, summary: ReleaseSummary) -> Release:
        fields = summary.fields()
        return cls(**{**fields, **{name: JSON(fields[name]) for name in ("areas", "sources", "row_counts")}})
