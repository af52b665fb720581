"""``ke_inbox``: the pull inbox. The KE's system polls ``GET /ke/{kommunenr}/inbox`` and
acknowledges each notice with ``POST /ke/{kommunenr}/inbox/{id}/ack``.

Delivering means putting the message in that kommune's inbox in the gateway's own store;
putting it there twice leaves it there once.
"""

from __future__ import annotations

from gateway.delivery import AdapterContext, Delivered, Delivery
from gateway.store import repository as repo


class KeInbox:
    name = "ke_inbox"

    def __init__(self, context: AdapterContext) -> None:
        self.db = context.db

    async def deliver(self, delivery: Delivery) -> Delivered:
        new = await self.db.write_grouped(
            repo.put_in_inbox, delivery.message_id, delivery.unit.kommune_nr
        )
        return Delivered("placed in KE inbox" if new else "already in KE inbox")


def create(context: AdapterContext) -> KeInbox:
    return KeInbox(context)
