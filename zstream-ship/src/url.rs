//! Where a stream goes: `s3://bucket/key`, `glacier://vault[/archive-id]`, or `file:///dir/key`.

use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    S3 {
        bucket: String,
        key: String,
    },
    Glacier {
        vault: String,
        archive: Option<String>,
    },
    /// An absolute path in a local or mounted directory.
    File {
        path: PathBuf,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error(
        "'{0}' is not a target: use s3://bucket/key, glacier://vault or file:///absolute/path"
    )]
    Scheme(String),
    #[error("'{0}': {1}")]
    Bad(String, &'static str),
}

impl Target {
    /// Parses a target. `key_required`: put, get and rm name one object; ls and gc take a prefix, which may be
    /// empty.
    pub fn parse(s: &str, key_required: bool) -> Result<Target, UrlError> {
        let bad = |why| UrlError::Bad(s.to_string(), why);
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket"));
            }
            if key_required && (key.is_empty() || key.ends_with('/')) {
                return Err(bad("no object key after the bucket"));
            }
            Ok(Target::S3 {
                bucket: bucket.into(),
                key: key.into(),
            })
        } else if let Some(rest) = s.strip_prefix("glacier://") {
            let (vault, archive) = match rest.split_once('/') {
                Some((v, a)) if !a.is_empty() => (v, Some(a.to_string())),
                Some((v, _)) => (v, None),
                None => (rest, None),
            };
            if vault.is_empty() {
                return Err(bad("no vault"));
            }
            Ok(Target::Glacier {
                vault: vault.into(),
                archive,
            })
        } else if let Some(rest) = s.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(bad("file:// takes an absolute path (file:///dir/key)"));
            }
            if rest.split('/').any(|c| c == "..") {
                return Err(bad("'..' is not allowed in a file:// path"));
            }
            if key_required && rest.ends_with('/') {
                return Err(bad("no object name after the directory"));
            }
            Ok(Target::File {
                path: PathBuf::from(rest),
            })
        } else {
            Err(UrlError::Scheme(s.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_kinds() {
        assert_eq!(
            Target::parse("s3://b/pool/fs/tue", true),
            Ok(Target::S3 {
                bucket: "b".into(),
                key: "pool/fs/tue".into()
            })
        );
        assert_eq!(
            Target::parse("glacier://v", true),
            Ok(Target::Glacier {
                vault: "v".into(),
                archive: None
            })
        );
        assert_eq!(
            Target::parse("glacier://v/ARCH-1", true),
            Ok(Target::Glacier {
                vault: "v".into(),
                archive: Some("ARCH-1".into())
            })
        );
        assert_eq!(
            Target::parse("file:///srv/b/k", true),
            Ok(Target::File {
                path: "/srv/b/k".into()
            })
        );
        assert_eq!(
            Target::parse("s3://b/", false),
            Ok(Target::S3 {
                bucket: "b".into(),
                key: "".into()
            })
        );
    }

    #[test]
    fn refuses_what_is_not_a_target() {
        assert!(matches!(
            Target::parse("/tmp/x", true),
            Err(UrlError::Scheme(_))
        ));
        assert!(Target::parse("s3://b", true).is_err());
        assert!(Target::parse("s3:///k", true).is_err());
        assert!(Target::parse("file://relative/k", true).is_err());
        assert!(Target::parse("file:///a/../etc/passwd", true).is_err());
        assert!(Target::parse("file:///dir/", true).is_err());
    }
}
