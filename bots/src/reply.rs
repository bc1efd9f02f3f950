//! Turning a bot's replies into a plan of sends: markdown media links become media messages,
//! `splitMessages` cuts text on blank lines, and each send carries its typing-simulation time
//! (`delayMessage`, or `timePerChar` per character clamped to 1–20 s when split). The plan is
//! data: the caller shows "composing" for `typing_ms`, then sends; nothing here sleeps.

use std::sync::LazyLock;

use regex::Regex;

use crate::config::EffectiveSettings;
use crate::kind::Reply;

/// One send, preceded by `typing_ms` of "composing" presence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedSend {
    pub typing_ms: u64,
    pub reply: Reply,
}

/// The sends answering one bot call, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyPlan {
    pub sends: Vec<PlannedSend>,
}

static MEDIA_LINK: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"!?\[([^\]]*)\]\(([^)\s]+)\)").ok());

fn media_type(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "jpg" | "jpeg" | "png" | "gif" | "bmp" | "webp" => "image",
        "mp3" | "wav" | "aac" | "ogg" | "opus" | "m4a" => "audio",
        "mp4" | "avi" | "mkv" | "mov" | "webm" => "video",
        "pdf" | "doc" | "docx" | "xls" | "xlsx" | "ppt" | "pptx" | "txt" | "csv" | "zip" => {
            "document"
        }
        _ => return None,
    })
}

impl ReplyPlan {
    /// Plans `replies` under `settings`.
    pub fn build(replies: Vec<Reply>, settings: &EffectiveSettings) -> Self {
        let delay = if settings.delay_message == 0 {
            1000
        } else {
            settings.delay_message
        };
        let mut sends = Vec::new();
        for reply in replies {
            match reply {
                Reply::Text { text, link_preview } => {
                    plan_text(&text, link_preview, delay, settings, &mut sends)
                }
                other => sends.push(PlannedSend {
                    typing_ms: delay,
                    reply: other,
                }),
            }
        }
        Self { sends }
    }
}

fn plan_text(
    text: &str,
    link_preview: bool,
    delay: u64,
    settings: &EffectiveSettings,
    sends: &mut Vec<PlannedSend>,
) {
    let push_text = |part: &str, sends: &mut Vec<PlannedSend>| {
        let part = part.trim();
        if part.is_empty() {
            return;
        }
        if settings.split_messages {
            for piece in part.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
                let chars = u64::try_from(piece.chars().count()).unwrap_or(u64::MAX);
                sends.push(PlannedSend {
                    typing_ms: chars
                        .saturating_mul(settings.time_per_char)
                        .clamp(1000, 20_000),
                    reply: Reply::Text {
                        text: piece.to_owned(),
                        link_preview,
                    },
                });
            }
        } else {
            sends.push(PlannedSend {
                typing_ms: delay,
                reply: Reply::Text {
                    text: part.to_owned(),
                    link_preview,
                },
            });
        }
    };
    let mut rest_start = 0;
    if let Some(re) = MEDIA_LINK.as_ref() {
        for m in re.captures_iter(text) {
            let (Some(all), Some(alt), Some(url)) = (m.get(0), m.get(1), m.get(2)) else {
                continue;
            };
            let Some(mediatype) = media_type(url.as_str()) else {
                continue;
            };
            push_text(&text[rest_start..all.start()], sends);
            let alt = alt.as_str().trim();
            let named = (!alt.is_empty()).then(|| alt.to_owned());
            let (caption, file_name) = if mediatype == "document" {
                (None, named)
            } else {
                (named, None)
            };
            sends.push(PlannedSend {
                typing_ms: delay,
                reply: Reply::Media {
                    mediatype: mediatype.to_owned(),
                    url: url.as_str().to_owned(),
                    caption,
                    file_name,
                },
            });
            rest_start = all.end();
        }
    }
    push_text(&text[rest_start..], sends);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str) -> Reply {
        Reply::Text {
            text: t.into(),
            link_preview: true,
        }
    }

    #[test]
    fn split_and_typing_times() {
        let mut s = EffectiveSettings::evolution_defaults();
        let plan = ReplyPlan::build(vec![text("a\n\nb")], &s);
        assert_eq!(plan.sends.len(), 1);
        assert_eq!(plan.sends[0].typing_ms, 1000);
        s.delay_message = 250;
        assert_eq!(
            ReplyPlan::build(vec![text("a")], &s).sends[0].typing_ms,
            250
        );

        s.split_messages = true;
        s.time_per_char = 100;
        let long = "x".repeat(50);
        let plan = ReplyPlan::build(vec![text(&format!("hi\n\n{long}\n\n\n\n"))], &s);
        let got: Vec<u64> = plan.sends.iter().map(|p| p.typing_ms).collect();
        assert_eq!(got, vec![1000, 5000]);
        s.time_per_char = 10_000;
        assert_eq!(
            ReplyPlan::build(vec![text("abc")], &s).sends[0].typing_ms,
            20_000
        );
    }

    #[test]
    fn markdown_media_links() {
        let s = EffectiveSettings::evolution_defaults();
        let plan = ReplyPlan::build(
            vec![text(
                "Look ![a cat](https://x.test/cat.PNG?s=1) and [the doc](https://x.test/d.pdf) \
                 or [a page](https://x.test/page)",
            )],
            &s,
        );
        let kinds: Vec<&Reply> = plan.sends.iter().map(|p| &p.reply).collect();
        assert_eq!(kinds.len(), 5);
        assert_eq!(kinds[0], &text("Look"));
        assert!(
            matches!(kinds[1], Reply::Media { mediatype, caption: Some(c), .. } if mediatype == "image" && c == "a cat")
        );
        assert_eq!(kinds[2], &text("and"));
        assert!(
            matches!(kinds[3], Reply::Media { mediatype, file_name: Some(f), .. } if mediatype == "document" && f == "the doc")
        );
        // A link to a page stays in the text.
        assert_eq!(kinds[4], &text("or [a page](https://x.test/page)"));
        let plan = ReplyPlan::build(vec![text("see [a page](https://x.test/page)")], &s);
        assert_eq!(plan.sends.len(), 1);
    }
}
