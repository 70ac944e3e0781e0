"""The p-tables keep zeros, never publish 1..js or negatives, have zero mean and variance V, and maximise entropy."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from app.privacy.ptable import (
    CSV_COLUMNS,
    PTable,
    allowed_noise,
    default_ptable,
    generate_ptable,
    perturbation,
    sensitive_ptable,
)

NAMED_TABLES = pytest.mark.parametrize(
    "make_table", [default_ptable, sensitive_ptable], ids=["default", "sensitive"]
)
MOMENT_TOLERANCE = (
    1e-12  # the Newton solve stops at a few ulps; 1e-12 leaves room for the ub - lb restatement
)
ROUNDING = 1e-15


def classes(table: PTable) -> range:
    return range(table.i_max + 1)


def mean(v: NDArray[np.int64], p: NDArray[np.float64]) -> float:
    return float(v @ p)


def variance(v: NDArray[np.int64], p: NDArray[np.float64]) -> float:
    return float(v**2 @ p) - mean(v, p) ** 2


def entropy(p: NDArray[np.float64]) -> float:
    positive = p[p > 0]
    return float(-(positive * np.log(positive)).sum())


def p_stay(table: PTable, i: int) -> float:
    v, p = table.row(i)
    return float(p[v == 0].sum())


def stay_bound_binds(table: PTable, i: int) -> bool:
    return i > 0 and table.max_p_stay is not None and abs(p_stay(table, i) - table.max_p_stay) <= ROUNDING


def test_named_tables_have_the_design_parameters() -> None:
    default, sensitive = default_ptable(), sensitive_ptable()
    assert (default.D, default.V, default.js, default.i_max) == (4, 2.0, 2, 7)
    assert (sensitive.D, sensitive.V, sensitive.js, sensitive.i_max) == (5, 3.0, 2, 8)
    assert default.version == "D4-V2-js2-ps0.5-v1"
    assert sensitive.version == "D5-V3-js2-ps0.5-v1"
    assert default_ptable() is default  # cached: generated once per process
    assert generate_ptable(4, 2, 2) == default


@NAMED_TABLES
def test_true_zero_stays_zero(make_table: Callable[[], PTable]) -> None:
    v, p = make_table().row(0)
    assert v.tolist() == [0]
    assert p.tolist() == [1.0]


@NAMED_TABLES
def test_published_values_are_never_negative_nor_in_one_to_js(make_table: Callable[[], PTable]) -> None:
    table = make_table()
    for i in range(table.i_max + 5):  # past i_max the last row applies
        v, _ = table.row(i)
        published = i + v
        assert np.all(published >= 0)
        assert not np.any((published >= 1) & (published <= table.js)), i
        if i > 0:
            assert set(v.tolist()) <= set(allowed_noise(i, table.D, table.js).tolist())


@NAMED_TABLES
def test_every_row_has_zero_mean(make_table: Callable[[], PTable]) -> None:
    table = make_table()
    for i in classes(table):
        assert abs(mean(*table.row(i))) < MOMENT_TOLERANCE, i


@NAMED_TABLES
def test_every_row_reaches_the_variance_and_none_exceeds_it(make_table: Callable[[], PTable]) -> None:
    # For both named tables every row i >= 1 reaches V exactly (rows 1 and 2 of the default table
    # are forced there, see below); the "at most V" case is exercised on a table that needs it.
    table = make_table()
    assert variance(*table.row(0)) == 0
    for i in range(1, table.i_max + 1):
        assert variance(*table.row(i)) == pytest.approx(table.V, abs=MOMENT_TOLERANCE), i


def test_default_rows_one_and_two_are_forced_onto_two_values() -> None:
    # A true 1 or 2 must publish 0 or >= 3; with mean 0 the least variance is i(js + 1 - i) = 2 = V,
    # so exactly one distribution is feasible and the table uses it.
    table = default_ptable()
    v, p = table.row(1)
    assert v.tolist() == [-1, 2]
    assert p == pytest.approx([2 / 3, 1 / 3], abs=ROUNDING)
    v, p = table.row(2)
    assert v.tolist() == [-2, 1]
    assert p == pytest.approx([1 / 3, 2 / 3], abs=ROUNDING)


def test_rows_whose_support_is_cut_may_stay_below_the_variance() -> None:
    # Zero mean is kept in every row; where the cut support makes V costlier than maximum entropy
    # wants, the variance stays below V (Destatis ptable, optim = 1), never above.
    table = generate_ptable(D=4, V=6.0, js=0, max_p_stay=None)
    variances = [variance(*table.row(i)) for i in range(1, table.i_max + 1)]
    assert all(value < table.V for value in variances[:-1])
    assert variances[-1] == pytest.approx(table.V, abs=MOMENT_TOLERANCE)
    for i in classes(table):
        assert abs(mean(*table.row(i))) < MOMENT_TOLERANCE


@NAMED_TABLES
def test_noise_is_bounded_by_d_and_the_last_row_uses_all_of_it(make_table: Callable[[], PTable]) -> None:
    table = make_table()
    assert np.all(np.abs(table.v) <= table.D)
    v, p = table.row(table.i_max)
    assert v.tolist() == list(range(-table.D, table.D + 1))
    assert p == pytest.approx(p[::-1], abs=ROUNDING)  # symmetric once nothing is cut


@NAMED_TABLES
def test_p_stay_is_bounded_and_probabilities_are_positive(make_table: Callable[[], PTable]) -> None:
    table = make_table()
    assert np.all(table.p > 0)
    assert table.max_p_stay == 0.5
    for i in range(1, table.i_max + 1):
        assert p_stay(table, i) <= table.max_p_stay + ROUNDING, i


def test_p_stay_bound_binds_only_for_a_true_three_in_the_default_table() -> None:
    unbounded = generate_ptable(4, 2.0, 2, max_p_stay=None)
    assert unbounded.version == "D4-V2-js2-v1"
    assert [i for i in range(1, 8) if p_stay(unbounded, i) > 0.5] == [3]
    assert p_stay(unbounded, 3) == pytest.approx(0.5112, abs=1e-4)
    bounded = default_ptable()
    assert p_stay(bounded, 3) == pytest.approx(0.5, abs=ROUNDING)
    for i in (1, 2, 4, 5, 6, 7):
        np.testing.assert_allclose(bounded.row(i)[1], unbounded.row(i)[1], rtol=0, atol=1e-12)


# (D, V, js, max_p_stay): the named tables, the default unbounded, one with slack variance, one more.
TABLE_PARAMETERS = pytest.mark.parametrize(
    "parameters",
    [(4, 2.0, 2, 0.5), (5, 3.0, 2, 0.5), (4, 2.0, 2, None), (4, 6.0, 0, None), (7, 4.25, 3, 0.3)],
    ids=str,
)


@TABLE_PARAMETERS
def test_rows_are_the_maximum_entropy_solution(parameters: tuple[int, float, int, float | None]) -> None:
    table = generate_ptable(*parameters)
    # Optimality certificate from convex duality: the maximum-entropy p under the mean and variance
    # constraints is p ∝ exp(a v + b v²) on the whole allowed support, with b <= 0 (b = 0 when the
    # variance stays below V); a binding p-stay bound pins p(0) and leaves that form on v != 0.
    for i in range(1, table.i_max + 1):
        v, p = table.row(i)
        allowed = allowed_noise(i, table.D, table.js)
        if len(v) == 2:  # the only feasible distribution: its variance is the least possible
            assert -v[0] * v[1] == pytest.approx(table.V)
            continue
        assert v.tolist() == allowed.tolist(), i  # every allowed value is used
        free = v != 0 if stay_bound_binds(table, i) else np.ones(len(v), dtype=bool)
        design = np.stack([np.ones(free.sum()), v[free], v[free] ** 2], axis=1).astype(np.float64)
        # Weighted by p and compared as probabilities: restating p as ub - lb moves each p by up to an
        # ulp of 1, which is a large error in the log of a tail probability.
        weight = p[free][:, None]
        coefficients = np.linalg.lstsq(design * weight, np.log(p[free]) * weight[:, 0], rcond=None)[0]
        assert np.exp(design @ coefficients) == pytest.approx(p[free], rel=1e-8, abs=1e-14), i
        if variance(v, p) < table.V - MOMENT_TOLERANCE:
            assert abs(coefficients[2]) < 1e-8, i
        else:
            assert coefficients[2] < 0, i


@NAMED_TABLES
@settings(max_examples=200)
@given(data=st.data())
def test_no_feasible_move_raises_the_entropy(make_table: Callable[[], PTable], data: st.DataObject) -> None:
    table = make_table()
    i = data.draw(st.integers(1, table.i_max), label="i")
    allowed = allowed_noise(i, table.D, table.js)
    v, stored = table.row(i)
    p = np.zeros(len(allowed))
    p[np.isin(allowed, v)] = stored
    constraints = [np.ones(len(allowed)), allowed, allowed**2]  # variance binds in every named row
    if stay_bound_binds(table, i):
        constraints.append((allowed == 0).astype(np.float64))
    matrix = np.stack(constraints).astype(np.float64)
    _, singular, basis = np.linalg.svd(matrix)
    null_space = basis[int((singular > 1e-10).sum()) :]
    if len(null_space) == 0:
        return
    weights = data.draw(
        st.lists(st.floats(-1, 1), min_size=len(null_space), max_size=len(null_space)), label="direction"
    )
    direction = np.asarray(weights) @ null_space
    decreasing = direction < -1e-12
    if not np.any(decreasing) or np.any(p[decreasing] == 0):
        return
    reach = float(np.min(p[decreasing] / -direction[decreasing]))
    moved = np.clip(p + data.draw(st.floats(0, 1), label="fraction") * reach * direction, 0, None)
    assert entropy(moved) <= entropy(p) + 1e-12


@NAMED_TABLES
def test_intervals_partition_the_unit_interval(make_table: Callable[[], PTable]) -> None:
    table = make_table()
    for i in classes(table):
        start, stop = np.flatnonzero(table.i == i)[[0, -1]]
        lb, ub, p = table.lb[start : stop + 1], table.ub[start : stop + 1], table.p[start : stop + 1]
        assert lb[0] == 0.0
        assert ub[-1] == 1.0
        assert np.array_equal(lb[1:], ub[:-1])
        assert np.array_equal(ub - lb, p)
        assert math.fsum(p) == pytest.approx(1.0, abs=ROUNDING)


@NAMED_TABLES
def test_uniform_keys_give_zero_mean_and_variance_v_for_a_large_count(
    make_table: Callable[[], PTable],
) -> None:
    table = make_table()
    cells = 400_000
    keys = np.random.default_rng(20_240_601).random(cells)
    noise = perturbation(table, np.full(cells, 10_000, dtype=np.int64), keys)
    v, p = table.row(table.i_max)
    fourth_moment = float(v**4 @ p)
    # Five standard errors each: of the mean, sqrt(V / n); of the sample variance, sqrt((m4 - V²) / n).
    assert abs(noise.mean()) < 5 * math.sqrt(table.V / cells)
    assert abs(noise.var() - table.V) < 5 * math.sqrt((fourth_moment - table.V**2) / cells)
    frequencies = np.array([(noise == value).mean() for value in v])
    assert np.all(np.abs(frequencies - p) < 5 * np.sqrt(p * (1 - p) / cells))


@NAMED_TABLES
def test_lookup_takes_the_interval_holding_the_key(make_table: Callable[[], PTable]) -> None:
    table = make_table()
    above_last = np.nextafter(table.ub, 0.0)  # the largest key still inside each interval
    midpoints = (table.lb + table.ub) / 2
    for keys in (table.lb, midpoints, above_last):
        assert np.array_equal(perturbation(table, table.i.copy(), keys), table.v)
    start = int(np.searchsorted(table.i, table.i_max))
    large = np.full(len(table.i) - start, 123_456, dtype=np.int64)
    assert np.array_equal(perturbation(table, large, midpoints[start:]), table.v[start:])


@NAMED_TABLES
@given(
    cells=st.lists(
        st.tuples(
            st.integers(0, 200),
            st.one_of(
                st.floats(0, 1, exclude_max=True),
                st.integers(0, 2**31 - 1).map(lambda key: key / 2**31),  # the release's key lattice
            ),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_published_counts_are_never_small_or_negative(
    make_table: Callable[[], PTable], cells: list[tuple[int, float]]
) -> None:
    table = make_table()
    counts = np.array([count for count, _ in cells], dtype=np.int64)
    keys = np.array([key for _, key in cells], dtype=np.float64)
    noise = perturbation(table, counts, keys)
    published = counts + noise
    assert np.all(published >= 0)
    assert not np.any((published >= 1) & (published <= table.js))
    assert np.all(noise[counts == 0] == 0)
    assert np.all(np.abs(noise) <= table.D)


@pytest.mark.parametrize(
    ("counts", "keys", "error"),
    [
        (np.array([-1]), np.array([0.5]), ValueError),
        (np.array([3]), np.array([1.0]), ValueError),
        (np.array([3]), np.array([-0.1]), ValueError),
        (np.array([3]), np.array([np.nan]), ValueError),
        (np.array([3, 4]), np.array([0.5]), ValueError),
        (np.array([3.0]), np.array([0.5]), TypeError),
    ],
)
def test_perturbation_refuses_invalid_cells(
    counts: NDArray[np.int64], keys: NDArray[np.float64], error: type[Exception]
) -> None:
    with pytest.raises(error):
        perturbation(default_ptable(), counts, keys)


@TABLE_PARAMETERS
def test_csv_round_trip_is_exact(parameters: tuple[int, float, int, float | None], tmp_path: Path) -> None:
    table = generate_ptable(*parameters)
    path = tmp_path / "ptable.csv"
    table.to_csv(path)
    assert path.read_text().splitlines()[0] == ",".join(CSV_COLUMNS)
    loaded = PTable.from_csv(path)
    assert loaded == table
    assert loaded.version == table.version
    assert (loaded.D, loaded.V, loaded.js, loaded.max_p_stay) == (
        table.D,
        table.V,
        table.js,
        table.max_p_stay,
    )
    for name in ("i", "v", "p", "lb", "ub"):
        assert np.array_equal(getattr(loaded, name), getattr(table, name))


def test_from_csv_refuses_a_tampered_table(tmp_path: Path) -> None:
    path = tmp_path / "ptable.csv"
    default_ptable().to_csv(path)
    lines = path.read_text().splitlines()
    fields = lines[3].split(",")  # row class 2, noise -2
    fields[3] = repr(float(fields[3]) + 0.01)
    path.write_text("\n".join([*lines[:3], ",".join(fields), *lines[4:]]) + "\n")
    with pytest.raises(ValueError, match="partition"):
        PTable.from_csv(path)


def test_version_changes_with_every_parameter() -> None:
    variants = [
        generate_ptable(),
        generate_ptable(D=5),
        generate_ptable(V=2.5),
        generate_ptable(js=1),
        generate_ptable(max_p_stay=0.6),
        generate_ptable(max_p_stay=None),
    ]
    assert len({table.version for table in variants}) == len(variants)


def test_generation_is_deterministic_and_the_table_read_only() -> None:
    first, second = generate_ptable(5, 3.0, 2), generate_ptable(5, 3.0, 2)
    assert first == second
    assert first is not sensitive_ptable()
    assert first == sensitive_ptable()
    with pytest.raises(ValueError, match="read-only"):
        first.p[0] = 0.5


@pytest.mark.parametrize(
    ("D", "V", "js", "max_p_stay", "reason"),
    [
        (4, 1.9, 2, 0.5, "below 2.0"),  # true 1s and 2s cannot reach zero mean with less variance
        (2, 2.0, 2, 0.5, "js < D"),  # a true 3 could not move down at all
        (4, 7.0, 2, 0.5, "D\\(D \\+ 1\\)/3"),  # beyond the variance of uniform noise
        (4, 2.0, 2, 0.3, "row 3"),  # a true 3 needs p(0) >= 1/3 at V = 2
        (4, 0.0, 2, 0.5, "0 < V"),
        (4, math.inf, 2, 0.5, "0 < V"),
        (4, 2.0, 2, 0.0, "max_p_stay"),
    ],
)
def test_infeasible_parameters_are_refused(
    D: int,  # noqa: N803
    V: float,  # noqa: N803
    js: int,
    max_p_stay: float,
    reason: str,
) -> None:
    with pytest.raises(ValueError, match=reason):
        generate_ptable(D, V, js, max_p_stay)


@settings(max_examples=60, deadline=None)
@given(
    D=st.integers(2, 8),
    js=st.integers(0, 4),
    V=st.floats(0.1, 24.0),
    max_p_stay=st.one_of(st.none(), st.floats(0.05, 1.0)),
)
def test_any_parameters_give_a_valid_table_or_a_refusal(
    D: int,  # noqa: N803
    js: int,
    V: float,  # noqa: N803
    max_p_stay: float | None,
) -> None:
    try:
        table = generate_ptable(D, V, js, max_p_stay)
    except ValueError:
        return
    assert table.row(0)[0].tolist() == [0]
    for i in range(1, table.i_max + 1):
        v, p = table.row(i)
        published = i + v
        assert np.all((published == 0) | (published > js))
        assert np.all(np.abs(v) <= D)
        assert abs(mean(v, p)) < MOMENT_TOLERANCE
        assert variance(v, p) <= V + MOMENT_TOLERANCE * max(1.0, V)
        if max_p_stay is not None:
            assert p_stay(table, i) <= max_p_stay + ROUNDING
    assert variance(*table.row(table.i_max)) == pytest.approx(V, abs=MOMENT_TOLERANCE * max(1.0, V))
