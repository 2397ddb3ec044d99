"""The one Settings object.

Every knob comes from a ``KALLREC_*`` environment variable; CLI flags are turned into the same
variables before the server (and its worker processes) start, so a worker and the CLI always read
settings the same way. Validation happens here, once, at startup.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any

from kallrec.database_url import normalize_url

ENV_PREFIX = "KALLREC_"
# MP3 at 8 kHz (MPEG-2.5 Layer III): LAME silently caps anything above 64 kbps. Kept here, not in
# the audio package, so reading settings never loads NumPy and LAME (the server's main process
# only reads settings).
ALLOWED_BITRATES = (16, 24, 32, 48, 64)
# Granian's log levels (granian.log.LogLevels), checked here so a typo fails at startup with a
# clear message instead of inside the server.
LOG_LEVELS = ("critical", "error", "warning", "warn", "info", "debug")


class SettingsError(ValueError):
    """A setting has a value kallrec cannot run with."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("kallrec-data")
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    # Metadata database; the default is a SQLite file inside data_dir. Several replicas share
    # one PostgreSQL database: postgresql://user:password@host:5432/kallrec (psycopg 3).
    database_url: str = ""
    # PostgreSQL: the most connections one process holds (docs/deployment.md: sizing).
    database_pool_size: int = 10
    # Where audio lives; the default is a directory inside data_dir.
    storage_url: str = ""
    mp3_bitrate_kbps: int = 32
    max_upload_bytes: int = 500 * 1024 * 1024
    default_retention_days: int = 30
    # Requests per key per minute; 0 disables the limiter.
    rate_limit_per_minute: int = 100_000
    # How long a key or ready-recording lookup is trusted in a process that did not change it.
    cache_ttl_seconds: float = 2.0
    purge_interval_seconds: float = 60.0
    job_poll_seconds: float = 0.5
    job_lease_seconds: float = 60.0
    # Deleted/purged files stay on disk this long so an in-flight download never loses its file.
    delete_grace_seconds: float = 120.0
    session_token_ttl_seconds: int = 300
    # Seconds before each webhook delivery attempt (spec §7); its length is the attempt budget.
    webhook_retry_schedule: str = "0,60,300,1800,7200,18000,36000,86400"
    webhook_timeout_seconds: float = 30.0
    # Finished deliveries, their attempts and events are kept this long for inspection.
    webhook_history_days: int = 30
    # Networks (comma-separated CIDRs) webhooks may reach although they are not public: loopback,
    # private, link-local, CGNAT, ... are refused otherwise (spec §9). E.g. 127.0.0.0/8.
    webhook_allowed_networks: str = ""
    # A live session with no audio for this long is ended automatically.
    session_idle_seconds: float = 1800.0
    # A live chunk may start at most this long after the furthest audio of its session (spec §9).
    stream_max_timestamp_jump_seconds: float = 60.0
    # Carrier media streams (issue 14): how long one may take to show its stream token in its
    # first frames, and how long after the last stream of a session stopped (or dropped) the
    # session is ended, unless another stream of it connects meanwhile (a reconnect, a leg).
    carrier_auth_seconds: float = 5.0
    carrier_end_grace_seconds: float = 5.0
    public_url: str = ""
    offload: str = ""
    offload_prefix: str = "/_kallrec_internal/"
    log_level: str = "info"
    # Which replica this is (logs; older releases pinned finalize jobs to it).
    node_id: str = ""
    # Live calls (docs/deployment.md): how often each process sends the audio its streams
    # received to storage (what a killed replica can lose), how much unflushed audio it keeps
    # on local disk while storage is unreachable before it refuses new audio, and how long
    # without a heartbeat before a writer is taken for dead and its session finalized without it.
    live_flush_seconds: float = 1.0
    live_spool_max_bytes: int = 256 * 1024 * 1024
    live_writer_timeout_seconds: float = 10.0
    http1_buffer_size: int = 65536
    # Connections one worker holds at once (downloads, live streams, idle keep-alives, and
    # connections still sending their request); more wait for a slot. Granian's own default is
    # backlog / workers (512 with two workers): 1,000 clients that stopped reading could then
    # leave the rest of a worker's clients waiting indefinitely. Large enough that thousands of
    # silent sockets (closed after header_timeout_seconds) leave room for everyone else.
    worker_concurrency: int = 8192
    # A connection that has not sent a complete request head this long after it opened (or
    # after its previous response, on keep-alive) is closed.
    header_timeout_seconds: float = 10.0
    # A request body that sends nothing for this long is answered 408 and its connection closed.
    body_timeout_seconds: float = 30.0
    listen_backlog: int = 4096
    # S3-compatible storage (KALLREC_STORAGE_URL=s3://bucket/prefix). Empty credentials and region
    # fall back to the standard AWS_* variables (and instance credentials) via obstore.
    s3_endpoint_url: str = ""  # e.g. http://127.0.0.1:9000 (MinIO); empty: AWS for the region
    s3_region: str = ""
    s3_access_key_id: str = field(default="", repr=False)
    s3_secret_access_key: str = field(default="", repr=False)
    # 'path' (endpoint/bucket/key: MinIO, Ceph RGW, R2, AWS) or 'virtual' (bucket.endpoint/key).
    s3_addressing_style: str = "path"
    # 'off', or '302'/'307': GET /audio answers with a redirect to a presigned S3 URL.
    s3_redirect: str = "off"
    s3_redirect_ttl_seconds: int = 300
    # Lifetime of the signed URLs that GET /v1/recordings/{id}/download redirects to.
    download_url_ttl_seconds: int = 3600
    # HMAC key of those URLs; empty: a random key kept in data_dir (shared by its replicas).
    download_signing_secret: str = field(default="", repr=False)
    # Converted downloads (GET …/download) kept in storage take at most this many bytes, least
    # recently used evicted; one that does not fit is converted while it is sent, and not kept.
    conversion_cache_max_bytes: int = 2 * 1024**3
    # A storage request (S3 HEAD or GET) with no answer this long fails: 503 storage_unavailable
    # with Retry-After. Bounds the wait for the first byte only, not a body's transfer.
    storage_first_byte_timeout_seconds: float = 5.0
    # -- SIP and SIPREC (kallrec.sip, docs/sip.md) --
    # Where the SIP process listens, e.g. udp:0.0.0.0:5060,tcp:0.0.0.0:5060,tls:0.0.0.0:5061;
    # empty: no SIP process.
    sip_listen: str = ""
    # RTP ports (an inclusive range; each call stream takes one even port).
    rtp_ports: str = "20000-20999"
    # The address put in SDP and Contact when kallrec is behind NAT (Asterisk's externip).
    sip_advertised_address: str = ""
    # Certificate and key (PEM) for tls: listeners.
    sip_tls_cert: str = ""
    sip_tls_key: str = field(default="", repr=False)
    # Trunks: which sources may call, for which organization (docs/sip.md), e.g.
    # "org_01ABC=10.0.0.0/8,192.0.2.7/32;acme:test=127.0.0.1/32;agent=caller".
    sip_trunks: str = ""
    # Digest credentials (RFC 8760), per organization: "acme=pbx1:s3cret,acme:test=lab:pw".
    sip_credentials: str = field(default="", repr=False)
    extra: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'kallrec.db').resolve()}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or f"file://{(self.data_dir / 'audio').resolve()}"

    @property
    def node(self) -> str:
        return self.node_id or f"{socket.gethostname()}:{self.data_dir.resolve()}"

    @property
    def sip_domain(self) -> str:
        """host:port of the first UDP or TCP SIP listener as callers reach it (the advertised
        address, else the listener's, else the public URL's host), or "" without SIP."""
        listeners = [x for x in parse_sip_listen(self.sip_listen) if x[0] != "tls"]
        if not listeners:
            return ""
        _, host, port = listeners[0]
        if self.sip_advertised_address:
            host = self.sip_advertised_address
        elif host in ("0.0.0.0", "::"):
            from urllib.parse import urlsplit

            host = urlsplit(self.base_url).hostname or "127.0.0.1"
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if env is None else env
        # Each value already has its field's type (_coerce), or is an override the caller typed.
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _coerce(f.name, raw, f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "data_dir" in values:
            values["data_dir"] = Path(str(values["data_dir"]))
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.mp3_bitrate_kbps not in ALLOWED_BITRATES:
            allowed = ", ".join(str(b) for b in ALLOWED_BITRATES)
            raise SettingsError(
                f"KALLREC_MP3_BITRATE_KBPS={self.mp3_bitrate_kbps} is not allowed: MP3 at 8 kHz "
                f"supports {allowed} kbps (LAME silently caps anything above 64)."
            )
        if not 1 <= self.port <= 65535:
            raise SettingsError(f"KALLREC_PORT={self.port} is not a TCP port.")
        if self.workers < 1:
            raise SettingsError("KALLREC_WORKERS must be at least 1.")
        if self.max_upload_bytes < 1:
            raise SettingsError("KALLREC_MAX_UPLOAD_BYTES must be positive.")
        if self.default_retention_days < 1:
            raise SettingsError("KALLREC_DEFAULT_RETENTION_DAYS must be at least 1.")
        if self.log_level.lower() not in LOG_LEVELS:
            raise SettingsError(
                f"KALLREC_LOG_LEVEL={self.log_level!r}: expected one of {', '.join(LOG_LEVELS)}."
            )
        if self.offload not in ("", "nginx"):
            raise SettingsError(f"KALLREC_OFFLOAD={self.offload!r}: the only offload is 'nginx'.")
        try:
            delays = self.webhook_delays
        except ValueError:
            delays = ()
        if not delays or any(d < 0 for d in delays):
            raise SettingsError(
                "KALLREC_WEBHOOK_RETRY_SCHEDULE must be comma-separated seconds, e.g. '0,60,300'."
            )
        try:
            _ = self.webhook_networks
        except ValueError as exc:
            raise SettingsError(
                f"KALLREC_WEBHOOK_ALLOWED_NETWORKS: {exc}; expected comma-separated CIDRs, "
                "e.g. '127.0.0.0/8,10.1.0.0/16'."
            ) from None
        if self.database_url:
            try:
                normalize_url(self.database_url)
            except ValueError as exc:
                raise SettingsError(f"KALLREC_DATABASE_URL: {exc}") from None
        for name in ("worker_concurrency", "listen_backlog"):
            if getattr(self, name) < 1:
                raise SettingsError(f"KALLREC_{name.upper()} must be at least 1.")
        for name in ("header_timeout_seconds", "body_timeout_seconds"):
            if not 0 < getattr(self, name) <= 3600:
                raise SettingsError(f"KALLREC_{name.upper()} must be between 0 and 3600 seconds.")
        if self.database_pool_size < 1:
            raise SettingsError("KALLREC_DATABASE_POOL_SIZE must be at least 1.")
        if self.rate_limit_per_minute < 0:
            raise SettingsError("KALLREC_RATE_LIMIT_PER_MINUTE must be 0 (off) or positive.")
        if not 0 < self.stream_max_timestamp_jump_seconds <= 3600:
            raise SettingsError(
                "KALLREC_STREAM_MAX_TIMESTAMP_JUMP_SECONDS must be between 0 and 3600 seconds."
            )
        self._validate_live()

        for name in ("carrier_auth_seconds", "carrier_end_grace_seconds"):
            if not 0 < getattr(self, name) <= 3600:
                raise SettingsError(f"KALLREC_{name.upper()} must be between 0 and 3600 seconds.")
        self._validate_storage()
        self._validate_sip()

    def _validate_sip(self) -> None:
        try:
            listeners = parse_sip_listen(self.sip_listen)
            parse_rtp_ports(self.rtp_ports)
            parse_sip_trunks(self.sip_trunks)
            parse_sip_credentials(self.sip_credentials)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        if any(proto == "tls" for proto, _, _ in listeners) and not (
            self.sip_tls_cert and self.sip_tls_key
        ):
            raise SettingsError(
                "A tls: SIP listener needs KALLREC_SIP_TLS_CERT and KALLREC_SIP_TLS_KEY."
            )

    def _validate_live(self) -> None:
        if not 0.1 <= self.live_flush_seconds <= 10:
            raise SettingsError(
                "KALLREC_LIVE_FLUSH_SECONDS must be between 0.1 and 10 seconds (it bounds the "
                "audio a killed replica loses)."
            )
        if self.live_spool_max_bytes < 1024 * 1024:
            raise SettingsError("KALLREC_LIVE_SPOOL_MAX_BYTES must be at least 1048576 (1 MiB).")
        if self.live_writer_timeout_seconds < 3 * self.live_flush_seconds:
            raise SettingsError(
                "KALLREC_LIVE_WRITER_TIMEOUT_SECONDS must be at least three flush intervals "
                "(KALLREC_LIVE_FLUSH_SECONDS): a live writer must not be taken for dead between "
                "two of its heartbeats."
            )

    def _validate_storage(self) -> None:
        url = self.resolved_storage_url
        if url.startswith("s3://") and not url.removeprefix("s3://").split("/", 1)[0]:
            raise SettingsError(
                f"KALLREC_STORAGE_URL={url!r} names no bucket (s3://bucket/prefix)."
            )
        if self.s3_endpoint_url and not self.s3_endpoint_url.startswith(("http://", "https://")):
            raise SettingsError("KALLREC_S3_ENDPOINT_URL must start with http:// or https://.")
        if bool(self.s3_access_key_id) != bool(self.s3_secret_access_key):
            raise SettingsError(
                "Set both KALLREC_S3_ACCESS_KEY_ID and KALLREC_S3_SECRET_ACCESS_KEY, or neither."
            )
        if self.s3_addressing_style not in ("path", "virtual"):
            raise SettingsError("KALLREC_S3_ADDRESSING_STYLE must be 'path' or 'virtual'.")
        if self.s3_redirect not in ("off", "302", "307"):
            raise SettingsError("KALLREC_S3_REDIRECT must be 'off', '302' or '307'.")
        if self.s3_redirect != "off" and not url.startswith("s3://"):
            raise SettingsError("KALLREC_S3_REDIRECT needs KALLREC_STORAGE_URL=s3://bucket/prefix.")
        # SigV4 presigned URLs live at most 7 days.
        for name in ("s3_redirect_ttl_seconds", "download_url_ttl_seconds"):
            if not 1 <= getattr(self, name) <= 7 * 86400:
                raise SettingsError(f"KALLREC_{name.upper()} must be between 1 and 604800.")
        if self.conversion_cache_max_bytes < 0:
            raise SettingsError(
                "KALLREC_CONVERSION_CACHE_MAX_BYTES must be 0 (keep no conversions) or positive."
            )
        if not 0 < self.storage_first_byte_timeout_seconds <= 300:
            raise SettingsError(
                "KALLREC_STORAGE_FIRST_BYTE_TIMEOUT_SECONDS must be between 0 and 300 seconds."
            )

    @property
    def webhook_delays(self) -> tuple[float, ...]:
        return tuple(float(x) for x in self.webhook_retry_schedule.split(","))

    @property
    def webhook_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """KALLREC_WEBHOOK_ALLOWED_NETWORKS parsed (ValueError when it is not valid)."""
        from kallrec.network_addresses import parse_networks

        return parse_networks(self.webhook_allowed_networks)

    def to_env(self) -> dict[str, str]:
        """The environment that reproduces these settings in another process."""
        out: dict[str, str] = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            out[ENV_PREFIX + f.name.upper()] = str(value)
        return out


# -- SIP settings, parsed (pure; kallrec.sip uses them, validate() checks them at startup) --

SIP_PROTOCOLS = ("udp", "tcp", "tls")


@dataclass(frozen=True)
class SipTrunk:
    """Sources that may call (or record) for one organization, and how SIPREC maps speakers."""

    org: str  # an organization id or name
    livemode: bool
    networks: tuple[IPv4Network | IPv6Network, ...]
    agent_is_caller: bool = False


def parse_sip_listen(value: str) -> list[tuple[str, str, int]]:
    """``udp:0.0.0.0:5060,tcp:[::]:5060`` -> [(protocol, host, port), ...]."""
    out = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        proto, _, rest = item.partition(":")
        host, _, port = rest.rpartition(":")
        host = host.strip("[]")
        if proto.lower() not in SIP_PROTOCOLS or not host or not port.isdigit():
            raise ValueError(
                f"KALLREC_SIP_LISTEN: {item!r} is not protocol:host:port "
                "(protocol udp, tcp or tls), e.g. udp:0.0.0.0:5060."
            )
        if not 1 <= int(port) <= 65535:
            raise ValueError(f"KALLREC_SIP_LISTEN: {item!r} has no valid port.")
        out.append((proto.lower(), host, int(port)))
    return out


def parse_rtp_ports(value: str) -> tuple[int, int]:
    low, _, high = value.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError:
        first, last = 0, 0
    if not 1024 <= first < last <= 65535 or last - first < 3:
        raise ValueError(
            f"KALLREC_RTP_PORTS={value!r}: expected a range of at least 4 ports between 1024 and "
            "65535, e.g. 20000-20999."
        )
    return first, last


def parse_sip_trunks(value: str) -> list[SipTrunk]:
    """``org[:test]=cidr,cidr[;agent=caller]`` entries separated by ``;``; the agent option
    belongs to the trunk before it."""
    from ipaddress import ip_network

    trunks: list[SipTrunk] = []
    for item in filter(None, (part.strip() for part in value.split(";"))):
        name, _, cidrs = item.partition("=")
        name = name.strip()
        if name == "agent" and trunks:
            if cidrs.strip() not in ("caller", "callee"):
                raise ValueError("KALLREC_SIP_TRUNKS: agent= is caller or callee.")
            last = trunks[-1]
            trunks[-1] = SipTrunk(last.org, last.livemode, last.networks, cidrs.strip() == "caller")
            continue
        org, _, mode = name.partition(":")
        try:
            networks = tuple(ip_network(c.strip(), strict=False) for c in cidrs.split(","))
        except ValueError:
            networks = ()
        if not org or mode not in ("", "live", "test") or not networks:
            raise ValueError(
                f"KALLREC_SIP_TRUNKS: {item!r} is not org[:test]=cidr[,cidr...], e.g. "
                "org_01ABC=10.0.0.0/8 or acme:test=127.0.0.1/32."
            )
        trunks.append(SipTrunk(org, mode != "test", networks))
    return trunks


@dataclass(frozen=True)
class SipCredential:
    """A username and password (SIP digest) that calls, or records, for one organization."""

    org: str  # an organization id or name
    livemode: bool
    username: str
    password: str = field(repr=False)


def parse_sip_credentials(value: str) -> list[SipCredential]:
    """``org[:test]=username:password`` entries separated by ``,`` (so a password holds no
    comma, and no whitespace at either end)."""
    out: list[SipCredential] = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, _, secret = item.partition("=")
        org, _, mode = name.strip().partition(":")
        username, _, password = secret.partition(":")
        if not org or mode not in ("", "live", "test") or not username or not password:
            raise ValueError(
                "KALLREC_SIP_CREDENTIALS: expected org[:test]=username:password entries "
                "separated by commas, e.g. acme=pbx1:s3cret."
            )
        if any(c.username == username for c in out):
            raise ValueError(f"KALLREC_SIP_CREDENTIALS: username {username!r} appears twice.")
        out.append(SipCredential(org, mode != "test", username, password))
    return out


def _coerce(name: str, raw: str, kind: object) -> object:
    kind_name = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    try:
        if kind_name == "int":
            return int(raw)
        if kind_name == "float":
            return float(raw)
    except ValueError:
        raise SettingsError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a number.") from None
    if kind_name == "Path":
        return Path(raw)
    return raw
