#!/usr/bin/env python3
"""An EC2 as strict as AWS, for ec2-pool's tests: a proxy in front of moto's server.

    strict-aws.py --upstream http://127.0.0.1:MOTO --state DIR      (prints its port on stdout, then serves)

moto speaks EC2's wire protocol but is lenient where AWS is not. Everything passes through to moto unchanged except
what this layer makes as AWS makes it; each behaviour names the AWS page it follows (the README lists them too):

- DescribeVolumesModifications (API_DescribeVolumesModifications.html): answered here from the modifications this
  layer saw, the most recent one per volume only, each going `modifying` -> `optimizing` -> `completed` on this
  layer's clock. Naming a volume that was never modified is an error, InvalidVolumeModification.NotFound, "Modification
  for volume 'vol-...' does not exist." (what AWS answers; aws-sdk-rust issue 1346; moto answers an empty list).
- ModifyVolume (API_ModifyVolume.html): "you must wait for that modification to reach the completed state before you
  can initiate another modification for the same volume. You can modify a volume up to four times within a rolling
  24-hour period": IncorrectModificationState while the latest is not completed, VolumeModificationRateExceeded past
  four in 24 hours (moto modifies at once, without limit).
- AttachVolume (EC2 User Guide, volume_limits.html): an instance type with a shared attachment limit shares it
  between EBS volumes, network interfaces and NVMe instance store volumes; DescribeInstanceTypes' MaximumEbsAttachments
  already leaves room for one network interface (27 on a t3, 26 on an m5d with its instance store), so each further
  interface takes one more. Past it: AttachmentLimitExceeded (moto attaches without limit).
- RunInstances: an image whose architecture the instance type does not support is refused (InvalidParameterValue),
  as AWS refuses an x86_64 image on a Graviton type (moto launches it). A persistent Spot request
  (InstanceMarketOptions, spot-requests.html): the instance carries its SpotInstanceRequestId, and terminating the
  instance does not end the request: a new instance is launched for it (the same launch, tags included), until
  CancelSpotInstanceRequests; cancelling leaves a running instance running ("Canceling a Spot Instance request does
  not terminate running Spot Instances"). moto keeps no request for RunInstances' spot instances.
- GetConsoleOutput: the instance's console shows its SSH host keys as cloud-init prints them at first boot
  (-----BEGIN SSH HOST KEY KEYS-----), the keys the fake instance (instance.py) presents, or with --host-key FILE
  that key for every instance (the OpenZFS guest's real one); moto prints a fixed text.
- DescribeInstances' LaunchTime is when the instance last started (API_Instance.html: "The time that the instance
  was last launched"); moto keeps the first launch's.

Control (not AWS): POST /strict/advance {"seconds": N} moves this layer's clock (modifications age, the 24-hour window
slides); POST /strict/impostor {"instance": ID} makes whoever answers at that instance's address present another host
key from then on (what a man in the middle at a new public address would do); GET /strict/state shows what it keeps.
"""

import argparse
import base64
import datetime
import http.client
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

import boto3

NS = "http://ec2.amazonaws.com/doc/2016-11-15"
# How long a modification stays in each state on this layer's clock (AWS: seconds to minutes modifying, then
# optimizing for minutes to 24 hours, by the volume's size). Tests move the clock with /strict/advance rather than
# wait out an hour.
MODIFYING_S = 2.0
OPTIMIZING_S = 3600.0
DAY_S = 24 * 3600.0
MODIFICATIONS_PER_DAY = 4


class State:
    def __init__(self, upstream, state_dir, given_host_key=None):
        self.lock = threading.Lock()
        self.given_host_key = given_host_key
        self.offset = 0.0
        self.mods = {}  # volume id -> [modification], oldest first
        self.spot = {}  # request id -> {"instance": id, "body": bytes, "state": "active"|"cancelled"}
        self.started = {}  # instance id -> when StartInstances last started it (this machine's clock)
        self.state_dir = state_dir
        self.upstream = upstream
        u = urllib.parse.urlparse(upstream)
        self.host, self.port = u.hostname, u.port
        self.ec2 = boto3.client(
            "ec2",
            endpoint_url=upstream,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def now(self):
        return time.time() + self.offset


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def answer(action, inner):
    return 200, (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{NS}">'
        f"<requestId>{uuid.uuid4()}</requestId>{inner}</{action}Response>"
    ).encode()


def error(code, message, status=400):
    return status, (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
        f"<Message>{esc(message)}</Message></Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>"
    ).encode()


def listed(params, prefix):
    """The values of PREFIX.1, PREFIX.2, ... in order."""
    out, i = [], 1
    while f"{prefix}.{i}" in params:
        out.append(params[f"{prefix}.{i}"])
        i += 1
    return out


def mod_state(m, now):
    age = now - m["start"]
    if age < MODIFYING_S:
        return "modifying", 0
    if age < MODIFYING_S + OPTIMIZING_S:
        return "optimizing", 50
    return "completed", 100


# --- the behaviours, each an action -----------------------------------------------------------------------------


def describe_volumes_modifications(st, params, forward):
    ids = listed(params, "VolumeId")
    now = st.now()
    with st.lock:
        for v in ids:
            if not st.mods.get(v):
                return error("InvalidVolumeModification.NotFound", f"Modification for volume '{v}' does not exist.")
        chosen = ids or sorted(st.mods)
        items = []
        for v in chosen:
            m = st.mods[v][-1]
            state, progress = mod_state(m, now)
            end = f"<endTime>{iso(m['start'] + MODIFYING_S + OPTIMIZING_S)}</endTime>" if state == "completed" else ""
            items.append(
                f"<item><volumeId>{v}</volumeId><modificationState>{state}</modificationState>"
                f"<targetSize>{m['target']}</targetSize><originalSize>{m['original']}</originalSize>"
                f"<targetVolumeType>{m['type']}</targetVolumeType><originalVolumeType>{m['type']}</originalVolumeType>"
                f"<progress>{progress}</progress><startTime>{iso(m['start'])}</startTime>{end}</item>"
            )
    return answer("DescribeVolumesModifications", f"<volumeModificationSet>{''.join(items)}</volumeModificationSet>")


def modify_volume(st, params, forward):
    v = params.get("VolumeId", "")
    now = st.now()
    with st.lock:
        history = st.mods.get(v, [])
        if history:
            state, _ = mod_state(history[-1], now)
            if state != "completed":
                return error(
                    "IncorrectModificationState",
                    f"Volume {v} cannot be modified in modification state {state.upper()}",
                )
            recent = [m for m in history if now - m["start"] < DAY_S]
            if len(recent) >= MODIFICATIONS_PER_DAY:
                return error(
                    "VolumeModificationRateExceeded",
                    "You've reached the maximum modification rate per volume limit. Wait at least 6 hours between "
                    "modifications per EBS volume.",
                )
        before = st.ec2.describe_volumes(VolumeIds=[v])["Volumes"][0]
        status, body = forward()
        if status != 200:
            return status, body
        size = int(params.get("Size", before["Size"]))
        st.mods.setdefault(v, []).append(
            {"start": now, "original": before["Size"], "target": size, "type": before["VolumeType"]}
        )
    return answer(
        "ModifyVolume",
        f"<volumeModification><volumeId>{v}</volumeId><modificationState>modifying</modificationState>"
        f"<targetSize>{size}</targetSize><originalSize>{before['Size']}</originalSize><progress>0</progress>"
        f"<startTime>{iso(now)}</startTime></volumeModification>",
    )


def attach_volume(st, params, forward):
    inst_id = params.get("InstanceId", "")
    try:
        inst = st.ec2.describe_instances(InstanceIds=[inst_id])["Reservations"][0]["Instances"][0]
    except Exception:  # moto's own answer says what is wrong
        return forward()
    itype = st.ec2.describe_instance_types(InstanceTypes=[inst["InstanceType"]])["InstanceTypes"][0]
    ebs = itype.get("EbsInfo", {})
    limit = ebs.get("MaximumEbsAttachments")
    if limit is not None:
        attached = st.ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [inst_id]}])
        used = len(attached["Volumes"])
        if ebs.get("AttachmentLimitType", "shared") == "shared":
            used += max(0, len(inst.get("NetworkInterfaces", [])) - 1)
        if used + 1 > limit:
            return error(
                "AttachmentLimitExceeded",
                f"Instance {inst_id} ({inst['InstanceType']}) has {used} of its {limit} attachments in use "
                f"({ebs.get('AttachmentLimitType', 'shared')} limit)",
            )
    return forward()


def run_instances(st, params, body, forward):
    image, itype = params.get("ImageId"), params.get("InstanceType", "m1.small")
    try:
        arch = st.ec2.describe_images(ImageIds=[image])["Images"][0].get("Architecture", "x86_64")
        supported = st.ec2.describe_instance_types(InstanceTypes=[itype])["InstanceTypes"][0]["ProcessorInfo"][
            "SupportedArchitectures"
        ]
    except Exception:
        return forward()
    if arch not in supported:
        return error(
            "InvalidParameterValue",
            f"The architecture '{'/'.join(supported)}' of the specified instance type does not match the "
            f"architecture '{arch}' of the specified AMI. Specify an instance type and an AMI that have matching "
            f"architectures, and try again.",
        )
    status, out = forward()
    if status != 200:
        return status, out
    ids = [e.text for e in ET.fromstring(out).iter(f"{{{NS}}}instanceId")]
    for i in ids:
        host_key(st, i)
    persistent = (
        params.get("InstanceMarketOptions.MarketType") == "spot"
        and params.get("InstanceMarketOptions.SpotOptions.SpotInstanceType") == "persistent"
    )
    if persistent:
        with st.lock:
            for i in ids:
                st.spot[f"sir-{uuid.uuid4().hex[:8]}"] = {"instance": i, "body": body, "state": "active"}
        return 200, with_spot_ids(st, out)
    return status, out


def terminate_instances(st, params, forward):
    status, out = forward()
    if status != 200:
        return status, out
    ids = listed(params, "InstanceId")
    with st.lock:
        relaunch = [(r, s) for r, s in st.spot.items() if s["instance"] in ids and s["state"] == "active"]
    for r, s in relaunch:
        # The request is still open: the Spot service fulfils it again (its own launch, not the client's retry).
        again = urllib.parse.urlencode(
            [(k, v) for k, v in urllib.parse.parse_qsl(s["body"].decode(), keep_blank_values=True) if k != "ClientToken"]
        ).encode()
        st_code, new = upstream(st, "POST", "/", again, {"Content-Type": "application/x-www-form-urlencoded"})
        if st_code == 200:
            new_id = next(ET.fromstring(new).iter(f"{{{NS}}}instanceId")).text
            host_key(st, new_id)
            with st.lock:
                s["instance"] = new_id
    return status, out


def cancel_spot_instance_requests(st, params, forward):
    items = []
    with st.lock:
        for r in listed(params, "SpotInstanceRequestId"):
            if r not in st.spot:
                return error("InvalidSpotInstanceRequestID.NotFound", f"The spot instance request ID '{r}' does not exist")
            st.spot[r]["state"] = "cancelled"
            items.append(f"<item><spotInstanceRequestId>{r}</spotInstanceRequestId><state>cancelled</state></item>")
    return answer("CancelSpotInstanceRequests", f"<spotInstanceRequestSet>{''.join(items)}</spotInstanceRequestSet>")


def describe_spot_instance_requests(st, params, forward):
    ids = listed(params, "SpotInstanceRequestId")
    items = []
    with st.lock:
        for r, s in st.spot.items():
            if ids and r not in ids:
                continue
            items.append(
                f"<item><spotInstanceRequestId>{r}</spotInstanceRequestId><state>{'active' if s['state'] == 'active' else 'cancelled'}</state>"
                f"<type>persistent</type><instanceId>{s['instance']}</instanceId>"
                f"<instanceInterruptionBehavior>stop</instanceInterruptionBehavior></item>"
            )
    return answer("DescribeSpotInstanceRequests", f"<spotInstanceRequestSet>{''.join(items)}</spotInstanceRequestSet>")


def describe_instances(st, params, forward):
    status, out = forward()
    return (status, with_spot_ids(st, out)) if status == 200 else (status, out)


def start_instances(st, params, forward):
    status, out = forward()
    if status == 200:
        with st.lock:
            for i in listed(params, "InstanceId"):
                st.started[i] = time.time()
    return status, out


def get_console_output(st, params, forward):
    i = params.get("InstanceId", "")
    pub = host_key(st, i, create=False)
    if pub is None:
        return forward()
    text = (
        "Cloud-init v. 24.4 finished\n"
        "-----BEGIN SSH HOST KEY FINGERPRINTS-----\n"
        f"{fingerprint(st, i)}\n"
        "-----END SSH HOST KEY FINGERPRINTS-----\n"
        "-----BEGIN SSH HOST KEY KEYS-----\n"
        f"{pub}\n"
        "-----END SSH HOST KEY KEYS-----\n"
    )
    return answer(
        "GetConsoleOutput",
        f"<instanceId>{i}</instanceId><timestamp>{iso(st.now())}</timestamp>"
        f"<output>{base64.b64encode(text.encode()).decode()}</output>",
    )


ACTIONS = {
    "DescribeVolumesModifications": describe_volumes_modifications,
    "ModifyVolume": modify_volume,
    "AttachVolume": attach_volume,
    "TerminateInstances": terminate_instances,
    "CancelSpotInstanceRequests": cancel_spot_instance_requests,
    "DescribeSpotInstanceRequests": describe_spot_instance_requests,
    "DescribeInstances": describe_instances,
    "StartInstances": start_instances,
    "GetConsoleOutput": get_console_output,
}


def with_spot_ids(st, out):
    """DescribeInstances' or RunInstances' answer with each persistent request's id on its instance, and each
    instance's LaunchTime the time it last started, as AWS gives it (moto keeps the first launch's)."""
    with st.lock:
        by_instance = {s["instance"]: r for r, s in st.spot.items()}
        started = dict(st.started)
    if not by_instance and not started:
        return out
    ET.register_namespace("", NS)
    root = ET.fromstring(out)
    for item in root.iter(f"{{{NS}}}item"):
        iid = item.find(f"{{{NS}}}instanceId")
        if iid is None:
            continue
        if iid.text in by_instance and item.find(f"{{{NS}}}spotInstanceRequestId") is None:
            e = ET.SubElement(item, f"{{{NS}}}spotInstanceRequestId")
            e.text = by_instance[iid.text]
        launch = item.find(f"{{{NS}}}launchTime")
        if iid.text in started and launch is not None:
            launch.text = iso(started[iid.text])
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root)


def host_key(st, instance, create=True):
    """The instance's SSH host key (its public line), made at launch as cloud-init makes one at first boot; the
    one --host-key gave, for every instance, when it was given."""
    if st.given_host_key:
        with open(st.given_host_key) as f:
            return f.read().strip()
    d = os.path.join(st.state_dir, "hostkeys")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, instance)
    if not os.path.exists(path + ".pub"):
        if not create:
            return None
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{instance}", "-f", path], check=True
        )
    with open(path + ".pub") as f:
        return f.read().strip()


def fingerprint(st, instance):
    path = st.given_host_key or os.path.join(st.state_dir, "hostkeys", instance + ".pub")
    return subprocess.run(["ssh-keygen", "-l", "-f", path], capture_output=True, text=True, check=True).stdout.strip()


# --- the proxy ---------------------------------------------------------------------------------------------------

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


def upstream(st, method, path, body, headers):
    conn = http.client.HTTPConnection(st.host, st.port, timeout=300)
    h = {k: v for k, v in headers.items() if k.lower() not in HOP}
    # moto picks the service from the credential scope: name EC2 for requests this layer makes itself.
    h.setdefault(
        "Authorization",
        "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
    )
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    st = None

    def log_message(self, *a):
        pass

    def reply(self, status, body, ctype="text/xml"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        st = self.st
        if self.path.startswith("/strict/"):
            return self.control(body)
        headers = dict(self.headers.items())

        def forward():
            return upstream(st, self.command, self.path, body, headers)

        params = {}
        if self.command == "POST" and b"Action=" in body:
            params = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode(), keep_blank_values=True).items()}
        action = params.get("Action")
        if action == "RunInstances":
            status, out = run_instances(st, params, body, forward)
        elif action in ACTIONS:
            status, out = ACTIONS[action](st, params, forward)
        else:
            status, out = forward()
        self.reply(status, out)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any

    def control(self, body):
        st = self.st
        req = json.loads(body or b"{}")
        if self.path == "/strict/advance":
            with st.lock:
                st.offset += float(req["seconds"])
        elif self.path == "/strict/impostor":
            # Someone else answers at that address now: a host key of its own.
            path = os.path.join(st.state_dir, "hostkeys", req["instance"] + ".impostor")
            if not os.path.exists(path):
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)
        elif self.path != "/strict/state":
            return self.reply(404, b"{}", "application/json")
        with st.lock:
            out = {
                "now": datetime.datetime.fromtimestamp(st.now(), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "modifications": {v: len(m) for v, m in st.mods.items()},
                "spot": {r: {"instance": s["instance"], "state": s["state"]} for r, s in st.spot.items()},
            }
        self.reply(200, json.dumps(out).encode(), "application/json")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--host-key")
    a = ap.parse_args()
    Handler.st = State(a.upstream, a.state, a.host_key)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
