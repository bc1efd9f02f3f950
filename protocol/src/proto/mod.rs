//! Protobuf messages, generated from the trimmed schema in `protocol/proto/` and checked in.
//!
//! Regenerate after editing a `.proto`: `cargo run --manifest-path protocol/protogen/Cargo.toml`.
//! The test below fails when a schema changed without regeneration.

#![allow(clippy::all, missing_debug_implementations)]

pub mod wa {
    include!("wa.rs");
}

pub mod signal {
    include!("signal.rs");
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    fn recorded_digest(generated: &str) -> &str {
        generated
            .lines()
            .find_map(|l| l.strip_prefix("// source-sha256: "))
            .unwrap_or_default()
    }

    #[test]
    fn generated_code_matches_schema() {
        let pairs = [
            (
                include_str!("../../proto/wa.proto"),
                include_str!("wa.rs"),
                "wa",
            ),
            (
                include_str!("../../proto/signal.proto"),
                include_str!("signal.rs"),
                "signal",
            ),
        ];
        for (proto, generated, name) in pairs {
            assert_eq!(
                hex::encode(Sha256::digest(proto.as_bytes())),
                recorded_digest(generated),
                "proto/{name}.proto changed: run `cargo run --manifest-path protocol/protogen/Cargo.toml`"
            );
        }
    }
}
