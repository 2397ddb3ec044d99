"""What `kallrec serve` does before it serves, in a child process of its own.

Brings the schema up to date and, on a new data directory, creates the demo organization with
a sample call. It runs apart from the server so that the process that forks the workers never
loads the database, audio or storage libraries (nor anything that does not survive fork(), such
as obstore's runtime). Reads the settings from ``KALLREC_*``; its last line of output is the demo
it created as a JSON object, or ``null``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json

from kallrec.cli.bootstrap import Demo, create_demo, is_new
from kallrec.config import Settings
from kallrec.runtime import Runtime


async def prepare(settings: Settings) -> Demo | None:
    rt = Runtime(settings)  # migrates
    try:
        return await create_demo(rt) if is_new(rt) else None
    finally:
        rt.close()


def main() -> None:
    demo = asyncio.run(prepare(Settings.from_env()))
    print(json.dumps(None if demo is None else dataclasses.asdict(demo)))


if __name__ == "__main__":
    main()
