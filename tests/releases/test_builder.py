"""Record keys and the key sums the builder keeps beside each count (the cell-key method's input)."""

from __future__ import annotations

import hmac

import numpy as np

from app.cube import BIRTHS, DEATHS, POPULATION
from app.releases.builder import KEY_MODULUS, OFFSETS, AreaMapping, ReleaseBuilder, record_keys
from app.releases.validation import validate_register
from tests.registers import COMMUNE_C, WARD_A, WARD_B, small_register

SECRET = b"test-privacy-secret-not-for-production"


def test_record_keys_are_hmac_sha256_cut_to_31_bits() -> None:
    ids = ["P1", "P2", "người-3", "x" * 200]
    expected = [
        int.from_bytes(hmac.digest(SECRET, i.encode(), "sha256")[:4], "big") & 0x7FFFFFFF for i in ids
    ]
    assert record_keys(SECRET, ids).tolist() == expected
    long_secret = b"s" * 100  # longer than SHA-256's block: hashed first, as RFC 2104 says
    assert record_keys(long_secret, ["P1"]).tolist() == [
        int.from_bytes(hmac.digest(long_secret, b"P1", "sha256")[:4], "big") & 0x7FFFFFFF
    ]
    assert record_keys(b"another secret", ids).tolist() != expected


def test_key_sums_add_the_keys_of_the_counted_records() -> None:
    source = small_register()
    communes = sorted({WARD_A, WARD_B, COMMUNE_C})
    register = validate_register(source, set(communes)).register
    mapping = AreaMapping("vn-2025-01", "commune", communes, np.arange(len(communes), dtype=np.int64))
    cubes = [m.areas[0] for m in ReleaseBuilder(register, communes, SECRET).build([mapping])]
    january = next(c for c in cubes if c.month == 2024 * 12)
    # Ward B at the end of January 2024: P5 (male, 25) and P6 (female, 24); P10 (male, 53).
    b = communes.index(WARD_B)
    population = january.counts[b, OFFSETS["population"] : OFFSETS["population"] + POPULATION.size].reshape(
        2, -1
    )
    sums = january.keysums[b, OFFSETS["population"] : OFFSETS["population"] + POPULATION.size].reshape(2, -1)
    assert population[0, 25] == 1
    assert population[0, 53] == 1
    assert population[1, 24] == 1
    keys = dict(zip(["P5", "P6", "P10"], record_keys(SECRET, ["P5", "P6", "P10"]).tolist(), strict=True))
    assert sums[0, 25] == keys["P5"] % KEY_MODULUS
    assert sums[1, 24] == keys["P6"]
    assert sums.sum() % KEY_MODULUS == (keys["P5"] + keys["P6"] + keys["P10"]) % KEY_MODULUS


def test_ages_at_events_are_completed_years_on_the_event_day() -> None:
    source = small_register()
    communes = sorted({WARD_A, WARD_B, COMMUNE_C})
    register = validate_register(source, set(communes)).register
    mapping = AreaMapping("vn-2025-01", "commune", communes, np.arange(len(communes), dtype=np.int64))
    cubes = {m.month: m.areas[0] for m in ReleaseBuilder(register, communes, SECRET).build([mapping])}
    # P4, born 1940-02-01, dies 2024-06-20: 84 (a June date must not compare as earlier than February).
    deaths = cubes[2024 * 12 + 5].counts[communes.index(WARD_A), OFFSETS["deaths"] :][: DEATHS.size]
    assert deaths.reshape(DEATHS.shape)[1, 84] == 1
    assert deaths.sum() == 1
    # N2 born 2024-12-01 to P7, born 1985-11-30: the mother is 39.
    births = cubes[2024 * 12 + 11].counts[communes.index(COMMUNE_C), OFFSETS["births"] :][: BIRTHS.size]
    assert births.reshape(BIRTHS.shape)[1, 39, 2] == 1
    assert births.sum() == 1
