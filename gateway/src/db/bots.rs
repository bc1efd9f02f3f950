//! Chatbot configuration rows (`bot_configs`, `bot_kind_settings`, migration `0310`) and the
//! session rows zapin-bots keeps (`bot_sessions`) where the gateway must touch them: a bot's
//! sessions go with the bot, an instance's with the instance.
//!
//! JSON documents are passed through as text; [`crate::bots`] gives them their meaning and
//! seals the `secret` column.

use super::{DbError, Tx, with_conn};

/// One `bot_configs` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotRow {
    pub id: String,
    pub instance_id: String,
    /// The adapter name (`evolution`, `n8n`, …).
    pub kind: String,
    pub enabled: bool,
    pub description: Option<String>,
    pub trigger_type: Option<String>,
    pub trigger_operator: Option<String>,
    pub trigger_value: Option<String>,
    /// JSON object of the common setting fields.
    pub settings: String,
    /// JSON object of the kind's non-secret fields.
    pub params: String,
    /// The sealed JSON object of the kind's secret fields.
    pub secret: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One `bot_kind_settings` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotSettingsRow {
    pub id: String,
    pub instance_id: String,
    pub kind: String,
    pub settings: String,
    pub fallback_id: Option<String>,
    /// JSON object of the kind's extra settings fields.
    pub extra: String,
    pub created_at: i64,
    pub updated_at: i64,
}

type BotTuple = (
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    Option<String>,
    i64,
    i64,
);

const BOT_COLUMNS: &str = "id, instance_id, kind, enabled, description, trigger_type, \
    trigger_operator, trigger_value, settings, params, secret, created_at, updated_at";

fn bot(t: BotTuple) -> BotRow {
    let (
        id,
        instance_id,
        kind,
        enabled,
        description,
        trigger_type,
        trigger_operator,
        trigger_value,
        settings,
        params,
        secret,
        created_at,
        updated_at,
    ) = t;
    BotRow {
        id,
        instance_id,
        kind,
        enabled: enabled != 0,
        description,
        trigger_type,
        trigger_operator,
        trigger_value,
        settings,
        params,
        secret,
        created_at,
        updated_at,
    }
}

type SettingsTuple = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    i64,
    i64,
);

const SETTINGS_COLUMNS: &str =
    "id, instance_id, kind, settings, fallback_id, extra, created_at, updated_at";

fn settings_row(t: SettingsTuple) -> BotSettingsRow {
    let (id, instance_id, kind, settings, fallback_id, extra, created_at, updated_at) = t;
    BotSettingsRow {
        id,
        instance_id,
        kind,
        settings,
        fallback_id,
        extra,
        created_at,
        updated_at,
    }
}

impl Tx {
    /// The instance's bots, of one kind or (`None`) of every kind, oldest first.
    pub async fn list_bots(
        &mut self,
        instance_id: &str,
        kind: Option<&str>,
    ) -> Result<Vec<BotRow>, DbError> {
        let sql = format!(
            "SELECT {BOT_COLUMNS} FROM bot_configs WHERE instance_id = $1 \
             AND ($2 IS NULL OR kind = $2) ORDER BY created_at, id"
        );
        let rows: Vec<BotTuple> = with_conn!(tx &mut self.inner, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(instance_id)
                .bind(kind)
                .fetch_all(c)
                .await?
        });
        Ok(rows.into_iter().map(bot).collect())
    }

    /// One bot by id, whatever its instance (callers check the owner).
    pub async fn get_bot(&mut self, id: &str) -> Result<Option<BotRow>, DbError> {
        let sql = format!("SELECT {BOT_COLUMNS} FROM bot_configs WHERE id = $1");
        let row: Option<BotTuple> = with_conn!(tx &mut self.inner, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(c)
                .await?
        });
        Ok(row.map(bot))
    }

    /// Inserts the bot or replaces the row with its id.
    pub async fn put_bot(&mut self, b: &BotRow) -> Result<(), DbError> {
        let sql = format!(
            "INSERT INTO bot_configs ({BOT_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (id) DO UPDATE SET enabled = excluded.enabled, \
             description = excluded.description, trigger_type = excluded.trigger_type, \
             trigger_operator = excluded.trigger_operator, trigger_value = excluded.trigger_value, \
             settings = excluded.settings, params = excluded.params, secret = excluded.secret, \
             updated_at = excluded.updated_at"
        );
        with_conn!(tx &mut self.inner, |c| {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&b.id)
                .bind(&b.instance_id)
                .bind(&b.kind)
                .bind(i64::from(b.enabled))
                .bind(&b.description)
                .bind(&b.trigger_type)
                .bind(&b.trigger_operator)
                .bind(&b.trigger_value)
                .bind(&b.settings)
                .bind(&b.params)
                .bind(&b.secret)
                .bind(b.created_at)
                .bind(b.updated_at)
                .execute(c)
                .await?;
        });
        Ok(())
    }

    /// Deletes a bot of `instance_id`, its sessions, and clears it as a fallback (Evolution's
    /// optional relation sets the column to null).
    pub async fn delete_bot(&mut self, instance_id: &str, id: &str) -> Result<bool, DbError> {
        let done = with_conn!(tx &mut self.inner, |c| {
            sqlx::query("DELETE FROM bot_sessions WHERE instance = $1 AND bot_id = $2")
                .bind(instance_id)
                .bind(id)
                .execute(&mut *c)
                .await?;
            sqlx::query(
                "UPDATE bot_kind_settings SET fallback_id = NULL \
                 WHERE instance_id = $1 AND fallback_id = $2",
            )
            .bind(instance_id)
            .bind(id)
            .execute(&mut *c)
            .await?;
            sqlx::query("DELETE FROM bot_configs WHERE instance_id = $1 AND id = $2")
                .bind(instance_id)
                .bind(id)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }

    /// The settings row of one kind on the instance.
    pub async fn get_bot_settings(
        &mut self,
        instance_id: &str,
        kind: &str,
    ) -> Result<Option<BotSettingsRow>, DbError> {
        let sql = format!(
            "SELECT {SETTINGS_COLUMNS} FROM bot_kind_settings WHERE instance_id = $1 AND kind = $2"
        );
        let row: Option<SettingsTuple> = with_conn!(tx &mut self.inner, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(instance_id)
                .bind(kind)
                .fetch_optional(c)
                .await?
        });
        Ok(row.map(settings_row))
    }

    /// Every settings row of the instance.
    pub async fn list_bot_settings(
        &mut self,
        instance_id: &str,
    ) -> Result<Vec<BotSettingsRow>, DbError> {
        let sql = format!(
            "SELECT {SETTINGS_COLUMNS} FROM bot_kind_settings WHERE instance_id = $1 ORDER BY kind"
        );
        let rows: Vec<SettingsTuple> = with_conn!(tx &mut self.inner, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(instance_id)
                .fetch_all(c)
                .await?
        });
        Ok(rows.into_iter().map(settings_row).collect())
    }

    /// Inserts or replaces the settings row of (instance, kind).
    pub async fn put_bot_settings(&mut self, s: &BotSettingsRow) -> Result<(), DbError> {
        let sql = format!(
            "INSERT INTO bot_kind_settings ({SETTINGS_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (instance_id, kind) DO UPDATE SET settings = excluded.settings, \
             fallback_id = excluded.fallback_id, extra = excluded.extra, \
             updated_at = excluded.updated_at"
        );
        with_conn!(tx &mut self.inner, |c| {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&s.id)
                .bind(&s.instance_id)
                .bind(&s.kind)
                .bind(&s.settings)
                .bind(&s.fallback_id)
                .bind(&s.extra)
                .bind(s.created_at)
                .bind(s.updated_at)
                .execute(c)
                .await?;
        });
        Ok(())
    }
}

/// One `bot_openai_creds` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenaiCredsRow {
    pub id: String,
    pub instance_id: String,
    pub name: String,
    /// The sealed API key.
    pub secret: String,
    pub created_at: i64,
    pub updated_at: i64,
}

type CredsTuple = (String, String, String, String, i64, i64);

fn creds(t: CredsTuple) -> OpenaiCredsRow {
    let (id, instance_id, name, secret, created_at, updated_at) = t;
    OpenaiCredsRow {
        id,
        instance_id,
        name,
        secret,
        created_at,
        updated_at,
    }
}

const CREDS_COLUMNS: &str = "id, instance_id, name, secret, created_at, updated_at";

impl Tx {
    /// The instance's OpenAI credentials, oldest first.
    pub async fn list_openai_creds(
        &mut self,
        instance_id: &str,
    ) -> Result<Vec<OpenaiCredsRow>, DbError> {
        let sql = format!(
            "SELECT {CREDS_COLUMNS} FROM bot_openai_creds WHERE instance_id = $1 \
             ORDER BY created_at, id"
        );
        let rows: Vec<CredsTuple> = with_conn!(tx &mut self.inner, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(instance_id)
                .fetch_all(c)
                .await?
        });
        Ok(rows.into_iter().map(creds).collect())
    }

    pub async fn put_openai_creds(&mut self, r: &OpenaiCredsRow) -> Result<(), DbError> {
        let sql = format!(
            "INSERT INTO bot_openai_creds ({CREDS_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        );
        with_conn!(tx &mut self.inner, |c| {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&r.id)
                .bind(&r.instance_id)
                .bind(&r.name)
                .bind(&r.secret)
                .bind(r.created_at)
                .bind(r.updated_at)
                .execute(c)
                .await?;
        });
        Ok(())
    }

    pub async fn delete_openai_creds(
        &mut self,
        instance_id: &str,
        id: &str,
    ) -> Result<bool, DbError> {
        let done = with_conn!(tx &mut self.inner, |c| {
            sqlx::query("DELETE FROM bot_openai_creds WHERE instance_id = $1 AND id = $2")
                .bind(instance_id)
                .bind(id)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }
}
