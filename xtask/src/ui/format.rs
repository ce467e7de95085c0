//! How durations, amounts of memory and command lines are written for a
//! person: one way each, used by every view.

use std::time::Duration;

/// `1.2s`, `3m 04s`, `2h 05m`.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if secs < 3600 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h {:02}m", secs / 3600, secs % 3600 / 60)
    }
}

/// `duration` of a number of seconds (negative counts as zero).
pub fn seconds(secs: f64) -> String {
    duration(Duration::from_secs_f64(secs.max(0.0)))
}

/// `8 GiB`, `100 MiB`.
pub fn gib(amount: f64) -> String {
    if amount >= 1.0 {
        format!("{} GiB", (amount * 100.0).round() / 100.0)
    } else {
        format!("{} MiB", (amount * 1024.0).round())
    }
}
