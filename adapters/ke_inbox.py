"""``ke_inbox``: the pull inbox. The KE's system polls ``GET /ke/{kommunenr}/inbox`` and
acknowledges each message with ``POST /ke/{kommunenr}/inbox/{id}/ack``.

Delivering means putting the message in that kommune's inbox in the gateway's own store;
putting it there twice leaves it there once. The kind does not matter here: a need notice and
a plan transfer are placed alike, and ``GET /ke/{kommunenr}/inbox/{id}`` renders either with
``mappings/outbound.py``, so the KE reads a plan with every forskrift § 19 item.
"""

from __future__ import annotations

from gateway.delivery import AdapterContext, Delivered, Delivery, DeliveryFailed
from gateway.delivery_policy import Cause
from gateway.domain.model import CoordinatingUnit
from gateway.store import repository as repo


class KeInbox:
    name = "ke_inbox"

    def __init__(self, context: AdapterContext) -> None:
        self.db = context.db

    async def deliver(self, delivery: Delivery) -> Delivered:
        if not isinstance(delivery.unit, CoordinatingUnit):
            # the directory refuses this; a unit without a kommune has no inbox here
            raise DeliveryFailed(Cause.MISCONFIGURED, "ke_inbox delivers to a kommune's KE only")
        new = await self.db.write_grouped(
            repo.put_in_inbox, delivery.message_id, delivery.unit.kommune_nr
        )
        return Delivered("placed in KE inbox" if new else "already in KE inbox")


def create(context: AdapterContext) -> KeInbox:
    return KeInbox(context)
