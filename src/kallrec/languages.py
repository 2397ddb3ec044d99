"""Language codes as sessions take them (``source_language``, ``target_language``).

Kallglot's docs show ISO 639-1 codes (``de``, ``en``) and name the error for anything else
``invalid_language_code``; its list of languages is not public. kallrec accepts a BCP 47 tag of
the common shape: a language subtag, then optionally a script and a region, separated by ``-``:

* language: an ISO 639-1 code from the list below (``de``), or three letters (ISO 639-2/3,
  ``yue``, ``fil``: too many to list, so only their shape is checked);
* script: four letters (``zh-Hant``);
* region: two letters or three digits (``en-US``, ``pt-BR``, ``es-419``).

Case does not matter (``en-us`` is ``en-US``); the code is stored and echoed as sent. Anything
else (``english``, ``de_DE``, ``x``, ``""``, extensions and private-use tags) is refused.
"""

from __future__ import annotations

import re
from typing import TypeGuard

MAX_CHARS = 16

# ISO 639-1, plus the withdrawn codes some speech APIs still send (iw, in, ji, jw, mo, sh).
_CODES = (
    "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv "
    "cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr "
    "ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw "
    "ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv "
    "ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr "
    "ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi "
    "yo za zh zu "
    "iw in ji jw mo sh"
)
ISO_639_1 = frozenset(_CODES.split())

_TAG = re.compile(
    r"(?P<language>[A-Za-z]{2,3})(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|[0-9]{3}))?", re.ASCII
)


def is_language_code(value: object) -> TypeGuard[str]:
    if not isinstance(value, str) or len(value) > MAX_CHARS:
        return False
    match = _TAG.fullmatch(value)
    if match is None:
        return False
    language = match["language"].lower()
    return len(language) == 3 or language in ISO_639_1
