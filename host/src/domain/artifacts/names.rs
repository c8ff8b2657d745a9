//! Repository names and manifest references as the OCI distribution spec writes them, and
//! what Wharf adds: the first path component of a repository is the project it belongs to.

use super::RegistryError;
use super::blobs::Digest;

/// The longest repository name served (the spec's suggested bound).
const MAX_NAME: usize = 255;
const MAX_TAG: usize = 128;

/// `<project>/<name>[/<more>]`, each component lowercase letters and digits joined by
/// `.`, `_`, `__` or runs of `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    name: String,
}

impl Repository {
    pub fn parse(name: &str) -> Result<Repository, RegistryError> {
        let invalid = |why: &str| RegistryError::NameInvalid(format!("`{name}`: {why}"));
        if name.len() > MAX_NAME {
            return Err(invalid("longer than 255 characters"));
        }
        let components: Vec<&str> = name.split('/').collect();
        if components.len() < 2 {
            return Err(invalid("a repository is `<project>/<name>`"));
        }
        if !components.iter().all(|c| component_is_valid(c)) {
            return Err(invalid(
                "each component is lowercase letters and digits, joined by `.`, `_`, `__` or `-`",
            ));
        }
        Ok(Repository {
            name: name.to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The project the repository belongs to.
    pub fn project(&self) -> &str {
        self.name.split('/').next().unwrap_or_default()
    }

    /// The name as one store key segment (`/` cannot appear in a segment; `+` cannot appear
    /// in a name).
    pub fn key_segment(&self) -> String {
        self.name.replace('/', "+")
    }
}

impl std::fmt::Display for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

fn component_is_valid(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator: `.`, `_`, `__`, or a run of `-`, always between alphanumerics.
        let start = i;
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || !bytes.get(i).copied().is_some_and(alnum) {
            return false;
        }
    }
    true
}

/// What a manifest URL names: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

impl Reference {
    pub fn parse(text: &str) -> Result<Reference, RegistryError> {
        if text.contains(':') {
            return Digest::parse(text)
                .map(Reference::Digest)
                .map_err(|e| RegistryError::DigestInvalid(e.to_string()));
        }
        let bytes = text.as_bytes();
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let valid = !bytes.is_empty()
            && bytes.len() <= MAX_TAG
            && word(bytes[0])
            && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-');
        if !valid {
            return Err(RegistryError::TagInvalid(format!(
                "`{text}`: a tag is 1–128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"
            )));
        }
        Ok(Reference::Tag(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_the_spec_and_start_with_a_project() {
        for good in [
            "shop/web",
            "shop/team/web-app",
            "a1/b.c",
            "shop/x__y",
            "shop/a---b",
        ] {
            let repo = Repository::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(repo.project(), good.split('/').next().unwrap_or_default());
        }
        for bad in [
            "web",
            "Shop/web",
            "shop/-web",
            "shop/web-",
            "shop//web",
            "shop/a___b",
            "shop/a..b",
            "shop/../etc",
            "shop/a+b",
        ] {
            assert!(Repository::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Repository::parse("shop/team/web")
                .map(|r| r.key_segment())
                .ok()
                .as_deref(),
            Some("shop+team+web")
        );
    }

    #[test]
    fn a_reference_is_a_tag_or_a_sha256_digest() {
        assert_eq!(
            Reference::parse("v1.2_rc-1").ok(),
            Some(Reference::Tag("v1.2_rc-1".into()))
        );
        assert!(matches!(
            Reference::parse(&format!("sha256:{}", "0".repeat(64))),
            Ok(Reference::Digest(_))
        ));
        for bad in ["", ".hidden", "-x", "a/b", "sha256:zz", &"t".repeat(129)] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }
}
