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
            Order::Little => self.sums = sum_words(self.sums, data, u32::from_le_bytes),
            Order::Big => self.sums = sum_words(self.sums, data, u32::from_be_bytes),
        }
    }
}

/// The inner loop, generic over the word decoder so each byte order gets its own tight loop.
#[inline(always)]
fn sum_words(s: [u64; 4], data: &[u8], word: fn([u8; 4]) -> u32) -> [u64; 4] {
    let [mut a, mut b, mut c, mut d] = s;
    for w in data.chunks_exact(4) {
        a = a.wrapping_add(word([w[0], w[1], w[2], w[3]]) as u64);
        b = b.wrapping_add(a);
        c = c.wrapping_add(b);
        d = d.wrapping_add(c);
    }
    [a, b, c, d]
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
        fn pieces_equal_whole(data in proptest::collection::vec(proptest::num::u8::ANY, 0..600), cuts in proptest::collection::vec(0usize..600, 0..8)) {
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
