//! The two expositions a scraper may ask for: Prometheus text 0.0.4 (the default, and what
//! `Accept: text/plain` gets) and OpenMetrics 1.0 (when the scraper asks for
//! `application/openmetrics-text`), as the Python client (MLServer's) negotiates them.
//!
//! The registry encodes OpenMetrics; 0.0.4 differs in how it names counters in `# HELP` and
//! `# TYPE` (with their `_total`), in having no `# UNIT` and no `# EOF`, and in calling an
//! unknown type `untyped`.

/// An exposition format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics only when it is named (and not
    /// refused with `q=0`).
    pub(crate) fn negotiate(accept: Option<&str>) -> Format {
        let asks = accept.is_some_and(|accept| {
            accept.split(',').any(|entry| {
                let mut parts = entry.split(';').map(str::trim);
                let media = parts.next().unwrap_or_default();
                let refused = parts.any(|parameter| {
                    parameter
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f64>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
            })
        });
        if asks {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    /// The `Content-Type` of the format.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Ends the registry's OpenMetrics `text` in `format`.
pub(super) fn finish(mut text: String, format: Format) -> String {
    match format {
        Format::OpenMetrics => {
            text.push_str("# EOF\n");
            text
        }
        Format::Text => to_text_format(&text),
    }
}

/// OpenMetrics text (without `# EOF`) as Prometheus text 0.0.4.
fn to_text_format(openmetrics: &str) -> String {
    let mut text = String::with_capacity(openmetrics.len() + 256);
    let lines: Vec<&str> = openmetrics.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            // The family's type follows its help.
            let counter = lines
                .get(index + 1)
                .and_then(|next| next.strip_prefix("# TYPE "))
                .is_some_and(|next| next == format!("{name} counter"));
            let suffix = if counter { "_total" } else { "" };
            text.push_str(&format!(
                "# HELP {name}{suffix} {}\n",
                unescape_quotes(help)
            ));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let line = match kind {
                "counter" => format!("# TYPE {name}_total counter\n"),
                "unknown" => format!("# TYPE {name} untyped\n"),
                "info" => format!("# TYPE {name}_info gauge\n"),
                kind => format!("# TYPE {name} {kind}\n"),
            };
            text.push_str(&line);
        } else if line.starts_with("# UNIT ") || *line == "# EOF" {
            continue;
        } else {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// OpenMetrics escapes `"` in help texts; 0.0.4 does not.
fn unescape_quotes(help: &str) -> String {
    help.replace("\\\"", "\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_only_when_asked_for() {
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Text);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0, text/plain")),
            Format::Text
        );
    }

    #[test]
    fn counters_are_named_with_total_in_the_text_format() {
        let openmetrics = "# HELP a_requests Requests.\n# TYPE a_requests counter\na_requests_total{x=\"1\"} 2\n# HELP b Other.\n# TYPE b gauge\nb 1\n# HELP c C.\n# TYPE c unknown\n";
        assert_eq!(
            finish(openmetrics.to_string(), Format::Text),
            "# HELP a_requests_total Requests.\n# TYPE a_requests_total counter\na_requests_total{x=\"1\"} 2\n# HELP b Other.\n# TYPE b gauge\nb 1\n# HELP c C.\n# TYPE c untyped\n"
        );
        assert!(finish(openmetrics.to_string(), Format::OpenMetrics).ends_with("# EOF\n"));
    }
}
