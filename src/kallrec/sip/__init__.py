"""SIP and SIPREC into sessions: the SIP process that ``kallrec serve`` starts beside its HTTP
workers when KALLREC_SIP_LISTEN is set (docs/sip.md).

transports (aiosipua: UDP, TCP, TLS) → ``calls`` (who may call, which session, which speaker) →
``media`` (RTP sockets) → ``rtp`` (packets, jitter buffer) and ``placement`` (the timeline) →
the live tracks every way in shares (kallrec.live).
"""
