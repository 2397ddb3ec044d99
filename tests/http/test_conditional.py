import random
import string
import time

import pytest

from kallrec.http.conditional import (
    Outcome,
    _entity_tags,
    evaluate_preconditions,
    http_date,
    if_range_allows_partial,
)

ETAG = '"3f2a9c"'
# Wed, 21 Oct 2015 07:28:00 GMT plus a fraction, which HTTP dates cannot express.
LM = 1445412480.75
LM_DATE = "Wed, 21 Oct 2015 07:28:00 GMT"
BEFORE = "Wed, 21 Oct 2015 07:27:59 GMT"
AFTER = "Wed, 21 Oct 2015 07:28:01 GMT"

PROCEED = Outcome.PROCEED
NOT_MODIFIED = Outcome.NOT_MODIFIED
FAILED = Outcome.PRECONDITION_FAILED

# (id, method, headers, expected); header keys are evaluate_preconditions' keyword names.
CASES: list[tuple[str, str, dict[str, str], Outcome]] = [
    ("no-headers", "GET", {}, PROCEED),
    # If-Match: strong comparison.
    ("im-star", "GET", {"if_match": "*"}, PROCEED),
    ("im-equal", "GET", {"if_match": ETAG}, PROCEED),
    ("im-in-list", "GET", {"if_match": f'"x", {ETAG}, "y"'}, PROCEED),
    ("im-list-no-spaces", "GET", {"if_match": f'"x",{ETAG}'}, PROCEED),
    ("im-list-tabs", "GET", {"if_match": f'"x"\t,\t{ETAG}\t'}, PROCEED),
    ("im-list-empty-elements", "GET", {"if_match": f',, "x" ,,{ETAG},'}, PROCEED),
    ("im-mismatch", "GET", {"if_match": '"other"'}, FAILED),
    ("im-weak-never-matches", "GET", {"if_match": f"W/{ETAG}"}, FAILED),
    ("im-unquoted", "GET", {"if_match": ETAG.strip('"')}, FAILED),
    ("im-garbage", "GET", {"if_match": "garbage"}, FAILED),
    ("im-malformed-then-match", "GET", {"if_match": f'bad, "un, {ETAG}'}, PROCEED),
    ("im-tag-with-comma", "GET", {"if_match": '"a,b", "c"'}, FAILED),
    ("im-star-in-list", "GET", {"if_match": '*, "x"'}, FAILED),
    ("im-case-sensitive", "GET", {"if_match": ETAG.upper()}, FAILED),
    ("im-lowercase-weak-prefix", "GET", {"if_match": f"w/{ETAG}"}, FAILED),
    ("im-prefix-of-etag", "GET", {"if_match": ETAG[:-2] + '"'}, FAILED),
    ("im-tag-glued-to-garbage", "GET", {"if_match": ETAG + "x"}, FAILED),
    ("im-blank-is-absent", "GET", {"if_match": "  "}, PROCEED),
    ("im-empty-is-absent", "GET", {"if_match": ""}, PROCEED),
    ("im-mismatch-put", "PUT", {"if_match": '"other"'}, FAILED),
    ("im-huge", "GET", {"if_match": '"x", ' * 5000 + ETAG}, FAILED),
    # If-Unmodified-Since, only without If-Match.
    ("ius-equal", "GET", {"if_unmodified_since": LM_DATE}, PROCEED),
    ("ius-after", "GET", {"if_unmodified_since": AFTER}, PROCEED),
    ("ius-before", "GET", {"if_unmodified_since": BEFORE}, FAILED),
    ("ius-garbage-ignored", "GET", {"if_unmodified_since": "yesterday"}, PROCEED),
    ("ius-two-dates-ignored", "GET", {"if_unmodified_since": f"{BEFORE}, {BEFORE}"}, PROCEED),
    (
        "ius-ignored-with-if-match",
        "GET",
        {"if_match": ETAG, "if_unmodified_since": BEFORE},
        PROCEED,
    ),
    ("ius-after-blank-if-match", "GET", {"if_match": "", "if_unmodified_since": BEFORE}, FAILED),
    ("im-fails-before-ius", "GET", {"if_match": '"x"', "if_unmodified_since": AFTER}, FAILED),
    # If-None-Match: weak comparison.
    ("inm-equal", "GET", {"if_none_match": ETAG}, NOT_MODIFIED),
    ("inm-equal-head", "HEAD", {"if_none_match": ETAG}, NOT_MODIFIED),
    ("inm-weak-matches", "GET", {"if_none_match": f"W/{ETAG}"}, NOT_MODIFIED),
    ("inm-in-list", "GET", {"if_none_match": f'"a", W/"b", {ETAG}'}, NOT_MODIFIED),
    ("inm-mismatch", "GET", {"if_none_match": '"other"'}, PROCEED),
    ("inm-star", "GET", {"if_none_match": "*"}, NOT_MODIFIED),
    ("inm-star-post", "POST", {"if_none_match": "*"}, FAILED),
    ("inm-equal-put", "PUT", {"if_none_match": ETAG}, FAILED),
    ("inm-garbage", "GET", {"if_none_match": "garbage"}, PROCEED),
    ("inm-unquoted", "GET", {"if_none_match": ETAG.strip('"')}, PROCEED),
    ("inm-blank-is-absent", "GET", {"if_none_match": " \t "}, PROCEED),
    ("inm-huge-not-matching", "GET", {"if_none_match": '"x", ' * 5000 + ETAG}, PROCEED),
    ("inm-after-if-match-pass", "GET", {"if_match": ETAG, "if_none_match": ETAG}, NOT_MODIFIED),
    ("im-fail-wins-over-inm", "GET", {"if_match": '"x"', "if_none_match": ETAG}, FAILED),
    (
        "ius-fail-wins-over-inm",
        "GET",
        {"if_unmodified_since": BEFORE, "if_none_match": ETAG},
        FAILED,
    ),
    # If-Modified-Since: only without If-None-Match, only for GET/HEAD.
    ("ims-equal", "GET", {"if_modified_since": LM_DATE}, NOT_MODIFIED),
    ("ims-after", "GET", {"if_modified_since": AFTER}, NOT_MODIFIED),
    ("ims-before", "GET", {"if_modified_since": BEFORE}, PROCEED),
    ("ims-head", "HEAD", {"if_modified_since": LM_DATE}, NOT_MODIFIED),
    ("ims-post-ignored", "POST", {"if_modified_since": LM_DATE}, PROCEED),
    ("ims-lowercase-method-is-not-get", "get", {"if_modified_since": LM_DATE}, PROCEED),
    ("ims-rfc850", "GET", {"if_modified_since": "Wednesday, 21-Oct-15 07:28:00 GMT"}, NOT_MODIFIED),
    ("ims-asctime", "GET", {"if_modified_since": "Wed Oct 21 07:28:00 2015"}, NOT_MODIFIED),
    ("ims-asctime-before", "GET", {"if_modified_since": "Wed Oct 21 07:27:59 2015"}, PROCEED),
    ("ims-ows", "GET", {"if_modified_since": f"  {LM_DATE}\t"}, NOT_MODIFIED),
    ("ims-garbage-ignored", "GET", {"if_modified_since": "garbage"}, PROCEED),
    ("ims-two-dates-ignored", "GET", {"if_modified_since": f"{AFTER}, {AFTER}"}, PROCEED),
    (
        "ims-invalid-day-ignored",
        "GET",
        {"if_modified_since": "Sat, 31 Feb 2015 07:28:00 GMT"},
        PROCEED,
    ),
    (
        "ims-huge-year-ignored",
        "GET",
        {"if_modified_since": "Wed, 21 Oct 99999 07:28:00 GMT"},
        PROCEED,
    ),
    (
        "ims-fraction-ignored",
        "GET",
        {"if_modified_since": "Wed, 21 Oct 2015 07:28:00.9 GMT"},
        PROCEED,
    ),
    ("ims-too-long-ignored", "GET", {"if_modified_since": LM_DATE + " " * 100 + "x"}, PROCEED),
    ("ims-ignored-with-inm", "GET", {"if_none_match": '"x"', "if_modified_since": AFTER}, PROCEED),
    (
        "ims-ignored-with-garbage-inm",
        "GET",
        {"if_none_match": "x", "if_modified_since": AFTER},
        PROCEED,
    ),
    ("ims-after-blank-inm", "GET", {"if_none_match": "", "if_modified_since": AFTER}, NOT_MODIFIED),
    (
        "ims-ignored-with-huge-inm",
        "GET",
        {"if_none_match": '"x",' * 5000, "if_modified_since": AFTER},
        PROCEED,
    ),
    ("ims-with-passing-im", "GET", {"if_match": ETAG, "if_modified_since": AFTER}, NOT_MODIFIED),
    (
        "ims-with-passing-ius",
        "GET",
        {"if_unmodified_since": AFTER, "if_modified_since": AFTER},
        NOT_MODIFIED,
    ),
]


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [pytest.param(m, h, e, id=i) for i, m, h, e in CASES],
)
def test_evaluate_preconditions(method: str, headers: dict[str, str], expected: Outcome) -> None:
    kwargs: dict[str, str | None] = {
        "if_match": None,
        "if_none_match": None,
        "if_modified_since": None,
        "if_unmodified_since": None,
        **headers,
    }
    assert evaluate_preconditions(method=method, etag=ETAG, last_modified=LM, **kwargs) == expected


def test_weak_own_etag_never_passes_if_match_but_matches_if_none_match() -> None:
    weak = f"W/{ETAG}"
    common = {"method": "GET", "etag": weak, "last_modified": LM}
    absent = {"if_modified_since": None, "if_unmodified_since": None}
    assert evaluate_preconditions(**common, if_match=weak, if_none_match=None, **absent) == FAILED
    assert (
        evaluate_preconditions(**common, if_match=None, if_none_match=ETAG, **absent)
        == NOT_MODIFIED
    )


IF_RANGE_CASES = [
    ("absent", None, True),
    ("etag-equal", ETAG, True),
    ("etag-equal-ows", f" {ETAG}\t", True),
    ("etag-other", '"other"', False),
    ("etag-weak", f"W/{ETAG}", False),
    ("etag-list", f"{ETAG}, {ETAG}", False),
    ("etag-unterminated", ETAG[:-1], False),
    ("date-equal", LM_DATE, True),
    ("date-equal-asctime", "Wed Oct 21 07:28:00 2015", True),
    ("date-before", BEFORE, False),
    ("date-after", AFTER, False),
    ("date-two-dates", f"{LM_DATE}, {LM_DATE}", False),
    ("garbage", "garbage", False),
    ("empty", "", False),
    ("star", "*", False),
    ("huge", "x" * 100_000, False),
]


@pytest.mark.parametrize(
    ("if_range", "expected"), [pytest.param(v, e, id=i) for i, v, e in IF_RANGE_CASES]
)
def test_if_range_allows_partial(if_range: str | None, expected: bool) -> None:
    assert if_range_allows_partial(if_range, etag=ETAG, last_modified=LM) is expected


def test_if_range_weak_own_etag_never_matches() -> None:
    weak = f"W/{ETAG}"
    assert not if_range_allows_partial(weak, etag=weak, last_modified=LM)


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        pytest.param(1445412480, LM_DATE, id="whole-second"),
        pytest.param(LM, LM_DATE, id="fraction-floored"),
        pytest.param(0, "Thu, 01 Jan 1970 00:00:00 GMT", id="epoch"),
        pytest.param(784111777, "Sun, 06 Nov 1994 08:49:37 GMT", id="rfc-example"),
    ],
)
def test_http_date(timestamp: float, expected: str) -> None:
    assert http_date(timestamp) == expected


def test_http_date_round_trips_through_the_validators() -> None:
    # What the endpoint sends as Last-Modified must come back as a match.
    sent = http_date(LM)
    assert if_range_allows_partial(sent, etag=ETAG, last_modified=LM)
    outcome = evaluate_preconditions(
        method="GET",
        etag=ETAG,
        last_modified=LM,
        if_match=None,
        if_none_match=None,
        if_modified_since=sent,
        if_unmodified_since=sent,
    )
    assert outcome is NOT_MODIFIED


def _random_value(rng: random.Random) -> str | None:
    pieces = [ETAG, f"W/{ETAG}", '"', "W/", ",", " ", "\t", "*", LM_DATE, "GMT", "-0000"]
    kind = rng.random()
    if kind < 0.1:
        return None
    if kind < 0.6:
        return "".join(rng.choices(pieces, k=rng.randint(0, 8)))
    alphabet = string.printable + "\x00\x7f\u00e9\u0663\ud800"
    return "".join(rng.choices(alphabet, k=rng.randint(0, 80)))


@pytest.mark.parametrize("seed", range(5))
def test_fuzz_never_raises(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(3000):
        outcome = evaluate_preconditions(
            method=rng.choice(["GET", "HEAD", "POST", "PUT", ""]),
            etag=ETAG,
            last_modified=rng.choice([LM, 0.0, -1.5, 253402300799.0]),
            if_match=_random_value(rng),
            if_none_match=_random_value(rng),
            if_modified_since=_random_value(rng),
            if_unmodified_since=_random_value(rng),
        )
        assert isinstance(outcome, Outcome)
        allowed = if_range_allows_partial(_random_value(rng), etag=ETAG, last_modified=LM)
        assert isinstance(allowed, bool)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param('"' * 1_000_000, id="quotes"),
        pytest.param('"a"x' * 250_000, id="glued-tags"),
        pytest.param('"a,' * 250_000, id="unterminated-with-commas"),
        pytest.param("," * 1_000_000, id="commas"),
        pytest.param(" " * 1_000_000 + "*", id="spaces-then-star"),
    ],
)
def test_huge_headers_are_cheap(value: str) -> None:
    started = time.perf_counter()
    for _ in range(5):
        evaluate_preconditions(
            method="GET",
            etag=ETAG,
            last_modified=LM,
            if_match=value,
            if_none_match=value,
            if_modified_since=value,
            if_unmodified_since=value,
        )
        if_range_allows_partial(value, etag=ETAG, last_modified=LM)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    "value",
    [
        pytest.param('"a"x, ' * 200_000, id="glued-tags"),
        pytest.param('"a, ' * 250_000, id="unterminated-with-commas"),
        pytest.param('"a,"b"c,' * 120_000, id="interleaved-quotes"),
        pytest.param('W/"' * 330_000, id="weak-prefixes"),
        pytest.param('"' * 1_000_000, id="quotes"),
        pytest.param(" \t," * 330_000, id="separators"),
    ],
)
def test_entity_tag_scan_is_linear(value: str) -> None:
    # The public functions cap the length, so call the scanner directly on a megabyte: a
    # quadratic scan would take minutes here, a linear one a fraction of a second.
    started = time.perf_counter()
    for _ in _entity_tags(value):
        pass
    assert time.perf_counter() - started < 2.0


def test_entity_tags_keep_commas_inside_tags() -> None:
    assert list(_entity_tags('"a,b", W/"c, d" ,"e"')) == [
        (False, '"a,b"'),
        (True, '"c, d"'),
        (False, '"e"'),
    ]
    common = {"method": "GET", "etag": '"a,b"', "last_modified": LM}
    absent = {"if_modified_since": None, "if_unmodified_since": None}
    outcome = evaluate_preconditions(**common, if_match='"x", "a,b"', if_none_match=None, **absent)
    assert outcome is PROCEED
