//! Tests of `state::status`.

use super::*;

/// The file system's clock to the nanosecond where it agrees with
/// this machine's to the second; this machine's where it does not (a
/// network file system's server with its own clock).
#[test]
fn a_start_is_precise_only_where_both_clocks_agree() {
    let mut status = Status::new("p/a", State::Running);
    status.started_at = Some("2026-01-01T00:00:00Z".to_owned());
    let whole = parse_timestamp("2026-01-01T00:00:00Z").unwrap();
    let ns = |at: SystemTime| {
        at.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    };
    let close = whole + Duration::from_millis(300);
    status.attempt_since_ns = Some(ns(close) as u64);
    assert_eq!(status.started(), Some(close));
    let skewed = whole + Duration::from_secs(3600);
    status.attempt_since_ns = Some(ns(skewed) as u64);
    assert_eq!(status.started(), Some(whole));
}
