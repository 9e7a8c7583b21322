//! `parameters.uri_sha256`: the content a remote uri must hold, as SHA-256 digests: one string
//! for a uri that names one object, or an object of `{"path/in/folder": "sha256", ...}` for a
//! folder (every file of it, no other).

use super::StorageError;
use super::cache::is_file_path;
use serde_json::Value;
use std::collections::BTreeMap;

/// The digests a model's settings pin its remote files to.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Pin {
    /// The uri's one object.
    Object(String),
    /// Each file of the uri's folder, by its path in it.
    Files(BTreeMap<String, String>),
}

impl Pin {
    /// `parameters.uri_sha256`, checked: a SHA-256, or an object of them.
    pub(super) fn parse(value: &Value) -> Result<Pin, StorageError> {
        match value {
            Value::String(text) => Ok(Pin::Object(digest(text)?)),
            Value::Object(files) if !files.is_empty() => files
                .iter()
                .map(|(name, value)| match value {
                    _ if !is_file_path(name) => Err(setting(format!(
                        "`{name}` is not a file's path in a folder"
                    ))),
                    Value::String(text) => Ok((name.clone(), digest(text)?)),
                    _ => Err(setting(format!("`{name}`: {value} is not a SHA-256"))),
                })
                .collect::<Result<_, _>>()
                .map(Pin::Files),
            _ => Err(setting(format!(
                "{value} is neither a SHA-256 (64 hexadecimal digits) nor an object of them by \
                 file"
            ))),
        }
    }

    /// The digest pinned for the file `name` of a uri's listing.
    pub(super) fn of(&self, name: &str) -> Option<&str> {
        match self {
            Pin::Object(digest) => Some(digest),
            Pin::Files(files) => files.get(name).map(String::as_str),
        }
    }

    /// Checks that the pins fit what the uri holds: one object (`single`) for a string, and
    /// for an object the folder's files exactly.
    pub(super) fn check_listing<'a>(
        &self,
        uri: &str,
        single: bool,
        mut names: impl Iterator<Item = &'a str>,
    ) -> Result<(), StorageError> {
        match self {
            Pin::Object(_) if !single => Err(setting(format!(
                "one SHA-256 checks a single object, and {uri} is a folder: give each file's"
            ))),
            Pin::Files(_) if single => Err(setting(format!(
                "{uri} is one object: give its SHA-256 as a string"
            ))),
            Pin::Object(_) => Ok(()),
            Pin::Files(files) => {
                let mut listed = 0;
                if let Some(name) = names.find(|name| {
                    listed += 1;
                    !files.contains_key(*name)
                }) {
                    return Err(setting(format!(
                        "{uri} holds {name}, which it does not list"
                    )));
                }
                if listed < files.len() {
                    return Err(setting(format!(
                        "it lists files {uri} does not hold ({} listed, {listed} there)",
                        files.len()
                    )));
                }
                Ok(())
            }
        }
    }
}

fn setting(why: String) -> StorageError {
    StorageError::Sha256Setting(why)
}

/// `text`, lowercase, if it is a SHA-256 in hexadecimal.
fn digest(text: &str) -> Result<String, StorageError> {
    let digest = text.trim().to_ascii_lowercase();
    if digest.len() == 64 && digest.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        Ok(digest)
    } else {
        Err(setting(format!(
            "{text:?} is not a SHA-256 (64 hexadecimal digits)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_digest_or_one_per_file_and_the_listing_must_fit() {
        let a = "A".repeat(64);
        assert_eq!(Pin::parse(&json!(a)).unwrap(), Pin::Object("a".repeat(64)));
        let files = Pin::parse(&json!({"m.json": a, "sub/w.bin": "b".repeat(64)})).unwrap();
        assert_eq!(files.of("sub/w.bin"), Some("b".repeat(64).as_str()));
        assert_eq!(files.of("other"), None);
        for bad in [
            json!("abc"),
            json!(1),
            json!({}),
            json!({"m.json": 1}),
            json!({"../m.json": a}),
        ] {
            assert!(Pin::parse(&bad).is_err(), "{bad}");
        }

        let uri = "s3://b/m/";
        let names = ["m.json", "sub/w.bin"];
        files.check_listing(uri, false, names.into_iter()).unwrap();
        let error = files
            .check_listing(uri, false, ["m.json", "x"].into_iter())
            .unwrap_err();
        assert!(error.to_string().contains("holds x"), "{error}");
        let error = files
            .check_listing(uri, false, ["m.json"].into_iter())
            .unwrap_err();
        assert!(error.to_string().contains("does not hold"), "{error}");
        assert!(files.check_listing(uri, true, names.into_iter()).is_err());
        let one = Pin::Object(a);
        assert!(one.check_listing(uri, false, names.into_iter()).is_err());
        one.check_listing(uri, true, ["m.json"].into_iter())
            .unwrap();
    }
}
