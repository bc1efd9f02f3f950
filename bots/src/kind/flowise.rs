//! Flowise: its prediction API, `POST <apiUrl>` (`…/api/v1/prediction/<chatflowId>`) with
//! `{question, overrideConfig: {sessionId, vars}}`; the answer's `text` is the reply. Bearer
//! `apiKey` when set.

use serde_json::{Value, json};

use super::{BotAnswer, BotCall, BotError, BotKind, Reply, param, post_json};
use crate::BoxFuture;

#[derive(Debug, Default, Clone, Copy)]
pub struct FlowiseBot;

impl BotKind for FlowiseBot {
    fn name(&self) -> &'static str {
        "flowise"
    }

    fn call<'a>(&'a self, call: BotCall<'a>) -> BoxFuture<'a, Result<BotAnswer, BotError>> {
        Box::pin(async move {
            let url = param(call.bot, "apiUrl")
                .ok_or_else(|| BotError::Config("apiUrl is required".into()))?;
            let mut body = json!({
                "question": call.input,
                "overrideConfig": {
                    "sessionId": call.session.remote_jid,
                    "vars": {
                        "messageId": call.key_id,
                        "fromMe": call.from_me,
                        "remoteJid": call.session.remote_jid,
                        "pushName": call.push_name,
                        "instanceName": call.instance.instance_name,
                        "serverUrl": call.instance.server_url,
                        "apiKey": call.instance.api_key,
                    },
                },
            });
            if let Some(url) = call.media_url {
                body["uploads"] = json!([{"data": url, "type": "url", "name": "Flowise.png", "mime": "image/png"}]);
            }
            let mut request = call.http.post(url);
            if let Some(key) = param(call.bot, "apiKey") {
                request = request.bearer_auth(key);
            }
            Self::parse_answer(&post_json(request, &body).await?)
        })
    }
}

impl FlowiseBot {
    /// Reads the prediction answer (public for the fuzz target).
    pub fn parse_answer(answer: &Value) -> Result<BotAnswer, BotError> {
        let object = answer
            .as_object()
            .ok_or_else(|| BotError::Malformed("the answer is not a JSON object".into()))?;
        let text = match object.get("text") {
            Some(Value::String(s)) => s.as_str(),
            None | Some(Value::Null) => "",
            Some(_) => return Err(BotError::Malformed("`text` is not a string".into())),
        };
        Ok(BotAnswer {
            replies: text_replies(text),
            ..BotAnswer::default()
        })
    }
}

pub(crate) fn text_replies(text: &str) -> Vec<Reply> {
    if text.trim().is_empty() {
        return Vec::new();
    }
    vec![Reply::Text {
        text: text.to_owned(),
        link_preview: true,
    }]
}
