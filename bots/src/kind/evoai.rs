//! EvoAI: an A2A agent over JSON-RPC 2.0. `POST <agentUrl>` `{jsonrpc, id, method:
//! "message/send", params: {contextId, message: {role, parts, messageId, metadata}, metadata}}`
//! with `x-api-key`; the reply is the first text part of `result.artifacts[0]`.

use serde_json::{Value, json};

use super::flowise::text_replies;
use super::{BotAnswer, BotCall, BotError, BotKind, param, post_json};
use crate::BoxFuture;

#[derive(Debug, Default, Clone, Copy)]
pub struct EvoAiBot;

impl BotKind for EvoAiBot {
    fn name(&self) -> &'static str {
        "evoai"
    }

    fn call<'a>(&'a self, call: BotCall<'a>) -> BoxFuture<'a, Result<BotAnswer, BotError>> {
        Box::pin(async move {
            let url = param(call.bot, "agentUrl")
                .ok_or_else(|| BotError::Config("agentUrl is required".into()))?;
            let message_id = call
                .session
                .remote_jid
                .split('@')
                .next()
                .unwrap_or(call.key_id)
                .to_owned();
            let body = json!({
                "jsonrpc": "2.0",
                "id": crate::session::new_id(),
                "method": "message/send",
                "params": {
                    "contextId": call.session.session_id,
                    "message": {
                        "role": "user",
                        "parts": [{"type": "text", "text": call.input}],
                        "messageId": message_id,
                        "metadata": {"messageKey": {"id": call.key_id}},
                    },
                    "metadata": {
                        "remoteJid": call.session.remote_jid,
                        "pushName": call.push_name,
                        "fromMe": call.from_me,
                        "instanceName": call.instance.instance_name,
                        "serverUrl": call.instance.server_url,
                        "apiKey": call.instance.api_key,
                    },
                },
            });
            let mut request = call.http.post(url);
            if let Some(key) = param(call.bot, "apiKey") {
                request = request.header("x-api-key", key);
            }
            Self::parse_answer(&post_json(request, &body).await?)
        })
    }
}

impl EvoAiBot {
    /// Reads the JSON-RPC answer (public for the fuzz target). A JSON-RPC `error` is a failure.
    pub fn parse_answer(answer: &Value) -> Result<BotAnswer, BotError> {
        if let Some(error) = answer.get("error").filter(|e| !e.is_null()) {
            return Err(BotError::Malformed(format!(
                "the agent answered an error: {error}"
            )));
        }
        let text = answer
            .pointer("/result/artifacts/0/parts")
            .and_then(Value::as_array)
            .and_then(|parts| {
                parts.iter().find_map(|p| {
                    (p.get("type").and_then(Value::as_str) == Some("text"))
                        .then(|| p.get("text").and_then(Value::as_str))
                        .flatten()
                })
            })
            .unwrap_or_default();
        Ok(BotAnswer {
            replies: text_replies(text),
            ..BotAnswer::default()
        })
    }
}
