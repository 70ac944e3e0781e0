"""Response shapes of /v1 (they are the OpenAPI contract)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from app.api.deps import Lang
from app.models import Area, Geography, Indicator
from app.services.geography import GeographySummary, LinkedArea, area_fields, unit_type_label
from app.services.indicators import indicator_fields, official_fields


class GeographyOut(BaseModel):
    id: str = Field(examples=["vn-2025-07"])
    name: str
    levels: list[str] = Field(examples=[["province", "commune"]])
    valid_from: date
    valid_to: date | None
    area_counts: dict[str, int] = Field(examples=[{"province": 34, "commune": 3321}])
    source: str

    @classmethod
    def of(cls, summary: GeographySummary, lang: Lang) -> GeographyOut:
        g: Geography = summary.geography
        return cls(
            id=g.id,
            name=g.name_vi if lang == "vi" else g.name_en,
            levels=g.levels.split(","),
            valid_from=g.valid_from,
            valid_to=g.valid_to,
            area_counts=summary.area_counts,
            source=g.source,
        )


class AreaRef(BaseModel):
    geography: str = Field(examples=["vn-2025-01"])
    code: str = Field(examples=["24"])
    name: str = Field(examples=["Tỉnh Bắc Giang"])
    level: str = Field(examples=["province"])
    href: str = Field(examples=["/v1/areas/vn-2025-01/24"])

    @classmethod
    def of(cls, area: Area) -> AreaRef:
        return cls(
            geography=area.geography,
            code=area.code,
            name=area.name,
            level=area.level,
            href=f"/v1/areas/{area.geography}/{area.code}",
        )


class AreaOut(AreaRef):
    short_name: str = Field(examples=["Bắc Giang"])
    name_ascii: str = Field(examples=["tinh bac giang"])
    unit_type: str = Field(description="Vietnamese unit type", examples=["tỉnh"])
    unit_type_label: str = Field(description="Unit type in the response language", examples=["province"])
    parent_code: str | None = Field(examples=[None])
    urban: bool | None = Field(description="Communes: phường and thị trấn are urban (GSO); null above")

    @classmethod
    def full(cls, area: Area, lang: Lang) -> AreaOut:
        return cls(
            **{**AreaRef.of(area).model_dump(), **area_fields(area)},
            unit_type_label=unit_type_label(area.unit_type, lang),
        )


class AreaDetailOut(AreaOut):
    parent: AreaRef | None
    children: list[AreaRef]


class LinkedAreaOut(BaseModel):
    geography: str
    code: str
    name: str | None = Field(description="Null when the crosswalk names a code missing from the code list")
    level: str | None
    href: str | None
    kind: str = Field(
        description="Crosswalk change kind (whole, partial, partial_area, partial_area_whole_population, "
        "partial_population, unchanged, renamed, retyped) for communes; 'aggregate' for higher levels"
    )
    population_share: float | None = Field(
        description="Share of the old unit's population that went here, where the official table states it"
    )
    n_targets: int | None = Field(description="How many new units the old commune was split over")
    note_vi: str | None = Field(description="GSO's change note, verbatim")
    communes: int = Field(description="Commune links behind this entry")

    @classmethod
    def of(cls, link: LinkedArea) -> LinkedAreaOut:
        area = link.area
        return cls(
            geography=link.geography,
            code=link.code,
            name=area.name if area else None,
            level=area.level if area else None,
            href=f"/v1/areas/{link.geography}/{link.code}" if area else None,
            kind=link.kind,
            population_share=link.population_share,
            n_targets=link.n_targets,
            note_vi=link.note_vi,
            communes=link.communes,
        )


class IndicatorOut(BaseModel):
    code: str = Field(examples=["CBR"])
    official_code: str = Field(description="Code of the official indicator it implements", examples=["CBR"])
    name: str = Field(examples=["Tỷ suất sinh thô"])
    unit: str = Field(examples=["‰"])
    decimals: int = Field(examples=[1])
    topic: str = Field(examples=["fertility"])
    topic_label: str = Field(examples=["Sinh"])
    dimensions: list[str] = Field(description="Breakdowns the portal supports", examples=[["sex", "age"]])
    periodicity: list[str] = Field(examples=[["month", "quarter", "year"]])
    supported: bool = Field(description="Whether the portal computes it from the register")
    href: str

    @classmethod
    def of(cls, indicator: Indicator, lang: Lang) -> IndicatorOut:
        return cls(**indicator_fields(indicator, lang), href=f"/v1/indicators/{indicator.code}")


class OfficialIndicatorOut(BaseModel):
    code: str = Field(examples=["CBR"])
    name_vi: str
    name_en: str
    definition: str
    disaggregations: str
    periodicity: str
    legal_basis: str
    source: str


class AvailabilityOut(BaseModel):
    release: str = Field(description="The release described (the newest register release)")
    periods: dict[str, list[str]] = Field(description="Whole years, quarters and months covered")
    areas: dict[str, dict[str, int]] = Field(description="Areas covered, by geography and level")
    breakdowns: list[str]
    detail: dict[str, list[str]] = Field(
        description="Per access tier, the finest detail its published atoms give each measure read"
    )


class IndicatorDetailOut(IndicatorOut):
    name_vi: str
    name_en: str
    formula: str
    official: OfficialIndicatorOut
    availability: AvailabilityOut | None = Field(
        default=None, description="What the current release offers; absent before any release"
    )

    @classmethod
    def full(cls, indicator: Indicator, lang: Lang) -> IndicatorDetailOut:
        return cls(
            **IndicatorOut.of(indicator, lang).model_dump(),
            name_vi=indicator.name_vi,
            name_en=indicator.name_en,
            formula=indicator.formula,
            official=OfficialIndicatorOut(**official_fields(indicator)),
        )


class GeographyList(BaseModel):
    items: list[GeographyOut]
    total: int


class AreaList(BaseModel):
    items: list[AreaOut]
    total: int = Field(description="Areas matching the filter, over all pages")
    next: str | None = Field(description="Link to the next page; absent on the last page")


class LinkedAreaList(BaseModel):
    area: AreaRef
    items: list[LinkedAreaOut]
    total: int


class IndicatorList(BaseModel):
    items: list[IndicatorOut]
    total: int


class DataIndicatorOut(BaseModel):
    code: str = Field(examples=["CBR"])
    name: str = Field(examples=["Tỷ suất sinh thô"])
    unit: str = Field(examples=["‰"])
    decimals: int
    href: str


class DataReleaseOut(BaseModel):
    id: str
    kind: str = Field(description="register or census")
    created_at: str
    synthetic: bool = Field(description="Built from generated data, not real figures")
    href: str
    note: str | None = None


class DisclosureOut(BaseModel):
    method: str = Field(description="The disclosure control the values went through")
    ptable: str | None = Field(description="Versions of the perturbation tables used")


class ObservationOut(BaseModel):
    area: str = Field(examples=["24"])
    period: str = Field(examples=["2024"])
    sex: str | None = Field(default=None, examples=["female"])
    age: str | None = Field(default=None, examples=["15-19"])
    value: float | None = Field(description="Absent when suppressed or missing")
    status: str = Field(description="SDMX OBS_STATUS: A normal, U low reliability, Q suppressed, O missing")
    conf_status: str = Field(description="SDMX CONF_STATUS: F free, N restricted, C confidential")
    perturbed: bool = Field(description="The value differs from the exact figure by design (cell-key noise)")
    reason: str | None = Field(default=None, description="Why the value is flagged or withheld")
    interval: list[float] | None = Field(default=None, description="Shown instead of a value near 0% or 100%")
    numerator: float | None = Field(default=None, description="With numerators=true")
    denominator: float | None = Field(default=None, description="With numerators=true; absent for counts")


class DataPage(BaseModel):
    indicator: DataIndicatorOut
    release: DataReleaseOut
    tier: str = Field(description="The access tier the answer was released for", examples=["public"])
    disclosure: DisclosureOut
    items: list[ObservationOut]
    total: int = Field(description="Observations of the whole answer, over all pages")
    next: str | None = Field(description="Link to the next page; absent on the last page")
