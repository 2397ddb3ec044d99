"""The kallrec Python client: the v1 API (spec) over httpx, sync and async, with safe downloads.

    from kallrec.client import Kallrec

    with Kallrec() as client:                        # KALLREC_API_KEY / KALLREC_BASE_URL
        result = client.recordings.download("rec_…", directory="calls/")
        print(result.path, result.size, result.sha256)

Works against any server that speaks the same API (kallrec or Kallglot): only the base URL and
the key change.
"""

from kallrec.client._client import DEFAULT_BASE_URL, AsyncKallrec, Kallrec, bulk_items
from kallrec.client._download import (
    DownloadItem,
    DownloadProgress,
    DownloadResult,
    ProgressCallback,
    ResultCallback,
)
from kallrec.client._errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    DownloadError,
    GoneError,
    IntegrityError,
    InvalidRequestError,
    KallrecError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    RangeNotSatisfiableError,
    RateLimitError,
    RecordingNotReadyError,
    ServiceUnavailableError,
    ValidationError,
)
from kallrec.client._filenames import filename_from_disposition, safe_filename
from kallrec.client._models import (
    DeletedObject,
    Recording,
    RecordingSettings,
    Session,
    SessionStream,
    WebhookEndpoint,
)
from kallrec.client._pagination import AsyncPage, AsyncPager, SyncPage
from kallrec.client._retry import RetryPolicy

__all__ = [
    "DEFAULT_BASE_URL",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncKallrec",
    "AsyncPage",
    "AsyncPager",
    "AuthenticationError",
    "ConfigurationError",
    "ConflictError",
    "DeletedObject",
    "DownloadError",
    "DownloadItem",
    "DownloadProgress",
    "DownloadResult",
    "GoneError",
    "IntegrityError",
    "InvalidRequestError",
    "Kallrec",
    "KallrecError",
    "NotFoundError",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "ProgressCallback",
    "RangeNotSatisfiableError",
    "RateLimitError",
    "Recording",
    "RecordingNotReadyError",
    "RecordingSettings",
    "ResultCallback",
    "RetryPolicy",
    "ServiceUnavailableError",
    "Session",
    "SessionStream",
    "SyncPage",
    "ValidationError",
    "WebhookEndpoint",
    "bulk_items",
    "filename_from_disposition",
    "safe_filename",
]
