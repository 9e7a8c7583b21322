//! gRPC's message framing on the wire, followed through a body's data however it is split:
//! each message is a compression flag, a 4-byte big-endian length and that many bytes. The
//! metrics count messages by it (`metrics::CountMessages`) and unary calls refuse a second
//! message by it (`protocol::grpc::unary`; its tests are here).

/// The bytes of a gRPC message's prefix: a compression flag and a 4-byte big-endian length.
const PREFIX: usize = 5;

/// Where a body's data stands in the framing.
#[derive(Debug, Default)]
pub(crate) struct Framing {
    /// The current message's prefix as read so far.
    prefix: [u8; PREFIX],
    prefix_read: usize,
    /// The payload bytes of the current message still to come, once its prefix is read.
    remaining: Option<u64>,
    /// The messages whose prefix has been read.
    messages: u64,
}

impl Framing {
    /// Follows the framing through the next `data` of the body.
    pub(crate) fn follow(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match &mut self.remaining {
                None => {
                    let take = (PREFIX - self.prefix_read).min(data.len());
                    self.prefix[self.prefix_read..self.prefix_read + take]
                        .copy_from_slice(&data[..take]);
                    self.prefix_read += take;
                    data = &data[take..];
                    if self.prefix_read == PREFIX {
                        let [_, length @ ..] = self.prefix;
                        self.remaining = Some(u64::from(u32::from_be_bytes(length)));
                        self.prefix_read = 0;
                        self.messages += 1;
                    }
                }
                Some(0) => self.remaining = None,
                Some(remaining) => {
                    let take = (*remaining).min(data.len() as u64);
                    *remaining -= take;
                    data = &data[take as usize..];
                }
            }
        }
    }

    /// How many messages have begun (their prefix read whole).
    pub(crate) fn messages(&self) -> u64 {
        self.messages
    }

    /// Whether any data has come after the end of the first message.
    pub(crate) fn past_first_message(&self) -> bool {
        self.messages > 1 || (self.messages == 1 && self.prefix_read > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0];
        bytes.extend((payload.len() as u32).to_be_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    #[test]
    fn messages_split_anywhere_are_counted_once_each() {
        let three = [message(b"abc"), message(b""), message(b"z")].concat();
        for split in 0..=three.len() {
            for second in split..=three.len() {
                let mut framing = Framing::default();
                framing.follow(&three[..split]);
                framing.follow(&three[split..second]);
                framing.follow(&three[second..]);
                assert_eq!(framing.messages(), 3, "split at {split} and {second}");
            }
        }
    }

    #[test]
    fn data_after_the_first_message_is_seen_however_it_is_split() {
        let one = message(b"hello");
        let two = [message(b"hello"), message(b"again")].concat();
        for split in 0..=one.len() {
            let mut framing = Framing::default();
            framing.follow(&one[..split]);
            framing.follow(&one[split..]);
            assert!(!framing.past_first_message(), "split at {split}");
        }
        for split in 0..=two.len() {
            let mut framing = Framing::default();
            framing.follow(&two[..split]);
            framing.follow(&two[split..]);
            assert!(framing.past_first_message(), "split at {split}");
        }
        let mut empty = Framing::default();
        empty.follow(&message(b""));
        assert!(!empty.past_first_message());
        empty.follow(&[0]);
        assert!(empty.past_first_message());
    }
}
