//! Facts about the machine a measurement ran on, and openssl's own figures, shared by the
//! benchmarks that print them side by side.

/// The 1, 5 and 15 minute load averages: how shared the machine was during the run.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// `rsa 2048 bits 0.000600s 0.000017s 1666.0 58823.5` → 1666.0 signs/s.
pub fn parse_openssl_speed(out: &str) -> Option<f64> {
    let line = out.lines().find(|l| l.trim_start().starts_with("rsa 2048 bits") || l.contains("rsa  2048 bits"))?;
    let nums: Vec<f64> = line.split_whitespace().filter_map(|t| t.parse().ok()).collect();
    // [2048, sign_time, verify_time, sign/s, verify/s] (times may carry an 's' suffix and not parse)
    nums.iter().rev().nth(1).copied()
}
