//! What only Glacier vault targets do, on the built binary: retrieval jobs against moto's server (exit 75, never
//! a second job, --wait), and the archive's tree hash checked on the way back (against the tests' vault
//! endpoint, since moto reports none). Multipart uploads and their tree hashes are in the conformance suite
//! (against the vault endpoint, which checks them as AWS does) and in zstream-ship's unit tests (botocore's
//! values).

use zstream_tests::bins::bin;
use zstream_tests::data::Gen;
use zstream_tests::faults::{Proxy, Schedule};
use zstream_tests::moto::Moto;
use zstream_tests::proc::{run_env, Run};
use zstream_tests::vault::Vault;

fn ship(env: &[(String, String)], args: &[&str], input: &[u8]) -> Run {
    run_env(&bin("zstream-ship"), args, input, env)
}

#[test]
fn retrieval_jobs_are_started_once_and_waited_for() {
    let moto = Moto::start();
    moto.vault("cold");
    let env = moto.env();
    let data = Gen::bytes(5, 300_000);
    let put = ship(
        &env,
        &["put", "--description", "pool/fs@mon", "glacier://cold"],
        &data,
    );
    put.expect_code(0).expect_clean_stderr("zstream-ship");
    let url = String::from_utf8_lossy(put.stdout()).trim().to_string();
    assert!(url.starts_with("glacier://cold/"), "{}", put.describe());

    let first = ship(&env, &["get", "--tier", "Expedited", &url], b"");
    first.expect_code(75).expect_clean_stderr("zstream-ship");
    assert!(
        first.stdout().is_empty()
            && first
                .stderr()
                .contains("retrieval job started (Expedited tier)"),
        "{}",
        first.describe()
    );
    assert!(
        first.stderr().contains("1-5 minutes"),
        "{}",
        first.describe()
    );
    let again = ship(&env, &["get", "--tier", "Expedited", &url], b"");
    again.expect_code(75);
    assert!(
        !again.stderr().contains("job started") && again.stderr().contains("already under way"),
        "{}",
        again.describe()
    );
    // moto finishes Expedited jobs after 2 s.
    let r = ship(&env, &["get", "--wait", &url], b"");
    r.expect_code(0).expect_clean_stderr("zstream-ship");
    assert!(
        r.stdout() == data.as_slice(),
        "the retrieved archive differs"
    );
    assert!(
        r.stderr()
            .contains("retrieval job under way; checking again"),
        "{}",
        r.describe()
    );
    // moto reports no tree hash for a job: said, not hidden.
    assert!(r.stderr().contains("gave no tree hash"), "{}", r.describe());

    let ls = ship(&env, &["ls", "--wait", "--json", "glacier://cold"], b"");
    ls.expect_code(0);
    let e: serde_json::Value = serde_json::from_slice(ls.stdout()).unwrap();
    assert_eq!(e["name"], url.as_str(), "{}", ls.describe());
    assert_eq!(e["size"], 300_000);
}

#[test]
fn corrupted_retrievals_exit_3() {
    let vault = Vault::start(&["rot"], 0.0);
    let env = Moto::env_for(&vault.endpoint());
    for len in [200_000, (3 << 20) + 9] {
        let put = ship(
            &env,
            &["put", "--part-size", "1MiB", "glacier://rot"],
            &Gen::bytes(6, len),
        );
        put.expect_code(0);
        let url = String::from_utf8_lossy(put.stdout()).trim().to_string();
        let proxy = Proxy::start(
            vault.port,
            Schedule {
                corrupt: true,
                ..Default::default()
            },
        );
        let r = ship(
            &Moto::env_for(&proxy.endpoint()),
            &["get", "--wait", &url],
            b"",
        );
        r.expect_code(3).expect_clean_stderr("zstream-ship");
        assert!(
            r.stderr()
                .contains("do not match the archive's SHA-256 tree hash"),
            "{}",
            r.describe()
        );
        // Undamaged, the same archive reads back whole.
        ship(&env, &["get", "--wait", &url], b"").expect_code(0);
    }
    assert_eq!(vault.uploads(), 0);
}
