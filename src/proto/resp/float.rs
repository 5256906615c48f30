//! INCRBYFLOAT arithmetic as redis-server does it: x87 80-bit `long double`, parsed like
//! `strtold` (redis `string2ld`) and printed like `"%.17Lf"` with trailing zeros removed
//! (`ld2string(..., LD_STR_HUMAN)`), so `10.5 + 0.1` answers `10.6` exactly as redis does.
//!
//! Owns: parsing, addition and formatting of these values. Must not touch: the store, replies.
//! Invariants: formatting is exact (big-integer decimal expansion of the binary value, ties to
//! even like glibc's printf), never allocates more than the ~5 KiB redis allows for the text.

use rustc_apfloat::ieee::X87DoubleExtended as F80;
use rustc_apfloat::{Float, Round, Status};

/// redis `MAX_LONG_DOUBLE_CHARS`: longer inputs are refused.
const MAX_CHARS: usize = 5 * 1024;

/// A long double value.
#[derive(Debug, Clone, Copy)]
pub struct LongDouble(F80);

impl LongDouble {
    /// Parses like redis `string2ld`: all of `s` must be a `strtold` number (decimal, hex,
    /// `inf`/`infinity`), no leading space, not NaN, no overflow, no underflow to zero.
    pub fn parse(s: &[u8]) -> Option<LongDouble> {
        if s.is_empty() || s.len() >= MAX_CHARS || !s.is_ascii() {
            return None;
        }
        let text = std::str::from_utf8(s).ok()?;
        let (neg, body) = match text.as_bytes()[0] {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let lower = body.to_ascii_lowercase();
        if lower == "inf" || lower == "infinity" {
            let v = if neg { -F80::INFINITY } else { F80::INFINITY };
            return Some(LongDouble(v));
        }
        let parsed = if let Some(hex) = lower.strip_prefix("0x") {
            if !valid_hex(hex) {
                return None;
            }
            let hex = if hex.contains('p') {
                format!("0x{hex}")
            } else {
                format!("0x{hex}p0")
            };
            F80::from_str_r(&hex, Round::NearestTiesToEven).ok()?
        } else {
            if !valid_decimal(body.as_bytes()) {
                return None;
            }
            F80::from_str_r(body, Round::NearestTiesToEven).ok()?
        };
        let v = parsed.value;
        if parsed.status.contains(Status::OVERFLOW) || v.is_infinite() || v.is_nan() {
            return None;
        }
        if parsed.status.contains(Status::UNDERFLOW) && v.is_zero() {
            return None;
        }
        Some(LongDouble(if neg { -v } else { v }))
    }

    /// The long double equal to `d` (exact: every double is a long double).
    pub fn from_f64(d: f64) -> LongDouble {
        use rustc_apfloat::FloatConvert;
        let mut loses = false;
        let v: F80 = rustc_apfloat::ieee::Double::from_bits(u128::from(d.to_bits()))
            .convert(&mut loses)
            .value;
        LongDouble(v)
    }

    /// `self + other`, rounded to nearest.
    pub fn plus(self, other: LongDouble) -> LongDouble {
        LongDouble(self.0.add_r(other.0, Round::NearestTiesToEven).value)
    }

    /// True for NaN or ±infinity.
    pub fn is_nan_or_infinite(self) -> bool {
        self.0.is_nan() || self.0.is_infinite()
    }

    /// `"%.17Lf"` with trailing zeros (and a trailing point) removed, `-0` as `0`.
    pub fn format_human(self) -> String {
        let bits = self.0.to_bits();
        let sig = (bits & u128::from(u64::MAX)) as u64;
        let exp_field = ((bits >> 64) & 0x7fff) as i64;
        let negative = (bits >> 79) & 1 == 1;
        // value = sig × 2^k (denormals use the minimum exponent).
        let k = exp_field.max(1) - 16383 - 63;
        let scaled = u128::from(sig) * 100_000_000_000_000_000u128; // × 10^17 < 2^121
        let digits = if k >= 0 {
            to_decimal(shl_big(scaled, k as u32))
        } else {
            let s = (-k) as u32;
            let q = if s >= 128 {
                0
            } else {
                let q = scaled >> s;
                let rem = scaled & ((1u128 << s) - 1);
                let half = 1u128 << (s - 1);
                if rem > half || (rem == half && q & 1 == 1) {
                    q + 1
                } else {
                    q
                }
            };
            q.to_string()
        };
        let digits = format!("{digits:0>18}");
        let (int, frac) = digits.split_at(digits.len() - 17);
        let frac = frac.trim_end_matches('0');
        let mut out = String::with_capacity(digits.len() + 2);
        if negative {
            out.push('-');
        }
        out.push_str(int);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        if out == "-0" { "0".to_string() } else { out }
    }
}

fn valid_decimal(s: &[u8]) -> bool {
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < s.len() && s[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let mut n = digits(&mut i);
    if i < s.len() && s[i] == b'.' {
        i += 1;
        n += digits(&mut i);
    }
    if n == 0 {
        return false;
    }
    if i < s.len() && (s[i] == b'e' || s[i] == b'E') {
        i += 1;
        if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == s.len()
}

fn valid_hex(s: &str) -> bool {
    let s = s.as_bytes();
    let mut i = 0;
    let mut n = 0;
    while i < s.len() && s[i].is_ascii_hexdigit() {
        i += 1;
        n += 1;
    }
    if i < s.len() && s[i] == b'.' {
        i += 1;
        while i < s.len() && s[i].is_ascii_hexdigit() {
            i += 1;
            n += 1;
        }
    }
    if n == 0 {
        return false;
    }
    if i < s.len() && s[i] == b'p' {
        i += 1;
        if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == s.len()
}

/// `v << k` as little-endian 32-bit limbs.
fn shl_big(v: u128, k: u32) -> Vec<u32> {
    let mut limbs: Vec<u32> = (0..4).map(|i| (v >> (32 * i)) as u32).collect();
    let (words, bits) = ((k / 32) as usize, k % 32);
    let mut shifted = vec![0u32; words];
    shifted.append(&mut limbs);
    if bits > 0 {
        let mut carry = 0u32;
        for limb in shifted.iter_mut() {
            let next = *limb >> (32 - bits);
            *limb = (*limb << bits) | carry;
            carry = next;
        }
        shifted.push(carry);
    }
    shifted
}

/// Decimal digits of a little-endian big integer.
fn to_decimal(mut limbs: Vec<u32>) -> String {
    let mut chunks: Vec<u32> = Vec::new();
    loop {
        while limbs.last() == Some(&0) {
            limbs.pop();
        }
        if limbs.is_empty() {
            break;
        }
        let mut rem = 0u64;
        for limb in limbs.iter_mut().rev() {
            let cur = (rem << 32) | u64::from(*limb);
            *limb = (cur / 1_000_000_000) as u32;
            rem = cur % 1_000_000_000;
        }
        chunks.push(rem as u32);
    }
    let Some((first, rest)) = chunks.split_last() else {
        return "0".to_string();
    };
    let mut s = first.to_string();
    for c in rest.iter().rev() {
        s.push_str(&format!("{c:09}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(a: &str, b: &str) -> Option<String> {
        let x = LongDouble::parse(a.as_bytes())?.plus(LongDouble::parse(b.as_bytes())?);
        Some(x.format_human())
    }

    #[test]
    fn like_redis() {
        assert_eq!(incr("10.50", "0.1").as_deref(), Some("10.6"));
        assert_eq!(incr("5.0e3", "2.0e2").as_deref(), Some("5200"));
        assert_eq!(incr("0", "-0").as_deref(), Some("0"));
        assert_eq!(incr("1", "-1.5").as_deref(), Some("-0.5"));
        assert_eq!(incr("0", "1e-20").as_deref(), Some("0"));
        assert_eq!(incr("0", "0x10").as_deref(), Some("16"));
        assert_eq!(
            incr("0", "1e30").as_deref(),
            Some("1000000000000000000024696061952")
        );
        assert_eq!(
            incr("3.0", "0.00000000000000001").as_deref(),
            Some("3.00000000000000001")
        );
        assert!(LongDouble::parse(b" 1").is_none());
        assert!(LongDouble::parse(b"1 ").is_none());
        assert!(LongDouble::parse(b"abc").is_none());
        assert!(LongDouble::parse(b"nan").is_none());
        assert!(LongDouble::parse(b"1e99999").is_none());
        assert!(LongDouble::parse(b"1e-99999").is_none());
        assert!(LongDouble::parse(b"").is_none());
        assert!(LongDouble::parse(b"1e").is_none());
        assert!(LongDouble::parse(b".").is_none());
        assert!(LongDouble::parse(b"inf").is_some_and(|v| v.is_nan_or_infinite()));
    }
}
