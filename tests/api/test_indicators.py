"""The indicator catalogue through HTTP."""

from __future__ import annotations

import csv
from pathlib import Path

import httpx

OFFICIAL = (
    Path(__file__).parents[2] / "connectors" / "data" / "indicators" / "population_indicators_catalogue.csv"
)


async def test_every_official_indicator_is_in_the_catalogue(client: httpx.AsyncClient) -> None:
    with OFFICIAL.open(encoding="utf-8") as handle:
        official = {row["id"] for row in csv.DictReader(handle)}
    assert len(official) == 23
    items = (await client.get("/v1/indicators")).json()["items"]
    assert official == {i["official_code"] for i in items}
    supported = {i["official_code"] for i in items if i["supported"]}
    assert {"POP", "HH", "SR", "SRB", "CBR", "TFR", "CDR", "IMR", "NIR", "GR", "IR", "OR", "NMR"} <= supported
    assert {"CPR", "MAR", "DIV", "URB", "AGE"} <= supported


async def test_labels_follow_lang_and_accept_language(client: httpx.AsyncClient) -> None:
    vi = (await client.get("/v1/indicators/CBR")).json()
    assert vi["name"] == "Tỷ suất sinh thô"
    assert vi["unit"] == "‰"
    en = (await client.get("/v1/indicators/CBR", params={"lang": "en"})).json()
    assert en["name"] == "Crude birth rate"
    header = (
        await client.get("/v1/indicators/CBR", headers={"Accept-Language": "en-GB,en;q=0.9,vi;q=0.5"})
    ).json()
    assert header["name"] == "Crude birth rate"
    preferred_vi = (
        await client.get("/v1/indicators/CBR", headers={"Accept-Language": "en;q=0.4, vi"})
    ).json()
    assert preferred_vi["name"] == "Tỷ suất sinh thô"


async def test_detail_carries_formula_and_legal_basis(client: httpx.AsyncClient) -> None:
    tfr = (await client.get("/v1/indicators/tfr")).json()
    assert tfr["code"] == "TFR"
    assert tfr["decimals"] == 2
    assert "ASFR" in tfr["formula"]
    assert "02/2011/TT-BKHĐT" in tfr["official"]["legal_basis"]
    assert tfr["official"]["name_en"] == "Total fertility rate"


async def test_search_and_topic(client: httpx.AsyncClient) -> None:
    found = (await client.get("/v1/indicators", params={"q": "ty suat sinh tho"})).json()["items"]
    assert [i["code"] for i in found] == ["CBR"]
    fertility = (await client.get("/v1/indicators", params={"topic": "fertility"})).json()
    assert {"CBR", "TFR", "SRB", "ASFR"} <= {i["code"] for i in fertility["items"]}
    assert all(i["topic"] == "fertility" for i in fertility["items"])
