//! Repository and tag patterns: `*` matches any run of characters but `/`, `**` any run
//! at all, `?` one character but `/`; everything else matches itself.

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    matches_at(&pattern, &text)
}

fn matches_at(pattern: &[char], text: &[char]) -> bool {
    match pattern {
        [] => text.is_empty(),
        ['*', '*', rest @ ..] => (0..=text.len()).any(|skip| matches_at(rest, &text[skip..])),
        ['*', rest @ ..] => {
            let run = text.iter().take_while(|c| **c != '/').count();
            (0..=run).any(|skip| matches_at(rest, &text[skip..]))
        }
        ['?', rest @ ..] => match text {
            [c, more @ ..] if *c != '/' => matches_at(rest, more),
            _ => false,
        },
        [p, rest @ ..] => match text {
            [c, more @ ..] if c == p => matches_at(rest, more),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn stars_stop_at_slashes_and_double_stars_do_not() {
        assert!(matches("shop/*", "shop/web"));
        assert!(!matches("shop/*", "shop/web/api"));
        assert!(matches("shop/**", "shop/web/api"));
        assert!(matches("**", "anything/at/all"));
        assert!(matches("v*", "v1.2.3"));
        assert!(!matches("v*", "latest"));
        assert!(matches("release-?", "release-1"));
        assert!(!matches("release-?", "release-10"));
        assert!(matches("latest", "latest"));
        assert!(!matches("latest", "latest2"));
    }
}
