#!/usr/bin/env python3
"""The EC2 instance of ec2-pool's tests, used as its --ssh.

    --ssh "PYTHON instance.py --endpoint URL --state DIR"   (ec2-pool adds HOST and the remote command)

It is what an instance behind SSH would be, built from real parts: it asks moto (the EC2 API the test runs) which
instance has the address HOST and refuses, as an unreachable host does (exit 255), while that instance is not
running; it materialises every volume attached to it as a file of the volume's current EC2 size at the path the
instance's device template gives (grown, never shrunk, as EBS does); then it runs the command with `sh -c` on this
machine, where ZFS is real (zfs-fuse).

One gap is covered by a stand-in, and only that one: zfs-fuse has no native encryption. The `zfs` and `zpool` in
the command's PATH (stand-in.py) take the encryption options off `zpool create`, keep a SHA-256 of the key read on
its stdin, and answer `zfs load-key`, `unload-key` and `get keystatus` from it, refusing a wrong key as ZFS does,
and refusing to mount or receive into a locked pool. Everything else goes to the real commands. `swapon` is a
stand-in too (it checks the swap file and enables nothing: this machine's swap is not the test's).

Every argv and environment this script and the stand-ins see is appended to DIR/record.jsonl, and every file they
write is under DIR (the device files under the template's directory), so a test can show the key is in none.
"""

import hashlib
import json
import os
import subprocess
import sys

import boto3


def main():
    args = sys.argv[1:]
    opts = {}
    while args and args[0].startswith("--"):
        opts[args[0][2:]] = args[1]
        args = args[2:]
    if len(args) != 2:
        print("instance.py: usage: --endpoint URL --state DIR HOST COMMAND", file=sys.stderr)
        return 2
    host, command = args
    state = opts["state"]
    os.makedirs(state, exist_ok=True)
    record(state, {"ssh": sys.argv, "env": dict(os.environ)})

    ec2 = boto3.client(
        "ec2",
        endpoint_url=opts["endpoint"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    inst = None
    for r in ec2.describe_instances()["Reservations"]:
        for i in r["Instances"]:
            if host in (i.get("PublicIpAddress"), i.get("PrivateIpAddress")):
                inst = i
    if inst is None:
        print(f"ssh: connect to host {host} port 22: No route to host", file=sys.stderr)
        return 255
    if inst["State"]["Name"] != "running":
        print(f"ssh: connect to host {host} port 22: Connection refused (instance {inst['State']['Name']})",
              file=sys.stderr)
        return 255

    tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
    template = tags.get("zstream:device-template")
    if template:
        vols = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [inst["InstanceId"]]}])
        for v in vols["Volumes"]:
            path = template.replace("{vol}", v["VolumeId"].replace("-", ""))
            if not path.startswith(state):
                print(f"instance.py: device {path} is outside the test's state directory {state}", file=sys.stderr)
                return 2
            os.makedirs(os.path.dirname(path), exist_ok=True)
            size = v["Size"] << 30
            with open(path, "ab") as f:
                if f.tell() < size:
                    f.truncate(size)

    here = os.path.dirname(os.path.abspath(__file__))
    shims = os.path.join(state, "bin")
    os.makedirs(shims, exist_ok=True)
    for name in ("zfs", "zpool", "swapon"):
        link = os.path.join(shims, name)
        if not os.path.islink(link):
            os.symlink(os.path.join(here, "stand-in.py"), link)
    env = dict(os.environ)
    env["PATH"] = shims + ":" + env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    env["STAND_IN_STATE"] = state
    return subprocess.call(["sh", "-c", command], env=env)


def record(state, what):
    with open(os.path.join(state, "record.jsonl"), "a") as f:
        f.write(json.dumps(what) + "\n")


if __name__ == "__main__":
    sys.exit(main())
