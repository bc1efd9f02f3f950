//! Evolution Bot: a generic webhook. `POST <apiUrl>` with the message and session; the answer's
//! `message` is the reply (one layer of surrounding single quotes stripped, as Evolution does),
//! `linkPreview` (default true) whether to preview links.

use serde_json::{Value, json};

use super::{BotAnswer, BotCall, BotError, BotKind, Reply, param, post_json};
use crate::BoxFuture;

#[derive(Debug, Default, Clone, Copy)]
pub struct EvolutionBot;

impl BotKind for EvolutionBot {
    fn name(&self) -> &'static str {
        "evolution"
    }

    fn call<'a>(&'a self, call: BotCall<'a>) -> BoxFuture<'a, Result<BotAnswer, BotError>> {
        Box::pin(async move {
            let url = param(call.bot, "apiUrl")
                .ok_or_else(|| BotError::Config("apiUrl is required".into()))?;
            let mut body = json!({
                "inputs": {
                    "sessionId": call.session.session_id,
                    "remoteJid": call.session.remote_jid,
                    "pushName": call.push_name,
                    "fromMe": call.from_me,
                    "instanceName": call.instance.instance_name,
                    "serverUrl": call.instance.server_url,
                    "apiKey": call.instance.api_key,
                },
                "query": call.input,
                "conversation_id": call.session.session_id,
                "user": call.session.remote_jid,
            });
            if let Some(url) = call.media_url {
                body["files"] = json!([{ "type": "image", "url": url }]);
            }
            let mut request = call.http.post(url);
            if let Some(key) = param(call.bot, "apiKey") {
                request = request.bearer_auth(key);
            }
            let answer = post_json(request, &body).await?;
            Self::parse_answer(&answer)
        })
    }
}

impl EvolutionBot {
    /// Reads the bot server's JSON answer (public for the fuzz target).
    pub fn parse_answer(answer: &Value) -> Result<BotAnswer, BotError> {
        let Some(object) = answer.as_object() else {
            return Err(BotError::Malformed(
                "the answer is not a JSON object".into(),
            ));
        };
        let link_preview = object
            .get("linkPreview")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let replies = match object.get("message") {
            Some(Value::String(message)) => {
                let text = message
                    .strip_prefix('\'')
                    .and_then(|m| m.strip_suffix('\''))
                    .unwrap_or(message);
                if text.is_empty() {
                    Vec::new()
                } else {
                    vec![Reply::Text {
                        text: text.to_owned(),
                        link_preview,
                    }]
                }
            }
            // Evolution sends nothing when `message` is absent.
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return Err(BotError::Malformed("`message` is not a string".into())),
        };
        Ok(BotAnswer {
            replies,
            ..BotAnswer::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &Value) -> Result<BotAnswer, BotError> {
        EvolutionBot::parse_answer(v)
    }

    #[test]
    fn strips_one_layer_of_quotes() {
        let a = parse(&json!({"message": "'hi'"})).ok();
        assert_eq!(
            a.map(|a| a.replies),
            Some(vec![Reply::Text {
                text: "hi".into(),
                link_preview: true
            }])
        );
        let a = parse(&json!({"message": "''x''", "linkPreview": false})).ok();
        assert_eq!(
            a.map(|a| a.replies),
            Some(vec![Reply::Text {
                text: "'x'".into(),
                link_preview: false
            }])
        );
        assert!(parse(&json!([1])).is_err());
        assert!(parse(&json!({"message": 5})).is_err());
        assert_eq!(parse(&json!({})).ok().map(|a| a.replies.len()), Some(0));
    }
}
