"""The indicator catalogue: the official population indicators and the series the portal derives."""

from __future__ import annotations

from app.errors import InvalidParameter, UnknownIndicator
from app.models import Indicator
from app.repositories.indicators import IndicatorRepository
from app.text import fold


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

    async def require_indicator(self, code: str) -> Indicator:
        indicator = await self.repository.get_indicator(code.upper())
        if indicator is None:
            raise UnknownIndicator(f"no indicator with code '{code}'; list them at /v1/indicators")
        return indicator


def _haystack(indicator: Indicator) -> str:
    return fold(" ".join((indicator.code, indicator.name_vi, indicator.name_en)))
