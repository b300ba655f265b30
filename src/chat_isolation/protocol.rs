//! Check and execute, beside the layers: what a parent and its chat-template renderer
//! child say to each other over the child's stdin and stdout — frames of an 8-byte
//! little-endian length and that many bytes of JSON.
//!
//! Parent → child: one [`Header`], then `conversations` frames of turns. Child → parent:
//! one [`Reply`] per conversation, flushed as it is rendered, so that when the child dies
//! the parent knows which conversation it was rendering: the one after the last reply.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::tasks::ChatMessage;

/// The largest frame either side reads. A conversation holds one record (at most 1 MiB)
/// and a system prompt; a reply at most the 16 MiB of one rendered prompt, which JSON's
/// escapes can make up to six times longer.
pub(super) const MAX_FRAME_BYTES: u64 = 128 << 20;

/// What to render: the template, its special tokens, and how many conversations follow.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Header {
    pub(super) source: String,
    pub(super) special_tokens: BTreeMap<String, String>,
    pub(super) add_generation_prompt: bool,
    pub(super) conversations: usize,
}

/// One conversation's outcome. The child stops after the first `Failed`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Reply {
    Rendered(String),
    Failed(String),
}

/// One conversation to render.
pub(super) type Conversation = Vec<ChatMessage>;

/// Writes `value` as one frame.
pub(super) fn write_frame(out: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    out.write_all(&(bytes.len() as u64).to_le_bytes())?;
    out.write_all(&bytes)
}

/// Reads one frame; `Ok(None)` at the end of the stream before a frame starts. A frame
/// longer than [`MAX_FRAME_BYTES`], cut short, or not the JSON of a `T` is an error.
pub(super) fn read_frame<T: DeserializeOwned>(input: &mut impl Read) -> io::Result<Option<T>> {
    let mut length = [0u8; 8];
    let mut filled = 0;
    while filled < length.len() {
        match input.read(&mut length[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let length = u64::from_le_bytes(length);
    if length > MAX_FRAME_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {length} bytes, more than the {MAX_FRAME_BYTES} allowed"),
        ));
    }
    let mut bytes = Vec::new();
    input.take(length).read_to_end(&mut bytes)?;
    if (bytes.len() as u64) < length {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_refuse_what_is_cut_or_too_long() {
        let mut bytes = Vec::new();
        write_frame(&mut bytes, &Reply::Rendered("a\u{0}b".into())).expect("writes");
        write_frame(&mut bytes, &Reply::Failed("no".into())).expect("writes");
        let mut input = bytes.as_slice();
        assert!(matches!(
            read_frame::<Reply>(&mut input),
            Ok(Some(Reply::Rendered(text))) if text == "a\u{0}b"
        ));
        assert!(matches!(
            read_frame::<Reply>(&mut input),
            Ok(Some(Reply::Failed(_)))
        ));
        assert!(matches!(read_frame::<Reply>(&mut input), Ok(None)));

        let mut one = Vec::new();
        write_frame(&mut one, &Reply::Rendered("text".into())).expect("writes");
        assert!(read_frame::<Reply>(&mut &one[..one.len() - 1]).is_err());
        assert!(read_frame::<Reply>(&mut &one[..5]).is_err());
        let mut too_long = (MAX_FRAME_BYTES + 1).to_le_bytes().to_vec();
        too_long.extend_from_slice(b"{}");
        assert!(read_frame::<Reply>(&mut too_long.as_slice()).is_err());
    }
}
