//! Durations and the policy keys of an event: `throttle`, `debounce`, `rate_limit`, `batch`,
//! `retry`.

use std::time::Duration;

use eventbus_runtime::{Batch, RateLimit, Retry};

use crate::diagnostic::Diagnostic;
use crate::yaml::{Node, Value};

const DURATION_HELP: &str =
    "write a positive duration with a unit: `500ms`, `2s`, `1m`, `1h` or combined like `1m30s`";

/// Parses `500ms`, `2s`, `1m30s`, `1h`, `1d`.
///
/// ```
/// use std::time::Duration;
/// use eventbus_codegen::policy::parse_duration;
/// assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert!(parse_duration("10").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("`{text}` is not a duration"));
        }
        let amount: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{text}` is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = rest[..unit_len].trim();
        rest = &rest[unit_len..];
        let millis_per = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("`{text}` has no unit")),
            other => return Err(format!("unknown unit `{other}` in `{text}`")),
        };
        let millis = amount
            .checked_mul(millis_per)
            .ok_or_else(|| format!("`{text}` is too large"))?;
        total = total
            .checked_add(Duration::from_millis(millis))
            .ok_or_else(|| format!("`{text}` is too large"))?;
    }
    if total.is_zero() {
        return Err(format!("`{text}` is zero"));
    }
    if u64::try_from(total.as_millis()).is_err() {
        return Err(format!("`{text}` is too large"));
    }
    Ok(total)
}

/// A duration-valued node.
pub(crate) fn duration(node: &Node, key: &str) -> Result<Duration, Diagnostic> {
    let text = match &node.value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => {
            return Err(
                Diagnostic::error(node.span, format!("`{key}` needs a unit"))
                    .label(format!("`{i}` what?"))
                    .help(format!("write `{i}ms` or `{i}s`")),
            );
        }
        other => {
            return Err(Diagnostic::error(
                node.span,
                format!("`{key}` must be a duration, found {}", other.kind()),
            )
            .help(DURATION_HELP));
        }
    };
    parse_duration(&text).map_err(|msg| {
        Diagnostic::error(node.span, format!("bad duration for `{key}`: {msg}"))
            .label("not a duration")
            .help(DURATION_HELP)
    })
}

fn positive_u32(node: &Node, what: &str) -> Result<u32, Diagnostic> {
    match &node.value {
        Value::Int(i) if *i >= 1 && *i <= i128::from(u32::MAX) => Ok(*i as u32),
        other => Err(Diagnostic::error(
            node.span,
            format!(
                "`{what}` must be a whole number from 1 to {}, found {}",
                u32::MAX,
                describe(other)
            ),
        )),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Int(i) => format!("`{i}`"),
        Value::Str(s) => format!("\"{s}\""),
        other => other.kind().to_owned(),
    }
}

/// Sub-keys of a policy mapping, unknown ones reported.
fn sub_keys<'a>(
    node: &'a Node,
    policy: &str,
    allowed: &[&str],
    errors: &mut Vec<Diagnostic>,
) -> Vec<(&'a str, &'a Node)> {
    let Value::Map(entries) = &node.value else {
        return Vec::new();
    };
    let mut out: Vec<(&str, &Node)> = Vec::new();
    let mut seen: Vec<&crate::yaml::Key> = Vec::new();
    for (k, v) in entries {
        if let Some(first) = seen.iter().find(|f| f.name == k.name) {
            errors.push(crate::manifest::duplicate_in(
                k,
                first,
                "key",
                &format!("in `{policy}`"),
            ));
        } else if allowed.contains(&k.name.as_str()) {
            seen.push(k);
            out.push((k.name.as_str(), v));
        } else {
            let help = match crate::diagnostic::did_you_mean(&k.name, allowed.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("expected one of: {}", allowed.join(", ")),
            };
            errors.push(
                Diagnostic::error(k.span, format!("unknown key `{}` in `{policy}`", k.name))
                    .help(help),
            );
        }
    }
    out
}

/// `rate_limit: 100/s`, `10/1m`, or `{ count: 100, per: 1s, burst: 20 }`.
pub(crate) fn rate_limit(node: &Node) -> Result<RateLimit, Vec<Diagnostic>> {
    let limit = rate_limit_shape(node)?;
    // The runtime's token bucket refills one token every `per / count`; below a nanosecond it
    // cannot be built, so refuse it here rather than at `EventBus::new()`.
    if limit.per < std::time::Duration::from_nanos(u64::from(limit.count)) {
        return Err(vec![
            Diagnostic::error(
                node.span,
                format!(
                    "rate limit of {} per {:?} is finer than one token per nanosecond",
                    limit.count, limit.per
                ),
            )
            .label("too many events for the period")
            .help("use a longer period or a smaller count"),
        ]);
    }
    Ok(limit)
}

fn rate_limit_shape(node: &Node) -> Result<RateLimit, Vec<Diagnostic>> {
    const HELP: &str = "write `100/s`, `10/1m`, or `{ count: 100, per: 1s, burst: 200 }`";
    match &node.value {
        Value::Str(s) => {
            let bad = || {
                vec![
                    Diagnostic::error(node.span, format!("bad rate limit `{s}`"))
                        .label("expected <count>/<period>")
                        .help(HELP),
                ]
            };
            let (count, per) = s.split_once('/').ok_or_else(bad)?;
            let count: u32 = count.trim().parse().map_err(|_| bad())?;
            let per = per.trim();
            // `100/s` means per one second.
            let per = if per.starts_with(|c: char| c.is_ascii_digit()) {
                parse_duration(per)
            } else {
                parse_duration(&format!("1{per}"))
            }
            .map_err(|_| bad())?;
            if count == 0 {
                return Err(bad());
            }
            Ok(RateLimit {
                count,
                per,
                burst: count,
            })
        }
        Value::Map(_) => {
            let mut errors = Vec::new();
            let (mut count, mut per, mut burst) = (None, None, None);
            for (k, v) in sub_keys(node, "rate_limit", &["count", "per", "burst"], &mut errors) {
                let r = match k {
                    "count" => positive_u32(v, "count").map(|c| count = Some(c)),
                    "per" => duration(v, "per").map(|d| per = Some(d)),
                    _ => positive_u32(v, "burst").map(|b| burst = Some(b)),
                };
                errors.extend(r.err());
            }
            if errors.is_empty() && (count.is_none() || per.is_none()) {
                errors.push(
                    Diagnostic::error(node.span, "`rate_limit` needs `count` and `per`").help(HELP),
                );
            }
            match (count, per) {
                (Some(count), Some(per)) if errors.is_empty() => Ok(RateLimit {
                    count,
                    per,
                    burst: burst.unwrap_or(count),
                }),
                _ => Err(errors),
            }
        }
        other => Err(vec![
            Diagnostic::error(
                node.span,
                format!(
                    "`rate_limit` must be a string or a mapping, found {}",
                    other.kind()
                ),
            )
            .help(HELP),
        ]),
    }
}

/// `batch: { max_size: 100, max_wait: 50ms }`.
pub(crate) fn batch(node: &Node) -> Result<Batch, Vec<Diagnostic>> {
    const HELP: &str = "write `batch: { max_size: 100, max_wait: 50ms }`";
    if !matches!(node.value, Value::Map(_)) {
        return Err(vec![
            Diagnostic::error(
                node.span,
                format!("`batch` must be a mapping, found {}", node.value.kind()),
            )
            .help(HELP),
        ]);
    }
    let mut errors = Vec::new();
    let (mut max_size, mut max_wait) = (None, None);
    for (k, v) in sub_keys(node, "batch", &["max_size", "max_wait"], &mut errors) {
        let r = match k {
            "max_size" => positive_u32(v, "max_size").map(|n| max_size = Some(n)),
            _ => duration(v, "max_wait").map(|d| max_wait = Some(d)),
        };
        errors.extend(r.err());
    }
    match (max_size, max_wait) {
        (Some(max_size), Some(max_wait)) if errors.is_empty() => Ok(Batch { max_size, max_wait }),
        _ => {
            if errors.is_empty() {
                errors.push(
                    Diagnostic::error(node.span, "`batch` needs `max_size` and `max_wait`")
                        .help(HELP),
                );
            }
            Err(errors)
        }
    }
}

/// `retry: 3` or `retry: { attempts: 5, backoff: 100ms, max_backoff: 10s }`.
pub(crate) fn retry(node: &Node) -> Result<Retry, Vec<Diagnostic>> {
    const HELP: &str =
        "write `retry: 3` or `retry: { attempts: 5, backoff: 100ms, max_backoff: 10s }`";
    let mut retry = Retry {
        attempts: 0,
        backoff: Retry::DEFAULT_BACKOFF,
        max_backoff: Retry::DEFAULT_MAX_BACKOFF,
    };
    match &node.value {
        Value::Int(_) => {
            retry.attempts = positive_u32(node, "retry").map_err(|d| vec![d.help(HELP)])?;
            Ok(retry)
        }
        Value::Map(_) => {
            let mut errors = Vec::new();
            for (k, v) in sub_keys(
                node,
                "retry",
                &["attempts", "backoff", "max_backoff"],
                &mut errors,
            ) {
                let r = match k {
                    "attempts" => positive_u32(v, "attempts").map(|n| retry.attempts = n),
                    "backoff" => duration(v, "backoff").map(|d| retry.backoff = d),
                    _ => duration(v, "max_backoff").map(|d| retry.max_backoff = d),
                };
                errors.extend(r.err());
            }
            if errors.is_empty() && retry.attempts == 0 {
                errors.push(Diagnostic::error(node.span, "`retry` needs `attempts`").help(HELP));
            }
            if errors.is_empty() && retry.backoff > retry.max_backoff {
                errors.push(
                    Diagnostic::error(node.span, "`backoff` is longer than `max_backoff`")
                        .help("the first delay must not exceed the cap"),
                );
            }
            if errors.is_empty() {
                Ok(retry)
            } else {
                Err(errors)
            }
        }
        other => Err(vec![
            Diagnostic::error(
                node.span,
                format!(
                    "`retry` must be a number of attempts or a mapping, found {}",
                    other.kind()
                ),
            )
            .help(HELP),
        ]),
    }
}
