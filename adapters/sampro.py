"""``sampro``: KEs on Sampro (Visma), reached over Norsk Helsenett.

Interface: the NHN message service, exactly as ``nhn_msh`` (same settings, same AppRecs).
Content: MsgHead v1.2 with two documents, the Dialogmelding 1.1 (helsefaglig dialog) every
EPJ shows and the project's structured IP content (``BehovForIP``, schemas/ip-melding-v1.xsd),
so the KE's system can file the notice without retyping it. A plan transfer goes as
``IP_PLAN`` with the structured IndividuellPlan (``mappings/outbound.to_msghead``), every
forskrift § 19 item in its field. Field limits: none known.

Both are ASSUMPTIONS, to be confirmed with the vendor before real traffic: that Sampro reads
our structured content beside the Dialogmelding (and a plan's IndividuellPlan), and that it
limits no field below what the schemas allow. Should it show only the Dialogmelding, three
facts that live only in the structure (see ``adapters/acos.py``) would not reach the case
worker, nor would any of a plan, and this profile must then complete the text as ``acos``
does.
"""

from __future__ import annotations

from adapters.nhn_msh import NhnMsh, seed_from_directory
from gateway.delivery import AdapterContext

NAME = "sampro"


def create(context: AdapterContext) -> NhnMsh:
    adapter = NhnMsh(context, name=NAME, structured=True)
    seed_from_directory(adapter, context)
    return adapter
