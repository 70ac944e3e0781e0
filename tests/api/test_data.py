"""`/v1/data` as data users call it: values equal the query service's released result in every format."""

from __future__ import annotations

import gzip
import io

import httpx
import pandas as pd
import pytest
from pyjstat import pyjstat

from app.db import create_engine, session_factory
from app.query.periods import parse_periods
from app.query.service import ObservationQuery, QueryService
from app.reference import read_snapshot
from auth.principal import Tier
from tests.conftest import settings_for


async def released(
    database: str, indicator: str, areas: tuple[str, ...], period: str, tier: Tier, by: tuple[str, ...] = ()
) -> list[tuple[str, str, dict[str, str], float | None, str, bool]]:
    """The query service's answer, through the privacy layer: what every route must agree with."""
    engine = create_engine(settings_for(database))
    try:
        async with session_factory(engine)() as session:
            query = ObservationQuery(indicator, "vn-2025-01", areas, tuple(parse_periods(period)), by=by)
            result = await QueryService(session, 10_000, await read_snapshot(session)).observations(
                query, tier
            )
    finally:
        await engine.dispose()
    return [
        (o.area, o.period, o.breakdown, o.value, o.status.value, o.perturbed) for o in result.observations
    ]


@pytest.fixture(scope="module")
async def expected(demo_database: str) -> list[tuple[str, str, dict[str, str], float | None, str, bool]]:
    return await released(demo_database, "POP", ("24", "38"), "2023,2024", Tier.PUBLIC, ("sex",))


async def test_json_observations_are_the_released_values(
    demo_client: httpx.AsyncClient,
    expected: list[tuple[str, str, dict[str, str], float | None, str, bool]],
) -> None:
    response = await demo_client.get(
        "/v1/data/POP", params={"area": "24,38", "period": "2023,2024", "by": "sex"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    got = [
        (o["area"], o["period"], {"sex": o["sex"]}, o["value"], o["status"], o["perturbed"])
        for o in body["items"]
    ]
    assert got == expected
    assert body["total"] == 8
    assert body["tier"] == "public"
    assert response.headers["x-portal-tier"] == "public"
    assert body["release"]["synthetic"] is True
    assert "synthetic" in body["release"]["note"]
    assert body["disclosure"]["ptable"] == "D4-V2-js2-ps0.5-v1"
    assert "cell-key" in body["disclosure"]["method"]
    assert body["indicator"]["href"] == "/v1/indicators/POP"
    # Male and female add up to the total of the same published atoms.
    total = await demo_client.get("/v1/data/POP", params={"area": "24", "period": "2024"})
    by_sex = [o["value"] for o in body["items"] if o["area"] == "24" and o["period"] == "2024"]
    assert total.json()["items"][0]["value"] == sum(by_sex)


async def test_csv_with_bom_reads_in_pandas_with_the_same_values(
    demo_client: httpx.AsyncClient,
    expected: list[tuple[str, str, dict[str, str], float | None, str, bool]],
) -> None:
    response = await demo_client.get(
        "/v1/data/POP",
        params={"area": "24,38", "period": "2023,2024", "by": "sex", "format": "csv", "bom": "true"},
    )
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith("\ufeff".encode())
    frame = pd.read_csv(io.BytesIO(response.content), encoding="utf-8-sig", dtype={"ma_dia_ban": str})
    assert list(frame["ma_dia_ban"]) == [e[0] for e in expected]
    assert list(frame["gia_tri"]) == [e[3] for e in expected]
    assert set(frame["gioi_tinh"]) == {"Nam", "Nữ"}
    assert frame["ten_dia_ban"].iloc[0] == "Tỉnh Bắc Giang"
    english = await demo_client.get(
        "/v1/data/POP", params={"area": "24", "period": "2024", "format": "csv", "lang": "en"}
    )
    assert english.text.splitlines()[0].startswith("area_code,area_name,period")


# pyjstat's own dataframe writer goes through a function it has deprecated itself.
@pytest.mark.filterwarnings("ignore:Shouldn't use this function anymore:DeprecationWarning")
async def test_jsonstat_reads_in_pyjstat_with_the_same_values(
    demo_client: httpx.AsyncClient,
    expected: list[tuple[str, str, dict[str, str], float | None, str, bool]],
) -> None:
    response = await demo_client.get(
        "/v1/data/POP",
        params={"area": "24,38", "period": "2023,2024", "by": "sex"},
        headers={"Accept": "application/json-stat+json"},
    )
    dataset = pyjstat.Dataset.read(response.text)
    frame = dataset.write("dataframe", naming="id")
    assert list(frame["value"]) == [e[3] for e in expected]
    assert list(frame["area"]) == [e[0] for e in expected]
    assert response.json()["size"] == [2, 2, 2]
    assert response.json()["dimension"]["area"]["category"]["label"]["38"] == "Tỉnh Thanh Hóa"


async def test_sdmx_csv_reads_in_pandas_with_sdmx_codes(
    demo_client: httpx.AsyncClient,
    expected: list[tuple[str, str, dict[str, str], float | None, str, bool]],
) -> None:
    response = await demo_client.get(
        "/v1/data/POP",
        params={"area": "24,38", "period": "2023,2024", "by": "sex"},
        headers={"Accept": "application/vnd.sdmx.data+csv; version=2.0.0"},
    )
    frame = pd.read_csv(io.BytesIO(response.content), dtype={"REF_AREA": str, "TIME_PERIOD": str})
    assert list(frame.columns[:3]) == ["STRUCTURE", "STRUCTURE_ID", "ACTION"]
    assert list(frame["OBS_VALUE"]) == [e[3] for e in expected]
    assert set(frame["SEX"]) == {"M", "F"}
    assert list(frame["OBS_STATUS"]) == [e[4] for e in expected]


async def test_rates_carry_numerators_and_reliability_flags(demo_client: httpx.AsyncClient) -> None:
    response = await demo_client.get(
        "/v1/data/CBR", params={"parent": "24", "level": "district", "period": "2023", "numerators": "true"}
    )
    items = response.json()["items"]
    assert len(items) == 10  # Bắc Giang's ten districts
    for item in items:
        assert item["value"] == round(item["numerator"] / item["denominator"] * 1000, 1)
        low = item["numerator"] < 20 or item["denominator"] < 100
        assert item["status"] == ("U" if low else "A")


async def test_a_repeated_parameter_counts_with_its_last_value(demo_client: httpx.AsyncClient) -> None:
    # As FastAPI reads a declared single-valued parameter; escapes decode as anywhere else.
    repeated = await demo_client.get("/v1/data/POP?area=24&period=2023&period=2024&lang=e%6E")
    last = await demo_client.get("/v1/data/POP?area=24&period=2024&lang=en")
    assert repeated.status_code == 200, repeated.text
    assert [i["period"] for i in repeated.json()["items"]] == ["2024"]
    assert repeated.json() == last.json()
    assert repeated.json()["indicator"]["name"] == "Population (end of period)"


async def test_pages_follow_next_until_null(demo_client: httpx.AsyncClient) -> None:
    seen, url = [], "/v1/data/POP?parent=24&level=district&period=2024&limit=4"
    while url:
        body = (await demo_client.get(url)).json()
        seen += [o["area"] for o in body["items"]]
        url = body["next"]
    assert len(seen) == 10 == len(set(seen))


@pytest.mark.parametrize(
    ("params", "status", "code", "needle"),
    [
        ({"indicator": "NOPE", "area": "24", "period": "2024"}, 404, "unknown-indicator", "NOPE"),
        ({"area": "99999", "period": "2024"}, 404, "unknown-area", "99999"),
        ({"area": "24", "period": "2024-13"}, 400, "invalid-parameter", "2024-13"),
        ({"area": "24", "period": "2030"}, 422, "unprocessable", "outside release"),
        ({"area": "24", "period": "2024", "by": "religion"}, 400, "invalid-parameter", "religion"),
        (
            {"indicator": "SRB", "area": "24", "period": "2024", "by": "age5"},
            422,
            "unprocessable",
            "no breakdown by age",
        ),
        ({"area": "24", "period": "2024", "geography": "vn-1999"}, 404, "unknown-geography", "vn-1999"),
        ({"area": "01", "period": "2024"}, 422, "unprocessable", "outside release"),
        ({"area": "24", "period": "2024", "sex": "other"}, 400, "invalid-parameter", "male, female"),
        ({"area": "24", "period": "2024", "age": "abc"}, 400, "invalid-parameter", "abc"),
        ({"area": "24", "period": "2024", "format": "xml"}, 400, "invalid-parameter", "format"),
        ({"period": "2024"}, 400, "invalid-parameter", "level"),
        (
            {"area": "24", "parent": "24", "level": "district", "period": "2024"},
            400,
            "invalid-parameter",
            "not both",
        ),
        ({"area": "24", "period": "2024", "cursor": "not-a-cursor"}, 400, "invalid-parameter", "cursor"),
        (
            {"area": "07201", "period": "2024", "age": "17"},
            422,
            "finer-than-published",
            "bands starting at 0,5,10",
        ),
        (
            {"indicator": "CBR", "area": "07201", "period": "2024-05"},
            422,
            "finer-than-published",
            "per quarter",
        ),
    ],
)
async def test_bad_requests_get_problems_that_name_the_problem(
    demo_client: httpx.AsyncClient, params: dict[str, str], status: int, code: str, needle: str
) -> None:
    indicator = params.pop("indicator", "POP")
    response = await demo_client.get(f"/v1/data/{indicator}", params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    assert needle in problem["detail"]


async def test_a_request_over_the_cell_cap_is_refused_with_the_limit(demo_database: str) -> None:
    from app.main import create_app
    from tests.conftest import serve

    async with serve(create_app(settings_for(demo_database, max_cells=50))) as http:
        response = await http.get(
            "/v1/data/POP", params={"parent": "24", "level": "commune", "period": "2024"}
        )
    assert response.status_code == 422
    problem = response.json()
    assert problem["limit"] == 50
    assert problem["cells"] > 50
    assert "bulk" in problem["detail"]


async def test_finer_requests_name_the_allowed_edges(demo_client: httpx.AsyncClient) -> None:
    response = await demo_client.get("/v1/data/POP", params={"area": "07201", "period": "2024", "age": "17"})
    allowed = response.json()["allowed"]
    assert allowed[0]["band_edges"]["age"][:4] == [0, 5, 10, 15]
    ok = await demo_client.get("/v1/data/POP", params={"area": "07201", "period": "2024", "age": "15-19"})
    assert ok.status_code == 200


async def test_etag_304_and_the_cache_answer_repeated_gets(demo_database: str) -> None:
    from app.main import create_app
    from tests.conftest import serve

    app = create_app(settings_for(demo_database, rate_limit_public="1000/minute"))
    async with serve(app) as http:
        store = app.state.response_store
        first = await http.get("/v1/data/TFR?area=24&period=2023")
        again = await http.get("/v1/data/TFR?period=2023&area=24")  # same question, other order
        assert first.headers["etag"] == again.headers["etag"]
        assert first.content == again.content
        assert store.hits == 1
        assert first.headers["cache-control"] == "public, max-age=60"
        unchanged = await http.get(
            "/v1/data/TFR?area=24&period=2023", headers={"If-None-Match": first.headers["etag"]}
        )
        assert unchanged.status_code == 304
        assert unchanged.content == b""
        other = await http.get("/v1/data/TFR?area=38&period=2023")
        assert other.headers["etag"] != first.headers["etag"]
        english = await http.get("/v1/data/TFR?area=24&period=2023", headers={"Accept-Language": "en"})
        assert english.headers["etag"] != first.headers["etag"]
        assert english.json()["indicator"]["name"] != first.json()["indicator"]["name"]


async def test_cached_answers_are_still_rate_limited(demo_database: str) -> None:
    from app.main import create_app
    from tests.conftest import serve

    app = create_app(settings_for(demo_database, rate_limit_public="3/minute", redis_url=None))
    async with serve(app) as http:
        statuses = [(await http.get("/v1/data/POP?area=24&period=2024")).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        assert app.state.response_store.hits == 2


async def bulk_rows(http: httpx.AsyncClient, url: str) -> pd.DataFrame:
    response = await http.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/gzip"
    return pd.read_csv(io.BytesIO(gzip.decompress(response.content)), dtype={"ma_dia_ban": str, "ky": str})


async def test_bulk_download_streams_every_publishable_cell(demo_client: httpx.AsyncClient) -> None:
    frame = await bulk_rows(demo_client, "/v1/bulk/CBR.csv.gz")
    # Public CBR: every area x year and quarter (births are published per quarter), none by month.
    assert {"2021", "2024", "2023-Q2"} <= set(frame["ky"])
    assert not any(len(p) == 7 and "-Q" not in p for p in frame["ky"])
    one = frame[(frame["ma_dia_ban"] == "213") & (frame["ky"] == "2023") & frame["gioi_tinh"].isna()]
    api = (await demo_client.get("/v1/data/CBR?area=213&period=2023")).json()["items"][0]
    assert one["gia_tri"].tolist() == [api["value"]]
    unknown = await demo_client.get("/v1/bulk/NOPE.csv.gz")
    assert unknown.status_code == 404


async def test_periods_catalog_and_availability(demo_client: httpx.AsyncClient) -> None:
    periods = (await demo_client.get("/v1/periods")).json()
    assert periods["year"] == ["2021", "2022", "2023", "2024"]
    assert periods["quarter"][-1] == "2025-Q2"
    catalog = (await demo_client.get("/v1/catalog")).json()
    assert catalog["@type"] == "dcat:Catalog"
    codes = {d["dct:identifier"] for d in catalog["dcat:dataset"]}
    assert {"POP", "TFR", "CPR"} <= codes
    tfr = (await demo_client.get("/v1/indicators/TFR")).json()["availability"]
    assert tfr["areas"]["vn-2025-01"] == {
        "province": 2,
        "district": 36,
        "commune": tfr["areas"]["vn-2025-01"]["commune"],
    }
    assert any("mother_age" in d and "province" in d for d in tfr["detail"]["public"])


@pytest.fixture
async def department_key(demo_database: str, capsys: pytest.CaptureFixture[str]) -> str:
    from tests.auth.support import cli, client, department

    settings = settings_for(demo_database)
    system = await client(settings, capsys, await department(settings, capsys))
    key = await cli(["keys", "create", "--client", system["client_id"]], settings, capsys)
    api_key: str = key["api_key"]
    return api_key


async def test_a_department_key_reaches_single_years_the_public_cannot(
    demo_client: httpx.AsyncClient, demo_database: str, department_key: str
) -> None:
    params = {"area": "07201", "period": "2024", "age": "17"}
    public = await demo_client.get("/v1/data/POP", params=params)
    assert public.status_code == 422
    response = await demo_client.get("/v1/data/POP", params=params, headers={"X-API-Key": department_key})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tier"] == "department"
    assert response.headers["cache-control"] == "private, max-age=60"
    expected = await released(demo_database, "POP", ("07201",), "2024", Tier.DEPARTMENT)
    assert body["items"][0]["value"] is not None
    assert body["items"][0]["conf_status"] == "N"
    # The department's total of the commune is a sum of its (finer) atoms, released for its tier.
    total = await demo_client.get(
        "/v1/data/POP?area=07201&period=2024", headers={"X-API-Key": department_key}
    )
    assert total.json()["items"][0]["value"] == expected[0][3]
