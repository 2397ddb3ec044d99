"""Webhooks (spec §7): endpoints, signatures and the durable sender.

* ``kallrec.webhooks.signing``: ``verify_signature`` for receivers, and how requests are signed.
* ``kallrec.webhooks.endpoints``: validating, creating and rendering endpoints and deliveries.
* ``kallrec.webhooks.delivery``: the background sender (lease, POST, record, retry).

Events and their pending deliveries are written by ``kallrec.events`` (the outbox).
"""

from kallrec.webhooks.signing import InvalidSignature, signature_header, verify_signature

__all__ = ["InvalidSignature", "signature_header", "verify_signature"]
