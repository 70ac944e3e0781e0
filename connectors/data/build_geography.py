"""Rebuild the geography code-list CSVs from the vietnam-provinces wheels and GSO's conversion table."""

from __future__ import annotations

import argparse
import csv
import json
import unicodedata
import zipfile
from pathlib import Path
from typing import Any

JSON_IN_WHEEL = "vietnam_provinces/data/nested-divisions.json"
COLUMNS = ("code", "level", "parent_code", "name", "short_name", "unit_type")
WIDTH = {"province": 2, "district": 3, "commune": 5}
# Name prefix -> unit_type, per level; the 0.6.0 JSON's division_type is one constant per level, so
# the type is read from the name.
PREFIXES: dict[str, tuple[tuple[str, str], ...]] = {
    "province": (("Tỉnh", "tỉnh"), ("Thành phố", "thành phố trung ương")),
    "district": (("Thành phố", "thành phố"), ("Thị xã", "thị xã"), ("Quận", "quận"), ("Huyện", "huyện")),
    "commune": (("Thị trấn", "thị trấn"), ("Phường", "phường"), ("Xã", "xã"), ("Đặc khu", "đặc khu")),
}
EXPECTED = {"vn-2025-01": (63, 696, 10051), "vn-2025-07": (34, 0, 3321)}

Row = tuple[str, str, str, str, str, str]


def unit(level: str, code: int, parent: str, raw_name: str, division_type: str | None = None) -> Row:
    """One CSV row; division_type (2025 data) supplies the type word when the name lacks it."""
    name = " ".join(raw_name.split())
    for prefix, unit_type in PREFIXES[level]:
        if name.casefold().startswith(prefix.casefold() + " "):
            if division_type is not None and division_type != unit_type:
                raise ValueError(f"{name!r}: name says {unit_type!r}, data says {division_type!r}")
            return (str(code).zfill(WIDTH[level]), level, parent, name, name[len(prefix) + 1 :], unit_type)
    words = {t: p for p, t in PREFIXES[level]}
    if division_type not in words:
        raise ValueError(f"no unit type for {level} {name!r}")
    return unit(level, code, parent, f"{words[division_type]} {name}", division_type)


def read_json(wheel_dir: Path, version: str) -> list[dict[str, Any]]:
    wheels = sorted(wheel_dir.glob(f"vietnam_provinces-{version}-*.whl"))
    if not wheels:
        raise SystemExit(f"no vietnam_provinces-{version} wheel in {wheel_dir}")
    with zipfile.ZipFile(wheels[0]) as whl:
        data: list[dict[str, Any]] = json.loads(whl.read(JSON_IN_WHEEL))
    return data


def rows_2025_01(provinces: list[dict[str, Any]]) -> list[Row]:
    rows: list[Row] = []
    for p in provinces:
        prov = unit("province", p["code"], "", p["name"])
        rows.append(prov)
        for d in p["districts"]:
            dist = unit("district", d["code"], prov[0], d["name"])
            rows.append(dist)
            rows.extend(unit("commune", w["code"], dist[0], w["name"]) for w in d["wards"])
    return rows


def _folded(name: str) -> str:
    text = unicodedata.normalize("NFD", name.replace("đ", "d").replace("Đ", "D"))
    return " ".join("".join(c for c in text if not unicodedata.combining(c)).lower().split())


def rows_2025_07(provinces: list[dict[str, Any]], crosswalk: Path) -> list[Row]:
    """Communes with the codes of GSO's official conversion table.

    The 2025.10.1 package holds the draft decision's list, whose codes differ from the official table
    for about 120 communes; its names and types are used where code and name agree with the table.
    """
    package: dict[str, Row] = {}
    rows: list[Row] = []
    for p in provinces:
        prov = unit("province", p["code"], "", p["name"], p["division_type"])
        rows.append(prov)
        for w in p["wards"]:
            row = unit("commune", w["code"], prov[0], w["name"], w["division_type"])
            package[row[0]] = row
    seen: set[str] = set()
    with crosswalk.open(encoding="utf-8", newline="") as f:
        for record in csv.DictReader(f):
            code = record["new_ward_code"]
            if code in seen:
                continue
            seen.add(code)
            name = " ".join(unicodedata.normalize("NFC", record["new_ward_name"]).split())
            if name.startswith("Xa "):  # one typo in the table
                name = "Xã " + name[3:]
            known = package.get(code)
            if known is not None and _folded(known[3]) == _folded(name):
                rows.append((known[0], known[1], record["new_province_code"], known[3], known[4], known[5]))
            else:
                rows.append(unit("commune", int(code), record["new_province_code"], name))
    return rows


def write(path: Path, rows: list[Row], key: str) -> None:
    counts = tuple(sum(r[1] == level for r in rows) for level in WIDTH)
    if counts != EXPECTED[key] or len({r[0] + r[1] for r in rows}) != len(rows):
        raise SystemExit(f"{key}: unexpected counts {counts} or duplicate codes")
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    print(f"{path}: {len(rows)} rows {dict(zip(WIDTH, counts, strict=True))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("wheel_dir", type=Path, help="directory holding both vietnam_provinces wheels")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "geography")
    args = parser.parse_args()
    wheel_dir: Path = args.wheel_dir
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    write(out / "units_vn-2025-01.csv", rows_2025_01(read_json(wheel_dir, "0.6.0")), "vn-2025-01")
    crosswalk = out / "crosswalk_old_ward_to_new_ward_2025.csv"
    write(
        out / "units_vn-2025-07.csv", rows_2025_07(read_json(wheel_dir, "2025.10.1"), crosswalk), "vn-2025-07"
    )


if __name__ == "__main__":
    main()
