//! Trigger matching, only consulted when the contact has no session: Evolution's order
//! (`all`/`none` → advanced → keyword equals → regex → startsWith → endsWith → contains, first
//! hit wins among enabled bots, in configuration order) and its advanced filter syntax.

use regex::Regex;
use unicode_normalization::UnicodeNormalization;

use crate::config::{BotConfig, TriggerOperator, TriggerType};

/// The enabled bot whose trigger matches `content`, in Evolution's order.
pub fn find_bot_by_trigger<'a>(bots: &'a [BotConfig], content: &str) -> Option<&'a BotConfig> {
    let enabled = || bots.iter().filter(|b| b.enabled);
    let keyword = |op: TriggerOperator| {
        enabled().filter(move |b| {
            b.trigger.kind == TriggerType::Keyword && b.trigger.operator == Some(op)
        })
    };
    let value = |b: &BotConfig| b.trigger.value.clone().unwrap_or_default();

    if let Some(b) =
        enabled().find(|b| matches!(b.trigger.kind, TriggerType::All | TriggerType::None))
    {
        return Some(b);
    }
    if let Some(b) = enabled()
        .filter(|b| b.trigger.kind == TriggerType::Advanced)
        .find(|b| advanced_match(content, &value(b)))
    {
        return Some(b);
    }
    if let Some(b) = keyword(TriggerOperator::Equals).find(|b| value(b) == content) {
        return Some(b);
    }
    // A pattern that does not compile never matches (creation rejects it, see `validate`).
    if let Some(b) = keyword(TriggerOperator::Regex)
        .find(|b| Regex::new(&value(b)).is_ok_and(|re| re.is_match(content)))
    {
        return Some(b);
    }
    if let Some(b) = keyword(TriggerOperator::StartsWith).find(|b| content.starts_with(&value(b))) {
        return Some(b);
    }
    if let Some(b) = keyword(TriggerOperator::EndsWith).find(|b| content.ends_with(&value(b))) {
        return Some(b);
    }
    keyword(TriggerOperator::Contains).find(|b| content.contains(&value(b)))
}

/// Lower-cased, NFD-decomposed, combining accents (U+0300–U+036F) removed.
fn normalize(s: &str) -> String {
    s.nfd()
        .filter(|c| !('\u{0300}'..='\u{036f}').contains(c))
        .collect::<String>()
        .to_lowercase()
}

/// Evolution's advanced filter: space-separated `operator:v1,v2` items. Every distinct operator
/// must match (AND); one operator written several times matches if any occurrence does (OR);
/// within one occurrence every comma-separated value must match (AND). Operators: `contains`,
/// `notcontains`, `startswith`, `endswith`, `exact`; anything else never matches.
pub fn advanced_match(content: &str, query: &str) -> bool {
    // Operator → occurrences, in first-seen order (`split(' ')` keeps empty items, as JS does).
    let mut filters: Vec<(&str, Vec<&str>)> = Vec::new();
    for item in query.split(' ') {
        let (op, value) = item.split_once(':').unwrap_or((item, ""));
        match filters.iter_mut().find(|(o, _)| *o == op) {
            Some((_, values)) => values.push(value),
            None => filters.push((op, vec![value])),
        }
    }
    let text = normalize(content);
    filters.iter().all(|(op, occurrences)| {
        occurrences.iter().any(|occurrence| {
            occurrence.split(',').all(|v| {
                let v = normalize(v);
                match *op {
                    "contains" => text.contains(&v),
                    "notcontains" => !text.contains(&v),
                    "startswith" => text.starts_with(&v),
                    "endswith" => text.ends_with(&v),
                    "exact" => text == v,
                    _ => false,
                }
            })
        })
    })
}

/// Why a bot's trigger configuration is refused (Evolution's create/update rules).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    #[error(
        "You already have a bot with an \"All\" trigger, you cannot have more bots while it is active"
    )]
    SecondAll,
    #[error("Trigger operator and value are required")]
    KeywordIncomplete,
    #[error("Trigger already exists")]
    Duplicate,
    #[error("Trigger value is required")]
    AdvancedEmpty,
    #[error("Trigger regex does not compile: {0}")]
    BadRegex(String),
}

impl BotConfig {
    /// Checks this bot's trigger against the other bots of the same kind on the instance
    /// (`others` must not contain this bot).
    pub fn validate_trigger(&self, others: &[BotConfig]) -> Result<(), TriggerError> {
        let t = &self.trigger;
        match t.kind {
            TriggerType::All | TriggerType::None => {
                if self.enabled
                    && t.kind == TriggerType::All
                    && others
                        .iter()
                        .any(|o| o.enabled && o.trigger.kind == TriggerType::All)
                {
                    return Err(TriggerError::SecondAll);
                }
            }
            TriggerType::Keyword => {
                let (Some(op), Some(value)) = (t.operator, t.value.as_deref()) else {
                    return Err(TriggerError::KeywordIncomplete);
                };
                if value.is_empty() {
                    return Err(TriggerError::KeywordIncomplete);
                }
                if op == TriggerOperator::Regex {
                    Regex::new(value).map_err(|e| TriggerError::BadRegex(e.to_string()))?;
                }
                if others.iter().any(|o| {
                    o.trigger.kind == TriggerType::Keyword
                        && o.trigger.operator == Some(op)
                        && o.trigger.value.as_deref() == Some(value)
                }) {
                    return Err(TriggerError::Duplicate);
                }
            }
            TriggerType::Advanced => {
                let value = t.value.as_deref().unwrap_or_default();
                if value.is_empty() {
                    return Err(TriggerError::AdvancedEmpty);
                }
                if others.iter().any(|o| {
                    o.trigger.kind == TriggerType::Advanced
                        && o.trigger.value.as_deref() == Some(value)
                }) {
                    return Err(TriggerError::Duplicate);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BotSettings, Trigger};

    fn bot(id: &str, kind: TriggerType, op: Option<TriggerOperator>, value: &str) -> BotConfig {
        BotConfig {
            id: id.into(),
            enabled: true,
            description: None,
            trigger: Trigger {
                kind,
                operator: op,
                value: Some(value.into()),
            },
            settings: BotSettings::default(),
            params: serde_json::Value::Null,
        }
    }

    fn kw(id: &str, op: TriggerOperator, value: &str) -> BotConfig {
        bot(id, TriggerType::Keyword, Some(op), value)
    }

    #[test]
    fn evolution_order() {
        use TriggerOperator::{Contains, EndsWith, Equals, Regex, StartsWith};
        // Listed in the reverse of Evolution's order: the order of steps must win, not the list.
        let bots = vec![
            kw("contains", Contains, "ola"),
            kw("ends", EndsWith, "ola"),
            kw("starts", StartsWith, "ola"),
            kw("regex", Regex, "^o.a$"),
            kw("equals", Equals, "ola"),
            bot("adv", TriggerType::Advanced, None, "exact:olá"),
        ];
        let hit = |c: &str| find_bot_by_trigger(&bots, c).map(|b| b.id.as_str());
        assert_eq!(hit("ola"), Some("adv"));
        assert_eq!(hit("obb"), None);
        assert_eq!(hit("oza"), Some("regex"));
        assert_eq!(hit("ola amigo"), Some("starts"));
        assert_eq!(hit("diga ola"), Some("ends"));
        assert_eq!(hit("diga ola amigo"), Some("contains"));
        // Keyword operators are case-sensitive.
        assert_eq!(hit("DIGA OLA AMIGO"), None);

        let mut with_all = bots.clone();
        with_all.push(bot("none", TriggerType::None, None, ""));
        assert_eq!(
            find_bot_by_trigger(&with_all, "x").map(|b| &*b.id),
            Some("none")
        );
        if let Some(b) = with_all.last_mut() {
            b.enabled = false;
        }
        assert!(find_bot_by_trigger(&with_all, "x").is_none());
    }

    #[test]
    fn advanced_syntax() {
        assert!(advanced_match("Olá, quero PIZZA", "contains:pizza"));
        assert!(advanced_match(
            "Olá, quero PIZZA",
            "startswith:ola contains:quero,pizza"
        ));
        assert!(!advanced_match(
            "Olá, quero PIZZA",
            "startswith:ola contains:quero,sushi"
        ));
        // The same operator twice: either occurrence.
        assert!(advanced_match(
            "quero sushi",
            "contains:pizza contains:sushi"
        ));
        assert!(!advanced_match("quero sushi", "notcontains:sushi"));
        assert!(advanced_match("Ação", "exact:acao"));
        assert!(advanced_match("fim", "endswith:IM"));
        assert!(!advanced_match("fim", "unknown:fim"));
        // Values may contain ':' (everything after the first one).
        assert!(advanced_match("time 10:30", "contains:10:30"));
    }

    #[test]
    fn creation_rules() {
        use TriggerOperator::{Contains, Equals, Regex};
        let all = bot("a", TriggerType::All, None, "");
        assert_eq!(
            bot("b", TriggerType::All, None, "").validate_trigger(std::slice::from_ref(&all)),
            Err(TriggerError::SecondAll)
        );
        let mut disabled = all.clone();
        disabled.enabled = false;
        assert!(
            bot("b", TriggerType::All, None, "")
                .validate_trigger(&[disabled])
                .is_ok()
        );
        assert!(matches!(
            kw("r", Regex, "(unclosed").validate_trigger(&[]),
            Err(TriggerError::BadRegex(_))
        ));
        assert_eq!(
            kw("k", Equals, "hi").validate_trigger(&[kw("k2", Equals, "hi")]),
            Err(TriggerError::Duplicate)
        );
        assert!(
            kw("k", Contains, "hi")
                .validate_trigger(&[kw("k2", Equals, "hi")])
                .is_ok()
        );
        let mut incomplete = kw("k", Equals, "");
        assert_eq!(
            incomplete.validate_trigger(&[]),
            Err(TriggerError::KeywordIncomplete)
        );
        incomplete.trigger.operator = None;
        assert_eq!(
            incomplete.validate_trigger(&[]),
            Err(TriggerError::KeywordIncomplete)
        );
        assert_eq!(
            bot("a", TriggerType::Advanced, None, "").validate_trigger(&[]),
            Err(TriggerError::AdvancedEmpty)
        );
    }
}
