import itertools
import random
import string
import time

import pytest

from kallrec.http.ranges import (
    MAX_HEADER_LENGTH,
    MAX_RANGE_SPECS,
    MAX_RANGES,
    UnsatisfiableRange,
    parse_range,
)

SIZE = 1000

# (id, header, size, expected ranges or None)
SATISFIABLE = [
    ("absent", None, SIZE, None),
    ("empty-string", "", SIZE, None),
    ("whole-file-fast-path", "bytes=0-", SIZE, [(0, SIZE)]),
    ("closed", "bytes=0-499", SIZE, [(0, 500)]),
    ("middle", "bytes=100-199", SIZE, [(100, 200)]),
    ("first-byte", "bytes=0-0", SIZE, [(0, 1)]),
    ("last-byte-closed", "bytes=999-999", SIZE, [(999, 1000)]),
    ("last-byte-suffix", "bytes=-1", SIZE, [(999, 1000)]),
    ("open-ended", "bytes=500-", SIZE, [(500, 1000)]),
    ("open-ended-last-byte", "bytes=999-", SIZE, [(999, 1000)]),
    ("suffix", "bytes=-100", SIZE, [(900, 1000)]),
    ("suffix-equals-size", "bytes=-1000", SIZE, [(0, 1000)]),
    ("suffix-beyond-size", "bytes=-5000", SIZE, [(0, 1000)]),
    ("end-clamped", "bytes=900-5000", SIZE, [(900, 1000)]),
    ("end-huge-clamped", "bytes=0-99999999999999999999999999", SIZE, [(0, 1000)]),
    ("suffix-huge", "bytes=-99999999999999999999999999", SIZE, [(0, 1000)]),
    ("leading-zeros", "bytes=007-010", SIZE, [(7, 11)]),
    ("two-stay-two", "bytes=0-1,3-4", SIZE, [(0, 2), (3, 5)]),
    ("sorted", "bytes=500-599,0-99", SIZE, [(0, 100), (500, 600)]),
    ("duplicates-coalesce", "bytes=0-99,0-99", SIZE, [(0, 100)]),
    ("overlap-coalesce", "bytes=0-99,50-149", SIZE, [(0, 150)]),
    ("adjacent-coalesce", "bytes=0-1,2-3", SIZE, [(0, 4)]),
    ("contained-coalesce", "bytes=0-499,100-199", SIZE, [(0, 500)]),
    ("suffix-and-open-coalesce", "bytes=-100,950-", SIZE, [(900, 1000)]),
    ("chain-coalesce", "bytes=20-29,0-9,10-19,40-49", SIZE, [(0, 30), (40, 50)]),
    ("mixed-forms", "bytes=0-9,-10,500-", SIZE, [(0, 10), (500, 1000)]),
    ("unsatisfiable-dropped", "bytes=0-9,5000-6000", SIZE, [(0, 10)]),
    ("zero-suffix-dropped", "bytes=-0,0-9", SIZE, [(0, 10)]),
    ("unit-uppercase", "BYTES=0-1", SIZE, [(0, 2)]),
    ("unit-mixed-case", "Bytes=0-1", SIZE, [(0, 2)]),
    ("ows-around-equals", "bytes = 0-1", SIZE, [(0, 2)]),
    ("ows-around-commas", "bytes=0-1 ,\t3-4 , 6-7", SIZE, [(0, 2), (3, 5), (6, 8)]),
    ("ows-leading-trailing", "  bytes=0-1  ", SIZE, [(0, 2)]),
    ("empty-list-elements", "bytes=,0-1,,3-4,", SIZE, [(0, 2), (3, 5)]),
    ("size-1-whole", "bytes=0-", 1, [(0, 1)]),
    ("size-1-first", "bytes=0-0", 1, [(0, 1)]),
    ("size-1-suffix", "bytes=-1", 1, [(0, 1)]),
    ("size-1-suffix-big", "bytes=-10", 1, [(0, 1)]),
    ("size-1-clamped", "bytes=0-10", 1, [(0, 1)]),
    # RFC 9110 §14.1.1: a non-zero suffix is satisfiable even on an empty representation, but the
    # result is empty and cannot be expressed as a Content-Range: serve the empty 200.
    ("size-0-suffix", "bytes=-5", 0, None),
    ("size-0-suffix-with-int-range", "bytes=0-1,-5", 0, None),
]

MALFORMED = [
    ("unit-items", "items=0-1"),
    ("unit-none", "none"),
    ("unit-empty", "=0-1"),
    ("unit-prefix", "bytesx=0-1"),
    ("unit-unicode-lookalike", "byte\u017f=0-1"),
    ("no-equals", "bytes 0-1"),
    ("empty-set", "bytes="),
    ("only-commas", "bytes=, ,"),
    ("reversed", "bytes=5-2"),
    ("reversed-among-valid", "bytes=0-1,5-2"),
    ("bare-dash", "bytes=-"),
    ("no-dash", "bytes=5"),
    ("letters", "bytes=abc"),
    ("letters-first", "bytes=a-5"),
    ("letters-last", "bytes=0-b"),
    ("letters-suffix", "bytes=-x"),
    ("three-parts", "bytes=1-2-3"),
    ("double-dash-suffix", "bytes=--5"),
    ("negative-first", "bytes=-5-10"),
    ("negative-last", "bytes=0--5"),
    ("plus-sign", "bytes=+1-2"),
    ("underscore-digits", "bytes=1_0-20"),
    ("inner-space", "bytes=0 - 5"),
    ("space-in-number", "bytes=1 0-20"),
    ("non-ascii-digits", "bytes=\u0663-\u0665"),
    ("superscript-digits", "bytes=\u00b2-5"),
    ("fullwidth-digits", "bytes=\uff10-\uff15"),
    ("float", "bytes=0.5-1"),
    ("hex", "bytes=0x10-0x20"),
    ("semicolon-list", "bytes=0-1;3-4"),
    ("double-equals", "bytes==0-1"),
    ("malformed-after-unsatisfiable", "bytes=5000-,x"),
    ("too-long", "bytes=0-1," + " " * MAX_HEADER_LENGTH),
]


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [pytest.param(h, s, e, id=i) for i, h, s, e in SATISFIABLE],
)
def test_parse_range(header: str | None, size: int, expected: list[tuple[int, int]] | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("header", [pytest.param(h, id=i) for i, h in MALFORMED])
@pytest.mark.parametrize("size", [0, 1, SIZE])
def test_malformed_header_is_ignored(header: str, size: int) -> None:
    assert parse_range(header, size) is None


UNSATISFIABLE = [
    ("start-at-size", "bytes=1000-", SIZE),
    ("start-beyond-size", "bytes=1000-2000", SIZE),
    ("start-huge", "bytes=99999999999999999999999999-", SIZE),
    ("zero-suffix", "bytes=-0", SIZE),
    ("all-unsatisfiable", "bytes=1000-1001,2000-,-0", SIZE),
    ("size-1-second-byte", "bytes=1-", 1),
    ("size-0-whole", "bytes=0-", 0),
    ("size-0-first-byte", "bytes=0-0", 0),
    ("size-0-closed", "bytes=0-100", 0),
    ("size-0-zero-suffix", "bytes=-0", 0),
    ("uppercase-unit", "BYTES=5000-", SIZE),
]


@pytest.mark.parametrize(
    ("header", "size"), [pytest.param(h, s, id=i) for i, h, s in UNSATISFIABLE]
)
def test_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(UnsatisfiableRange):
        parse_range(header, size)


def test_up_to_max_ranges_kept() -> None:
    header = "bytes=" + ",".join(f"{i * 10}-{i * 10 + 4}" for i in range(MAX_RANGES))
    result = parse_range(header, SIZE)
    assert result is not None
    assert len(result) == MAX_RANGES


def test_more_than_max_ranges_after_coalescing_serves_full() -> None:
    header = "bytes=" + ",".join(f"{i * 10}-{i * 10 + 4}" for i in range(MAX_RANGES + 1))
    assert parse_range(header, SIZE) is None


def test_many_specs_that_coalesce_are_fine() -> None:
    # Over MAX_RANGES specs but under MAX_RANGE_SPECS, all overlapping: one range remains.
    header = "bytes=" + ",".join(f"{i}-{i + 5}" for i in range(MAX_RANGES * 2))
    assert parse_range(header, SIZE) == [(0, MAX_RANGES * 2 + 5)]


def test_more_than_max_specs_is_ignored() -> None:
    # Short enough to pass the length cap, so the spec count is what rejects it.
    header = "bytes=" + ",".join(["0-0"] * (MAX_RANGE_SPECS + 1))
    assert len(header) <= MAX_HEADER_LENGTH
    assert parse_range(header, SIZE) is None
    assert parse_range("bytes=" + ",".join(["0-0"] * MAX_RANGE_SPECS), SIZE) == [(0, 1)]


def test_exactly_max_length_is_parsed() -> None:
    header = "bytes=0-1"
    header += " " * (MAX_HEADER_LENGTH - len(header))
    assert parse_range(header, SIZE) == [(0, 2)]


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("bytes=" + ",".join(["0-0"] * 10_000), id="10000-specs"),
        pytest.param("bytes=" + ",".join(f"{i}-{i}" for i in range(10_000)), id="10000-distinct"),
        pytest.param("bytes=" + "9" * 1_000_000 + "-", id="million-digit-number"),
        pytest.param("bytes=" + "," * 1_000_000, id="million-commas"),
        pytest.param("bytes=" + "-" * 1_000_000, id="million-dashes"),
    ],
)
def test_huge_headers_are_ignored_quickly(header: str) -> None:
    started = time.perf_counter()
    for _ in range(100):
        assert parse_range(header, SIZE) is None
    assert time.perf_counter() - started < 0.5


def _random_header(rng: random.Random) -> str:
    """Mostly near-valid headers, so the fuzzing reaches past the unit check."""
    alphabet = string.digits * 4 + "-,= \t" + "bytesB" + string.printable
    kind = rng.random()
    if kind < 0.6:
        specs = []
        for _ in range(rng.randint(0, 20)):
            form = rng.randint(0, 4)
            a, b = rng.randint(0, 1200), rng.randint(0, 1200)
            if form == 0:
                specs.append(f"{a}-{b}")
            elif form == 1:
                specs.append(f"{a}-")
            elif form == 2:
                specs.append(f"-{b}")
            elif form == 3:
                specs.append(f"{min(a, b)}-{max(a, b)}")
            else:
                specs.append("".join(rng.choices(alphabet, k=rng.randint(0, 6))))
        return rng.choice(["bytes=", "BYTES =", "bytes= "]) + rng.choice([",", ", "]).join(specs)
    if kind < 0.9:
        return "bytes=" + "".join(rng.choices(alphabet, k=rng.randint(0, 60)))
    return "".join(rng.choices(string.printable, k=rng.randint(0, 60)))


@pytest.mark.parametrize("seed", range(5))
def test_fuzz_never_raises_and_results_are_well_formed(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(4000):
        header = _random_header(rng)
        size = rng.choice([0, 1, 2, 10, 1000, 1200])
        try:
            result = parse_range(header, size)
        except UnsatisfiableRange:
            continue
        if result is None:
            continue
        assert 1 <= len(result) <= MAX_RANGES, header
        for start, end in result:
            assert 0 <= start < end <= size, header
        for (_, prev_end), (next_start, _) in itertools.pairwise(result):
            # Strictly greater: touching ranges would have been coalesced.
            assert prev_end < next_start, header
