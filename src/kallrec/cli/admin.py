"""Operator actions shared by the CLI and first-run setup: organizations and keys."""

from __future__ import annotations

from collections.abc import Sequence

from kallrec import ids, keys, timeutil
from kallrec.auth import ALL_SCOPES
from kallrec.db.models import ApiKey, Organization
from kallrec.db.repository import Repository


class AdminError(ValueError):
    """An operator asked for something that cannot be done; the message says why."""


def create_key(
    repo: Repository,
    org_name: str,
    *,
    livemode: bool,
    name: str | None = None,
    scopes: Sequence[str] = (),
    retention_days: int = 30,
) -> tuple[str, ApiKey, Organization]:
    """Creates a key (and its organization when new); returns the secret, shown only now."""
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown:
        raise AdminError(
            f"Unknown scope(s): {', '.join(unknown)}. Known scopes: {', '.join(ALL_SCOPES)}."
        )
    org, _ = repo.ensure_org(org_name, retention_days)
    secret = keys.generate(livemode)
    record = ApiKey(
        id=ids.new_id("key"),
        org_id=org.id,
        livemode=livemode,
        name=name,
        prefix=keys.display_prefix(secret),
        hash=keys.hash_key(secret),
        scopes=" ".join(s for s in ALL_SCOPES if s in (scopes or ALL_SCOPES)),
        created_at=timeutil.now(),
        last_used_at=None,
        revoked_at=None,
    )
    repo.insert_key(record)
    return secret, record, org


def revoke_key(repo: Repository, key_or_id: str) -> ApiKey:
    """Revokes by the key's id (``key_…``) or by the secret itself."""
    if key_or_id.startswith("key_"):
        revoked = repo.revoke_key(key_id=key_or_id)
    else:
        parsed = keys.parse(key_or_id)
        if parsed is None:
            raise AdminError("That is neither a key id (key_…) nor a valid secret key (sk_…).")
        revoked = repo.revoke_key(key_hash=parsed.hash)
    if revoked is None:
        raise AdminError(f"No such key: {keys.display_prefix(key_or_id)}")
    return revoked


def require_org(repo: Repository, name: str) -> Organization:
    org = repo.get_org_by_name(name)
    if org is None:
        raise AdminError(f"No such organization: {name!r}.")
    return org
