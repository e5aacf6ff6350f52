//! The instance's SSH host key: learned once, when the pool is created, from what the instance printed on its
//! console (cloud-init prints its host keys between `-----BEGIN SSH HOST KEY KEYS-----` and `-----END SSH HOST KEY
//! KEYS-----` at first boot; GetConsoleOutput returns it through the AWS API, which is authenticated), kept in a
//! tag, and required at every start after: the public address is new at each start, so `accept-new` would trust
//! whoever answers there, and the pool's key is then sent to it.

/// Key types in the order of preference.
const TYPES: [&str; 3] = ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512"];

/// The host key in a console output (`TYPE BASE64`, the comment dropped), the ed25519 one when there are several;
/// None until cloud-init has printed them.
pub fn from_console(text: &str) -> Option<String> {
    let start = text.find("-----BEGIN SSH HOST KEY KEYS-----")?;
    let block = &text[start..];
    let end = block.find("-----END SSH HOST KEY KEYS-----")?;
    let keys: Vec<String> = block[..end]
        .lines()
        .skip(1)
        .filter_map(|l| parse(l).ok())
        .collect();
    for t in TYPES.iter().chain(["ssh-rsa"].iter()) {
        if let Some(k) = keys.iter().find(|k| k.starts_with(&format!("{t} "))) {
            return Some(k.clone());
        }
    }
    keys.into_iter().next()
}

/// A public key line as known_hosts takes it, `TYPE BASE64`, checked (a type, and base64 that names the same
/// type inside, as every SSH public key blob does).
pub fn parse(line: &str) -> Result<String, String> {
    let mut w = line.split_whitespace();
    let (Some(kind), Some(blob)) = (w.next(), w.next()) else {
        return Err(format!("'{line}' is not a public key (TYPE BASE64)"));
    };
    let bytes = aws_smithy_types::base64::decode(blob)
        .map_err(|_| format!("'{line}' is not a public key: its key is not base64"))?;
    let named = bytes
        .get(..4)
        .map(|n| u32::from_be_bytes([n[0], n[1], n[2], n[3]]) as usize)
        .and_then(|n| bytes.get(4..4 + n));
    if named != Some(kind.as_bytes()) {
        return Err(format!(
            "'{line}' is not a public key: the key inside is not a {kind} key"
        ));
    }
    Ok(format!("{kind} {blob}"))
}

/// The name the instance's key is known by (`HostKeyAlias`): its instance id, which outlives its addresses.
pub fn alias(instance_id: &str) -> String {
    format!("ec2-pool-{instance_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Public keys made with `ssh-keygen -t ed25519` and `-t ecdsa` (public: they open nothing).
    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE+afExDsEogpuGbRokcnVCi8ZGgyYHZwJwXJKNP5cni";
    const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBDocGL+RerMRxjmMjccJo1fvjgnrMYU+XacCNNpemavdvc99L04g2WDuWKytfZp2qbNKCmvRP5Ti8AsgvZnTsdc=";

    #[test]
    fn the_key_cloud_init_printed() {
        let console = format!(
            "[  OK  ] Reached target Cloud-init target.\n-----BEGIN SSH HOST KEY FINGERPRINTS-----\n256 SHA256:x root@ip (ED25519)\n\
             -----END SSH HOST KEY FINGERPRINTS-----\n-----BEGIN SSH HOST KEY KEYS-----\n{ECDSA} root@ip-10-0-0-1\n{ED} root@ip-10-0-0-1\n\
             -----END SSH HOST KEY KEYS-----\nCloud-init v. 24.4 finished\n"
        );
        assert_eq!(from_console(&console).as_deref(), Some(ED));
        // Not yet printed, or cut off mid-block: nothing to pin yet.
        assert_eq!(from_console("Booting...\n"), None);
        assert_eq!(
            from_console(&console[..console.find("-----END SSH HOST KEY KEYS").unwrap()]),
            None
        );
    }

    #[test]
    fn keys_are_checked() {
        assert_eq!(parse(&format!("{ED} comment")).as_deref(), Ok(ED));
        assert!(parse("ssh-ed25519").is_err());
        assert!(parse("ssh-ed25519 !!!").is_err());
        // An ecdsa blob labelled ed25519 is not an ed25519 key.
        let blob = ECDSA.split(' ').nth(1).unwrap();
        assert!(parse(&format!("ssh-ed25519 {blob}")).is_err());
    }
}
