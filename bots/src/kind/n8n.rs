//! n8n: `POST <webhookUrl>` (an n8n Webhook node) with the message, session id and contact;
//! the answer's `output`, else `answer`, is the reply. Basic auth when `basicAuthUser` and
//! `basicAuthPass` are set.

use serde_json::{Value, json};

use super::{BotAnswer, BotCall, BotError, BotKind, Reply, param, post_json};
use crate::BoxFuture;

#[derive(Debug, Default, Clone, Copy)]
pub struct N8nBot;

impl BotKind for N8nBot {
    fn name(&self) -> &'static str {
        "n8n"
    }

    fn call<'a>(&'a self, call: BotCall<'a>) -> BoxFuture<'a, Result<BotAnswer, BotError>> {
        Box::pin(async move {
            let url = param(call.bot, "webhookUrl")
                .ok_or_else(|| BotError::Config("webhookUrl is required".into()))?;
            let body = json!({
                "chatInput": call.input,
                "sessionId": call.session.session_id,
                "remoteJid": call.session.remote_jid,
                "pushName": call.push_name,
                "keyId": call.key_id,
                "fromMe": call.from_me,
                "instanceName": call.instance.instance_name,
                "serverUrl": call.instance.server_url,
                "apiKey": call.instance.api_key,
            });
            let mut request = call.http.post(url);
            if let (Some(user), Some(pass)) = (
                param(call.bot, "basicAuthUser"),
                param(call.bot, "basicAuthPass"),
            ) {
                request = request.basic_auth(user, Some(pass));
            }
            let answer = post_json(request, &body).await?;
            Self::parse_answer(&answer)
        })
    }
}

impl N8nBot {
    /// Reads the bot server's JSON answer (public for the fuzz target).
    pub fn parse_answer(answer: &Value) -> Result<BotAnswer, BotError> {
        // "Respond to Webhook" with "All incoming items" answers an array of items: use the first.
        let item = match answer {
            Value::Array(items) => items.first().unwrap_or(&Value::Null),
            other => other,
        };
        let Some(object) = item.as_object() else {
            return Err(BotError::Malformed(
                "the answer is not a JSON object".into(),
            ));
        };
        let text = match (object.get("output"), object.get("answer")) {
            (Some(Value::String(s)), _) => Some(s.as_str()),
            (Some(Value::Null) | None, Some(Value::String(s))) => Some(s.as_str()),
            (Some(Value::Null) | None, Some(Value::Null) | None) => None,
            _ => {
                return Err(BotError::Malformed(
                    "`output`/`answer` is not a string".into(),
                ));
            }
        };
        Ok(BotAnswer {
            replies: text
                .filter(|t| !t.is_empty())
                .map(|t| Reply::Text {
                    text: t.to_owned(),
                    link_preview: true,
                })
                .into_iter()
                .collect(),
            ..BotAnswer::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &Value) -> Result<BotAnswer, BotError> {
        N8nBot::parse_answer(v)
    }

    #[test]
    fn output_then_answer() {
        let text = |v: Value| {
            parse(&v).ok().and_then(|a| match a.replies.first() {
                Some(Reply::Text { text, .. }) => Some(text.clone()),
                _ => None,
            })
        };
        assert_eq!(
            text(json!({"output": "a", "answer": "b"})),
            Some("a".into())
        );
        assert_eq!(text(json!({"answer": "b"})), Some("b".into()));
        assert_eq!(text(json!([{"output": "c"}])), Some("c".into()));
        assert_eq!(text(json!({})), None);
        assert!(parse(&json!("str")).is_err());
        assert!(parse(&json!({"output": {"x": 1}})).is_err());
    }
}
