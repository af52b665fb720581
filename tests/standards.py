"""Where the official schemas and samples are (``../shared/standards`` beside the project).

Not copied into the project (they are the national originals). A clone elsewhere can point at
them with ``IPGW_STANDARDS_DIR``; tests that need them fail loudly rather than skip.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

from jsonschema import Draft6Validator
from jsonschema.exceptions import best_match

from gateway.domain.identifiers import PersonIdKind

ROOT = Path(__file__).resolve().parents[1]

# FHIR identifier systems and code list 9034 as ../shared/standards/README.md lists them:
# written here from the standard, never taken from the mappings under test
FNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.1"
DNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.2"
FHN_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.3"
HPR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.4"
ORGNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.101"
HER_SYSTEM = "urn:oid:2.16.578.1.12.4.1.2"
ROLE_9034 = "urn:oid:2.16.578.1.12.4.1.1.9034"
PERSON_ID_SYSTEM = {
    PersonIdKind.FNR: FNR_SYSTEM,
    PersonIdKind.DNR: DNR_SYSTEM,
    PersonIdKind.FHN: FHN_SYSTEM,
}


def standards_dir() -> Path:
    candidates = [
        os.environ.get("IPGW_STANDARDS_DIR"),
        ROOT.parent / "shared" / "standards",
        "/work/shared/standards",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "README.md").is_file():
            return Path(candidate)
    raise FileNotFoundError(
        "the official standards (shared/standards) are not found; set IPGW_STANDARDS_DIR"
    )


@functools.cache
def r4_schema_validator() -> Draft6Validator:
    """The official FHIR R4 (4.0.1) JSON Schema, draft-06; loading and checking takes ~0.7 s."""
    schema = json.loads((standards_dir() / "fhir" / "fhir.schema.json").read_text("utf-8"))
    assert schema["$schema"] == "http://json-schema.org/draft-06/schema#"
    Draft6Validator.check_schema(schema)
    return Draft6Validator(schema)


def schema_problems(validator: Draft6Validator, bundle: dict[str, Any]) -> list[str]:
    """[] when valid; else the best error per resource (a Bundle error is one huge oneOf)."""
    if validator.is_valid(bundle):
        return []
    definitions = validator.schema["definitions"]
    problems = []
    for entry in bundle["entry"]:
        res = entry["resource"]
        one = Draft6Validator(
            {"definitions": definitions, "$ref": f"#/definitions/{res['resourceType']}"}
        )
        error = best_match(one.iter_errors(res))
        if error is not None:
            path = "/".join(str(p) for p in error.absolute_path)
            problems.append(f"{res['resourceType']}/{path}: {error.message[:300]}")
    return problems or [best_match(validator.iter_errors(bundle)).message[:300]]
