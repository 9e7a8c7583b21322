//! Client text repeated in error messages, capped: a client that sends a 100 KB name gets an
//! error of a few hundred bytes back (gRPC clients refuse status messages past ~8 KiB of
//! metadata, and would report RESOURCE_EXHAUSTED instead of the real status).

use std::fmt;

/// The most bytes of one piece of client text (a name, a value) an error message repeats.
pub(crate) const QUOTE_LIMIT: usize = 256;

/// The most bytes of an error message sent to a client.
pub(crate) const MESSAGE_LIMIT: usize = 2048;

/// Client text as an error message repeats it: at most [`QUOTE_LIMIT`] bytes, cut on a character
/// boundary and marked as cut.
pub(crate) fn quoted(text: &str) -> Quoted<'_> {
    Quoted(text)
}

/// See [`quoted`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_capped(f, self.0, QUOTE_LIMIT)
    }
}

/// `message` cut to at most `limit` bytes (on a character boundary), marked as cut.
pub(crate) fn capped(message: &str, limit: usize) -> std::borrow::Cow<'_, str> {
    if message.len() <= limit {
        return message.into();
    }
    let mut text = String::with_capacity(limit + 32);
    let _ = write_capped(&mut text, message, limit);
    text.into()
}

fn write_capped(out: &mut impl fmt::Write, text: &str, limit: usize) -> fmt::Result {
    if text.len() <= limit {
        return out.write_str(text);
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    write!(out, "{}…[cut: {} bytes in all]", &text[..end], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_on_a_character_boundary_and_marked() {
        assert_eq!(quoted("short").to_string(), "short");
        let long = "é".repeat(200); // 400 bytes, 2 per character
        let cut = quoted(&long).to_string();
        assert!(cut.starts_with(&"é".repeat(128)), "{cut}");
        assert!(cut.ends_with("…[cut: 400 bytes in all]"), "{cut}");
        assert!(cut.len() < QUOTE_LIMIT + 40);
        let odd = format!("a{long}");
        assert!(
            quoted(&odd)
                .to_string()
                .starts_with(&format!("a{}…", "é".repeat(127)))
        );
        assert_eq!(capped("abc", 2), "ab…[cut: 3 bytes in all]");
        assert_eq!(capped("abc", 3), "abc");
    }
}
