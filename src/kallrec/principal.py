"""Who is calling, as a value: the key, its organization and mode, and what it may do.

A value type of its own so that both the key store (``db.models``) and the code that checks keys
(``auth``) can use it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from kallrec.errors import PermissionDenied


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    org_id: str
    livemode: bool
    scopes: frozenset[str]

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise PermissionDenied(
                f"This API key does not have the '{scope}' scope required for this request."
            )
