"""First start on an empty data directory: a demo organization, a test key and a sample call,
so that the README's curl example works at once."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from kallrec.cli.admin import create_key
from kallrec.importing import ImportRequest, import_audio
from kallrec.jobs.runner import run_one_job
from kallrec.runtime import Runtime
from kallrec.tempfiles import new_temp_path

DEMO_ORG = "demo"
MARKER = "DEMO.txt"


@dataclass(frozen=True)
class Demo:
    key: str
    recording_id: str
    session_id: str


DEMO_CLAIM = "demo"


def is_new(rt: Runtime) -> bool:
    """A database with no organization yet (asked of the database, not the data directory),
    and this process the one that claimed the demo: replicas starting together on one new
    database all see no organization, and only one of them wins the claim (a row in
    ``first_start_claims``: its primary key decides). So one installation has one demo."""
    return not rt.repo.list_orgs() and rt.live_repo.claim_first_start(DEMO_CLAIM)


async def create_demo(rt: Runtime) -> Demo:
    secret, _, org = create_key(
        rt.repo,
        DEMO_ORG,
        livemode=False,
        name="demo (created on first start)",
        retention_days=rt.settings.default_retention_days,
    )
    sample = resources.files("kallrec.data").joinpath("sample-call.wav")
    copy = new_temp_path(rt.scratch, ".wav")
    copy.write_bytes(sample.read_bytes())
    try:
        recs = await import_audio(
            rt, org.id, False, ImportRequest(copy, "sample-call.wav", metadata={"demo": "true"})
        )
    finally:
        copy.unlink(missing_ok=True)
    while await run_one_job(rt):
        pass
    demo = Demo(secret, recs[0].id, recs[0].session_id)
    (rt.settings.data_dir / MARKER).write_text(
        f"KALLREC_API_KEY={demo.key}\nRECORDING_ID={demo.recording_id}\n"
        f"SESSION_ID={demo.session_id}\n"
    )
    return demo
