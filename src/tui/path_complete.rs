//! Tab completion of a typed file path, as a shell does it: the folder's entries that start with what was
//! typed after the last `/`; one match completes whole (a folder gets its `/`), several extend the text to
//! their common prefix and are listed.

use std::path::{Path, PathBuf};

/// Candidates listed at most.
pub const MAX_CANDIDATES: usize = 8;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completion {
    /// The typed text, completed as far as the matches agree.
    pub text: String,
    /// The matching entry names (folders end in `/`), sorted, at most `MAX_CANDIDATES`; empty after a whole completion.
    pub candidates: Vec<String>,
    /// Matches in all (may exceed the candidates listed).
    pub matches: usize,
}

/// Completes `typed`; a leading `~/` means the user's home folder (`home`), relative paths are from `cwd`.
pub fn complete(typed: &str, cwd: &Path, home: Option<&Path>) -> Completion {
    let (folder_text, prefix) = match typed.rfind('/') {
        Some(i) => (&typed[..=i], &typed[i + 1..]),
        None => ("", typed),
    };
    let folder: PathBuf = match (folder_text.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ if folder_text.is_empty() => cwd.to_path_buf(),
        _ => cwd.join(folder_text),
    };
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let hidden_unasked = name.starts_with('.') && !prefix.starts_with('.');
            (name.starts_with(prefix) && !hidden_unasked).then(|| {
                let is_dir = entry.path().is_dir();
                if is_dir { format!("{name}/") } else { name }
            })
        })
        .collect();
    names.sort();
    let matches = names.len();
    match names.as_slice() {
        [] => Completion { text: typed.to_string(), candidates: Vec::new(), matches },
        [one] => Completion { text: format!("{folder_text}{one}"), candidates: Vec::new(), matches },
        many => {
            let common = many.iter().skip(1).fold(many[0].as_str(), |acc, n| common_prefix(acc, n)).to_string();
            names.truncate(MAX_CANDIDATES);
            Completion { text: format!("{folder_text}{common}"), candidates: names, matches }
        }
    }
}

fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let end = a.char_indices().zip(b.chars()).find(|((_, x), y)| x != y).map_or(a.len().min(b.len()), |((i, _), _)| i);
    &a[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in ["moco_v2_800ep.pth.tar", "moco_v1.pth", "notes.txt", ".hidden"] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("models")).unwrap();
        std::fs::write(dir.path().join("models/byol.pkl"), b"x").unwrap();
        dir
    }

    #[test]
    fn one_match_completes_whole_and_a_folder_gets_its_slash() {
        let dir = tree();
        let c = complete("no", dir.path(), None);
        assert_eq!((c.text.as_str(), c.matches), ("notes.txt", 1));
        assert_eq!(complete("mod", dir.path(), None).text, "models/");
        assert_eq!(complete("models/b", dir.path(), None).text, "models/byol.pkl");
        let absolute = format!("{}/models/", dir.path().display());
        assert_eq!(complete(&absolute, Path::new("/"), None).text, format!("{absolute}byol.pkl"));
    }

    #[test]
    fn several_matches_extend_to_their_common_prefix_and_are_listed() {
        let dir = tree();
        let c = complete("mo", dir.path(), None);
        assert_eq!(c.text, "mo");
        assert_eq!(c.candidates, ["moco_v1.pth", "moco_v2_800ep.pth.tar", "models/"]);
        let c = complete("moc", dir.path(), None);
        assert_eq!(c.text, "moco_v");
        assert_eq!(c.matches, 2);
        assert!(!complete("", dir.path(), None).candidates.contains(&".hidden".to_string()));
        assert_eq!(complete(".h", dir.path(), None).text, ".hidden");
    }

    #[test]
    fn home_and_missing_folders() {
        let dir = tree();
        assert_eq!(complete("~/no", Path::new("/"), Some(dir.path())).text, "~/notes.txt");
        let c = complete("absent/x", dir.path(), None);
        assert_eq!((c.text.as_str(), c.matches), ("absent/x", 0));
    }
}
