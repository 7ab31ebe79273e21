//! A minimal protocol-buffer wire format: a reader of varints and (field, value) pairs, no schema, and the
//! few writers that TensorBoard's event files need.

use anyhow::{Result, anyhow, bail};

/// One field's payload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// Reads a base-128 varint at `*at`, advancing it.
pub fn varint(b: &[u8], at: &mut usize) -> Result<u64> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let byte = *b.get(*at).ok_or_else(|| anyhow!("varint runs past the end of its buffer"))?;
        *at += 1;
        if i == 9 && byte > 1 {
            bail!("varint is longer than 64 bits");
        }
        v |= ((byte & 0x7f) as u64) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    bail!("varint is longer than 10 bytes")
}

/// The (field number, payload) pairs of one message, in order.
pub fn fields(msg: &[u8]) -> Result<Vec<(u32, Wire<'_>)>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < msg.len() {
        let tag = varint(msg, &mut at)?;
        let field = u32::try_from(tag >> 3).map_err(|_| anyhow!("protobuf field number {} is too large", tag >> 3))?;
        let take = |at: &mut usize, n: usize| -> Result<&[u8]> {
            let end = at.checked_add(n).filter(|&e| e <= msg.len());
            let end = end.ok_or_else(|| anyhow!("protobuf field {field} runs past the end of its message"))?;
            let s = &msg[*at..end];
            *at = end;
            Ok(s)
        };
        let wire = match tag & 7 {
            0 => Wire::Varint(varint(msg, &mut at)?),
            1 => Wire::Fixed64(u64::from_le_bytes(take(&mut at, 8)?.try_into()?)),
            2 => {
                let n = usize::try_from(varint(msg, &mut at)?)?;
                Wire::Bytes(take(&mut at, n)?)
            }
            5 => Wire::Fixed32(u32::from_le_bytes(take(&mut at, 4)?.try_into()?)),
            w => bail!("protobuf field {field} has unsupported wire type {w}"),
        };
        out.push((field, wire));
    }
    Ok(out)
}

/// Appends a base-128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

/// Appends a varint field (int32/int64/uint64/enum; negative numbers as their 64-bit two's complement).
pub fn put_varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    put_key(out, field, 0);
    put_varint(out, v);
}

/// Appends a `double` field.
pub fn put_double(out: &mut Vec<u8>, field: u32, v: f64) {
    put_key(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a `float` field.
pub fn put_float(out: &mut Vec<u8>, field: u32, v: f32) {
    put_key(out, field, 5);
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a length-delimited field (bytes, string or an embedded message).
pub fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_varints_and_fields() {
        let mut at = 0;
        assert_eq!(varint(&[0xac, 0x02], &mut at).unwrap(), 300);
        assert_eq!(at, 2);
        // field 1 varint 150, field 2 bytes "hi", field 6 fixed32
        let msg = [0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i', 0x35, 1, 0, 0, 0];
        let f = fields(&msg).unwrap();
        assert_eq!(f, vec![(1, Wire::Varint(150)), (2, Wire::Bytes(b"hi")), (6, Wire::Fixed32(1))]);
        assert!(fields(&[0x12, 0x05, b'h']).is_err());
        assert!(varint(&[0xff; 11], &mut 0).is_err());
    }

    #[test]
    fn written_fields_read_back() {
        let mut msg = Vec::new();
        put_varint_field(&mut msg, 1, 150);
        put_bytes(&mut msg, 2, b"hi");
        put_double(&mut msg, 3, 0.25);
        put_float(&mut msg, 4, 1.5);
        put_varint_field(&mut msg, 5, u64::MAX);
        assert_eq!(&msg[..7], &[0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i']);
        let f = fields(&msg).unwrap();
        assert_eq!(f[2], (3, Wire::Fixed64(0.25f64.to_bits())));
        assert_eq!(f[3], (4, Wire::Fixed32(1.5f32.to_bits())));
        assert_eq!(f[4], (5, Wire::Varint(u64::MAX)));
    }
}
