"""Settings: environment, overrides and validation at startup."""

from __future__ import annotations

from pathlib import Path

import pytest

from kallrec.config import Settings, SettingsError


def test_defaults_are_embedded_sqlite_and_local_disk() -> None:
    s = Settings.from_env({})
    assert s.data_dir == Path("kallrec-data")
    assert s.resolved_database_url.startswith("sqlite:///")
    assert s.resolved_storage_url.startswith("file://")
    assert s.mp3_bitrate_kbps == 32


def test_environment_and_overrides() -> None:
    s = Settings.from_env({"KALLREC_PORT": "9000", "KALLREC_DATA_DIR": "/x"}, port=9100)
    assert s.port == 9100 and s.data_dir == Path("/x")


@pytest.mark.parametrize(
    "env",
    [
        {"KALLREC_MP3_BITRATE_KBPS": "128"},
        {"KALLREC_MP3_BITRATE_KBPS": "40"},
        {"KALLREC_PORT": "http"},
        {"KALLREC_WORKERS": "0"},
        {"KALLREC_OFFLOAD": "apache"},
        {"KALLREC_LOG_LEVEL": "loud"},
    ],
)
def test_bad_settings_are_refused_at_startup(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env(env)


def test_to_env_round_trips() -> None:
    s = Settings.from_env({}, port=8123, mp3_bitrate_kbps=48)
    again = Settings.from_env(s.to_env())
    assert again == s


@pytest.mark.parametrize("name", ["WORKER_CONCURRENCY", "LISTEN_BACKLOG"])
def test_server_limits_must_be_positive(name: str) -> None:
    with pytest.raises(SettingsError, match=f"KALLREC_{name}"):
        Settings.from_env({f"KALLREC_{name}": "0"}).validate()


# -- SIP settings ------------------------------------------------------------------------------


def test_sip_listen_parses_protocols_hosts_and_ports() -> None:
    from kallrec.config import parse_sip_listen

    assert parse_sip_listen("udp:0.0.0.0:5060, tcp:[::]:5060,TLS:10.0.0.1:5061") == [
        ("udp", "0.0.0.0", 5060),
        ("tcp", "::", 5060),
        ("tls", "10.0.0.1", 5061),
    ]
    assert parse_sip_listen("") == []


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KALLREC_SIP_LISTEN": "sctp:0.0.0.0:5060"}, "KALLREC_SIP_LISTEN"),
        ({"KALLREC_SIP_LISTEN": "udp:0.0.0.0"}, "KALLREC_SIP_LISTEN"),
        ({"KALLREC_SIP_LISTEN": "udp:0.0.0.0:70000"}, "KALLREC_SIP_LISTEN"),
        ({"KALLREC_SIP_LISTEN": "tls:0.0.0.0:5061"}, "KALLREC_SIP_TLS_CERT"),
        ({"KALLREC_RTP_PORTS": "20000"}, "KALLREC_RTP_PORTS"),
        ({"KALLREC_RTP_PORTS": "100-200"}, "KALLREC_RTP_PORTS"),
        ({"KALLREC_RTP_PORTS": "30000-20000"}, "KALLREC_RTP_PORTS"),
        ({"KALLREC_SIP_TRUNKS": "acme"}, "KALLREC_SIP_TRUNKS"),
        ({"KALLREC_SIP_TRUNKS": "acme=not-a-network"}, "KALLREC_SIP_TRUNKS"),
        ({"KALLREC_SIP_TRUNKS": "acme:staging=10.0.0.0/8"}, "KALLREC_SIP_TRUNKS"),
        ({"KALLREC_SIP_TRUNKS": "acme=10.0.0.0/8;agent=nobody"}, "KALLREC_SIP_TRUNKS"),
        ({"KALLREC_SIP_CREDENTIALS": "acme=pbx1"}, "KALLREC_SIP_CREDENTIALS"),
        ({"KALLREC_SIP_CREDENTIALS": "acme:prod=pbx1:pw"}, "KALLREC_SIP_CREDENTIALS"),
        ({"KALLREC_SIP_CREDENTIALS": "a=pbx1:x,b=pbx1:y"}, "appears twice"),
    ],
)
def test_bad_sip_settings_fail_at_startup_naming_the_variable(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_the_sip_domain_is_where_callers_reach_the_first_udp_or_tcp_listener() -> None:
    def domain(**env: str) -> str:
        return Settings.from_env({f"KALLREC_{k.upper()}": v for k, v in env.items()}).sip_domain

    assert domain() == ""
    assert domain(sip_listen="udp:10.0.0.1:5060") == "10.0.0.1:5060"
    assert domain(sip_listen="udp:0.0.0.0:5070") == "127.0.0.1:5070"
    assert domain(sip_listen="tcp:0.0.0.0:5060", public_url="https://rec.example") == (
        "rec.example:5060"
    )
    assert domain(sip_listen="udp:0.0.0.0:5060", sip_advertised_address="203.0.113.9") == (
        "203.0.113.9:5060"
    )


def test_sip_credentials_parse_per_organization_and_mode() -> None:
    from kallrec.config import parse_sip_credentials

    first, second = parse_sip_credentials("acme=pbx1:s3:cr=et, acme:test=lab:pw")
    assert (first.org, first.livemode, first.username, first.password) == (
        "acme",
        True,
        "pbx1",
        "s3:cr=et",
    )
    assert (second.livemode, second.username) == (False, "lab")
    assert "s3:cr=et" not in repr(first)
