//! Dify: `chatBot` → `POST <apiUrl>/chat-messages` (blocking), `textGenerator` →
//! `/completion-messages` (blocking, the text also in `inputs.query`), `agent` →
//! `/chat-messages` streaming (server-sent events; the `answer`s of the `agent_message` events
//! joined). Bearer `apiKey`. Dify's `conversation_id` becomes the session id and is sent back on
//! the next message. `workflow` bots are refused (Evolution has no implementation either).

use serde_json::{Value, json};

use super::flowise::text_replies;
use super::{BotAnswer, BotCall, BotError, BotKind, param, post_json};
use crate::BoxFuture;

#[derive(Debug, Default, Clone, Copy)]
pub struct DifyBot;

impl BotKind for DifyBot {
    fn name(&self) -> &'static str {
        "dify"
    }

    fn call<'a>(&'a self, call: BotCall<'a>) -> BoxFuture<'a, Result<BotAnswer, BotError>> {
        Box::pin(async move {
            let base = param(call.bot, "apiUrl")
                .ok_or_else(|| BotError::Config("apiUrl is required".into()))?
                .trim_end_matches('/');
            let bot_type = param(call.bot, "botType").unwrap_or("chatBot");
            let conversation = (call.session.session_id != call.session.remote_jid)
                .then_some(call.session.session_id.as_str());
            let mut inputs = json!({
                "remoteJid": call.session.remote_jid,
                "pushName": call.push_name,
                "instanceName": call.instance.instance_name,
                "serverUrl": call.instance.server_url,
                "apiKey": call.instance.api_key,
            });
            let (path, streaming) = match bot_type {
                "chatBot" => ("/chat-messages", false),
                "textGenerator" => {
                    inputs["query"] = json!(call.input);
                    ("/completion-messages", false)
                }
                "agent" => ("/chat-messages", true),
                other => {
                    return Err(BotError::Config(format!(
                        "Dify bot type {other:?} is not supported"
                    )));
                }
            };
            let mut body = json!({
                "inputs": inputs,
                "query": call.input,
                "response_mode": if streaming { "streaming" } else { "blocking" },
                "conversation_id": conversation,
                "user": call.session.remote_jid,
            });
            if let Some(url) = call.media_url {
                body["files"] =
                    json!([{"type": "image", "transfer_method": "remote_url", "url": url}]);
            }
            let mut request = call.http.post(format!("{base}{path}"));
            if let Some(key) = param(call.bot, "apiKey") {
                request = request.bearer_auth(key);
            }
            if streaming {
                let response = request
                    .json(&body)
                    .send()
                    .await
                    .map_err(BotError::from_reqwest)?
                    .error_for_status()
                    .map_err(BotError::from_reqwest)?;
                let text = response.text().await.map_err(BotError::from_reqwest)?;
                Ok(Self::parse_stream(&text))
            } else {
                Self::parse_answer(&post_json(request, &body).await?)
            }
        })
    }
}

impl DifyBot {
    /// Reads a blocking answer (public for the fuzz target).
    pub fn parse_answer(answer: &Value) -> Result<BotAnswer, BotError> {
        let object = answer
            .as_object()
            .ok_or_else(|| BotError::Malformed("the answer is not a JSON object".into()))?;
        let text = match object.get("answer") {
            Some(Value::String(s)) => s.as_str(),
            None | Some(Value::Null) => "",
            Some(_) => return Err(BotError::Malformed("`answer` is not a string".into())),
        };
        Ok(BotAnswer {
            replies: text_replies(text),
            session_id: object
                .get("conversation_id")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
            ..BotAnswer::default()
        })
    }

    /// Reads a streamed (server-sent events) agent answer (public for the fuzz target): lines
    /// `data: {…}`; the `answer`s of `agent_message` (and `message`) events are joined, the first
    /// `conversation_id` is kept. Lines that are not JSON are skipped.
    pub fn parse_stream(body: &str) -> BotAnswer {
        let mut answer = String::new();
        let mut conversation = None;
        for line in body.lines() {
            let Some(data) = line.trim().strip_prefix("data:") else {
                continue;
            };
            let Ok(event) = serde_json::from_str::<Value>(data.trim()) else {
                continue;
            };
            if matches!(
                event.get("event").and_then(Value::as_str),
                Some("agent_message" | "message")
            ) {
                if conversation.is_none() {
                    conversation = event
                        .get("conversation_id")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                }
                if let Some(part) = event.get("answer").and_then(Value::as_str) {
                    answer.push_str(part);
                }
            }
        }
        BotAnswer {
            replies: text_replies(&answer),
            session_id: conversation,
            ..BotAnswer::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_and_blocking() {
        let s = "event: ping\n\ndata: {\"event\":\"agent_message\",\"conversation_id\":\"c1\",\"answer\":\"Hel\"}\n\ndata: {\"event\":\"agent_thought\",\"thought\":\"x\"}\n\ndata: {\"event\":\"agent_message\",\"conversation_id\":\"c1\",\"answer\":\"lo\"}\n\ndata: {\"event\":\"message_end\"}\n\ndata: garbage\n";
        let a = DifyBot::parse_stream(s);
        assert_eq!(a.session_id.as_deref(), Some("c1"));
        assert_eq!(
            a.replies,
            vec![crate::Reply::Text {
                text: "Hello".into(),
                link_preview: true
            }]
        );
        let b = DifyBot::parse_answer(&json!({"answer": "hi", "conversation_id": "c2"})).unwrap();
        assert_eq!(b.session_id.as_deref(), Some("c2"));
        assert!(DifyBot::parse_answer(&json!({"answer": 5})).is_err());
    }
}
