"""CSV, JSON-stat 2.0 and SDMX-CSV 2.0 renderings of a released result."""

from __future__ import annotations

import csv
import io
from typing import Any, Final

import orjson

from app.formats.observations import Lang, indicator_name, indicator_unit, metadata, rounded, rows
from app.services.data import LabelledResult

CSV_COLUMNS: Final = {
    "vi": (
        "ma_dia_ban", "ten_dia_ban", "ky", "gioi_tinh", "nhom_tuoi", "gia_tri", "don_vi",
        "trang_thai", "bao_mat", "nhieu", "ghi_chu", "tu_so", "mau_so",
    ),
    "en": (
        "area_code", "area_name", "period", "sex", "age", "value", "unit",
        "status", "conf_status", "perturbed", "note", "numerator", "denominator",
    ),
}  # fmt: skip


def _csv_text(lines: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180
    writer.writerows(lines)
    return buffer.getvalue()


def render_csv(labelled: LabelledResult, lang: Lang, bom: bool = False, header: bool = True) -> bytes:
    """One row per observation, labels in `lang`; the BOM makes Excel read UTF-8 (Vietnamese) right."""
    indicator = labelled.result.indicator
    unit = indicator_unit(indicator, lang)
    lines: list[list[Any]] = [list(CSV_COLUMNS[lang])] if header else []
    for row in rows(labelled, lang):
        o = row.observation
        lines.append(
            [
                o.area,
                row.area_name,
                o.period,
                row.sex_label or "",
                o.breakdown.get("age", ""),
                "" if o.value is None else rounded(o.value, indicator.decimals),
                unit,
                o.status.value,
                o.conf_status.value,
                "1" if o.perturbed else "0",
                o.reason or "",
                "" if o.numerator is None else o.numerator,
                "" if o.denominator is None else o.denominator,
            ]
        )
    text = _csv_text(lines)
    return ("\ufeff" if bom else "").encode() + text.encode()


def render_jsonstat(labelled: LabelledResult, lang: Lang) -> bytes:
    """A JSON-stat 2.0 dataset: dimensions area x period (x sex x age when broken down), row-major."""
    result, observations = labelled.result, labelled.result.observations
    indicator = result.indicator
    ids = ["area", "period"] + [d for d in ("sex", "age") if any(d in o.breakdown for o in observations)]
    categories: dict[str, list[str]] = {d: [] for d in ids}
    for o in observations:
        for d in ids:
            value = o.area if d == "area" else o.period if d == "period" else o.breakdown.get(d, "")
            if value not in categories[d]:
                categories[d].append(value)
    position = {d: {c: i for i, c in enumerate(cats)} for d, cats in categories.items()}
    size = [len(categories[d]) for d in ids]
    total = 1
    for n in size:
        total *= n
    values: list[float | None] = [None] * total
    status: dict[str, str] = {}
    for o in observations:
        index = 0
        for d in ids:
            value = o.area if d == "area" else o.period if d == "period" else o.breakdown.get(d, "")
            index = index * len(categories[d]) + position[d][value]
        values[index] = rounded(o.value, indicator.decimals)
        status[str(index)] = o.status.value
    vi = lang == "vi"
    labels = {
        "area": "Địa bàn" if vi else "Area",
        "period": "Kỳ" if vi else "Period",
        "sex": "Giới tính" if vi else "Sex",
        "age": "Nhóm tuổi" if vi else "Age",
    }
    names = {code: area.name for code, area in labelled.areas.items()}
    sex_names = {"male": "Nam" if vi else "Male", "female": "Nữ" if vi else "Female"}
    dimension: dict[str, Any] = {}
    for d in ids:
        label_of = names if d == "area" else sex_names if d == "sex" else {}
        dimension[d] = {
            "label": labels[d],
            "category": {
                "index": position[d],
                "label": {c: label_of.get(c, c) for c in categories[d]},
            },
        }
    dataset = {
        "version": "2.0",
        "class": "dataset",
        "label": indicator_name(indicator, lang),
        "source": "Population data portal" if not vi else "Cổng dữ liệu dân số",
        "updated": result.release.created_at.date().isoformat(),
        "id": ids,
        "size": size,
        "dimension": dimension,
        "value": values,
        "status": status,
        "extension": {**metadata(result, lang), "unit": indicator_unit(indicator, lang)},
        "note": [f"OBS_STATUS: A normal, U low reliability, Q suppressed, O missing. {result.method}."],
    }
    return orjson.dumps(dataset)


SDMX_SEX: Final = {"male": "M", "female": "F", None: "_T"}


def render_sdmx_csv(labelled: LabelledResult) -> bytes:
    """SDMX-CSV 2.0: one row per observation of the portal's dataflow, SDMX codes for sex and flags."""
    result = labelled.result
    indicator = result.indicator
    header = [
        "STRUCTURE", "STRUCTURE_ID", "ACTION", "INDICATOR", "REF_AREA", "TIME_PERIOD", "SEX", "AGE",
        "OBS_VALUE", "OBS_STATUS", "CONF_STATUS", "UNIT_MEASURE", "PERTURBED",
    ]  # fmt: skip
    lines: list[list[Any]] = [header]
    for o in result.observations:
        lines.append(
            [
                "dataflow",
                "VN_DANSO:POPULATION_INDICATORS(1.0)",
                "I",
                indicator.code,
                o.area,
                o.period,
                SDMX_SEX[o.breakdown.get("sex")],
                o.breakdown.get("age", "_T"),
                "" if o.value is None else rounded(o.value, indicator.decimals),
                o.status.value,
                o.conf_status.value,
                indicator.unit_en,
                "true" if o.perturbed else "false",
            ]
        )
    return _csv_text(lines).encode()
