//! The NumPy `.npy` format (version 1.0), written and read without NumPy.
//!
//! A file is the magic string `\x93NUMPY`, the version bytes `1 0`, a
//! little-endian `u16` header length, an ASCII header holding a Python dict
//! literal such as `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }`
//! padded with spaces and a final `\n` so that the data starts at a multiple of
//! 64 bytes, then the raw C-order data. `numpy.load` reads these files as they
//! are; [`read_header`] reads back what [`encode_header`] writes. Image
//! arrays are written gzip-compressed ([`GzWriter`], `.npy.gz`), which
//! Python reads with `numpy.load(gzip.open(path))` and [`read`] reads too.

use std::io::Write;
use std::path::Path;

/// The magic bytes every `.npy` file starts with.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Data starts at a multiple of this many bytes (NumPy ≥ 1.15 pads to 64).
const ALIGN: usize = 64;

/// Element types written by Telic, as NumPy `descr` strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    /// Little-endian `float32` (`'<f4'`).
    F32,
    /// Little-endian `int32` (`'<i4'`).
    I32,
    /// `uint8` (`'|u1'`).
    U8,
}

impl Dtype {
    /// The NumPy `descr` string.
    #[must_use]
    pub fn descr(self) -> &'static str {
        match self {
            Dtype::F32 => "<f4",
            Dtype::I32 => "<i4",
            Dtype::U8 => "|u1",
        }
    }

    /// Bytes per element.
    #[must_use]
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::U8 => 1,
        }
    }
}

/// What a `.npy` header says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// NumPy `descr`, e.g. `"<f4"`.
    pub descr: String,
    /// Column-major data (Telic always writes `false`).
    pub fortran_order: bool,
    /// The array's shape.
    pub shape: Vec<usize>,
}

impl Header {
    /// Number of elements the shape holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the shape holds no element.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The header bytes (magic, version, length, padded dict) for an array of
/// `dtype` and `shape` in C order; the data follows it directly.
#[must_use]
pub fn encode_header(dtype: Dtype, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape_text = match dims.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_text}, }}",
        dtype.descr()
    );
    // magic (6) + version (2) + length (2) + dict + '\n' ≡ 0 (mod ALIGN)
    let unpadded = MAGIC.len() + 4 + dict.len() + 1;
    let pad = (ALIGN - unpadded % ALIGN) % ALIGN;
    dict.extend(std::iter::repeat_n(' ', pad));
    dict.push('\n');
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + dict.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    // Headers of version 1.0 are below 64 KiB; ours are a few dozen bytes.
    let len = u16::try_from(dict.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Writes `data` (already little-endian, C order) as a `.npy` file.
///
/// Fails with [`std::io::ErrorKind::InvalidInput`] when `data` does not hold
/// exactly `shape` elements of `dtype`.
pub fn write(path: &Path, dtype: Dtype, shape: &[usize], data: &[u8]) -> std::io::Result<()> {
    let expected = shape.iter().product::<usize>() * dtype.size();
    if data.len() != expected {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{} bytes for shape {shape:?} of {}, expected {expected}",
                data.len(),
                dtype.descr()
            ),
        ));
    }
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    file.write_all(&encode_header(dtype, shape))?;
    file.write_all(data)?;
    file.flush()
}

/// `f32` values as little-endian bytes.
#[must_use]
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// `i32` values as little-endian bytes.
#[must_use]
pub fn i32_bytes(values: &[i32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Parses the header at the start of `bytes` (a whole `.npy` file or its
/// beginning) and returns it with the offset at which the data starts.
pub fn read_header(bytes: &[u8]) -> Result<(Header, usize), String> {
    let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
        return Err("not a .npy file (bad magic)".into());
    };
    let (len, start) = match rest {
        [1, 0, a, b, ..] => (usize::from(u16::from_le_bytes([*a, *b])), 10),
        [2 | 3, 0, a, b, c, d, ..] => (u32::from_le_bytes([*a, *b, *c, *d]) as usize, 12),
        [major, minor, ..] => return Err(format!("unsupported .npy version {major}.{minor}")),
        _ => return Err("truncated .npy header".into()),
    };
    let Some(dict) = bytes.get(start..start + len) else {
        return Err("truncated .npy header".into());
    };
    let dict = std::str::from_utf8(dict).map_err(|_| "header is not text".to_string())?;
    let descr = quoted_after(dict, "'descr':").ok_or("header has no descr")?;
    let fortran_order = match value_after(dict, "'fortran_order':") {
        Some(v) if v.starts_with("True") => true,
        Some(v) if v.starts_with("False") => false,
        _ => return Err("header has no fortran_order".into()),
    };
    let shape_text = value_after(dict, "'shape':")
        .and_then(|v| v.strip_prefix('('))
        .and_then(|v| v.split_once(')'))
        .map(|(inside, _)| inside)
        .ok_or("header has no shape")?;
    let shape = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad shape entry `{s}`"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // The data's size must be a number of bytes: a shape whose product
    // overflows describes no file.
    let size = [Dtype::F32, Dtype::I32, Dtype::U8]
        .into_iter()
        .find(|d| d.descr() == descr)
        .map_or(1, Dtype::size);
    if shape
        .iter()
        .try_fold(size, |n, d| n.checked_mul(*d))
        .is_none()
    {
        return Err(format!(
            "shape ({shape_text}) holds more bytes than memory can address"
        ));
    }
    Ok((
        Header {
            descr: descr.to_string(),
            fortran_order,
            shape,
        },
        start + len,
    ))
}

fn value_after<'a>(dict: &'a str, key: &str) -> Option<&'a str> {
    let at = dict.find(key)?;
    dict.get(at + key.len()..).map(str::trim_start)
}

fn quoted_after<'a>(dict: &'a str, key: &str) -> Option<&'a str> {
    let v = value_after(dict, key)?.strip_prefix('\'')?;
    v.split_once('\'').map(|(inside, _)| inside)
}

/// Reads a whole `.npy` file, or a gzip-compressed one (`.npy.gz`, told
/// by its first bytes): its header and its raw data bytes, checking that
/// the data length matches the shape (`f4`, `i4`, `u1` element sizes).
pub fn read(path: &Path) -> Result<(Header, Vec<u8>), String> {
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let mut bytes = std::fs::read(path).map_err(|e| at(&e))?;
    if bytes.starts_with(&GZIP_MAGIC) {
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut plain)
            .map_err(|e| at(&e))?;
        bytes = plain;
    }
    let (header, offset) = read_header(&bytes).map_err(|e| at(&e))?;
    let size = match header.descr.as_str() {
        "<f4" | "<i4" => 4,
        "|u1" | "<u1" => 1,
        other => return Err(at(&format!("unsupported dtype {other}"))),
    };
    let data = bytes.get(offset..).unwrap_or_default().to_vec();
    if data.len() != header.len() * size {
        return Err(at(&format!(
            "{} data bytes for shape {:?}",
            data.len(),
            header.shape
        )));
    }
    Ok((header, data))
}

/// The first bytes of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A `.npy` file of `dtype` and `shape` compressed with gzip, written as
/// its data arrives ([`GzWriter::write`]) so that the whole array never
/// needs to be in one buffer. The gzip header holds no name and no time:
/// the same data always gives the same bytes.
pub struct GzWriter {
    out: flate2::write::GzEncoder<std::io::BufWriter<std::fs::File>>,
    /// Data bytes still expected.
    left: usize,
}

impl std::fmt::Debug for GzWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GzWriter")
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

impl GzWriter {
    /// Creates `path` and writes the header.
    pub fn create(path: &Path, dtype: Dtype, shape: &[usize]) -> std::io::Result<Self> {
        let file = std::io::BufWriter::new(std::fs::File::create(path)?);
        let mut out = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        out.write_all(&encode_header(dtype, shape))?;
        Ok(Self {
            out,
            left: shape.iter().product::<usize>() * dtype.size(),
        })
    }

    /// Appends data bytes (little-endian, C order); more than the shape
    /// holds is an [`std::io::ErrorKind::InvalidInput`] error.
    pub fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.left = self.left.checked_sub(data.len()).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "more data than the array's shape holds",
            )
        })?;
        self.out.write_all(data)
    }

    /// Finishes the gzip stream; fewer data bytes than the shape holds is
    /// an [`std::io::ErrorKind::InvalidInput`] error.
    pub fn finish(self) -> std::io::Result<()> {
        if self.left != 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} data bytes missing for the array's shape", self.left),
            ));
        }
        self.out.finish()?.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shape_beyond_memory_is_an_error() {
        // Found by tests/tests/fuzz_inputs.rs: the element count overflowed.
        let h = encode_header(Dtype::F32, &[usize::MAX / 2, 3]);
        let e = read_header(&h).unwrap_err();
        assert!(e.contains("more bytes than memory"), "{e}");
    }

    #[test]
    fn header_round_trips_and_is_aligned() {
        for shape in [vec![], vec![7], vec![3, 2], vec![0, 5], vec![123_456, 9]] {
            for dtype in [Dtype::F32, Dtype::I32, Dtype::U8] {
                let h = encode_header(dtype, &shape);
                assert_eq!(h.len() % ALIGN, 0);
                assert_eq!(h.last(), Some(&b'\n'));
                let (back, offset) = read_header(&h).unwrap();
                assert_eq!(offset, h.len());
                assert_eq!(back.shape, shape);
                assert_eq!(back.descr, dtype.descr());
                assert!(!back.fortran_order);
            }
        }
    }

    #[test]
    fn gzip_files_round_trip_and_repeat_their_bytes() {
        let dir = std::env::temp_dir().join(format!("telic-npy-gz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data: Vec<u8> = (0..240).map(|i| (i * 7 % 256) as u8).collect();
        let mut files = Vec::new();
        for k in 0..2 {
            let p = dir.join(format!("a{k}.npy.gz"));
            let mut w = GzWriter::create(&p, Dtype::U8, &[4, 3, 4, 5]).unwrap();
            for chunk in data.chunks(60) {
                w.write(chunk).unwrap();
            }
            w.finish().unwrap();
            let (header, back) = read(&p).unwrap();
            assert_eq!(header.shape, [4, 3, 4, 5]);
            assert_eq!(header.descr, "|u1");
            assert_eq!(back, data);
            files.push(std::fs::read(&p).unwrap());
        }
        assert_eq!(files[0], files[1]);
        assert_eq!(files[0][..2], GZIP_MAGIC);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn one_dimensional_shapes_have_a_trailing_comma() {
        let h = encode_header(Dtype::F32, &[4]);
        let text = String::from_utf8_lossy(&h);
        assert!(text.contains("'shape': (4,), }"), "{text}");
    }

    #[test]
    fn bad_files_are_errors() {
        assert!(read_header(b"hello").is_err());
        assert!(read_header(b"\x93NUMPY\x01\x00\xff\x00{").is_err());
        assert!(read_header(b"\x93NUMPY\x09\x00\x00\x00").is_err());
        let dir = std::env::temp_dir().join(format!("telic-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("short.npy");
        let mut bytes = encode_header(Dtype::F32, &[3]);
        bytes.extend_from_slice(&[0; 8]);
        std::fs::write(&p, bytes).unwrap();
        assert!(read(&p).unwrap_err().contains("8 data bytes"));
        assert!(write(&p, Dtype::F32, &[3], &[0; 8]).is_err());
        let gz = dir.join("short.npy.gz");
        let mut w = GzWriter::create(&gz, Dtype::U8, &[2, 3]).unwrap();
        w.write(&[1, 2, 3]).unwrap();
        assert!(
            w.finish()
                .unwrap_err()
                .to_string()
                .contains("3 data bytes missing")
        );
        let mut w = GzWriter::create(&gz, Dtype::U8, &[2]).unwrap();
        assert!(w.write(&[1, 2, 3]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
