"""The calls: an INVITE becomes a session's recording, a BYE ends it.

aiosipua does the SIP (transactions, dialogs, retransmissions, CANCEL, OPTIONS, session timers);
this module decides what each call is: who may make it (admission.py), which session it records
into (an existing one for a plain call, a new one for SIPREC), which of its streams is which
speaker, and when the session ends. Audio goes through media.py into the same tracks, and the
session ends through the same ``end_session``, as for the WebSocket stream: the recordings,
jobs and webhooks that follow are the ones every way in shares.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from aiosipua import IncomingCall, SipRequest, SipUAS
from aiosipua.sdp import SdpMessage, parse_sdp

from kallrec import ids, timeutil
from kallrec.config import SipTrunk
from kallrec.db.models import Organization, Session
from kallrec.download_links import signing_secret
from kallrec.events import session_event
from kallrec.lifecycle import end_session
from kallrec.live.flush import register_writer
from kallrec.metrics import SipMetrics
from kallrec.runtime import Runtime
from kallrec.sip import admission, sdp, siprec
from kallrec.sip.digest import DigestGuard
from kallrec.sip.media import CallAudio, PortPool, RtpStream

log = logging.getLogger("kallrec.sip")

# How often a call stamps its session's last audio (the idle timeout) and checks whether the
# session was ended elsewhere (POST /v1/sessions/{id}/end), which hangs the call up.
WATCH_SECONDS = 5.0
SIPREC_MODE = "bidirectional_translation"


@dataclass
class Call:
    call_id: str
    kind: str  # "sip" or "siprec"
    session: Session
    incoming: IncomingCall
    audio: CallAudio
    streams: dict[int, RtpStream] = field(default_factory=dict)  # offer m-line index -> stream
    watcher: asyncio.Task[None] | None = None
    finished: bool = False
    # Set once the answered call's session is stored and started: a BYE that comes sooner
    # waits for it, so the session it ends is the one that was started.
    started: asyncio.Event = field(default_factory=asyncio.Event)


class Calls:
    def __init__(
        self,
        rt: Runtime,
        metrics: SipMetrics,
        ports: PortPool,
        trunks: list[SipTrunk],
        advertised_address: str = "",
        digest: DigestGuard | None = None,
    ) -> None:
        self.rt = rt
        self.metrics = metrics
        self.ports = ports
        self.trunks = trunks
        self.advertised_address = advertised_address
        self.digest = digest or DigestGuard([])
        self.calls: dict[str, Call] = {}
        self._agents: list[SipUAS] = []
        self._pending: set[asyncio.Task[None]] = set()
        self._orgs: dict[str, Organization] = {}

    def attach(self, uas: SipUAS) -> None:
        self._agents.append(uas)
        uas.on_invite = lambda call: self._spawn(self._new_call(call))
        uas.on_reinvite = lambda call: self._spawn(self._reinvite(call))
        uas.on_bye = lambda call, request: self._spawn(self._ended(call.call_id, "bye"))
        uas.on_cancel = lambda request, addr: self._cancelled(request)
        uas.on_ack_timeout = lambda call: self._spawn(self._ended(call.call_id, "no_ack"))
        uas.on_session_expired = lambda call: self._spawn(self._ended(call.call_id, "expired"))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _cancelled(self, request: SipRequest) -> None:
        self.metrics.answered(487)

    # -- a new call ---------------------------------------------------------------------------

    async def _new_call(self, incoming: IncomingCall) -> None:
        try:
            call = await self._answer(incoming)
        except admission.Refusal as refusal:
            self._reject(incoming, refusal.status, refusal.reason, refusal.headers)
            return
        except Exception:
            log.exception("INVITE %s failed", incoming.call_id)
            self._reject(incoming, 500, "Server Internal Error")
            return
        if call is not None:
            self.metrics.answered(200)

    def _reject(
        self,
        incoming: IncomingCall,
        status: int,
        reason: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.metrics.answered(status)
        if incoming.dialog.state.name == "TERMINATED":  # CANCELled meanwhile
            return
        if not headers:
            incoming.reject(status, reason)
            return
        response = incoming.dialog.create_response(incoming.invite, status, reason)
        for name, value in headers.items():
            response.headers.set_single(name, value)
        if incoming.transport is not None:
            incoming.transport.send_reply(response)
        incoming.dialog.terminate()

    async def _answer(self, incoming: IncomingCall) -> Call | None:
        invite = incoming.invite
        content_type = invite.content_type or ""
        if not invite.body:
            raise admission.Refusal(488, "Not Acceptable Here")  # no offer: kallrec wants one
        try:
            offer_text, metadata_xml = siprec.split_body(content_type, invite.body)
            offer = parse_sdp(offer_text)
            metadata = siprec.parse_metadata(metadata_xml) if metadata_xml else None
        except (siprec.BadSiprec, ValueError, IndexError):
            raise admission.Refusal(400, "Bad Request") from None
        origin = await self._origin(incoming)
        token = _token(invite)
        if metadata_xml is not None or _is_siprec(invite):
            kind = "siprec"
            if origin is None:
                raise self._unauthorized()
        else:
            kind = "sip"
            if origin is None and not token and self.digest.enabled:
                raise self._unauthorized()
        streams = sdp.receivable_streams(offer)
        if not streams:
            raise admission.Refusal(488, "Not Acceptable Here")
        if kind == "sip":
            session = await self._admit(invite, token, origin)
            speakers = _plain_speakers(session, len(streams))
        else:
            assert origin is not None
            meta = metadata or siprec.Metadata()
            by_label = meta.speaker_of_labels(agent_first=origin.agent_is_caller)
            speakers = _siprec_speakers(streams, by_label)
            session = self._siprec_session(invite, origin, meta, by_label)
        if incoming.dialog.state.name == "TERMINATED":  # CANCELled while we looked it up
            return None
        return await self._start(incoming, kind, session, offer, streams, speakers)

    async def _origin(self, incoming: IncomingCall) -> admission.Origin | None:
        """The organization the caller's address (a trunk) or its digest answer vouches for."""
        trunk = admission.trunk_for(self.trunks, incoming.source_addr[0])
        if trunk is not None:
            org = await self._org(trunk.org)
            return admission.Origin(org.id, trunk.livemode, trunk.agent_is_caller) if org else None
        credential = self.digest.verify(incoming.invite)
        if credential is not None:
            org = await self._org(credential.org)
            return admission.Origin(org.id, credential.livemode) if org else None
        return None

    def _unauthorized(self) -> admission.Refusal:
        """A challenge when credentials could let the caller in, else the plain refusal."""
        if self.digest.enabled:
            challenge = {"WWW-Authenticate": self.digest.challenge()}
            return admission.Refusal(401, "Unauthorized", challenge)
        return admission.forbidden()

    async def _org(self, name: str) -> Organization | None:
        """An organization by id, else by name; found ones are remembered, a missing one is
        looked for again next time (it may be created after the server started)."""
        org = self._orgs.get(name)
        if org is None:
            repo = self.rt.repo
            org = await anyio.to_thread.run_sync(repo.get_org, name)
            if org is None:
                org = await anyio.to_thread.run_sync(repo.get_org_by_name, name)
            if org is None:
                log.warning("the SIP settings name no organization %r", name)
                return None
            self._orgs[name] = org
        return org

    async def _admit(
        self, invite: SipRequest, token: str, origin: admission.Origin | None
    ) -> Session:
        session_id = admission.session_id_of(invite.uri)
        if session_id is None:
            raise admission.forbidden()
        secret = await anyio.to_thread.run_sync(signing_secret, self.rt.settings)
        session = await anyio.to_thread.run_sync(self.rt.repo.get_session_any, session_id)
        return admission.admit(session, token, origin, secret)

    def _siprec_session(
        self,
        invite: SipRequest,
        origin: admission.Origin,
        meta: siprec.Metadata,
        by_label: dict[str, str],
    ) -> Session:
        org_id, livemode = origin.org_id, origin.livemode
        now = timeutil.now()
        call_id = invite.call_id or ""
        carrier_ids = {"sip_call_id": call_id[:255]}
        if meta.session_id:
            carrier_ids["siprec_session_id"] = meta.session_id[:255]
        session = Session(
            id=ids.new_id("sess"),
            org_id=org_id,
            livemode=livemode,
            mode=SIPREC_MODE,
            source_language=None,
            target_language=None,
            provider="sip",
            status="created",
            recording_enabled=True,
            recording_channels="dual",  # each party its own recording, and the mix
            metadata=_json(
                {"sip_call_id": call_id[:500], **siprec.session_metadata(meta, by_label)}
            ),
            stream_token=None,
            stream_token_expires_at=None,
            created_at=now,
            started_at=None,
            ended_at=None,
            routing=_json({"type": "sip", "siprec": True}),
            carrier_ids=_json(carrier_ids),
        )
        return session  # stored once the call is answered (_start)

    async def _start(
        self,
        incoming: IncomingCall,
        kind: str,
        session: Session,
        offer: SdpMessage,
        streams: list[sdp.OfferedStream],
        speakers: list[str],
    ) -> Call | None:
        """Opens the ports and answers; the session becomes active once the call is answered
        (a CANCEL before that leaves it as it was: ``created``, or for SIPREC, not made)."""
        rt = self.rt
        tracks, _ended = rt.live.connect(session.id)
        try:
            # Known to the live flusher (issue 17) before its first packet: an end right after
            # the answer still waits for what this process flushes.
            await register_writer(rt.live, rt.live_repo, session.id)
        except Exception:
            rt.live.disconnect(session.id)
            raise
        max_jump_ms = round(rt.settings.stream_max_timestamp_jump_seconds * 1000)
        call = Call(
            incoming.call_id, kind, session, incoming, CallAudio(tracks, max_jump_ms, self.metrics)
        )
        try:
            for offered, speaker in zip(streams, speakers, strict=True):
                call.streams[offered.index] = await self.ports.open(
                    self._stream_factory(call, speaker, offered.payload_types)
                )
        except OSError:
            self._close_streams(call)
            rt.live.disconnect(session.id)
            raise admission.Refusal(503, "Service Unavailable") from None
        ports = {index: stream.port for index, stream in call.streams.items()}
        answer = sdp.answer(offer, self._address_towards(incoming.source_addr[0]), ports)
        if incoming.dialog.state.name == "TERMINATED":  # CANCELled meanwhile
            self._close_streams(call)
            rt.live.disconnect(session.id)
            return None
        self.calls[call.call_id] = call
        incoming.accept(answer)
        self.metrics.calls.labels(kind).inc()
        self.metrics.calls_active.labels(kind).inc()
        try:
            if kind == "siprec":
                await anyio.to_thread.run_sync(
                    rt.repo.insert_session, session, session_event("session.created")
                )
            call.session = await anyio.to_thread.run_sync(
                rt.repo.start_session,
                session.id,
                rt.settings.node,
                session_event("session.started"),
            )
            if kind == "sip":
                await anyio.to_thread.run_sync(
                    rt.repo.add_carrier_ids, session.id, {"sip_call_id": incoming.call_id[:255]}
                )
        except Exception:
            log.exception("call %s: the session could not be started; hanging up", call.call_id)
            call.started.set()
            incoming.hangup()
            await self._ended(call.call_id, "error")
            return None
        call.started.set()
        call.watcher = asyncio.get_running_loop().create_task(self._watch(call))
        log.info("%s call %s recording into %s", kind, call.call_id, session.id)
        return call

    def _stream_factory(
        self, call: Call, speaker: str, payload_types: dict[int, str]
    ) -> Callable[[], RtpStream]:
        recording = call.session.recording_enabled
        return lambda: RtpStream(speaker, payload_types, call.audio, self.metrics, recording)

    def _address_towards(self, remote_ip: str) -> str:
        """The address to put in the SDP: the advertised one, else the local address this host
        uses to reach the caller (a listener on 0.0.0.0 has no single address of its own)."""
        if self.advertised_address:
            return self.advertised_address
        family = socket.AF_INET6 if ":" in remote_ip else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect((remote_ip, 9))  # no packet is sent: it only picks a route
                return str(probe.getsockname()[0])
            except OSError:
                return "127.0.0.1"

    # -- during a call ------------------------------------------------------------------------

    async def _reinvite(self, incoming: IncomingCall) -> None:
        """Hold, resume, a codec change or a session refresh: the same streams, a new answer."""
        call = self.calls.get(incoming.call_id)
        invite = incoming.invite
        if call is None:
            incoming.reject(481, "Call/Transaction Does Not Exist")
            return
        try:
            offer_text, _ = siprec.split_body(invite.content_type or "", invite.body)
            offer = parse_sdp(offer_text)
        except (siprec.BadSiprec, ValueError, IndexError):
            if not invite.body:  # an offerless re-INVITE: offer what we have (RFC 3261 §14.2)
                incoming.accept(incoming.sdp_answer)
                self.metrics.answered(200)
                return
            self.metrics.answered(400)
            if incoming.transport is not None:  # a 400 to this INVITE only: the call goes on
                incoming.transport.send_reply(incoming.dialog.create_response(invite, 400))
            return
        ports = {}
        for offered in sdp.receivable_streams(offer):
            stream = call.streams.get(offered.index)
            if stream is not None:
                stream.expect_from_anywhere(offered.payload_types)
                ports[offered.index] = stream.port
        answer = sdp.answer(offer, self._address_towards(incoming.source_addr[0]), ports)
        incoming.accept(answer)
        self.metrics.answered(200)

    async def _watch(self, call: Call) -> None:
        """Keeps the session from idling out while audio flows; hangs up when it ended elsewhere."""
        rt = self.rt
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            if call.finished:
                return
            with contextlib.suppress(Exception):  # the database is briefly away: next time
                current = await anyio.to_thread.run_sync(rt.repo.get_session_any, call.session.id)
                if current is None or current.status == "ended":
                    call.incoming.hangup()
                    await self._ended(call.call_id, "ended_elsewhere")
                    return
                if call.audio.wrote:
                    await anyio.to_thread.run_sync(
                        rt.repo.touch_session_audio, call.session.id, timeutil.now()
                    )

    async def _ended(self, call_id: str, why: str) -> None:
        """The call is over (BYE either way, no ACK, session timer): its session ends."""
        call = self.calls.pop(call_id, None)
        if call is None or call.finished:
            return
        call.finished = True
        await call.started.wait()
        if call.watcher is not None and why != "ended_elsewhere":
            call.watcher.cancel()
        # A call kallrec hung up (or that timed out) is still in aiosipua's table, with its
        # timers: aiosipua forgets a call only when the other side's BYE arrives.
        call.incoming._stop_retransmissions()
        for agent in self._agents:
            agent._calls.pop(call_id, None)
        self.metrics.calls_active.labels(call.kind).dec()
        self._close_streams(call)
        rt = self.rt
        tracks = rt.live.tracks(call.session.id)
        if tracks is not None:
            await anyio.to_thread.run_sync(tracks.sync)
        rt.live.disconnect(call.session.id)
        session = call.session
        await end_session(rt, session.org_id, session.livemode, session.id, "completed")
        log.info("call %s ended (%s); session %s ended", call_id, why, session.id)

    def _close_streams(self, call: Call) -> None:
        for stream in call.streams.values():
            stream.close()

    async def close(self) -> None:
        """Shutting down: every call is hung up and its session ended, so nothing is lost."""
        for call in list(self.calls.values()):
            with contextlib.suppress(Exception):
                call.incoming.hangup()
            await self._ended(call.call_id, "shutdown")


def _token(invite: SipRequest) -> str:
    """The stream token: a URI parameter (;token=…) or a header."""
    token = admission.uri_param(invite.uri, "token")
    for header in admission.TOKEN_HEADERS:
        token = token or (invite.get_header(header) or "").strip()
    return token


def _is_siprec(invite: SipRequest) -> bool:
    """RFC 7866 §6.1.1: a recording session's INVITE has +sip.src in its Contact."""
    return "+sip.src" in (invite.get_header("contact") or "").lower()


def _plain_speakers(session: Session, count: int) -> list[str]:
    """What the caller sends is the inbound track: the customer's, unless the session's routing
    says the call is outbound (then it is the agent's). A second stream is the other party."""
    first, second = (
        ("agent", "customer")
        if session.direction == "outbound"
        else (
            "customer",
            "agent",
        )
    )
    return [first, second][:count] + [second] * max(0, count - 2)


def _siprec_speakers(streams: list[sdp.OfferedStream], by_label: dict[str, str]) -> list[str]:
    """Each stream's speaker: from the metadata by label, else by order (customer, agent)."""
    out: list[str] = []
    for stream in streams:
        speaker = by_label.get(stream.label or "")
        if speaker is None:
            speaker = next((s for s in ("customer", "agent") if s not in out), "agent")
        out.append(speaker)
    return out


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
