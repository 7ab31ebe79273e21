//! LevelDB/TensorFlow's masked form of CRC-32C (the CRC itself comes from the `crc32c` crate).

const MASK_DELTA: u32 = 0xa282_ead8;

/// The masked CRC that LevelDB tables and TensorFlow bundles store.
pub fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_known_vectors() {
        // RFC 3720 B.4 and the classic check value.
        assert_eq!(::crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(::crc32c::crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(::crc32c::crc32c(&[0xffu8; 32]), 0x62a8_ab43);
        let inc: Vec<u8> = (0..32).collect();
        assert_eq!(::crc32c::crc32c(&inc), 0x46dd_794e);
        assert_eq!(::crc32c::crc32c_append(::crc32c::crc32c(b"1234"), b"56789"), 0xe306_9283);
        assert_eq!(mask(0), MASK_DELTA);
    }
}
