//! Typebot, over its published v1 chat API (`TYPEBOT_API_VERSION=latest` in Evolution):
//! a new session calls `POST <url>/api/v1/typebots/<typebot>/startChat` with
//! `prefilledVariables` (remoteJid, pushName, instanceName, serverUrl, apiKey, ownerJid); a start
//! without messages is continued at once with the contact's text; later messages call
//! `POST <url>/api/v1/sessions/<sessionId>/continueChat` `{message}`.
//!
//! Rendering, as Evolution does: rich text becomes WhatsApp formatting (`*bold*`, `_italic_`,
//! `~underline~`, numbered `ol`, indented `li`, links as `[text]\n(url)`); image, video and
//! audio bubbles become media; a `choice input` becomes `▶️ item` lines. An answer without an
//! `input` ends the flow: the session ends (closed with keepOpen, else deleted).
//!
//! The session keeps Typebot's session id in its context (`typebotSessionId`); its Evolution
//! session id is `<10 random digits>-<typebot session id>`.

use serde_json::{Value, json};

use super::{BotAnswer, BotCall, BotError, BotKind, Reply, param, post_json};
use crate::BoxFuture;

#[derive(Debug, Default, Clone, Copy)]
pub struct TypebotBot;

impl BotKind for TypebotBot {
    fn name(&self) -> &'static str {
        "typebot"
    }

    fn call<'a>(&'a self, call: BotCall<'a>) -> BoxFuture<'a, Result<BotAnswer, BotError>> {
        Box::pin(async move {
            let url = param(call.bot, "url")
                .ok_or_else(|| BotError::Config("url is required".into()))?
                .trim_end_matches('/');
            let existing = call
                .session
                .context
                .get("typebotSessionId")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let continue_chat = |session: String| {
                let request = call
                    .http
                    .post(format!("{url}/api/v1/sessions/{session}/continueChat"));
                async move { post_json(request, &json!({"message": call.input})).await }
            };
            let (session, answer) = match existing {
                Some(session) => {
                    let answer = continue_chat(session.clone()).await?;
                    (session, answer)
                }
                None => {
                    let typebot = param(call.bot, "typebot")
                        .ok_or_else(|| BotError::Config("typebot is required".into()))?;
                    let mut variables = call
                        .bot
                        .params
                        .get("prefilledVariables")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    for (k, v) in [
                        ("remoteJid", json!(call.session.remote_jid)),
                        ("pushName", json!(call.push_name.unwrap_or_default())),
                        ("instanceName", json!(call.instance.instance_name)),
                        ("serverUrl", json!(call.instance.server_url)),
                        ("apiKey", json!(call.instance.api_key)),
                    ] {
                        variables.insert(k.into(), v);
                    }
                    let started = post_json(
                        call.http
                            .post(format!("{url}/api/v1/typebots/{typebot}/startChat")),
                        &json!({"prefilledVariables": variables}),
                    )
                    .await?;
                    let session = started
                        .get("sessionId")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| BotError::Malformed("startChat without sessionId".into()))?;
                    let empty = started
                        .get("messages")
                        .and_then(Value::as_array)
                        .is_none_or(Vec::is_empty);
                    let answer = if empty {
                        continue_chat(session.clone()).await?
                    } else {
                        started
                    };
                    (session, answer)
                }
            };
            let mut parsed = Self::parse_answer(&answer)?;
            let prefix = call
                .session
                .session_id
                .split_once('-')
                .map(|(p, _)| p.to_owned())
                .filter(|p| p.len() == 10 && p.bytes().all(|b| b.is_ascii_digit()))
                .unwrap_or_else(random_digits);
            parsed.session_id = Some(format!("{prefix}-{session}"));
            parsed.context = Some(json!({"typebotSessionId": session}));
            Ok(parsed)
        })
    }
}

fn random_digits() -> String {
    let mut bytes = [0u8; 8];
    let n = match getrandom::fill(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => 0,
    };
    format!("{:010}", n % 10_000_000_000)
}

impl TypebotBot {
    /// Reads a startChat/continueChat answer (public for the fuzz target).
    pub fn parse_answer(answer: &Value) -> Result<BotAnswer, BotError> {
        let object = answer
            .as_object()
            .ok_or_else(|| BotError::Malformed("the answer is not a JSON object".into()))?;
        let mut replies = Vec::new();
        for message in object
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let content = message.get("content").unwrap_or(&Value::Null);
            match message.get("type").and_then(Value::as_str) {
                Some("text") => {
                    let mut text = String::new();
                    for block in content
                        .get("richText")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        for child in block
                            .get("children")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                        {
                            text.push_str(&format_rich(child, 0));
                        }
                        if block.get("type").and_then(Value::as_str) == Some("p") {
                            text = text.trim_end().to_owned();
                            text.push('\n');
                        }
                    }
                    let text = text.trim().to_owned();
                    if !text.is_empty() {
                        replies.push(Reply::Text {
                            text,
                            link_preview: true,
                        });
                    }
                }
                Some(kind @ ("image" | "video" | "audio")) => {
                    if let Some(url) = content.get("url").and_then(Value::as_str) {
                        replies.push(Reply::Media {
                            mediatype: kind.to_owned(),
                            url: url.to_owned(),
                            caption: None,
                            file_name: None,
                        });
                    }
                }
                _ => {}
            }
        }
        let input = object.get("input").filter(|i| !i.is_null());
        if let Some(input) = input
            && input.get("type").and_then(Value::as_str) == Some("choice input")
        {
            let items: Vec<String> = input
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|i| i.get("content").and_then(Value::as_str))
                .map(|c| format!("▶️ {c}"))
                .collect();
            if !items.is_empty() {
                replies.push(Reply::Text {
                    text: items.join("\n"),
                    link_preview: true,
                });
            }
        }
        Ok(BotAnswer {
            replies,
            finished: input.is_none(),
            ..BotAnswer::default()
        })
    }
}

/// One rich-text element as WhatsApp text (Evolution's formatting rules). `depth` bounds the
/// recursion on hostile input.
fn format_rich(element: &Value, depth: usize) -> String {
    if depth > 32 {
        return String::new();
    }
    let kind = element.get("type").and_then(Value::as_str);
    let mut text = element
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let children = element.get("children").and_then(Value::as_array);
    if kind != Some("a") {
        for child in children.into_iter().flatten() {
            text.push_str(&format_rich(child, depth + 1));
        }
    }
    match kind {
        Some("p") => {
            text = format!("{}\n", text.trim());
        }
        Some("inline-variable") => text = text.trim().to_owned(),
        Some("ol") => {
            let mut n = 0;
            let lines: Vec<String> = text
                .split('\n')
                .map(|line| {
                    n += 1;
                    if line.is_empty() {
                        String::new()
                    } else {
                        format!("{n}. {line}")
                    }
                })
                .collect();
            text = format!("\n{}", lines.join("\n"));
        }
        Some("li") => {
            text = text
                .split('\n')
                .map(|line| {
                    if line.is_empty() {
                        String::new()
                    } else {
                        format!("  {line}")
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
        }
        _ => {}
    }
    let flag = |k: &str| element.get(k).and_then(Value::as_bool) == Some(true);
    let mut marks = String::new();
    if flag("bold") {
        marks.push('*');
    }
    if flag("italic") {
        marks.push('_');
    }
    if flag("underline") {
        marks.push('~');
    }
    let closing: String = marks.chars().rev().collect();
    let formatted = format!("{marks}{text}{closing}");
    match element.get("url").and_then(Value::as_str) {
        Some(url) => {
            let label = children
                .and_then(|c| c.first())
                .and_then(|c| c.get("text"))
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty());
            match label {
                Some(label) => format!("[{label}]\n({url})"),
                None => url.to_owned(),
            }
        }
        None => formatted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rich_text_media_and_choices() {
        let answer = json!({
            "sessionId": "s1",
            "messages": [
                {"id": "m1", "type": "text", "content": {"type": "richText", "richText": [
                    {"type": "p", "children": [
                        {"text": "Hello "}, {"text": "Ana", "bold": true},
                        {"text": ", see "},
                        {"type": "a", "url": "https://x.test", "children": [{"text": "our site"}]}
                    ]}
                ]}},
                {"id": "m2", "type": "image", "content": {"url": "https://x.test/a.png"}}
            ],
            "input": {"type": "choice input", "items": [
                {"id": "1", "content": "Shoes"}, {"id": "2", "content": "Hats"}
            ]}
        });
        let a = TypebotBot::parse_answer(&answer).unwrap();
        assert!(!a.finished);
        assert_eq!(
            a.replies[0],
            Reply::Text {
                text: "Hello *Ana*, see [our site]\n(https://x.test)".into(),
                link_preview: true
            }
        );
        assert!(matches!(&a.replies[1], Reply::Media { mediatype, .. } if mediatype == "image"));
        assert_eq!(
            a.replies[2],
            Reply::Text {
                text: "▶️ Shoes\n▶️ Hats".into(),
                link_preview: true
            }
        );
        let end = TypebotBot::parse_answer(&json!({"messages": [], "input": null})).unwrap();
        assert!(end.finished);
        assert!(TypebotBot::parse_answer(&json!([1])).is_err());
    }
}
