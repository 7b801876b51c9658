//! Character classes of the MSRP grammar as one lookup table, so that the
//! hot parsing loops cost one load per byte instead of a chain of compares.

/// RFC 3986 unreserved: ALPHA DIGIT - . _ ~
pub const UNRESERVED: u8 = 1;
/// RFC 4975 token: ALPHA DIGIT - . ! % * _ + ` ' ~
pub const TOKEN: u8 = 2;
/// RFC 4975 ident-char: ALPHA DIGIT . - + % =
pub const IDENT: u8 = 4;
/// RFC 3986 sub-delims: ! $ & ' ( ) * + , ; =
pub const SUB_DELIM: u8 = 8;
/// RFC 4975 session-id characters: unreserved + = /
pub const SESSION: u8 = 16;
/// ALPHA DIGIT
pub const ALNUM: u8 = 32;

const fn build() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let alnum = b.is_ascii_alphanumeric();
        let mut v = 0;
        if alnum || matches!(b, b'-' | b'.' | b'_' | b'~') {
            v |= UNRESERVED | SESSION;
        }
        if alnum
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            )
        {
            v |= TOKEN;
        }
        if alnum || matches!(b, b'.' | b'-' | b'+' | b'%' | b'=') {
            v |= IDENT;
        }
        if matches!(
            b,
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
        ) {
            v |= SUB_DELIM;
        }
        if matches!(b, b'+' | b'=' | b'/') {
            v |= SESSION;
        }
        if alnum {
            v |= ALNUM;
        }
        t[c] = v;
        c += 1;
    }
    t
}

static TABLE: [u8; 256] = build();

/// Whether byte `b` is in any of the classes in `mask`.
#[inline(always)]
pub fn is(b: u8, mask: u8) -> bool {
    TABLE[b as usize] & mask != 0
}

/// Whether every byte of `s` is in one of the classes in `mask`.
#[inline]
pub fn all(s: &[u8], mask: u8) -> bool {
    s.iter().all(|&b| is(b, mask))
}

/// `&[u8]` to `&str`, taking the fast path for ASCII (the usual case for
/// MSRP heads) and validating fully otherwise.
#[inline]
pub fn utf8(s: &[u8]) -> Result<&str, std::str::Utf8Error> {
    if s.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8.
        Ok(unsafe { std::str::from_utf8_unchecked(s) })
    } else {
        std::str::from_utf8(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_match_the_grammar() {
        for b in 0..=255u8 {
            let alnum = b.is_ascii_alphanumeric();
            assert_eq!(is(b, ALNUM), alnum);
            assert_eq!(is(b, UNRESERVED), alnum || b"-._~".contains(&b), "{b}");
            assert_eq!(is(b, TOKEN), alnum || b"-.!%*_+`'~".contains(&b), "{b}");
            assert_eq!(is(b, IDENT), alnum || b".-+%=".contains(&b), "{b}");
            assert_eq!(is(b, SUB_DELIM), b"!$&'()*+,;=".contains(&b), "{b}");
            assert_eq!(is(b, SESSION), alnum || b"-._~+=/".contains(&b), "{b}");
        }
        assert_eq!(utf8(b"abc").unwrap(), "abc");
        assert_eq!(utf8("é".as_bytes()).unwrap(), "é");
        assert!(utf8(b"\xff").is_err());
    }
}
