//! The in-memory node model (`Node`, `Attrs`, `AttrValue`, `Content`), its accessors and its
//! XML-like rendering for logs.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;

use crate::jid::Jid;

/// Strings in nodes are usually dictionary tokens, so decoding borrows the static token table
/// instead of allocating.
pub type Str = Cow<'static, str>;

/// An attribute value: decoders see either a string or a JID, depending on how the peer
/// encoded it, and must accept both (see `Node::attr_jid`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum AttrValue {
    Str(Str),
    Jid(Jid),
}

impl AttrValue {
    /// The value if it was a string on the wire (JID values are not rendered here; use
    /// `to_string()` for that).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(s) => Some(s),
            AttrValue::Jid(_) => None,
        }
    }

    /// The value as a JID, parsing it if it came as a string.
    pub fn to_jid(&self) -> Option<Jid> {
        match self {
            AttrValue::Jid(j) => Some(j.clone()),
            AttrValue::Str(s) => s.parse().ok(),
        }
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Str(s) => f.write_str(s),
            AttrValue::Jid(j) => j.fmt(f),
        }
    }
}

impl fmt::Debug for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Str(s) => write!(f, "{s:?}"),
            AttrValue::Jid(j) => write!(f, "J({j})"),
        }
    }
}

impl From<&'static str> for AttrValue {
    fn from(s: &'static str) -> Self {
        AttrValue::Str(Cow::Borrowed(s))
    }
}

impl From<String> for AttrValue {
    fn from(s: String) -> Self {
        AttrValue::Str(Cow::Owned(s))
    }
}

impl From<Jid> for AttrValue {
    fn from(j: Jid) -> Self {
        AttrValue::Jid(j)
    }
}

impl From<&Jid> for AttrValue {
    fn from(j: &Jid) -> Self {
        AttrValue::Jid(j.clone())
    }
}

/// Attributes in wire order (order matters for byte-identical re-encoding). Lookups return the
/// first match; nodes have a handful of attributes, so a linear scan beats a map.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Attrs(pub Vec<(Str, AttrValue)>);

impl Attrs {
    pub fn new() -> Attrs {
        Attrs(Vec::new())
    }

    pub fn get(&self, key: &str) -> Option<&AttrValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Appends `key=value` (no de-duplication: the caller builds each node once).
    pub fn push(&mut self, key: impl Into<Str>, value: impl Into<AttrValue>) {
        self.0.push((key.into(), value.into()));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &AttrValue)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Attrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

/// Node content. Raw bytes are only ever written as BINARY_8/20/32, and every BINARY_* content
/// decodes as `Bytes`; tokens, packed strings and JIDs decode as `Str`/`Jid`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Content {
    #[default]
    None,
    Nodes(Vec<Node>),
    Bytes(Bytes),
    Str(Str),
    Jid(Jid),
}

/// One stanza element.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Node {
    pub tag: Str,
    pub attrs: Attrs,
    pub content: Content,
}

impl Node {
    pub fn new(tag: impl Into<Str>) -> Node {
        Node {
            tag: tag.into(),
            attrs: Attrs::new(),
            content: Content::None,
        }
    }

    /// Builder: appends an attribute.
    pub fn attr(mut self, key: impl Into<Str>, value: impl Into<AttrValue>) -> Node {
        self.attrs.push(key, value);
        self
    }

    /// Builder: sets child nodes.
    pub fn children(mut self, children: Vec<Node>) -> Node {
        self.content = Content::Nodes(children);
        self
    }

    /// Builder: sets raw byte content.
    pub fn bytes(mut self, bytes: impl Into<Bytes>) -> Node {
        self.content = Content::Bytes(bytes.into());
        self
    }

    /// Builder: sets string content (written as a token/packed/JID when possible, so it may come
    /// back as `Bytes` after a round trip if none applies).
    pub fn text(mut self, text: impl Into<Str>) -> Node {
        self.content = Content::Str(text.into());
        self
    }

    pub fn get_attr(&self, key: &str) -> Option<&AttrValue> {
        self.attrs.get(key)
    }

    /// An attribute that was sent as a string.
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).and_then(AttrValue::as_str)
    }

    /// An attribute as a JID, whether it was JID-encoded or sent as a string.
    pub fn attr_jid(&self, key: &str) -> Option<Jid> {
        self.attrs.get(key).and_then(AttrValue::to_jid)
    }

    /// Child nodes, or an empty slice if the content is not a list.
    pub fn child_nodes(&self) -> &[Node] {
        match &self.content {
            Content::Nodes(n) => n,
            _ => &[],
        }
    }

    /// The first child with this tag.
    pub fn child(&self, tag: &str) -> Option<&Node> {
        self.child_nodes().iter().find(|n| n.tag == tag)
    }

    /// Every child with this tag.
    pub fn children_by_tag<'a>(&'a self, tag: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.child_nodes().iter().filter(move |n| n.tag == tag)
    }

    /// Raw byte content (BINARY_* on the wire).
    pub fn content_bytes(&self) -> Option<&Bytes> {
        match &self.content {
            Content::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// Content as text: a decoded string, or UTF-8 bytes.
    pub fn content_str(&self) -> Option<&str> {
        match &self.content {
            Content::Str(s) => Some(s),
            Content::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }
}

fn write_escaped(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    for c in s.chars() {
        match c {
            '"' => f.write_str("&quot;")?,
            '<' => f.write_str("&lt;")?,
            '>' => f.write_str("&gt;")?,
            '&' => f.write_str("&amp;")?,
            c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    Ok(())
}

/// Long binary payloads are elided in logs; the length is what matters there.
const MAX_LOGGED_BYTES: usize = 64;

impl Node {
    fn fmt_xml(&self, f: &mut fmt::Formatter<'_>, indent: usize) -> fmt::Result {
        let pad = if f.alternate() { indent * 2 } else { 0 };
        write!(f, "{:pad$}<", "")?;
        write_escaped(f, &self.tag)?;
        for (k, v) in self.attrs.iter() {
            write!(f, " {k}=")?;
            match v {
                AttrValue::Str(s) => {
                    f.write_str("\"")?;
                    write_escaped(f, s)?;
                    f.write_str("\"")?;
                }
                AttrValue::Jid(j) => {
                    f.write_str("J(")?;
                    write_escaped(f, &j.to_string())?;
                    f.write_str(")")?;
                }
            }
        }
        match &self.content {
            Content::None => return f.write_str("/>"),
            Content::Nodes(children) => {
                f.write_str(">")?;
                for c in children {
                    if f.alternate() {
                        f.write_str("\n")?;
                    }
                    c.fmt_xml(f, indent + 1)?;
                }
                if f.alternate() && !children.is_empty() {
                    write!(f, "\n{:pad$}", "")?;
                }
            }
            Content::Str(s) => {
                f.write_str(">")?;
                write_escaped(f, s)?;
            }
            Content::Jid(j) => write!(f, ">J({j})")?,
            Content::Bytes(b) => {
                f.write_str(">")?;
                match std::str::from_utf8(b) {
                    Ok(s) if s.len() <= MAX_LOGGED_BYTES && !s.chars().any(char::is_control) => {
                        write_escaped(f, s)?
                    }
                    _ if b.len() <= MAX_LOGGED_BYTES => {
                        write!(f, "<!-- hex {} -->", hex::encode(b))?
                    }
                    _ => write!(
                        f,
                        "<!-- {} bytes, hex {}… -->",
                        b.len(),
                        hex::encode(&b[..MAX_LOGGED_BYTES])
                    )?,
                }
            }
        }
        f.write_str("</")?;
        write_escaped(f, &self.tag)?;
        f.write_str(">")
    }
}

/// XML-like, one line; `{:#}` indents children. JID values are shown as `J(...)`.
impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_xml(f, 0)
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_xml(f, 0)
    }
}
