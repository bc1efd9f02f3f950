//! How `POST /chat/whatsappNumbers` reads each number (contract §3.4, Evolution's `createJid`
//! and its Brazilian/Mexican/Argentine variants), and the order it answers in (§11 #21).

/// What one requested number is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberKind {
    /// `…@broadcast`: never on WhatsApp as a contact.
    Broadcast { jid: String },
    /// `…@g.us`, 18+ digits, or a long `xxx-yyy` id.
    Group { jid: String },
    /// A user: `jid` is `createJid`'s answer; `candidates` are the digit strings to look up
    /// (the number and, in BR/MX/AR, its variant with or without the extra digit).
    User {
        jid: String,
        candidates: Vec<String>,
    },
}

/// Classifies one requested number as `createJid` does.
pub fn classify(input: &str) -> NumberKind {
    let cleaned: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '+' | '(' | ')'))
        .collect();
    if cleaned.ends_with("@broadcast") {
        return NumberKind::Broadcast { jid: cleaned };
    }
    if cleaned.ends_with("@g.us") {
        return NumberKind::Group { jid: cleaned };
    }
    if let Some(user) = cleaned.strip_suffix("@lid") {
        return NumberKind::User {
            jid: format!("{user}@lid"),
            candidates: Vec::new(),
        };
    }
    let user = cleaned.split('@').next().unwrap_or_default();
    let user = user.split(':').next().unwrap_or_default();
    if user.contains('-') && user.len() >= 24 {
        return NumberKind::Group {
            jid: format!("{user}@g.us"),
        };
    }
    let digits: String = user.chars().filter(char::is_ascii_digit).collect();
    if digits.len() >= 18 {
        return NumberKind::Group {
            jid: format!("{digits}@g.us"),
        };
    }
    let formatted = format_br(&format_mx_ar(&digits));
    let mut candidates = vec![formatted.clone()];
    if let Some(other) = variant(&formatted)
        && other != formatted
    {
        candidates.push(other);
    }
    candidates.retain(|c| (7..=15).contains(&c.len()));
    NumberKind::User {
        jid: format!("{formatted}@s.whatsapp.net"),
        candidates,
    }
}

/// Mexico (52) and Argentina (54): a 13-digit number loses its third digit (the mobile `1`/`9`).
fn format_mx_ar(digits: &str) -> String {
    if digits.len() == 13 && (digits.starts_with("52") || digits.starts_with("54")) {
        let mut out = digits[..2].to_owned();
        out.push_str(&digits[3..]);
        out
    } else {
        digits.to_owned()
    }
}

/// Brazil: `55 DD 9 XXXXXXXX` loses the 9 when DDD ≥ 31 and the first local digit is ≥ 7.
fn format_br(digits: &str) -> String {
    if digits.len() == 13 && digits.starts_with("55") && digits.as_bytes().get(4) == Some(&b'9') {
        let ddd: u32 = digits[2..4].parse().unwrap_or(0);
        let joker = digits
            .as_bytes()
            .get(5)
            .map_or(0, |b| b.saturating_sub(b'0'));
        if ddd >= 31 && joker >= 7 {
            return format!("{}{}", &digits[..4], &digits[5..]);
        }
    }
    digits.to_owned()
}

/// The same number with or without the country's extra mobile digit (BR `9`, MX `1`, AR `9`).
fn variant(digits: &str) -> Option<String> {
    let (country, extra) = match digits.get(..2)? {
        "55" => ("55", '9'),
        "52" => ("52", '1'),
        "54" => ("54", '9'),
        _ => return None,
    };
    match (country, digits.len()) {
        ("55", 13) if digits.as_bytes().get(4) == Some(&b'9') => {
            Some(format!("{}{}", &digits[..4], &digits[5..]))
        }
        ("55", 12) => Some(format!("{}{extra}{}", &digits[..4], &digits[4..])),
        ("52" | "54", 13) => Some(format!("{country}{}", &digits[3..])),
        ("52" | "54", 12) => Some(format!("{country}{extra}{}", &digits[2..])),
        _ => None,
    }
}

/// Answer order: broadcasts, then groups, then users (each in request order).
pub fn answer_rank(kind: &NumberKind) -> u8 {
    match kind {
        NumberKind::Broadcast { .. } => 0,
        NumberKind::Group { .. } => 1,
        NumberKind::User { .. } => 2,
    }
}
