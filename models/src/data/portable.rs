//! The peers' portable data generator (SplitMix64 + Box–Muller), so that benchmark and test
//! data sets are bit-identical to the ones the Pyro/ChiRho/NumPyro reference scripts generate
//! (`shared/peers/peerlib.py`). All arithmetic is in f64.

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
const M1: u64 = 0xBF58_476D_1CE4_E5B9;
const M2: u64 = 0x94D0_49BB_1331_11EB;

/// The first `n` outputs of the SplitMix64 sequence started at `seed`.
pub fn splitmix64(seed: u64, n: usize) -> Vec<u64> {
    (1..=n as u64)
        .map(|k| {
            let mut z = seed.wrapping_add(k.wrapping_mul(GAMMA));
            z = (z ^ (z >> 30)).wrapping_mul(M1);
            z = (z ^ (z >> 27)).wrapping_mul(M2);
            z ^ (z >> 31)
        })
        .collect()
}

/// `n` uniforms on `[0, 1)`: the top 53 bits of each SplitMix64 output.
pub fn uniform01(seed: u64, n: usize) -> Vec<f64> {
    splitmix64(seed, n)
        .into_iter()
        .map(|z| (z >> 11) as f64 * 2f64.powi(-53))
        .collect()
}

/// `n` standard normals by Box–Muller on consecutive pairs of [`uniform01`].
pub fn std_normal(seed: u64, n: usize) -> Vec<f64> {
    let m = n.div_ceil(2);
    let u = uniform01(seed, 2 * m);
    let mut out = Vec::with_capacity(2 * m);
    for pair in u.chunks_exact(2) {
        let r = (-2.0 * (1.0 - pair[0]).ln()).sqrt();
        let a = std::f64::consts::TAU * pair[1];
        out.push(r * a.cos());
        out.push(r * a.sin());
    }
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_peers_test_vectors() {
        assert_eq!(
            splitmix64(0, 3),
            [0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f]
        );
        assert_eq!(
            uniform01(0, 3),
            [
                0.8833108082136426,
                0.43152799704850997,
                0.026433771592597743
            ]
        );
        let expected = [
            -1.8839083333524405,
            0.8645068595575148,
            0.22760793546360525,
            -0.04211268468683916,
        ];
        for (a, b) in std_normal(0, 4).iter().zip(expected) {
            assert!((a - b).abs() < 1e-15, "{a} vs {b}");
        }
        assert_eq!(std_normal(0, 3).len(), 3);
    }
}
