//! Network profiles: the figures of each direction, the fault schedule, and the built-in table with its sources.
//!
//! The built-in table is the one source of truth for the proxy, the control API and `subsignal netsim --help`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::NetsimError;

/// One direction of a link: what every byte going that way goes through.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Direction {
    /// One-way latency added to every byte, in milliseconds.
    #[serde(default)]
    pub latency_ms: f64,
    /// Extra random delay on top of the latency, uniform in `0..=jitter_ms` milliseconds. It never reorders bytes:
    /// a chunk is never released before the one read before it, so jitter never lowers the latency.
    #[serde(default)]
    pub jitter_ms: f64,
    /// Bandwidth cap in kbit/s (1 kbit = 1000 bits), enforced by a token bucket; `None` means no cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_kbps: Option<u64>,
    /// Depth of the token bucket in bytes, the largest burst sent at full speed [default: the larger of 1500 bytes
    /// and 10 ms of the rate].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst_bytes: Option<u64>,
    /// Cut every read into writes of at most this many bytes (toxiproxy's "slicer").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slice_bytes: Option<usize>,
    /// Pause between two slices of one read, in milliseconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub slice_delay_ms: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

impl Direction {
    /// Bytes per second under the cap, if there is one.
    pub fn bytes_per_sec(&self) -> Option<f64> {
        self.rate_kbps.map(|kbps| kbps as f64 * 1000.0 / 8.0)
    }

    /// The token bucket's depth in bytes (see [`Direction::burst_bytes`]).
    pub fn bucket_bytes(&self) -> Option<f64> {
        let rate = self.bytes_per_sec()?;
        Some(self.burst_bytes.map(|b| b as f64).unwrap_or((rate / 100.0).max(1500.0)))
    }

    fn validate(&self, way: &str) -> Result<(), String> {
        let finite_non_negative = |v: f64| v.is_finite() && v >= 0.0;
        if !finite_non_negative(self.latency_ms) || !finite_non_negative(self.jitter_ms) {
            return Err(format!("{way}: latency_ms and jitter_ms must be zero or more"));
        }
        if !finite_non_negative(self.slice_delay_ms) {
            return Err(format!("{way}: slice_delay_ms must be zero or more"));
        }
        if self.rate_kbps == Some(0) || self.burst_bytes == Some(0) || self.slice_bytes == Some(0) {
            return Err(format!("{way}: rate_kbps, burst_bytes and slice_bytes must be above zero when set"));
        }
        Ok(())
    }
}

/// A range of milliseconds a delay is drawn from, uniformly. In files it is a number (a fixed delay) or `[min, max]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RangeSpec", into = "[u64; 2]")]
pub struct MsRange {
    /// The shortest delay.
    pub min: u64,
    /// The longest delay.
    pub max: u64,
}

impl MsRange {
    /// Exactly `ms` milliseconds.
    pub const fn fixed(ms: u64) -> MsRange {
        MsRange { min: ms, max: ms }
    }

    /// From `min` to `max` milliseconds.
    pub const fn between(min: u64, max: u64) -> MsRange {
        MsRange { min, max }
    }
}

impl std::fmt::Display for MsRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let in_seconds = self.min / 1000 * 1000 == self.min && self.max / 1000 * 1000 == self.max;
        let (min, max, unit) =
            if in_seconds { (self.min / 1000, self.max / 1000, "s") } else { (self.min, self.max, "ms") };
        if min == max {
            write!(f, "{min} {unit}")
        } else {
            write!(f, "{min}–{max} {unit}")
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RangeSpec {
    Fixed(u64),
    Range([u64; 2]),
}

impl From<RangeSpec> for MsRange {
    fn from(spec: RangeSpec) -> MsRange {
        match spec {
            RangeSpec::Fixed(ms) => MsRange::fixed(ms),
            RangeSpec::Range([min, max]) => MsRange { min, max },
        }
    }
}

impl From<MsRange> for [u64; 2] {
    fn from(r: MsRange) -> [u64; 2] {
        [r.min, r.max]
    }
}

/// Stalls: the link black-holes both directions for a while (bytes are held, not lost), then resumes or resets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stall {
    /// Time from the start of the connection (or the end of the previous stall) to the next stall.
    pub every_ms: MsRange,
    /// How long a stall lasts.
    pub for_ms: MsRange,
    /// Chance (0 to 1) that a stall ends by resetting the connection instead of resuming.
    #[serde(default)]
    pub then_reset: f64,
}

/// The faults of a profile. Every connection draws its own schedule from these, and draws again from the moment
/// the profile changes to one with different faults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Reset (drop with a TCP RST) each connection this long after it opened or the profile changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_after_ms: Option<MsRange>,
    /// Stalls, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall: Option<Stall>,
}

/// Whether the link is up at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Connectivity {
    /// Bytes flow, shaped by the profile.
    #[default]
    Online,
    /// New connections are accepted and reset at once; open ones are reset when the profile takes effect.
    Refuse,
    /// Connections are accepted but no byte moves either way until the profile changes (bytes are held).
    Blackhole,
}

/// A network profile: both directions, the faults, and where the figures come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The name the CLI and the control API use (in files, the table's key).
    #[serde(default)]
    pub name: String,
    /// One line saying what it models.
    #[serde(default)]
    pub summary: String,
    /// Where the figures come from.
    #[serde(default)]
    pub source: String,
    /// Server to client.
    #[serde(default)]
    pub down: Direction,
    /// Client to server.
    #[serde(default)]
    pub up: Direction,
    /// Random resets and stalls.
    #[serde(default, skip_serializing_if = "is_default")]
    pub faults: Faults,
    /// Up, refusing, or black-holing.
    #[serde(default)]
    pub connectivity: Connectivity,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Which way bytes travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
}

impl Profile {
    /// A pass-through profile with this name: no delay, no cap, no fault.
    pub fn pass_through(name: &str) -> Profile {
        Profile {
            name: name.into(),
            summary: String::new(),
            source: String::new(),
            down: Direction::default(),
            up: Direction::default(),
            faults: Faults::default(),
            connectivity: Connectivity::Online,
        }
    }

    /// A profile with the same one-way latency both ways and no cap (handy in tests).
    pub fn with_latency(name: &str, one_way_ms: f64) -> Profile {
        let dir = Direction { latency_ms: one_way_ms, ..Direction::default() };
        Profile { down: dir.clone(), up: dir, ..Profile::pass_through(name) }
    }

    /// The direction bytes going `way` take.
    pub fn direction(&self, way: Way) -> &Direction {
        match way {
            Way::Up => &self.up,
            Way::Down => &self.down,
        }
    }

    /// The round trip the latencies add up to, in milliseconds (jitter not included).
    pub fn rtt_ms(&self) -> f64 {
        self.up.latency_ms + self.down.latency_ms
    }

    /// Checks the figures make sense.
    pub fn validate(&self) -> Result<(), NetsimError> {
        let invalid = |reason: String| NetsimError::InvalidProfile { name: self.name.clone(), reason };
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(invalid("a name is letters, digits, `-` and `_`".into()));
        }
        self.down.validate("down").map_err(invalid)?;
        self.up.validate("up").map_err(invalid)?;
        for range in [self.faults.reset_after_ms, self.faults.stall.as_ref().map(|s| s.every_ms)]
            .into_iter()
            .flatten()
            .chain(self.faults.stall.as_ref().map(|s| s.for_ms))
        {
            if range.min > range.max {
                return Err(invalid(format!(
                    "the range [{}, {}] has its minimum above its maximum",
                    range.min, range.max
                )));
            }
        }
        if let Some(stall) = &self.faults.stall {
            if stall.every_ms.max == 0 {
                return Err(invalid("stall.every_ms must allow some time between stalls".into()));
            }
            if !(0.0..=1.0).contains(&stall.then_reset) {
                return Err(invalid("stall.then_reset is a chance from 0 to 1".into()));
            }
        }
        Ok(())
    }

    /// The figures in one line, e.g. `down 400 kbit/s, up 400 kbit/s, 1000 ms + 1000 ms one-way (RTT 2000 ms)`.
    pub fn figures(&self) -> String {
        match self.connectivity {
            Connectivity::Refuse => return "no link: connections are accepted, then reset at once".into(),
            Connectivity::Blackhole => return "no link: connections are accepted, then no byte moves".into(),
            Connectivity::Online => {}
        }
        let rate = |d: &Direction| match d.rate_kbps {
            None => "no cap".to_owned(),
            Some(k) if k >= 1000 => format!("{} Mbit/s", trim(k as f64 / 1000.0)),
            Some(k) => format!("{k} kbit/s"),
        };
        let mut line = format!("down {}, up {}", rate(&self.down), rate(&self.up));
        if self.rtt_ms() > 0.0 {
            let _ = write!(
                line,
                ", latency {} ms down + {} ms up (RTT {} ms)",
                trim(self.down.latency_ms),
                trim(self.up.latency_ms),
                trim(self.rtt_ms())
            );
        } else {
            line.push_str(", no added latency");
        }
        if self.down.jitter_ms > 0.0 || self.up.jitter_ms > 0.0 {
            let _ =
                write!(line, ", jitter +0–{} ms down, +0–{} ms up", trim(self.down.jitter_ms), trim(self.up.jitter_ms));
        }
        for (way, d) in [("down", &self.down), ("up", &self.up)] {
            if let Some(slice) = d.slice_bytes {
                let _ = write!(line, ", {way} writes sliced to {slice} bytes every {} ms", trim(d.slice_delay_ms));
            }
        }
        if let Some(stall) = &self.faults.stall {
            let _ = write!(line, "; stalls of {} every {}", stall.for_ms, stall.every_ms);
            if stall.then_reset > 0.0 {
                let _ = write!(line, " ({}% end in a reset)", trim(stall.then_reset * 100.0));
            }
        }
        if let Some(reset) = self.faults.reset_after_ms {
            let _ = write!(line, "; each connection reset after {reset}");
        }
        line
    }
}

/// Formats a figure without a useless `.0`.
fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

const DEVTOOLS: &str = "Chrome DevTools preset (devtools-frontend NetworkManager.ts)";

/// The built-in profiles, in the order `--help` lists them.
pub fn builtin() -> Vec<Profile> {
    let dir =
        |latency_ms: f64, rate_kbps: u64| Direction { latency_ms, rate_kbps: Some(rate_kbps), ..Direction::default() };
    let fast_4g_down = dir(82.5, 8100);
    let fast_4g_up = dir(82.5, 1350);
    vec![
        Profile {
            summary: "Pass-through: bytes are copied as they come.".into(),
            source: "-".into(),
            ..Profile::pass_through("none")
        },
        Profile {
            name: "slow-3g".into(),
            summary: "Slow 3G.".into(),
            source: format!(
                "{DEVTOOLS} \"Slow 3G\": 400 kbps down/up, 2000 ms latency; DevTools' latency is a round trip, \
                 applied here as 1000 ms in each direction"
            ),
            down: dir(1000.0, 400),
            up: dir(1000.0, 400),
            faults: Faults::default(),
            connectivity: Connectivity::Online,
        },
        Profile {
            name: "slow-4g".into(),
            summary: "Slow 4G (DevTools' former \"Fast 3G\").".into(),
            source: format!(
                "{DEVTOOLS} \"Slow 4G\": 1.44 Mbps down, 675 kbps up, 562.5 ms latency; a round trip, applied here \
                 as 281.25 ms in each direction"
            ),
            down: dir(281.25, 1440),
            up: dir(281.25, 675),
            faults: Faults::default(),
            connectivity: Connectivity::Online,
        },
        Profile {
            name: "fast-4g".into(),
            summary: "Fast 4G.".into(),
            source: format!(
                "{DEVTOOLS} \"Fast 4G\": 8.1 Mbps down, 1.35 Mbps up, 165 ms latency; a round trip, applied here as \
                 82.5 ms in each direction"
            ),
            down: fast_4g_down.clone(),
            up: fast_4g_up.clone(),
            faults: Faults::default(),
            connectivity: Connectivity::Online,
        },
        Profile {
            name: "lte".into(),
            summary: "LTE.".into(),
            source: "WebPageTest connectivity profile \"LTE\": 12 Mbps down/up, 70 ms RTT, applied as 35 ms in each \
                     direction"
                .into(),
            down: dir(35.0, 12_000),
            up: dir(35.0, 12_000),
            faults: Faults::default(),
            connectivity: Connectivity::Online,
        },
        Profile {
            name: "5g".into(),
            summary: "5G, as subsignal assumes it.".into(),
            source: "subsignal's own assumption (no standard 5G preset exists): 100 Mbps down, 50 Mbps up, 15 ms RTT"
                .into(),
            down: dir(7.5, 100_000),
            up: dir(7.5, 50_000),
            faults: Faults::default(),
            connectivity: Connectivity::Online,
        },
        Profile {
            name: "flaky".into(),
            summary: "Fast 4G that stalls and drops: for reconnect and resync demos.".into(),
            source: "subsignal's own: DevTools \"Fast 4G\" figures with jitter, stalls and resets added".into(),
            down: Direction { jitter_ms: 40.0, ..fast_4g_down },
            up: Direction { jitter_ms: 40.0, ..fast_4g_up },
            faults: Faults {
                reset_after_ms: Some(MsRange::between(20_000, 60_000)),
                stall: Some(Stall {
                    every_ms: MsRange::between(5_000, 20_000),
                    for_ms: MsRange::between(1_000, 4_000),
                    then_reset: 0.25,
                }),
            },
            connectivity: Connectivity::Online,
        },
        Profile {
            name: "offline".into(),
            summary: "No network: open connections are reset, new ones accepted and reset at once.".into(),
            source: "-".into(),
            connectivity: Connectivity::Refuse,
            ..Profile::pass_through("offline")
        },
    ]
}

/// The profiles a proxy can switch between: the built-in ones, then any from a file.
#[derive(Debug, Clone)]
pub struct ProfileSet {
    profiles: Vec<Profile>,
}

impl Default for ProfileSet {
    fn default() -> Self {
        ProfileSet { profiles: builtin() }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfilesFile {
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

impl ProfileSet {
    /// The built-in profiles.
    pub fn builtin() -> ProfileSet {
        ProfileSet::default()
    }

    /// The built-in profiles and those of a TOML file, one table per profile:
    ///
    /// ```toml
    /// [profiles.satellite]
    /// summary = "Geostationary satellite."
    /// source = "our guess"
    /// down = { latency_ms = 300, rate_kbps = 10000 }
    /// up = { latency_ms = 300, jitter_ms = 20, rate_kbps = 2000 }
    /// faults = { stall = { every_ms = [10000, 30000], for_ms = 1500 } }
    /// ```
    pub fn with_file(path: &Path) -> Result<ProfileSet, NetsimError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| NetsimError::ReadProfiles { path: path.display().to_string(), source })?;
        Self::builtin().with_toml(&text).map_err(|err| match err {
            NetsimError::ParseProfiles { message, .. } => {
                NetsimError::ParseProfiles { path: path.display().to_string(), message }
            }
            other => other,
        })
    }

    /// Adds the profiles of a TOML text (see [`ProfileSet::with_file`]).
    pub fn with_toml(mut self, text: &str) -> Result<ProfileSet, NetsimError> {
        let file: ProfilesFile = toml::from_str(text)
            .map_err(|e| NetsimError::ParseProfiles { path: "(text)".into(), message: e.to_string() })?;
        for (name, mut profile) in file.profiles {
            profile.name = name;
            self.add(profile)?;
        }
        Ok(self)
    }

    /// Adds a profile; its name must be new.
    pub fn add(&mut self, profile: Profile) -> Result<(), NetsimError> {
        profile.validate()?;
        if self.get(&profile.name).is_some() {
            return Err(NetsimError::InvalidProfile {
                name: profile.name,
                reason: "a profile of that name exists already; pick another name".into(),
            });
        }
        self.profiles.push(profile);
        Ok(())
    }

    /// The profile called `name`.
    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    /// The profile called `name`, or an error listing the known names.
    pub fn find(&self, name: &str) -> Result<&Profile, NetsimError> {
        self.get(name).ok_or_else(|| NetsimError::UnknownProfile { name: name.into(), known: self.names().join(", ") })
    }

    /// Every profile, in order.
    pub fn all(&self) -> &[Profile] {
        &self.profiles
    }

    /// Every name, in order.
    pub fn names(&self) -> Vec<&str> {
        self.profiles.iter().map(|p| p.name.as_str()).collect()
    }

    /// The table `subsignal netsim --help` shows: each profile with its figures and source, wrapped for a terminal.
    pub fn help_text(&self) -> String {
        let mut out = String::from(
            "Profiles (down: server to client, up: client to server; latency is one-way, added in each direction):\n",
        );
        let width = self.profiles.iter().map(|p| p.name.len()).max().unwrap_or(0) + 4;
        for p in &self.profiles {
            let mut about = p.summary.clone();
            if !p.source.is_empty() && p.source != "-" {
                let _ = write!(about, " Source: {}.", p.source.trim_end_matches('.'));
            }
            let name = format!("  {}", p.name);
            wrap(&mut out, &format!("{name:width$}"), &p.figures(), width);
            wrap(&mut out, &" ".repeat(width), &about, width);
        }
        out
    }
}

/// Appends `text` after `first`, wrapped at 116 columns with continuation lines indented by `indent`.
fn wrap(out: &mut String, first: &str, text: &str, indent: usize) {
    let mut line = first.to_owned();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > 116 {
            out.push_str(line.trim_end());
            out.push('\n');
            line = " ".repeat(indent);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_are_valid_and_carry_the_published_figures() {
        let set = ProfileSet::builtin();
        for p in set.all() {
            p.validate().unwrap();
        }
        assert_eq!(set.names(), ["none", "slow-3g", "slow-4g", "fast-4g", "lte", "5g", "flaky", "offline"]);
        let slow3g = set.find("slow-3g").unwrap();
        assert_eq!((slow3g.down.rate_kbps, slow3g.up.rate_kbps, slow3g.rtt_ms()), (Some(400), Some(400), 2000.0));
        let slow4g = set.find("slow-4g").unwrap();
        assert_eq!((slow4g.down.rate_kbps, slow4g.up.rate_kbps, slow4g.rtt_ms()), (Some(1440), Some(675), 562.5));
        let fast4g = set.find("fast-4g").unwrap();
        assert_eq!((fast4g.down.rate_kbps, fast4g.up.rate_kbps, fast4g.rtt_ms()), (Some(8100), Some(1350), 165.0));
        let lte = set.find("lte").unwrap();
        assert_eq!((lte.down.rate_kbps, lte.up.rate_kbps, lte.rtt_ms()), (Some(12_000), Some(12_000), 70.0));
        assert!(set.find("5g").unwrap().source.contains("assumption"));
        assert_eq!(set.find("offline").unwrap().connectivity, Connectivity::Refuse);
        assert!(set.find("flaky").unwrap().faults.stall.is_some());
    }

    #[test]
    fn help_text_lists_every_profile_with_figures_and_source() {
        let text = ProfileSet::builtin().help_text();
        assert!(text.lines().all(|l| l.chars().count() <= 116), "wrapped:\n{text}");
        for name in ProfileSet::builtin().names() {
            assert!(text.contains(&format!("  {name} ")), "{name} missing from:\n{text}");
        }
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        for p in ProfileSet::builtin().all() {
            assert!(flat.contains(&p.figures()), "{} figures missing from:\n{text}", p.name);
        }
        assert!(flat.contains("down 400 kbit/s, up 400 kbit/s, latency 1000 ms down + 1000 ms up (RTT 2000 ms)"));
        assert!(flat.contains("down 1.44 Mbit/s, up 675 kbit/s, latency 281.25 ms down + 281.25 ms up (RTT 562.5 ms)"));
        assert!(flat.contains("stalls of 1–4 s every 5–20 s (25% end in a reset); each connection reset after 20–60 s"));
        assert!(flat.contains("NetworkManager.ts"));
        assert!(flat.contains("WebPageTest"));
        assert!(flat.contains("subsignal's own assumption"));
    }

    #[test]
    fn a_toml_file_adds_profiles_with_ranges_as_numbers_or_pairs() {
        let set = ProfileSet::builtin()
            .with_toml(
                r#"
                [profiles.satellite]
                summary = "Geostationary."
                down = { latency_ms = 300, rate_kbps = 10000 }
                up = { latency_ms = 300, jitter_ms = 20, rate_kbps = 2000, slice_bytes = 100, slice_delay_ms = 1 }
                faults = { reset_after_ms = 5000, stall = { every_ms = [1000, 2000], for_ms = 500, then_reset = 0.5 } }
                "#,
            )
            .unwrap();
        let sat = set.find("satellite").unwrap();
        assert_eq!(sat.rtt_ms(), 600.0);
        assert_eq!(sat.faults.reset_after_ms, Some(MsRange::fixed(5000)));
        let stall = sat.faults.stall.as_ref().unwrap();
        assert_eq!(
            (stall.every_ms, stall.for_ms, stall.then_reset),
            (MsRange::between(1000, 2000), MsRange::fixed(500), 0.5)
        );
        assert_eq!(sat.up.slice_bytes, Some(100));
        // And it round-trips through the JSON the control API serves.
        let json = serde_json::to_value(sat).unwrap();
        assert_eq!(json["faults"]["stall"]["every_ms"], serde_json::json!([1000, 2000]));
        assert_eq!(serde_json::from_value::<Profile>(json).unwrap(), *sat);
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        let err = |text: &str| ProfileSet::builtin().with_toml(text).unwrap_err().to_string();
        assert!(err("[profiles.lte]\n").contains("exists already"));
        assert!(err("[profiles.x]\ndown = { latency_ms = -1 }\n").contains("zero or more"));
        assert!(err("[profiles.x]\nup = { rate_kbps = 0 }\n").contains("above zero"));
        assert!(err("[profiles.x]\nfaults = { reset_after_ms = [5, 1] }\n").contains("minimum above"));
        assert!(err("[profiles.x]\nfaults = { stall = { every_ms = 10, for_ms = 1, then_reset = 2 } }\n")
            .contains("chance"));
        assert!(err("[profiles.x]\nlatency = 3\n").contains("unknown field"));
        assert!(ProfileSet::builtin().find("nope").unwrap_err().to_string().contains("slow-3g, slow-4g"));
    }
}
