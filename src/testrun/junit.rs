//! Just enough of PHPUnit's JUnit XML for a one-line summary: the counts on
//! the outermost `<testsuite>` (or on a merged report's `<testsuites>`) and
//! the names of test cases holding a `<failure>` or `<error>`; and the merge
//! of several workers' reports into one (`devenv test --junit`). A tag scanner, not an XML parser: the report
//! is PHPUnit's own, regular output.

use std::ops::AddAssign;

/// What a JUnit report says about a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub tests: u64,
    pub assertions: u64,
    pub failures: u64,
    pub errors: u64,
    pub skipped: u64,
    /// Seconds, as PHPUnit measured them.
    pub time: f64,
    /// `Class::method` of every failed or erroring test, in report order.
    pub failed: Vec<String>,
}

impl Summary {
    pub fn passed(&self) -> bool {
        self.failures == 0 && self.errors == 0
    }
}

/// Workers run side by side: counts add up, time is the slowest worker's.
impl AddAssign for Summary {
    fn add_assign(&mut self, other: Summary) {
        self.tests += other.tests;
        self.assertions += other.assertions;
        self.failures += other.failures;
        self.errors += other.errors;
        self.skipped += other.skipped;
        self.time = self.time.max(other.time);
        self.failed.extend(other.failed);
    }
}

/// Reads a report; `None` when it has no `<testsuite>` at all.
pub fn parse(xml: &str) -> Option<Summary> {
    let mut summary: Option<Summary> = None;
    let mut case: Option<String> = None;
    for tag in tags(xml) {
        match tag.name {
            // A merged report's `<testsuites>` adds its workers' suites up.
            "testsuite" | "testsuites"
                if summary.is_none()
                    && (tag.name == "testsuite" || tag.attr("tests").is_some()) =>
            {
                let num = |k: &str| tag.attr(k).and_then(|v| v.parse().ok()).unwrap_or(0);
                summary = Some(Summary {
                    tests: num("tests"),
                    assertions: num("assertions"),
                    failures: num("failures"),
                    errors: num("errors"),
                    skipped: num("skipped"),
                    time: tag.attr("time").and_then(|v| v.parse().ok()).unwrap_or(0.0),
                    failed: Vec::new(),
                });
            }
            "testcase" if !tag.self_closing => {
                let name = tag.attr("name").unwrap_or_default();
                case = Some(match tag.attr("class") {
                    Some(class) => format!("{class}::{name}"),
                    None => name,
                });
            }
            "/testcase" => case = None,
            "failure" | "error" => {
                if let (Some(s), Some(c)) = (summary.as_mut(), case.take()) {
                    s.failed.push(c);
                }
            }
            _ => {}
        }
    }
    summary
}

struct Tag<'a> {
    /// The element name, with a leading `/` for a closing tag.
    name: &'a str,
    attrs: &'a str,
    self_closing: bool,
}

impl Tag<'_> {
    fn attr(&self, key: &str) -> Option<String> {
        let mut rest = self.attrs;
        while let Some(eq) = rest.find('=') {
            let name = rest[..eq].trim();
            let after = rest[eq + 1..].trim_start();
            let quote = after.chars().next()?;
            if quote != '"' && quote != '\'' {
                return None;
            }
            let end = after[1..].find(quote)? + 1;
            if name == key {
                return Some(unescape(&after[1..end]));
            }
            rest = &after[end + 1..];
        }
        None
    }
}

/// Start and end tags in document order; text, comments and declarations skipped.
fn tags(xml: &str) -> impl Iterator<Item = Tag<'_>> {
    xml.split('<').skip(1).filter_map(|piece| {
        let body = &piece[..piece.find('>')?];
        if body.starts_with('?') || body.starts_with('!') {
            return None;
        }
        let self_closing = body.ends_with('/');
        let body = body.trim_end_matches('/');
        let split = body.find(char::is_whitespace).unwrap_or(body.len());
        Some(Tag {
            name: &body[..split],
            attrs: &body[split..],
            self_closing,
        })
    })
}

/// One report of several workers' (`devenv test --junit`): each worker's
/// suites side by side under one `<testsuites>`, whose attributes add them
/// up. A lone report is kept as PHPUnit wrote it.
pub fn merge(reports: &[&str]) -> String {
    if let [one] = reports {
        return one.to_string();
    }
    let mut total = Summary::default();
    let mut suites = String::new();
    for report in reports {
        if let Some(summary) = parse(report) {
            total += summary;
        }
        suites.push_str(inner(report).trim_matches('\n'));
        suites.push('\n');
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"{}\" assertions=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.6}\">\n{suites}</testsuites>\n",
        total.tests, total.assertions, total.failures, total.errors, total.skipped, total.time
    )
}

/// What a report holds inside its `<testsuites>` (the whole report, less its
/// XML declaration, when it has none).
fn inner(report: &str) -> &str {
    let mut body = report.trim();
    if body.starts_with("<?xml") {
        body = body.find("?>").map_or(body, |end| body[end + 2..].trim());
    }
    let Some(rest) = body.strip_prefix("<testsuites") else {
        return body;
    };
    if rest.trim_start().starts_with("/>") {
        return "";
    }
    match (rest.find('>'), rest.rfind("</testsuites>")) {
        (Some(open), Some(close)) if open < close => &rest[open + 1..close],
        _ => body,
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report as PHPUnit 9.6 writes it: nested suites, one failure, one error, one skip.
    const REPORT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="/var/www/html/phpunit.xml" tests="5" assertions="7" errors="1" warnings="0" failures="1" skipped="1" time="0.412300">
    <testsuite name="Unit" tests="2" assertions="3" errors="0" warnings="0" failures="0" skipped="0" time="0.010000">
      <testcase name="test_ok" class="Tests\Unit\OkTest" classname="Tests.Unit.OkTest" file="/x" line="9" assertions="2" time="0.005"/>
      <testcase name="test_also_ok" class="Tests\Unit\OkTest" classname="Tests.Unit.OkTest" file="/x" line="12" assertions="1" time="0.005"/>
    </testsuite>
    <testsuite name="Feature" tests="3" assertions="4" errors="1" warnings="0" failures="1" skipped="1" time="0.402300">
      <testcase name="test_it_fails" class="Tests\Feature\FailingTest" classname="Tests.Feature.FailingTest" file="/y" line="9" assertions="1" time="0.1">
        <failure type="PHPUnit\Framework\ExpectationFailedException">Tests\Feature\FailingTest::test_it_fails
Failed asserting that &lt;b&gt; is true.</failure>
      </testcase>
      <testcase name="test_it_breaks with data set &quot;a&quot;" class="Tests\Feature\FailingTest" classname="Tests.Feature.FailingTest" file="/y" line="14" assertions="0" time="0.1">
        <error type="RuntimeException">boom</error>
      </testcase>
      <testcase name="test_later" class="Tests\Feature\FailingTest" classname="Tests.Feature.FailingTest" file="/y" line="20" assertions="0" time="0">
        <skipped/>
      </testcase>
    </testsuite>
  </testsuite>
</testsuites>
"#;

    #[test]
    fn the_outer_suite_gives_the_counts_and_failed_cases_are_named() {
        let s = parse(REPORT).unwrap();
        assert_eq!(
            (s.tests, s.assertions, s.failures, s.errors, s.skipped),
            (5, 7, 1, 1, 1)
        );
        assert!((s.time - 0.4123).abs() < 1e-9);
        assert_eq!(
            s.failed,
            [
                r"Tests\Feature\FailingTest::test_it_fails",
                r#"Tests\Feature\FailingTest::test_it_breaks with data set "a""#,
            ]
        );
        assert!(!s.passed());
    }

    #[test]
    fn an_empty_run_and_a_missing_suite_differ() {
        let s = parse(r#"<testsuites><testsuite name="" tests="0" assertions="0" errors="0" failures="0" skipped="0" time="0"/></testsuites>"#).unwrap();
        assert_eq!(s.tests, 0);
        assert!(s.passed());
        assert_eq!(parse("<testsuites/>"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn workers_reports_merge_into_one_that_parses_to_their_sum() {
        assert_eq!(merge(&[REPORT]), REPORT, "a lone report is kept");
        let other = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="w2" tests="2" assertions="2" errors="0" warnings="0" failures="1" skipped="0" time="0.9">
    <testcase name="test_b" class="Tests\Unit\BTest" classname="Tests.Unit.BTest" assertions="1" time="0.9">
      <failure type="x">no</failure>
    </testcase>
    <testcase name="test_c" class="Tests\Unit\BTest" classname="Tests.Unit.BTest" assertions="1" time="0"/>
  </testsuite>
</testsuites>
"#;
        let merged = merge(&[REPORT, other, "<testsuites/>"]);
        assert_eq!(merged.matches("<?xml").count(), 1, "{merged}");
        assert_eq!(merged.matches("<testsuites").count(), 1, "{merged}");
        assert!(merged.trim_end().ends_with("</testsuites>"), "{merged}");
        let s = parse(&merged).unwrap();
        assert_eq!((s.tests, s.failures, s.errors), (7, 2, 1), "{merged}");
        assert_eq!(s.failed.len(), 3, "{merged}");
        assert!(s.failed.contains(&r"Tests\Unit\BTest::test_b".to_string()));
    }

    #[test]
    fn workers_add_up_and_take_the_slowest_time() {
        let mut a = Summary {
            tests: 3,
            time: 1.5,
            ..Summary::default()
        };
        a += Summary {
            tests: 2,
            failures: 1,
            time: 0.5,
            failed: vec!["T::x".into()],
            ..Summary::default()
        };
        assert_eq!((a.tests, a.failures, a.time), (5, 1, 1.5));
        assert_eq!(a.failed, ["T::x"]);
    }
}
