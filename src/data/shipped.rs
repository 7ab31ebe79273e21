//! The study's official split lists (`dataset/lists/`, digests in `dataset/lists/SHA256SUMS`), embedded in the
//! binary. A dataset spec names one as `shipped:<file>`; such a "path" is read from here, never from disk.

use std::path::Path;

/// Prefix of a list path that names a shipped list.
pub const PREFIX: &str = "shipped:";

/// (file name, text) of every shipped list.
pub const LISTS: &[(&str, &str)] = &[
    ("Xray14_train_official.txt", include_str!("../../dataset/lists/Xray14_train_official.txt")),
    ("Xray14_val_official.txt", include_str!("../../dataset/lists/Xray14_val_official.txt")),
    ("Xray14_test_official.txt", include_str!("../../dataset/lists/Xray14_test_official.txt")),
    ("ShenzenCXR_train_data.txt", include_str!("../../dataset/lists/ShenzenCXR_train_data.txt")),
    ("ShenzenCXR_valid_data.txt", include_str!("../../dataset/lists/ShenzenCXR_valid_data.txt")),
    ("ShenzenCXR_test_data.txt", include_str!("../../dataset/lists/ShenzenCXR_test_data.txt")),
];

/// `dataset/lists/SHA256SUMS` as published with the lists.
pub const SHA256SUMS: &str = include_str!("../../dataset/lists/SHA256SUMS");

/// The text of a shipped list when `path` is `shipped:<file>` naming one.
pub fn text(path: &Path) -> Option<&'static str> {
    let name = path.to_str()?.strip_prefix(PREFIX)?;
    LISTS.iter().find(|(n, _)| *n == name).map(|(_, text)| *text)
}

/// Whether `path` is written as a shipped list (`shipped:...`), known or not.
pub fn is_shipped(path: &Path) -> bool {
    path.to_str().is_some_and(|p| p.starts_with(PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn every_shipped_list_has_its_published_digest() {
        assert_eq!(SHA256SUMS.lines().count(), LISTS.len());
        for line in SHA256SUMS.lines() {
            let (digest, name) = line.split_once("  ").unwrap();
            let text = text(Path::new(&format!("{PREFIX}{name}"))).unwrap();
            assert_eq!(hex::encode(Sha256::digest(text.as_bytes())), digest, "{name}");
        }
        assert!(text(Path::new("shipped:nope.txt")).is_none() && is_shipped(Path::new("shipped:nope.txt")));
        assert!(text(Path::new("Xray14_val_official.txt")).is_none());
    }
}
