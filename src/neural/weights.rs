//! Reader for ncnn's `.bin` weight file: the layers' weight blobs back to back, in the order
//! the `.param` declares the layers, with no index of its own (so a `.bin` only makes sense
//! with its `.param`).
//!
//! Two kinds of blob: tagged ones (convolution weights) start with a 4-byte little-endian tag —
//! `0x01306B47` fp16 values (padded to 4 bytes), `0x00000000` or `0x0002C056` raw fp32, any
//! other tag with non-zero bytes a 256-entry fp32 table followed by one-byte indices (padded to
//! 4 bytes); `0x000D4B38` int8 is refused. Raw blobs (biases, PReLU slopes) are plain fp32.

/// Tag of fp16 weight data.
pub const TAG_FP16: u32 = 0x0130_6B47;
/// Tag of int8 weight data (not supported).
pub const TAG_INT8: u32 = 0x000D_4B38;
/// Tag of raw fp32 data "with extra scaling" (read as raw fp32).
pub const TAG_FP32_SCALED: u32 = 0x0002_C056;

/// A cursor over `.bin` bytes.
pub struct WeightReader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> WeightReader<'a> {
    pub fn new(bytes: &'a [u8]) -> WeightReader<'a> {
        WeightReader { bytes, offset: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    /// Byte offset of the next read.
    pub fn offset(&self) -> usize {
        self.offset
    }

    fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8], String> {
        if len > self.remaining() {
            return Err(format!(
                "the .bin ends early: {what} needs {len} bytes at offset {} but only {} are left \
                 (does this .bin belong to this .param?)",
                self.offset,
                self.remaining()
            ));
        }
        let slice = &self.bytes[self.offset..self.offset + len];
        self.offset += len;
        Ok(slice)
    }

    fn byte_len(count: usize, size: usize, what: &str) -> Result<usize, String> {
        count
            .checked_mul(size)
            .ok_or_else(|| format!("{what} of {count} values is too large"))
    }

    /// `count` plain fp32 values (biases, slopes).
    pub fn read_raw(&mut self, count: usize, what: &str) -> Result<Vec<f32>, String> {
        let len = Self::byte_len(count, 4, what)?;
        let bytes = self.take(len, what)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// `count` values of a tagged blob (convolution weights).
    pub fn read_tagged(&mut self, count: usize, what: &str) -> Result<Vec<f32>, String> {
        let tag_bytes = self.take(4, what)?;
        let tag = u32::from_le_bytes([tag_bytes[0], tag_bytes[1], tag_bytes[2], tag_bytes[3]]);
        match tag {
            TAG_FP16 => {
                let len = align4(Self::byte_len(count, 2, what)?);
                let bytes = self.take(len, what)?;
                Ok(bytes
                    .chunks_exact(2)
                    .take(count)
                    .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                    .collect())
            }
            TAG_INT8 => Err(format!(
                "{what} is int8-quantized, which this engine does not support; use the fp16 or \
                 fp32 model"
            )),
            0 | TAG_FP32_SCALED => self.read_raw(count, what),
            _ => {
                let table = self.read_raw(256, what)?;
                let len = align4(count);
                let indices = self.take(len, what)?;
                Ok(indices[..count]
                    .iter()
                    .map(|&i| table[i as usize])
                    .collect())
            }
        }
    }
}

fn align4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// IEEE 754 half precision to single precision (exact).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0f32 } else { 1.0 };
    let exponent = u32::from((h >> 10) & 0x1f);
    let mantissa = u32::from(h & 0x3ff);
    match exponent {
        0 => sign * mantissa as f32 * 2f32.powi(-24),
        31 => {
            let bits = (u32::from(h & 0x8000) << 16) | 0x7f80_0000 | (mantissa << 13);
            f32::from_bits(bits)
        }
        _ => {
            let bits = (u32::from(h & 0x8000) << 16) | ((exponent + 112) << 23) | (mantissa << 13);
            f32::from_bits(bits)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_values() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3800), 0.5);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8000), -0.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn tagged_fp16_is_padded_to_four_bytes() {
        let mut bytes = TAG_FP16.to_le_bytes().to_vec();
        for h in [0x3c00u16, 0x4000, 0x4200] {
            bytes.extend(h.to_le_bytes());
        }
        bytes.extend([0, 0]); // padding
        bytes.extend(1.5f32.to_le_bytes());
        let mut reader = WeightReader::new(&bytes);
        assert_eq!(reader.read_tagged(3, "w").unwrap(), vec![1.0, 2.0, 3.0]);
        assert_eq!(reader.read_raw(1, "b").unwrap(), vec![1.5]);
        assert_eq!(reader.remaining(), 0);
    }

    #[test]
    fn tagged_fp32_and_table() {
        let mut bytes = 0u32.to_le_bytes().to_vec();
        bytes.extend(2.5f32.to_le_bytes());
        bytes.extend([1, 2, 3, 4]); // a non-zero tag: quantization table follows
        for i in 0..256 {
            bytes.extend((i as f32 * 0.5).to_le_bytes());
        }
        bytes.extend([4, 2, 0, 0]);
        let mut reader = WeightReader::new(&bytes);
        assert_eq!(reader.read_tagged(1, "w").unwrap(), vec![2.5]);
        assert_eq!(reader.read_tagged(2, "w").unwrap(), vec![2.0, 1.0]);
        assert_eq!(reader.remaining(), 0);
    }

    #[test]
    fn truncation_and_int8_are_errors() {
        let bytes = TAG_FP16.to_le_bytes();
        let e = WeightReader::new(&bytes)
            .read_tagged(4, "weights")
            .unwrap_err();
        assert!(e.contains("ends early") && e.contains("8 bytes"), "{e}");
        let e = WeightReader::new(&[1, 2]).read_raw(1, "bias").unwrap_err();
        assert!(e.contains("bias"), "{e}");
        let e = WeightReader::new(&TAG_INT8.to_le_bytes())
            .read_tagged(1, "w")
            .unwrap_err();
        assert!(e.contains("int8"), "{e}");
        let e = WeightReader::new(&[])
            .read_raw(usize::MAX, "w")
            .unwrap_err();
        assert!(e.contains("too large"), "{e}");
    }
}
