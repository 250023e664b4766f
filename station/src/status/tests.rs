use std::io::{Read, Write};
use std::net::TcpStream;

use super::*;
use crate::dashboard::script;

fn board_after(events: &[Event]) -> Arc<StatusBoard> {
    let board = Arc::new(StatusBoard::new(Some(Arc::new(LogHealth::default()))));
    for event in events {
        board.emit(event.clone());
    }
    board
}

/// The exposition's grammar: every sample belongs to the family whose HELP and TYPE came just
/// before it, each family is declared once, and values parse as floats.
fn check_exposition(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut families: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut lines = text.lines().peekable();
    assert!(text.ends_with('\n'));
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap().to_owned();
            let kind = lines.next().unwrap();
            assert!(
                kind == format!("# TYPE {name} gauge") || kind == format!("# TYPE {name} counter"),
                "{kind}"
            );
            assert!(
                families.insert(name.clone(), Vec::new()).is_none(),
                "{name} twice"
            );
            current = Some(name);
            continue;
        }
        let family = current.as_ref().expect("a sample before any HELP");
        let (series, value) = line.rsplit_once(' ').unwrap();
        let name = series.split('{').next().unwrap();
        assert_eq!(name, family, "{line}");
        assert!(
            value == "NaN" || value.parse::<f64>().is_ok(),
            "value of {line}"
        );
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
        }
        families.get_mut(family).unwrap().push(line.to_owned());
    }
    families
}

#[test]
fn metrics_count_units_by_verdict_and_code_and_report_every_slot() {
    let events = script::scripted_batch(16, 1_700_000_000_000);
    let board = board_after(&events);
    let snapshot = board.snapshot();
    let text = snapshot.metrics();
    let families = check_exposition(&text);

    // The figures the dashboard's own model gives for the same events.
    let mut state = crate::dashboard::DashboardState::new();
    let mut by_code: BTreeMap<String, u64> = BTreeMap::new();
    for event in &events {
        state.apply(event);
        if let EventKind::Verdict {
            verdict: Verdict::Fail(f),
            ..
        } = &event.kind
        {
            *by_code.entry(f.code().as_str().to_owned()).or_default() += 1;
        }
    }
    let counts = state.counts();
    assert!(counts.failed > 0 && counts.passed > 0);
    assert!(text.contains(&format!(
        "flashgate_units_total{{verdict=\"PASS\",code=\"\"}} {}\n",
        counts.passed
    )));
    for (code, n) in &by_code {
        assert!(
            text.contains(&format!(
                "flashgate_units_total{{verdict=\"FAIL\",code=\"{code}\"}} {n}\n"
            )),
            "{code} {n}\n{text}"
        );
    }
    assert_eq!(
        families["flashgate_units_total"].len(),
        2 + FailureCodeCount::N
    );
    assert!(text.contains(&format!(
        "flashgate_journal_commits_total {}\n",
        counts.passed + counts.failed + counts.aborted
    )));
    // One series per state per slot, exactly one of them 1.
    let slots = state.slots().count();
    let slot_lines = &families["flashgate_slot_state"];
    assert_eq!(slot_lines.len(), slots * metrics::SLOT_STATES.len());
    assert_eq!(
        slot_lines.iter().filter(|l| l.ends_with(" 1")).count(),
        slots
    );
    let yield_line = &families["flashgate_yield_ratio"][0];
    let y: f64 = yield_line.rsplit_once(' ').unwrap().1.parse().unwrap();
    assert!((y - state.yield_percent().unwrap() / 100.0).abs() < 1e-9);
    assert!(text.contains("flashgate_log_write_errors_total{log=\"daily\"} 0\n"));
    assert!(text.contains("flashgate_batch_finished 1\n"));
}

struct FailureCodeCount;
impl FailureCodeCount {
    const N: usize = crate::verdict::FailureCode::ALL.len();
}

#[test]
fn label_values_and_page_text_are_escaped() {
    let board = StatusBoard::new(None);
    board.emit(Event::at(
        1,
        EventKind::UnitDetected {
            slot: 1,
            port_path: "1-4\"<b>\\\n".into(),
            mode: crate::mode::Mode::Fastboot,
            serial: Some("<script>".into()),
        },
    ));
    let snapshot = board.snapshot();
    let text = snapshot.metrics();
    check_exposition(&text);
    assert!(text.contains("port=\"1-4\\\"<b>\\\\\\n\""), "{text}");
    let page = snapshot.page();
    assert!(!page.contains("<script>") && !page.contains("<b>\\"));
    assert!(page.contains("&lt;script&gt;"));
    assert!(text.contains("flashgate_yield_ratio NaN\n"));
}

fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

use std::net::SocketAddr;

#[test]
fn the_server_answers_get_and_head_and_refuses_the_rest() {
    let board = board_after(&script::scripted_batch(4, 1_700_000_000_000));
    let server = StatusServer::bind("127.0.0.1:0", board).unwrap();
    let addr = server.local_addr();

    let page = exchange(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(page.contains("Content-Type: text/html; charset=utf-8\r\n"));
    assert!(page.contains("Connection: close\r\n"));
    let (head, body) = page.split_once("\r\n\r\n").unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(length, body.len());
    assert!(body.contains("<table>") && body.contains("sim-1") || body.contains("<td>"));

    let head_only = exchange(addr, b"HEAD /metrics HTTP/1.0\r\n\r\n");
    assert!(head_only.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(head_only.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    assert!(head_only.ends_with("\r\n\r\n"), "no body for HEAD");

    let post = exchange(
        addr,
        b"POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
    );
    assert!(
        post.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{post}"
    );
    assert!(post.contains("Allow: GET, HEAD\r\n"));
    let missing = exchange(addr, b"GET /etc/passwd HTTP/1.1\r\n\r\n");
    assert!(missing.starts_with("HTTP/1.1 404 Not Found\r\n"));
    let mut huge = b"GET / HTTP/1.1\r\nX-Junk: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 3 * http::MAX_REQUEST_HEAD));
    let mut stream = TcpStream::connect(addr).unwrap();
    let _ = stream.write_all(&huge);
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    drop(server);
    assert!(
        TcpStream::connect(addr).is_err(),
        "the port is closed after drop"
    );
}
