//! OpenAI, over its published REST API (any server speaking it: the base URL is
//! configuration, `OPENAI_BASE_URL` in the gateway).
//!
//! - `chatCompletion`: `POST /chat/completions` with the bot's `model`, `max_tokens`
//!   (`maxTokens`, else 500) and messages: the bot's `systemMessages`, `assistantMessages` and
//!   `userMessages`, the session's history (the last 10 turns, kept in the session's
//!   `context.history`), then the user's text. The reply is `choices[0].message.content`.
//! - `assistant`: a thread per session (its id becomes the session id, as in Evolution): add the
//!   user's message, create a run of `assistantId`, poll it; a `requires_action` run has each
//!   tool call answered by `POST <functionUrl>` `{functionName, functionArguments: {…args,
//!   remoteJid, pushName}}`, whose answer is the tool output. The reply is the first text of the
//!   thread's newest message.
//!
//! The API key arrives in the bot's params as `openaiApiKey` (the gateway resolves the bot's
//! `openaiCredsId`); it is never part of a bot row.

use std::time::Duration;

use serde_json::{Value, json};

use super::{BotAnswer, BotCall, BotError, BotKind, Reply, param, post_json};
use crate::BoxFuture;

/// Turns of history kept per session (a turn is the user's message and the answer).
const HISTORY_TURNS: usize = 10;

/// The OpenAI adapter.
#[derive(Debug, Clone)]
pub struct OpenAiBot {
    base_url: String,
    poll_interval: Duration,
    max_polls: u32,
}

impl OpenAiBot {
    /// `base_url` such as `https://api.openai.com/v1`. Runs are polled every second, 60 times
    /// at most, as Evolution does.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            poll_interval: Duration::from_secs(1),
            max_polls: 60,
        }
    }

    /// Another polling pace for assistant runs (tests).
    pub fn with_polling(mut self, interval: Duration, max_polls: u32) -> Self {
        self.poll_interval = interval;
        self.max_polls = max_polls.max(1);
        self
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

fn strings(v: Option<&Value>) -> impl Iterator<Item = &str> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

async fn get_json(request: reqwest::RequestBuilder) -> Result<Value, BotError> {
    let response = request
        .send()
        .await
        .map_err(BotError::from_reqwest)?
        .error_for_status()
        .map_err(BotError::from_reqwest)?;
    let bytes = response.bytes().await.map_err(BotError::from_reqwest)?;
    serde_json::from_slice(&bytes).map_err(|e| BotError::Malformed(e.to_string()))
}

fn text_reply(text: &str) -> Vec<Reply> {
    if text.trim().is_empty() {
        return Vec::new();
    }
    vec![Reply::Text {
        text: text.to_owned(),
        link_preview: true,
    }]
}

impl OpenAiBot {
    /// Reads a chat completion answer (public for the fuzz target).
    pub fn parse_completion(answer: &Value) -> Result<String, BotError> {
        answer
            .get("choices")
            .and_then(|c| c.get(0))
            .and_then(|c| c.get("message"))
            .and_then(|m| m.get("content"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| BotError::Malformed("no choices[0].message.content".into()))
    }

    /// Reads the newest thread message's first text (public for the fuzz target).
    pub fn parse_thread_messages(answer: &Value) -> Result<String, BotError> {
        answer
            .get("data")
            .and_then(|d| d.get(0))
            .and_then(|m| m.get("content"))
            .and_then(Value::as_array)
            .and_then(|parts| {
                parts.iter().find_map(|p| {
                    p.get("text")
                        .and_then(|t| t.get("value"))
                        .and_then(Value::as_str)
                })
            })
            .map(str::to_owned)
            .ok_or_else(|| BotError::Malformed("no text in the thread's newest message".into()))
    }

    async fn chat_completion(&self, call: &BotCall<'_>, key: &str) -> Result<BotAnswer, BotError> {
        let model =
            param(call.bot, "model").ok_or_else(|| BotError::Config("model is required".into()))?;
        let max_tokens = call
            .bot
            .params
            .get("maxTokens")
            .and_then(Value::as_u64)
            .filter(|n| *n > 0)
            .unwrap_or(500);
        let mut messages = Vec::new();
        for (field, role) in [
            ("systemMessages", "system"),
            ("assistantMessages", "assistant"),
            ("userMessages", "user"),
        ] {
            for content in strings(call.bot.params.get(field)) {
                messages.push(json!({"role": role, "content": content}));
            }
        }
        let mut history: Vec<Value> = call
            .session
            .context
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        messages.extend(history.iter().cloned());
        messages.push(json!({"role": "user", "content": call.input}));
        let body = json!({"model": model, "max_tokens": max_tokens, "messages": messages});
        let answer = post_json(
            call.http
                .post(self.url("/chat/completions"))
                .bearer_auth(key),
            &body,
        )
        .await?;
        let text = Self::parse_completion(&answer)?;
        history.push(json!({"role": "user", "content": call.input}));
        history.push(json!({"role": "assistant", "content": text}));
        let excess = history.len().saturating_sub(HISTORY_TURNS * 2);
        history.drain(..excess);
        Ok(BotAnswer {
            replies: text_reply(&text),
            context: Some(json!({"history": history})),
            ..BotAnswer::default()
        })
    }

    async fn assistant(&self, call: &BotCall<'_>, key: &str) -> Result<BotAnswer, BotError> {
        let assistant_id = param(call.bot, "assistantId")
            .ok_or_else(|| BotError::Config("assistantId is required".into()))?;
        let http = call.http;
        let auth =
            |r: reqwest::RequestBuilder| r.bearer_auth(key).header("OpenAI-Beta", "assistants=v2");
        let thread = match call.session.context.get("threadId").and_then(Value::as_str) {
            Some(id) => id.to_owned(),
            None => {
                let created = post_json(auth(http.post(self.url("/threads"))), &json!({})).await?;
                created
                    .get("id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| BotError::Malformed("thread without id".into()))?
            }
        };
        post_json(
            auth(http.post(self.url(&format!("/threads/{thread}/messages")))),
            &json!({"role": "user", "content": call.input}),
        )
        .await?;
        let run = post_json(
            auth(http.post(self.url(&format!("/threads/{thread}/runs")))),
            &json!({"assistant_id": assistant_id}),
        )
        .await?;
        let run_id = run
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| BotError::Malformed("run without id".into()))?;
        let mut polls = 0;
        loop {
            let run = get_json(auth(
                http.get(self.url(&format!("/threads/{thread}/runs/{run_id}"))),
            ))
            .await?;
            match run.get("status").and_then(Value::as_str) {
                Some("completed") => break,
                Some("requires_action") => {
                    let outputs = self.tool_outputs(call, &run).await?;
                    post_json(
                        auth(http.post(self.url(&format!(
                            "/threads/{thread}/runs/{run_id}/submit_tool_outputs"
                        )))),
                        &json!({"tool_outputs": outputs}),
                    )
                    .await?;
                }
                Some(s @ ("failed" | "cancelled" | "expired" | "incomplete")) => {
                    return Err(BotError::Malformed(format!("the assistant run {s}")));
                }
                _ => {}
            }
            polls += 1;
            if polls >= self.max_polls {
                return Err(BotError::Timeout(
                    self.poll_interval.saturating_mul(self.max_polls),
                ));
            }
            tokio::time::sleep(self.poll_interval).await;
        }
        let messages = get_json(auth(
            http.get(self.url(&format!("/threads/{thread}/messages?order=desc&limit=1"))),
        ))
        .await?;
        let text = Self::parse_thread_messages(&messages)?;
        Ok(BotAnswer {
            replies: text_reply(&text),
            session_id: Some(thread.clone()),
            context: Some(json!({"threadId": thread})),
            ..BotAnswer::default()
        })
    }

    /// Answers a run's tool calls through the bot's `functionUrl`.
    async fn tool_outputs(&self, call: &BotCall<'_>, run: &Value) -> Result<Vec<Value>, BotError> {
        let calls = run
            .pointer("/required_action/submit_tool_outputs/tool_calls")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let function_url = param(call.bot, "functionUrl");
        let mut outputs = Vec::new();
        for tool in calls {
            let id = tool.get("id").and_then(Value::as_str).unwrap_or_default();
            let name = tool
                .pointer("/function/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let mut args = tool
                .pointer("/function/arguments")
                .and_then(Value::as_str)
                .and_then(|a| serde_json::from_str::<Value>(a).ok())
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({}));
            args["remoteJid"] = json!(call.session.remote_jid);
            args["pushName"] = json!(call.push_name);
            let output = match function_url {
                Some(url) => {
                    let answer = post_json(
                        call.http.post(url),
                        &json!({"functionName": name, "functionArguments": args}),
                    )
                    .await?;
                    match answer {
                        Value::String(s) => s,
                        other => other.to_string(),
                    }
                }
                None => return Err(BotError::Config("functionUrl is required".into())),
            };
            outputs.push(json!({"tool_call_id": id, "output": output}));
        }
        Ok(outputs)
    }
}

impl BotKind for OpenAiBot {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn call<'a>(&'a self, call: BotCall<'a>) -> BoxFuture<'a, Result<BotAnswer, BotError>> {
        Box::pin(async move {
            let key = param(call.bot, "openaiApiKey")
                .ok_or_else(|| BotError::Config("the OpenAI credentials are missing".into()))?
                .to_owned();
            match param(call.bot, "botType") {
                Some("assistant") => self.assistant(&call, &key).await,
                Some("chatCompletion") => self.chat_completion(&call, &key).await,
                other => Err(BotError::Config(format!("unknown botType {other:?}"))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_answers() {
        let c = json!({"choices": [{"message": {"role": "assistant", "content": "hi"}}]});
        assert_eq!(OpenAiBot::parse_completion(&c).unwrap(), "hi");
        assert!(OpenAiBot::parse_completion(&json!({"choices": []})).is_err());
        let m = json!({"data": [{"content": [{"type": "text", "text": {"value": "yo", "annotations": []}}]}]});
        assert_eq!(OpenAiBot::parse_thread_messages(&m).unwrap(), "yo");
        assert!(OpenAiBot::parse_thread_messages(&json!({"data": []})).is_err());
    }
}
