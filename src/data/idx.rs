//! The IDX format of MNIST and Fashion-MNIST, plain or gzip-compressed.
//!
//! Header: two zero bytes, a type code byte, a byte with the number of dimensions, then each
//! dimension as a big-endian u32; then the data, big-endian and row-major. Gzip compression is
//! detected by the magic bytes `1f 8b`, not by the file name.

use std::io::{Read, Write};
use std::path::Path;

pub use super::idx_dir::{IdxFiles, find_files, read_dir, read_test_dir};
use super::{MAX_LABEL, read_file, write_atomic};
use crate::error::{Error, Result};

/// An IDX element type: its type code, size in bytes and name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Kind {
    code: u8,
    size: usize,
    name: &'static str,
}

const U8: u8 = 0x08;
const I32: u8 = 0x0C;
const F32: u8 = 0x0D;

const fn kind(code: u8, size: usize, name: &'static str) -> Kind {
    Kind { code, size, name }
}

/// The element types of the IDX format.
#[rustfmt::skip]
const KINDS: [Kind; 6] = [
    kind(U8, 1, "u8"), kind(0x09, 1, "i8"), kind(0x0B, 2, "i16"),
    kind(I32, 4, "i32"), kind(F32, 4, "f32"), kind(0x0E, 8, "f64"),
];

impl Kind {
    /// Decodes element `i` of `data` (already bounds-checked by `parse`) as f64.
    fn get(self, data: &[u8], i: usize) -> f64 {
        let b = &data[i * self.size..(i + 1) * self.size];
        match (self.code, b) {
            (0x09, &[a]) => f64::from(a as i8),
            (0x0B, &[a, b]) => f64::from(i16::from_be_bytes([a, b])),
            (I32, &[a, b, c, d]) => f64::from(i32::from_be_bytes([a, b, c, d])),
            (F32, &[a, b, c, d]) => f64::from(f32::from_be_bytes([a, b, c, d])),
            (_, &[a, b, c, d, e, f, g, h]) => f64::from_be_bytes([a, b, c, d, e, f, g, h]),
            // u8 (the only remaining one-byte type).
            (_, b) => f64::from(b[0]),
        }
    }
}

/// A parsed IDX file: element type, dimensions, and the offset of the data within `bytes`.
struct Idx {
    kind: Kind,
    dims: Vec<usize>,
    data_offset: usize,
    bytes: Vec<u8>,
}

impl Idx {
    fn data(&self) -> &[u8] {
        &self.bytes[self.data_offset..]
    }
}

/// What the header says: element type, dimensions, where the data starts and how many data
/// bytes it declares.
struct Header {
    kind: Kind,
    dims: Vec<usize>,
    data_offset: usize,
    expected: usize,
}

/// Parses the header at the start of `bytes` (which may hold more than the header).
fn header(path: &Path, bytes: &[u8]) -> Result<Header> {
    let fail = |pos: &str, msg: String| Err(Error::data(path, pos, msg));
    if bytes.len() < 4 {
        let n = bytes.len();
        return fail(
            "header",
            format!(
                "file is too short: {n} bytes, but an IDX header needs 4 or more (not an IDX file, or truncated)"
            ),
        );
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        let (a, b) = (bytes[0], bytes[1]);
        return fail(
            "header, byte 0",
            format!(
                "not an IDX file (or a corrupt gzip): the first two bytes are {a:02x} {b:02x}, expected 00 00"
            ),
        );
    }
    let Some(kind) = KINDS.iter().copied().find(|k| k.code == bytes[2]) else {
        let c = bytes[2];
        return fail(
            "header, byte 2",
            format!(
                "unknown IDX type code 0x{c:02x}; expected 0x08 (u8), 0x09 (i8), 0x0B (i16), 0x0C (i32), 0x0D (f32) or 0x0E (f64)"
            ),
        );
    };
    let ndims = usize::from(bytes[3]);
    if ndims == 0 {
        let msg = "the header declares zero dimensions; an IDX file needs at least one";
        return fail("header, byte 3", msg.to_string());
    }
    let data_offset = 4 + 4 * ndims;
    if bytes.len() < data_offset {
        let n = bytes.len();
        return fail(
            "header",
            format!(
                "truncated header: {ndims} dimensions need {data_offset} header bytes but the file has {n}"
            ),
        );
    }
    let dims: Vec<usize> = bytes[4..data_offset]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    // The size of one sample is checked on its own too: with zero samples the product of
    // all dimensions is 0 however large the others are.
    let sample = dims[1..]
        .iter()
        .try_fold(kind.size, |a, &d| a.checked_mul(d));
    let expected = sample.and_then(|b| b.checked_mul(dims[0]));
    let Some(expected) = expected else {
        let shape = dims_text(&dims);
        return fail(
            "header",
            format!("dimensions {shape} are too large to hold in memory"),
        );
    };
    Ok(Header {
        kind,
        dims,
        data_offset,
        expected,
    })
}

/// Checks that `present` data bytes (of a file of `total` bytes) are what `h` declares.
fn check_size(path: &Path, h: &Header, present: usize, total: usize) -> Result<()> {
    let expected = h.expected;
    if present == expected {
        return Ok(());
    }
    let what = if present < expected {
        "truncated data: the file is incomplete, download it again"
    } else {
        "trailing data after the last element: the header does not match the file"
    };
    let pos = format!("byte {}", h.data_offset + present.min(expected));
    let (shape, name) = (dims_text(&h.dims), h.kind.name);
    Err(Error::data(
        path,
        pos,
        format!(
            "{what} (the header declares {shape} {name} elements = {expected} data bytes, {present} present; file size {total} bytes)"
        ),
    ))
}

fn gzip_error(path: &Path, decompressed: usize, e: std::io::Error) -> Error {
    Error::data(
        path,
        format!("gzip stream, after {decompressed} decompressed bytes"),
        format!("corrupt gzip stream ({e}); the file is damaged or incomplete, download it again"),
    )
}

/// Reads from `reader` until `out` holds `len` bytes or the stream ends.
fn fill(path: &Path, reader: &mut impl Read, out: &mut Vec<u8>, len: usize) -> Result<()> {
    let want = len.saturating_sub(out.len()) as u64;
    let got = reader.by_ref().take(want).read_to_end(out);
    got.map(|_| ()).map_err(|e| gzip_error(path, out.len(), e))
}

/// Decompresses a gzip IDX file: the header first, then no more than the data it declares
/// (the rest of the stream is only counted), so a header claiming billions of elements
/// allocates nothing before the data is there, and a declared size beyond the memory
/// available is refused before reading it.
fn parse_gz(path: &Path, raw: &[u8]) -> Result<Idx> {
    let mut dec = flate2::read::MultiGzDecoder::new(raw);
    let mut bytes = Vec::new();
    fill(path, &mut dec, &mut bytes, 4)?;
    if bytes.len() == 4 && bytes[0] == 0 && bytes[1] == 0 {
        let header_len = 4 + 4 * usize::from(bytes[3]);
        fill(path, &mut dec, &mut bytes, header_len)?;
    }
    let h = header(path, &bytes)?;
    if let Some(available) = crate::config::available_host_memory() {
        if h.expected as u64 > available {
            let (shape, name) = (dims_text(&h.dims), h.kind.name);
            return Err(Error::data(
                path,
                "header",
                format!(
                    "the header declares {shape} {name} elements = {} of data, more than the {} of memory available; the file is corrupt, or too large for this machine",
                    crate::error::human_bytes(h.expected as u64),
                    crate::error::human_bytes(available)
                ),
            ));
        }
    }
    fill(path, &mut dec, &mut bytes, h.data_offset + h.expected)?;
    let mut present = bytes.len() - h.data_offset;
    if present == h.expected {
        // Count (without keeping) whatever follows, for the error message.
        let rest = std::io::copy(&mut dec, &mut std::io::sink());
        present += rest.map_err(|e| gzip_error(path, bytes.len(), e))? as usize;
    }
    check_size(path, &h, present, h.data_offset + present)?;
    Ok(Idx {
        kind: h.kind,
        dims: h.dims,
        data_offset: h.data_offset,
        bytes,
    })
}

/// Parses and checks the header and data size of IDX `raw` bytes (gzip is detected by the
/// `1f 8b` magic bytes); `path` names the file in errors.
fn parse_bytes(path: &Path, raw: Vec<u8>) -> Result<Idx> {
    if raw.len() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
        return parse_gz(path, &raw);
    }
    let h = header(path, &raw)?;
    check_size(path, &h, raw.len() - h.data_offset, raw.len())?;
    Ok(Idx {
        kind: h.kind,
        dims: h.dims,
        data_offset: h.data_offset,
        bytes: raw,
    })
}

/// Reads and parses the IDX file at `path`.
fn parse(path: &Path) -> Result<Idx> {
    parse_bytes(path, read_file(path)?)
}

fn dims_text(dims: &[usize]) -> String {
    let parts: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    parts.join("×")
}

/// The first (decompressed) bytes of a file, at most `n`.
fn head(path: &Path, n: usize) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let io = |e| Error::io(path, "read", e);
    let mut raw = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(2)
        .read_to_end(&mut raw)
        .map_err(io)?;
    let file = std::fs::File::open(path).map_err(io)?;
    let mut out = Vec::new();
    if raw == [0x1f, 0x8b] {
        let dec = flate2::read::MultiGzDecoder::new(file);
        dec.take(n as u64)
            .read_to_end(&mut out)
            .map_err(|e| gzip_error(path, out.len(), e))?;
    } else {
        file.take(n as u64).read_to_end(&mut out).map_err(io)?;
    }
    Ok(out)
}

/// Whether `path` starts like an IDX file (`00 00`, after gzip decompression): `predict`
/// takes such image files besides CSV.
pub fn looks_like_idx(path: &Path) -> Result<bool> {
    Ok(head(path, 2)?.starts_with(&[0, 0]))
}

/// Whether an IDX image file holds unsigned bytes, which [`read_images`] divides by 255
/// (read from the header alone).
pub fn holds_u8(path: &Path) -> Result<bool> {
    let h = head(path, 4)?;
    Ok(h.len() == 4 && h[..2] == [0, 0] && h[2] == U8)
}

/// Reads an IDX image (feature) file: returns (features flattened per sample, n_samples, n_features).
///
/// u8 data is scaled to [0, 1] by /255; every other type is converted to f32 as is.
pub fn read_images(path: &Path) -> Result<(Vec<f32>, usize, usize)> {
    images(path, parse(path)?)
}

/// Like [`read_images`], from the bytes of a file (plain or gzip); `path` names it in errors.
pub fn images_from_bytes(path: &Path, bytes: &[u8]) -> Result<(Vec<f32>, usize, usize)> {
    images(path, parse_bytes(path, bytes.to_vec())?)
}

fn images(path: &Path, idx: Idx) -> Result<(Vec<f32>, usize, usize)> {
    let (n, n_features) = (idx.dims[0], idx.dims[1..].iter().product::<usize>());
    if n_features == 0 {
        let msg = format!(
            "dimensions {} give zero features per sample",
            dims_text(&idx.dims)
        );
        return Err(Error::data(path, "header", msg));
    }
    let data = idx.data();
    if idx.kind.code == U8 {
        return Ok((
            data.iter().map(|&b| f32::from(b) / 255.0).collect(),
            n,
            n_features,
        ));
    }
    let mut out = Vec::with_capacity(n * n_features);
    for i in 0..n * n_features {
        let v = idx.kind.get(data, i);
        if !(v as f32).is_finite() {
            let pos = format!("byte {}", idx.data_offset + i * idx.kind.size);
            let (s, f) = (i / n_features, i % n_features);
            let msg = format!(
                "sample {s}, feature {f} is {v} (as f32: {}); every feature must be finite",
                v as f32
            );
            return Err(Error::data(path, pos, msg));
        }
        out.push(v as f32);
    }
    Ok((out, n, n_features))
}

/// Reads an IDX label file (one dimension, u8 or i32 elements) as class indices, each at
/// most [`MAX_LABEL`].
pub fn read_labels(path: &Path) -> Result<Vec<u32>> {
    labels(path, parse(path)?)
}

/// Like [`read_labels`], from the bytes of a file (plain or gzip); `path` names it in errors.
pub fn labels_from_bytes(path: &Path, bytes: &[u8]) -> Result<Vec<u32>> {
    labels(path, parse_bytes(path, bytes.to_vec())?)
}

fn labels(path: &Path, idx: Idx) -> Result<Vec<u32>> {
    if idx.dims.len() != 1 {
        let (d, shape) = (idx.dims.len(), dims_text(&idx.dims));
        let msg = format!(
            "a label file must have 1 dimension but this one has {d} ({shape}); is this an image file?"
        );
        return Err(Error::data(path, "header, byte 3", msg));
    }
    let data = idx.data();
    match idx.kind.code {
        U8 => Ok(data.iter().map(|&b| u32::from(b)).collect()),
        I32 => (0..idx.dims[0])
            .map(|i| {
                let v = idx.kind.get(data, i);
                let pos = || format!("byte {}", idx.data_offset + 4 * i);
                if v < 0.0 {
                    let msg = format!(
                        "the label of sample {i} is {v}; labels must be non-negative class indices"
                    );
                    return Err(Error::data(path, pos(), msg));
                }
                if v > f64::from(MAX_LABEL) {
                    return Err(Error::data(path, pos(), too_large_label(i, v)));
                }
                Ok(v as u32)
            })
            .collect(),
        _ => {
            let msg = format!(
                "labels must be stored as u8 or i32, but this file holds {}",
                idx.kind.name
            );
            Err(Error::data(path, "header, byte 2", msg))
        }
    }
}

/// The message for a label above [`MAX_LABEL`] at sample `i`.
fn too_large_label(i: usize, v: f64) -> String {
    format!(
        "the label of sample {i} is {v}, above {MAX_LABEL}, the largest class index wgmlp accepts; labels must be class indices 0, 1, 2, ..."
    )
}

/// Encodes an IDX header and data, optionally gzip-compressed, and writes it atomically.
fn write_idx(path: &Path, code: u8, dims: &[usize], n: usize, data: &[u8], gz: bool) -> Result<()> {
    let product = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let ndims = u8::try_from(dims.len()).unwrap_or(0);
    if ndims == 0 || product != Some(n) || dims.iter().any(|&d| u32::try_from(d).is_err()) {
        let expected = "1 to 255 dimensions, each below 2^32, whose product is the element count";
        let got = format!("dims [{}] for {n} elements", dims_text(dims));
        return Err(Error::shape("IDX write", expected, got));
    }
    let mut bytes = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    bytes.extend_from_slice(&[0, 0, code, ndims]);
    for &d in dims {
        bytes.extend_from_slice(&(d as u32).to_be_bytes());
    }
    bytes.extend_from_slice(data);
    if gz {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let compressed = enc.write_all(&bytes).and_then(|()| enc.finish());
        bytes = compressed.map_err(|e| Error::io(path, "compress", e))?;
    }
    write_atomic(path, &bytes)
}

/// Writes u8 images with the given dimensions (e.g. `[n, 28, 28]`) as an IDX file.
pub fn write_images_u8(path: &Path, dims: &[usize], data: &[u8], gzip: bool) -> Result<()> {
    write_idx(path, U8, dims, data.len(), data, gzip)
}

/// Writes f32 images with the given dimensions (e.g. `[n, k]`) as an IDX file.
pub fn write_images_f32(path: &Path, dims: &[usize], data: &[f32], gzip: bool) -> Result<()> {
    let bytes: Vec<u8> = data.iter().flat_map(|x| x.to_be_bytes()).collect();
    write_idx(path, F32, dims, data.len(), &bytes, gzip)
}

/// Writes u8 labels as a one-dimensional IDX file.
pub fn write_labels(path: &Path, labels: &[u8], gzip: bool) -> Result<()> {
    write_idx(path, U8, &[labels.len()], labels.len(), labels, gzip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::{TestDir, assert_err};

    #[test]
    fn u8_images_round_trip_plain_and_gzip() {
        let dir = TestDir::new("idx-u8");
        let data: Vec<u8> = (0..3 * 4 * 5).map(|i| (i * 4) as u8).collect();
        for gz in [false, true] {
            let p = dir.join(if gz { "a.gz" } else { "a" });
            write_images_u8(&p, &[3, 4, 5], &data, gz).unwrap();
            assert_eq!(std::fs::read(&p).unwrap()[0] == 0x1f, gz);
            let expect: Vec<f32> = data.iter().map(|&b| b as f32 / 255.0).collect();
            assert_eq!(read_images(&p).unwrap(), (expect, 3, 20));
        }
    }

    #[test]
    fn f32_images_round_trip_plain_and_gzip() {
        let dir = TestDir::new("idx-f32");
        let data = vec![1.5f32, -2.25, 0.0, 1e-7, 3e30, -0.5];
        for gz in [false, true] {
            let p = dir.join(if gz { "f.gz" } else { "f" });
            write_images_f32(&p, &[2, 3], &data, gz).unwrap();
            assert_eq!(read_images(&p).unwrap(), (data.clone(), 2, 3));
        }
    }

    #[test]
    fn labels_round_trip_plain_and_gzip_and_i32_labels_read() {
        let dir = TestDir::new("idx-labels");
        for gz in [false, true] {
            let p = dir.join(if gz { "l.gz" } else { "l" });
            write_labels(&p, &[0, 9, 3, 3, 1], gz).unwrap();
            assert_eq!(read_labels(&p).unwrap(), vec![0, 9, 3, 3, 1]);
        }
        let p = dir.join("i32");
        let mut b = vec![0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 7];
        b.extend_from_slice(&300i32.to_be_bytes());
        std::fs::write(&p, &b).unwrap();
        assert_eq!(read_labels(&p).unwrap(), vec![7, 300]);
        b[12..16].copy_from_slice(&(-1i32).to_be_bytes());
        std::fs::write(&p, &b).unwrap();
        assert_err(read_labels(&p), &["i32", "byte 12", "-1"]);
    }

    #[test]
    fn i32_labels_above_the_class_limit_name_the_sample() {
        let mut b = vec![0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 7];
        b.extend_from_slice(&4_000_000i32.to_be_bytes());
        let parts = ["l.idx", "byte 12", "sample 1", "above 65535"];
        assert_err(labels_from_bytes(Path::new("l.idx"), &b), &parts);
    }

    #[test]
    fn a_gzip_header_claiming_billions_of_rows_allocates_nothing_first() {
        // 4,000,000,000 × 784 u8 images declared, 16 bytes of data present: a typed error
        // about the memory (or the truncation), never an attempt to allocate 3 TB.
        let mut b = vec![0, 0, 0x08, 3];
        for d in [4_000_000_000u32, 28, 28] {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(&[1; 16]);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&b).unwrap();
        let gz = enc.finish().unwrap();
        let e = images_from_bytes(Path::new("huge.gz"), &gz)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("huge.gz: header") && e.contains("memory available"),
            "{e}"
        );
        let e = images_from_bytes(Path::new("huge"), &b)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("huge: byte 32") && e.contains("truncated"),
            "{e}"
        );
    }

    /// Found by fuzzing: zero samples of 2 × 3 × 2^32−1… elements made the per-sample size
    /// overflow (a panic) instead of an error.
    #[test]
    fn zero_samples_with_an_overflowing_sample_size_is_an_error() {
        let mut b = vec![0, 0, 0x08, 4];
        for d in [0u32, u32::MAX, u32::MAX, u32::MAX] {
            b.extend_from_slice(&d.to_be_bytes());
        }
        let parts = ["z.idx", "header", "too large"];
        assert_err(images_from_bytes(Path::new("z.idx"), &b), &parts);
        assert_err(labels_from_bytes(Path::new("z.idx"), &b), &parts);
    }

    #[test]
    fn bad_magic_is_reported_as_not_idx() {
        let dir = TestDir::new("idx-magic");
        let p = dir.join("bad-magic.bin");
        std::fs::write(&p, b"PK\x03\x04 hello world").unwrap();
        assert_err(
            read_images(&p),
            &["bad-magic.bin", "byte 0", "not an IDX file"],
        );
        std::fs::write(&p, b"\0").unwrap();
        assert_err(read_labels(&p), &["bad-magic.bin", "header", "too short"]);
    }

    #[test]
    fn unknown_type_code_is_reported() {
        let dir = TestDir::new("idx-type");
        let p = dir.join("type.idx");
        std::fs::write(&p, [0, 0, 0x07, 1, 0, 0, 0, 1, 5]).unwrap();
        assert_err(read_images(&p), &["type.idx", "byte 2", "0x07"]);
    }

    #[test]
    fn zero_dimensions_is_reported() {
        let dir = TestDir::new("idx-zero-dims");
        let p = dir.join("zero.idx");
        std::fs::write(&p, [0, 0, 0x08, 0]).unwrap();
        assert_err(read_images(&p), &["zero.idx", "byte 3", "zero dimensions"]);
    }

    #[test]
    fn label_file_with_wrong_dimension_count_is_reported() {
        let dir = TestDir::new("idx-label-dims");
        let p = dir.join("labels-2d");
        write_images_u8(&p, &[2, 2], &[1, 2, 3, 4], false).unwrap();
        assert_err(read_labels(&p), &["labels-2d", "header", "has 2 (2×2)"]);
        write_images_f32(&p, &[2], &[1.0, 2.0], false).unwrap();
        assert_err(read_labels(&p), &["labels-2d", "byte 2", "f32"]);
    }

    #[test]
    fn truncated_data_reports_expected_and_present_bytes() {
        let dir = TestDir::new("idx-trunc");
        let p = dir.join("trunc-images");
        write_images_u8(&p, &[2, 3], &[1; 6], false).unwrap();
        let b = std::fs::read(&p).unwrap();
        std::fs::write(&p, &b[..b.len() - 2]).unwrap();
        let parts = [
            "trunc-images",
            "byte 16",
            "truncated",
            "6 data bytes, 4 present",
        ];
        assert_err(read_images(&p), &parts);
        std::fs::write(&p, [0, 0, 8, 2, 0, 0]).unwrap();
        assert_err(
            read_images(&p),
            &["trunc-images", "header", "truncated header"],
        );
    }

    #[test]
    fn trailing_data_is_reported() {
        let dir = TestDir::new("idx-trail");
        let p = dir.join("trail-labels.gz");
        let b = [0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3, 4, 5];
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&b).unwrap();
        std::fs::write(&p, enc.finish().unwrap()).unwrap();
        let parts = [
            "trail-labels.gz",
            "byte 11",
            "trailing",
            "3 data bytes, 5 present",
        ];
        assert_err(read_labels(&p), &parts);
        std::fs::write(&p, &b[..11]).unwrap();
        assert_eq!(read_labels(&p).unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn corrupt_gzip_is_reported() {
        let dir = TestDir::new("idx-gz");
        let p = dir.join("broken.gz");
        let mut b = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
        b.extend_from_slice(b"this is not a deflate stream at all \xff\xfe\xfd");
        std::fs::write(&p, &b).unwrap();
        assert_err(
            read_images(&p),
            &["broken.gz", "gzip stream", "corrupt gzip"],
        );
        // A valid stream cut short is corrupt too.
        write_images_u8(&p, &[4, 4], &[7; 16], true).unwrap();
        let b = std::fs::read(&p).unwrap();
        std::fs::write(&p, &b[..b.len() - 6]).unwrap();
        assert_err(
            read_images(&p),
            &["broken.gz", "gzip stream", "corrupt gzip"],
        );
    }

    #[test]
    fn non_finite_float_data_is_reported_with_byte_offset() {
        let dir = TestDir::new("idx-nan");
        let p = dir.join("nan.idx");
        write_images_f32(&p, &[2, 2], &[0.0, 1.0, f32::NAN, 2.0], false).unwrap();
        assert_err(
            read_images(&p),
            &["nan.idx", "byte 20", "sample 1, feature 0"],
        );
        let mut b = vec![0, 0, 0x0E, 2, 0, 0, 0, 1, 0, 0, 0, 1];
        b.extend_from_slice(&1e300f64.to_be_bytes());
        std::fs::write(&p, &b).unwrap();
        assert_err(read_images(&p), &["nan.idx", "byte 12", "finite"]);
    }

    #[test]
    fn writers_reject_mismatched_dims() {
        let dir = TestDir::new("idx-wdims");
        assert!(write_images_u8(&dir.join("x"), &[2, 2], &[0; 3], false).is_err());
        assert!(write_images_u8(&dir.join("x"), &[], &[], false).is_err());
        assert!(!dir.join("x").exists());
    }
}
