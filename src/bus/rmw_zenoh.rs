//! TEMPORARY (replaced by the msgs branch): rmw_zenoh wire pieces.
/// Publisher GID.
pub type Gid = [u8; 16];
/// rmw_zenoh's attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attachment {
    /// Sequence number.
    pub sequence_number: i64,
    /// Source timestamp, ns.
    pub source_timestamp: i64,
    /// GID.
    pub gid: Gid,
}
impl Attachment {
    /// Encode.
    pub fn encode(&self) -> [u8; 33] {
        let mut b = [0u8; 33];
        b[..8].copy_from_slice(&self.sequence_number.to_le_bytes());
        b[8..16].copy_from_slice(&self.source_timestamp.to_le_bytes());
        b[16] = 16;
        b[17..].copy_from_slice(&self.gid);
        b
    }
    /// Decode.
    pub fn decode(b: &[u8]) -> Result<Self, ()> {
        if b.len() != 33 || b[16] != 16 {
            return Err(());
        }
        let mut gid = [0u8; 16];
        gid.copy_from_slice(&b[17..]);
        Ok(Self {
            sequence_number: i64::from_le_bytes(b[..8].try_into().map_err(|_| ())?),
            source_timestamp: i64::from_le_bytes(b[8..16].try_into().map_err(|_| ())?),
            gid,
        })
    }
}
/// GID from a seed.
pub fn gid_from_seed(seed: u64) -> Gid {
    let mut r = crate::util::rng::SplitMix::new(seed);
    let mut g = [0u8; 16];
    g[..8].copy_from_slice(&r.next_u64().to_le_bytes());
    g[8..].copy_from_slice(&r.next_u64().to_le_bytes());
    g
}
/// Topic key.
pub fn topic_key(domain: u32, topic: &str, ros_type: &str) -> Option<String> {
    let (pkg, name) = ros_type.split_once("/msg/")?;
    Some(format!(
        "{domain}/{}/{pkg}::msg::dds_::{name}_/RIHS01_{}",
        topic.trim_start_matches('/'),
        "0".repeat(64)
    ))
}
/// Node token.
pub fn node_token(domain: u32, zid: &str, node_id: u64, ns: &str, name: &str) -> String {
    format!(
        "@ros2_lv/{domain}/{zid}/{node_id}/{node_id}/NN/%/{}/{name}",
        ns.replace('/', "%")
    )
}
/// Entity token.
#[allow(clippy::too_many_arguments)]
pub fn entity_token(
    domain: u32,
    zid: &str,
    node_id: u64,
    id: u64,
    publisher: bool,
    ns: &str,
    node: &str,
    topic: &str,
    ros_type: &str,
) -> Option<String> {
    let k = topic_key(domain, topic, ros_type)?;
    Some(format!(
        "@ros2_lv/{domain}/{zid}/{node_id}/{id}/{}/%/{}/{node}/{}",
        if publisher { "MP" } else { "MS" },
        ns.replace('/', "%"),
        k.replace('/', "%")
    ))
}
