//! ec2-pool as a site runs it, on real parts: moto's EC2 API behind a layer that makes it as strict as AWS where
//! ec2-pool depends on it (tests/ec2/strict-aws.py), and an instance that is a script of the tests
//! (tests/ec2/instance.py, used as `--ssh`) running each remote command with real ZFS over files that stand for
//! the attached volumes. Two keys, a pool name of its own, and every file under one temporary directory.

use crate::bins::{bin, keygen};
use crate::moto::Moto;
use crate::proc::{run_env, sh_env, Run};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The address the backup host has on the internet, as the fake instance sees its connections come from (a
/// documentation address, RFC 5737): what `create --ssh-from` must admit.
pub const BACKUP_HOST: &str = "198.51.100.7";

/// moto behind strict-aws.py: the EC2 the tests' ec2-pool talks to.
pub struct StrictAws {
    child: Child,
    pub port: u16,
}

impl StrictAws {
    /// The layer in front of `moto`, keeping its instances' host keys under `state` (or showing `host_key`, a
    /// public key file, for every instance).
    pub fn start(moto: &Moto, state: &Path, host_key: Option<&Path>) -> StrictAws {
        let script = crate::cycle::workspace().join("tests/ec2/strict-aws.py");
        std::fs::create_dir_all(state).expect("the instance's directory");
        let mut cmd = Command::new(crate::moto::venv().join("bin/python3"));
        if let Some(k) = host_key {
            cmd.arg(&script).arg("--host-key").arg(k);
        } else {
            cmd.arg(&script);
        }
        let mut child = cmd
            .args(["--upstream", &moto.endpoint(), "--state"])
            .arg(state)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting strict-aws.py");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("reading strict-aws.py's port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("strict-aws.py did not start: it said '{line}'"));
        StrictAws { child, port }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A control request (POST /strict/...), its JSON answer.
    fn control(&self, what: &str, body: &str) -> serde_json::Value {
        let r = crate::http::request(
            self.port,
            "POST",
            &format!("/strict/{what}"),
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        let (code, text) =
            r.unwrap_or_else(|| panic!("strict-aws.py does not answer /strict/{what}"));
        assert_eq!(code, 200, "/strict/{what}: {text}");
        serde_json::from_str(&text).expect("JSON from strict-aws.py")
    }

    /// Moves the layer's clock: modifications age, EBS's 24-hour window slides.
    pub fn advance(&self, secs: u64) -> serde_json::Value {
        self.control("advance", &format!(r#"{{"seconds": {secs}}}"#))
    }

    /// From now on, whoever answers at `instance`'s address shows another host key.
    pub fn impostor(&self, instance: &str) {
        self.control("impostor", &format!(r#"{{"instance": "{instance}"}}"#));
    }

    /// What the layer keeps: its clock, modifications per volume, Spot requests.
    pub fn state(&self) -> serde_json::Value {
        self.control("state", "{}")
    }
}

impl Drop for StrictAws {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct PoolSite {
    pub moto: Moto,
    pub aws: StrictAws,
    /// The OpenZFS guest's state directory when the instance is the guest (`in_guest`).
    pub guest: Option<PathBuf>,
    pub dir: tempfile::TempDir,
    pub name: String,
    pub keys: Vec<String>,
    /// The fake instance's directory: its record, the device files, the stand-ins' state.
    pub state: PathBuf,
}

impl PoolSite {
    pub fn new(tag: &str) -> PoolSite {
        PoolSite::make(tag, None)
    }

    /// A site whose instance is the OpenZFS guest `guest` (tests/src/guest.rs): its volumes are the guest's virtio
    /// disks, every remote command runs there on real OpenZFS through real ssh, its host key is the guest's.
    pub fn in_guest(tag: &str, guest: &crate::guest::Guest) -> PoolSite {
        PoolSite::make(tag, Some(guest.state().to_path_buf()))
    }

    fn make(tag: &str, guest: Option<PathBuf>) -> PoolSite {
        // The images moto knows: Canonical's Ubuntu releases for both architectures, named as Canonical names them.
        let amis = crate::cycle::workspace().join("tests/ec2/amis.json");
        let moto = Moto::start_with(&[("MOTO_AMIS_PATH", &amis.display().to_string())]);
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = keygen(dir.path(), &["a.key", "b.key"]);
        let state = dir.path().join("instance");
        let host_key = guest.as_ref().map(|g| g.join("io/host_key.pub"));
        let aws = StrictAws::start(&moto, &state, host_key.as_deref());
        let site = PoolSite {
            moto,
            aws,
            guest,
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

    /// `--ssh`: the fake instance, run by moto's venv (it has boto3), reached from BACKUP_HOST.
    pub fn ssh(&self) -> String {
        let script = crate::cycle::workspace().join("tests/ec2/instance.py");
        let guest = self
            .guest
            .as_ref()
            .map_or(String::new(), |g| format!(" --guest {}", g.display()));
        format!(
            "{} {} --endpoint {} --state {} --from {BACKUP_HOST}{guest}",
            crate::moto::venv().join("bin/python3").display(),
            script.display(),
            self.aws.endpoint(),
            self.state.display()
        )
    }

    /// Where a volume appears: a file below the test's directory here, a virtio disk with the volume id as serial
    /// in the guest (qemu resizes virtio disks, not NVMe ones).
    pub fn template(&self) -> String {
        if self.guest.is_some() {
            return "/dev/disk/by-id/virtio-{vol}".into();
        }
        format!(
            "{}/dev/nvme-Amazon_Elastic_Block_Store_{{vol}}",
            self.state.display()
        )
    }

    /// What every call takes, as a site would write it in its config file: the fake instance as SSH, the devices.
    /// Here no swap: this machine's kernel has no dm-crypt, and ec2-pool's swap is encrypted; the guest has 64 MiB
    /// of it, and SSH under emulation takes longer to answer.
    fn config_text(&self) -> String {
        let (timeout, swap) = if self.guest.is_some() {
            ("120s", "64MiB")
        } else {
            ("20s", "0")
        };
        format!(
            "# ec2-pool's test site\nssh {}\ndevice-template {}\nssh-timeout {timeout}\nswap {swap}\n",
            self.ssh(),
            self.template(),
        )
    }

    /// The options every call takes.
    pub fn common(&self) -> Vec<String> {
        vec!["--config".into(), self.config().display().to_string()]
    }

    /// The environment that reaches this site's EC2 (moto behind the strict layer).
    pub fn aws_env(&self) -> Vec<(String, String)> {
        Moto::env_for(&self.aws.endpoint())
    }

    /// The environment the cycle's scripts need to reach this site: its EC2, and the config file.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut e = self.aws_env();
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
        let mut e = self.aws_env();
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
            &self.aws_env(),
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

    /// Runs Python with `e`, a boto3 EC2 client of this site's EC2 (through the strict layer), and `json`; returns
    /// what it printed. For what a test looks at or sets up beside ec2-pool.
    pub fn py(&self, code: &str) -> String {
        let prelude = format!(
            "import boto3, json\ne = boto3.client('ec2', endpoint_url='{}', region_name='us-east-1', \
             aws_access_key_id='test', aws_secret_access_key='test')\n",
            self.aws.endpoint()
        );
        let out = Command::new(crate::moto::venv().join("bin/python3"))
            .args(["-c", &format!("{prelude}{code}")])
            .output()
            .expect("running python");
        assert!(
            out.status.success(),
            "python: {}\n{code}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The instances of this site's EC2 that are not terminated, as JSON: [{id, state, tags}].
    pub fn live_instances(&self) -> serde_json::Value {
        let out = self.py(
            "print(json.dumps([{'id': i['InstanceId'], 'state': i['State']['Name'], \
             'tags': {t['Key']: t['Value'] for t in i.get('Tags', [])}} \
             for r in e.describe_instances()['Reservations'] for i in r['Instances'] \
             if i['State']['Name'] != 'terminated']))",
        );
        serde_json::from_str(&out).expect("JSON")
    }

    /// The pool's instance id (status must succeed).
    pub fn instance_id(&self) -> String {
        self.status()["instance"]["id"]
            .as_str()
            .expect("an instance id")
            .to_string()
    }

    /// What `create` takes here besides the shape and keys: a security group admitting the backup host.
    pub fn reachable(&self) -> Vec<String> {
        vec!["--ssh-from".into(), format!("{BACKUP_HOST}/32")]
    }

    /// Asserts that the pool's key material (its raw key in hex, the LUKS passphrase) is in none of what the
    /// instance recorded (every ssh argv and environment) nor in `printed` (what the commands printed). The key
    /// is derived by the format's reference implementation (docs/formats/ec2-pool-v1-derive.py), not ec2-pool.
    #[track_caller]
    pub fn assert_key_unseen(&self, printed: &[String]) {
        let script = crate::cycle::workspace().join("docs/formats/ec2-pool-v1-derive.py");
        let needles: Vec<String> = ["--hex", "--luks"]
            .iter()
            .map(|form| {
                let out = Command::new("python3")
                    .arg(&script)
                    .arg(form)
                    .arg(&self.name)
                    .args(&self.keys)
                    .output()
                    .expect("running ec2-pool-v1-derive.py");
                assert!(
                    out.status.success(),
                    "ec2-pool-v1-derive.py {form}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let k = String::from_utf8(out.stdout)
                    .expect("text")
                    .trim()
                    .to_string();
                assert_eq!(
                    k.len(),
                    64,
                    "ec2-pool-v1-derive.py {form}: not 32 bytes in hex"
                );
                k
            })
            .collect();
        let mut hay = std::fs::read_to_string(self.state.join("record.jsonl")).unwrap_or_default();
        hay.push_str(&printed.join("\n"));
        assert!(!hay.is_empty(), "nothing recorded or printed to look in");
        for n in &needles {
            assert!(
                !hay.to_lowercase().contains(&n.to_lowercase()),
                "key material in the record or the output"
            );
        }
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
        // A failed test may leave the pool imported on this machine's ZFS, or in the guest.
        let _ = match &self.guest {
            Some(g) => Command::new("ssh")
                .arg("-F")
                .arg(g.join("ssh_config"))
                .args([
                    "guest",
                    &format!("zpool destroy -f {} 2>/dev/null; true", self.name),
                ])
                .output(),
            None => Command::new("zpool")
                .args(["destroy", "-f", &self.name])
                .output(),
        };
    }
}
