//! redis `stringmatchlen`: the glob patterns of KEYS, SCAN MATCH, *SCAN MATCH, CONFIG GET and
//! pub/sub patterns. It lives in `store` (the bottom layer) so that the pub/sub registry in
//! `server` can use it without importing `proto`.
//!
//! Owns: pattern matching only (case-sensitive, byte-wise). Must not touch: anything else.
//! Invariant: no allocation and no recursion, so a hostile pattern costs at most
//! O(pattern × subject) steps.

/// redis `stringmatchlen` (case-sensitive): `*`, `?`, `[...]` with `^` and ranges, `\` escapes.
pub fn glob(pattern: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < pattern.len() {
            if pattern[pi] == b'*' {
                while pi < pattern.len() && pattern[pi] == b'*' {
                    pi += 1;
                }
                if pi == pattern.len() {
                    return true;
                }
                star = Some((pi, si));
                continue;
            }
            if si < s.len() {
                if let Some(next) = match_one(pattern, pi, s[si]) {
                    pi = next;
                    si += 1;
                    continue;
                }
            }
        } else if si == s.len() {
            return true;
        }
        match star {
            Some((sp, ss)) if ss < s.len() => {
                star = Some((sp, ss + 1));
                pi = sp;
                si = ss + 1;
            }
            _ => return false,
        }
    }
}

/// Matches one pattern token at `pi` against `c`; the index after the token if it matches.
fn match_one(p: &[u8], pi: usize, c: u8) -> Option<usize> {
    match p[pi] {
        b'?' => Some(pi + 1),
        b'\\' if pi + 1 < p.len() => (p[pi + 1] == c).then_some(pi + 2),
        b'[' => {
            let mut i = pi + 1;
            let not = p.get(i) == Some(&b'^');
            if not {
                i += 1;
            }
            let mut matched = false;
            loop {
                if i >= p.len() {
                    break;
                }
                if p[i] == b'\\' && i + 1 < p.len() {
                    i += 1;
                    matched |= p[i] == c;
                } else if p[i] == b']' {
                    i += 1;
                    break;
                } else if i + 2 < p.len() && p[i + 1] == b'-' {
                    let (lo, hi) = (p[i].min(p[i + 2]), p[i].max(p[i + 2]));
                    matched |= (lo..=hi).contains(&c);
                    i += 2;
                } else {
                    matched |= p[i] == c;
                }
                i += 1;
            }
            (matched != not).then_some(i)
        }
        lit => (lit == c).then_some(pi + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_like_redis() {
        assert!(glob(b"*", b""));
        assert!(glob(b"h?llo", b"hello"));
        assert!(glob(b"h*llo", b"heeeello"));
        assert!(glob(b"h[ae]llo", b"hallo"));
        assert!(!glob(b"h[^e]llo", b"hello"));
        assert!(glob(b"h[a-b]llo", b"hbllo"));
        assert!(glob(b"h[b-a]llo", b"hallo"));
        assert!(glob(b"a\\*b", b"a*b"));
        assert!(!glob(b"a\\*b", b"axb"));
        assert!(glob(b"*a*b*c*", b"xxaxxbxxcxx"));
        assert!(!glob(b"*a*b*c*", b"xxaxxcxxbxx"));
        assert!(!glob(b"abc", b"ab"));
        assert!(glob(b"user:*", b"user:1"));
    }
}
