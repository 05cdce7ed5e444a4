//! Path patterns: `+` for one segment, a trailing `*` for any rest, and Vault's ranking of
//! the wildcard patterns that match one path.

/// Whether `pattern` (with `+` segments and an optional trailing `*`) matches `path`.
pub fn pattern_matches(pattern: &str, path: &str) -> bool {
    let (body, glob) = match pattern.strip_suffix('*') {
        Some(body) => (body, true),
        None => (pattern, false),
    };
    let wanted: Vec<&str> = body.split('/').collect();
    let segments: Vec<&str> = path.split('/').collect();
    for (i, want) in wanted.iter().enumerate() {
        let Some(seg) = segments.get(i) else { return false };
        let last = i + 1 == wanted.len();
        if last && glob {
            return *want == "+" || seg.starts_with(want);
        }
        if *want == "+" {
            if seg.is_empty() {
                return false;
            }
        } else if want != seg {
            return false;
        }
    }
    segments.len() == wanted.len()
}

/// Vault's ranking of matching wildcard patterns, highest wins: the first wildcard later in
/// the pattern; then no trailing `*`; then fewer `+` segments; then longer; then lexically
/// greater.
pub(super) fn priority(pattern: &str) -> (usize, bool, std::cmp::Reverse<usize>, usize, &str) {
    let plus_at = pattern.split('/').scan(0, |offset, seg| {
        let at = *offset;
        *offset += seg.len() + 1;
        Some((at, seg))
    });
    let first_plus = plus_at.filter(|(_, seg)| *seg == "+").map(|(at, _)| at).next();
    let first_star = pattern.ends_with('*').then(|| pattern.len() - 1);
    let first = first_plus.into_iter().chain(first_star).min().unwrap_or(pattern.len());
    let pluses = pattern.split('/').filter(|s| *s == "+").count();
    (first, !pattern.ends_with('*'), std::cmp::Reverse(pluses), pattern.len(), pattern)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_segments_and_globs() {
        assert!(pattern_matches("aws/creds/deploy", "aws/creds/deploy"));
        assert!(!pattern_matches("aws/creds/deploy", "aws/creds/deploy2"));
        assert!(pattern_matches("aws/creds/*", "aws/creds/deploy"));
        assert!(pattern_matches("aws/creds/*", "aws/creds/"));
        assert!(!pattern_matches("aws/creds/*", "aws/creds"));
        assert!(pattern_matches("aws/creds/dep*", "aws/creds/deploy/x"));
        assert!(pattern_matches("aws/+/deploy", "aws/sts/deploy"));
        assert!(!pattern_matches("aws/+/deploy", "aws/sts/x/deploy"));
        assert!(!pattern_matches("aws/+/deploy", "aws//deploy"));
        assert!(pattern_matches("+/creds/*", "team-a/creds/x"));
        assert!(pattern_matches("*", "anything/at/all"));
    }
}
