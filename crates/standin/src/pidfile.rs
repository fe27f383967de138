//! `wso2carbon.pid`: what Carbon (and the stand-in) write, and how to read it back.
//!
//! Carbon's `Main.writePID` writes a 100-byte buffer: the decimal pid, `\n`, then NUL
//! bytes. The file stays behind after a stop, so a reader must trim the padding and
//! must not treat the file's presence as "running".

/// Size of the file Carbon writes.
pub const PID_FILE_LEN: usize = 100;

/// The bytes Carbon writes for `pid`: the pid, a newline and NUL padding to 100 bytes.
pub fn render(pid: u32) -> Vec<u8> {
    let mut bytes = format!("{pid}\n").into_bytes();
    bytes.resize(PID_FILE_LEN, 0);
    bytes
}

/// The pid in a `wso2carbon.pid`, ignoring NULs and whitespace; `None` if there is none.
pub fn parse(bytes: &[u8]) -> Option<u32> {
    let text: String = bytes
        .iter()
        .filter(|b| **b != 0)
        .map(|b| *b as char)
        .collect();
    let trimmed = text.trim();
    if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    trimmed.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_is_pid_newline_and_nul_padding_to_100_bytes() {
        let bytes = render(13125);
        assert_eq!(bytes.len(), 100);
        assert_eq!(&bytes[..6], b"13125\n");
        assert!(bytes[6..].iter().all(|b| *b == 0));
    }

    #[test]
    fn parse_trims_nul_padding_and_newline() {
        assert_eq!(parse(&render(4242)), Some(4242));
        assert_eq!(parse(b" 77 \n"), Some(77));
    }

    #[test]
    fn parse_rejects_empty_and_garbage() {
        assert_eq!(parse(&[0u8; 100]), None);
        assert_eq!(parse(b"12a\n"), None);
        assert_eq!(parse(b""), None);
    }
}
