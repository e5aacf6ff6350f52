//! A real S3 API on loopback: moto's server (PyPI `moto[server]`), started for a test and stopped with it. The
//! harness speaks plain HTTP to it (bucket creation, moto's control API) so that it needs no AWS SDK itself.
//! It runs through tests/moto/server.py, which adds the one answer moto lacks that a test needs (GetObjectAttributes'
//! ObjectParts: the part sizes of an object another client uploaded in parts) and changes nothing else.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where scripts/test installs moto (a cache outside the clone, like the build output).
pub fn venv() -> PathBuf {
    std::env::var_os("ZSTREAM_MOTO_VENV").map_or_else(
        || PathBuf::from("/var/tmp/zstream-moto-venv"),
        PathBuf::from,
    )
}

pub struct Moto {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_with(&[])
    }

    /// `start`, the server given `env` (e.g. MOTO_AMIS_PATH: the images its EC2 knows).
    pub fn start_with(env: &[(&str, &str)]) -> Moto {
        let python = venv().join("bin/python");
        let server = crate::cycle::workspace().join("tests/moto/server.py");
        assert!(
            venv().join("bin/moto_server").exists(),
            "moto is not installed at {}: run scripts/test, which does `python3 -m venv {} && {}/bin/pip install \
             'moto[server]==5.2.5' awscrt crc32c`",
            venv().display(),
            venv().display(),
            venv().display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log =
            std::env::temp_dir().join(format!("zstream-moto-{}-{port}.log", std::process::id()));
        let out = std::fs::File::create(&log).expect("moto log");
        let child = Command::new(&python)
            .arg(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .expect("starting moto_server");
        let m = Moto { child, port, log };
        let t = Instant::now();
        while m
            .request("GET", "/moto-api/", "")
            .is_none_or(|(code, _)| code != 200)
        {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "moto did not answer within 30 s; its log:\n{}",
                std::fs::read_to_string(&m.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        m
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment the AWS SDK in the binaries needs to talk to this server and nothing else.
    pub fn env(&self) -> Vec<(String, String)> {
        Moto::env_for(&self.endpoint())
    }

    /// The same environment with another endpoint in front of this server (the fault-injecting proxy).
    pub fn env_for(endpoint: &str) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", "test".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ENDPOINT_URL", endpoint.to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
            ("AWS_CONFIG_FILE", "/dev/null".to_string()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// One HTTP/1.1 request to moto; the status code and body, or None when it does not answer.
    pub fn request(&self, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
        crate::http::request(
            self.port,
            method,
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
    }

    /// The requests moto has served so far, one line each as its server logs them (`"GET /bucket/key HTTP/1.1"
    /// 200`), paths as sent (percent-encoded).
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\" ") && l.contains(" HTTP/1.1\" "))
            .map(str::to_string)
            .collect()
    }

    /// Runs a Python script with boto3 (moto's own dependency, in its venv) in this server's environment, as
    /// another AWS client would: `s3` is an S3 client of this server. Panics unless it succeeds.
    pub fn boto3(&self, script: &str) {
        let py = venv().join("bin/python");
        let full = format!(
            "import boto3\ns3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1')\n{script}",
            self.endpoint()
        );
        let out = std::process::Command::new(&py)
            .args(["-c", &full])
            .envs(self.env())
            .output()
            .unwrap_or_else(|e| {
                panic!("{}: {e} (scripts/test installs moto's venv)", py.display())
            });
        assert!(
            out.status.success(),
            "boto3: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A new bucket (moto takes unsigned requests).
    pub fn bucket(&self, name: &str) {
        let r = self.request("PUT", &format!("/{name}"), "");
        assert!(
            r.as_ref().is_some_and(|(c, _)| *c == 200),
            "creating bucket {name}: {r:?}"
        );
    }

    /// A new Glacier vault. moto picks the service from the request's credential scope, so the request says
    /// "glacier" there (moto checks no signatures).
    pub fn vault(&self, name: &str) {
        let auth = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/glacier/aws4_request, \
                    SignedHeaders=host, Signature=0";
        let r = crate::http::request(
            self.port,
            "PUT",
            &format!("/-/vaults/{name}"),
            &[("Authorization", auth)],
            b"",
        );
        assert!(
            r.as_ref().is_some_and(|(c, _)| *c == 201),
            "creating vault {name}: {r:?}"
        );
    }

    /// Makes archive restores take time (moto completes them at once otherwise). moto's time transition is lazy
    /// and counted from the object's creation: for the first `secs` seconds of an object's life a restore reads
    /// as done, then the first look after that starts it "ongoing" for `secs` more, then it is done. So a test
    /// that wants to see a restore under way waits `secs` after the upload before asking for it.
    pub fn slow_restores(&self, secs: u64) {
        let body = format!(
            r#"{{"model_name":"s3::keyrestore","transition":{{"progression":"time","seconds":{secs}}}}}"#
        );
        let r = self.request("POST", "/moto-api/state-manager/set-transition", &body);
        assert!(
            r.as_ref().is_some_and(|(c, _)| *c < 300),
            "setting moto's restore transition: {r:?}"
        );
    }
}

impl Moto {
    /// Waits (at most 30 s) until every object under `prefix` is more than `secs` old by its date in
    /// `zstream-ship ls` (moto's creation time): the condition `slow_restores` needs before a restore is asked.
    pub fn wait_older_than(&self, prefix: &str, secs: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let out = std::process::Command::new(crate::bins::bin("zstream-ship"))
                .args(["ls", "--json", prefix])
                .envs(self.env())
                .output()
                .expect("running zstream-ship ls");
            assert!(
                out.status.success(),
                "ls: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let oldest_young = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).expect("ls --json");
                    let date = v["date"].as_str().expect("a date").to_string();
                    time::OffsetDateTime::parse(
                        &date,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .expect("an RFC 3339 date")
                    .unix_timestamp()
                })
                .any(|t| now - t <= secs as i64);
            if !oldest_young {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "objects under {prefix} stayed younger than {secs} s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
