"""moto's server as the tests run it: moto_server with one gap filled (tests/src/moto.rs starts it with moto's venv).

moto 5.2 answers GetObjectAttributes without ObjectParts ("not yet returned", says its source), so a reader has no
way to learn an uploaded object's part sizes, which S3 gives there and which checking a composite checksum needs.
Here ObjectParts is answered as S3 documents it, from the parts moto keeps of every completed multipart upload:
each part's number, size and checksum in the object's algorithm (computed by moto's own function from the part's
bytes: what S3 keeps is the checksum the client sent with the part, which S3 checks against the same bytes), with
MaxParts and PartNumberMarker paging. Pages hold at most 2 parts whatever MaxParts asks (S3 may return fewer),
so that a reader's paging is exercised by objects of a few parts. Nothing else of moto changes.
"""

import sys

import moto.s3.responses as s3_responses
from moto.s3.utils import compute_checksum
from moto.server import main

PAGE = 2

_original = s3_responses.S3Response.get_object_attributes


def _object_parts(key, max_parts, marker):
    # moto closes the parts' buffers when the upload completes but keeps their sizes; the object's bytes are the
    # parts' in order.
    sizes = [key.multipart.parts[n].contentsize for n in key.multipart.partlist]
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    algorithm = (key.checksum_algorithm or "").upper()
    value = key.value if algorithm else b""
    after = [n for n in range(1, len(sizes) + 1) if n > marker]
    page = after[: min(max_parts, PAGE)]
    listed = []
    for n in page:
        entry = {"PartNumber": n, "Size": sizes[n - 1]}
        if algorithm:
            part = value[starts[n - 1] : starts[n - 1] + sizes[n - 1]]
            entry["Checksum" + algorithm] = compute_checksum(part, algorithm).decode()
        listed.append(entry)
    truncated = len(after) > len(page)
    out = {
        "TotalPartsCount": len(sizes),
        "PartNumberMarker": marker,
        "MaxParts": max_parts,
        "IsTruncated": truncated,
        "Parts": listed,
    }
    if page:
        out["NextPartNumberMarker"] = page[-1]
    return out


def get_object_attributes(self):
    wanted = self.headers.get("x-amz-object-attributes", "").split(",")
    if "ObjectParts" not in wanted:
        return _original(self)
    key, _ = self._get_key(validate_storage_class=False)
    if not key.multipart:
        return _original(self)
    max_parts = int(self.headers.get("x-amz-max-parts") or 1000)
    marker = int(self.headers.get("x-amz-part-number-marker") or 0)
    serialized = self.serialized

    def with_parts(action_result):
        action_result.result["ObjectParts"] = _object_parts(key, max_parts, marker)
        return serialized(action_result)

    self.serialized = with_parts
    try:
        return _original(self)
    finally:
        del self.serialized


s3_responses.S3Response.get_object_attributes = get_object_attributes

if __name__ == "__main__":
    sys.exit(main())
