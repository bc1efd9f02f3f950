//! The chatbot engine's parsers of outside data: a bot server's JSON answer (Evolution Bot,
//! n8n, Flowise, Dify blocking and streamed, EvoAI, Typebot's chat answers with rich text, OpenAI completions and thread messages), the reply planner over the bot's text (markdown media links, split messages), and
//! trigger matching of a contact's message against an advanced filter and a keyword regex.
//! None may panic; a split plan never has an empty text part.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zapin_bots::kind::{
    DifyBot, EvoAiBot, EvolutionBot, FlowiseBot, N8nBot, OpenAiBot, TypebotBot,
};
use zapin_bots::{
    BotConfig, BotSettings, EffectiveSettings, Reply, ReplyPlan, Trigger, TriggerOperator,
    TriggerType, advanced_match, find_bot_by_trigger,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = OpenAiBot::parse_completion(&value);
        let _ = OpenAiBot::parse_thread_messages(&value);
        for answer in [
            EvolutionBot::parse_answer(&value),
            N8nBot::parse_answer(&value),
            FlowiseBot::parse_answer(&value),
            DifyBot::parse_answer(&value),
            EvoAiBot::parse_answer(&value),
            TypebotBot::parse_answer(&value),
        ]
        .into_iter()
        .flatten()
        {
            let _ = ReplyPlan::build(answer.replies, &EffectiveSettings::evolution_defaults());
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let streamed = DifyBot::parse_stream(text);
    let _ = ReplyPlan::build(streamed.replies, &EffectiveSettings::evolution_defaults());
    let (content, query) = text.split_once('\u{0}').unwrap_or((text, text));
    let _ = advanced_match(content, query);
    let bots: Vec<BotConfig> = [
        (TriggerType::Advanced, None),
        (TriggerType::Keyword, Some(TriggerOperator::Regex)),
        (TriggerType::Keyword, Some(TriggerOperator::Contains)),
    ]
    .into_iter()
    .map(|(kind, operator)| BotConfig {
        id: String::new(),
        enabled: true,
        description: None,
        trigger: Trigger {
            kind,
            operator,
            value: Some(query.to_owned()),
        },
        settings: BotSettings::default(),
        params: serde_json::Value::Null,
    })
    .collect();
    let _ = find_bot_by_trigger(&bots, content);

    let mut settings = EffectiveSettings::evolution_defaults();
    settings.split_messages = true;
    settings.time_per_char = 50;
    let plan = ReplyPlan::build(
        vec![Reply::Text {
            text: text.to_owned(),
            link_preview: true,
        }],
        &settings,
    );
    for send in plan.sends {
        assert!((1000..=20_000).contains(&send.typing_ms));
        if let Reply::Text { text, .. } = send.reply {
            assert!(!text.trim().is_empty());
        }
    }
});
