//! zapin-migrations: the database schema of every zapin crate, as one migrator per backend.
//!
//! `sqlite/` and `postgres/` hold equivalent, numbered migrations (`<version>_<name>.sql`);
//! signal-store owns `0001_*`, the gateway `0100_*` and up, the bots `0300_*`–`0399_*`, the events `0400_*`–`0419_*`. Every
//! crate that opens a database runs the same migrator, so the order in which crates open a shared database does not matter.
//! The files are embedded at build time by `build.rs` (sqlx's `migrate!` macro would need the
//! `macros` feature, which the workspace leaves off to save compile time).
//!
//! `ignore_missing` is set so that an older binary can still open a database that a newer one has
//! migrated further (rolling upgrades of a multi-node deployment).

use sqlx::migrate::{Migration, MigrationType, Migrator};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// The migrator for SQLite databases.
pub fn sqlite() -> Migrator {
    migrator(embedded::SQLITE)
}

/// The migrator for PostgreSQL databases.
pub fn postgres() -> Migrator {
    migrator(embedded::POSTGRES)
}

fn migrator(list: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    let mut m = Migrator::with_migrations(
        list.iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sqlx::SqlSafeStr::into_sql_str(sql),
                    false,
                )
            })
            .collect(),
    );
    m.set_ignore_missing(true);
    m
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_backends_have_the_same_versions() {
        let versions =
            |m: sqlx::migrate::Migrator| -> Vec<i64> { m.iter().map(|mig| mig.version).collect() };
        let sqlite = versions(super::sqlite());
        assert!(!sqlite.is_empty());
        assert_eq!(sqlite, versions(super::postgres()));
    }
}
