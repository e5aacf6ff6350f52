//! ec2-pool as a site runs it, on real parts: moto's EC2 API and an instance that is a script of the tests
//! (tests/ec2/instance.py, used as `--ssh`) running each remote command with real ZFS over files that stand for
//! the attached volumes. Two keys, a pool name of its own, and every file under one temporary directory.

use crate::bins::{bin, keygen};
use crate::moto::Moto;
use crate::proc::{run_env, sh_env, Run};
use std::path::PathBuf;

pub struct PoolSite {
    pub moto: Moto,
    pub dir: tempfile::TempDir,
    pub name: String,
    pub keys: Vec<String>,
    /// The fake instance's directory: its record, the device files, the stand-ins' state.
    pub state: PathBuf,
}

impl PoolSite {
    pub fn new(tag: &str) -> PoolSite {
        let moto = Moto::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = keygen(dir.path(), &["a.key", "b.key"]);
        let state = dir.path().join("instance");
        let site = PoolSite {
            moto,
            name: format!("ec2{tag}{}", std::process::id()),
            keys,
            state,
            dir,
        };
        std::fs::write(site.config(), site.config_text()).expect("writing the config file");
        site
    }

    /// The ec2-pool config file of this site (`--config`, or EC2_POOL_CONFIG for the cycle's scripts).
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("ec2-pool.conf")
    }

    /// `--ssh`: the fake instance, run by moto's venv (it has boto3).
    pub fn ssh(&self) -> String {
        let script = crate::cycle::workspace().join("tests/ec2/instance.py");
        format!(
            "{} {} --endpoint {} --state {}",
            crate::moto::venv().join("bin/python3").display(),
            script.display(),
            self.moto.endpoint(),
            self.state.display()
        )
    }

    pub fn template(&self) -> String {
        format!(
            "{}/dev/nvme-Amazon_Elastic_Block_Store_{{vol}}",
            self.state.display()
        )
    }

    /// What every call takes, as a site would write it in its config file: the fake instance as SSH, the devices
    /// and the swap file below the test's directory.
    fn config_text(&self) -> String {
        format!(
            "# ec2-pool's test site\nssh {}\ndevice-template {}\nssh-timeout 20s\nswap 16MiB\nswap-file {}\n",
            self.ssh(),
            self.template(),
            self.state.join("swap").display()
        )
    }

    /// The options every call takes.
    pub fn common(&self) -> Vec<String> {
        vec!["--config".into(), self.config().display().to_string()]
    }

    /// The environment the cycle's scripts need to reach this site: moto, and the config file.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut e = self.moto.env();
        e.push((
            "EC2_POOL_CONFIG".into(),
            self.config().display().to_string(),
        ));
        e
    }

    pub fn key_args(&self) -> Vec<String> {
        self.keys
            .iter()
            .flat_map(|k| ["--key-file".to_string(), k.clone()])
            .collect()
    }

    /// `ec2-pool ARGS` against this site's moto, with `input` on stdin and `env` added.
    pub fn run_with(&self, args: &[&str], input: &[u8], env: &[(String, String)]) -> Run {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(self.common());
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let mut e = self.moto.env();
        e.extend_from_slice(env);
        run_env(&bin("ec2-pool"), &refs, input, &e)
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, b"", &[])
    }

    /// `args` with this site's key files added.
    pub fn run_keyed(&self, args: &[&str], input: &[u8]) -> Run {
        let mut all: Vec<&str> = args.to_vec();
        let keys = self.key_args();
        all.extend(keys.iter().map(String::as_str));
        self.run_with(&all, input, &[])
    }

    /// `status --json`, which must succeed.
    pub fn status(&self) -> serde_json::Value {
        let r = self.run(&["status", &self.name, "--json"]);
        r.expect_code(0);
        serde_json::from_slice(r.stdout())
            .unwrap_or_else(|e| panic!("status --json: {e}: {}", r.describe()))
    }

    /// A shell pipeline whose last stage is `ec2-pool ARGS` (with the keys and the site's options).
    pub fn pipe_into(&self, source: &str, args: &[&str]) -> Run {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(self.key_args());
        all.extend(self.common());
        let quoted: Vec<String> = all
            .iter()
            .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
            .collect();
        sh_env(
            &format!(
                "{source} | {} {}",
                bin("ec2-pool").display(),
                quoted.join(" ")
            ),
            &self.moto.env(),
        )
    }

    /// Everything moto holds (its whole state, tags included), as text.
    pub fn moto_state(&self) -> String {
        let (code, body) = self
            .moto
            .request("GET", "/moto-api/data.json", "")
            .expect("moto answers");
        assert_eq!(code, 200, "moto's data.json");
        body
    }

    /// The fake instance's record: one JSON value per argv and environment it or a stand-in saw.
    pub fn record(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.state.join("record.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a record line"))
            .collect()
    }
}

impl Drop for PoolSite {
    fn drop(&mut self) {
        // A failed test may leave the pool imported on this machine's ZFS.
        let _ = std::process::Command::new("zpool")
            .args(["destroy", "-f", &self.name])
            .output();
    }
}
