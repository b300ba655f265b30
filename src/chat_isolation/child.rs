//! Check and execute, beside the layers: the renderer child (`r1flow
//! render-chat-template`, hidden) — limits itself, then renders the batch its parent
//! writes on stdin, one reply frame per conversation on stdout, in this process and with
//! every in-process bound of `tasks::chat_template`.

use std::io::{Read, Write};

use super::limits::Limits;
use super::protocol::{read_frame, write_frame, Conversation, Header, Reply};
use crate::tasks::{ChatTemplate, TaskError};

/// Sets `limits` on this process, then serves one batch from `input` to `output`. An
/// error is for the parent, which reads it from stderr: a broken protocol, or limits
/// that could not be set (nothing is rendered then).
pub fn serve(limits: &Limits, mut input: impl Read, mut output: impl Write) -> Result<(), String> {
    limits.apply_to_this_process()?;
    let broken = |e: std::io::Error| format!("chat template renderer: {e}");
    let header: Header = read_frame(&mut input)
        .map_err(broken)?
        .ok_or("chat template renderer: no batch on stdin")?;
    let template = ChatTemplate {
        source: header.source,
        special_tokens: header.special_tokens,
    };
    for _ in 0..header.conversations {
        let conversation: Conversation = read_frame(&mut input)
            .map_err(broken)?
            .ok_or("chat template renderer: the batch ended early")?;
        let reply = match template.render_in_process(&conversation, header.add_generation_prompt) {
            Ok(text) => Reply::Rendered(text),
            Err(TaskError::ChatTemplate { message }) => Reply::Failed(message),
            Err(other) => Reply::Failed(other.to_string()),
        };
        let failed = matches!(reply, Reply::Failed(_));
        write_frame(&mut output, &reply).map_err(broken)?;
        output.flush().map_err(broken)?;
        if failed {
            break;
        }
    }
    Ok(())
}
