//! Durations and the policy keys of an event: `throttle`, `debounce`, `rate_limit`, `batch`,
//! `retry`, `circuit_breaker`, `concurrency`, `queue`.

use std::time::Duration;

use eventbus_runtime::{Batch, CircuitBreakerConfig, RateLimit, Retry};

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

/// `concurrency: 4` or `queue: 100`: a whole number ≥ 1 for the event's async handlers.
pub(crate) fn async_limit(node: &Node, key: &str) -> Result<u32, Diagnostic> {
    positive_u32(node, key).map_err(|d| {
        d.label(match key {
            "concurrency" => "calls of one async handler at once",
            _ => "events waiting for one async handler",
        })
        .help(match key {
            "concurrency" => "write a number of calls, like `concurrency: 4`",
            _ => "write a number of events, like `queue: 100`",
        })
    })
}

/// A failure rate: `50%` (a percentage, 0 < x ≤ 100) or `0.5` (a fraction, 0 < x ≤ 1). Returns
/// the percentage.
fn failure_rate(node: &Node) -> Result<f32, Diagnostic> {
    const HELP: &str = "write a percentage like `50%` or a fraction like `0.5`";
    let bad = |found: String| {
        Diagnostic::error(
            node.span,
            format!("`failure_rate` must be above 0% and at most 100%, found {found}"),
        )
        .label("the share of failed calls that opens the breaker")
        .help(HELP)
    };
    let percent = match &node.value {
        Value::Str(s) => {
            let Some(number) = s.trim().strip_suffix('%') else {
                return Err(bad(format!("\"{s}\"")));
            };
            match number.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => n,
                _ => return Err(bad(format!("\"{s}\""))),
            }
        }
        Value::Float(f) if f.is_finite() && *f > 0.0 && *f <= 1.0 => f * 100.0,
        Value::Float(f) => return Err(bad(format!("`{f}`"))),
        // `50` could mean 50% or 5000%; `1` could mean 1% or 100%: say which.
        Value::Int(i) => return Err(bad(format!("`{i}` (a percentage or a fraction?)"))),
        other => return Err(bad(other.kind().to_owned())),
    };
    if percent > 0.0 && percent <= 100.0 {
        Ok(percent as f32)
    } else {
        Err(bad(format!("`{percent}%`")))
    }
}

/// `circuit_breaker: true`, `false`, or `{ failure_rate: 50%, minimum_calls: 10, window: 100,
/// open_for: 60s, half_open_calls: 10 }` (every sub-key optional, defaulting to
/// [`CircuitBreakerConfig::default`]). `Ok(None)` for `false`.
pub(crate) fn circuit_breaker(
    node: &Node,
) -> Result<Option<CircuitBreakerConfig>, Vec<Diagnostic>> {
    const HELP: &str = "write `circuit_breaker: true` for the defaults, or a mapping like \
                        `{ failure_rate: 50%, minimum_calls: 10, window: 100, open_for: 60s, half_open_calls: 10 }`";
    let defaults = CircuitBreakerConfig::default();
    match &node.value {
        Value::Bool(true) => Ok(Some(defaults)),
        Value::Bool(false) => Ok(None),
        Value::Map(_) => {
            let mut errors = Vec::new();
            let mut config = defaults;
            let mut minimum_calls = None;
            for (k, v) in sub_keys(
                node,
                "circuit_breaker",
                &[
                    "failure_rate",
                    "minimum_calls",
                    "window",
                    "open_for",
                    "half_open_calls",
                ],
                &mut errors,
            ) {
                let r = match k {
                    "failure_rate" => {
                        failure_rate(v).map(|rate| config.failure_rate_threshold = rate)
                    }
                    "minimum_calls" => {
                        positive_u32(v, "minimum_calls").map(|n| minimum_calls = Some((n, v)))
                    }
                    "window" => positive_u32(v, "window").map(|n| config.sliding_window = n),
                    "open_for" => duration(v, "open_for").map(|d| config.open_for = d),
                    _ => positive_u32(v, "half_open_calls").map(|n| config.half_open_calls = n),
                };
                errors.extend(r.err());
            }
            match minimum_calls {
                Some((n, v)) if errors.is_empty() && n > config.sliding_window => {
                    errors.push(
                        Diagnostic::error(
                            v.span,
                            format!(
                                "`minimum_calls` ({n}) is more than the `window` ({})",
                                config.sliding_window
                            ),
                        )
                        .label("the breaker could never open")
                        .help("the window keeps only that many calls: lower `minimum_calls` or widen `window`"),
                    );
                }
                Some((n, _)) => config.minimum_calls = n,
                // The default minimum, but never more than a smaller window holds.
                None => config.minimum_calls = defaults.minimum_calls.min(config.sliding_window),
            }
            if errors.is_empty() {
                Ok(Some(config))
            } else {
                Err(errors)
            }
        }
        other => Err(vec![
            Diagnostic::error(
                node.span,
                format!(
                    "`circuit_breaker` must be `true`, `false` or a mapping, found {}",
                    other.kind()
                ),
            )
            .help(HELP),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use eventbus_runtime::CircuitBreakerConfig;

    use crate::Model;
    use crate::model::Policies;

    fn policies(event: &str) -> Policies {
        let source = format!("version: 1\npackage: demo\nevents:\n  e:\n{event}");
        Model::parse("events.yaml", &source).unwrap().events[0].policies
    }

    #[test]
    fn circuit_breaker_forms() {
        let defaults = CircuitBreakerConfig::default();
        assert_eq!(
            policies("    circuit_breaker: true\n").circuit_breaker,
            Some(defaults)
        );
        assert_eq!(
            policies("    circuit_breaker: false\n").circuit_breaker,
            None
        );
        let half = policies("    circuit_breaker: { failure_rate: 0.25, open_for: 1m30s }\n");
        assert_eq!(
            half.circuit_breaker,
            Some(CircuitBreakerConfig {
                failure_rate_threshold: 25.0,
                open_for: std::time::Duration::from_secs(90),
                ..defaults
            })
        );
        // `minimum_calls` defaults to 10, or to a smaller `window`.
        let small = policies("    circuit_breaker: { window: 4, failure_rate: 12.5% }\n");
        let small = small.circuit_breaker.unwrap();
        assert_eq!((small.sliding_window, small.minimum_calls), (4, 4));
        assert_eq!(small.failure_rate_threshold, 12.5);
        let p = policies("    concurrency: 3\n    queue: 7\n");
        assert_eq!((p.concurrency, p.queue), (Some(3), Some(7)));
    }
}
