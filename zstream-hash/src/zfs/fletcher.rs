//! Fletcher-4, the checksum of ZFS send streams: four 64-bit sums over 32-bit words in the sender's byte order.
//! Sections of the stream reach it in arbitrary pieces (pipe reads), so a partial word is carried over.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Little,
    Big,
}

impl Order {
    pub fn u32(self, b: &[u8]) -> u32 {
        let a = b[..4].try_into().expect("4 bytes");
        match self {
            Order::Little => u32::from_le_bytes(a),
            Order::Big => u32::from_be_bytes(a),
        }
    }
    pub fn u64(self, b: &[u8]) -> u64 {
        let a = b[..8].try_into().expect("8 bytes");
        match self {
            Order::Little => u64::from_le_bytes(a),
            Order::Big => u64::from_be_bytes(a),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Fletcher4 {
    order: Order,
    sums: [u64; 4],
    partial: [u8; 4],
    partial_len: usize,
}

impl Fletcher4 {
    pub fn new(order: Order) -> Self {
        Fletcher4 {
            order,
            sums: [0; 4],
            partial: [0; 4],
            partial_len: 0,
        }
    }

    /// The sums so far. Only meaningful at a word boundary, which every section of a send stream ends on.
    pub fn sums(&self) -> [u64; 4] {
        self.sums
    }

    pub fn update(&mut self, mut data: &[u8]) {
        if self.partial_len > 0 {
            let take = (4 - self.partial_len).min(data.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&data[..take]);
            self.partial_len += take;
            data = &data[take..];
            if self.partial_len < 4 {
                return;
            }
            let word = self.partial;
            self.words(&word);
            self.partial_len = 0;
        }
        let whole = data.len() & !3;
        self.words(&data[..whole]);
        let rest = &data[whole..];
        self.partial[..rest.len()].copy_from_slice(rest);
        self.partial_len = rest.len();
    }

    #[inline]
    fn words(&mut self, data: &[u8]) {
        match self.order {
            Order::Little => self.sums = sum_words::<false>(self.sums, data),
            Order::Big => self.sums = sum_words::<true>(self.sums, data),
        }
    }
}

/// Sums whole words onto the running state `s`.
///
/// The textbook loop is one long dependency chain (each sum waits for the one before), about 1.5 GB/s. Instead
/// the words are dealt round-robin to four lanes that run independently (the compiler turns them into vector
/// adds), and the lanes are combined exactly, as OpenZFS's SIMD implementations do. Words left over (fewer than
/// four) go through the textbook loop.
#[inline(always)]
fn word<const BIG: bool>(w: &[u8]) -> u64 {
    let w = [w[0], w[1], w[2], w[3]];
    (if BIG {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    }) as u64
}

#[inline(always)]
fn sum_words<const BIG: bool>(s: [u64; 4], data: &[u8]) -> [u64; 4] {
    let lanes_len = data.len() & !15;
    let s = if lanes_len > 0 {
        advance(
            s,
            lanes_dispatch::<BIG>(&data[..lanes_len]),
            (lanes_len / 4) as u64,
        )
    } else {
        s
    };
    let [mut a, mut b, mut c, mut d] = s;
    for w in data[lanes_len..].chunks_exact(4) {
        a = a.wrapping_add(word::<BIG>(w));
        b = b.wrapping_add(a);
        c = c.wrapping_add(b);
        d = d.wrapping_add(c);
    }
    [a, b, c, d]
}

/// The four lanes are the four u64 elements of one AVX2 register, so on x86-64 with AVX2 (checked at run time)
/// little-endian streams, the only kind a Linux or FreeBSD x86/arm sender makes, take the intrinsics below.
fn lanes_dispatch<const BIG: bool>(data: &[u8]) -> [u64; 4] {
    #[cfg(target_arch = "x86_64")]
    if !BIG && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { lanes_avx2_le(data) };
    }
    lanes::<BIG>(data)
}

/// `lanes` for little-endian words: per 16 bytes one widening load and four vector adds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn lanes_avx2_le(data: &[u8]) -> [u64; 4] {
    use std::arch::x86_64::*;
    let (mut a, mut b, mut c, mut d) = (
        _mm256_setzero_si256(),
        _mm256_setzero_si256(),
        _mm256_setzero_si256(),
        _mm256_setzero_si256(),
    );
    for chunk in data.chunks_exact(16) {
        // SAFETY: chunk is 16 readable bytes; loadu has no alignment requirement.
        let w = _mm256_cvtepu32_epi64(unsafe { _mm_loadu_si128(chunk.as_ptr().cast()) });
        a = _mm256_add_epi64(a, w);
        b = _mm256_add_epi64(b, a);
        c = _mm256_add_epi64(c, b);
        d = _mm256_add_epi64(d, c);
    }
    let out = |v: __m256i| -> [u64; 4] { std::mem::transmute(v) };
    combine(out(a), out(b), out(c), out(d))
}

/// Fletcher-4 of `data` (a multiple of 16 bytes) from zero, through four lanes.
#[inline(always)]
fn lanes<const BIG: bool>(data: &[u8]) -> [u64; 4] {
    let (mut a, mut b, mut c, mut d) = ([0u64; 4], [0u64; 4], [0u64; 4], [0u64; 4]);
    for chunk in data.chunks_exact(16) {
        for l in 0..4 {
            let w = &chunk[4 * l..4 * l + 4];
            a[l] = a[l].wrapping_add(word::<BIG>(w));
            b[l] = b[l].wrapping_add(a[l]);
            c[l] = c[l].wrapping_add(b[l]);
            d[l] = d[l].wrapping_add(c[l]);
        }
    }
    combine(a, b, c, d)
}

/// The Fletcher-4 of the whole sequence from the sums of its four lanes.
#[inline(always)]
fn combine(a: [u64; 4], b: [u64; 4], c: [u64; 4], d: [u64; 4]) -> [u64; 4] {
    // Lane l holds words 4k+l. A word n places from the end of the whole sequence is (n+3-l)/4 places from the
    // end of its lane; expanding the binomial weights of the textbook sums in those terms gives these factors.
    let m = |x: u64, k: i64| x.wrapping_mul(k as u64);
    let sum = |f: &dyn Fn(usize) -> u64| (0..4).fold(0u64, |acc, l| acc.wrapping_add(f(l)));
    let aa = sum(&|l| a[l]);
    let bb = sum(&|l| m(b[l], 4).wrapping_sub(m(a[l], l as i64)));
    let cc = sum(&|l| {
        let l = l as i64;
        m(c[l as usize], 16)
            .wrapping_sub(m(b[l as usize], 6 + 4 * l))
            .wrapping_add(m(a[l as usize], (l * l - l) / 2))
    });
    let dd = sum(&|l| {
        let li = l as i64;
        // Tet(4n - l) = 64 Tet(n) - (48 + 16l) T(n) + (4 + 4l + 2l^2) n - C(l, 3), with T and Tet the triangular
        // and tetrahedral numbers (checked exactly for every l in 0..4 by the property test below).
        m(d[l], 64)
            .wrapping_sub(m(c[l], 48 + 16 * li))
            .wrapping_add(m(b[l], 4 + 4 * li + 2 * li * li))
            .wrapping_sub(m(a[l], li * (li - 1) * (li - 2) / 6))
    });
    [aa, bb, cc, dd]
}

/// The state after `n` more words whose sums from zero are `x`, starting from state `s`: each earlier sum is
/// carried forward through the n steps (b gains n*a, c gains n*b + T(n)*a, and so on).
fn advance(s: [u64; 4], x: [u64; 4], n: u64) -> [u64; 4] {
    let n128 = n as u128;
    let t = (n128 * (n128 + 1) / 2) as u64;
    let tet = (n128 * (n128 + 1) * (n128 + 2) / 6) as u64;
    let [a, b, c, d] = s;
    [
        a.wrapping_add(x[0]),
        b.wrapping_add(n.wrapping_mul(a)).wrapping_add(x[1]),
        c.wrapping_add(n.wrapping_mul(b))
            .wrapping_add(t.wrapping_mul(a))
            .wrapping_add(x[2]),
        d.wrapping_add(n.wrapping_mul(c))
            .wrapping_add(t.wrapping_mul(b))
            .wrapping_add(tet.wrapping_mul(a))
            .wrapping_add(x[3]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, word by word, to test the carried-over pieces against.
    fn reference(data: &[u8], order: Order) -> [u64; 4] {
        let mut s = [0u64; 4];
        for w in data.chunks_exact(4) {
            s[0] = s[0].wrapping_add(order.u32(w) as u64);
            s[1] = s[1].wrapping_add(s[0]);
            s[2] = s[2].wrapping_add(s[1]);
            s[3] = s[3].wrapping_add(s[2]);
        }
        s
    }

    #[test]
    fn known_value() {
        // Words 1, 2 (little-endian): a = 3, b = 1 + 3 = 4, c = 1 + 4 = 5, d = 1 + 5 = 6.
        let mut f = Fletcher4::new(Order::Little);
        f.update(&[1, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(f.sums(), [3, 4, 5, 6]);
        let mut f = Fletcher4::new(Order::Big);
        f.update(&[0, 0, 0, 1, 0, 0, 0, 2]);
        assert_eq!(f.sums(), [3, 4, 5, 6]);
    }

    proptest::proptest! {
        #[test]
        fn pieces_equal_whole(data in proptest::collection::vec(proptest::num::u8::ANY, 0..2000), cuts in proptest::collection::vec(0usize..2000, 0..8)) {
            let data = &data[..data.len() & !3];
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort();
            for order in [Order::Little, Order::Big] {
                let mut f = Fletcher4::new(order);
                let mut at = 0;
                for c in cuts.iter().copied().chain([data.len()]) {
                    f.update(&data[at..c]);
                    at = c;
                }
                proptest::prop_assert_eq!(f.sums(), reference(data, order));
            }
        }
    }
}
