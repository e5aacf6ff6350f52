#!/usr/bin/env python3
"""An ec2-pool v1 pool's raw key from its key files, without ec2-pool (docs/formats/ec2-pool-v1.md, "The raw
key"): the reference implementation, standard library only.

    python3 ec2-pool-v1-derive.py NAME a.key b.key | sudo zfs load-key NAME     # the 32 raw bytes on stdout
    python3 ec2-pool-v1-derive.py --hex NAME a.key b.key                        # the same as hex, to compare
    python3 ec2-pool-v1-derive.py --luks NAME a.key b.key | sudo cryptsetup open --key-file - DEV ec2pool-VOL
                                              # a LUKS pool's passphrase (64 hex digits, no newline) on stdout

Key files are zstream-seal's (docs/formats/seal-v1.md, "Key files"); every line's check is verified. The key is
written to stdout only, which must not be a terminal without --hex.
"""

import hashlib
import hmac
import sys

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ALIASES = {"O": "0", "I": "1", "L": "1"}


def key_from_file(path):
    """The 32-byte key material of a zstream-seal key file, each line's check verified."""
    lines = {}
    stated_id = None
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#") or line == "zstream-seal-key v1":
                continue
            word, _, rest = line.partition(" ")
            word = word.rstrip(":")
            if word == "id":
                stated_id = rest.strip().lower()
            elif word in ("1", "2", "3", "4"):
                lines[int(word)] = rest
            else:
                sys.exit(f"{path}: '{line}' is not a line of a zstream-seal key file")
    key = b""
    for n in (1, 2, 3, 4):
        if n not in lines:
            sys.exit(f"{path}: line {n} is missing")
        chars = [ALIASES.get(c, c) for c in lines[n].upper() if c not in "- "]
        if len(chars) != 16 or any(c not in CROCKFORD for c in chars):
            sys.exit(f"{path}: line {n} is not 16 characters of Crockford base32")
        value = 0
        for c in chars:
            value = value * 32 + CROCKFORD.index(c)
        b = value.to_bytes(10, "big")
        part, check = b[:8], b[8:]
        if hashlib.sha256(b"zstream-seal key line" + bytes([n]) + part).digest()[:2] != check:
            sys.exit(f"{path}: line {n} has a typing mistake (its check does not match)")
        key += part
    if stated_id is not None and stated_id != key_id(key).hex():
        sys.exit(f"{path}: the id line does not match the key")
    return key


def key_id(material):
    return hashlib.sha256(b"zstream-seal key id v1" + material).digest()[:8]


def pool_key(name, materials, label):
    """Steps 1-3: HKDF-SHA256 over the materials in ascending order of their ids, the label then NAME as info."""
    ikm = b"".join(sorted(materials, key=key_id))
    prk = hmac.new(b"zstream ec2-pool v1", ikm, hashlib.sha256).digest()
    # One HKDF-Expand block is 32 bytes: T(1) = HMAC(PRK, info || 0x01).
    info = label + name.encode()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def raw_key(name, materials):
    return pool_key(name, materials, b"zstream ec2-pool v1 raw key ")


def luks_passphrase(name, materials):
    return pool_key(name, materials, b"zstream ec2-pool v1 luks key ").hex().encode()


def main(argv):
    mode = argv[0] if argv[:1] in (["--hex"], ["--luks"]) else None
    args = argv[1:] if mode else argv
    if len(args) < 2:
        sys.exit("usage: ec2-pool-v1-derive.py [--hex|--luks] NAME KEYFILE...")
    materials = [key_from_file(p) for p in args[1:]]
    if len({key_id(m) for m in materials}) != len(materials):
        sys.exit("the same key file is given twice; each must be a different key")
    if mode == "--luks":
        sys.stdout.buffer.write(luks_passphrase(args[0], materials))
        return
    key = raw_key(args[0], materials)
    if mode == "--hex":
        print(key.hex())
    elif sys.stdout.isatty():
        sys.exit("stdout is a terminal: the raw key goes to `zfs load-key` (or give --hex)")
    else:
        sys.stdout.buffer.write(key)


if __name__ == "__main__":
    main(sys.argv[1:])
