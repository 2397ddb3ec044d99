"""The host-wide change counter that keeps every process's caches honest."""

from __future__ import annotations

from pathlib import Path

from kallrec.invalidation import ChangeCounter


def test_a_bump_in_one_process_is_seen_once_by_another(tmp_path: Path) -> None:
    mine, theirs = ChangeCounter(tmp_path / "c"), ChangeCounter(tmp_path / "c")
    assert not theirs.changed()
    mine.bump()
    assert theirs.changed()
    assert not theirs.changed()
    mine.close()
    theirs.close()


async def test_a_delete_by_another_process_is_a_404_at_once(
    client, runtime, caller, tmp_path, settings
):
    from kallrec.lifecycle import delete_recording
    from kallrec.runtime import Runtime
    from tests.api.helpers import ready_recording

    rec = await ready_recording(client, runtime, caller, tmp_path)
    url = f"/v1/recordings/{rec['id']}/audio"
    assert (await client.head(url, headers=caller.headers)).status_code == 200  # now cached
    other = Runtime(settings)  # e.g. another worker on the same data directory
    await delete_recording(other, caller.org_id, False, rec["id"])
    other.close()
    assert (await client.head(url, headers=caller.headers)).status_code == 404


async def test_a_revocation_by_the_cli_is_refused_at_once(client, caller, settings):
    from kallrec.cli.admin import revoke_key
    from kallrec.runtime import Runtime

    assert (await client.get("/v1/recordings", headers=caller.headers)).status_code == 200
    other = Runtime(settings)
    revoke_key(other.repo, caller.key)
    other.announce_change()
    other.close()
    response = await client.get("/v1/recordings", headers=caller.headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "revoked_api_key"


async def test_a_row_read_while_this_process_deletes_it_is_not_cached(
    client, runtime, caller, tmp_path, monkeypatch
):
    """The delete clears the cache while the lookup is in flight; what the lookup then brings
    back must not refill it (another process's change is caught by the next request's check)."""
    from kallrec.lifecycle import delete_recording
    from tests.api.helpers import ready_recording

    rec = await ready_recording(client, runtime, caller, tmp_path)
    runtime.ready.clear()
    read_row = runtime.repo.get_recording

    def racing_read(*args):  # type: ignore[no-untyped-def]
        row = read_row(*args)  # still 'ready': read before the delete commits
        import anyio.from_thread

        anyio.from_thread.run(delete_recording, runtime, caller.org_id, False, rec["id"])
        return row

    monkeypatch.setattr(runtime.repo, "get_recording", racing_read)
    found = await runtime.get_recording(caller.org_id, False, rec["id"])
    assert found is not None and found.status == "ready"  # what the query saw, for this request
    monkeypatch.setattr(runtime.repo, "get_recording", read_row)
    url = f"/v1/recordings/{rec['id']}/audio"
    assert (await client.head(url, headers=caller.headers)).status_code == 404
