//! Durations as settings write them: `90s`, `15m`, `2h`, `1d`. Shared by the settings and
//! the rate limits' `N/period`.

/// Parses `90s`, `15m`, `2h`, `1d` (or a bare number of seconds) into seconds.
pub fn seconds(s: &str) -> Result<i64, String> {
    let bad = || format!("'{s}' is not a duration like 90s, 15m, 2h or 1d");
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let scale = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(bad()),
    };
    n.checked_mul(scale).ok_or_else(bad)
}
