//! A small re-creation of the parts of the `jsonschema` npm package that Evolution's schemas use,
//! so that 400 bodies carry the same texts (§1.4).
//!
//! Each route writes its checks imperatively with [`Check`], in the order of the keys of the
//! original schema object, because jsonschema reports errors in keyword order: `properties`
//! (in property order, each with `type`, `enum`, `pattern`, `minItems`, `uniqueItems`, `items`),
//! then `required`, then the `if/then` of `isNotEmpty`.
//!
//! Message rules (`dataValidate`): if the failing sub-schema has a `description`, that is the
//! message; otherwise it is the jsonschema stack `"<path> <text>"` with the first `instance.`
//! removed. The root path is `instance`, so a missing top-level key reads
//! `instance requires property "x"`.

use serde_json::{Map, Value};

/// JSON-schema primitive types, named as jsonschema prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    String,
    Boolean,
    Integer,
    Number,
    Object,
    Array,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::String => "string",
            Ty::Boolean => "boolean",
            Ty::Integer => "integer",
            Ty::Number => "number",
            Ty::Object => "object",
            Ty::Array => "array",
        }
    }

    fn matches(self, v: &Value) -> bool {
        match self {
            Ty::String => v.is_string(),
            Ty::Boolean => v.is_boolean(),
            Ty::Integer => is_integer(v),
            Ty::Number => v.is_number(),
            Ty::Object => v.is_object(),
            Ty::Array => v.is_array(),
        }
    }
}

/// JS has no integer type: `1.0` is an integer to jsonschema.
fn is_integer(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

/// A pattern as written in the schema (for messages) and a matcher for it (no regex engine here).
pub(crate) type Pattern<'a> = (&'a str, fn(&str) -> bool);

/// A property's rules beyond its type.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Rules<'a> {
    pub description: Option<&'a str>,
    pub enum_values: Option<&'a [&'a str]>,
    pub pattern: Option<Pattern<'a>>,
    pub min_length: Option<usize>,
    pub min_items: Option<usize>,
    pub max_items: Option<usize>,
    pub unique_items: bool,
    /// `enum: [true, false]` next to `type: 'boolean'`.
    pub bool_enum: bool,
}

impl<'a> Rules<'a> {
    pub const NONE: Rules<'static> = Rules {
        description: None,
        enum_values: None,
        pattern: None,
        min_length: None,
        min_items: None,
        max_items: None,
        unique_items: false,
        bool_enum: false,
    };

    pub const BOOL_ENUM: Rules<'static> = Rules {
        bool_enum: true,
        ..Rules::NONE
    };

    pub fn described(description: &'a str) -> Self {
        Rules {
            description: Some(description),
            ..Rules::NONE
        }
    }
}

/// Collects the error messages of one validation run over one object.
#[derive(Debug)]
pub(crate) struct Check<'v> {
    path: String,
    object: Option<&'v Map<String, Value>>,
    errors: Vec<String>,
    /// The path of each error in `errors` (the group routes report it as `property`).
    props: Vec<String>,
}

impl<'v> Check<'v> {
    /// Validation of a request body (an object; anything else has no properties to check).
    pub fn root(body: &'v Value) -> Self {
        Self {
            path: "instance".to_owned(),
            object: body.as_object(),
            errors: Vec::new(),
            props: Vec::new(),
        }
    }

    pub fn finish(self) -> Vec<String> {
        self.errors
    }

    /// The errors with their properties, as the group routes report them: the path without the
    /// root's `instance.` (`instance` itself for the root's own errors, such as `required`).
    pub fn finish_properties(self) -> Vec<crate::error::PropertyError> {
        self.props
            .into_iter()
            .zip(self.errors)
            .map(|(path, message)| crate::error::PropertyError {
                property: path
                    .strip_prefix("instance.")
                    .map_or(path.clone(), str::to_owned),
                message,
            })
            .collect()
    }

    /// Attributes the errors added since the last call to `path`.
    fn tag(&mut self, path: &str) {
        while self.props.len() < self.errors.len() {
            self.props.push(path.to_owned());
        }
    }

    pub fn get(&self, key: &str) -> Option<&'v Value> {
        self.object.and_then(|o| o.get(key))
    }

    fn child_path(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    fn push(&mut self, path: &str, text: &str, description: Option<&str>) {
        self.errors.push(message(path, text, description));
        self.tag(path);
    }

    /// Checks `key` against `ty` and `rules` if present (jsonschema skips absent properties).
    /// Returns the value when it has the right type.
    pub fn prop(&mut self, key: &str, ty: Ty, rules: Rules<'_>) -> Option<&'v Value> {
        let value = self.get(key)?;
        let path = self.child_path(key);
        let errors_before = self.errors.len();
        check_value(&mut self.errors, &path, value, ty, &rules);
        self.tag(&path);
        (self.errors.len() == errors_before).then_some(value)
    }

    /// Checks an array property whose items are strings with `item_rules`.
    pub fn string_array(
        &mut self,
        key: &str,
        rules: Rules<'_>,
        item_rules: Rules<'_>,
    ) -> Option<&'v Vec<Value>> {
        let value = self.get(key)?;
        let path = self.child_path(key);
        let errors_before = self.errors.len();
        check_value(&mut self.errors, &path, value, Ty::Array, &rules);
        self.tag(&path);
        if let Some(items) = value.as_array() {
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                check_value(&mut self.errors, &item_path, item, Ty::String, &item_rules);
                self.tag(&item_path);
            }
        }
        if self.errors.len() == errors_before {
            value.as_array()
        } else {
            None
        }
    }

    /// Checks a nested object property, then runs `nested` over it.
    pub fn object(&mut self, key: &str, rules: Rules<'_>, nested: impl FnOnce(&mut Check<'v>)) {
        let Some(value) = self.get(key) else { return };
        let path = self.child_path(key);
        check_value(&mut self.errors, &path, value, Ty::Object, &rules);
        self.tag(&path);
        if let Some(object) = value.as_object() {
            self.nested(path, object, nested);
        }
    }

    /// Descends into `key` when it is an object, without a `type` check (schemas such as
    /// `quoted` declare `properties` but no `type`).
    pub fn untyped_object(&mut self, key: &str, nested: impl FnOnce(&mut Check<'v>)) {
        if let Some(object) = self.get(key).and_then(Value::as_object) {
            let path = self.child_path(key);
            self.nested(path, object, nested);
        }
    }

    /// Checks an array of objects, running `nested` over each object item.
    pub fn object_array(
        &mut self,
        key: &str,
        rules: Rules<'_>,
        mut nested: impl FnMut(&mut Check<'v>),
    ) {
        let Some(value) = self.get(key) else { return };
        let path = self.child_path(key);
        check_value(&mut self.errors, &path, value, Ty::Array, &rules);
        self.tag(&path);
        if let Some(items) = value.as_array() {
            for (i, item) in items.iter().enumerate() {
                // Evolution's item schemas have no `type`, so a non-object item is only checked
                // by `required`, which jsonschema skips for non-objects.
                if let Some(object) = item.as_object() {
                    self.nested(format!("{path}[{i}]"), object, &mut nested);
                }
            }
        }
    }

    fn nested(
        &mut self,
        path: String,
        object: &'v Map<String, Value>,
        nested: impl FnOnce(&mut Check<'v>),
    ) {
        let mut inner = Check {
            path,
            object: Some(object),
            errors: Vec::new(),
            props: Vec::new(),
        };
        nested(&mut inner);
        self.errors.append(&mut inner.errors);
        self.props.append(&mut inner.props);
    }

    /// A rule the schema helpers do not model (a numeric `enum`), reported on `key`.
    pub fn error_at(&mut self, key: &str, text: &str) {
        let path = self.child_path(key);
        self.push(&path, text, None);
    }

    /// `required: [...]`.
    pub fn required(&mut self, keys: &[&str]) {
        if self.object.is_none() {
            return;
        }
        let path = self.path.clone();
        for key in keys {
            if self.get(key).is_none() {
                self.push(&path, &format!("requires property \"{key}\""), None);
            }
        }
    }

    /// Evolution's `isNotEmpty(...names)`: `if: {propertyNames: {enum: names}}` then `minLength: 1`
    /// with the description `The "x" cannot be empty`. The `if` only holds when *every* key of the
    /// object is one of `names`, so the check rarely fires; that is replicated.
    pub fn not_empty(&mut self, names: &[&str]) {
        if !self.only_keys(names) {
            return;
        }
        for name in names {
            let description = format!("The \"{name}\" cannot be empty");
            if let Some(value) = self.get(name) {
                let rules = Rules {
                    description: Some(&description),
                    min_length: Some(1),
                    ..Rules::NONE
                };
                let path = self.child_path(name);
                min_length_only(&mut self.errors, &path, value, &rules);
                self.tag(&path);
            }
        }
    }

    /// `if: {propertyNames: {enum: names}}`: true when every key of the object is in `names`
    /// (vacuously true for `{}`).
    pub fn only_keys(&self, names: &[&str]) -> bool {
        self.object
            .is_some_and(|o| o.keys().all(|k| names.contains(&k.as_str())))
    }
}

fn check_value(errors: &mut Vec<String>, path: &str, value: &Value, ty: Ty, rules: &Rules<'_>) {
    let d = rules.description;
    if !ty.matches(value) {
        errors.push(message(
            path,
            &format!("is not of a type(s) {}", ty.name()),
            d,
        ));
    }
    if let Some(allowed) = rules.enum_values
        && !value.as_str().is_some_and(|s| allowed.contains(&s))
    {
        let text = format!("is not one of enum values: {}", allowed.join(","));
        errors.push(message(path, &text, d));
    }
    if let (Some(min), Some(s)) = (rules.min_length, value.as_str())
        && s.encode_utf16().count() < min
    {
        errors.push(message(
            path,
            &format!("does not meet minimum length of {min}"),
            d,
        ));
    }
    if rules.bool_enum && !value.is_boolean() {
        errors.push(message(path, "is not one of enum values: true,false", d));
    }
    if let (Some((pattern, matcher)), Some(s)) = (rules.pattern, value.as_str())
        && !matcher(s)
    {
        // jsonschema prints the pattern through JSON.stringify, doubling backslashes.
        let quoted = Value::String(pattern.to_owned()).to_string();
        errors.push(message(
            path,
            &format!("does not match pattern {quoted}"),
            d,
        ));
    }
    if let Some(items) = value.as_array() {
        if let Some(min) = rules.min_items
            && items.len() < min
        {
            errors.push(message(
                path,
                &format!("does not meet minimum length of {min}"),
                d,
            ));
        }
        if let Some(max) = rules.max_items
            && items.len() > max
        {
            errors.push(message(
                path,
                &format!("does not meet maximum length of {max}"),
                d,
            ));
        }
        if rules.unique_items && has_duplicates(items) {
            errors.push(message(path, "contains duplicate item", d));
        }
    }
}

/// The `then` branch of `isNotEmpty` declares only `minLength`, not `type`.
fn min_length_only(errors: &mut Vec<String>, path: &str, value: &Value, rules: &Rules<'_>) {
    if let (Some(min), Some(s)) = (rules.min_length, value.as_str())
        && s.encode_utf16().count() < min
    {
        let text = format!("does not meet minimum length of {min}");
        errors.push(message(path, &text, rules.description));
    }
}

/// jsonschema's `uniqueItems`. Hashing the canonical text (serde_json maps are sorted) keeps this
/// linear; a pairwise comparison would be quadratic on a 136 MB body.
fn has_duplicates(items: &[Value]) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    items.iter().any(|item| !seen.insert(item.to_string()))
}

fn message(path: &str, text: &str, description: Option<&str>) -> String {
    match description {
        Some(d) => d.to_owned(),
        None => format!("{path} {text}").replacen("instance.", "", 1),
    }
}

/// `^\d+` (mentioned, statusJidList items).
pub(crate) fn starts_with_digit(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_digit())
}

/// `^\d+[\.@\w-]+` (create's `number`): one or more digits, then at least one of `[.@A-Za-z0-9_-]`.
/// Unanchored at the end, so only a prefix must match.
pub(crate) fn digits_then_word(s: &str) -> bool {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return false;
    }
    let word = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'@' | b'_' | b'-');
    // Backtracking: `\d+` may give back digits to `[\.@\w-]+`, since `\w` includes digits.
    digits >= 2 || s.as_bytes().get(digits).is_some_and(|b| word(*b))
}
