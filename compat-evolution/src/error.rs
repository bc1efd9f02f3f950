//! Evolution's error bodies (contract §1.4).
//!
//! Every exception in Evolution is a plain object `{status, error, message}` that the final Express
//! handler wraps as `{status, error, response: {message}}`. The *shape* of `message` differs by
//! exception and by the router helper that raised it, and clients match on those shapes, so each
//! shape is a distinct [`ErrorMessage`] variant rather than a free-form JSON value.

use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};
use serde_json::Value;

/// The JSON body of every Evolution error response, and its HTTP status.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[error("{status} {error}")]
pub struct ErrorEnvelope {
    pub status: u16,
    pub error: String,
    pub response: ErrorResponse,
}

/// The `response` wrapper of [`ErrorEnvelope`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorResponse {
    pub message: ErrorMessage,
}

/// What `response.message` holds.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorMessage {
    /// A plain string: 401 `"Unauthorized"`, thrown JS `Error`s, body-parser errors.
    Text(String),
    /// `XxxException(...args)` with string arguments: `["a", "b"]`.
    List(Vec<String>),
    /// `dataValidate` schema failures: `BadRequestException(messages)` receives one array
    /// argument, so the output is nested: `[["a", "b"]]`.
    Validation(Vec<String>),
    /// Group-route schema failures: `[{property, message}, ...]`.
    Properties(Vec<PropertyError>),
    /// `XxxException(...objects)` with object arguments, e.g. the number lookup of a send to a
    /// number that is not on WhatsApp (§3.3 step 2).
    Objects(Vec<Value>),
}

impl Serialize for ErrorMessage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ErrorMessage::Text(text) => s.serialize_str(text),
            ErrorMessage::List(items) => items.serialize(s),
            ErrorMessage::Validation(items) => {
                let mut seq = s.serialize_seq(Some(1))?;
                seq.serialize_element(items)?;
                seq.end()
            }
            ErrorMessage::Properties(items) => items.serialize(s),
            ErrorMessage::Objects(items) => items.serialize(s),
        }
    }
}

/// One entry of a group-route validation failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PropertyError {
    pub property: String,
    pub message: String,
}

pub(crate) const BAD_REQUEST: &str = "Bad Request";
pub(crate) const INTERNAL: &str = "Internal Server Error";

impl ErrorEnvelope {
    fn new(status: u16, error: &str, message: ErrorMessage) -> Self {
        Self {
            status,
            error: error.to_owned(),
            response: ErrorResponse { message },
        }
    }

    /// `BadRequestException(...messages)`: 400 with a flat array of strings.
    pub fn bad_request<I, S>(messages: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(400, BAD_REQUEST, ErrorMessage::List(collect(messages)))
    }

    /// A `dataValidate` schema failure: 400 with a nested array `[[...]]`.
    pub fn validation(messages: Vec<String>) -> Self {
        Self::new(400, BAD_REQUEST, ErrorMessage::Validation(messages))
    }

    /// A group-route schema failure: 400 with `[{property, message}, ...]`.
    pub fn validation_properties(errors: Vec<PropertyError>) -> Self {
        Self::new(400, BAD_REQUEST, ErrorMessage::Properties(errors))
    }

    /// `BadRequestException(...objects)`: 400 with an array of JSON objects.
    pub fn bad_request_objects(objects: Vec<Value>) -> Self {
        Self::new(400, BAD_REQUEST, ErrorMessage::Objects(objects))
    }

    /// `UnauthorizedException()`: the message is the *string* `"Unauthorized"` (§11 #2).
    pub fn unauthorized() -> Self {
        Self::new(
            401,
            "Unauthorized",
            ErrorMessage::Text("Unauthorized".to_owned()),
        )
    }

    /// `ForbiddenException(...messages)`.
    pub fn forbidden<I, S>(messages: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(403, "Forbidden", ErrorMessage::List(collect(messages)))
    }

    /// `NotFoundException(...messages)`.
    pub fn not_found<I, S>(messages: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(404, "Not Found", ErrorMessage::List(collect(messages)))
    }

    /// 409 with a flat array of strings (zapin's own routes: a conflicting operation is running).
    pub fn conflict<I, S>(messages: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(409, "Conflict", ErrorMessage::List(collect(messages)))
    }

    /// 429 with a flat array of strings (zapin's quotas: `Quota exceeded: …`).
    pub fn too_many_requests<I, S>(messages: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(
            429,
            "Too Many Requests",
            ErrorMessage::List(collect(messages)),
        )
    }

    /// 503 with a flat array of strings: the server is shutting down or not ready.
    pub fn unavailable<I, S>(messages: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(
            503,
            "Service Unavailable",
            ErrorMessage::List(collect(messages)),
        )
    }

    /// `InternalServerErrorException(...messages)`.
    pub fn internal<I, S>(messages: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(500, INTERNAL, ErrorMessage::List(collect(messages)))
    }

    /// A plain JS `throw new Error(text)`: 500 with a string message.
    pub fn internal_text(text: impl Into<String>) -> Self {
        Self::new(500, INTERNAL, ErrorMessage::Text(text.into()))
    }

    /// A body-parser error (bad JSON: 400, too large: 413). Those errors carry no `error` field,
    /// so the handler's fallback `"Internal Server Error"` shows up even on a 400.
    pub fn body_parser(status: u16, message: impl Into<String>) -> Self {
        Self::new(status, INTERNAL, ErrorMessage::Text(message.into()))
    }

    /// The instance-exists guard (§1.3): 404 `The "x" instance does not exist`.
    pub fn instance_not_found(instance_name: &str) -> Self {
        Self::not_found([format!("The \"{instance_name}\" instance does not exist")])
    }

    /// The duplicate-name guard on create (§1.3): 403 `This name "x" is already in use.`.
    pub fn name_in_use(instance_name: &str) -> Self {
        Self::forbidden([format!("This name \"{instance_name}\" is already in use.")])
    }

    /// The guard's missing path parameter: 400 `"instanceName" not provided.`.
    pub fn instance_name_not_provided() -> Self {
        Self::bad_request(["\"instanceName\" not provided."])
    }

    /// Logout of a closed instance (§3.1): 400 `The "x" instance is not connected`.
    pub fn instance_not_connected(instance_name: &str) -> Self {
        Self::bad_request([format!("The \"{instance_name}\" instance is not connected")])
    }

    /// Express's unmatched route: 404 `Cannot <METHOD> <path?query>`.
    pub fn cannot_route(method: &str, path_and_query: &str) -> Self {
        Self::not_found([format!(
            "Cannot {} {path_and_query}",
            method.to_ascii_uppercase()
        )])
    }

    /// The body of `/chat/whatsappNumbers` errors: the thrown object itself, without the
    /// `response` wrapper (§1.4, §11 #4).
    pub fn into_raw(self) -> RawErrorBody {
        RawErrorBody {
            status: self.status,
            error: self.error,
            message: self.response.message,
        }
    }
}

fn collect<I, S>(messages: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    messages.into_iter().map(Into::into).collect()
}

/// `{status, error, message}`: an exception object serialised as-is (whatsappNumbers only).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RawErrorBody {
    pub status: u16,
    pub error: String,
    pub message: ErrorMessage,
}

/// The HTTP 200 `{"error":true,"message":…}` body with which `/instance/connect` and
/// `/instance/restart` report failures (§1.4, §11 #5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectErrorBody {
    pub error: bool,
    pub message: String,
}

impl ConnectErrorBody {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            error: true,
            message: message.into(),
        }
    }

    /// What Evolution actually sends when the thrown value was an exception object: JS
    /// `String(obj)`. Kept because clients may compare against it.
    pub fn object_object() -> Self {
        Self::new("[object Object]")
    }
}
