"""The indicator catalogue: the official population indicators and the series the portal derives."""

from __future__ import annotations

from typing import Any

from app.errors import InvalidParameter
from app.models import Indicator
from app.repositories.indicators import IndicatorRepository
from app.text import fold

TOPIC_LABELS = {
    "population": ("Quy mô và cơ cấu dân số", "Population size and structure"),
    "households": ("Hộ dân cư", "Households"),
    "fertility": ("Sinh", "Fertility"),
    "mortality": ("Chết", "Mortality"),
    "migration": ("Di cư", "Migration"),
    "marriage": ("Kết hôn và ly hôn", "Marriage and divorce"),
    "family_planning": ("Kế hoạch hóa gia đình", "Family planning"),
}


def indicator_fields(indicator: Indicator, lang: str) -> dict[str, Any]:
    """An indicator as REST and GraphQL both show it, with names and unit in `lang`."""
    vi = lang == "vi"
    return {
        "code": indicator.code,
        "official_code": indicator.official_code,
        "name": indicator.name_vi if vi else indicator.name_en,
        "unit": indicator.unit_vi if vi else indicator.unit_en,
        "decimals": indicator.decimals,
        "topic": indicator.topic,
        "topic_label": TOPIC_LABELS.get(indicator.topic, (indicator.topic, indicator.topic))[0 if vi else 1],
        "dimensions": [d for d in indicator.dimensions.split(",") if d],
        "periodicity": indicator.periodicity.split(","),
        "supported": indicator.supported,
    }


def official_fields(indicator: Indicator) -> dict[str, str]:
    """The entry of the official indicator system an indicator implements."""
    return {
        "code": indicator.official_code,
        "name_vi": indicator.official_name_vi,
        "name_en": indicator.official_name_en,
        "definition": indicator.definition,
        "disaggregations": indicator.official_disaggregations,
        "periodicity": indicator.official_periodicity,
        "legal_basis": indicator.legal_basis,
        "source": indicator.source,
    }


class IndicatorService:
    def __init__(self, repository: IndicatorRepository) -> None:
        self.repository = repository

    async def list_indicators(self, q: str | None, topic: str | None) -> list[Indicator]:
        if topic is not None and topic not in await self.repository.topics():
            known = ", ".join(await self.repository.topics())
            raise InvalidParameter(f"topic '{topic}' does not exist; known topics: {known}")
        indicators = list(await self.repository.list_indicators(topic))
        if q:
            # The catalogue has a few dozen entries: matching in Python keeps accents and both languages simple.
            needle = fold(q)
            indicators = [i for i in indicators if needle in _haystack(i)]
        return indicators


def _haystack(indicator: Indicator) -> str:
    return fold(" ".join((indicator.code, indicator.name_vi, indicator.name_en)))
