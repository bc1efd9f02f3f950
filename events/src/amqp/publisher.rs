//! Publishing outbox rows to RabbitMQ with `lapin`: one connection and one confirm-mode channel,
//! opened on first use and again after any failure; the exchange, queue and binding of a route
//! are declared once per connection, as Evolution asserts them before publishing.

use std::collections::HashSet;
use std::sync::Mutex;

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

use super::{AmqpRoute, TRANSPORT};
use crate::outbox::OutboxEntry;
use crate::transport::{BoxFuture, Outcome, Transport};

/// Why a publish did not go through (never the URI: it carries the password).
#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    #[error("RabbitMQ: {0}")]
    Broker(#[from] lapin::Error),
    #[error("RabbitMQ did not confirm the message (nack)")]
    Nack,
    #[error("RabbitMQ confirms are off on the channel")]
    NotConfirmed,
}

struct Link {
    conn: Connection,
    channel: Channel,
}

/// Delivers `rabbitmq` rows. Connects lazily, so a broker that is down at start only makes its
/// rows wait.
pub struct AmqpTransport {
    uri: String,
    link: tokio::sync::Mutex<Option<Link>>,
    /// `exchange\0queue\0key` routes declared on the current connection.
    declared: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for AmqpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpTransport").finish_non_exhaustive()
    }
}

impl AmqpTransport {
    /// `uri` is `RABBITMQ_URI` (`amqp://user:pass@host:port/vhost`); `frame_max` is
    /// `RABBITMQ_FRAME_MAX`, applied unless the URI sets `frame_max` itself. A 30 s heartbeat
    /// notices a dead broker, as Evolution's client does.
    pub fn new(uri: &str, frame_max: u32) -> Self {
        let mut uri = uri.to_owned();
        let mut sep = if uri.contains('?') { '&' } else { '?' };
        if !uri.contains("frame_max=") {
            uri.push_str(&format!("{sep}frame_max={frame_max}"));
            sep = '&';
        }
        if !uri.contains("heartbeat=") {
            uri.push_str(&format!("{sep}heartbeat=30"));
        }
        Self {
            uri,
            link: tokio::sync::Mutex::new(None),
            declared: Mutex::new(HashSet::new()),
        }
    }

    /// The open channel, connecting first when there is none or it died.
    async fn channel(&self) -> Result<Channel, AmqpError> {
        let mut link = self.link.lock().await;
        if let Some(l) = link.as_ref()
            && l.channel.status().connected()
        {
            return Ok(l.channel.clone());
        }
        if let Some(old) = link.take() {
            let _ = old.conn.close(200, "reconnect".into()).await;
        }
        self.forget_declared();
        let conn = Connection::connect(&self.uri, ConnectionProperties::default()).await?;
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        *link = Some(Link {
            conn,
            channel: channel.clone(),
        });
        Ok(channel)
    }

    fn forget_declared(&self) {
        self.declared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Drops the connection after a failure, so the next attempt opens a fresh one.
    async fn reset(&self) {
        let old = self.link.lock().await.take();
        self.forget_declared();
        if let Some(l) = old {
            // Closing the connection ends its I/O task; on a dead socket it fails at once.
            let _ = l.conn.close(200, "reset".into()).await;
        }
    }

    async fn declare(
        &self,
        channel: &Channel,
        exchange: &str,
        route: &AmqpRoute,
    ) -> Result<(), AmqpError> {
        let key = format!("{exchange}\0{}\0{}", route.queue, route.routing_key);
        if self
            .declared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&key)
        {
            return Ok(());
        }
        channel
            .exchange_declare(
                exchange.into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    auto_delete: false,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_declare(
                route.queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    auto_delete: false,
                    ..QueueDeclareOptions::default()
                },
                quorum(),
            )
            .await?;
        channel
            .queue_bind(
                route.queue.as_str().into(),
                exchange.into(),
                route.routing_key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        self.declared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key);
        Ok(())
    }

    async fn publish(&self, row: &OutboxEntry, route: &AmqpRoute) -> Result<(), AmqpError> {
        let channel = self.channel().await?;
        self.declare(&channel, &row.url, route).await?;
        let properties = BasicProperties::default()
            .with_message_id(row.idempotency_id.as_str().into())
            .with_content_type("application/json".into())
            // persistent
            .with_delivery_mode(2);
        let confirm = channel
            .basic_publish(
                row.url.as_str().into(),
                route.routing_key.as_str().into(),
                BasicPublishOptions::default(),
                row.body.as_bytes(),
                properties,
            )
            .await?
            .await?;
        if confirm.is_ack() {
            Ok(())
        } else if confirm.is_nack() {
            Err(AmqpError::Nack)
        } else {
            Err(AmqpError::NotConfirmed)
        }
    }

    async fn attempt(&self, row: &OutboxEntry) -> Outcome {
        let Ok(route) = serde_json::from_str::<AmqpRoute>(&row.headers) else {
            return Outcome::Invalid {
                error: "corrupt AMQP route in the outbox".to_owned(),
            };
        };
        match self.publish(row, &route).await {
            Ok(()) => Outcome::Delivered,
            Err(e) => {
                if !matches!(e, AmqpError::Nack) {
                    self.reset().await;
                }
                Outcome::Retry {
                    error: crate::error_chain(&e),
                    status: None,
                }
            }
        }
    }
}

/// `x-queue-type: quorum`, as Evolution declares its queues.
fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    args
}

impl Transport for AmqpTransport {
    fn name(&self) -> &'static str {
        TRANSPORT
    }

    fn deliver<'a>(&'a self, row: &'a OutboxEntry) -> BoxFuture<'a, Outcome> {
        Box::pin(self.attempt(row))
    }
}
