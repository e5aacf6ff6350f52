//! What only S3 targets do, on the built binary against moto's server: archive classes and their restores,
//! checksum failures on the way back, and uploads that cannot finish.

use zstream_tests::bins::bin;
use zstream_tests::data::Gen;
use zstream_tests::faults::{Proxy, Schedule};
use zstream_tests::moto::Moto;
use zstream_tests::proc::{run_env, Run};

fn ship(env: &[(String, String)], args: &[&str], input: &[u8]) -> Run {
    let mut a = args.to_vec();
    if a[0] == "put" {
        a.extend(["--part-size", "5MiB"]);
    }
    run_env(&bin("zstream-ship"), &a, input, env)
}

#[test]
fn deep_archive_objects_are_restored_once_and_waited_for() {
    let moto = Moto::start();
    moto.bucket("archive");
    let env = moto.env();
    let data = Gen::bytes(31, (6 << 20) + 11);
    let url = "s3://archive/pool/fs/mon";
    ship(
        &env,
        &["put", "--storage-class", "DEEP_ARCHIVE", url],
        &data,
    )
    .expect_code(0)
    .expect_clean_stderr("zstream-ship");
    let listed = ship(&env, &["ls", "--json", "s3://archive/pool/"], b"");
    listed.expect_code(0);
    let entry: serde_json::Value = serde_json::from_slice(listed.stdout()).unwrap();
    assert_eq!(
        entry["storage_class"],
        "DEEP_ARCHIVE",
        "{}",
        listed.describe()
    );
    assert_eq!(entry["restore"], "archived", "{}", listed.describe());

    // moto's restore transition counts from the object's creation (see Moto::slow_restores): wait until the
    // object is past it, so that the restore asked for below reads "ongoing" for 3 s.
    moto.slow_restores(3);
    moto.wait_older_than("s3://archive/pool/", 3);

    // By default a cron job does not hang: the restore is asked for and exit 75 says "come back later".
    let first = ship(&env, &["get", url], b"");
    first.expect_code(75).expect_clean_stderr("zstream-ship");
    assert!(
        first.stdout().is_empty()
            && first
                .stderr()
                .contains("restore requested (Standard tier, 3 days)"),
        "{}",
        first.describe()
    );
    assert!(
        first.stderr().contains("up to 12 hours"),
        "{}",
        first.describe()
    );
    // Asking again does not ask twice.
    let again = ship(&env, &["get", url], b"");
    again.expect_code(75);
    assert!(
        !again.stderr().contains("restore requested")
            && again.stderr().contains("already under way"),
        "{}",
        again.describe()
    );
    let listed = ship(&env, &["ls", "s3://archive/pool/"], b"");
    assert!(
        String::from_utf8_lossy(listed.stdout()).contains("\trestoring\t"),
        "{}",
        listed.describe()
    );

    // --wait polls until the restore is done, saying so, then streams the exact bytes.
    let r = ship(&env, &["get", "--wait", url], b"");
    r.expect_code(0).expect_clean_stderr("zstream-ship");
    assert!(r.stdout() == data.as_slice(), "the restored object differs");
    assert!(
        r.stderr().contains("restore under way; checking again"),
        "{}",
        r.describe()
    );
    let r = ship(&env, &["restore", url], b"");
    r.expect_code(0);
    assert!(
        r.stderr().contains("restored, readable now"),
        "{}",
        r.describe()
    );
}

#[test]
fn the_restore_command_asks_and_waits() {
    let moto = Moto::start();
    moto.bucket("cold");
    let env = moto.env();
    let url = "s3://cold/k";
    ship(
        &env,
        &["put", "--storage-class", "GLACIER", url],
        b"small and cold",
    )
    .expect_code(0);
    // The restore command succeeds once it has asked (exit 0; a get is what exits 75 while the restore runs).
    // Without a transition moto restores at once, so the object is readable after.
    let r = ship(&env, &["restore", "--tier", "Expedited", url], b"");
    r.expect_code(0);
    assert!(
        r.stderr().contains("restore requested (Expedited tier"),
        "{}",
        r.describe()
    );
    assert_eq!(ship(&env, &["get", url], b"").stdout(), b"small and cold");
    ship(&env, &["restore", "--wait", "s3://cold/missing"], b"")
        .expect_code(1)
        .expect_clean_stderr("zstream-ship");
}

#[test]
fn corrupted_reads_exit_3() {
    let moto = Moto::start();
    moto.bucket("rot");
    for (key, len) in [("single", 1 << 20), ("multi", (11 << 20) + 5)] {
        let url = format!("s3://rot/{key}");
        ship(&moto.env(), &["put", &url], &Gen::bytes(4, len)).expect_code(0);
        // A byte flipped on the wire, after the service's own checks: the SHA-256 it stored catches it.
        let proxy = Proxy::start(
            moto.port,
            Schedule {
                corrupt: true,
                ..Default::default()
            },
        );
        let r = ship(&Moto::env_for(&proxy.endpoint()), &["get", &url], b"");
        r.expect_code(3).expect_clean_stderr("zstream-ship");
        assert!(
            r.stderr().contains("do not match the SHA-256 checksum"),
            "{}",
            r.describe()
        );
        assert!(proxy.count(|c| &c.corrupted) > 0);
    }
}

#[test]
fn an_upload_that_cannot_finish_leaves_nothing() {
    let moto = Moto::start();
    moto.bucket("fail");
    let env = moto.env();
    ship(&env, &["put", "s3://fail/k"], b"the old object").expect_code(0);

    // The service refuses the second part for good: the upload is aborted, the old object stays, and there is
    // nothing for gc.
    let proxy = Proxy::start(
        moto.port,
        Schedule {
            refuse: Some("partNumber=2"),
            ..Default::default()
        },
    );
    let r = ship(
        &Moto::env_for(&proxy.endpoint()),
        &["put", "--overwrite", "s3://fail/k"],
        &Gen::bytes(1, 12 << 20),
    );
    r.expect_code(1).expect_clean_stderr("zstream-ship");
    assert!(
        r.stderr().contains("AccessDenied") && r.stderr().contains("aborted"),
        "{}",
        r.describe()
    );
    assert_eq!(
        ship(&env, &["get", "s3://fail/k"], b"").stdout(),
        b"the old object"
    );
    let gc = ship(
        &env,
        &["gc", "--dry-run", "--older-than", "0", "s3://fail/"],
        b"",
    );
    gc.expect_code(0);
    assert!(gc.stdout().is_empty(), "{}", gc.describe());

    // No such bucket: one line, exit 1.
    let r = ship(
        &env,
        &["put", "s3://no-such-bucket/k"],
        &Gen::bytes(1, 12 << 20),
    );
    r.expect_code(1).expect_clean_stderr("zstream-ship");
    assert!(r.stderr().contains("NoSuchBucket"), "{}", r.describe());
}

#[test]
fn objects_of_other_tools_are_checked_by_whatever_checksum_s3_stored() {
    let moto = Moto::start();
    moto.bucket("others");
    let env = moto.env();
    // Another tool: boto3 (moto's own dependency, in its venv), which stores a CRC32 by default and any of S3's
    // algorithms when asked; moto computes and keeps the checksum of what it received.
    let algos = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"];
    moto.boto3(&format!(
        "data = bytes(i % 251 for i in range(1 << 20))\n\
         for a in {algos:?}:\n    s3.put_object(Bucket='others', Key=a, Body=data, ChecksumAlgorithm=a)\n"
    ));
    let data: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    let proxy = Proxy::start(
        moto.port,
        Schedule {
            corrupt: true,
            ..Default::default()
        },
    );
    for algo in algos {
        let url = format!("s3://others/{algo}");
        let ok = ship(&env, &["get", &url], b"");
        ok.expect_code(0).expect_clean_stderr("zstream-ship");
        assert!(
            ok.stdout() == data.as_slice(),
            "{algo}: other bytes came back"
        );
        assert!(
            !ok.stderr().contains("unchecked"),
            "{algo}: {}",
            ok.describe()
        );
        // A byte flipped on the way back: the checksum the service stored catches it.
        let bad = ship(&Moto::env_for(&proxy.endpoint()), &["get", &url], b"");
        bad.expect_code(3).expect_clean_stderr("zstream-ship");
        assert!(
            bad.stderr().contains("the service stored")
                || bad.stderr().contains("do not match the SHA-256"),
            "{algo}: {}",
            bad.describe()
        );
    }
}

/// Objects other clients uploaded in parts, as they upload them: boto3's upload_fileobj (8 MiB parts, a
/// composite CRC32 by default, or the algorithm asked for), boto3's low-level multipart API with parts of
/// different sizes and with a full-object CRC32, and the AWS CLI's `aws s3 cp`. Each is read back whole with
/// every part's checksum and the object's checked (the part sizes from GetObjectAttributes); a byte flipped on
/// the way back is caught (exit 3); without s3:GetObjectAttributes the bytes still come back, and get says that
/// it could not check them.
#[test]
fn objects_other_clients_uploaded_in_parts_are_checked_part_by_part() {
    let moto = Moto::start();
    moto.bucket("others");
    let env = moto.env();
    let data = Gen::bytes(26, 20 << 20);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.bin");
    std::fs::write(&file, &data).unwrap();
    let venv = zstream_tests::moto::venv();
    let script = format!(
        "from boto3.s3.transfer import TransferConfig\n\
         data = open('{file}', 'rb').read()\n\
         parts = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20)\n\
         s3.upload_file('{file}', 'others', 'boto3-default', Config=parts)\n\
         for a in ['CRC32C', 'SHA1', 'SHA256', 'CRC64NVME']:\n    \
             s3.upload_file('{file}', 'others', 'boto3-' + a, Config=parts, ExtraArgs={{'ChecksumAlgorithm': a}})\n\
         def by_hand(key, sizes, **kw):\n    \
             up = s3.create_multipart_upload(Bucket='others', Key=key, ChecksumAlgorithm='CRC32', **kw)\n    \
             done, at = [], 0\n    \
             for n, size in enumerate(sizes, 1):\n        \
                 r = s3.upload_part(Bucket='others', Key=key, UploadId=up['UploadId'], PartNumber=n,\n                           \
                                    Body=data[at:at + size], ChecksumAlgorithm='CRC32')\n        \
                 done.append({{'PartNumber': n, 'ETag': r['ETag'], 'ChecksumCRC32': r['ChecksumCRC32']}})\n        \
                 at += size\n    \
             s3.complete_multipart_upload(Bucket='others', Key=key, UploadId=up['UploadId'],\n                                 \
                                          MultipartUpload={{'Parts': done}})\n\
         by_hand('boto3-uneven', [7 << 20, 5 << 20, 5 << 20, 3 << 20])\n\
         by_hand('boto3-full-object', [8 << 20, 8 << 20, 4 << 20], ChecksumType='FULL_OBJECT')\n\
         for o in s3.list_objects_v2(Bucket='others')['Contents']:\n    \
             assert o['ETag'].strip('\"').split('-')[1:], ('not uploaded in parts', o)\n    \
             assert o['Size'] == len(data), o\n",
        file = file.display(),
    );
    // The AWS CLI first: the boto3 script then checks that every object was uploaded in parts (its ETag's -N).
    let aws = venv.join("bin/aws");
    let out = std::process::Command::new(&aws)
        .args([
            "--endpoint-url",
            &moto.endpoint(),
            "--only-show-errors",
            "s3",
            "cp",
        ])
        .arg(&file)
        .arg("s3://others/aws-cli")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (scripts/test installs the AWS CLI into moto's venv)",
                aws.display()
            )
        });
    assert!(
        out.status.success(),
        "aws s3 cp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    moto.boto3(&script);
    let corrupt = Proxy::start(
        moto.port,
        Schedule {
            corrupt: true,
            ..Default::default()
        },
    );
    let no_attributes = Proxy::start(
        moto.port,
        Schedule {
            refuse: Some("?attributes"),
            ..Default::default()
        },
    );
    let both = Proxy::start(
        moto.port,
        Schedule {
            refuse: Some("?attributes"),
            corrupt: true,
            ..Default::default()
        },
    );
    for key in [
        "boto3-default",
        "boto3-CRC32C",
        "boto3-SHA1",
        "boto3-SHA256",
        "boto3-CRC64NVME",
        "boto3-uneven",
        "boto3-full-object",
        "aws-cli",
    ] {
        let url = format!("s3://others/{key}");
        for concurrency in ["1", "4"] {
            let ok = ship(&env, &["get", "--concurrency", concurrency, &url], b"");
            ok.expect_code(0).expect_clean_stderr("zstream-ship");
            assert!(
                ok.stdout() == data.as_slice(),
                "{key}: other bytes came back"
            );
            assert!(ok.stderr().is_empty(), "{key}: {}", ok.describe());
        }
        let bad = ship(&Moto::env_for(&corrupt.endpoint()), &["get", &url], b"");
        bad.expect_code(3).expect_clean_stderr("zstream-ship");
        assert!(
            bad.stderr().contains("but the service stored"),
            "{key}: {}",
            bad.describe()
        );
        // No part listing: the bytes come back. A checksum the HEAD says is of the whole object (moto sends the
        // type when the upload named it) is still checked; of the others moto's HEAD does not say whether they
        // are composite, so they cannot be, and get says so.
        let blind = ship(
            &Moto::env_for(&no_attributes.endpoint()),
            &["get", &url],
            b"",
        );
        blind.expect_code(0).expect_clean_stderr("zstream-ship");
        assert!(
            blind.stdout() == data.as_slice(),
            "{key}: other bytes came back"
        );
        let unchecked = blind.stderr().contains("part sizes cannot be had")
            && blind.stderr().contains("unchecked");
        assert_eq!(
            unchecked,
            key != "boto3-full-object",
            "{key}: {}",
            blind.describe()
        );
        if key == "boto3-full-object" {
            let bad = ship(&Moto::env_for(&both.endpoint()), &["get", &url], b"");
            bad.expect_code(3).expect_clean_stderr("zstream-ship");
            assert!(
                bad.stderr().contains("the service stored"),
                "{}",
                bad.describe()
            );
        }
    }
    assert!(corrupt.count(|c| &c.corrupted) > 0);
    assert!(no_attributes.count(|c| &c.errors) > 0);
}

#[test]
fn a_multipart_put_needs_no_tagging_permission() {
    // A policy without s3:PutObjectTagging refuses every ?tagging request: put must not need one.
    let moto = Moto::start();
    moto.bucket("notags");
    let proxy = Proxy::start(
        moto.port,
        Schedule {
            refuse: Some("tagging"),
            ..Default::default()
        },
    );
    let data = Gen::bytes(8, 12 << 20);
    let env = Moto::env_for(&proxy.endpoint());
    ship(&env, &["put", "s3://notags/k"], &data)
        .expect_code(0)
        .expect_clean_stderr("zstream-ship");
    assert!(ship(&env, &["get", "s3://notags/k"], b"").stdout() == data.as_slice());
}

#[test]
fn a_lost_answer_to_our_own_write_is_not_taken_for_another_object() {
    // The write that creates the object takes effect, but its answer is lost: the SDK sends it again, and the
    // conditional retry is refused (412) because of our own object. The stored checksum shows it is ours.
    let moto = Moto::start();
    moto.bucket("lost");
    for (key, len, request) in [
        ("single", 1000usize, "PUT /lost/single"),
        ("multi", 12 << 20, "POST /lost/multi?uploadId="),
    ] {
        let proxy = Proxy::start(
            moto.port,
            Schedule {
                lose_answer: Some(request),
                ..Default::default()
            },
        );
        let data = Gen::bytes(len as u64, len);
        let url = format!("s3://lost/{key}");
        let env = Moto::env_for(&proxy.endpoint());
        let r = ship(&env, &["put", &url], &data);
        r.expect_code(0).expect_clean_stderr("zstream-ship");
        assert_eq!(
            proxy.count(|c| &c.lost),
            1,
            "{key}: the answer was not lost: {}",
            r.describe()
        );
        assert!(
            ship(&moto.env(), &["get", &url], b"").stdout() == data.as_slice(),
            "{key}"
        );
    }
}
