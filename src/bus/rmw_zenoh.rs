//! rmw_zenoh's wire layout (ROS 2 Jazzy, `rmw_zenoh_cpp` 0.2.x), as pure functions: the key
//! expression a topic's samples travel on, the attachment every sample carries, the liveliness
//! tokens through which ROS 2 tools (`ros2 node list`, `ros2 topic info -v`) see nodes,
//! publishers and subscriptions, and the REP 2016 type hashes of every type the brain puts on
//! the wire. No zenoh here: the transport (`bus::zenoh`) declares what these functions name.
//!
//! Researched from the Jazzy release sources of `rmw_zenoh_cpp` (the `release/jazzy/
//! rmw_zenoh_cpp/0.2.10-1` tag of the ROS 2 release repository; `src/detail/...` below), its
//! `docs/design.md`, and zenoh-cpp's `include/zenoh/api/ext/serialization.hxx`:
//!
//! * topic key expression, `TopicInfo::TopicInfo` in `liveliness_utils.cpp`:
//!   `<domain_id>/<topic name without its leading and trailing '/'>/<DDS type name>/<type hash>`;
//!   subscriptions declare the exact key (no wildcard), so a wrong type hash means no data;
//! * attachment, `AttachmentData::serialize_to_zbytes` in `attachment_helpers.cpp`, through
//!   zenoh-cpp's `ext::Serializer`: `int64` sequence number, `int64` source timestamp (ns since
//!   the UNIX epoch, `get_system_time_in_ns` in `zenoh_utils.cpp`), then the 16-byte GID as a
//!   `std::array`, which zenoh-cpp serializes as a sequence: a LEB128 length (one byte, 16) and
//!   the bytes; 33 bytes in all. `PublisherData::publish` (`rmw_publisher_data.cpp`) sends it on
//!   every sample, the sequence number starting at 1 and growing by one per sample;
//!   `SubscriptionData` (`rmw_subscription_data.cpp`) drops a sample without an attachment, and
//!   counts a jump in one GID's sequence numbers as lost messages;
//! * liveliness tokens, `Entity::Entity` / `Entity::make` and `qos_to_keyexpr` in
//!   `liveliness_utils.cpp`, `NodeData::make` (`rmw_node_data.cpp`) and `PublisherData::make`:
//!   see [`LivelinessToken`];
//! * the default QoS the QoS string is relative to, `QoS::QoS` in `qos.cpp`: see [`Qos`].

use crate::util::rng::SplitMix;

/// The admin space of liveliness tokens (`ADMIN_SPACE`, `liveliness_utils.cpp`).
pub const ADMIN_SPACE: &str = "@ros2_lv";
/// Bytes in a GID (`RMW_GID_STORAGE_SIZE`).
pub const GID_LEN: usize = 16;
/// Bytes in an attachment: two `i64`, a length byte and the GID.
pub const ATTACHMENT_LEN: usize = 8 + 8 + 1 + GID_LEN;
/// The sequence number of a publisher's first sample (`sequence_number_(1)`,
/// `rmw_publisher_data.cpp`).
pub const FIRST_SEQUENCE_NUMBER: i64 = 1;

// ------------------------------------------------------------------ type hashes

/// REP 2016 type hashes (`RIHS01_` and the SHA-256 of the type description, lowercase hex) of
/// every type the brain puts on the wire, as ROS 2 Jazzy's rosidl computes them. Written by
/// rosbags (`ts.hash_rihs01`) into `tests/fixtures/wire/cases.json`, which `tests/wire.rs`
/// holds these to; the standard ones also match what `ros2 topic info -v` prints on Jazzy.
pub mod type_hash {
    /// `brainloop_msgs/msg/Embedding`.
    pub const EMBEDDING: &str =
        "RIHS01_8eba1637f87b6e2feecaf892f4a15b0b0003664f0dd712a8c59f414fc1a7a30e";
    /// `brainloop_msgs/msg/RegionFreshness`.
    pub const REGION_FRESHNESS: &str =
        "RIHS01_c78083efffd3c3a29c926f0285a36968334228d8de2ecc8a167c5aacf72e4cd7";
    /// `brainloop_msgs/msg/LoopHealth`.
    pub const LOOP_HEALTH: &str =
        "RIHS01_ab730d56f078c4f7751221e3961c8b68467a353474b8122e6055ab46a624a955";
    /// `geometry_msgs/msg/Twist`.
    pub const TWIST: &str =
        "RIHS01_9c45bf16fe0983d80e3cfe750d6835843d265a9a6c46bd2e609fcddde6fb8d2a";
    /// `geometry_msgs/msg/TwistStamped`.
    pub const TWIST_STAMPED: &str =
        "RIHS01_5f0fcd4f81d5d06ad9b4c4c63e3ea51b82d6ae4d0558f1d475229b1121db6f64";
    /// `std_msgs/msg/String`.
    pub const STRING: &str =
        "RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18";
    /// `std_msgs/msg/Bool`.
    pub const BOOL: &str =
        "RIHS01_feb91e995ff9ebd09c0cb3d2aed18b11077585839fb5db80193b62d74528f6c9";
    /// `std_msgs/msg/Float32`.
    pub const FLOAT32: &str =
        "RIHS01_7170d3d8f841f7be3172ce5f4f59f3a4d7f63b0447e8b33327601ad64d83d6e2";
    /// `sensor_msgs/msg/Image`.
    pub const IMAGE: &str =
        "RIHS01_d31d41a9a4c4bc8eae9be757b0beed306564f7526c88ea6a4588fb9582527d47";
    /// `nav_msgs/msg/Odometry`.
    pub const ODOMETRY: &str =
        "RIHS01_3cc97dc7fb7502f8714462c526d369e35b603cfc34d946e3f2eda2766dfec6e0";
}

/// Every ROS 2 type the brain puts on the wire, with its type hash.
pub const TYPE_HASHES: [(&str, &str); 10] = [
    ("brainloop_msgs/msg/Embedding", type_hash::EMBEDDING),
    (
        "brainloop_msgs/msg/RegionFreshness",
        type_hash::REGION_FRESHNESS,
    ),
    ("brainloop_msgs/msg/LoopHealth", type_hash::LOOP_HEALTH),
    ("geometry_msgs/msg/Twist", type_hash::TWIST),
    ("geometry_msgs/msg/TwistStamped", type_hash::TWIST_STAMPED),
    ("std_msgs/msg/String", type_hash::STRING),
    ("std_msgs/msg/Bool", type_hash::BOOL),
    ("std_msgs/msg/Float32", type_hash::FLOAT32),
    ("sensor_msgs/msg/Image", type_hash::IMAGE),
    ("nav_msgs/msg/Odometry", type_hash::ODOMETRY),
];

/// The type hash of a ROS 2 type (`geometry_msgs/msg/Twist`), if the brain uses it.
pub fn type_hash(ros_type: &str) -> Option<&'static str> {
    TYPE_HASHES
        .iter()
        .find(|(t, _)| *t == ros_type)
        .map(|(_, h)| *h)
}

/// The DDS type name of a ROS 2 message type: `geometry_msgs/msg/Twist` ->
/// `geometry_msgs::msg::dds_::Twist_` (`_create_type_name`, `type_support_common.cpp`).
/// `None` unless the name is `<package>/<msg|srv|action>/<Type>` with no empty part.
pub fn dds_type_name(ros_type: &str) -> Option<String> {
    let mut it = ros_type.split('/');
    let (pkg, kind, name) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || pkg.is_empty() || kind.is_empty() || name.is_empty() {
        return None;
    }
    Some(format!("{pkg}::{kind}::dds_::{name}_"))
}

/// The ROS 2 type name of a DDS type name, as the graph cache reports it
/// (`_demangle_if_ros_type`, `graph_cache.cpp`): `geometry_msgs::msg::dds_::Twist_` ->
/// `geometry_msgs/msg/Twist`. `None` for a name that is not a ROS type.
pub fn ros_type_name(dds_type: &str) -> Option<String> {
    let body = dds_type.strip_suffix('_')?;
    let at = body.find("dds_::")?;
    let (ns, name) = (&body[..at], &body[at + "dds_::".len()..]);
    if name.is_empty() {
        return None;
    }
    Some(format!("{}{name}", ns.replace("::", "/")))
}

// ------------------------------------------------------------------ topic key expression

/// `name` without one leading and one trailing `/` (`strip_slashes`, `liveliness_utils.cpp`).
fn strip_slashes(name: &str) -> &str {
    let s = name.strip_prefix('/').unwrap_or(name);
    s.strip_suffix('/').unwrap_or(s)
}

/// The key expression of a topic's samples,
/// `0/cmd_vel/geometry_msgs::msg::dds_::Twist_/RIHS01_…`.
/// `topic` is the fully qualified ROS name (`/robot1/chatter` keeps its inner `/`: namespaces
/// become key levels).
pub fn topic_keyexpr(domain_id: u32, topic: &str, dds_type: &str, type_hash: &str) -> String {
    format!(
        "{domain_id}/{}/{dds_type}/{type_hash}",
        strip_slashes(topic)
    )
}

/// The key expression of `topic` (fully qualified) carrying `ros_type`
/// (`geometry_msgs/msg/Twist`), with the type's hash from [`TYPE_HASHES`]; `None` for a type
/// without one there, or not of the `pkg/msg/Type` form.
pub fn topic_key(domain_id: u32, topic: &str, ros_type: &str) -> Option<String> {
    Some(topic_keyexpr(
        domain_id,
        topic,
        &dds_type_name(ros_type)?,
        type_hash(ros_type)?,
    ))
}

// ------------------------------------------------------------------ GID and attachment

/// A publisher's (or client's) GID: 16 bytes in the attachment of each sample.
///
/// rmw_zenoh derives its GIDs from the entity's liveliness token (XXH3-128 of the key
/// expression, `Entity::Entity`); nothing checks that a sample's GID is that hash (subscribers
/// only use it to tell publishers apart: `message_info.publisher_gid` and lost-message counting
/// per GID), so a GID that is stable per publisher and unique enough serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Gid(pub [u8; GID_LEN]);

impl Gid {
    /// 16 pseudo-random bytes from `seed` (SplitMix64; the same seed gives the same GID).
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = SplitMix::new(seed);
        let mut g = [0u8; GID_LEN];
        g[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
        g[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
        Gid(g)
    }

    /// The GID of entity `entity_id` of the zenoh session `zid`: distinct per entity and
    /// session, the same each time it is asked for (FNV-1a of the session id, mixed with the
    /// entity id, through [`Gid::from_seed`]).
    pub fn for_entity(zid: &str, entity_id: u64) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in zid.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        Self::from_seed(h ^ entity_id.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// Lowercase hex.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The attachment of a sample (`AttachmentData`, `attachment_helpers.cpp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attachment {
    /// The publisher's sequence number: [`FIRST_SEQUENCE_NUMBER`] for its first sample, then
    /// one more per sample.
    pub sequence_number: i64,
    /// When the sample was published, ns since the UNIX epoch (the system clock).
    pub source_timestamp: i64,
    /// The publisher's GID.
    pub gid: Gid,
}

/// Why bytes were not an attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttachmentError {
    /// Not [`ATTACHMENT_LEN`] bytes.
    #[error("attachment of {0} bytes, expected {ATTACHMENT_LEN}")]
    Length(usize),
    /// The GID's length byte is not 16.
    #[error("attachment GID length {0}, expected {GID_LEN}")]
    GidLength(u8),
}

impl Attachment {
    /// The 33 bytes: sequence number (i64 LE), source timestamp (i64 LE), `16`, the GID.
    pub fn encode(&self) -> [u8; ATTACHMENT_LEN] {
        let mut b = [0u8; ATTACHMENT_LEN];
        b[..8].copy_from_slice(&self.sequence_number.to_le_bytes());
        b[8..16].copy_from_slice(&self.source_timestamp.to_le_bytes());
        b[16] = GID_LEN as u8;
        b[17..].copy_from_slice(&self.gid.0);
        b
    }

    /// Parse the 33 bytes; any other length, or a GID length byte other than 16, is an error.
    pub fn decode(bytes: &[u8]) -> Result<Self, AttachmentError> {
        let b: &[u8; ATTACHMENT_LEN] = bytes
            .try_into()
            .map_err(|_| AttachmentError::Length(bytes.len()))?;
        if b[16] != GID_LEN as u8 {
            return Err(AttachmentError::GidLength(b[16]));
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&b[..8]);
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[8..16]);
        let mut gid = [0u8; GID_LEN];
        gid.copy_from_slice(&b[17..]);
        Ok(Self {
            sequence_number: i64::from_le_bytes(seq),
            source_timestamp: i64::from_le_bytes(ts),
            gid: Gid(gid),
        })
    }
}

// ------------------------------------------------------------------ QoS

/// `rmw_time_t`: a QoS duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RmwTime {
    /// Seconds.
    pub sec: u64,
    /// Nanoseconds.
    pub nsec: u64,
}

/// `RMW_DURATION_INFINITE` (`rmw/time.h`): rmw_zenoh's default deadline, lifespan and
/// liveliness lease.
pub const DURATION_INFINITE: RmwTime = RmwTime {
    sec: 9_223_372_036,
    nsec: 854_775_807,
};

macro_rules! rmw_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $n:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v = $n),* }
        impl $name {
            /// The `rmw/types.h` value.
            pub fn value(self) -> u8 { self as u8 }
            /// From an `rmw/types.h` value.
            pub fn from_value(v: u64) -> Option<Self> {
                match v { $($n => Some(Self::$v),)* _ => None }
            }
        }
    };
}

rmw_enum!(
    /// `rmw_qos_reliability_policy_e`.
    Reliability {
        /// `SYSTEM_DEFAULT`.
        SystemDefault = 0,
        /// `RELIABLE` (rmw_zenoh's default).
        Reliable = 1,
        /// `BEST_EFFORT`.
        BestEffort = 2,
        /// `UNKNOWN`.
        Unknown = 3,
        /// `BEST_AVAILABLE`.
        BestAvailable = 4,
    }
);
rmw_enum!(
    /// `rmw_qos_durability_policy_e`.
    Durability {
        /// `SYSTEM_DEFAULT`.
        SystemDefault = 0,
        /// `TRANSIENT_LOCAL`.
        TransientLocal = 1,
        /// `VOLATILE` (rmw_zenoh's default).
        Volatile = 2,
        /// `UNKNOWN`.
        Unknown = 3,
        /// `BEST_AVAILABLE`.
        BestAvailable = 4,
    }
);
rmw_enum!(
    /// `rmw_qos_history_policy_e`.
    History {
        /// `SYSTEM_DEFAULT`.
        SystemDefault = 0,
        /// `KEEP_LAST` (rmw_zenoh's default).
        KeepLast = 1,
        /// `KEEP_ALL`.
        KeepAll = 2,
        /// `UNKNOWN`.
        Unknown = 3,
    }
);
rmw_enum!(
    /// `rmw_qos_liveliness_policy_e`.
    Liveliness {
        /// `SYSTEM_DEFAULT`.
        SystemDefault = 0,
        /// `AUTOMATIC` (rmw_zenoh's default).
        Automatic = 1,
        /// `MANUAL_BY_NODE` (deprecated).
        ManualByNode = 2,
        /// `MANUAL_BY_TOPIC`.
        ManualByTopic = 3,
        /// `UNKNOWN`.
        Unknown = 4,
        /// `BEST_AVAILABLE`.
        BestAvailable = 5,
    }
);

/// An entity's QoS as its liveliness token carries it: the profile after rmw_zenoh's
/// `QoS::best_available_qos` (`qos.cpp`), which replaces `SYSTEM_DEFAULT` policies, depth 0 and
/// unspecified durations by [`Qos::RMW_ZENOH_DEFAULT`]'s.
///
/// The QoS string (`qos_to_keyexpr`, `liveliness_utils.cpp`) is
/// `<reliability>:<durability>:<history>,<depth>:<deadline sec>,<deadline nsec>:<lifespan sec>,
/// <lifespan nsec>:<liveliness>,<lease sec>,<lease nsec>`, each component the decimal
/// `rmw/types.h` value, or empty when it equals rmw_zenoh's default. So rclcpp's default
/// publisher with depth 10 is `::,10:,:,:,,`, and a best-effort depth-5 sensor stream
/// `2::,5:,:,:,,`. Seconds and nanoseconds of a duration are compared with the default's
/// separately, as rmw_zenoh does (a 10 s lifespan is `10,0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Qos {
    /// Reliability.
    pub reliability: Reliability,
    /// Durability.
    pub durability: Durability,
    /// History kind.
    pub history: History,
    /// History depth.
    pub depth: u64,
    /// Deadline.
    pub deadline: RmwTime,
    /// Lifespan.
    pub lifespan: RmwTime,
    /// Liveliness kind.
    pub liveliness: Liveliness,
    /// Liveliness lease duration.
    pub liveliness_lease: RmwTime,
}

impl Default for Qos {
    fn default() -> Self {
        Self::RMW_ZENOH_DEFAULT
    }
}

impl Qos {
    /// rmw_zenoh's default profile (`QoS::QoS`, `qos.cpp`): reliable, volatile, keep last 42,
    /// infinite deadline, lifespan and lease, automatic liveliness. Its string is `::,:,:,:,,`.
    pub const RMW_ZENOH_DEFAULT: Qos = Qos {
        reliability: Reliability::Reliable,
        durability: Durability::Volatile,
        history: History::KeepLast,
        depth: 42,
        deadline: DURATION_INFINITE,
        lifespan: DURATION_INFINITE,
        liveliness: Liveliness::Automatic,
        liveliness_lease: DURATION_INFINITE,
    };

    /// Reliable, volatile, keep last `depth`: rclcpp's `create_publisher(topic, depth)` as
    /// rmw_zenoh records it.
    pub const fn keep_last(depth: u64) -> Qos {
        Qos {
            depth,
            ..Self::RMW_ZENOH_DEFAULT
        }
    }

    /// This profile, best effort.
    pub const fn best_effort(self) -> Qos {
        Qos {
            reliability: Reliability::BestEffort,
            ..self
        }
    }

    /// This profile, transient local.
    pub const fn transient_local(self) -> Qos {
        Qos {
            durability: Durability::TransientLocal,
            ..self
        }
    }

    /// The QoS string of a liveliness token.
    pub fn to_keyexpr(&self) -> String {
        let d = Self::RMW_ZENOH_DEFAULT;
        fn opt<T: PartialEq + ToString>(v: T, default: T) -> String {
            if v == default {
                String::new()
            } else {
                v.to_string()
            }
        }
        format!(
            "{}:{}:{},{}:{},{}:{},{}:{},{},{}",
            opt(self.reliability.value(), d.reliability.value()),
            opt(self.durability.value(), d.durability.value()),
            opt(self.history.value(), d.history.value()),
            opt(self.depth, d.depth),
            opt(self.deadline.sec, d.deadline.sec),
            opt(self.deadline.nsec, d.deadline.nsec),
            opt(self.lifespan.sec, d.lifespan.sec),
            opt(self.lifespan.nsec, d.lifespan.nsec),
            opt(self.liveliness.value(), d.liveliness.value()),
            opt(self.liveliness_lease.sec, d.liveliness_lease.sec),
            opt(self.liveliness_lease.nsec, d.liveliness_lease.nsec),
        )
    }

    /// Parse a QoS string (`keyexpr_to_qos`, `liveliness_utils.cpp`): empty components are the
    /// defaults; a policy value outside its `rmw/types.h` enum, or a number that is not plain
    /// decimal, is an error. Like rmw_zenoh, extra components are ignored.
    pub fn parse(s: &str) -> Result<Qos, TokenError> {
        let bad = || TokenError::Qos(s.to_string());
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() < 6 {
            return Err(bad());
        }
        let sub = |i: usize, n: usize| -> Result<Vec<&str>, TokenError> {
            let v: Vec<&str> = parts[i].split(',').collect();
            if v.len() < n {
                return Err(bad());
            }
            Ok(v)
        };
        let (hist, dl, ls, lv) = (sub(2, 2)?, sub(3, 2)?, sub(4, 2)?, sub(5, 3)?);
        let num = |t: &str, default: u64| -> Result<u64, TokenError> {
            if t.is_empty() {
                return Ok(default);
            }
            if !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            t.parse().map_err(|_| bad())
        };
        let d = Self::RMW_ZENOH_DEFAULT;
        let policy = |t: &str, default: u8| num(t, u64::from(default));
        Ok(Qos {
            reliability: Reliability::from_value(policy(parts[0], d.reliability.value())?)
                .ok_or_else(bad)?,
            durability: Durability::from_value(policy(parts[1], d.durability.value())?)
                .ok_or_else(bad)?,
            history: History::from_value(policy(hist[0], d.history.value())?).ok_or_else(bad)?,
            depth: num(hist[1], d.depth)?,
            deadline: RmwTime {
                sec: num(dl[0], d.deadline.sec)?,
                nsec: num(dl[1], d.deadline.nsec)?,
            },
            lifespan: RmwTime {
                sec: num(ls[0], d.lifespan.sec)?,
                nsec: num(ls[1], d.lifespan.nsec)?,
            },
            liveliness: Liveliness::from_value(policy(lv[0], d.liveliness.value())?)
                .ok_or_else(bad)?,
            liveliness_lease: RmwTime {
                sec: num(lv[1], d.liveliness_lease.sec)?,
                nsec: num(lv[2], d.liveliness_lease.nsec)?,
            },
        })
    }
}

// ------------------------------------------------------------------ liveliness tokens

/// The kind of entity a liveliness token announces (`entity_to_str`, `liveliness_utils.cpp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityKind {
    /// `NN`.
    Node,
    /// `MP`.
    Publisher,
    /// `MS`.
    Subscription,
    /// `SS`.
    ServiceServer,
    /// `SC`.
    ServiceClient,
}

impl EntityKind {
    /// The token's two letters.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Node => "NN",
            EntityKind::Publisher => "MP",
            EntityKind::Subscription => "MS",
            EntityKind::ServiceServer => "SS",
            EntityKind::ServiceClient => "SC",
        }
    }

    /// From the token's two letters.
    pub fn parse(s: &str) -> Option<Self> {
        [
            EntityKind::Node,
            EntityKind::Publisher,
            EntityKind::Subscription,
            EntityKind::ServiceServer,
            EntityKind::ServiceClient,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// `/` -> `%` (`mangle_name`, `liveliness_utils.cpp`): a name fits in one key chunk.
pub fn mangle(name: &str) -> String {
    name.replace('/', "%")
}

/// `%` -> `/` (`demangle_name`).
pub fn demangle(chunk: &str) -> String {
    chunk.replace('%', "/")
}

/// The topic part of a publisher's or subscription's token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicPart {
    /// The fully qualified topic name, `/cmd_vel`.
    pub name: String,
    /// The DDS type name, `geometry_msgs::msg::dds_::Twist_`.
    pub dds_type: String,
    /// The type hash, `RIHS01_…`.
    pub type_hash: String,
    /// The QoS.
    pub qos: Qos,
}

/// A liveliness token: how one entity appears in the ROS 2 graph (`Entity`,
/// `liveliness_utils.cpp`). Its key expression ([`LivelinessToken::keyexpr`]) is
///
/// ```text
/// @ros2_lv/<domain_id>/<zid>/<node id>/<entity id>/<NN|MP|MS|SS|SC>/<enclave>/<namespace>/<node name>
///     [/<topic name>/<DDS type name>/<type hash>/<QoS string>]   (all but nodes)
/// ```
///
/// * `<zid>`: the zenoh session id as zenoh prints it (`zid.to_string()` in rmw_zenoh; in Rust
///   `session.zid().to_string()`, lowercase hex without leading zeros);
/// * `<node id>`, `<entity id>`: decimal, from one counter per context starting at 0
///   (`rmw_context_impl_s::get_next_entity_id`) that nodes and their entities share; a node's
///   token repeats its id (`NodeData::make`: `nid == id`);
/// * `<enclave>`, `<namespace>`, `<node name>`, `<topic name>`, `<DDS type name>`, `<type hash>`:
///   mangled ([`mangle`], `/` -> `%`). The enclave is rcl's, `/` unless set (`%`); the namespace
///   `/` at the root (`%`), `/robot1` -> `%robot1`; the topic its fully qualified name
///   (`/cmd_vel` -> `%cmd_vel`). rmw_zenoh refuses an empty namespace or node name, and a parser
///   refuses an empty chunk (`Entity::make`), so none may be empty.
///
/// Example (rmw_zenoh's `docs/design.md`): the `talker` of demo_nodes_cpp on domain 2,
/// `@ros2_lv/2/8b20917502ee955ac4476e0266340d5c/0/10/MP/%/%/talker/%chatter/std_msgs::msg::dds_::String_/RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18/::,7:,:,:,,`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LivelinessToken {
    /// `ROS_DOMAIN_ID`.
    pub domain_id: u32,
    /// The zenoh session id.
    pub zid: String,
    /// The node's id in its context.
    pub node_id: u64,
    /// The entity's id in its context (the node's own for a node).
    pub entity_id: u64,
    /// What it is.
    pub kind: EntityKind,
    /// The SROS enclave, `/` when unset.
    pub enclave: String,
    /// The node namespace, `/` at the root.
    pub namespace: String,
    /// The node name.
    pub node_name: String,
    /// The topic (all kinds but [`EntityKind::Node`]).
    pub topic: Option<TopicPart>,
}

/// Why a string is not a liveliness token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not under [`ADMIN_SPACE`].
    #[error("not a ROS 2 liveliness token: {0:?}")]
    AdminSpace(String),
    /// Too few chunks for its kind, or an empty one.
    #[error("malformed liveliness token: {0:?}")]
    Malformed(String),
    /// An unknown entity kind.
    #[error("unknown entity kind {0:?}")]
    Kind(String),
    /// A domain or id that is not a decimal number.
    #[error("bad number {0:?} in a liveliness token")]
    Number(String),
    /// A QoS string that does not parse.
    #[error("bad QoS string {0:?}")]
    Qos(String),
}

impl LivelinessToken {
    /// A node's token: `node_id` is the node's id in its context; `enclave` `/` unless SROS
    /// sets one; `namespace` `/` at the root. An empty enclave or namespace is taken as `/`
    /// (rcl never passes one; rmw_zenoh would cut the key short at an empty chunk).
    pub fn node(
        domain_id: u32,
        zid: &str,
        node_id: u64,
        enclave: &str,
        namespace: &str,
        node_name: &str,
    ) -> Self {
        Self {
            domain_id,
            zid: zid.to_string(),
            node_id,
            entity_id: node_id,
            kind: EntityKind::Node,
            enclave: if enclave.is_empty() { "/" } else { enclave }.to_string(),
            namespace: if namespace.is_empty() { "/" } else { namespace }.to_string(),
            node_name: node_name.to_string(),
            topic: None,
        }
    }

    /// The token of a publisher (`MP`) or subscription (`MS`) of `node` (a node token), with
    /// id `entity_id` on `topic` (fully qualified) of `ros_type`; `None` for another `kind`, or
    /// a type without a known hash ([`type_hash()`]) or not of the `pkg/msg/Type` form.
    pub fn endpoint(
        node: &LivelinessToken,
        kind: EntityKind,
        entity_id: u64,
        topic: &str,
        ros_type: &str,
        qos: Qos,
    ) -> Option<Self> {
        if !matches!(kind, EntityKind::Publisher | EntityKind::Subscription) {
            return None;
        }
        Some(Self {
            entity_id,
            kind,
            topic: Some(TopicPart {
                name: topic.to_string(),
                dds_type: dds_type_name(ros_type)?,
                type_hash: type_hash(ros_type)?.to_string(),
                qos,
            }),
            ..node.clone()
        })
    }

    /// The token of a publisher of `node`.
    pub fn publisher(
        node: &LivelinessToken,
        entity_id: u64,
        topic: &str,
        ros_type: &str,
        qos: Qos,
    ) -> Option<Self> {
        Self::endpoint(node, EntityKind::Publisher, entity_id, topic, ros_type, qos)
    }

    /// The token of a subscription of `node`.
    pub fn subscription(
        node: &LivelinessToken,
        entity_id: u64,
        topic: &str,
        ros_type: &str,
        qos: Qos,
    ) -> Option<Self> {
        Self::endpoint(
            node,
            EntityKind::Subscription,
            entity_id,
            topic,
            ros_type,
            qos,
        )
    }

    /// The key expression to declare the token on.
    pub fn keyexpr(&self) -> String {
        let mut s = format!(
            "{ADMIN_SPACE}/{}/{}/{}/{}/{}/{}/{}/{}",
            self.domain_id,
            self.zid,
            self.node_id,
            self.entity_id,
            self.kind.as_str(),
            mangle(&self.enclave),
            mangle(&self.namespace),
            mangle(&self.node_name),
        );
        if let Some(t) = &self.topic {
            s.push('/');
            s.push_str(&mangle(&t.name));
            s.push('/');
            s.push_str(&mangle(&t.dds_type));
            s.push('/');
            s.push_str(&mangle(&t.type_hash));
            s.push('/');
            s.push_str(&t.qos.to_keyexpr());
        }
        s
    }

    /// The key expression of this entity's samples (`None` for a node).
    pub fn topic_keyexpr(&self) -> Option<String> {
        let t = self.topic.as_ref()?;
        Some(topic_keyexpr(
            self.domain_id,
            &t.name,
            &t.dds_type,
            &t.type_hash,
        ))
    }

    /// Parse a token as rmw_zenoh's graph cache does (`Entity::make(keyexpr)`): at least 9
    /// non-empty chunks, 13 for all kinds but nodes; chunks past those are ignored. The
    /// type hash is not checked against [`TYPE_HASHES`] (tokens of other programs' types
    /// parse too).
    pub fn parse(keyexpr: &str) -> Result<Self, TokenError> {
        let malformed = || TokenError::Malformed(keyexpr.to_string());
        let p: Vec<&str> = keyexpr.split('/').collect();
        if p.first() != Some(&ADMIN_SPACE) {
            return Err(TokenError::AdminSpace(keyexpr.to_string()));
        }
        if p.len() < 9 || p.iter().any(|c| c.is_empty()) {
            return Err(malformed());
        }
        let number = |s: &str| -> Result<u64, TokenError> {
            if !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(TokenError::Number(s.to_string()));
            }
            s.parse().map_err(|_| TokenError::Number(s.to_string()))
        };
        let kind = EntityKind::parse(p[5]).ok_or_else(|| TokenError::Kind(p[5].to_string()))?;
        let domain = number(p[1])?;
        let domain_id = u32::try_from(domain).map_err(|_| TokenError::Number(p[1].into()))?;
        let topic = if kind == EntityKind::Node {
            None
        } else {
            if p.len() < 13 {
                return Err(malformed());
            }
            Some(TopicPart {
                name: demangle(p[9]),
                dds_type: demangle(p[10]),
                type_hash: demangle(p[11]),
                qos: Qos::parse(p[12])?,
            })
        };
        Ok(Self {
            domain_id,
            zid: p[2].to_string(),
            node_id: number(p[3])?,
            entity_id: number(p[4])?,
            kind,
            enclave: demangle(p[6]),
            namespace: demangle(p[7]),
            node_name: demangle(p[8]),
            topic,
        })
    }

    /// The node's fully qualified name, `/robot1/brain` or `/brain`.
    pub fn node_fqn(&self) -> String {
        if self.namespace.ends_with('/') {
            format!("{}{}", self.namespace, self.node_name)
        } else {
            format!("{}/{}", self.namespace, self.node_name)
        }
    }
}

/// The key expression a graph cache subscribes to and queries for every token of a domain
/// (`subscription_token`, `liveliness_utils.cpp`): `@ros2_lv/0/**`.
pub fn liveliness_keyexpr_for_domain(domain_id: u32) -> String {
    format!("{ADMIN_SPACE}/{domain_id}/**")
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRING_HASH: &str =
        "RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18";

    // The examples of rmw_zenoh's docs/design.md ("Topic and Service name mapping to Zenoh key
    // expressions" and "Graph Cache"), verbatim.
    const DESIGN_LISTENER_NODE: &str =
        "@ros2_lv/2/aac3178e146ba6f1fc6e6a4085e77f21/0/0/NN/%/%/listener";
    const DESIGN_LISTENER_SUB: &str = "@ros2_lv/2/aac3178e146ba6f1fc6e6a4085e77f21/0/10/MS/%/%/listener/%chatter/std_msgs::msg::dds_::String_/RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18/::,10:,:,:,,";
    const DESIGN_TALKER_PUB: &str = "@ros2_lv/2/8b20917502ee955ac4476e0266340d5c/0/10/MP/%/%/talker/%chatter/std_msgs::msg::dds_::String_/RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18/::,7:,:,:,,";
    const DESIGN_SERVER: &str = "@ros2_lv/2/f9980ee0495eaafb3e38f0d19e2eae12/0/10/SS/%/%/add_two_ints_server/%add_two_ints/example_interfaces::srv::dds_::AddTwoInts_/RIHS01_e118de6bf5eeb66a2491b5bda11202e7b68f198d6f67922cf30364858239c81a/::,10:,:,:,,";

    #[test]
    fn topic_keyexprs_are_the_design_docs() {
        assert_eq!(
            topic_keyexpr(0, "/chatter", "std_msgs::msg::dds_::String_", STRING_HASH),
            "0/chatter/std_msgs::msg::dds_::String_/RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18"
        );
        assert_eq!(
            topic_keyexpr(0, "/robot1/chatter", "std_msgs::msg::dds_::String_", STRING_HASH),
            "0/robot1/chatter/std_msgs::msg::dds_::String_/RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18"
        );
        assert_eq!(
            topic_keyexpr(
                2,
                "/add_two_ints",
                "example_interfaces::srv::dds_::AddTwoInts_",
                "RIHS01_e118de6bf5eeb66a2491b5bda11202e7b68f198d6f67922cf30364858239c81a"
            ),
            "2/add_two_ints/example_interfaces::srv::dds_::AddTwoInts_/RIHS01_e118de6bf5eeb66a2491b5bda11202e7b68f198d6f67922cf30364858239c81a"
        );
        let cmd_vel = crate::bus::ros_map::CMD_VEL_UNSTAMPED;
        assert_eq!(
            topic_key(0, cmd_vel.name, &cmd_vel.ros_type()).unwrap(),
            format!(
                "0/cmd_vel/geometry_msgs::msg::dds_::Twist_/{}",
                type_hash::TWIST
            )
        );
        // The Jazzy /cmd_vel, with the type hash rosbags computes (tests/fixtures/cdr/jazzy.json).
        let stamped = crate::bus::ros_map::CMD_VEL;
        assert_eq!(
            topic_key(0, stamped.name, &stamped.ros_type()).unwrap(),
            "0/cmd_vel/geometry_msgs::msg::dds_::TwistStamped_/RIHS01_5f0fcd4f81d5d06ad9b4c4c63e3ea51b82d6ae4d0558f1d475229b1121db6f64"
        );
        assert_eq!(topic_key(0, "/x", "std_msgs/msg/Int8"), None);
    }

    #[test]
    fn tokens_are_the_design_docs() {
        let listener = LivelinessToken::node(
            2,
            "aac3178e146ba6f1fc6e6a4085e77f21",
            0,
            "/",
            "/",
            "listener",
        );
        assert_eq!(listener.keyexpr(), DESIGN_LISTENER_NODE);
        let sub = LivelinessToken::subscription(
            &listener,
            10,
            "/chatter",
            "std_msgs/msg/String",
            Qos::keep_last(10),
        )
        .unwrap();
        assert_eq!(sub.keyexpr(), DESIGN_LISTENER_SUB);
        let talker =
            LivelinessToken::node(2, "8b20917502ee955ac4476e0266340d5c", 0, "/", "/", "talker");
        let publisher = LivelinessToken::publisher(
            &talker,
            10,
            "/chatter",
            "std_msgs/msg/String",
            Qos::keep_last(7),
        )
        .unwrap();
        assert_eq!(publisher.keyexpr(), DESIGN_TALKER_PUB);
        assert_eq!(
            publisher.topic_keyexpr().unwrap(),
            format!("2/chatter/std_msgs::msg::dds_::String_/{STRING_HASH}")
        );
        for k in [
            DESIGN_LISTENER_NODE,
            DESIGN_LISTENER_SUB,
            DESIGN_TALKER_PUB,
            DESIGN_SERVER,
        ] {
            assert_eq!(LivelinessToken::parse(k).unwrap().keyexpr(), k);
        }
    }

    #[test]
    fn a_parsed_token_is_what_a_ros_tool_sees() {
        let t = LivelinessToken::parse(DESIGN_TALKER_PUB).unwrap();
        assert_eq!(t.domain_id, 2);
        assert_eq!(t.zid, "8b20917502ee955ac4476e0266340d5c");
        assert_eq!((t.node_id, t.entity_id), (0, 10));
        assert_eq!(t.kind, EntityKind::Publisher);
        assert_eq!((t.enclave.as_str(), t.namespace.as_str()), ("/", "/"));
        assert_eq!(t.node_fqn(), "/talker");
        let topic = t.topic.unwrap();
        assert_eq!(topic.name, "/chatter");
        assert_eq!(
            ros_type_name(&topic.dds_type).as_deref(),
            Some("std_msgs/msg/String")
        );
        assert_eq!(topic.type_hash, STRING_HASH);
        assert_eq!(topic.qos, Qos::keep_last(7));
        let s = LivelinessToken::parse(DESIGN_SERVER).unwrap();
        assert_eq!(s.kind, EntityKind::ServiceServer);
        assert_eq!(
            ros_type_name(&s.topic.unwrap().dds_type).as_deref(),
            Some("example_interfaces/srv/AddTwoInts")
        );
    }

    #[test]
    fn namespaces_and_enclaves_are_mangled() {
        let root = LivelinessToken::node(0, "abc", 0, "", "", "brain");
        assert_eq!(root.keyexpr(), "@ros2_lv/0/abc/0/0/NN/%/%/brain");
        let n = LivelinessToken::node(0, "abc", 3, "/sros/brain", "/robot1", "brain");
        assert_eq!(
            n.keyexpr(),
            "@ros2_lv/0/abc/3/3/NN/%sros%brain/%robot1/brain"
        );
        let p = LivelinessToken::publisher(
            &n,
            4,
            "/robot1/brainloop/embedding",
            "brainloop_msgs/msg/Embedding",
            Qos::keep_last(1).best_effort(),
        )
        .unwrap();
        assert_eq!(
            p.keyexpr(),
            format!(
                "@ros2_lv/0/abc/3/4/MP/%sros%brain/%robot1/brain/%robot1%brainloop%embedding/brainloop_msgs::msg::dds_::Embedding_/{}/2::,1:,:,:,,",
                type_hash::EMBEDDING
            )
        );
        assert_eq!(
            p.topic_keyexpr().unwrap(),
            format!(
                "0/robot1/brainloop/embedding/brainloop_msgs::msg::dds_::Embedding_/{}",
                type_hash::EMBEDDING
            )
        );
        let back = LivelinessToken::parse(&p.keyexpr()).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.node_fqn(), "/robot1/brain");
    }

    #[test]
    fn qos_strings() {
        assert_eq!(Qos::RMW_ZENOH_DEFAULT.to_keyexpr(), "::,:,:,:,,");
        assert_eq!(Qos::keep_last(10).to_keyexpr(), "::,10:,:,:,,");
        assert_eq!(Qos::keep_last(5).best_effort().to_keyexpr(), "2::,5:,:,:,,");
        // /rosout as rcl creates it: transient local, depth 1000, lifespan 10 s.
        let rosout = Qos {
            lifespan: RmwTime { sec: 10, nsec: 0 },
            ..Qos::keep_last(1000).transient_local()
        };
        assert_eq!(rosout.to_keyexpr(), ":1:,1000:,:10,0:,,");
        let all = Qos {
            history: History::KeepAll,
            liveliness: Liveliness::ManualByTopic,
            deadline: RmwTime { sec: 1, nsec: 500 },
            liveliness_lease: RmwTime { sec: 2, nsec: 0 },
            ..Qos::RMW_ZENOH_DEFAULT
        };
        assert_eq!(all.to_keyexpr(), "::2,:1,500:,:3,2,0");
        for q in [Qos::RMW_ZENOH_DEFAULT, Qos::keep_last(10), rosout, all] {
            assert_eq!(Qos::parse(&q.to_keyexpr()), Ok(q));
        }
        for bad in [
            "",
            "::,10:,:,",
            "9::,:,:,:,,",
            "::,x:,:,:,,",
            "::,-1:,:,:,,",
            "::,:,:,:,",
        ] {
            assert!(Qos::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in [
            "",
            "@ros2_lv",
            "@ros2_lv/0/abc/0/0/NN/%/%",
            "@ros2_lv/0/abc/0/0/NN/%//listener",
            "@ros2_lv/0/abc/0/0/XX/%/%/listener",
            "@ros2_lv/x/abc/0/0/NN/%/%/listener",
            "@ros2_lv/0/abc/0/-1/NN/%/%/listener",
            "@ros2_lv/0/abc/0/1/MP/%/%/talker/%chatter",
            "@ros2_lv/0/abc/0/1/MP/%/%/talker/%chatter/T/H/bad",
            "@other/0/abc/0/0/NN/%/%/listener",
        ] {
            assert!(LivelinessToken::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(liveliness_keyexpr_for_domain(0), "@ros2_lv/0/**");
    }

    #[test]
    fn attachments_are_33_bytes() {
        let a = Attachment {
            sequence_number: 1,
            source_timestamp: 1_700_000_000_123_456_789,
            gid: Gid(core::array::from_fn(|i| i as u8)),
        };
        let b = a.encode();
        assert_eq!(b.len(), 33);
        assert_eq!(&b[..8], &1i64.to_le_bytes());
        assert_eq!(&b[8..16], &1_700_000_000_123_456_789i64.to_le_bytes());
        assert_eq!(b[16], 16);
        assert_eq!(&b[17..], &a.gid.0);
        assert_eq!(Attachment::decode(&b), Ok(a));
        assert_eq!(
            Attachment::decode(&b[..32]),
            Err(AttachmentError::Length(32))
        );
        let mut long = b.to_vec();
        long.push(0);
        assert_eq!(Attachment::decode(&long), Err(AttachmentError::Length(34)));
        let mut wrong = b;
        wrong[16] = 15;
        assert_eq!(
            Attachment::decode(&wrong),
            Err(AttachmentError::GidLength(15))
        );
    }

    #[test]
    fn gids_are_stable_and_distinct() {
        assert_eq!(Gid::from_seed(5), Gid::from_seed(5));
        assert_ne!(Gid::from_seed(5), Gid::from_seed(6));
        let z = "8b20917502ee955ac4476e0266340d5c";
        assert_eq!(Gid::for_entity(z, 1), Gid::for_entity(z, 1));
        let mut seen = std::collections::HashSet::new();
        for zid in [z, "aac3178e146ba6f1fc6e6a4085e77f21"] {
            for id in 0..100 {
                assert!(seen.insert(Gid::for_entity(zid, id)));
            }
        }
        assert_eq!(Gid(core::array::from_fn(|i| i as u8 * 17)).hex().len(), 32);
    }

    #[test]
    fn type_names() {
        assert_eq!(
            dds_type_name("geometry_msgs/msg/TwistStamped").as_deref(),
            Some("geometry_msgs::msg::dds_::TwistStamped_")
        );
        assert_eq!(dds_type_name("Twist"), None);
        assert_eq!(dds_type_name("a//b"), None);
        assert_eq!(ros_type_name("not_a_ros_type"), None);
        for (t, h) in TYPE_HASHES {
            assert_eq!(
                ros_type_name(&dds_type_name(t).unwrap()).as_deref(),
                Some(t)
            );
            assert!(h.starts_with("RIHS01_") && h.len() == 71, "{t}");
            assert_eq!(type_hash(t), Some(h));
        }
        assert_eq!(type_hash("std_msgs/msg/Int8"), None);
    }

    proptest::proptest! {
        #[test]
        fn any_string_parses_without_panicking(s in "[@a-z0-9_%/:,]{0,80}") {
            let _ = LivelinessToken::parse(&s);
            let _ = Qos::parse(&s);
            let _ = ros_type_name(&s);
        }
    }
}
