//! Literal bytes for every kind of programmer answer, both ways: what the simulated programmer
//! encodes is what the host parses. Then what real programmers also send (other quoting, other
//! attribute orders, several documents in one USB packet, a document split across packets, logs
//! after the response), and what must be an error, never a panic.

use super::reader::{MessageReader, ReadError};
use super::response::*;

/// The document around one element, as real programmers and the simulator write it.
fn doc(element: &str) -> Vec<u8> {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<data>\n{element}\n</data>").into_bytes()
}

fn configure_answer(ack: bool, size: usize) -> Response {
    Response {
        ack,
        rawmode: None,
        attributes: Vec::new(),
    }
    .with("MinVersionSupported", 1)
    .with("MemoryName", "UFS")
    .with("MaxPayloadSizeFromTargetInBytes", 4096)
    .with("MaxPayloadSizeToTargetInBytes", size)
    .with("MaxPayloadSizeToTargetInBytesSupported", 1_048_576)
    .with("MaxXMLSizeInBytes", 4096)
    .with("Version", 1)
    .with("TargetName", "8180")
}

/// (message, its document) for every kind of answer.
fn table() -> Vec<(Message, Vec<u8>)> {
    vec![
        (
            Message::Response(Response::ack(false)),
            doc(r#"<response value="ACK" rawmode="false" />"#),
        ),
        (
            Message::Response(Response::ack(true)),
            doc(r#"<response value="ACK" rawmode="true" />"#),
        ),
        (
            Message::Response(Response::nak()),
            doc(r#"<response value="NAK" rawmode="false" />"#),
        ),
        (
            Message::Response(configure_answer(true, 1_048_576)),
            doc(concat!(
                r#"<response value="ACK" MinVersionSupported="1" MemoryName="UFS" "#,
                r#"MaxPayloadSizeFromTargetInBytes="4096" MaxPayloadSizeToTargetInBytes="1048576" "#,
                r#"MaxPayloadSizeToTargetInBytesSupported="1048576" MaxXMLSizeInBytes="4096" "#,
                r#"Version="1" TargetName="8180" />"#
            )),
        ),
        (
            Message::Response(configure_answer(false, 1_048_576)),
            doc(concat!(
                r#"<response value="NAK" MinVersionSupported="1" MemoryName="UFS" "#,
                r#"MaxPayloadSizeFromTargetInBytes="4096" MaxPayloadSizeToTargetInBytes="1048576" "#,
                r#"MaxPayloadSizeToTargetInBytesSupported="1048576" MaxXMLSizeInBytes="4096" "#,
                r#"Version="1" TargetName="8180" />"#
            )),
        ),
        (
            Message::Log("INFO: Binary build date: Jun 25 2021 @ 23:36:59".into()),
            doc(r#"<log value="INFO: Binary build date: Jun 25 2021 @ 23:36:59" />"#),
        ),
        (
            Message::Log("ERROR: a <b> & \"c\" 'd'".into()),
            doc(r#"<log value="ERROR: a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;" />"#),
        ),
        (Message::Log(String::new()), doc(r#"<log value="" />"#)),
    ]
}

#[test]
fn every_answer_encodes_to_its_literal_bytes() {
    for (message, bytes) in table() {
        assert_eq!(
            String::from_utf8(encode(&message)).unwrap(),
            String::from_utf8(bytes).unwrap(),
            "{message:?}"
        );
    }
}

#[test]
fn every_answer_parses_from_its_literal_bytes() {
    for (message, bytes) in table() {
        assert_eq!(parse_frame(&bytes), Ok(vec![message]));
    }
}

#[test]
fn the_shorthand_encoders_match() {
    assert_eq!(encode_log("x"), encode(&Message::Log("x".into())));
    let nak = Response::nak();
    assert_eq!(encode_response(&nak), encode(&Message::Response(nak)));
}

#[test]
fn what_real_programmers_also_send() {
    let ack = |raw| Message::Response(Response::ack(raw));
    let cases: Vec<(&[u8], Vec<Message>)> = vec![
        // Single quotes, as some programmers and bkerler/edl's test vectors use.
        (b"<?xml version='1.0'?><data><response value='ACK' rawmode='true'/></data>", vec![ack(true)]),
        // Attributes in another order.
        (br#"<data><response rawmode="false" value="ACK" /></data>"#, vec![ack(false)]),
        // No prolog, CRLF line ends, a comment, an explicit close tag.
        (
            b"<data>\r\n<!-- reply -->\r\n<response value=\"ACK\" rawmode=\"false\"></response>\r\n</data>",
            vec![ack(false)],
        ),
        // A NAK without rawmode (older programmers).
        (
            br#"<?xml version="1.0" ?><data><response value="NAK" /></data>"#,
            vec![Message::Response(Response {
                ack: false,
                rawmode: None,
                attributes: Vec::new(),
            })],
        ),
        // The reason, then the NAK, in one document.
        (
            br#"<data><log value="ERROR: Failed to open the UFS device" /><response value="NAK" rawmode="false" /></data>"#,
            vec![Message::Log("ERROR: Failed to open the UFS device".into()), Message::Response(Response::nak())],
        ),
        // A log after the response in the same document (MSM8916 programmers log late).
        (
            br#"<data><response value="ACK" rawmode="false" /><log value="INFO: Finished programming" /></data>"#,
            vec![ack(false), Message::Log("INFO: Finished programming".into())],
        ),
        // A digest some programmers put in the response itself.
        (
            br#"<data><response value="ACK" Digest="00ff" rawmode="false" /></data>"#,
            vec![Message::Response(Response::ack(false).with("Digest", "00ff"))],
        ),
        // Non-UTF-8 log text (seen in build strings) is replaced, not refused.
        (b"<data><log value=\"caf\xe9\" /></data>", vec![Message::Log("caf\u{fffd}".into())]),
    ];
    for (bytes, messages) in cases {
        assert_eq!(parse_frame(bytes), Ok(messages), "{}", bytes.escape_ascii());
    }
    let other = parse_frame(br#"<data><sig value="1" /></data>"#).unwrap();
    assert!(matches!(&other[..], [Message::Other(e)] if e.name == "sig"));
}

#[test]
fn several_documents_in_one_packet_come_out_in_order_with_raw_data_left_over() {
    let mut packet = encode_log("INFO: Calling handler for read");
    packet.extend(encode_response(&Response::ack(true)));
    packet.extend([0xAA, 0xBB]);
    let mut reader = MessageReader::default();
    reader.push(&packet);
    let first = reader.pop_frame().unwrap().unwrap();
    assert_eq!(
        parse_frame(&first),
        Ok(vec![Message::Log("INFO: Calling handler for read".into())])
    );
    let second = reader.pop_frame().unwrap().unwrap();
    assert_eq!(
        parse_frame(&second),
        Ok(vec![Message::Response(Response::ack(true))])
    );
    // The raw data after a rawmode ACK is not a document: it stays for the raw reader.
    assert_eq!(reader.pending(), &[0xAA, 0xBB]);
}

#[test]
fn a_document_split_across_packets_is_whole_only_at_its_end() {
    let bytes = encode_response(&configure_answer(true, 1_048_576));
    let mut reader = MessageReader::default();
    // Cut inside the prolog, inside an attribute value, and inside `</data>` itself.
    let cuts = [10, 80, bytes.len() - 3];
    let mut from = 0;
    for cut in cuts {
        reader.push(&bytes[from..cut]);
        assert_eq!(
            reader.pop_frame().unwrap(),
            None,
            "complete after {cut} bytes?"
        );
        from = cut;
    }
    reader.push(&bytes[from..]);
    let frame = reader.pop_frame().unwrap().unwrap();
    assert_eq!(
        parse_frame(&frame),
        Ok(vec![Message::Response(configure_answer(true, 1_048_576))])
    );
    assert_eq!(reader.pop_frame().unwrap(), None);
}

#[test]
fn malformed_answers_are_errors() {
    let bad_value = [
        &br#"<data><response value="ack" rawmode="false" /></data>"#[..],
        br#"<data><response value="OK" /></data>"#,
        br#"<data><response rawmode="false" /></data>"#,
    ];
    for bytes in bad_value {
        assert!(
            matches!(parse_frame(bytes), Err(FrameError::BadValue { .. })),
            "{}",
            bytes.escape_ascii()
        );
    }
    assert_eq!(
        parse_frame(br#"<data><response value="ACK" rawmode="yes" /></data>"#),
        Err(FrameError::BadRawmode {
            line: 1,
            value: "yes".into()
        })
    );
    for bytes in [
        &b""[..],
        b"<data><response value=\"ACK\" />",
        b"<response value=\"ACK\" />",
        b"<data><response value=\"ACK\" value=\"NAK\" /></data>",
    ] {
        assert!(
            matches!(parse_frame(bytes), Err(FrameError::Xml(_))),
            "{}",
            bytes.escape_ascii()
        );
    }
    let mut reader = MessageReader::default();
    reader.push(b"\x01\x00\x00\x00garbage");
    assert!(matches!(reader.pop_frame(), Err(ReadError::Garbage { .. })));
    let mut reader = MessageReader::new(1024);
    reader.push(b"<data><log value=\"");
    reader.push(&[b'x'; 2000]);
    assert!(matches!(
        reader.pop_frame(),
        Err(ReadError::TooLarge { max: 1024 })
    ));
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"<>/=\"' &;#x?!-datarespnselogvluACKNAKrwmodtf\x00\xff\n";
    for (_, bytes) in table() {
        for _ in 0..500 {
            let mut b = bytes.clone();
            for _ in 0..(1 + next() % 4) {
                let at = (next() as usize) % b.len();
                b[at] = alphabet[(next() as usize) % alphabet.len()];
            }
            let cut = (next() as usize) % (b.len() + 1);
            let _ = parse_frame(&b);
            let _ = parse_frame(&b[..cut]);
            let mut reader = MessageReader::new(4096);
            reader.push(&b[..cut]);
            reader.push(&b);
            while let Ok(Some(frame)) = reader.pop_frame() {
                let _ = parse_frame(&frame);
            }
        }
    }
}
