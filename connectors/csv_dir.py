"""The `csv` connector: a directory of canonical register CSVs plus its manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from app.releases.validation import RegisterFormatError, SourceRegister
from connectors.base import parse_table
from connectors.canonical import TABLES

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Manifest:
    """`manifest.json`: which geography the codes are in and which period the files cover."""

    geography: str
    reference_date: date
    end_date: date
    synthetic: bool = False
    description: str = ""

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                geography=str(raw["geography"]),
                reference_date=date.fromisoformat(raw["reference_date"]),
                end_date=date.fromisoformat(raw["end_date"]),
                synthetic=bool(raw.get("synthetic", False)),
                description=str(raw.get("description", "")),
            )
        except FileNotFoundError:
            raise RegisterFormatError(
                f"{path} is missing; it names the geography, reference_date and end_date of the files"
            ) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise RegisterFormatError(f"{path} is not valid: {exc}") from None

    def write(self, directory: Path) -> None:
        payload = {
            "geography": self.geography,
            "reference_date": self.reference_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "synthetic": self.synthetic,
            "description": self.description,
        }
        (directory / MANIFEST).write_text(
            json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )


def read_text_table(path: Path, table: str) -> pl.DataFrame:
    """All columns as text; the header must be the canonical one, the encoding UTF-8."""
    try:
        with path.open("rb") as handle:
            header = handle.readline().decode("utf-8-sig").strip()
    except FileNotFoundError:
        raise RegisterFormatError(
            f"{path} is missing; a register directory holds {', '.join(TABLES)}"
        ) from None
    except UnicodeDecodeError:
        raise RegisterFormatError(f"{path} is not UTF-8 text (save it as UTF-8)") from None
    expected = ",".join(TABLES[table])
    if header != expected:
        raise RegisterFormatError(f"{path.name}: header is '{header[:200]}', expected '{expected}'")
    try:
        return pl.read_csv(path, infer_schema=False, encoding="utf8")
    except pl.exceptions.ComputeError as exc:
        raise RegisterFormatError(
            f"{path.name} cannot be read as UTF-8 CSV: {str(exc).splitlines()[0]}"
        ) from None


@dataclass(frozen=True)
class CsvDirectoryConnector:
    directory: Path
    name: str = "csv"

    def describe(self) -> str:
        return str(self.directory.resolve())

    async def read(self) -> SourceRegister:
        manifest = Manifest.read(self.directory)
        frames = {t: parse_table(t, read_text_table(self.directory / f"{t}.csv", t)) for t in TABLES}
        return SourceRegister(
            households=frames["households"],
            persons=frames["persons"],
            events=frames["events"],
            reference_date=manifest.reference_date,
            end_date=manifest.end_date,
            geography=manifest.geography,
            synthetic=manifest.synthetic,
        )


def write_register(directory: Path, source: SourceRegister) -> None:
    """Write canonical CSVs and the manifest (the demo's `--export`)."""
    directory.mkdir(parents=True, exist_ok=True)
    for table, frame in (
        ("households", source.households),
        ("persons", source.persons),
        ("events", source.events),
    ):
        frame.select(TABLES[table]).write_csv(directory / f"{table}.csv", date_format="%Y-%m-%d")
    Manifest(
        source.geography, source.reference_date, source.end_date, source.synthetic, "synthetic demo register"
    ).write(directory)
