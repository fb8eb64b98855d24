//! The limits each chat service documents (see each renderer's sources).
//! Renderers keep well inside them; tests check every payload against them.

/// Slack Block Kit, in characters.
pub mod slack {
    pub const HEADER_MAX: usize = 150;
    pub const SECTION_TEXT_MAX: usize = 3000;
    pub const FIELDS_MAX: usize = 10;
    pub const FIELD_TEXT_MAX: usize = 2000;
    pub const BLOCKS_MAX: usize = 50;
    pub const BUTTON_TEXT_MAX: usize = 75;
    pub const BUTTON_URL_MAX: usize = 3000;
    /// Slack cuts `text` at 40,000 characters and advises far less.
    pub const FALLBACK_MAX: usize = 3000;
}

/// Microsoft Teams.
pub mod teams {
    /// Teams refuses larger messages.
    pub const PAYLOAD_MAX_BYTES: usize = 28 * 1024;
}

/// Discord embeds, in characters.
pub mod discord {
    pub const TITLE_MAX: usize = 256;
    pub const DESCRIPTION_MAX: usize = 4096;
    pub const FIELDS_MAX: usize = 25;
    pub const FIELD_NAME_MAX: usize = 256;
    pub const FIELD_VALUE_MAX: usize = 1024;
    pub const FOOTER_MAX: usize = 2048;
    pub const EMBED_TOTAL_MAX: usize = 6000;
}

/// Google Chat.
pub mod google_chat {
    pub const MESSAGE_MAX_BYTES: usize = 32_000;
    pub const TEXT_MAX: usize = 4096;
}
