//! Deterministic zip archives for deployment packages and layers: the same files always give the
//! same bytes, so a package's `CodeSha256` is the same on every machine and every run.

/// A zip archive of `files` (stored, no compression) whose bytes depend only on the names and
/// contents: entries sorted by name, every timestamp 1980-01-01 00:00, mode 0644, no extra
/// fields.
pub fn deterministic_zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    const DOS_TIME: u16 = 0;
    const DOS_DATE: u16 = (1 << 5) | 1; // 1980-01-01
    const VERSION: u16 = 20;
    const MADE_BY_UNIX: u16 = (3 << 8) | VERSION;
    const MODE_0644: u32 = 0o100_644 << 16;
    let mut sorted: Vec<&(&str, &[u8])> = files.iter().collect();
    sorted.sort_by_key(|(name, _)| *name);
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, body) in sorted {
        let offset = u32::try_from(out.len()).unwrap_or(u32::MAX);
        let crc = crc32(body);
        let size = u32::try_from(body.len()).unwrap_or(u32::MAX);
        let name_len = u16::try_from(name.len()).unwrap_or(u16::MAX);
        // Local file header.
        out.extend_from_slice(&0x0403_4b50_u32.to_le_bytes());
        for v in [VERSION, 0, 0, DOS_TIME, DOS_DATE] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [crc, size, size] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0_u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(body);
        // Central directory entry.
        central.extend_from_slice(&0x0201_4b50_u32.to_le_bytes());
        for v in [MADE_BY_UNIX, VERSION, 0, 0, DOS_TIME, DOS_DATE] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        for v in [crc, size, size] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        for v in [name_len, 0, 0, 0, 0] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        central.extend_from_slice(&MODE_0644.to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let entries = u16::try_from(files.len()).unwrap_or(u16::MAX);
    let central_offset = u32::try_from(out.len()).unwrap_or(u32::MAX);
    let central_size = u32::try_from(central.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50_u32.to_le_bytes());
    for v in [0, 0, entries, entries] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&central_size.to_le_bytes());
    out.extend_from_slice(&central_offset.to_le_bytes());
    out.extend_from_slice(&0_u16.to_le_bytes());
    out
}

/// CRC-32 (IEEE 802.3, as zip uses it).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFF_u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn zips_are_byte_for_byte_reproducible() {
        let files: [(&str, &[u8]); 1] = [("index.py", b"def handler(e, c):\n    return 1\n")];
        assert_eq!(deterministic_zip(&files), deterministic_zip(&files));
        assert_ne!(
            deterministic_zip(&files),
            deterministic_zip(&[("index.py", b"other")])
        );
    }

    #[test]
    fn zip_entries_are_sorted_whatever_the_input_order() {
        assert_eq!(
            deterministic_zip(&[("b", b"2"), ("a", b"1")]),
            deterministic_zip(&[("a", b"1"), ("b", b"2")])
        );
    }
}
