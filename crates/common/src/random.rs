//! Random strings of Vault's base62 alphabet: token ids, accessors, lease id suffixes and the
//! username template's `random` helper all draw from here.

use rand::Rng as _;

/// `[0-9A-Za-z]`, in Vault's order.
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `n` random characters of `[0-9A-Za-z]`, from the thread-local CSPRNG (tokens are secrets).
pub fn base62(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n).map(|_| char::from(BASE62[rng.random_range(0..BASE62.len())])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base62_strings_have_the_length_and_alphabet_asked_for() {
        assert_eq!(base62(0), "");
        let s = base62(4096);
        assert_eq!(s.len(), 4096);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()), "{s}");
        // 4096 draws from 62 symbols: every symbol shows up unless the generator is broken.
        assert!(BASE62.iter().all(|c| s.as_bytes().contains(c)));
        assert_ne!(base62(24), base62(24));
    }
}
