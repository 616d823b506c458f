//! MD5 of many messages at once. Kinesis hashes every partition key with MD5, and the KPL
//! aggregate format ends in the MD5 of its message: in a producer these are most of the CPU per
//! record, and MD5 cannot go faster on one message (each step waits for the one before).
//! Independent messages can share the steps, one per 32-bit lane of a vector register: eight
//! with AVX2, sixteen with AVX-512; where neither is present, each message is hashed alone.
//!
//! ```
//! use kinesis_proto::md5_lanes::digest_all;
//! let digests = digest_all(&[b"pk-1".as_slice(), b"pk-2".as_slice()]);
//! assert_eq!(digests.len(), 2);
//! ```

use md5::{Digest, Md5};

/// The MD5 of each message, in order.
pub fn digest_all<M: AsRef<[u8]>>(messages: &[M]) -> Vec<[u8; 16]> {
    let mut out = vec![[0u8; 16]; messages.len()];
    #[cfg(target_arch = "x86_64")]
    if messages.len() > LANES && std::arch::is_x86_feature_detected!("avx512f") {
        for (m, o) in messages.chunks(WIDE_LANES).zip(out.chunks_mut(WIDE_LANES)) {
            // SAFETY: AVX-512F is present (checked just above).
            unsafe { avx512::digest_lanes(m, o) };
        }
        return out;
    }
    #[cfg(target_arch = "x86_64")]
    if messages.len() > 1 && std::arch::is_x86_feature_detected!("avx2") {
        for (m, o) in messages.chunks(LANES).zip(out.chunks_mut(LANES)) {
            // SAFETY: AVX2 is present (checked just above).
            unsafe { avx2::digest_lanes(m, o) };
        }
        return out;
    }
    for (m, o) in messages.iter().zip(out.iter_mut()) {
        o.copy_from_slice(&Md5::digest(m.as_ref()));
    }
    out
}

/// Messages hashed side by side with AVX2.
const LANES: usize = 8;

/// Messages hashed side by side with AVX-512 (which also rotates and selects in one
/// instruction each).
const WIDE_LANES: usize = 16;

/// The initial state (RFC 1321, 3.3).
const INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// The additive constants, `floor(abs(sin(i + 1)) * 2^32)` (RFC 1321, 3.4).
const K: [u32; 64] = [
    0xd76a_a478,
    0xe8c7_b756,
    0x2420_70db,
    0xc1bd_ceee,
    0xf57c_0faf,
    0x4787_c62a,
    0xa830_4613,
    0xfd46_9501,
    0x6980_98d8,
    0x8b44_f7af,
    0xffff_5bb1,
    0x895c_d7be,
    0x6b90_1122,
    0xfd98_7193,
    0xa679_438e,
    0x49b4_0821,
    0xf61e_2562,
    0xc040_b340,
    0x265e_5a51,
    0xe9b6_c7aa,
    0xd62f_105d,
    0x0244_1453,
    0xd8a1_e681,
    0xe7d3_fbc8,
    0x21e1_cde6,
    0xc337_07d6,
    0xf4d5_0d87,
    0x455a_14ed,
    0xa9e3_e905,
    0xfcef_a3f8,
    0x676f_02d9,
    0x8d2a_4c8a,
    0xfffa_3942,
    0x8771_f681,
    0x6d9d_6122,
    0xfde5_380c,
    0xa4be_ea44,
    0x4bde_cfa9,
    0xf6bb_4b60,
    0xbebf_bc70,
    0x289b_7ec6,
    0xeaa1_27fa,
    0xd4ef_3085,
    0x0488_1d05,
    0xd9d4_d039,
    0xe6db_99e5,
    0x1fa2_7cf8,
    0xc4ac_5665,
    0xf429_2244,
    0x432a_ff97,
    0xab94_23a7,
    0xfc93_a039,
    0x655b_59c3,
    0x8f0c_cc92,
    0xffef_f47d,
    0x8584_5dd1,
    0x6fa8_7e4f,
    0xfe2c_e6e0,
    0xa301_4314,
    0x4e08_11a1,
    0xf753_7e82,
    0xbd3a_f235,
    0x2ad7_d2bb,
    0xeb86_d391,
];

/// Left-rotation of each step (RFC 1321, 3.4).
const S: [u32; 64] = [
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9,
    14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15,
    21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
];

/// Which message word each step adds (RFC 1321, 3.4).
const G: [usize; 64] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 1, 6, 11, 0, 5, 10, 15, 4, 9, 14, 3, 8,
    13, 2, 7, 12, 5, 8, 11, 14, 1, 4, 7, 10, 13, 0, 3, 6, 9, 12, 15, 2, 0, 7, 14, 5, 12, 3, 10, 1,
    8, 15, 6, 13, 4, 11, 2, 9,
];

/// One lane's message as 64-byte blocks: whole blocks straight from the message, then one or
/// two padded blocks (the rest, 0x80, zeros, the length in bits).
struct Blocks<'a> {
    message: &'a [u8],
    whole: usize,
    tail: [u8; 128],
    count: usize,
}

impl<'a> Blocks<'a> {
    fn new(message: &'a [u8]) -> Self {
        let whole = message.len() / 64;
        let rest = &message[whole * 64..];
        let mut tail = [0u8; 128];
        tail[..rest.len()].copy_from_slice(rest);
        tail[rest.len()] = 0x80;
        let tail_blocks = if rest.len() < 56 { 1 } else { 2 };
        let bits = (message.len() as u64).wrapping_mul(8);
        tail[tail_blocks * 64 - 8..tail_blocks * 64].copy_from_slice(&bits.to_le_bytes());
        Blocks {
            message,
            whole,
            tail,
            count: whole + tail_blocks,
        }
    }

    /// Block `i`; `None` past the last one.
    fn block(&self, i: usize) -> Option<&[u8]> {
        if i < self.whole {
            Some(&self.message[i * 64..i * 64 + 64])
        } else if i < self.count {
            let t = i - self.whole;
            Some(&self.tail[t * 64..t * 64 + 64])
        } else {
            None
        }
    }
}

/// Up to `N` messages laid out to be hashed side by side, one per lane.
struct Lanes<'a, const N: usize> {
    lanes: [Option<Blocks<'a>>; N],
    /// Blocks of the longest message.
    blocks: usize,
    /// The current block's message words, word-major: `words[j][lane]`.
    words: [[u32; N]; 16],
}

impl<'a, const N: usize> Lanes<'a, N> {
    fn new<M: AsRef<[u8]>>(messages: &'a [M]) -> Self {
        debug_assert!(messages.len() <= N);
        let lanes: [Option<Blocks>; N] =
            std::array::from_fn(|i| messages.get(i).map(|m| Blocks::new(m.as_ref())));
        let blocks = lanes.iter().flatten().map(|l| l.count).max().unwrap_or(0);
        Lanes {
            lanes,
            blocks,
            words: [[0u32; N]; 16],
        }
    }

    /// Loads block `index` of every lane into `words`; gives the lanes that have one, a bit
    /// per lane (the others keep stale words, and their state must not take the block).
    fn load_block(&mut self, index: usize) -> u32 {
        let mut active = 0;
        for (lane, blocks) in self.lanes.iter().enumerate() {
            if let Some(block) = blocks.as_ref().and_then(|l| l.block(index)) {
                active |= 1 << lane;
                for (j, w) in block.chunks_exact(4).enumerate() {
                    self.words[j][lane] = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                }
            }
        }
        active
    }
}

/// Writes each lane's digest, its four state words little-endian, into `out[lane]`.
fn write_digests<const N: usize>(state: [[u32; N]; 4], out: &mut [[u8; 16]]) {
    for (lane, o) in out.iter_mut().enumerate() {
        for (k, s) in state.iter().enumerate() {
            o[k * 4..k * 4 + 4].copy_from_slice(&s[lane].to_le_bytes());
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{G, INIT, K, LANES, Lanes, S, write_digests};
    use std::arch::x86_64::*;

    /// Hashes up to eight messages, one per lane; lanes past `messages.len()` idle.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn digest_lanes<M: AsRef<[u8]>>(messages: &[M], out: &mut [[u8; 16]]) {
        debug_assert!(messages.len() == out.len());
        let mut lanes = Lanes::<LANES>::new(messages);
        let mut state = INIT.map(|v| _mm256_set1_epi32(v as i32));
        for block_index in 0..lanes.blocks {
            let active = lanes.load_block(block_index);
            let m = lanes.words.map(|w| load(&w));
            let mask = load(&std::array::from_fn(|lane| {
                if active >> lane & 1 == 1 { u32::MAX } else { 0 }
            }));
            let [mut a, mut b, mut c, mut d] = state;
            // One step: `a` becomes `b + rotl(f + a + K[i] + M[G[i]], S[i])`, then the names
            // rotate (a, b, c, d) <- (d, a', b, c). Closures would not inherit AVX2, so a macro.
            macro_rules! step {
                ($i:expr, $f:expr) => {{
                    let sum = _mm256_add_epi32(
                        _mm256_add_epi32($f, a),
                        _mm256_add_epi32(_mm256_set1_epi32(K[$i] as i32), m[G[$i]]),
                    );
                    let rotated = _mm256_or_si256(
                        _mm256_sllv_epi32(sum, _mm256_set1_epi32(S[$i] as i32)),
                        _mm256_srlv_epi32(sum, _mm256_set1_epi32(32 - S[$i] as i32)),
                    );
                    let next = _mm256_add_epi32(b, rotated);
                    a = d;
                    d = c;
                    c = b;
                    b = next;
                }};
            }
            // Unrolled, so that every index and shift is a constant.
            macro_rules! round {
                ($f:ident; $($i:literal)*) => {{ $( step!($i, $f!()); )* }};
            }
            let ones = _mm256_set1_epi32(-1);
            // (b & c) | (!b & d)
            macro_rules! f {
                () => {
                    _mm256_or_si256(_mm256_and_si256(b, c), _mm256_andnot_si256(b, d))
                };
            }
            // (b & d) | (c & !d)
            macro_rules! g {
                () => {
                    _mm256_or_si256(_mm256_and_si256(d, b), _mm256_andnot_si256(d, c))
                };
            }
            // b ^ c ^ d
            macro_rules! h {
                () => {
                    _mm256_xor_si256(_mm256_xor_si256(b, c), d)
                };
            }
            // c ^ (b | !d)
            macro_rules! i {
                () => {
                    _mm256_xor_si256(c, _mm256_or_si256(b, _mm256_xor_si256(d, ones)))
                };
            }
            round!(f; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
            round!(g; 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31);
            round!(h; 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47);
            round!(i; 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63);
            // Lanes whose message has ended keep their state.
            for (s, v) in state.iter_mut().zip([a, b, c, d]) {
                *s = _mm256_add_epi32(*s, _mm256_and_si256(v, mask));
            }
        }
        write_digests(
            state.map(|v| {
                let mut lanes = [0u32; LANES];
                // SAFETY: `lanes` is 32 bytes, the size of one register; unaligned stores are fine.
                unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), v) };
                lanes
            }),
            out,
        );
    }

    #[target_feature(enable = "avx2")]
    fn load(v: &[u32; LANES]) -> __m256i {
        // SAFETY: `v` is 32 bytes, the size of one register; unaligned loads are fine.
        unsafe { _mm256_loadu_si256(v.as_ptr().cast()) }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{G, INIT, K, Lanes, S, WIDE_LANES, write_digests};
    use std::arch::x86_64::*;

    /// Hashes up to sixteen messages, one per lane; lanes past `messages.len()` idle.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn digest_lanes<M: AsRef<[u8]>>(messages: &[M], out: &mut [[u8; 16]]) {
        debug_assert!(messages.len() == out.len());
        let mut lanes = Lanes::<WIDE_LANES>::new(messages);
        let mut state = INIT.map(|v| _mm512_set1_epi32(v as i32));
        for block_index in 0..lanes.blocks {
            let active = lanes.load_block(block_index) as __mmask16;
            let m = lanes.words.map(|w| load(&w));
            let [mut a, mut b, mut c, mut d] = state;
            // As in the AVX2 version; the round functions are one `vpternlogd` each, with the
            // truth table of b, c and d as its immediate.
            macro_rules! step {
                ($i:literal, $table:literal) => {{
                    let f = _mm512_ternarylogic_epi32::<$table>(b, c, d);
                    let sum = _mm512_add_epi32(
                        _mm512_add_epi32(f, a),
                        _mm512_add_epi32(_mm512_set1_epi32(K[$i] as i32), m[G[$i]]),
                    );
                    let next = _mm512_add_epi32(b, _mm512_rol_epi32::<{ S[$i] as i32 }>(sum));
                    a = d;
                    d = c;
                    c = b;
                    b = next;
                }};
            }
            macro_rules! round {
                ($table:literal; $($i:literal)*) => {{ $( step!($i, $table); )* }};
            }
            // b ? c : d
            round!(0xCA; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
            // d ? b : c
            round!(0xE4; 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31);
            // b ^ c ^ d
            round!(0x96; 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47);
            // c ^ (b | !d)
            round!(0x39; 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63);
            // Lanes whose message has ended keep their state.
            for (s, v) in state.iter_mut().zip([a, b, c, d]) {
                *s = _mm512_mask_add_epi32(*s, active, *s, v);
            }
        }
        write_digests(
            state.map(|v| {
                let mut lanes = [0u32; WIDE_LANES];
                // SAFETY: `lanes` is 64 bytes, the size of one register; unaligned stores are fine.
                unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().cast(), v) };
                lanes
            }),
            out,
        );
    }

    #[target_feature(enable = "avx512f")]
    fn load(v: &[u32; WIDE_LANES]) -> __m512i {
        // SAFETY: `v` is 64 bytes, the size of one register; unaligned loads are fine.
        unsafe { _mm512_loadu_si512(v.as_ptr().cast()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn one_by_one(messages: &[Vec<u8>]) -> Vec<[u8; 16]> {
        messages.iter().map(|m| Md5::digest(m).into()).collect()
    }

    /// Every way this machine can hash, each over all of `messages`: `digest_all` picks one
    /// by CPU and count, so each lane width is also driven directly.
    fn every_engine(messages: &[&[u8]]) -> Vec<(&'static str, Vec<[u8; 16]>)> {
        let mut out = vec![("digest_all", digest_all(messages))];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                let mut d = vec![[0u8; 16]; messages.len()];
                for (m, o) in messages.chunks(LANES).zip(d.chunks_mut(LANES)) {
                    // SAFETY: AVX2 is present.
                    unsafe { avx2::digest_lanes(m, o) };
                }
                out.push(("avx2", d));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                let mut d = vec![[0u8; 16]; messages.len()];
                for (m, o) in messages.chunks(WIDE_LANES).zip(d.chunks_mut(WIDE_LANES)) {
                    // SAFETY: AVX-512F is present.
                    unsafe { avx512::digest_lanes(m, o) };
                }
                out.push(("avx512", d));
            }
        }
        out
    }

    #[test]
    fn rfc_1321_test_suite() {
        let suite: [(&str, &str); 7] = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        let messages: Vec<&[u8]> = suite.iter().map(|(m, _)| m.as_bytes()).collect();
        let want: Vec<&str> = suite.iter().map(|(_, d)| *d).collect();
        for (engine, digests) in every_engine(&messages) {
            let hex: Vec<String> = digests
                .iter()
                .map(|d| d.iter().map(|b| format!("{b:02x}")).collect())
                .collect();
            assert_eq!(hex, want, "{engine}");
        }
    }

    #[test]
    fn every_padding_boundary_in_every_lane() {
        // Lengths around the one- and two-block tails, in lanes of mixed lengths.
        let messages: Vec<Vec<u8>> = (0..200u32)
            .map(|n| (0..n).map(|i| (i * 7 + n) as u8).collect())
            .collect();
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        for (engine, digests) in every_engine(&refs) {
            assert_eq!(digests, one_by_one(&messages), "{engine}");
        }
    }

    proptest! {
        #[test]
        fn matches_md5_one_message_at_a_time(
            messages in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..40)
        ) {
            let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            for (engine, digests) in every_engine(&refs) {
                prop_assert_eq!(digests, one_by_one(&messages), "{}", engine);
            }
        }
    }
}
