"""Cell-key perturbation of atoms and the benchmarking of invariants: the properties DESIGN.md promises."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.privacy.cellkey import BENCHMARK_FLOOR, benchmark, measure_salt, perturb
from app.privacy.lattice import ATOM_SETS, LATTICES, AreaGrain
from app.privacy.ptable import PTABLE_DIR, default_ptable, generate_ptable, sensitive_ptable
from app.releases.builder import KEY_MODULUS
from auth.principal import Tier

POPULATION = ATOM_SETS["population.sex.age5.month"]
USERS = ATOM_SETS["contraceptive_users.group.age3.year"]

counts = st.lists(st.integers(0, 5000), min_size=1, max_size=200)


@given(counts, st.integers(0, KEY_MODULUS - 1), st.integers(0, KEY_MODULUS - 1))
@settings(max_examples=200)
def test_published_atoms_are_never_one_or_two_and_true_zeros_stay_zero(
    true: list[int], key_seed: int, salt: int
) -> None:
    values = np.array(true, dtype=np.int64)
    keys = (np.arange(len(true), dtype=np.int64) * 2_654_435_761 + key_seed) % KEY_MODULUS
    for atoms, bound in ((POPULATION, 4), (USERS, 5)):
        published, _ = perturb(atoms, values, keys, salt)
        assert not np.isin(published, [1, 2]).any()
        assert (published[values == 0] == 0).all()
        assert (published >= 0).all()
        assert (np.abs(published - values) <= bound).all()


def test_noise_has_zero_mean_and_the_design_variance_over_keys() -> None:
    """Over uniformly spread cell keys, a large count's noise averages 0 with variance V."""
    keys = np.arange(200_000, dtype=np.int64) * (KEY_MODULUS // 200_000)
    true = np.full(keys.shape, 1000, dtype=np.int64)
    for atoms, variance in ((POPULATION, 2.0), (USERS, 3.0)):
        noise = perturb(atoms, true, keys, 0)[0] - true
        assert abs(noise.mean()) < 0.01
        assert noise.var() == pytest.approx(variance, rel=0.01)


def test_the_same_records_give_the_same_noise_and_salts_separate_measures() -> None:
    true = np.array([7, 7, 40], dtype=np.int64)
    keys = np.array([123_456, 123_456, 99], dtype=np.int64)
    published, cell_keys = perturb(POPULATION, true, keys, measure_salt(b"secret", "population"))
    assert published[0] == published[1]
    assert cell_keys[0] == cell_keys[1]
    assert measure_salt(b"secret", "population") != measure_salt(b"secret", "deaths")
    assert measure_salt(b"secret", "population") != measure_salt(b"another", "population")


def test_benchmarking_makes_groups_add_up_with_unit_steps_on_large_atoms() -> None:
    rng = np.random.default_rng(3)
    true = rng.integers(0, 200, size=600).astype(np.int64)
    keys = rng.integers(0, KEY_MODULUS, size=600).astype(np.int64)
    group = np.repeat(np.arange(6), 100).astype(np.int64)
    published, cell_keys = perturb(POPULATION, true, keys, 0)
    adjusted, exact = benchmark(published, true, cell_keys, group)
    assert exact.all()
    for g in range(6):
        assert adjusted[group == g].sum() == true[group == g].sum()
    moved = adjusted != published
    assert (np.abs(adjusted - published) <= 1).all()  # the gaps are small: one pass of +-1 steps
    assert (published[moved] >= BENCHMARK_FLOOR).all()
    again, _ = benchmark(published, true, cell_keys, group)
    assert (again == adjusted).all()  # deterministic


def test_a_group_of_small_atoms_cannot_be_benchmarked_and_says_so() -> None:
    true = np.array([1, 2, 0, 1, 50, 60], dtype=np.int64)
    published = np.array([3, 0, 0, 0, 53, 62], dtype=np.int64)  # group 0 lacks 1; group 1 has 5 too many
    group = np.array([0, 0, 0, 0, 1, 1], dtype=np.int64)
    adjusted, exact = benchmark(published, true, np.arange(6, dtype=np.int64), group)
    assert exact.tolist() == [False, True]
    assert adjusted[:4].tolist() == [3, 0, 0, 0]  # nothing >= 20 to move
    assert adjusted[4:].sum() == 110


def test_shipped_p_tables_are_the_generated_ones() -> None:
    for table, parameters in ((default_ptable(), (4, 2.0, 2, 0.5)), (sensitive_ptable(), (5, 3.0, 2, 0.5))):
        assert table == generate_ptable(*parameters)
        assert (PTABLE_DIR / f"{table.version}.csv").exists()


def test_every_tier_has_atoms_for_every_base_measure_and_sensitive_sets_use_the_wider_table() -> None:
    measures = {"population", "households", "married_women", "contraceptive_users", "births", "deaths"}
    measures |= {"in_migrants", "out_migrants", "marriages", "divorces"}
    for tier in (Tier.PUBLIC, Tier.DEPARTMENT):
        assert {a.measure.name for a in LATTICES[tier]} == measures
    assert all(a.measure.sensitive == (a.measure.name == "contraceptive_users") for a in ATOM_SETS.values())
    assert all(a.invariant is None for a in ATOM_SETS.values() if a.area is AreaGrain.EVERY_AREA)
