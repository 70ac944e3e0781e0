"""The `demo` connector: the synthetic register of connectors.demo_register, labelled synthetic."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date

from app.releases.validation import SourceRegister, source_from_frames
from connectors.demo_register import generate_register

END_DATE = date(2025, 6, 30)


@dataclass(frozen=True)
class DemoConnector:
    scale: float
    seed: int
    name: str = "demo"

    def describe(self) -> str:
        return f"synthetic demo register (Bắc Giang, Thanh Hóa; scale {self.scale:g}, seed {self.seed})"

    async def read(self) -> SourceRegister:
        register = await asyncio.to_thread(generate_register, self.scale, self.seed)
        frames = {"households": register.households, "persons": register.persons, "events": register.events}
        return source_from_frames(
            frames,
            reference_date=register.reference_date,
            end_date=END_DATE,
            geography=register.geography,
            synthetic=True,
        )


def demo_connector(scale: float, seed: int) -> DemoConnector:
    if not 0 < scale <= 2:
        raise ValueError("scale must be above 0 and at most 2 (1.0 = the real population, 5.4 million)")
    return DemoConnector(scale, seed)
