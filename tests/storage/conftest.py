"""S3 fixtures: one moto server for the session (each test gets its own bucket), and a private
server for the tests that take the store down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kallrec.storage.s3 import S3Options, S3Storage
from tests.storage.moto_s3 import ACCESS_KEY, REGION, SECRET_KEY, MotoS3


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    server = MotoS3().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_moto() -> Iterator[MotoS3]:
    """A server of the test's own, free to be stopped and restarted."""
    server = MotoS3().start()
    try:
        yield server
    finally:
        server.stop()


def s3_options(server: MotoS3, **changes: object) -> S3Options:
    values = {
        "endpoint_url": server.endpoint,
        "region": REGION,
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY,
        **changes,
    }
    return S3Options(**values)


def s3_storage(server: MotoS3, prefix: str = "kallrec", **changes: object) -> S3Storage:
    return S3Storage(server.create_bucket(), prefix, s3_options(server, **changes))


@pytest.fixture
def s3(moto_s3: MotoS3) -> S3Storage:
    return s3_storage(moto_s3)
