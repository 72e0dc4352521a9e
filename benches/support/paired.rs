//! Paired measurements, shared by the in-process benchmarks (`benches/bench.rs`) and the
//! whole-process ones (`xtask/src/fleet_bench.rs`, which includes this file by path): two sides
//! measured in the same interleaved rounds, each reported as its median and range, and a
//! target judged on the per-round ratios, so that the machine's noise shows instead of hiding.
//! Each includer uses part of it.
#![allow(dead_code)]

/// (median, min, max) of `v` (not empty).
pub fn spread(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = s.len();
    let med = if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 };
    (med, s[0], s[n - 1])
}

/// "median [min..max] unit".
pub fn side(v: &[f64], digits: usize, unit: &str) -> String {
    let (med, lo, hi) = spread(v);
    format!("{med:.digits$} [{lo:.digits$}..{hi:.digits$}] {unit}").trim_end().to_string()
}

/// Two sides measured in the same rounds: `ours[r]` and `reference[r]` are round r's figures.
pub struct Pair {
    pub sides: [Vec<f64>; 2],
    pub ratios: Vec<f64>,
}

impl Pair {
    pub fn new(ours: Vec<f64>, reference: Vec<f64>) -> Pair {
        let ratios = ours.iter().zip(&reference).map(|(o, r)| o / r).collect();
        Pair { sides: [ours, reference], ratios }
    }
    /// "median [min..max]" of one side (0 ours, 1 the reference).
    pub fn side(&self, i: usize, digits: usize, unit: &str) -> String {
        side(&self.sides[i], digits, unit)
    }
    /// "xM [lo..hi]": the ratio of the medians, and the range of the per-round ratios.
    pub fn ratio(&self) -> String {
        let (_, lo, hi) = spread(&self.ratios);
        format!("x{:.2} [{lo:.2}..{hi:.2}]", spread(&self.sides[0]).0 / spread(&self.sides[1]).0)
    }
    /// Target "ratio ≥ t": met when every round's ratio is, missed when none is.
    pub fn verdict_at_least(&self, t: f64) -> &'static str {
        let (_, lo, hi) = spread(&self.ratios);
        verdict(lo >= t, hi < t)
    }
    /// Target "ratio ≤ t": met when every round's ratio is, missed when none is.
    pub fn verdict_at_most(&self, t: f64) -> &'static str {
        let (_, lo, hi) = spread(&self.ratios);
        verdict(hi <= t, lo > t)
    }
}

/// The verdict of a target: `met` when every round meets it, `missed` when none does,
/// `unresolved` when the rounds straddle it.
pub fn verdict(all_within: bool, none_within: bool) -> &'static str {
    if all_within {
        "met"
    } else if none_within {
        "missed"
    } else {
        "unresolved"
    }
}
