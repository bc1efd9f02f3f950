//! Properties of the parsers that see outside data, over generated input (the fuzz target
//! `bot_answers` explores the same functions without bounds): trigger matching and the reply
//! planner never panic, and a split plan has no empty part and typing times within 1–20 s.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use zapin_bots::{
    BotConfig, BotSettings, EffectiveSettings, Reply, ReplyPlan, Trigger, TriggerOperator,
    TriggerType, advanced_match, find_bot_by_trigger,
};

fn bot(kind: TriggerType, operator: Option<TriggerOperator>, value: &str) -> BotConfig {
    BotConfig {
        id: format!("{kind:?}{operator:?}"),
        enabled: true,
        description: None,
        trigger: Trigger {
            kind,
            operator,
            value: Some(value.to_owned()),
        },
        settings: BotSettings::default(),
        params: serde_json::Value::Null,
    }
}

proptest! {
    #[test]
    fn answer_parsers_never_panic(text in "\\PC{0,80}") {
        use zapin_bots::kind::{DifyBot, EvoAiBot, FlowiseBot, OpenAiBot, TypebotBot};
        let stream = DifyBot::parse_stream(&format!("data: {text}\n\ndata: {{\"event\":\"agent_message\",\"answer\":{}}}\n", serde_json::Value::from(text.clone())));
        prop_assert!(stream.replies.len() <= 1);
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            let _ = FlowiseBot::parse_answer(&v);
            let _ = DifyBot::parse_answer(&v);
            let _ = EvoAiBot::parse_answer(&v);
            let _ = TypebotBot::parse_answer(&v);
            let _ = OpenAiBot::parse_completion(&v);
            let _ = OpenAiBot::parse_thread_messages(&v);
        }
    }

    #[test]
    fn deep_rich_text_never_overflows(depth in 0usize..5000) {
        use zapin_bots::kind::TypebotBot;
        let mut element = serde_json::json!({"text": "x", "bold": true});
        for _ in 0..depth.min(200) {
            element = serde_json::json!({"type": "li", "children": [element]});
        }
        let answer = serde_json::json!({"messages": [{"type": "text", "content": {"richText": [{"type": "p", "children": [element]}]}}]});
        prop_assert!(TypebotBot::parse_answer(&answer).is_ok());
    }

    #[test]
    fn triggers_never_panic(content in "\\PC{0,40}", query in "[a-z:, ()\\[\\]*+?éÁ\\\\]{0,30}") {
        let _ = advanced_match(&content, &query);
        let bots = vec![
            bot(TriggerType::Advanced, None, &query),
            bot(TriggerType::Keyword, Some(TriggerOperator::Regex), &query),
            bot(TriggerType::Keyword, Some(TriggerOperator::EndsWith), &query),
        ];
        let _ = find_bot_by_trigger(&bots, &content);
    }

    #[test]
    fn an_exact_filter_matches_its_own_text(word in "[a-zA-ZáéíóúçÇ]{1,12}") {
        let exact = format!("exact:{word}");
        let contains = format!("contains:{word}");
        prop_assert!(advanced_match(&word, &exact));
        prop_assert!(advanced_match(&word.to_uppercase(), &contains));
    }

    #[test]
    fn split_plans_are_well_formed(text in "(\\PC{0,20}(\\n\\n|\\n| |!\\[a\\]\\(http://x/i.png\\))){0,8}", per_char in 0u64..2000) {
        let mut settings = EffectiveSettings::evolution_defaults();
        settings.split_messages = true;
        settings.time_per_char = per_char;
        let plan = ReplyPlan::build(vec![Reply::Text { text, link_preview: true }], &settings);
        for send in plan.sends {
            if let Reply::Text { text, .. } = send.reply {
                prop_assert!(!text.trim().is_empty());
                prop_assert!(!text.contains("\n\n"));
                prop_assert!((1000..=20_000).contains(&send.typing_ms));
            }
        }
    }
}
