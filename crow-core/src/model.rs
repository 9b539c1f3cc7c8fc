//! The event model: what CROW stores about customers, channel by channel.
//!
//! Timestamps are milliseconds since the Unix epoch (`i64`, UTC). crow-core never reads
//! the clock itself: callers pass `received_at` and `now`, which keeps the model
//! deterministic and usable on `wasm32-unknown-unknown`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// JSON object used for free-form properties and traits.
pub type Properties = Map<String, Value>;

/// The kind of a website/app interaction, as in the Segment spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// A page view.
    Page,
    /// A custom action (`name` says which).
    Track,
    /// Ties a user id (and traits) to the current anonymous id.
    Identify,
    /// A mobile screen view.
    Screen,
    /// Associates the user with a group (account, company).
    Group,
    /// Merges a previous id into a user id.
    Alias,
}

impl EventType {
    /// All types, in a stable order.
    pub const ALL: [EventType; 6] = [
        EventType::Page,
        EventType::Track,
        EventType::Identify,
        EventType::Screen,
        EventType::Group,
        EventType::Alias,
    ];

    /// The lowercase wire name (`"page"`, `"track"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Page => "page",
            EventType::Track => "track",
            EventType::Identify => "identify",
            EventType::Screen => "screen",
            EventType::Group => "group",
            EventType::Alias => "alias",
        }
    }

    /// Parses a wire name; accepts the one-letter forms of CROW's compact layout
    /// (`p`, `t`, `i`, `s`, `g`, `a`) as well.
    pub fn parse(s: &str) -> Option<EventType> {
        Some(match s {
            "page" | "p" => EventType::Page,
            "track" | "t" => EventType::Track,
            "identify" | "i" => EventType::Identify,
            "screen" | "s" => EventType::Screen,
            "group" | "g" => EventType::Group,
            "alias" | "a" => EventType::Alias,
            _ => return None,
        })
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which wire protocol an interaction arrived through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// CROW's own `POST /api/v1/events` (the website SDK).
    #[default]
    Crow,
    /// The Segment HTTP Tracking API.
    Segment,
    /// The PostHog capture API.
    Posthog,
    /// `crow ingest FILE.jsonl`.
    Import,
}

impl Source {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Crow => "crow",
            Source::Segment => "segment",
            Source::Posthog => "posthog",
            Source::Import => "import",
        }
    }
}

/// The page an event happened on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PageContext {
    /// Full URL (query secrets and PII scrubbed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// URL path, e.g. `/products/42`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The referring URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// Document title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The query string (`?a=b`), scrubbed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
}

/// Screen dimensions reported by the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Screen {
    /// Width in CSS pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Height in CSS pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Device pixel ratio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub density: Option<f64>,
}

/// Marketing campaign (UTM parameters and ad click ids).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Campaign {
    /// `utm_campaign`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `utm_source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `utm_medium`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    /// `utm_term`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
    /// `utm_content`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The name of an ad click id present on the landing URL (`gclid`, `fbclid`, `msclkid`, ...).
    /// Only the parameter name is kept: the id itself identifies a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub click_id: Option<String>,
}

impl Campaign {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        self == &Campaign::default()
    }

    /// A key that identifies the campaign for sessionization: a new value starts a new session.
    pub fn key(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        Some(format!(
            "{}|{}|{}|{}",
            self.source.as_deref().unwrap_or(""),
            self.medium.as_deref().unwrap_or(""),
            self.name.as_deref().unwrap_or(""),
            self.click_id.as_deref().unwrap_or("")
        ))
    }
}

/// Device class derived from the user agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[serde(rename_all = "lowercase")]
pub enum DeviceClass {
    /// Desktop or laptop browser.
    Desktop,
    /// Phone.
    Mobile,
    /// Tablet.
    Tablet,
    /// Crawler, monitor or other automated client.
    Bot,
    /// Server-side library, TV, console or anything else.
    #[default]
    Other,
}

impl DeviceClass {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceClass::Desktop => "desktop",
            DeviceClass::Mobile => "mobile",
            DeviceClass::Tablet => "tablet",
            DeviceClass::Bot => "bot",
            DeviceClass::Other => "other",
        }
    }
}

/// What CROW keeps of a user agent: never the raw string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserAgentInfo {
    /// Browser family, e.g. `Chrome`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
    /// Major browser version, e.g. `124`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser_version: Option<String>,
    /// Operating system family, e.g. `Windows`, `iOS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// Device class.
    #[serde(default)]
    pub device: DeviceClass,
}

/// The library that sent an event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Library {
    /// e.g. `analytics-python`.
    pub name: String,
    /// e.g. `2.3.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// The context of an interaction: where, on what, from which campaign.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Context {
    /// The page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<PageContext>,
    /// Parsed, reduced user agent (the raw string is never stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<UserAgentInfo>,
    /// e.g. `en-US`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// IANA time zone, e.g. `Europe/Paris`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Screen size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<Screen>,
    /// UTM campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<Campaign>,
    /// Client IP, truncated (IPv4 /24, IPv6 /48) before storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Sending library.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library: Option<Library>,
    /// Any other context keys the client sent, scrubbed.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub extra: Properties,
}

/// Where the visitor came from, as classified by the `process-interaction` workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[serde(rename_all = "lowercase")]
pub enum ReferrerClass {
    /// Organic search engine.
    Search,
    /// Social network.
    Social,
    /// E-mail campaign or webmail.
    Email,
    /// Paid traffic (click ids, `utm_medium=cpc`, ...).
    Paid,
    /// No referrer.
    Direct,
    /// Same site.
    Internal,
    /// Any other site.
    Referral,
}

impl ReferrerClass {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReferrerClass::Search => "search",
            ReferrerClass::Social => "social",
            ReferrerClass::Email => "email",
            ReferrerClass::Paid => "paid",
            ReferrerClass::Direct => "direct",
            ReferrerClass::Internal => "internal",
            ReferrerClass::Referral => "referral",
        }
    }

    /// Parses [`ReferrerClass::as_str`].
    pub fn parse(s: &str) -> Option<ReferrerClass> {
        Some(match s {
            "search" => ReferrerClass::Search,
            "social" => ReferrerClass::Social,
            "email" => ReferrerClass::Email,
            "paid" => ReferrerClass::Paid,
            "direct" => ReferrerClass::Direct,
            "internal" => ReferrerClass::Internal,
            "referral" => ReferrerClass::Referral,
            _ => return None,
        })
    }
}

/// One website or app interaction, after validation and scrubbing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Interaction {
    /// The client-supplied event id (Segment `messageId`, PostHog `uuid`, CROW `i`), unique
    /// within the org and used for idempotency. When a client sends none, CROW derives one
    /// from the event's content, so a resent batch is still stored once.
    pub id: String,
    /// Owning organization.
    pub org_id: String,
    /// Kind of interaction.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// Event name (track) or page/screen name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Anonymous device/browser id (pseudonymized when it contained PII).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<String>,
    /// Known user id (pseudonymized when it contained PII).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Session id: the client's, until `process-interaction` assigns CROW's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Group id (group events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// Previous id (alias events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_id: Option<String>,
    /// Free-form properties (scrubbed).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub properties: Properties,
    /// User or group traits (identify/group; scrubbed).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub traits: Properties,
    /// Context.
    #[serde(default)]
    pub context: Context,
    /// When the event happened, corrected for client clock skew (see [`crate::time::corrected_timestamp`]).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub timestamp: Millis,
    /// The client's own timestamp, uncorrected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub original_timestamp: Option<Millis>,
    /// When the client sent the batch, by the client's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub sent_at: Option<Millis>,
    /// When CROW received it, by the server's clock.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub received_at: Millis,
    /// Wire protocol.
    #[serde(default)]
    pub source: Source,
    /// True when the user agent is a known crawler. Bots are flagged, never dropped.
    #[serde(default)]
    pub is_bot: bool,
    /// How many PII values were scrubbed out of this event at ingest.
    #[serde(default)]
    pub pii_scrubbed: u32,
    /// The person after identity stitching (set by `process-interaction`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_id: Option<String>,
    /// Referrer class (set by `process-interaction`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer_class: Option<ReferrerClass>,
    /// Sentiment, entities and language of the event's text, for events that carry one (set by
    /// `process-interaction`; read from the store, never taken from a client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<crate::ports::TextAnalysis>,
}

impl Interaction {
    /// The id the person behind this event is known by before identity stitching:
    /// the user id when set, else the anonymous id.
    pub fn person_hint(&self) -> Option<&str> {
        self.user_id.as_deref().or(self.anonymous_id.as_deref())
    }
}

/// Enrichment written by the `process-interaction` workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrichment {
    /// Event id.
    pub event_id: String,
    /// The person after identity stitching.
    pub person_id: String,
    /// CROW session id.
    pub session_id: String,
    /// Referrer class.
    pub referrer_class: ReferrerClass,
}

/// What text analysis found in one interaction that carries text (a search query, feedback, a
/// chat message, a review), as `process-interaction` stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InteractionText {
    /// Event id.
    pub event_id: String,
    /// The property the text came from (`query`, `feedback`, ...).
    pub field: String,
    /// The event's time.
    pub timestamp: Millis,
    /// Sentiment, entities, language, key phrases. Entities marked `pii` carry no text.
    pub analysis: crate::ports::TextAnalysis,
    /// The sentence embedding, when the model tier ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
    /// When it was analyzed.
    pub analyzed_at: Millis,
}

/// A name matched in texts besides the org's products: a brand or a competitor.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CatalogTerm {
    /// `brand` or `competitor`.
    pub kind: String,
    /// The name as written.
    pub name: String,
}

impl CatalogTerm {
    /// The kinds a term may have.
    pub const KINDS: [&'static str; 2] = ["brand", "competitor"];
}

/// A visit: consecutive interactions of one person with less than the inactivity gap between them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    /// Session id (deterministic: derived from org, person and first event).
    pub id: String,
    /// Owning organization.
    pub org_id: String,
    /// The person (user id after stitching, else anonymous id).
    pub person_id: String,
    /// First event time.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub started_at: Millis,
    /// Last event time.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub ended_at: Millis,
    /// Number of events.
    pub event_count: u32,
    /// Number of page and screen views.
    pub page_count: u32,
    /// First page path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_path: Option<String>,
    /// Last page path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_path: Option<String>,
    /// Referrer of the first event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// Referrer class of the first event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer_class: Option<ReferrerClass>,
    /// Campaign key that started the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// Device class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceClass>,
    /// True when the session's user agent is a known crawler.
    #[serde(default)]
    pub is_bot: bool,
}

/// A public social-media post that mentions the org or its products.
///
/// What is stored is already private: the author handle is a keyed pseudonym (HMAC with the
/// org's key, [`crate::privacy::pseudonymize`]), and the text and URL are PII-scrubbed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SocialMention {
    /// CROW id (`platform:platform_id`).
    pub id: String,
    /// Owning organization.
    pub org_id: String,
    /// e.g. `mastodon`, `bluesky`, `reddit`, `hackernews`, `rss`.
    pub platform: String,
    /// The platform's id for the post.
    pub platform_id: String,
    /// Author handle (pseudonymized when configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Post text (PII scrubbed).
    pub text: String,
    /// Permalink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Language code, when detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// When the post was published.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub posted_at: Millis,
    /// When CROW fetched it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub fetched_at: Millis,
    /// Sentiment score in [-1, 1], when analyzed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<f32>,
    /// The configured source that found it (its name in the social config).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// The search query or feed that found it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Likes, reposts, replies and score, as the platform reports them.
    #[serde(default)]
    pub engagement: Engagement,
    /// 64-bit SimHash of the normalized text (near-duplicate detection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simhash: Option<u64>,
    /// The lexicon tier's compound score in [-1, 1], from the pre-filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lexicon_score: Option<f32>,
    /// True when the pre-filter sent it to the `analyze-social` workflow.
    #[serde(default)]
    pub selected: bool,
    /// What the `analyze-social` workflow found (model sentiment, entities, language).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Value>,
}

/// A post's engagement counts; `None` when the platform does not report one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Engagement {
    /// Likes, favourites, upvotes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub likes: Option<u64>,
    /// Reposts, boosts, shares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reposts: Option<u64>,
    /// Replies, comments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replies: Option<u64>,
    /// A platform score (Reddit's and Hacker News' points).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<i64>,
}

/// A mention not stored because it repeats one that is: the same post (exact, `distance` 0
/// and the same id) or a near-duplicate (a repost, copy-pasted spam, the same post on
/// another platform) whose SimHash is within the threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MentionDuplicate {
    /// The duplicate's own id (`platform:platform_id`).
    pub id: String,
    /// The stored original's id.
    pub original_id: String,
    /// The duplicate's platform.
    pub platform: String,
    /// The duplicate's permalink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Hamming distance between the SimHashes.
    pub distance: u32,
    /// When CROW fetched it.
    pub fetched_at: Millis,
}

/// What a CCTV frame analysis produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[serde(rename_all = "snake_case")]
pub enum FrameEventKind {
    /// Motion detected.
    Motion,
    /// People present (count in `count`).
    Presence,
    /// A person crossed a line into a zone.
    LineIn,
    /// A person crossed a line out of a zone.
    LineOut,
    /// Zone occupancy sample.
    Occupancy,
    /// A dwell time measurement (`value` in seconds).
    Dwell,
}

/// An event derived from CCTV frames. Never carries an unmasked image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FrameEvent {
    /// Event id.
    pub id: String,
    /// Owning organization.
    pub org_id: String,
    /// Camera id.
    pub camera_id: String,
    /// Frame time.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub timestamp: Millis,
    /// Kind.
    pub kind: FrameEventKind,
    /// Zone name, when zoned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// People count.
    #[serde(default)]
    pub count: u32,
    /// Measured value (dwell seconds, motion area fraction, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Object-store key of the masked keyframe, when archived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_key: Option<String>,
}

/// A product of the org's catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Product {
    /// CROW id.
    pub id: String,
    /// Owning organization.
    pub org_id: String,
    /// Stock keeping unit, unique within the org.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Brand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    /// Category name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Price in minor units (cents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_cents: Option<i64>,
    /// ISO 4217 currency code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Product page URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Last change.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Millis,
}

/// A customer of CROW: everything is scoped to one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Organization {
    /// Org id (`org_...`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Creation time.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Millis,
}

/// An aggregate or finding computed by `generate-insights`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Insight {
    /// Insight id.
    pub id: String,
    /// Owning organization.
    pub org_id: String,
    /// Kind, e.g. `traffic_summary`, `funnel`, `anomaly`.
    pub kind: String,
    /// Period start.
    pub period_start: Millis,
    /// Period end.
    pub period_end: Millis,
    /// The computed data.
    pub data: Value,
    /// Creation time.
    pub created_at: Millis,
}

/// The visible part of an API key: which org and role it grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyInfo {
    /// Key id (its public prefix).
    pub prefix: String,
    /// Org the key belongs to.
    pub org_id: String,
    /// `write` (public, ingest only) or `secret` (reads the org's data).
    pub kind: KeyKind,
}

/// Public write keys may only ingest; secret keys read and manage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// Public ingest key, embedded in web pages.
    Write,
    /// Secret API key.
    Secret,
}

/// What `crow org create` returns. The secret API key is shown once and stored only hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgCredentials {
    /// The new org's id.
    pub org_id: String,
    /// Public ingest key.
    pub write_key: String,
    /// Secret API key.
    pub api_key: String,
}
