//! Reading one value of a YAML mapping as what its key expects (text, a
//! list of text, a number in bounds, a duration, a choice), or the message
//! that says what was expected and what was found, in words.

use std::time::Duration;

use serde_yaml::Value;

use super::{type_name, BEYOND_RANGE};
use crate::model::problem::nearest;

/// Text.
pub fn text(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!("must be text, found {}", type_name(other))),
    }
}

/// Text that is not blank.
pub fn non_empty_text(value: &Value) -> Result<String, String> {
    let s = text(value)?;
    if s.trim().is_empty() {
        return Err("is empty: give it a value, or remove the key".into());
    }
    Ok(s)
}

/// Text a view shows on a line of its own: not empty, and without a
/// newline or another control character (a terminal would act on it)
/// but a tab; the newline a YAML block (`title: >`) ends with is dropped.
pub fn one_line_text(value: &Value) -> Result<String, String> {
    let s = non_empty_text(value)?.trim_end().to_owned();
    if s.contains(|c| c != '\t' && crate::agent::terminal::acts_on_a_terminal(c)) {
        return Err("must be one line, without newlines or other control characters".into());
    }
    Ok(s)
}

/// A list of non-empty texts (nothing counts as an empty list).
pub fn text_list(value: &Value) -> Result<Vec<String>, String> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Sequence(items) => items,
        other => {
            return Err(format!(
                "must be a list such as `[a, b]`, found {}",
                type_name(other)
            ))
        }
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
            Value::String(_) => Err("list items must not be empty".into()),
            other => Err(format!(
                "list items must be text, found {}",
                type_name(other)
            )),
        })
        .collect()
}

/// How a number found where a whole one of at least `min` goes is shown:
/// a whole one written as a decimal or with an exponent (`2.0`, `1e3`,
/// which YAML reads as decimals) says how to write it, where that would
/// do.
pub fn shown_number(n: &serde_yaml::Number, min: f64) -> String {
    match n.as_f64() {
        Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 && f >= min => {
            format!("{n}, a decimal: write {}", f as i64)
        }
        _ => n.to_string(),
    }
}

/// A whole number of at least `min`.
pub fn whole(value: &Value, min: u64) -> Result<u64, String> {
    let shown = || match value {
        Value::Number(n) => shown_number(n, min as f64),
        other => type_name(other).into_owned(),
    };
    match value.as_u64() {
        Some(n) if n >= min => Ok(n),
        _ if min == 0 => Err(format!(
            "must be a whole number, 0 or more, found {}",
            shown()
        )),
        _ => Err(format!(
            "must be a whole number, {min} or more, found {}",
            shown()
        )),
    }
}

/// A number above 0.
pub fn positive(value: &Value) -> Result<f64, String> {
    match value.as_f64() {
        Some(n) if n > 0.0 && n.is_finite() => Ok(n),
        Some(n) => Err(format!("must be a number above 0, found {n}")),
        // Beyond a float, YAML reads `1e400` as text.
        None => match value
            .as_str()
            .filter(|t| t.parse::<f64>().is_ok_and(f64::is_infinite))
        {
            Some(number) => Err(format!("{number} {BEYOND_RANGE}")),
            None => Err(format!(
                "must be a number above 0, found {}",
                type_name(value)
            )),
        },
    }
}

/// CPUs: above 0, and no more than Linux runs (a cgroup's quota is
/// their number times its period, which a larger one overflows).
pub fn cpus(value: &Value) -> Result<f64, String> {
    at_most(positive(value)?, 65_536.0)
}

/// GiB of memory: above 0, and short of what 64 bits of bytes hold.
pub fn gib(value: &Value) -> Result<f64, String> {
    let gib = at_most(positive(value)?, (1u64 << 33) as f64)?;
    // Less than a MiB: no program starts within it (the cgroup's limit,
    // rounded down, would be 0).
    match gib >= 0.001 {
        true => Ok(gib),
        false => Err(format!(
            "must be at least 0.001 (about 1 MiB), found {gib:e}"
        )),
    }
}

fn at_most(n: f64, most: f64) -> Result<f64, String> {
    match n <= most {
        true => Ok(n),
        // 1e300 as written, not 301 digits.
        false => Err(format!("must be at most {most}, found {n:e}")),
    }
}

/// Seconds as a number, or text such as `90s`, `30m`, `8h`, `1.5h`, `1h 30m`.
pub fn duration(value: &Value) -> Result<Duration, String> {
    if let Value::String(s) = value {
        if in_months(s) {
            return Err(format!(
                "`{s}`: `M` is months: write minutes as `m` (`30m`), or months in full (`2months`)"
            ));
        }
    }
    let parsed = match value {
        Value::Number(n) => n.as_f64().and_then(|s| Duration::try_from_secs_f64(s).ok()),
        // Seconds in quotes (`"3600"`) are seconds still.
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(seconds) => Duration::try_from_secs_f64(seconds).ok(),
            Err(_) => {
                decimal_with_unit(s.trim()).or_else(|| humantime::parse_duration(s.trim()).ok())
            }
        },
        _ => None,
    };
    let shown = match value {
        Value::String(s) => format!("`{s}`"),
        Value::Number(n) => n.to_string(),
        other => type_name(other).into_owned(),
    };
    parsed
        .filter(|d| !d.is_zero() && *d <= LONGEST)
        .ok_or_else(|| {
            format!("must be a positive duration of at most 100 years: seconds as a number, or `90s`, `30m`, `1.5h`; found {shown}")
        })
}

/// A decimal number of seconds, minutes, hours or days (`1.5h`, `0.5d`),
/// which humantime takes in whole numbers only.
fn decimal_with_unit(text: &str) -> Option<Duration> {
    let unit = match text.chars().last()? {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86_400.0,
        _ => return None,
    };
    let number = text[..text.len() - 1].trim_end();
    if !number.contains('.') {
        return None;
    }
    let n: f64 = number.parse().ok()?;
    Duration::try_from_secs_f64(n * unit).ok()
}

/// Whether `text` has a number of `M` (`1M`, `1 M`): months to humantime,
/// and a minute to whoever wrote it, most likely.
fn in_months(text: &str) -> bool {
    text.split_whitespace().any(|word| {
        word.strip_suffix('M')
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
    })
}

/// The longest duration a setting takes: a hundred years of 365.25 days
/// (humantime's, so that `100 years` is taken). Any longer is a mistake (a
/// timeout meant to be none is left out), and would overflow the clocks
/// it is added to.
pub const LONGEST: Duration = Duration::from_secs(100 * 31_557_600);

/// `true` or `false`.
pub fn boolean(value: &Value) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| format!("must be true or false, found {}", type_name(value)))
}

/// One of `choices`; a text near one (`Slurm`) is suggested it, as a
/// misspelt key is.
pub fn one_of<'c>(value: &Value, choices: &[&'c str]) -> Result<&'c str, String> {
    let listed = || {
        choices
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    match value {
        Value::String(s) => choices
            .iter()
            .find(|c| **c == s.as_str())
            .copied()
            .ok_or_else(|| {
                let near = nearest(s, choices.iter().copied())
                    .map(|near| format!(": did you mean `{near}`?"))
                    .unwrap_or_default();
                format!("must be {}, found `{s}`{near}", listed())
            }),
        other => Err(format!("must be {}, found {}", listed(), type_name(other))),
    }
}
