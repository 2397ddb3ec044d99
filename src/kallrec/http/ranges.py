"""Parsing of the ``Range`` request header (RFC 9110 §14.1-§14.2) for byte ranges.

Policy in one place, so the audio endpoint only maps results to status codes:

* ``None`` means "ignore the header and answer a full 200". RFC 9110 §14.2 lets a server ignore
  Range, so every malformed, unsupported or abusive header ends up here rather than in a 4xx/5xx.
* A list means "answer 206": one range → a plain partial response, several → multipart/byteranges.
* ``UnsatisfiableRange`` means "answer 416 with ``Content-Range: bytes */size``".

Decisions the RFC leaves open:

* The range unit is matched case-insensitively (``BYTES=0-1`` works): RFC 9110 §14.1 says range
  units are compared case-insensitively.
* Optional whitespace is tolerated around ``=`` and around list commas, and empty list elements
  (``bytes=0-1,,5-6``) are skipped, as RFC 9110 §5.6.1 requires of list recipients. Whitespace
  inside a spec (``0 - 5``) is not in the grammar and makes the header malformed.
* One invalid spec (``5-2``, ``abc``, ``1-2-3``...) invalidates the whole header, as RFC 9110
  §14.1.1 defines validity for the range-set as a whole; this wins over unsatisfiability.
* Empty representation (size 0): int-ranges (``0-``, ``0-0``...) are unsatisfiable (first-pos is
  never below a length of 0), so they yield 416. A non-zero suffix (``-5``) is satisfiable per
  RFC 9110 §14.1.1, but its result is the whole, empty representation and no ``Content-Range``
  can express an empty slice, so we return ``None`` and the caller sends an empty 200.
"""

__all__ = [
    "MAX_HEADER_LENGTH",
    "MAX_RANGES",
    "MAX_RANGE_SPECS",
    "UnsatisfiableRange",
    "parse_range",
]

# After coalescing. A client asking for more disjoint pieces than this is either broken or trying
# to make us emit a huge multipart body of tiny parts; a full 200 is cheaper for both sides.
MAX_RANGES = 16
# Before coalescing: bounds the parsing and sorting work however the header is built.
MAX_RANGE_SPECS = 50
# Checked before any splitting or int() conversion, which keeps the worst case linear and small.
# Generous enough for MAX_RANGE_SPECS specs with realistic offsets.
MAX_HEADER_LENGTH = 1000

_OWS = " \t"


class UnsatisfiableRange(Exception):
    """No requested range overlaps the representation; the caller answers 416."""


def _is_digits(text: str) -> bool:
    # str.isdigit() alone accepts non-ASCII digits such as '٣' or '²', which are not 1*DIGIT
    # (and some of which int() then rejects).
    return text.isascii() and text.isdigit()


def parse_range(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """Ranges as (start, end_exclusive), sorted and coalesced, or None to serve the full body.

    Raises ``UnsatisfiableRange`` when the header is valid but no range overlaps ``size`` bytes.
    Never raises anything else for any header value.
    """
    if not header:
        return None
    # What every <audio> element sends first; skip the general machinery for it.
    if header == "bytes=0-":
        if size > 0:
            return [(0, size)]
        raise UnsatisfiableRange
    if len(header) > MAX_HEADER_LENGTH:
        return None

    unit, sep, range_set = header.partition("=")
    unit = unit.strip(_OWS)
    # isascii() first: lower() of some non-ASCII letters could otherwise spell "bytes".
    if not sep or not unit.isascii() or unit.lower() != "bytes":
        return None

    ranges: list[tuple[int, int]] = []
    n_specs = 0
    empty_suffix_satisfied = False
    for raw_spec in range_set.split(","):
        spec = raw_spec.strip(_OWS)
        if not spec:
            continue
        n_specs += 1
        if n_specs > MAX_RANGE_SPECS:
            return None
        first, dash, last = spec.partition("-")
        if not dash:
            return None
        if not first:
            # suffix-range: the last N bytes.
            if not _is_digits(last):
                return None
            length = int(last)
            if length == 0:
                continue
            if size == 0:
                empty_suffix_satisfied = True
                continue
            ranges.append((max(0, size - length), size))
            continue
        if not _is_digits(first):
            return None
        start = int(first)
        if last:
            if not _is_digits(last):
                return None
            last_pos = int(last)
            if last_pos < start:
                return None
            end = min(last_pos + 1, size)
        else:
            end = size
        # Unsatisfiable specs are dropped; they only matter if none survives.
        if start < size:
            ranges.append((start, end))

    if not ranges:
        if n_specs == 0 or empty_suffix_satisfied:
            return None
        raise UnsatisfiableRange

    if len(ranges) == 1:
        return ranges

    # Overlapping and adjacent ranges are merged (RFC 9110 §14.3 allows it): it makes the
    # response smaller and defeats "many overlapping ranges" amplification.
    ranges.sort()
    merged = [ranges[0]]
    for start, end in ranges[1:]:
        prev_start, prev_end = merged[-1]
        if start <= prev_end:
            if end > prev_end:
                merged[-1] = (prev_start, end)
        else:
            merged.append((start, end))
    if len(merged) > MAX_RANGES:
        return None
    return merged
