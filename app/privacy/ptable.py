"""Perturbation tables for the cell-key method: the maximum-entropy noise distribution per true count."""

from __future__ import annotations

import csv
import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray

# Bumped whenever the construction changes, so a version string always names one table.
ALGORITHM_VERSION: Final = 1
CSV_COLUMNS: Final = ("version", "i", "v", "p", "lb", "ub")

_NEWTON_MAX_STEPS: Final = 200
_NEWTON_TOLERANCE: Final = 4 * float(np.finfo(np.float64).eps)  # on moment residuals, relative to |v|^k
_NEWTON_STALL: Final = 1e-9  # a residual this small that stops shrinking is rounding noise
_DEGENERATE_SLACK: Final = 1e-12  # relative margin under which a row is forced to two points
_VERSION_PATTERN: Final = re.compile(
    r"D(?P<D>\d+)-V(?P<V>.+?)-js(?P<js>\d+)(?:-ps(?P<ps>.+?))?-v(?P<algorithm>\d+)"
)


def _format_number(value: float) -> str:
    """Shortest exact decimal of a float, without a trailing '.0' (2.0 -> '2')."""
    return repr(float(value)).removesuffix(".0")


@dataclass(frozen=True, eq=False)
class PTable:
    """A p-table: for each row class i = 0..i_max the noise v with probability p on [lb, ub).

    Rows are sorted by (i, v) and rows of probability zero are left out. A cell with true count
    n >= i_max uses the class i_max (the Destatis "i >= D + js + 1 (symmetry)" row).
    """

    D: int
    V: float
    js: int
    max_p_stay: float | None
    i: NDArray[np.int64]
    v: NDArray[np.int64]
    p: NDArray[np.float64]
    lb: NDArray[np.float64]
    ub: NDArray[np.float64]

    def __post_init__(self) -> None:
        # Read-only copies: a frozen table must not change under a caller holding the arrays.
        for name in ("i", "v", "p", "lb", "ub"):
            dtype = np.int64 if name in ("i", "v") else np.float64
            array = np.array(getattr(self, name), dtype=dtype)
            array.setflags(write=False)
            object.__setattr__(self, name, array)
        self._check()

    @property
    def version(self) -> str:
        return generate_version(self.D, self.V, self.js, self.max_p_stay)

    @property
    def i_max(self) -> int:
        """The last row class; from here on every v in [-D, D] is allowed, so the row never changes."""
        return _last_row_class(self.D, self.js)

    def row(self, i: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """The noise values and their probabilities for true count i (any i >= 0)."""
        start, stop = self._row_slice(min(i, self.i_max))
        return self.v[start:stop], self.p[start:stop]

    def to_csv(self, path: Path) -> None:
        with path.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file, lineterminator="\n")
            writer.writerow(CSV_COLUMNS)
            version = self.version
            for i, v, p, lb, ub in zip(self.i, self.v, self.p, self.lb, self.ub, strict=True):
                # repr is the shortest decimal that reads back to the same float: the round trip is exact.
                writer.writerow((version, int(i), int(v), repr(float(p)), repr(float(lb)), repr(float(ub))))

    @classmethod
    def from_csv(cls, path: Path) -> PTable:
        with path.open(newline="", encoding="utf-8") as file:
            reader = csv.reader(file)
            if tuple(next(reader, ())) != CSV_COLUMNS:
                raise ValueError(f"{path}: expected the columns {','.join(CSV_COLUMNS)}")
            rows = list(reader)
        versions = {row[0] for row in rows}
        if len(versions) != 1:
            raise ValueError(f"{path}: expected one p-table version, found {sorted(versions)}")
        (version,) = versions
        D, V, js, max_p_stay = _parse_version(version)  # noqa: N806
        columns = list(zip(*(row[1:] for row in rows), strict=True))
        table = cls(
            D=D,
            V=V,
            js=js,
            max_p_stay=max_p_stay,
            i=np.array([int(x) for x in columns[0]], dtype=np.int64),
            v=np.array([int(x) for x in columns[1]], dtype=np.int64),
            p=np.array([float(x) for x in columns[2]], dtype=np.float64),
            lb=np.array([float(x) for x in columns[3]], dtype=np.float64),
            ub=np.array([float(x) for x in columns[4]], dtype=np.float64),
        )
        if table.version != version:
            raise ValueError(f"{path}: version {version!r} is not canonical (expected {table.version!r})")
        return table

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PTable):
            return NotImplemented
        # Probabilities to 1e-12: the generator's sums round differently in the last bit on CPUs with
        # other vector units, and the shipped CSV holds them to that precision anyway.
        return (
            self.version == other.version
            and all(np.array_equal(getattr(self, name), getattr(other, name)) for name in ("i", "v"))
            and all(
                getattr(self, name).shape == getattr(other, name).shape
                and np.allclose(getattr(self, name), getattr(other, name), rtol=0, atol=1e-12)
                for name in ("p", "lb", "ub")
            )
        )

    def __hash__(self) -> int:
        return hash(self.version)

    def _row_slice(self, i: int) -> tuple[int, int]:
        return int(np.searchsorted(self.i, i, side="left")), int(np.searchsorted(self.i, i, side="right"))

    def _check(self) -> None:
        """Structural invariants, so that a table read from a file is as trustworthy as a generated one."""
        sizes = {array.shape for array in (self.i, self.v, self.p, self.lb, self.ub)}
        if len(sizes) != 1 or len(next(iter(sizes))) != 1:
            raise ValueError("p-table columns must be one-dimensional and of equal length")
        if not np.array_equal(np.unique(self.i), np.arange(self.i_max + 1)):
            raise ValueError(f"p-table must have the row classes 0..{self.i_max}")
        if np.any(np.diff(self.i) < 0) or np.any(np.abs(self.v) > self.D):
            raise ValueError("p-table rows must be sorted by i and have |v| <= D")
        for i in range(self.i_max + 1):
            start, stop = self._row_slice(i)
            v, p, lb, ub = self.v[start:stop], self.p[start:stop], self.lb[start:stop], self.ub[start:stop]
            published = i + v
            if (
                np.any(np.diff(v) <= 0)
                or np.any(published < 0)
                or np.any((published >= 1) & (published <= self.js))
                or (i == 0 and not np.array_equal(v, [0]))
                or np.any(p <= 0)
                or lb[0] != 0.0
                or ub[-1] != 1.0
                or not np.array_equal(lb[1:], ub[:-1])
                or not np.array_equal(ub - lb, p)
            ):
                raise ValueError(
                    f"p-table row class {i}: noise must keep zeros, never publish 1..js or below 0, "
                    "and its intervals must partition [0, 1) with p = ub - lb"
                )


def _last_row_class(D: int, js: int) -> int:  # noqa: N803
    # Destatis ptable: ncat = D + js + 1 when small counts are blocked, else D.
    return D + js + 1 if js > 0 else D


def _parse_version(version: str) -> tuple[int, float, int, float | None]:
    match = _VERSION_PATTERN.fullmatch(version)
    if match is None or int(match["algorithm"]) != ALGORITHM_VERSION:
        raise ValueError(f"unknown p-table version {version!r}")
    stay = match["ps"]
    return int(match["D"]), float(match["V"]), int(match["js"]), None if stay is None else float(stay)


def allowed_noise(i: int, D: int, js: int) -> NDArray[np.int64]:  # noqa: N803
    """The noise values v for true count i >= 1: |v| <= D, i + v >= 0 and i + v not in 1..js."""
    v = np.arange(-min(i, D), D + 1, dtype=np.int64)
    published = i + v
    allowed: NDArray[np.int64] = v[(published == 0) | (published > js)]
    return allowed


def _fit_exponential_family(
    support: NDArray[np.int64], features: NDArray[np.float64], targets: NDArray[np.float64]
) -> NDArray[np.float64]:
    """The distribution p ∝ exp(θ·features) on the support whose feature means equal the targets.

    This is the maximum-entropy distribution under those moment constraints; θ minimises the convex
    dual log Σ exp(θ·f) - θ·targets, solved by Newton's method with backtracking.
    """

    def log_partition(theta: NDArray[np.float64]) -> float:
        exponent = theta @ features
        top = float(exponent.max())
        return top + float(np.log(np.exp(exponent - top).sum()))

    scale = float(np.abs(features).max())
    theta = np.zeros(len(targets))
    previous_residual = np.inf
    for _ in range(_NEWTON_MAX_STEPS):
        exponent = theta @ features
        weights = np.exp(exponent - exponent.max())
        p: NDArray[np.float64] = weights / weights.sum()
        means = features @ p
        gradient = means - targets
        residual = float(np.abs(gradient).max())
        if residual <= _NEWTON_TOLERANCE * scale or previous_residual <= residual <= _NEWTON_STALL * scale:
            return p
        previous_residual = residual
        centred = features - means[:, None]
        hessian = (centred * p) @ centred.T
        step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        dual = log_partition(theta) - float(theta @ targets)
        # Armijo backtracking, with a rounding allowance so that full steps pass near the optimum.
        allowance = 1e-14 * (1 + abs(dual))
        size = 1.0
        while size > 2.0**-30:
            trial = theta - size * step
            if (
                log_partition(trial) - float(trial @ targets)
                <= dual - 1e-4 * size * float(gradient @ step) + allowance
            ):
                break
            size /= 2
        theta = theta - size * step
    raise ArithmeticError(f"maximum-entropy fit did not converge on the support {support.tolist()}")


def _max_entropy_zero_mean(support: NDArray[np.int64], variance: float) -> NDArray[np.float64]:
    """Maximum-entropy distribution on the support with mean 0 and variance at most `variance`.

    Variance is an inequality, as in Destatis ptable (optim=1): rows whose support is cut by the
    blocking of small counts may come out below V, never above.
    """
    if not (np.any(support < 0) and np.any(support > 0)):
        raise ValueError(f"no zero-mean noise exists on the support {support.tolist()}")
    # The smallest variance a zero-mean distribution can have here sits on the two values around 0.
    below, above = int(support[support < 0].max()), int(support[support > 0].min())
    smallest_variance = 0.0 if np.any(support == 0) else float(-below * above)
    if variance < smallest_variance * (1 - _DEGENERATE_SLACK):
        raise ValueError(
            f"variance {variance} is below {smallest_variance}, the least any zero-mean noise "
            f"on {support.tolist()} has"
        )
    values = support.astype(np.float64)
    if variance <= smallest_variance * (1 + _DEGENERATE_SLACK):
        # Only one distribution is feasible (the exponential family reaches it only in the limit).
        p = np.zeros(len(support))
        p[support == below] = above / (above - below)
        p[support == above] = -below / (above - below)
        return p
    p = _fit_exponential_family(support, values[None, :], np.zeros(1))
    if float(values**2 @ p) <= variance:
        return p
    return _fit_exponential_family(support, np.stack([values, values**2]), np.array([0.0, variance]))


def _row_distribution(
    support: NDArray[np.int64], variance: float, max_p_stay: float | None
) -> NDArray[np.float64]:
    p = _max_entropy_zero_mean(support, variance)
    stays = support == 0
    if max_p_stay is None or not np.any(stays) or p[stays][0] <= max_p_stay:
        return p
    # The bound binds, so p(0) = max_p_stay and the rest is the maximum-entropy distribution of the
    # moved cells: entropy splits as h(p0) + (1 - p0) H(rest), with rest of mean 0, variance V / (1 - p0).
    moved = _max_entropy_zero_mean(support[~stays], variance / (1 - max_p_stay))
    p = np.zeros(len(support))
    p[stays] = max_p_stay
    p[~stays] = (1 - max_p_stay) * moved
    return p


def generate_ptable(D: int = 4, V: float = 2.0, js: int = 2, max_p_stay: float | None = 0.5) -> PTable:  # noqa: N803
    """The maximum-entropy p-table (Destatis ptable, Giessing 2016) for maximum noise D and variance V.

    Each row i >= 1 maximises entropy subject to: mean 0; variance <= V (reached wherever the
    support allows, always in the last row class); |v| <= D; published i + v >= 0 and never in
    1..js; and p(v = 0) <= max_p_stay unless that is None. The solution is p(v) ∝ exp(a v + b v²)
    with b <= 0, the binding p(0) row aside. Row 0 is v = 0 with p = 1: true zeros stay zero.

    max_p_stay = 0.5 means a published count equals the true one at most half the time. Unbounded,
    the default table would keep a true 3 with p = 0.511, the only row above 0.5; 0.5 binds there
    alone and is feasible for every row (a true 3 needs p(0) >= 1/3 at V = 2). Destatis' `pstay`
    is a lower bound on p(0) instead; there is none here.

    Raises ValueError when the constraints have no solution, rather than relaxing the zero mean:
    js >= D; V < 2 with js = 2 (true counts 1 and 2 must publish 0 or at least 3, which with mean 0
    costs a variance of at least 2, so V = 2 forces those two rows onto two values); a p-stay bound
    too tight for the variance; or V above D(D + 1)/3, the variance of uniform noise on [-D, D],
    past which maximum entropy would stop at the uniform and never reach V.
    """
    # D > js: a true js + 1 can only move down by publishing 0, so it needs noise of js + 1.
    if not 0 <= js < D or not np.isfinite(V) or not 0 < V <= D * (D + 1) / 3:
        raise ValueError(f"need 0 <= js < D and 0 < V <= D(D + 1)/3 (got D={D}, V={V}, js={js})")
    if max_p_stay is not None and not 0 < max_p_stay <= 1:
        raise ValueError(f"max_p_stay must be in (0, 1], got {max_p_stay}")
    row_i, row_v, row_p = [np.zeros(1, np.int64)], [np.zeros(1, np.int64)], [np.ones(1)]
    for i in range(1, _last_row_class(D, js) + 1):
        support = allowed_noise(i, D, js)
        try:
            p = _row_distribution(support, float(V), max_p_stay)
        except ValueError as error:
            raise ValueError(
                f"no p-table for D={D}, V={V}, js={js}, max_p_stay={max_p_stay}: row {i}: {error}"
            ) from None
        if i == _last_row_class(D, js) and float(support**2 @ p) < V * (1 - _DEGENERATE_SLACK):
            # Possible only when a tight p-stay bound leaves too little mass to spread.
            raise ValueError(
                f"no p-table for D={D}, V={V}, js={js}, max_p_stay={max_p_stay}: V is not reached"
            )
        row_i.append(np.full(len(support), i, dtype=np.int64))
        row_v.append(support)
        row_p.append(p)
    i_column, v_column = np.concatenate(row_i), np.concatenate(row_v)
    lb_parts, ub_parts = [], []
    for p in row_p:
        # Correctly rounded prefix sums never decrease; capped at 1 so rounding cannot overshoot.
        ub = np.minimum([math.fsum(p[: k + 1]) for k in range(len(p))], 1.0)
        ub[-1] = 1.0
        lb_parts.append(np.concatenate([[0.0], ub[:-1]]))
        ub_parts.append(ub)
    lb, ub = np.concatenate(lb_parts), np.concatenate(ub_parts)
    # As in Destatis ptable, p is restated as ub - lb so the table and the key intervals agree exactly;
    # values whose interval is empty (zero or underflowed probability) are never drawn and are dropped.
    p_column = ub - lb
    kept = p_column > 0
    return PTable(
        D=D,
        V=float(V),
        js=js,
        max_p_stay=max_p_stay,
        i=i_column[kept],
        v=v_column[kept],
        p=p_column[kept],
        lb=lb[kept],
        ub=ub[kept],
    )


PTABLE_DIR: Final = Path(__file__).parent / "ptables"
DEFAULT_PARAMETERS: Final = {"D": 4, "V": 2.0, "js": 2, "max_p_stay": 0.5}
SENSITIVE_PARAMETERS: Final = {"D": 5, "V": 3.0, "js": 2, "max_p_stay": 0.5}


def stored_ptable(D: int, V: float, js: int, max_p_stay: float | None) -> PTable:  # noqa: N803
    """The versioned table as shipped in app/privacy/ptables/ (generated once, kept as data, so that a
    release is always perturbed by the very table its metadata names)."""
    version = generate_version(D, V, js, max_p_stay)
    return PTable.from_csv(PTABLE_DIR / f"{version}.csv")


def generate_version(D: int, V: float, js: int, max_p_stay: float | None) -> str:  # noqa: N803
    stay = "" if max_p_stay is None else f"-ps{_format_number(max_p_stay)}"
    return f"D{D}-V{_format_number(V)}-js{js}{stay}-v{ALGORITHM_VERSION}"


@functools.cache
def default_ptable() -> PTable:
    """Public measures: variance 2, noise within ±4, published 1s and 2s never appear (DESIGN.md)."""
    return stored_ptable(**DEFAULT_PARAMETERS)  # type: ignore[arg-type]


@functools.cache
def sensitive_ptable() -> PTable:
    """Sensitive measures (contraceptive use): variance 3, noise within ±5."""
    return stored_ptable(**SENSITIVE_PARAMETERS)  # type: ignore[arg-type]


def write_stored_ptables() -> list[Path]:
    """Regenerate the shipped tables (`python -m app.privacy.ptable`); a test checks they are current."""
    written = []
    for parameters in (DEFAULT_PARAMETERS, SENSITIVE_PARAMETERS):
        table = generate_ptable(**parameters)  # type: ignore[arg-type]
        path = PTABLE_DIR / f"{table.version}.csv"
        table.to_csv(path)
        written.append(path)
    return written


def perturbation(
    ptable: PTable, true_counts: NDArray[np.int64], cell_keys: NDArray[np.float64]
) -> NDArray[np.int64]:
    """The noise v per cell: the v of the cell's row class whose interval [lb, ub) holds its key."""
    counts, keys = np.asarray(true_counts), np.asarray(cell_keys, dtype=np.float64)
    if counts.shape != keys.shape:
        raise ValueError(f"counts {counts.shape} and cell keys {keys.shape} differ in shape")
    if not np.issubdtype(counts.dtype, np.integer):
        raise TypeError(f"true counts must be integers, got {counts.dtype}")
    if np.any(counts < 0):
        raise ValueError("true counts must be non-negative")
    if not np.all((keys >= 0) & (keys < 1)):
        raise ValueError("cell keys must lie in [0, 1)")
    row_class = np.minimum(counts, ptable.i_max)
    noise = np.zeros(counts.shape, dtype=np.int64)
    for i in range(1, ptable.i_max + 1):  # class 0 is always noise 0
        cells = row_class == i
        if np.any(cells):
            start, stop = ptable._row_slice(i)
            # side="right": the first interval whose upper bound exceeds the key, i.e. lb <= key < ub.
            noise[cells] = ptable.v[start:stop][
                np.searchsorted(ptable.ub[start:stop], keys[cells], side="right")
            ]
    return noise


if __name__ == "__main__":
    for written in write_stored_ptables():
        print(f"wrote {written}")
