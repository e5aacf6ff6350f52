//! Defaults for the options every subcommand takes, from a file: `--config FILE`, else $EC2_POOL_CONFIG, else
//! /etc/zstream/ec2-pool.conf when it exists. One `option value` a line, the option without its dashes; `#`
//! starts a comment. The command line wins over the file. The backup cycle's scripts call ec2-pool without these
//! options, so a site's SSH login and the like belong here.

use crate::cli::Common;
use std::path::Path;

pub const DEFAULT_FILE: &str = "/etc/zstream/ec2-pool.conf";
pub const DEFAULT_TEMPLATE: &str = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_{vol}";

pub fn apply(mut c: Common) -> anyhow::Result<Common> {
    let path = match (&c.config, std::env::var_os("EC2_POOL_CONFIG")) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) if !p.is_empty() => p.into(),
        _ if Path::new(DEFAULT_FILE).exists() => DEFAULT_FILE.into(),
        _ => return Ok(c),
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
        let at = |e: String| bad(format!("line {}: {k}: {e}", no + 1));
        let size = || zstream_common::size::parse(v).map_err(at);
        match k {
            "ssh" => c.ssh = c.ssh.or(Some(v.to_string())),
            "device-template" => c.device_template = c.device_template.or(Some(v.to_string())),
            "endpoint" => c.endpoint = c.endpoint.or(Some(v.to_string())),
            "region" => c.region = c.region.or(Some(v.to_string())),
            "ssh-timeout" => {
                let d = humantime::parse_duration(v).map_err(|e| at(e.to_string()))?;
                c.ssh_timeout = c.ssh_timeout.or(Some(d));
            }
            "scrub-every" => {
                let d = humantime::parse_duration(v).map_err(|e| at(e.to_string()))?;
                c.scrub_every = c.scrub_every.or(Some(d));
            }
            "swap" => c.prep.swap = c.prep.swap.or(Some(size()?)),
            "swap-file" => c.prep.swap_file = c.prep.swap_file.or(Some(v.to_string())),
            "arc-max" => c.prep.arc_max = c.prep.arc_max.or(Some(size()?)),
            _ => {
                return Err(bad(format!(
                    "line {}: '{k}' is not an option here (ssh, device-template, endpoint, region, ssh-timeout, \
                     scrub-every, swap, swap-file, arc-max)",
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
