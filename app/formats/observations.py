"""Released observations as labelled rows: the common ground of every format."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from app.models import Indicator, Release
from app.privacy.released import ReleasedObservation, ReleasedResult
from app.services.data import LabelledResult

Lang = Literal["vi", "en"]

SEX_LABELS: Final = {"male": ("Nam", "Male"), "female": ("Nữ", "Female")}
SYNTHETIC_NOTE: Final = {
    "vi": "Dữ liệu tổng hợp (synthetic), không phải số liệu thật",
    "en": "Synthetic data, not real figures",
}


def indicator_name(indicator: Indicator, lang: Lang) -> str:
    return indicator.name_vi if lang == "vi" else indicator.name_en


def indicator_unit(indicator: Indicator, lang: Lang) -> str:
    return indicator.unit_vi if lang == "vi" else indicator.unit_en


def rounded(value: float | None, decimals: int) -> float | None:
    """Values as the catalogue publishes them: counts whole, rates to the indicator's decimals."""
    return None if value is None else round(value, decimals)


@dataclass(frozen=True)
class Row:
    observation: ReleasedObservation
    area_name: str
    area_level: str
    sex_label: str | None


def rows(labelled: LabelledResult, lang: Lang) -> list[Row]:
    result: list[Row] = []
    for o in labelled.result.observations:
        area = labelled.areas.get(o.area)
        sex = o.breakdown.get("sex")
        result.append(
            Row(
                o,
                area.name if area else o.area,
                area.level if area else "",
                SEX_LABELS[sex][0 if lang == "vi" else 1] if sex else None,
            )
        )
    return result


def observation_json(o: ReleasedObservation, decimals: int, numerators: bool) -> dict[str, Any]:
    """An observation as REST's JSON has it, for orjson (which writes a StrEnum as its value)."""
    item: dict[str, Any] = {
        "area": o.area,
        "period": o.period,
        **o.breakdown,
        "value": rounded(o.value, decimals),
        "status": o.status,
        "conf_status": o.conf_status,
        "perturbed": o.perturbed,
    }
    if o.reason:
        item["reason"] = o.reason
    if o.interval is not None:
        item["interval"] = list(o.interval)
    if numerators:
        item["numerator"] = o.numerator
        item["denominator"] = o.denominator
    return item


def metadata(result: ReleasedResult, lang: Lang) -> dict[str, Any]:
    """What a data user needs to cite and judge the numbers: release, method, p-tables, tier.

    The same for every answer of one indicator, release, tier and language, so it is worked out once
    and shared: callers copy the top level (`{**metadata(...), ...}`) and change nothing inside."""
    key = (result.indicator.code, result.release.id, result.tier, result.method, result.ptable, lang)
    held = _described.get(key)
    # The indicator and release objects are the reference snapshot's: a new snapshot, a new entry.
    if held is not None and held[0] is result.indicator and held[1] is result.release:
        return held[2]
    if len(_described) >= MAX_DESCRIBED:
        _described.clear()
    described = _describe(result, lang)
    _described[key] = (result.indicator, result.release, described)
    return described


MAX_DESCRIBED: Final = 4096
_described: dict[tuple[str, str, str, str, str | None, Lang], tuple[Indicator, Release, dict[str, Any]]] = {}


def _describe(result: ReleasedResult, lang: Lang) -> dict[str, Any]:
    indicator = result.indicator
    described: dict[str, Any] = {
        "indicator": {
            "code": indicator.code,
            "name": indicator_name(indicator, lang),
            "unit": indicator_unit(indicator, lang),
            "decimals": indicator.decimals,
            "href": f"/v1/indicators/{indicator.code}",
        },
        "release": {
            "id": result.release.id,
            "kind": result.release.kind,
            "created_at": result.release.created_at.isoformat(),
            "synthetic": result.release.synthetic,
            "href": f"/v1/releases/{result.release.id}",
        },
        "tier": result.tier.value,
        "disclosure": {"method": result.method, "ptable": result.ptable},
    }
    if result.release.synthetic:
        described["release"]["note"] = SYNTHETIC_NOTE[lang]
    return described
