"""Coverage-guided fuzzing of the XML ingest path with atheris (libFuzzer): not a test.

What runs per input is what ``POST /plo`` runs before it stores anything: the hardened parse
(mappings/plo/xmlsafe.py), the root and type checks, the official KITH XSDs, and the MsgHead
mapping of the type (notice, plan, consent statement). A ``Refused`` is the right answer to
bad input; any other exception is a crash: libFuzzer stops, prints the traceback and writes
the input to ``<out>/crash-<sha1>``. The tests/fuzz hypothesis tests cover the same ground in
every ``pytest`` run; this is for long runs by hand (hours find what seconds do not).

    .venv/bin/pip install atheris                  # not a project dependency
    .venv/bin/python bench/fuzz_xml.py --seconds 60
    .venv/bin/python bench/fuzz_xml.py --seconds 3600 --jobs 2
    .venv/bin/python bench/fuzz_xml.py --replay var/fuzz/crash-…   # one input again

The corpus starts from the gateway's own documents (built here, with the demo samples' fake
people) and the official KITH samples, and grows in ``<out>/corpus``; a dictionary of the
element and attribute names steers libFuzzer's mutations to XML that gets past the parser.
lxml/libxml2 are C and not instrumented: the coverage that guides is that of our Python.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import os
import random
import sys
import uuid
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["mappings", "gateway.domain"]):
    from gateway.demo.samples import ke_of, make_notice, make_transfer
    from gateway.domain.consent import ConsentPurpose, ConsentRecord
    from gateway.domain.model import ConsentGiver, MessageKind, Organisation
    from gateway.domain.receipt import Refused
    from mappings.plo import namespaces as ns
    from mappings.plo.consent import consent_to_msghead, msghead_to_consent
    from mappings.plo.msghead import Party, code_value, to_bytes
    from mappings.plo.notice import MSG_TYPE as NOTICE_TYPE
    from mappings.plo.notice import msghead_to_notice, notice_to_msghead
    from mappings.plo.plan import MSG_TYPE as PLAN_TYPE
    from mappings.plo.plan import msghead_to_transfer, transfer_to_msghead
    from mappings.plo.xmlsafe import parse_xml
    from mappings.plo.xsd import SchemaSet, load_schema_set

ROOT = Path(__file__).resolve().parents[1]
MAX_BYTES = 4 * 1024 * 1024
NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
GATEWAY = Party(Organisation(name="ip-gateway", her_id=99999999))
KINDS = {NOTICE_TYPE[0]: MessageKind.NEED_NOTICE, PLAN_TYPE[0]: MessageKind.PLAN_TRANSFER}
_schemas: list[SchemaSet] = []


def standards_dir() -> Path:
    for candidate in (os.environ.get("IPGW_STANDARDS_DIR"), ROOT.parent / "shared" / "standards"):
        if candidate and (Path(candidate) / "xsd").is_dir():
            return Path(candidate)
    sys.exit("the KITH schemas (shared/standards/xsd) are not found; set IPGW_STANDARDS_DIR")


def read_as_ingest(data: bytes) -> None:
    """What ``POST /plo`` does with a body before it stores it; Refused for bad input."""
    root = parse_xml(data, max_bytes=MAX_BYTES)
    if root.tag != f"{{{ns.MSGHEAD}}}MsgHead":
        return
    msg_type = code_value(root.find(f"{{{ns.MSGHEAD}}}MsgInfo/{{{ns.MSGHEAD}}}Type"))
    if msg_type not in (NOTICE_TYPE[0], PLAN_TYPE[0], "IP_SAMTYKKE"):
        return
    if _schemas[0].errors(root):
        return
    if msg_type == "IP_SAMTYKKE":
        msghead_to_consent(root, allow_synthetic_ids=True, now=NOW)
    elif KINDS[msg_type] is MessageKind.PLAN_TRANSFER:
        msghead_to_transfer(root, allow_synthetic_ids=True)
    else:
        msghead_to_notice(root, allow_synthetic_ids=True)


def one_input(data: bytes) -> None:
    with contextlib.suppress(Refused):  # the right answer to bad input
        read_as_ingest(data)


def seeds(standards: Path) -> list[bytes]:
    rng = random.Random(1)
    notice = make_notice(rng, "1506")
    trust = Organisation(name="Helse Møre og Romsdal HF", her_id=99100001, orgnr="983974899")
    record = ConsentRecord(
        id="fuzz-1",
        purposes=(ConsentPurpose.NEED_NOTICE, ConsentPurpose.PLAN),
        given_by=ConsentGiver.PERSON,
        given_on=dt.date(2026, 11, 1),
        recorded_at=NOW,
    )
    documents = [
        notice_to_msghead(notice, msg_id=str(uuid.UUID(int=1, version=4)), receiver=GATEWAY),
        transfer_to_msghead(
            make_transfer(rng, "1506", "1508", health_trust=trust),
            msg_id=str(uuid.UUID(int=2, version=4)),
            receiver=GATEWAY,
        ),
        consent_to_msghead(
            record,
            notice.patient,
            msg_id=str(uuid.UUID(int=3, version=4)),
            sender=Party(ke_of("1506")),
            receiver=GATEWAY,
            generated_at=NOW,
        ),
    ]
    samples = sorted((standards / "samples").glob("*.xml"))
    return [to_bytes(d) for d in documents] + [p.read_bytes() for p in samples]


def dictionary(documents: list[bytes]) -> list[str]:
    """libFuzzer dictionary entries: each tag and attribute name, and XML's own markup."""
    names: set[str] = set()
    for document in documents:
        root = parse_xml(document, max_bytes=MAX_BYTES)
        for element in root.iter("*"):
            local = element.tag.rsplit("}", 1)[-1]
            names |= {f"<{local}>", f"</{local}>", *(f' {a}="' for a in element.attrib)}
    names |= {"<![CDATA[", "]]>", "<!--", "-->", "<?xml", 'encoding="', "xmlns=", "&amp;"}
    return [
        '"' + n.replace("\\", "\\\\").replace('"', '\\"') + '"'
        for n in sorted(names)
        if n.isascii()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="how long to fuzz")
    parser.add_argument("--jobs", type=int, default=1, help="libFuzzer worker processes")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "fuzz", help="corpus, crashes")
    parser.add_argument("--replay", type=Path, help="run one input (a crash file) and stop")
    args, libfuzzer_args = parser.parse_known_args()
    standards = standards_dir()
    _schemas.append(load_schema_set(standards / "xsd"))
    if args.replay:
        read_as_ingest(args.replay.read_bytes())
        print("no crash: refused or read")
        return
    corpus = args.out / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    documents = seeds(standards)
    for document in documents:
        (corpus / hashlib.sha1(document).hexdigest()).write_bytes(document)
    dict_file = args.out / "xml.dict"
    dict_file.write_text("\n".join(dictionary(documents)) + "\n")
    argv = [
        sys.argv[0],
        str(corpus),
        f"-max_total_time={args.seconds}",
        f"-dict={dict_file}",
        f"-artifact_prefix={args.out}/",
        "-max_len=65536",
        "-timeout=10",
        "-rss_limit_mb=2048",
        "-print_final_stats=1",
        *([f"-jobs={args.jobs}", f"-workers={args.jobs}"] if args.jobs > 1 else []),
        *libfuzzer_args,
    ]
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
