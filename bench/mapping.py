"""Mapping benchmark: notices/s through each conversion, beside the raw ceilings of the
libraries under it (fhir.resources validation alone; lxml parse + XSD alone).

    .venv/bin/python bench/mapping.py            # 2000 notices, official XSDs found beside
    .venv/bin/python bench/mapping.py -n 500 --xsd-dir ../shared/standards/xsd

Prints one line per step with notices/s and µs per notice, and the ratio of each full step
to its ceiling. A measurement, not a test: one core, the demo's sample notices.
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
from fhir.resources.R4B.bundle import Bundle

from gateway.config import Settings
from gateway.demo.samples import make_notice
from gateway.domain.model import NeedNotice, Organisation
from mappings.fhir.notice import bundle_to_notice, notice_to_bundle
from mappings.plo.msghead import Party, to_bytes
from mappings.plo.notice import msghead_to_notice, notice_to_msghead
from mappings.plo.xmlsafe import parse_xml
from mappings.plo.xsd import load_schema_set

KOMMUNER = ["1506", "1508", "5001"]
RECEIVER = Party(Organisation(name="Koordinerende enhet", her_id=99001506))
MAX = 4 * 1024 * 1024


def rate(label: str, items: Sequence[Any], step: Callable[[Any], object]) -> float:
    for item in items[: max(1, len(items) // 10)]:  # warm caches and lazy imports
        step(item)
    started = time.perf_counter()
    for item in items:
        step(item)
    seconds = time.perf_counter() - started
    per_second = len(items) / seconds
    print(f"{label:<48} {per_second:>9,.0f}/s {seconds / len(items) * 1e6:>9,.0f} µs")
    return per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="notices per step")
    parser.add_argument("--xsd-dir", type=Path, default=None, help="official KITH XSDs")
    args = parser.parse_args()
    xsd_dir = args.xsd_dir or Settings().resolved_xsd_dir
    if xsd_dir is None:
        raise SystemExit("the official XSDs are needed: --xsd-dir or IPGW_XSD_DIR")
    schemas = load_schema_set(xsd_dir)

    rng = random.Random(1)
    notices = [make_notice(rng, KOMMUNER[i % 3]) for i in range(args.n)]
    fhir_bytes = [orjson.dumps(notice_to_bundle(n)) for n in notices]
    xml_bytes = [
        to_bytes(notice_to_msghead(n, msg_id=str(uuid.uuid4()), receiver=RECEIVER)) for n in notices
    ]
    print(f"{args.n} notices; FHIR {len(fhir_bytes[0])} B, MsgHead {len(xml_bytes[0])} B each")

    def fhir_in(raw: bytes) -> NeedNotice:
        return bundle_to_notice(orjson.loads(raw), allow_synthetic_ids=True)

    def xml_out(notice: NeedNotice) -> bytes:
        return to_bytes(notice_to_msghead(notice, msg_id=str(uuid.uuid4()), receiver=RECEIVER))

    def xml_in(raw: bytes) -> NeedNotice:
        root = parse_xml(raw, max_bytes=MAX)
        errors = schemas.errors(root)
        assert not errors, errors
        return msghead_to_notice(root, allow_synthetic_ids=True)[0]

    def fhir_out(notice: NeedNotice) -> bytes:
        return orjson.dumps(notice_to_bundle(notice))

    print("-- ceilings")
    fhir_ceiling = rate(
        "fhir.resources Bundle.model_validate alone",
        fhir_bytes,
        lambda raw: Bundle.model_validate(orjson.loads(raw)),
    )
    xml_ceiling = rate(
        "lxml parse + XSD validate alone",
        xml_bytes,
        lambda raw: schemas.schema.validate(parse_xml(raw, max_bytes=MAX)),
    )
    print("-- conversions")
    f_in = rate("FHIR bytes -> canonical (R4 JSON check + models)", fhir_bytes, fhir_in)
    x_out = rate("canonical -> MsgHead XML bytes", notices, xml_out)
    x_in = rate("MsgHead XML bytes -> canonical (parse + XSD + read)", xml_bytes, xml_in)
    f_out = rate("canonical -> FHIR bytes", notices, fhir_out)
    both = rate(
        "FHIR -> canonical -> XML -> canonical -> FHIR",
        fhir_bytes,
        lambda raw: fhir_out(xml_in(xml_out(fhir_in(raw)))),
    )
    print("-- ratios")
    print(f"FHIR in / fhir.resources ceiling            {f_in / fhir_ceiling:>6.2f}")
    print(f"XML in / lxml parse+XSD ceiling             {x_in / xml_ceiling:>6.2f}")
    print(f"XML out / XML in                            {x_out / x_in:>6.2f}")
    print(f"FHIR out / FHIR in                          {f_out / f_in:>6.2f}")
    print(f"whole round / FHIR in                       {both / f_in:>6.2f}")


if __name__ == "__main__":
    main()
