"""The `kallrec` command: serve, keys, orgs, import, purge."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from kallrec import timeutil
from kallrec.cli.common import (
    DataDir,
    Mode,
    err,
    fail,
    out,
    parse_mode,
    runtime_or_exit,
    settings_or_exit,
)
from kallrec.cli.webhooks import webhooks_app
from kallrec.client.cli import download
from kallrec.config import Settings
from kallrec.datadir import PRIVATE_UMASK, ensure_private_dir

if TYPE_CHECKING:  # the database stack is loaded by the commands that use it
    from kallrec.runtime import Runtime

app = typer.Typer(
    help="kallrec: self-hosted call recordings behind a Kallglot-compatible API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
orgs_app = typer.Typer(help="List and configure organizations.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(orgs_app, name="orgs")
app.add_typer(webhooks_app, name="webhooks")
storage_app = typer.Typer(help="Move the stored audio to another backend.", no_args_is_help=True)
app.add_typer(storage_app, name="storage")
app.command("download")(download)

# -- serve -------------------------------------------------------------------------------------


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on [default: 127.0.0.1].")
    ] = None,
    port: Annotated[int | None, typer.Option(help="TCP port [default: 8000].")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes; use one per core [default: 1].")
    ] = None,
    offload: Annotated[
        str | None, typer.Option(help="'nginx': let nginx send audio bytes (X-Accel-Redirect).")
    ] = None,
) -> None:
    """Run the API server (SQLite + local disk by default; nothing else needed)."""
    settings = settings_or_exit(data_dir, host=host, port=port, workers=workers, offload=offload)
    ensure_private_dir(settings.data_dir)
    os.environ.update(settings.to_env())
    # Every worker writes its metrics here; /metrics on any worker reports the sum.
    metrics_dir = settings.data_dir / "run" / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)

    # Migrations and the first-start demo run in a child process, so that the server process
    # (the parent of every worker) never loads the database, audio or storage libraries, and
    # nothing that does not survive fork() (obstore's runtime) exists before the workers are
    # forked. A plain child, not a multiprocessing pool: that would leave a resource tracker.
    prepared = subprocess.run(
        [sys.executable, "-m", "kallrec.cli.prepare"], stdout=subprocess.PIPE, check=False
    )
    if prepared.returncode != 0:
        raise typer.Exit(prepared.returncode)
    demo = json.loads(prepared.stdout.decode().splitlines()[-1])  # its last line: see prepare.py
    if demo is not None:
        _print_demo(settings, demo)
    out.print(
        f"kallrec listening on {settings.base_url} ({settings.workers} worker(s), "
        f"data in {settings.data_dir.resolve()})"
    )
    if settings.sip_listen:
        out.print(f"SIP on {settings.sip_listen}, RTP ports {settings.rtp_ports} (docs/sip.md)")
    sys.stdout.flush()
    sys.stderr.flush()
    # The same process (same PID, same signals) becomes the lean server: see server.py.
    os.execv(sys.executable, [sys.executable, "-m", "kallrec.server"])


def _print_demo(settings: Settings, demo: dict[str, str]) -> None:
    key, recording_id = demo["key"], demo["recording_id"]
    url = f"{settings.base_url}/v1/recordings/{recording_id}/audio"
    out.print("New data directory: created organization 'demo' with a sample call.")
    out.print(f"  test key:      {key}")
    out.print(f"  sample call:   {recording_id}")
    out.print(f"  try:           curl {url} -H 'Authorization: Bearer {key}' -o recording.mp3")
    out.print(f"  (saved in {settings.data_dir / 'DEMO.txt'})")


# -- keys --------------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    org: Annotated[str, typer.Option("--org", help="Organization (created if it does not exist).")],
    mode: Mode = "live",
    name: Annotated[str | None, typer.Option(help="A label to recognise the key by.")] = None,
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="Repeat for several; default: all.")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a key; the secret is printed once, alone on the last line."""
    from kallrec.cli.admin import AdminError, create_key

    livemode = parse_mode(mode)
    rt = runtime_or_exit(data_dir)
    try:
        secret, record, _ = create_key(
            rt.repo,
            org,
            livemode=livemode,
            name=name,
            scopes=scope or (),
            retention_days=rt.settings.default_retention_days,
        )
    except AdminError as exc:
        raise fail(str(exc), 2) from None
    err.print(f"Created {mode} key {record.id} for '{org}' with scopes: {record.scopes}")
    err.print("Store it now: the secret is not shown again.")
    out.print(secret)


@keys_app.command("list")
def keys_list(
    org: Annotated[str | None, typer.Option("--org", help="Only this organization.")] = None,
    data_dir: DataDir = None,
) -> None:
    """List keys (never their secrets)."""
    from kallrec.cli.admin import AdminError, require_org

    rt = runtime_or_exit(data_dir)
    try:
        org_id = require_org(rt.repo, org).id if org else None
    except AdminError as exc:
        raise fail(str(exc)) from None
    table = Table(
        "id", "prefix", "org", "mode", "name", "scopes", "created", "last used", "revoked"
    )
    for key, org_name in rt.repo.list_keys(org_id):
        table.add_row(
            key.id,
            key.prefix,
            org_name,
            "live" if key.livemode else "test",
            key.name or "",
            key.scopes,
            timeutil.iso(key.created_at),
            timeutil.iso(key.last_used_at) or "never",
            timeutil.iso(key.revoked_at) or "",
        )
    Console(width=200 if not sys.stdout.isatty() else None).print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_or_id: Annotated[str, typer.Argument(help="The key id (key_…) or the secret (sk_…).")],
    data_dir: DataDir = None,
) -> None:
    """Revoke a key: refused at once here, within seconds by running servers."""
    from kallrec.cli.admin import AdminError, revoke_key

    rt = runtime_or_exit(data_dir)
    try:
        revoked = revoke_key(rt.repo, key_or_id)
        rt.announce_change()  # servers on this host refuse it from their next request
    except AdminError as exc:
        raise fail(str(exc)) from None
    out.print(f"Revoked {revoked.id} ({revoked.prefix}).")


# -- orgs --------------------------------------------------------------------------------------


@orgs_app.command("list")
def orgs_list(data_dir: DataDir = None) -> None:
    """List organizations, their retention and whether sessions record by default."""
    rt = runtime_or_exit(data_dir)
    table = Table("id", "name", "retention (days)", "records by default", "created")
    for org in rt.repo.list_orgs():
        table.add_row(
            org.id,
            org.name,
            str(org.retention_days),
            "yes" if org.record_by_default else "no",
            timeutil.iso(org.created_at),
        )
    Console(width=200 if not sys.stdout.isatty() else None).print(table)


@orgs_app.command("update")
def orgs_update(
    org: Annotated[str, typer.Argument(help="Organization name.")],
    retention_days: Annotated[
        int | None, typer.Option("--retention-days", min=1, help="Keep audio this many days.")
    ] = None,
    record_by_default: Annotated[
        bool | None,
        typer.Option(
            "--record-by-default/--no-record-by-default",
            help="Whether sessions created without recording.enabled record (Kallglot's "
            "default, and new organizations': they do not).",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Change an organization's retention (applies to its existing recordings too) or whether
    its sessions record by default."""
    from kallrec.cli.admin import AdminError, require_org

    if retention_days is None and record_by_default is None:
        raise fail("Nothing to change: give --retention-days or --[no-]record-by-default.")
    rt = runtime_or_exit(data_dir)
    try:
        found = require_org(rt.repo, org)
    except AdminError as exc:
        raise fail(str(exc)) from None
    if retention_days is not None:
        rt.repo.set_retention(found.id, retention_days)
        rt.announce_change()  # cached recordings carry the old expires_at
        out.print(f"'{org}' now keeps recordings for {retention_days} day(s).")
    if record_by_default is not None:
        rt.repo.set_record_by_default(found.id, record_by_default)
        out.print(
            f"'{org}': sessions created without recording.enabled "
            + ("now record." if record_by_default else "no longer record.")
        )


# -- import ------------------------------------------------------------------------------------


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="WAV (PCM/μ-law/A-law), raw μ-law (.ul) or MP3.")],
    org: Annotated[str, typer.Option("--org", help="Organization that owns the recording.")],
    mode: Mode = "live",
    session_id: Annotated[
        str | None, typer.Option("--session-id", help="Attach to this session.")
    ] = None,
    channel: Annotated[
        str,
        typer.Option(help="mixed, agent, customer, or dual (stereo: left agent, right customer)."),
    ] = "mixed",
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Return once queued; a running server encodes it.")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Import a call recording; prints each new recording id on its own line, last."""
    livemode = parse_mode(mode)
    if not file.is_file():
        raise fail(f"{file}: no such file.", 2)
    rt = runtime_or_exit(data_dir)
    try:
        code = asyncio.run(_import(rt, file, org, livemode, session_id, channel, no_wait))
    finally:
        rt.close()
    raise typer.Exit(code)


async def _import(
    rt: Runtime,
    file: Path,
    org: str,
    livemode: bool,
    session_id: str | None,
    channel: str,
    no_wait: bool,
) -> int:
    from kallrec.cli.admin import AdminError, require_org
    from kallrec.errors import ApiError
    from kallrec.importing import ImportRequest, import_audio
    from kallrec.jobs.runner import run_one_job
    from kallrec.tempfiles import copy_to_temp

    try:
        owner = require_org(rt.repo, org)
    except AdminError as exc:
        raise fail(str(exc)) from None
    # The importer consumes its input; give it a copy, never the user's file.
    copy = copy_to_temp(file, rt.scratch)
    try:
        recs = await import_audio(
            rt, owner.id, livemode, ImportRequest(copy, file.name, channel, session_id)
        )
    except ApiError as exc:
        raise fail(f"{file}: {exc.message}") from None
    finally:
        copy.unlink(missing_ok=True)
    failed = False
    if not no_wait:
        pending = {r.id for r in recs}
        while pending:
            if not await run_one_job(rt):
                await asyncio.sleep(0.2)  # a running server has the job: wait for it
            for rec_id in list(pending):
                rec = rt.repo.get_recording_any(rec_id)
                if rec is None or rec.status != "processing":
                    pending.discard(rec_id)
                    if rec is None or rec.status != "ready":
                        failed = True
                        reason = rec.failure_reason if rec else "deleted"
                        err.print(f"[red]error:[/red] {rec_id} failed: {reason}")
                    else:
                        err.print(
                            f"{rec.id}: {rec.channel}, {rec.duration:.1f} s, {rec.size:,} bytes"
                        )
    for rec in recs:
        out.print(rec.id)
    return 1 if failed else 0


# -- migrate -----------------------------------------------------------------------------------


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Bring the database schema up to date (every server also does this when it starts)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from kallrec.db.engine import Database
    from kallrec.db.migrations import BASELINE, upgrade

    settings = settings_or_exit(data_dir)
    db = Database(settings.resolved_database_url, pool_size=1)
    shown = make_url(db.url).render_as_string(hide_password=True)
    try:
        outcome = upgrade(db)
    except SQLAlchemyError as exc:
        raise fail(f"could not migrate {shown}: {exc}") from None
    finally:
        db.close()
    if outcome.adopted:
        out.print(f"Adopted a database created before migrations (stamped {BASELINE}).")
    if outcome.changed:
        out.print(
            f"Migrated {shown} from {outcome.before or 'an empty database'} to {outcome.after}."
        )
    else:
        out.print(f"{shown} is up to date (revision {outcome.after}).")


# -- storage -----------------------------------------------------------------------------------


@storage_app.command("migrate")
def storage_migrate(
    to: Annotated[str, typer.Option("--to", help="Target: file:///path or s3://bucket/prefix.")],
    data_dir: DataDir = None,
) -> None:
    """Copy every stored object to another storage, verified; resumable. Then switch."""
    from kallrec.storage.migrate import run_migration

    settings = settings_or_exit(data_dir)
    try:
        report = asyncio.run(run_migration(settings, to, out.print))
    except ValueError as exc:  # a bad or identical target URL
        raise fail(str(exc), 2) from None
    out.print(
        f"{report.total} object(s): {report.copied} copied ({report.bytes_copied} bytes), "
        f"{report.already} already in the target, {report.vanished} removed meanwhile, "
        f"{len(report.failures)} failed."
    )
    if not report.ok:
        for key, reason in report.failures:
            err.print(f"[red]failed:[/red] {key}: {reason}", highlight=False)
        raise fail("some objects were not copied; fix the cause and run this again.")
    out.print(
        f"Done. To serve from the new storage, set KALLREC_STORAGE_URL={to} and restart "
        "kallrec. Until then the current storage stays in use: run this command again right "
        "before switching (it copies only what is new), with imports and calls stopped."
    )


# -- purge -------------------------------------------------------------------------------------


@app.command()
def purge(
    org: Annotated[str | None, typer.Option("--org", help="Only this organization.")] = None,
    before: Annotated[
        str | None,
        typer.Option(help="Expire recordings whose expires_at is before this ISO 8601 time."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Purge the audio of recordings past retention now (default cut-off: now)."""
    from kallrec.cli.admin import AdminError, require_org
    from kallrec.lifecycle import purge_expired, reap_files

    try:
        cutoff = timeutil.parse_iso(before) if before else None
    except ValueError:
        raise fail(f"--before {before!r} is not an ISO 8601 timestamp.", 2) from None
    rt = runtime_or_exit(data_dir)
    try:
        org_id = require_org(rt.repo, org).id if org else None
    except AdminError as exc:
        raise fail(str(exc)) from None

    async def run() -> tuple[int, int]:
        expired = await purge_expired(rt, cutoff, org_id)
        return len(expired), await reap_files(rt)

    count, removed = asyncio.run(run())
    out.print(f"Expired {count} recording(s); removed {removed} file(s) past their grace period.")


def main() -> None:
    os.umask(PRIVATE_UMASK)  # what kallrec writes into its data directory is its owner's only
    app()


if __name__ == "__main__":
    main()
