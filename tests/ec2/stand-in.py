#!/usr/bin/env python3
"""Stand-ins for what zfs-fuse lacks, named zfs, zpool and swapon in the fake instance's PATH (see instance.py).

`zpool import -N` (import without mounting), which zfs-fuse lacks: the import, then the unmounts.
Native encryption: the key's SHA-256 is kept in STATE/keys/POOL when `zpool create -O encryption=on` reads it;
`zfs load-key` reads 32 bytes and compares; whether a pool's key is loaded is STATE/loaded/POOL, gone at export
as in ZFS. A locked pool's datasets refuse to mount and to receive. Everything else runs the real command.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys

STATE = os.environ["STAND_IN_STATE"]
ME = os.path.basename(sys.argv[0])
ARGS = sys.argv[1:]


def record(what):
    with open(os.path.join(STATE, "record.jsonl"), "a") as f:
        f.write(json.dumps(what) + "\n")


def real(name):
    path = os.environ.get("PATH", "").split(":")
    shims = os.path.join(STATE, "bin")
    found = shutil.which(name, path=":".join(p for p in path if p != shims))
    if not found:
        sys.exit(f"{name}: not found")
    return found


def run_real(args=None):
    sys.stdout.flush()
    os.execv(real(ME), [ME] + (ARGS if args is None else args))


def keyfile(pool):
    return os.path.join(STATE, "keys", pool)


def loaded(pool):
    return os.path.join(STATE, "loaded", pool)


def pool_of(ds):
    return ds.split("/")[0].split("@")[0]


def locked(pool):
    return os.path.exists(keyfile(pool)) and not os.path.exists(loaded(pool))


def read_key():
    key = sys.stdin.buffer.read(33)
    if len(key) != 32:
        print(f"Key load error: Raw key too {'short' if len(key) < 32 else 'long'} (expected 32).", file=sys.stderr)
        sys.exit(255)
    return hashlib.sha256(key).hexdigest()


def mark(path, value=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(value or "")


def zpool():
    if ARGS[:1] == ["create"]:
        crypt = {"encryption=on", "keyformat=raw", "keylocation=prompt"}
        rest, asked, i = [], set(), 1
        while i < len(ARGS):
            if ARGS[i] == "-O" and i + 1 < len(ARGS) and ARGS[i + 1] in crypt:
                asked.add(ARGS[i + 1])
                i += 2
                continue
            rest.append(ARGS[i])
            i += 1
        pool = next(a for j, a in enumerate(rest) if not a.startswith("-") and (j == 0 or not rest[j - 1].startswith("-")))
        if asked:
            if asked != crypt:
                sys.exit("stand-in: only encryption=on keyformat=raw keylocation=prompt together are stood in for")
            digest = read_key()
            record({"stand-in": "zpool create read a 32-byte key on stdin", "pool": pool})
            code = subprocess.call([real("zpool"), "create"] + rest)
            if code == 0:
                mark(keyfile(pool), digest)
                mark(loaded(pool))
            sys.exit(code)
    if ARGS[:1] == ["import"] and "-N" in ARGS:
        # zfs-fuse's import has no -N (import without mounting): import, then unmount what it mounted.
        args = [a for a in ARGS if a != "-N"]
        code = subprocess.call([real("zpool")] + args)
        if code == 0:
            pool = [a for j, a in enumerate(args[1:], 1) if not a.startswith("-") and args[j - 1] not in ("-d", "-c", "-R")][-1]
            names = subprocess.run([real("zfs"), "list", "-H", "-o", "name", "-r", pool],
                                   capture_output=True, text=True).stdout.split()
            for ds in reversed(names):
                subprocess.call([real("zfs"), "unmount", ds], stderr=subprocess.DEVNULL)
        sys.exit(code)
    if ARGS[:1] in (["export"], ["destroy"]):
        code = subprocess.call([real("zpool")] + ARGS)
        if code == 0:
            for a in ARGS[1:]:
                if not a.startswith("-") and os.path.exists(loaded(a)):
                    os.remove(loaded(a))
        sys.exit(code)
    run_real()


def zfs():
    cmd = ARGS[:1]
    pos = [a for a in ARGS[1:] if not a.startswith("-")]
    if cmd == ["load-key"]:
        pool = pos[-1]
        if not os.path.exists(keyfile(pool)):
            sys.exit(f"Key load error: Keys are not enabled for '{pool}'.")
        if os.path.exists(loaded(pool)):
            print(f"Key load error: Key already loaded for '{pool}'.", file=sys.stderr)
            sys.exit(255)
        if read_key() != open(keyfile(pool)).read():
            record({"stand-in": "load-key refused a wrong key", "pool": pool})
            print(f"Key load error: Incorrect key provided for '{pool}'.", file=sys.stderr)
            sys.exit(255)
        record({"stand-in": "load-key took the right key on stdin", "pool": pool})
        mark(loaded(pool))
        return
    if cmd == ["unload-key"]:
        pool = pos[-1]
        mounted = subprocess.run([real("zfs"), "get", "-H", "-r", "-o", "value", "mounted", pool],
                                 capture_output=True, text=True).stdout.split()
        if "yes" in mounted:
            print(f"Key unload error: '{pool}' is busy.", file=sys.stderr)
            sys.exit(255)
        if not os.path.exists(loaded(pool)):
            print(f"Key unload error: Key already unloaded for '{pool}'.", file=sys.stderr)
            sys.exit(255)
        os.remove(loaded(pool))
        record({"stand-in": "unload-key", "pool": pool})
        return
    if cmd == ["get"] and "keystatus" in ARGS:
        pool = pos[-1]
        print("unavailable" if locked(pool) else ("available" if os.path.exists(keyfile(pool)) else "-"))
        return
    if cmd in (["mount"], ["receive"], ["recv"], ["create"]) and pos and locked(pool_of(pos[-1])):
        print(f"cannot {cmd[0]} '{pos[-1]}': encryption key not loaded", file=sys.stderr)
        sys.exit(1)
    run_real()


def swapon():
    f = ARGS[-1]
    st = os.stat(f)
    with open(f, "rb") as h:
        h.seek(4086)
        sig = h.read(10)
    if st.st_mode & 0o077 or sig != b"SWAPSPACE2":
        sys.exit(f"swapon: {f}: insecure permissions or not a swap file")
    record({"stand-in": "swapon", "file": f, "bytes": st.st_size})


if __name__ == "__main__":
    record({"shim": [ME] + ARGS, "env": dict(os.environ)})
    {"zpool": zpool, "zfs": zfs, "swapon": swapon}[ME]()
