use std::time::Instant;

use super::*;
use crate::dashboard::{script, DashboardState, RenderStyle};
use crate::events::EventKind;

fn socket_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("journal.events.sock")
}

/// Everything a client reads until the stream ends.
fn read_all(mut stream: EventStream) -> Vec<StreamItem> {
    let mut items = Vec::new();
    while let Some(item) = stream.next_item().unwrap() {
        let last = matches!(item, StreamItem::End(_) | StreamItem::Dropped(_));
        items.push(item);
        if last {
            break;
        }
    }
    items
}

fn screen(events: impl IntoIterator<Item = Event>, now_ms: u64) -> Vec<String> {
    let mut state = DashboardState::new();
    for event in events {
        state.apply(&event);
    }
    state.tick(now_ms);
    state.render(120, 40, RenderStyle::PLAIN)
}

#[test]
fn a_client_attaching_mid_batch_sees_the_same_screen_as_the_station() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let publisher = EventPublisher::bind(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o660);

    let events = script::scripted_batch(16, 1_700_000_000_000);
    let half = events.len() / 2;
    for event in &events[..half] {
        publisher.emit(event.clone());
    }
    let stream = EventStream::connect(std::slice::from_ref(&path)).unwrap();
    assert_eq!(stream.station_pid(), std::process::id());
    let reader = std::thread::spawn(move || read_all(stream));
    // The client is registered once its snapshot is taken.
    let deadline = Instant::now() + Duration::from_secs(10);
    while publisher.clients() == 0 {
        assert!(Instant::now() < deadline, "the client never registered");
        std::thread::sleep(Duration::from_millis(5));
    }
    for event in &events[half..] {
        publisher.emit(event.clone());
    }
    drop(publisher);
    let items = reader.join().unwrap();
    assert!(!path.exists(), "the socket file is removed at the end");

    let live_at = items
        .iter()
        .position(|i| *i == StreamItem::Live)
        .expect("a live line");
    assert!(
        live_at < half,
        "the replay is compact: {live_at} of {half} events"
    );
    assert!(matches!(items.last(), Some(StreamItem::End(why)) if why.contains("station ended")));
    let received: Vec<Event> = items
        .into_iter()
        .filter_map(|item| match item {
            StreamItem::Event(event) => Some(*event),
            _ => None,
        })
        .collect();
    // Everything after the attach arrived, in order, as the station serialized it.
    let json = |events: &[Event]| -> Vec<String> {
        events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect()
    };
    let tail = events.len() - half;
    assert!(received.len() > tail);
    assert_eq!(
        json(&received[received.len() - tail..]),
        json(&events[half..])
    );
    let now = events.last().unwrap().ts_ms;
    let rendered = screen(received, now);
    assert_eq!(rendered, screen(events.iter().cloned(), now));
    assert!(rendered.join("\n").contains("FAIL"), "{rendered:#?}");
}

#[test]
fn a_client_that_does_not_read_is_dropped_without_slowing_the_station() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let publisher = EventPublisher::bind(&path).unwrap();
    let stream = EventStream::connect(std::slice::from_ref(&path)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while publisher.clients() == 0 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    // Far more than the queue and the socket's buffer hold, while nobody reads.
    let started = Instant::now();
    for done in 0..40_000u64 {
        publisher.emit(Event::at(
            done,
            EventKind::BytesProgress {
                slot: 1,
                done,
                total: 1 << 30,
            },
        ));
    }
    assert_eq!(publisher.clients(), 0, "the stuck client was dropped");
    // emit never waited on the client (a generous bound: a blocking send would take minutes).
    assert!(started.elapsed() < Duration::from_secs(30));
    let items = read_all(stream);
    match items.last() {
        Some(StreamItem::Dropped(why)) => assert!(why.contains("fell 4096 events behind"), "{why}"),
        other => panic!("expected a dropped line, got {other:?}"),
    }
    drop(publisher);
}

#[test]
fn no_station_a_stale_socket_and_a_live_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let error = EventStream::connect(std::slice::from_ref(&path))
        .err()
        .unwrap();
    assert!(matches!(error, AttachError::NoStation { .. }));
    assert!(
        error.to_string().starts_with(&format!(
            "no station is running: nothing listens on {}",
            path.display()
        )),
        "{error}"
    );

    // A socket file nobody listens on (a station that was killed) is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let publisher = EventPublisher::bind(&path).unwrap();
    // A second station on the same socket is refused, naming it.
    match EventPublisher::bind(&path) {
        Err(PublishError::InUse { path: used }) => assert_eq!(used, path),
        other => panic!("{:?}", other.err()),
    }
    drop(publisher);
}

#[test]
fn clients_beyond_the_limit_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let publisher = EventPublisher::bind(&path).unwrap();
    let streams: Vec<EventStream> = (0..MAX_CLIENTS)
        .map(|_| EventStream::connect(std::slice::from_ref(&path)).unwrap())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while publisher.clients() < MAX_CLIENTS {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    match EventStream::connect(std::slice::from_ref(&path)) {
        Err(AttachError::Refused { why }) => assert!(why.contains("already attached"), "{why}"),
        other => panic!("{:?}", other.err()),
    }
    drop(streams);
    drop(publisher);
}

#[test]
fn a_station_whose_socket_file_was_deleted_still_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let publisher = EventPublisher::bind(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let started = Instant::now();
    drop(publisher);
    // One accept poll, not a hang (a generous bound for a loaded machine).
    assert!(started.elapsed() < Duration::from_secs(30));
}
