//! Container paths as text, with their bytes kept. Sync mode names container
//! paths with `String`s (the mirror's keys, tar names, `rm` lists), but a
//! Linux file name is any bytes: one the container made that is not UTF-8
//! (`touch $'caf\xe9'`) must come back to the host as the same bytes, and go
//! in again under them. Each byte of an invalid sequence is held as one
//! character of the last private-use plane (U+10FF80 + byte − 0x80) and
//! turned back into that byte wherever a path leaves devenv. (A name really
//! spelled with those code points would cross as the bytes they stand for;
//! no tool makes such names.)

use std::borrow::Cow;

/// Where the held bytes live: U+10FF80..=U+10FFFF stand for 0x80..=0xFF.
const BASE: u32 = 0x10_FF00;

/// `bytes` as text: valid UTF-8 as it is, each other byte held.
pub fn text(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        if !s.chars().any(held) {
            return Cow::Borrowed(s);
        }
    }
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            // An invalid byte is never ASCII, so it is one of 0x80..=0xFF.
            out.push(char::from_u32(BASE + u32::from(*b)).expect("a private-use code point"));
        }
    }
    Cow::Owned(out)
}

/// The bytes `text` stands for.
pub fn bytes(text: &str) -> Cow<'_, [u8]> {
    if !text.chars().any(held) {
        return Cow::Borrowed(text.as_bytes());
    }
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        if held(c) {
            out.push((c as u32 - BASE) as u8);
        } else {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    Cow::Owned(out)
}

/// True when `text` names bytes that are not UTF-8 (the engine's archive
/// API takes a path as UTF-8 text: such a file is reached another way).
pub fn is_raw(text: &str) -> bool {
    text.chars().any(held)
}

/// `text`'s bytes as a host path.
pub fn host_path(text: &str) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&bytes(text)))
}

/// `text`'s bytes as a `printf` format that prints exactly them: a path
/// that is not UTF-8 can only reach a container's shell as ASCII (the
/// exec API takes UTF-8 arguments).
pub fn printf_format(text: &str) -> String {
    let mut out = String::new();
    for b in bytes(text).iter() {
        if b.is_ascii_alphanumeric() || b"/._-+,:=@".contains(b) {
            out.push(*b as char);
        } else {
            out.push_str(&format!("\\{b:03o}"));
        }
    }
    out
}

fn held(c: char) -> bool {
    (BASE + 0x80..=BASE + 0xFF).contains(&(c as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_not_utf8_keep_their_bytes() {
        let raw = b"/srv/caf\xe9 \xff\xfe.txt";
        let t = text(raw);
        assert!(is_raw(&t));
        assert_eq!(&*bytes(&t), raw);
        assert_eq!(
            host_path(&t).as_os_str().len(),
            raw.len(),
            "the host path is the same bytes"
        );
        let plain = "/srv/café.txt";
        assert!(matches!(text(plain.as_bytes()), Cow::Borrowed(_)));
        assert!(!is_raw(plain));
        assert_eq!(&*bytes(plain), plain.as_bytes());
    }

    #[test]
    fn a_printf_format_spells_every_odd_byte_in_octal() {
        assert_eq!(
            printf_format(&text(b"/srv/a b%\xe9")),
            "/srv/a\\040b\\045\\351"
        );
    }
}
