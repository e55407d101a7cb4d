//! A git blob of N spaces written straight into a repository as a loose object, at the cost of
//! hashing it and not of compressing it: the zlib stream is built by hand, so a multi-GB
//! `clients.toml` becomes a few MB on disk in seconds, as an attacker's push would leave it.

use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

/// Writes a blob of `size` spaces into `repo`'s object database and returns its id. The id is
/// the real SHA-1 (computed by `sha1sum`, coreutils, because no SHA-1 in this crate's tree runs
/// optimised in test builds), so `git fsck` accepts the object.
pub fn write_spaces_blob(repo: &Path, size: u64) -> git2::Oid {
    let header = format!("blob {size}\0");
    let id = sha1_of_spaces(header.as_bytes(), size);
    let hex = id.to_string();
    let dir = repo.join("objects").join(&hex[..2]);
    std::fs::create_dir_all(&dir).unwrap();
    let file = std::fs::File::create(dir.join(&hex[2..])).unwrap();
    let mut out = BufWriter::with_capacity(1 << 20, file);
    write_zlib_spaces(header.as_bytes(), size, &mut out);
    out.flush().unwrap();
    id
}

fn sha1_of_spaces(prefix: &[u8], size: u64) -> git2::Oid {
    let mut child = Command::new("sha1sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha1sum (coreutils) hashes the test blob");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(prefix).unwrap();
    let chunk = vec![b' '; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        stdin.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    drop(stdin);
    let mut text = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(child.wait().unwrap().success());
    git2::Oid::from_str(&text[..40]).unwrap()
}

/// Deflate bits, least significant first, as RFC 1951 packs them.
struct Bits<'w, W: Write> {
    out: &'w mut W,
    buffer: u64,
    count: u32,
}

impl<W: Write> Bits<'_, W> {
    fn put(&mut self, value: u64, bits: u32) {
        self.buffer |= value << self.count;
        self.count += bits;
        while self.count >= 8 {
            self.out.write_all(&[self.buffer as u8]).unwrap();
            self.buffer >>= 8;
            self.count -= 8;
        }
    }

    /// A Huffman code: its bits go most significant first.
    fn code(&mut self, code: u64, bits: u32) {
        let reversed = code.reverse_bits() >> (64 - bits);
        self.put(reversed, bits);
    }

    /// A literal byte below 144: eight bits, 0x30 + byte, in the fixed code.
    fn literal(&mut self, byte: u8) {
        assert!(byte < 144);
        self.code(0x30 + u64::from(byte), 8);
    }

    /// 258 more spaces: length code 285 (8 bits) and distance code 0 (5 bits), no extra bits.
    fn back_reference(&mut self) {
        self.code(0xC5, 8);
        self.code(0, 5);
    }

    fn finish(mut self) {
        if self.count > 0 {
            self.put(0, 8 - self.count);
        }
    }
}

/// zlib(`prefix` + `size` spaces) in one fixed-Huffman block: every 258 spaces after the first
/// are one back-reference (length code 285, distance code 0: 13 bits), so 1 GiB takes 6.6 MB.
fn write_zlib_spaces(prefix: &[u8], size: u64, out: &mut impl Write) {
    out.write_all(&[0x78, 0x01]).unwrap();
    let mut bits = Bits {
        out: &mut *out,
        buffer: 0,
        count: 0,
    };
    bits.put(1, 1); // the final block
    bits.put(1, 2); // fixed Huffman codes
    for &byte in prefix {
        bits.literal(byte);
    }
    if size > 0 {
        bits.literal(b' ');
        let rest = size - 1;
        let mut references = rest / 258;
        // Eight back-references are 104 bits, 13 whole bytes: once the writer is on a byte
        // boundary the stream repeats, and is written in bulk rather than bit by bit.
        while references > 0 && bits.count != 0 {
            bits.back_reference();
            references -= 1;
        }
        if bits.count == 0 {
            let mut unit = Vec::new();
            let mut eight = Bits {
                out: &mut unit,
                buffer: 0,
                count: 0,
            };
            for _ in 0..8 {
                eight.back_reference();
            }
            let chunk = unit.repeat(1 << 16);
            let groups = references / 8;
            for _ in 0..groups >> 16 {
                bits.out.write_all(&chunk).unwrap();
            }
            let tail = (groups & 0xFFFF) as usize * unit.len();
            bits.out.write_all(&chunk[..tail]).unwrap();
            references -= groups * 8;
        }
        for _ in 0..references {
            bits.back_reference();
        }
        for _ in 0..rest % 258 {
            bits.literal(b' ');
        }
    }
    bits.code(0, 7); // end of block
    bits.finish();
    let (a, b) = adler32_of_spaces(prefix, size);
    out.write_all(&((b << 16) | a).to_be_bytes()).unwrap();
}

/// Adler-32 of `prefix` + `size` spaces in closed form (RFC 1950), without a pass over the data.
fn adler32_of_spaces(prefix: &[u8], size: u64) -> (u32, u32) {
    const MOD: u128 = 65_521;
    let (mut a, mut b) = (1u128, 0u128);
    for &byte in prefix {
        a = (a + u128::from(byte)) % MOD;
        b = (b + a) % MOD;
    }
    let n = u128::from(size);
    let space = u128::from(b' ');
    // After n more bytes of value c: a' = a + n·c, b' = b + n·a + c·n(n+1)/2.
    let b = (b + n % MOD * a + space * (n * (n + 1) / 2 % MOD)) % MOD;
    let a = (a + n % MOD * space) % MOD;
    (a as u32, b as u32)
}
