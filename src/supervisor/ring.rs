//! A bounded byte ring that keeps the last bytes a child wrote on stderr: the "log tail" shown
//! when a worker crashes. Bounded so that a chatty child can never grow the GUI's memory.

use std::collections::VecDeque;

/// The last `capacity_bytes` bytes pushed into it.
#[derive(Debug, Clone)]
pub struct TailBuffer {
    bytes: VecDeque<u8>,
    capacity_bytes: usize,
}

impl TailBuffer {
    pub fn new(capacity_bytes: usize) -> Self {
        Self {
            bytes: VecDeque::with_capacity(capacity_bytes.min(64 * 1024)),
            capacity_bytes,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        if self.capacity_bytes == 0 {
            return;
        }
        let data = if data.len() > self.capacity_bytes {
            &data[data.len() - self.capacity_bytes..]
        } else {
            data
        };
        let overflow = (self.bytes.len() + data.len()).saturating_sub(self.capacity_bytes);
        self.bytes.drain(..overflow);
        self.bytes.extend(data);
    }

    /// The kept bytes as text (invalid UTF-8 replaced), starting at a line boundary when the
    /// buffer had to drop older bytes.
    pub fn text(&self) -> String {
        let (a, b) = self.bytes.as_slices();
        let mut all = Vec::with_capacity(a.len() + b.len());
        all.extend_from_slice(a);
        all.extend_from_slice(b);
        let text = String::from_utf8_lossy(&all).into_owned();
        if self.bytes.len() >= self.capacity_bytes
            && let Some(newline) = text.find('\n')
            && newline + 1 < text.len()
        {
            return text[newline + 1..].to_owned();
        }
        text
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_everything_under_capacity() {
        let mut tail = TailBuffer::new(64);
        tail.push(b"line one\n");
        tail.push(b"line two\n");
        assert_eq!(tail.text(), "line one\nline two\n");
    }

    #[test]
    fn drops_oldest_bytes_and_starts_at_a_line() {
        let mut tail = TailBuffer::new(16);
        tail.push(b"aaaaaaaaaa\n");
        tail.push(b"bbbb\ncccc\n");
        assert_eq!(tail.len(), 16);
        assert_eq!(tail.text(), "bbbb\ncccc\n");
    }

    #[test]
    fn a_push_larger_than_capacity_keeps_its_end() {
        let mut tail = TailBuffer::new(4);
        tail.push(b"0123456789");
        assert_eq!(tail.len(), 4);
        assert_eq!(tail.text(), "6789");
    }
}
