//! `<iq xmlns=w:m type=set><media_conn/></iq>` (§8.2). WhatsApp Web requires `auth`, `ttl`,
//! `auth_ttl`, `max_buckets` and each host's `hostname`; Baileys also reads `maxContentLengthBytes`.

use zapin_protocol::binary::Node;

use crate::sim::Sim;
use crate::wire::nodes::iq_result_with;

/// WhatsApp's usual bucket count; clients only store it.
const MAX_BUCKETS: &str = "12";

/// The result for a `media_conn` request: a fresh auth token and the hosts: the configured
/// `extra_hosts` first, then this simulator.
pub fn media_conn(sim: &Sim, iq: &Node) -> Node {
    let media = sim.media();
    let config = media.config();
    let auth = media.issue_auth(&sim.state().key_source());
    let max = config.max_blob_bytes.to_string();
    let hosts = config
        .extra_hosts
        .iter()
        .cloned()
        .chain(std::iter::once(media.hostname()))
        .map(|h| {
            Node::new("host")
                .attr("hostname", h)
                .attr("maxContentLengthBytes", max.clone())
        })
        .collect();
    iq_result_with(
        iq,
        vec![
            Node::new("media_conn")
                .attr("auth", auth)
                .attr("ttl", config.ttl.as_secs().to_string())
                .attr("auth_ttl", config.auth_ttl.as_secs().to_string())
                .attr("max_buckets", MAX_BUCKETS)
                .children(hosts),
        ],
    )
}
