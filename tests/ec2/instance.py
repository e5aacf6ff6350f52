#!/usr/bin/env python3
"""The EC2 instance of ec2-pool's tests, used as its --ssh.

    --ssh "PYTHON instance.py --endpoint URL --state DIR --from ADDR"   (ec2-pool adds ssh's -o options, HOST and
                                                                        the remote command)

It is what an instance behind SSH would be, built from real parts: it asks the EC2 API the test runs (moto behind
strict-aws.py) which instance has the address HOST, and refuses as ssh does (exit 255) while that instance is not
running, or when none of its security groups (its VPC's default group when it names none) admits TCP port 22 from
ADDR, the address the backup host has on the internet. It checks its host key as ssh would: with
`-o StrictHostKeyChecking=yes` the key it presents (the one strict-aws.py printed on its console, or an impostor's)
must be in the `-o UserKnownHostsFile` under the `-o HostKeyAlias` name (ssh's first -o of a name wins). It
materialises every volume attached to it as a file of the size the instance sees at the path the instance's device
template gives (grown, never shrunk, as EBS does; a volume whose modification is still `modifying` keeps its old
size, as on AWS); then it runs the command with `sh -c` on this machine, where ZFS is real (zfs-fuse).

With `--guest STATE` the instance is the OpenZFS guest (scripts/guest start STATE; see in_guest below): the volumes
are its disks and the command runs there through real ssh, on real OpenZFS, with no stand-in.

On zfs-fuse, one gap is covered by a stand-in, and only that one: zfs-fuse has no native encryption. The `zfs` and `zpool` in
the command's PATH (stand-in.py) take the encryption options off `zpool create`, keep a SHA-256 of the key read on
its stdin, and answer `zfs load-key`, `unload-key` and `get keystatus` from it, refusing a wrong key as ZFS does,
and refusing to mount or receive into a locked pool. Everything else goes to the real commands. `swapon` is a
stand-in too (it checks the swap file and enables nothing: this machine's swap is not the test's).

Every argv and environment this script and the stand-ins see is appended to DIR/record.jsonl, and every file they
write is under DIR (the device files under the template's directory), so a test can show the key is in none.
"""

import ipaddress
import json
import os
import subprocess
import sys

import boto3


def main():
    args = sys.argv[1:]
    opts, ssh_opts = {}, {}
    while len(args) > 2:
        if args[0].startswith("--"):
            opts[args[0][2:]] = args[1]
        elif args[0] == "-o":
            k, _, v = args[1].partition("=")
            ssh_opts.setdefault(k.lower(), v)  # ssh: the first value given for an option is the one used
        else:
            print(f"instance.py: unexpected {args[0]}", file=sys.stderr)
            return 2
        args = args[2:]
    if len(args) != 2 or "from" not in opts:
        print("instance.py: usage: --endpoint URL --state DIR --from ADDR [--guest STATE] [-o K=V]... HOST COMMAND",
              file=sys.stderr)
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

    if not admits_ssh(ec2, inst, opts["from"]):
        print(f"ssh: connect to host {host} port 22: Connection timed out", file=sys.stderr)
        return 255
    if "guest" in opts:
        return in_guest(ec2, inst, opts["guest"], state, ssh_opts, command)
    refused = host_key_refused(state, inst["InstanceId"], host, ssh_opts)
    if refused:
        print(refused, file=sys.stderr)
        return 255

    tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
    template = tags.get("zstream:device-template")
    if template:
        vols = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [inst["InstanceId"]]}])
        # A volume still `modifying` shows its old size to the instance; from `optimizing` on, the new one.
        mods = {m["VolumeId"]: m for m in ec2.describe_volumes_modifications()["VolumesModifications"]}
        for v in vols["Volumes"]:
            path = template.replace("{vol}", v["VolumeId"].replace("-", ""))
            if not path.startswith(state):
                print(f"instance.py: device {path} is outside the test's state directory {state}", file=sys.stderr)
                return 2
            os.makedirs(os.path.dirname(path), exist_ok=True)
            m = mods.get(v["VolumeId"])
            size = (m["OriginalSize"] if m and m["ModificationState"] == "modifying" else v["Size"]) << 30
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


def visible_gib(ec2, inst):
    """The instance's attached volumes and the size each shows it (GiB): a volume still `modifying` shows its old
    size; from `optimizing` on, the new one."""
    vols = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [inst["InstanceId"]]}])
    mods = {m["VolumeId"]: m for m in ec2.describe_volumes_modifications()["VolumesModifications"]}
    out = {}
    for v in vols["Volumes"]:
        if any(a.get("Device") == inst.get("RootDeviceName") for a in v["Attachments"]):
            continue
        m = mods.get(v["VolumeId"])
        out[v["VolumeId"]] = m["OriginalSize"] if m and m["ModificationState"] == "modifying" else v["Size"]
    return out


def in_guest(ec2, inst, guest, state, ssh_opts, command):
    """The instance is the OpenZFS guest (scripts/guest's STATE directory `guest`): its attached volumes are virtio
    disks there with the volume id as serial (/dev/disk/by-id/virtio-vol...), plugged in, grown and unplugged from
    here as EC2 attaches, modifies and detaches them; a start after a stop finds what a stop clears gone (swap, the
    dm-crypt mappings, the pool's import and keys); and the command runs there through real ssh, as the ubuntu
    login, with ec2-pool's options (its pinned host key, checked by ssh against the guest's real one)."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "guest")
    tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
    pool = tags.get("zstream:pool", "")

    def guest_sh(cmd):
        return subprocess.run(["ssh", "-F", os.path.join(guest, "ssh_config"), "guest", cmd],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True)

    want = visible_gib(ec2, inst)
    # A stop clears the instance's memory: what ec2-pool's next start must build again (this pool's import and
    # key, its volumes' dm-crypt mappings, the swap and the loop device under it).
    seen = os.path.join(state, "launched-" + inst["InstanceId"])
    launched = str(inst.get("LaunchTime"))
    if os.path.exists(seen) and open(seen).read() != launched:
        mappers = " ".join("ec2pool-" + v.replace("-", "") for v in want)
        r = guest_sh(
            f"if zpool list -H -o name {pool} >/dev/null 2>&1; then zpool export -f {pool}; fi; "
            f"for m in {mappers}; do if [ -e /dev/mapper/$m ]; then cryptsetup close $m; fi; done; "
            "if [ -e /dev/mapper/ec2pool-swap ]; then swapoff /dev/mapper/ec2pool-swap || true; "
            "cryptsetup close ec2pool-swap; fi; "
            "losetup -a | grep /ec2-pool/ | cut -d: -f1 | xargs -r -n1 losetup -d; true")
        record(state, {"guest power cycle": inst["InstanceId"], "out": r.stdout + r.stderr})
    with open(seen, "w") as f:
        f.write(launched)

    disks = os.path.join(guest, "disks")
    for vol, gib in want.items():
        ident = vol.replace("-", "")
        img = os.path.join(disks, ident + ".img")
        if not os.path.exists(img):
            subprocess.run([script, "disk-add", guest, ident, f"{gib}G", "--serial", ident], check=True,
                           stdout=subprocess.DEVNULL)
            record(state, {"guest disk added": ident, "gib": gib})
        elif os.path.getsize(img) < gib << 30:
            subprocess.run([script, "disk-resize", guest, ident, f"{gib}G"], check=True, stdout=subprocess.DEVNULL)
            record(state, {"guest disk grown": ident, "gib": gib})
    # Detached or deleted volumes leave the guest (their files stay).
    plugged = os.path.join(state, "plugged-" + inst["InstanceId"])
    before = set(open(plugged).read().split()) if os.path.exists(plugged) else set()
    now = {v.replace("-", "") for v in want}
    for ident in sorted(before - now):
        subprocess.run([script, "disk-remove", guest, ident], stdout=subprocess.DEVNULL)
    with open(plugged, "w") as f:
        f.write(" ".join(sorted(now)))
    guest_sh("udevadm settle -t 30 || true")

    argv = ["ssh", "-F", os.path.join(guest, "ssh_config"), "-o", "ControlMaster=no", "-o", "ControlPath=none"]
    for k, v in ssh_opts.items():
        argv += ["-o", f"{k}={v}"]
    argv += ["-l", "ubuntu", "guest", command]
    return subprocess.call(argv)


def admits_ssh(ec2, inst, addr):
    """Whether one of the instance's security groups admits TCP port 22 from addr (EC2 User Guide, "Security group
    rules"); an instance launched without one has its VPC's default group, which admits only its own members."""
    ids = {g["GroupId"] for n in inst.get("NetworkInterfaces", []) for g in n.get("Groups", [])}
    ids |= {g["GroupId"] for g in inst.get("SecurityGroups", [])}
    if ids:
        groups = ec2.describe_security_groups(GroupIds=sorted(ids))["SecurityGroups"]
    else:
        groups = ec2.describe_security_groups(
            Filters=[{"Name": "group-name", "Values": ["default"]}, {"Name": "vpc-id", "Values": [inst["VpcId"]]}]
        )["SecurityGroups"]
    a = ipaddress.ip_address(addr)
    for g in groups:
        for p in g.get("IpPermissions", []):
            proto = p.get("IpProtocol")
            port_ok = proto == "-1" or (proto in ("tcp", "6") and p.get("FromPort", 0) <= 22 <= p.get("ToPort", -1))
            if port_ok and any(a in ipaddress.ip_network(r["CidrIp"]) for r in p.get("IpRanges", [])):
                return True
    return False


def host_key_refused(state, instance, host, ssh_opts):
    """What ssh says when the host key it is shown is not the one it was told to expect; None when it goes on. The
    key shown is the instance's (made at launch by strict-aws.py), or an impostor's once the test set one."""
    keys = os.path.join(state, "hostkeys", instance)
    shown_path = keys + ".impostor.pub" if os.path.exists(keys + ".impostor.pub") else keys + ".pub"
    with open(shown_path) as f:
        shown = f.read().split()[:2]
    if ssh_opts.get("stricthostkeychecking", "ask").lower() != "yes":
        record(state, {"trusted an unverified host key": instance})
        return None
    alias = ssh_opts.get("hostkeyalias", host)
    known = ssh_opts.get("userknownhostsfile")
    try:
        lines = open(known).read().splitlines() if known else []
    except OSError:
        lines = []
    for line in lines:
        w = line.split()
        if len(w) >= 3 and alias in w[0].split(",") and w[1:3] == shown:
            record(state, {"host key verified": instance, "alias": alias})
            return None
    return (
        f"No {shown[0]} host key is known for {alias} and you have requested strict checking.\n"
        "Host key verification failed."
    )


def record(state, what):
    with open(os.path.join(state, "record.jsonl"), "a") as f:
        f.write(json.dumps(what) + "\n")


if __name__ == "__main__":
    sys.exit(main())
