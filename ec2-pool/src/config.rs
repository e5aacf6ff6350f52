//! Defaults for the options every subcommand takes, from a file: `--config FILE`, else
//! /etc/zstream/ec2-pool.conf when it exists. One `option value` a line, the option without its dashes; `#`
//! starts a comment. The command line wins over the file.

use crate::app::Common;
use std::path::Path;

pub const DEFAULT_FILE: &str = "/etc/zstream/ec2-pool.conf";
pub const DEFAULT_TEMPLATE: &str = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_{vol}";

pub fn apply(mut c: Common) -> anyhow::Result<Common> {
    let path = match &c.config {
        Some(p) => p.clone(),
        None if Path::new(DEFAULT_FILE).exists() => DEFAULT_FILE.into(),
        None => return Ok(c),
    };
    let bad = |e: String| zstream_common::usage(format!("{}: {e}", path.display()));
    let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
    for (no, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (k, v) = line
            .split_once(char::is_whitespace)
            .map_or((line, ""), |(k, v)| (k, v.trim()));
        if v.is_empty() {
            return Err(bad(format!("line {}: '{k}' has no value", no + 1)));
        }
        let v = Some(v.to_string());
        match k {
            "ssh" => c.ssh = c.ssh.or(v),
            "device-template" => c.device_template = c.device_template.or(v),
            "endpoint" => c.endpoint = c.endpoint.or(v),
            "region" => c.region = c.region.or(v),
            _ => {
                return Err(bad(format!(
                    "line {}: '{k}' is not an option here (ssh, device-template, endpoint, region)",
                    no + 1
                )))
            }
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_wins() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.conf");
        std::fs::write(
            &f,
            "# site defaults\nssh ssh -l admin -i /k  # admin login\nregion eu-west-1\n",
        )
        .unwrap();
        let c = apply(Common {
            config: Some(f.clone()),
            region: Some("us-east-2".into()),
            ..Common::default()
        })
        .unwrap();
        assert_eq!(c.ssh.as_deref(), Some("ssh -l admin -i /k"));
        assert_eq!(c.region.as_deref(), Some("us-east-2"));
        std::fs::write(&f, "colour blue\n").unwrap();
        let e = apply(Common {
            config: Some(f),
            ..Common::default()
        })
        .unwrap_err();
        assert!(format!("{e}").contains("line 1: 'colour' is not an option"));
    }
}
