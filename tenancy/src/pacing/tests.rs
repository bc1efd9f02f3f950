//! The pacer with explicit times: no clock, no sleeps.

use proptest::prelude::*;

use super::*;
use crate::plan::{GapRange, WarmupStage};

const T0: i64 = 1_796_571_000_000;

fn pacer(pacing: Pacing) -> Pacer {
    Pacer::new(pacing, T0, 42)
}

#[test]
fn unpaced_sends_go_at_once() {
    let mut p = pacer(Pacing::default());
    for i in 0..1000 {
        let chat = format!("chat{}", i % 7);
        assert_eq!(p.earliest(&chat, T0 + i), T0 + i);
        p.record(&chat, T0 + i);
    }
}

#[test]
fn per_minute_is_a_sliding_window() {
    let mut p = pacer(Pacing {
        per_minute: Some(3),
        ..Pacing::default()
    });
    for i in 0..3 {
        assert!(p.may_send("a", T0 + i * 1000));
        p.record("a", T0 + i * 1000);
    }
    // The 4th waits until the 1st leaves the window.
    assert_eq!(p.earliest("a", T0 + 3000), T0 + 60_000);
    assert!(!p.may_send("a", T0 + 59_999));
    p.record("a", T0 + 60_000);
    // Now the 2nd must leave: T0 + 61 s.
    assert_eq!(p.earliest("a", T0 + 60_000), T0 + 61_000);
}

#[test]
fn switching_chats_waits_a_random_gap_drawn_once() {
    let gap = GapRange {
        min: 2000,
        max: 8000,
    };
    let mut p = pacer(Pacing {
        chat_gap_ms: Some(gap),
        ..Pacing::default()
    });
    p.record("a", T0);
    // Same chat: no gap.
    assert_eq!(p.earliest("a", T0), T0);
    let at = p.earliest("b", T0);
    assert!((T0 + 2000..=T0 + 8000).contains(&at), "{at}");
    // Asking again gives the same answer, until a send happens.
    assert_eq!(p.earliest("b", T0 + 100), at);
    assert_eq!(p.earliest("b", at + 10), at + 10);
    p.record("b", at);
    let next = p.earliest("a", at);
    assert!((at + 2000..=at + 8000).contains(&next));
    // Gaps vary, and the same seed reproduces them.
    let draws = |seed| {
        let mut p = Pacer::new(
            Pacing {
                chat_gap_ms: Some(gap),
                ..Pacing::default()
            },
            T0,
            seed,
        );
        let mut now = T0;
        (0..20)
            .map(|i| {
                // Asked right after the previous send: the whole gap is owed.
                let chat = if i % 2 == 0 { "x" } else { "y" };
                let at = p.earliest(chat, now);
                p.record(chat, at);
                let waited = at - now;
                now = at;
                waited
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(draws(7), draws(7));
    let d = draws(7);
    assert!(d.iter().skip(1).any(|&g| g != d[1]), "{d:?}");
    assert!(d.iter().skip(1).all(|&g| (2000..=8000).contains(&g)));
}

#[test]
fn young_instances_warm_up() {
    let pacing = Pacing {
        warmup: Some(vec![
            WarmupStage {
                until_day: 1,
                per_hour: 2,
            },
            WarmupStage {
                until_day: 3,
                per_hour: 4,
            },
        ]),
        ..Pacing::default()
    };
    // Day 0: two per hour.
    let mut p = pacer(pacing.clone());
    p.record("a", T0);
    p.record("a", T0 + 1000);
    assert_eq!(p.earliest("a", T0 + 2000), T0 + HOUR_MS);
    // Day 2: four per hour.
    let day2 = T0 + 2 * DAY_MS;
    let mut p = pacer(pacing.clone());
    for i in 0..4 {
        assert!(p.may_send("a", day2 + i));
        p.record("a", day2 + i);
    }
    assert_eq!(p.earliest("a", day2 + 10), day2 + HOUR_MS);
    // Day 3 and later: no warm-up limit.
    let day3 = T0 + 3 * DAY_MS;
    let mut p = pacer(pacing);
    for i in 0..100 {
        assert!(p.may_send("a", day3 + i));
        p.record("a", day3 + i);
    }
}

#[test]
fn restore_brings_back_the_last_hour() {
    let mut p = pacer(Pacing {
        per_minute: Some(2),
        chat_gap_ms: Some(GapRange { min: 500, max: 500 }),
        ..Pacing::default()
    });
    p.restore(vec![T0 + 5000, T0 + 1000], Some("a".into()));
    assert_eq!(p.earliest("a", T0 + 6000), T0 + 61_000);
    assert_eq!(p.earliest("b", T0 + 70_000), T0 + 70_000);
    p.restore(vec![T0], None);
    // Unknown last chat: no gap owed.
    assert_eq!(p.earliest("b", T0 + 1), T0 + 1);
}

fn arb_pacing() -> impl Strategy<Value = Pacing> {
    (
        proptest::option::of(1u32..6),
        proptest::option::of((0u64..5000, 0u64..5000)),
        proptest::option::of((1u32..4, 1u32..10)),
    )
        .prop_map(|(per_minute, gap, warm)| Pacing {
            per_minute,
            chat_gap_ms: gap.map(|(a, b)| GapRange {
                min: a.min(b),
                max: a.max(b),
            }),
            warmup: warm.map(|(until_day, per_hour)| {
                vec![WarmupStage {
                    until_day,
                    per_hour,
                }]
            }),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Draining a FIFO queue at the pacer's pace keeps every limit and every chat's order.
    #[test]
    fn a_drained_queue_keeps_every_limit(
        pacing in arb_pacing(),
        chats in proptest::collection::vec(0u8..4, 1..60),
        seed in any::<u64>(),
        arrivals in proptest::collection::vec(0i64..20_000, 1..60),
    ) {
        let mut p = Pacer::new(pacing.clone(), T0, seed);
        let mut now = T0;
        let mut sent: Vec<(i64, u8, usize)> = Vec::new();
        for (i, chat) in chats.iter().enumerate() {
            now += arrivals.get(i).copied().unwrap_or(0);
            let name = format!("c{chat}");
            let at = p.earliest(&name, now);
            prop_assert!(at >= now);
            // Asking twice is stable.
            prop_assert_eq!(p.earliest(&name, now), at);
            p.record(&name, at);
            sent.push((at, *chat, i));
            now = at;
        }
        for (k, &(at, chat, _)) in sent.iter().enumerate() {
            if let Some(per_minute) = pacing.per_minute {
                let in_window = sent.iter().filter(|s| s.0 > at - MINUTE_MS && s.0 <= at).count();
                prop_assert!(in_window <= per_minute as usize, "{} sends in a minute", in_window);
            }
            if let Some(stages) = &pacing.warmup
                && (at - T0) / DAY_MS < i64::from(stages[0].until_day)
            {
                let in_hour = sent.iter().filter(|s| s.0 > at - HOUR_MS && s.0 <= at).count();
                prop_assert!(in_hour <= stages[0].per_hour as usize);
            }
            if let (Some(gap), Some(prev)) = (pacing.chat_gap_ms, k.checked_sub(1).and_then(|j| sent.get(j)))
                && prev.1 != chat
            {
                prop_assert!(at - prev.0 >= gap.min as i64);
            }
        }
        // Per-chat order: send times follow arrival order within each chat.
        for c in 0..4u8 {
            let times: Vec<i64> = sent.iter().filter(|s| s.1 == c).map(|s| s.0).collect();
            prop_assert!(times.windows(2).all(|w| w[0] <= w[1]));
        }
    }
}
