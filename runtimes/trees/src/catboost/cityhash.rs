//! The hash CatBoost gives a categorical value: CityHash64 (version 1.0.2, as CatBoost's `util`
//! has it) of the value's text, truncated to 32 bits (`CalcCatFeatureHash`).
//!
//! A request's categorical values are integers, whose decimal text is at most 20 bytes, so only
//! CityHash64's paths for up to 32 bytes are here.

const K0: u64 = 0xc3a5_c85c_97cb_3127;
const K1: u64 = 0xb492_b66f_be98_f273;
const K2: u64 = 0x9ae1_6a3b_2f90_404f;
const K3: u64 = 0xc949_d7c7_509e_6557;

fn fetch64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

fn fetch32(bytes: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes(
        bytes[at..at + 4].try_into().expect("4 bytes"),
    ))
}

fn shift_mix(value: u64) -> u64 {
    value ^ (value >> 47)
}

/// `Hash128to64` of the 128-bit value whose low half is `low`.
fn hash_len16(low: u64, high: u64) -> u64 {
    const MUL: u64 = 0x9ddf_ea08_eb38_2d69;
    let mut a = (low ^ high).wrapping_mul(MUL);
    a ^= a >> 47;
    let mut b = (high ^ a).wrapping_mul(MUL);
    b ^= b >> 47;
    b.wrapping_mul(MUL)
}

fn hash_len0to16(s: &[u8]) -> u64 {
    let len = s.len();
    if len > 8 {
        let a = fetch64(s, 0);
        let b = fetch64(s, len - 8);
        return hash_len16(a, b.wrapping_add(len as u64).rotate_right(len as u32)) ^ b;
    }
    if len >= 4 {
        let a = fetch32(s, 0);
        return hash_len16((len as u64).wrapping_add(a << 3), fetch32(s, len - 4));
    }
    if len > 0 {
        let (a, b, c) = (s[0], s[len >> 1], s[len - 1]);
        let y = u32::from(a).wrapping_add(u32::from(b) << 8);
        let z = (len as u32).wrapping_add(u32::from(c) << 2);
        return shift_mix(u64::from(y).wrapping_mul(K2) ^ u64::from(z).wrapping_mul(K3))
            .wrapping_mul(K2);
    }
    K2
}

fn hash_len17to32(s: &[u8]) -> u64 {
    let len = s.len();
    let a = fetch64(s, 0).wrapping_mul(K1);
    let b = fetch64(s, 8);
    let c = fetch64(s, len - 8).wrapping_mul(K2);
    let d = fetch64(s, len - 16).wrapping_mul(K0);
    hash_len16(
        a.wrapping_sub(b)
            .rotate_right(43)
            .wrapping_add(c.rotate_right(30))
            .wrapping_add(d),
        a.wrapping_add((b ^ K3).rotate_right(20))
            .wrapping_sub(c)
            .wrapping_add(len as u64),
    )
}

/// CatBoost's hash of a categorical value written as `text` (at most 32 bytes).
pub fn category_hash(text: &str) -> u32 {
    let bytes = text.as_bytes();
    assert!(bytes.len() <= 32, "a category's text is at most 32 bytes");
    let hash = if bytes.len() <= 16 {
        hash_len0to16(bytes)
    } else {
        hash_len17to32(bytes)
    };
    hash as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_catboost_s() {
        // The hashes a CatBoost 1.2.10 model file holds for its one-hot categories.
        assert_eq!(category_hash("1") as i32, 1121341681);
        assert_eq!(category_hash("0") as i32, -1438285038);
    }
}
