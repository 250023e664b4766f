//! Reading the event stream back: what `flashgate dashboard` and other readers of the station's
//! JSON lines need to rebuild [`Event`]s. A verdict crosses the stream as its public shape
//! (`result`, `code`, `reason`, `next_step`; `step` and `why` for an interruption), so a FAIL
//! comes back as [`Failure::Relayed`] carrying the station's code and sentence, and an ABORTED
//! as the same [`Interruption`]; the unit is the event's slot and serial.

use serde::{Deserialize, Deserializer};

use super::{Event, EventKind};
use crate::verdict::{Failure, FailureCode, Interruption, NotFlashed, UnitRef, Verdict};

#[derive(Deserialize)]
struct EventLine {
    ts_ms: u64,
    #[serde(flatten)]
    kind: EventKind,
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let EventLine { ts_ms, mut kind } = EventLine::deserialize(deserializer)?;
        if let EventKind::Verdict {
            slot,
            serial,
            verdict,
        } = &mut kind
        {
            let unit = UnitRef {
                slot: *slot,
                serial: serial.clone(),
            };
            match verdict {
                Verdict::Pass => {}
                Verdict::Fail(Failure::Relayed {
                    unit: u, detail, ..
                }) => {
                    // The reason on the stream is the whole sentence, `unit: detail`.
                    if let Some(rest) = detail.strip_prefix(&format!("{unit}: ")) {
                        *detail = rest.to_string();
                    }
                    *u = unit;
                }
                Verdict::Aborted(interruption) => interruption.unit = unit,
                Verdict::Fail(_) => {}
            }
        }
        Ok(Event { ts_ms, kind })
    }
}

#[derive(Deserialize)]
struct VerdictLine {
    result: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    step: Option<String>,
    #[serde(default)]
    why: Option<String>,
    #[serde(default)]
    not_flashed: Option<String>,
}

/// On its own (outside an [`Event`]) the unit is unknown: slot 0, no serial.
impl<'de> Deserialize<'de> for Verdict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let line = VerdictLine::deserialize(deserializer)?;
        let unit = UnitRef {
            slot: 0,
            serial: None,
        };
        match line.result.as_str() {
            "PASS" => Ok(Verdict::Pass),
            "FAIL" => {
                let code = line.code.ok_or_else(|| D::Error::missing_field("code"))?;
                let code = FailureCode::parse(&code)
                    .ok_or_else(|| D::Error::custom(format!("unknown failure code `{code}`")))?;
                let detail = line
                    .reason
                    .ok_or_else(|| D::Error::missing_field("reason"))?;
                Ok(Verdict::Fail(Failure::Relayed { unit, code, detail }))
            }
            "ABORTED" => Ok(Verdict::Aborted(Interruption {
                unit,
                step: line.step.ok_or_else(|| D::Error::missing_field("step"))?,
                why: line.why.ok_or_else(|| D::Error::missing_field("why"))?,
                not_flashed: match line.not_flashed {
                    None => None,
                    Some(code) => Some(NotFlashed::parse(&code).ok_or_else(|| {
                        D::Error::custom(format!("unknown not-flashed code `{code}`"))
                    })?),
                },
            })),
            other => Err(D::Error::custom(format!(
                "unknown verdict result `{other}` (PASS, FAIL or ABORTED)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::script;

    fn round_trip(event: &Event) -> Event {
        let line = serde_json::to_string(event).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    #[test]
    fn every_event_of_a_scripted_batch_reads_back_as_it_renders() {
        let events = script::scripted_batch(8, 1_700_000_000_000);
        let mut verdicts = 0;
        for event in &events {
            let back = round_trip(event);
            assert_eq!(back.ts_ms, event.ts_ms);
            match (&event.kind, &back.kind) {
                (
                    EventKind::Verdict { verdict: sent, .. },
                    EventKind::Verdict { verdict: read, .. },
                ) => {
                    verdicts += 1;
                    assert_eq!(read.result(), sent.result());
                    assert_eq!(read.code(), sent.code());
                    assert_eq!(read.reason(), sent.reason());
                    assert_eq!(read.next_step(), sent.next_step());
                    if let (Verdict::Fail(sent), Verdict::Fail(read)) = (sent, read) {
                        assert_eq!(read.unit(), sent.unit());
                        assert_eq!(read.to_string(), sent.to_string());
                    }
                }
                _ => assert_eq!(&back, event),
            }
        }
        assert!(verdicts >= 8);
    }

    #[test]
    fn an_interruption_comes_back_whole() {
        let unit = UnitRef {
            slot: 4,
            serial: Some("7PL0004".into()),
        };
        let event = Event::at(
            9,
            EventKind::Verdict {
                slot: 4,
                serial: Some("7PL0004".into()),
                verdict: Verdict::Aborted(Interruption {
                    unit,
                    step: "flash system_a".into(),
                    why: "the station was stopped (SIGTERM)".into(),
                    not_flashed: None,
                }),
            },
        );
        assert_eq!(round_trip(&event), event);
    }

    #[test]
    fn malformed_verdicts_are_errors() {
        for line in [
            r#"{"ts_ms":1,"event":"verdict","slot":1,"serial":null,"verdict":{"result":"MAYBE"}}"#,
            r#"{"ts_ms":1,"event":"verdict","slot":1,"serial":null,"verdict":{"result":"FAIL","reason":"x"}}"#,
            r#"{"ts_ms":1,"event":"verdict","slot":1,"serial":null,"verdict":{"result":"FAIL","code":"NOPE","reason":"x"}}"#,
            r#"{"ts_ms":1,"event":"no_such_event"}"#,
        ] {
            assert!(serde_json::from_str::<Event>(line).is_err(), "{line}");
        }
    }
}
