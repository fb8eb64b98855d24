//! What a buildspec hands back through `exported-variables` that Gantry
//! reads into the build record: the pushed image and how much of a Docker
//! build came from the layer cache (both exported by buildspecs/docker.yml).
//! The names are spelled here only.

use serde::{Deserialize, Serialize};

/// The pushed image, `<repository>:<tag>`.
pub const IMAGE_URI: &str = "IMAGE_URI";
/// The layer cache's share of the build, `<cached>/<steps>`.
pub const DOCKER_CACHE: &str = "DOCKER_CACHE";

/// How much of a Docker build BuildKit took from the layer cache: of the
/// `steps` it ran (each `[stage i/k]` line of its plain output), `cached`
/// were printed as `CACHED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerCache {
    pub cached: u32,
    pub steps: u32,
}

/// What the cache did for a build, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Every step came from the cache.
    Hit,
    /// Some did.
    Partial,
    /// None did: the build started cold.
    Cold,
}

impl LayerCache {
    /// `"<cached>/<steps>"` as the buildspec exports it; `None` for
    /// anything else (a buildspec of the user's own may export the name
    /// with another meaning).
    pub fn parse(text: &str) -> Option<Self> {
        let (cached, steps) = text.trim().split_once('/')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(cached) || !digits(steps) {
            return None;
        }
        let cache = LayerCache {
            cached: cached.parse().ok()?,
            steps: steps.parse().ok()?,
        };
        (cache.cached <= cache.steps).then_some(cache)
    }

    pub fn usage(&self) -> CacheUse {
        if self.steps > 0 && self.cached == self.steps {
            CacheUse::Hit
        } else if self.cached > 0 {
            CacheUse::Partial
        } else {
            CacheUse::Cold
        }
    }

    /// For a person: "hit: all 9 steps from the cache".
    pub fn describe(&self) -> String {
        let steps = match self.steps {
            1 => "1 step".to_owned(),
            n => format!("{n} steps"),
        };
        match self.usage() {
            CacheUse::Hit => format!("hit: all {steps} from the cache"),
            CacheUse::Partial => format!("partial: {} of {steps} from the cache", self.cached),
            CacheUse::Cold => format!("cold: none of {steps} from the cache"),
        }
    }
}

impl std::fmt::Display for LayerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.cached, self.steps)
    }
}

/// The exported values Gantry keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exported {
    pub image_uri: Option<String>,
    pub layer_cache: Option<LayerCache>,
}

impl Exported {
    /// From a build's exported variables, as (name, value). An empty value
    /// is no value (CodeBuild exports a variable the build never set as "").
    pub fn from_vars<'a>(vars: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut out = Exported::default();
        for (name, value) in vars {
            if value.is_empty() {
                continue;
            }
            match name {
                IMAGE_URI => out.image_uri = Some(value.to_owned()),
                DOCKER_CACHE => out.layer_cache = LayerCache::parse(value),
                _ => {}
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.image_uri.is_none() && self.layer_cache.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_buildspecs_form_is_read_and_anything_else_is_not() {
        assert_eq!(
            LayerCache::parse("7/9"),
            Some(LayerCache {
                cached: 7,
                steps: 9
            })
        );
        assert_eq!(
            LayerCache::parse("0/4\n").map(|c| c.usage()),
            Some(CacheUse::Cold)
        );
        for bad in ["", "7", "9/7", "a/b", "-1/3", "1/", "/3", "1/3/4", "+1/3"] {
            assert_eq!(LayerCache::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hits_partials_and_cold_builds_are_told_apart_for_a_person() {
        let cache = |cached, steps| LayerCache { cached, steps };
        assert_eq!(cache(9, 9).describe(), "hit: all 9 steps from the cache");
        assert_eq!(
            cache(7, 9).describe(),
            "partial: 7 of 9 steps from the cache"
        );
        assert_eq!(
            cache(0, 1).describe(),
            "cold: none of 1 step from the cache"
        );
        assert_eq!(cache(0, 0).usage(), CacheUse::Cold);
    }

    #[test]
    fn exported_variables_fill_what_gantry_keeps_and_ignore_the_rest() {
        let got = Exported::from_vars([
            ("IMAGE_URI", "r.example/w:abc"),
            ("DOCKER_CACHE", "3/5"),
            ("OTHER", "x"),
        ]);
        assert_eq!(got.image_uri.as_deref(), Some("r.example/w:abc"));
        assert_eq!(got.layer_cache.map(|c| c.cached), Some(3));
        let unset = Exported::from_vars([("IMAGE_URI", ""), ("DOCKER_CACHE", "")]);
        assert!(unset.is_empty());
    }

    proptest! {
        #[test]
        fn what_is_written_reads_back(steps in 0u32..10_000, share in 0u32..=100) {
            let cache = LayerCache { cached: steps * share / 100, steps };
            prop_assert_eq!(LayerCache::parse(&cache.to_string()), Some(cache));
        }
    }
}
