//! People analytics: line crossings (in and out), occupancy and dwell time per zone, presence,
//! and a heatmap of where people were.
//!
//! Zones and lines are drawn in normalized coordinates (`[0, 0]` top-left, `[1, 1]`
//! bottom-right), so one file works at any stream resolution. A person's position is the
//! bottom centre of their box (where they stand). A `zones.json`:
//!
//! ```
//! use crow_vision::zones::ZonesConfig;
//!
//! let cfg: ZonesConfig = serde_json::from_str(r#"{
//!   "zones": [{ "name": "till", "polygon": [[0.6, 0.5], [1.0, 0.5], [1.0, 1.0], [0.6, 1.0]] }],
//!   "lines": [{ "name": "door", "from": [0.5, 0.0], "to": [0.5, 1.0] }],
//!   "dwell_min_secs": 2.0
//! }"#).unwrap();
//! cfg.validate().unwrap();
//! ```
//!
//! A line counts `line_in` when a person crosses it from its right side to its left side as
//! drawn (walking from `from` to `to`, y pointing down), and `line_out` the other way; set
//! `"in_side": "right"` to swap.

use std::collections::HashMap;

use crow_core::model::FrameEventKind;
use crow_core::model::Millis;
use crow_core::video::{FrameObservation, Track};
use serde::{Deserialize, Serialize};

use crate::geometry::{Point, Polygon, check_points, segments_cross, side};
use crate::{Result, VisionError};

/// A named area.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    /// Name (unique among zones and lines).
    pub name: String,
    /// Outline.
    pub polygon: Polygon,
}

/// Which side of a line is "in".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InSide {
    /// Left of `from → to` as drawn.
    #[default]
    Left,
    /// Right of `from → to` as drawn.
    Right,
}

/// A counting line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// Name (unique among zones and lines).
    pub name: String,
    /// Start point.
    pub from: Point,
    /// End point.
    pub to: Point,
    /// The side that is "in".
    #[serde(default)]
    pub in_side: InSide,
}

/// Zones, lines and analytics settings (`--zones zones.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZonesConfig {
    /// Areas with occupancy and dwell time.
    #[serde(default)]
    pub zones: Vec<Zone>,
    /// Counting lines.
    #[serde(default)]
    pub lines: Vec<Line>,
    /// Shorter stays in a zone are not reported as dwell times.
    #[serde(default = "default_dwell_min")]
    pub dwell_min_secs: f64,
    /// Heatmap grid size (columns, rows).
    #[serde(default = "default_heatmap")]
    pub heatmap: [u32; 2],
}

fn default_dwell_min() -> f64 {
    1.0
}

fn default_heatmap() -> [u32; 2] {
    [64, 36]
}

impl Default for ZonesConfig {
    fn default() -> Self {
        ZonesConfig {
            zones: Vec::new(),
            lines: Vec::new(),
            dwell_min_secs: default_dwell_min(),
            heatmap: default_heatmap(),
        }
    }
}

impl ZonesConfig {
    /// Reads and validates a JSON file.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| VisionError::io(path, e))?;
        let cfg: ZonesConfig = serde_json::from_str(&text)
            .map_err(|e| VisionError::config(path.display().to_string(), format!("not a zones file: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks names, polygons and lines; errors name the field (`zones[1].polygon`).
    pub fn validate(&self) -> Result<()> {
        let mut names = std::collections::HashSet::new();
        for (i, z) in self.zones.iter().enumerate() {
            if z.name.trim().is_empty() || !names.insert(z.name.as_str()) {
                return Err(VisionError::config(format!("zones[{i}].name"), "empty or used twice"));
            }
            z.polygon.validate(&format!("zones[{i}].polygon"))?;
        }
        for (i, l) in self.lines.iter().enumerate() {
            if l.name.trim().is_empty() || !names.insert(l.name.as_str()) {
                return Err(VisionError::config(format!("lines[{i}].name"), "empty or used twice"));
            }
            check_points(&[l.from, l.to], &format!("lines[{i}]"))?;
            if l.from == l.to {
                return Err(VisionError::config(
                    format!("lines[{i}]"),
                    "`from` and `to` are the same point",
                ));
            }
        }
        if !(self.dwell_min_secs >= 0.0 && self.dwell_min_secs.is_finite()) {
            return Err(VisionError::config("dwell_min_secs", "must be a number ≥ 0"));
        }
        if !(1..=1024).contains(&self.heatmap[0]) || !(1..=1024).contains(&self.heatmap[1]) {
            return Err(VisionError::config(
                "heatmap",
                "columns and rows must be between 1 and 1024",
            ));
        }
        Ok(())
    }
}

/// Per-track state.
#[derive(Debug, Clone, Default)]
struct Person {
    /// Last definite side of each line (by index), and where the person was then.
    sides: Vec<Option<(bool, Point)>>,
    /// Entry time into each zone (by index) while inside.
    entered: Vec<Option<Millis>>,
    last_ts: Millis,
}

/// Turns people tracks into observations, frame by frame, and accumulates the heatmap.
#[derive(Debug)]
pub struct PeopleAnalytics {
    config: ZonesConfig,
    people: HashMap<u64, Person>,
    occupancy: Vec<u32>,
    present: u32,
    heat: Vec<f32>,
    heat_samples: u64,
}

/// A line is crossed only when the position is at least this far (normalized) on the other
/// side, so jitter on the line does not count twice.
const LINE_MARGIN: f32 = 0.01;

impl PeopleAnalytics {
    /// Analytics over validated zones.
    pub fn new(config: ZonesConfig) -> Result<Self> {
        config.validate()?;
        let [cols, rows] = config.heatmap;
        Ok(PeopleAnalytics {
            occupancy: vec![0; config.zones.len()],
            heat: vec![0.0; (cols * rows) as usize],
            config,
            people: HashMap::new(),
            present: 0,
            heat_samples: 0,
        })
    }

    /// The settings.
    pub fn config(&self) -> &ZonesConfig {
        &self.config
    }

    /// Current people count per zone, in config order.
    pub fn occupancy(&self) -> &[u32] {
        &self.occupancy
    }

    /// Folds in the live people tracks of the frame at `ts` (boxes in pixels of a `width` ×
    /// `height` frame) and the tracks that ended since the previous frame.
    pub fn update(
        &mut self,
        tracks: &[Track],
        ended: &[Track],
        ts: Millis,
        width: u32,
        height: u32,
    ) -> Vec<FrameObservation> {
        let mut out = Vec::new();
        let (w, h) = (width.max(1) as f32, height.max(1) as f32);
        let (nz, nl) = (self.config.zones.len(), self.config.lines.len());
        for t in tracks {
            let pos = [
                ((t.bbox.x + t.bbox.w / 2.0) / w).clamp(0.0, 1.0),
                ((t.bbox.y + t.bbox.h) / h).clamp(0.0, 1.0),
            ];
            let p = self.people.entry(t.id).or_insert_with(|| Person {
                sides: vec![None; nl],
                entered: vec![None; nz],
                ..Person::default()
            });
            for (li, line) in self.config.lines.iter().enumerate() {
                let s = side(line.from, line.to, pos);
                if s.abs() < LINE_MARGIN {
                    continue;
                }
                let left = s > 0.0;
                // Counted only when the way from the last definite side crosses the drawn line
                // (walking around its end is not a crossing).
                if let Some((prev, anchor)) = p.sides[li]
                    && prev != left
                    && segments_cross(line.from, line.to, anchor, pos)
                {
                    let inward = left == (line.in_side == InSide::Left);
                    out.push(FrameObservation {
                        kind: if inward {
                            FrameEventKind::LineIn
                        } else {
                            FrameEventKind::LineOut
                        },
                        zone: Some(line.name.clone()),
                        count: 1,
                        value: None,
                    });
                }
                p.sides[li] = Some((left, pos));
            }
            for (zi, zone) in self.config.zones.iter().enumerate() {
                let inside = zone.polygon.contains(pos);
                match (p.entered[zi], inside) {
                    (None, true) => p.entered[zi] = Some(ts),
                    (Some(since), false) => {
                        p.entered[zi] = None;
                        dwell(&self.config, &zone.name, ts - since, &mut out);
                    }
                    _ => {}
                }
            }
            p.last_ts = ts;
            let [cols, rows] = self.config.heatmap;
            let cx = ((pos[0] * cols as f32) as u32).min(cols - 1);
            let cy = ((pos[1] * rows as f32) as u32).min(rows - 1);
            self.heat[(cy * cols + cx) as usize] += 1.0;
        }
        self.heat_samples += 1;
        for t in ended {
            if let Some(p) = self.people.remove(&t.id) {
                for (zi, since) in p.entered.iter().enumerate() {
                    if let Some(since) = since {
                        dwell(&self.config, &self.config.zones[zi].name, p.last_ts - since, &mut out);
                    }
                }
            }
        }
        // Occupancy and presence, reported when they change.
        let mut occ = vec![0u32; nz];
        for p in self.people.values() {
            for (zi, e) in p.entered.iter().enumerate() {
                occ[zi] += e.is_some() as u32;
            }
        }
        for (zi, &n) in occ.iter().enumerate() {
            if n != self.occupancy[zi] {
                out.push(FrameObservation {
                    kind: FrameEventKind::Occupancy,
                    zone: Some(self.config.zones[zi].name.clone()),
                    count: n,
                    value: None,
                });
            }
        }
        self.occupancy = occ;
        let present = self.people.len() as u32;
        if present != self.present {
            out.push(FrameObservation {
                kind: FrameEventKind::Presence,
                zone: None,
                count: present,
                value: None,
            });
            self.present = present;
        }
        out
    }

    /// The heatmap since the last call as a PNG (a color ramp over the grid, scaled up), and
    /// resets it; `None` when nobody was seen.
    pub fn take_heatmap_png(&mut self, scale: u32) -> Result<Option<Vec<u8>>> {
        let max = self.heat.iter().cloned().fold(0.0f32, f32::max);
        if max <= 0.0 {
            self.heat_samples = 0;
            return Ok(None);
        }
        let [cols, rows] = self.config.heatmap;
        let s = scale.clamp(1, 32);
        let (w, h) = (cols * s, rows * s);
        let mut img = image::RgbImage::new(w, h);
        for (x, y, px) in img.enumerate_pixels_mut() {
            let v = self.heat[((y / s) * cols + x / s) as usize] / max;
            *px = image::Rgb(ramp(v));
        }
        let mut bytes = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
            .map_err(|e| VisionError::Encode {
                format: "png".into(),
                reason: e.to_string(),
            })?;
        self.heat.iter_mut().for_each(|v| *v = 0.0);
        self.heat_samples = 0;
        Ok(Some(bytes))
    }
}

fn dwell(cfg: &ZonesConfig, zone: &str, ms: Millis, out: &mut Vec<FrameObservation>) {
    let secs = ms as f64 / 1000.0;
    if secs >= cfg.dwell_min_secs {
        out.push(FrameObservation {
            kind: FrameEventKind::Dwell,
            zone: Some(zone.to_owned()),
            count: 1,
            value: Some(secs),
        });
    }
}

/// Black → blue → green → yellow → red.
fn ramp(v: f32) -> [u8; 3] {
    let v = v.clamp(0.0, 1.0);
    let stops: [[f32; 3]; 5] = [
        [0.0, 0.0, 0.0],
        [0.0, 0.0, 255.0],
        [0.0, 255.0, 0.0],
        [255.0, 255.0, 0.0],
        [255.0, 0.0, 0.0],
    ];
    let f = v * 4.0;
    let i = (f as usize).min(3);
    let t = f - i as f32;
    let mut out = [0u8; 3];
    for c in 0..3 {
        out[c] = (stops[i][c] + (stops[i + 1][c] - stops[i][c]) * t) as u8;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crow_core::ports::BoundingBox;

    fn person(id: u64, cx: f32, bottom: f32) -> Track {
        Track {
            id,
            bbox: BoundingBox {
                x: cx - 10.0,
                y: bottom - 40.0,
                w: 20.0,
                h: 40.0,
                score: 0.9,
            },
            hits: 1,
            misses: 0,
        }
    }

    fn cfg() -> ZonesConfig {
        serde_json::from_str(
            r#"{"zones":[{"name":"left","polygon":[[0,0],[0.5,0],[0.5,1],[0,1]]}],
                "lines":[{"name":"door","from":[0.5,0],"to":[0.5,1]}],
                "dwell_min_secs":0.2,"heatmap":[10,10]}"#,
        )
        .unwrap()
    }

    #[test]
    fn crossings_occupancy_dwell_and_presence() {
        let mut a = PeopleAnalytics::new(cfg()).unwrap();
        let mut all = Vec::new();
        // Person 1 walks left to right across x = 50 (of 100), frames every 100 ms.
        for (i, x) in [20.0, 30.0, 40.0, 60.0, 70.0].iter().enumerate() {
            all.extend(a.update(&[person(1, *x, 90.0)], &[], i as i64 * 100, 100, 100));
        }
        let kinds: Vec<_> = all.iter().map(|o| (o.kind, o.zone.clone(), o.count)).collect();
        assert!(kinds.contains(&(FrameEventKind::Presence, None, 1)));
        assert!(kinds.contains(&(FrameEventKind::Occupancy, Some("left".into()), 1)));
        // Walking down the line from (0.5, 0) to (0.5, 1), the left side is x > 0.5: left to
        // right on screen is "in".
        assert_eq!(all.iter().filter(|o| o.kind == FrameEventKind::LineIn).count(), 1);
        assert_eq!(all.iter().filter(|o| o.kind == FrameEventKind::LineOut).count(), 0);
        let dwell = all.iter().find(|o| o.kind == FrameEventKind::Dwell).unwrap();
        assert_eq!(dwell.value, Some(0.3));
        assert!(kinds.contains(&(FrameEventKind::Occupancy, Some("left".into()), 0)));
        // Back the other way, then gone.
        let mut back = a.update(&[person(1, 30.0, 90.0)], &[], 600, 100, 100);
        assert_eq!(back.iter().filter(|o| o.kind == FrameEventKind::LineOut).count(), 1);
        back = a.update(&[], &[person(1, 30.0, 90.0)], 2_000, 100, 100);
        // Still inside "left" when the track ended at 600 ms: dwell 0 s is below the minimum.
        assert!(back.iter().any(|o| o.kind == FrameEventKind::Presence && o.count == 0));
        assert!(back.iter().any(|o| o.kind == FrameEventKind::Occupancy && o.count == 0));
    }

    #[test]
    fn jitter_on_the_line_counts_once() {
        let mut a = PeopleAnalytics::new(cfg()).unwrap();
        let mut n = 0;
        for (i, x) in [40.0, 49.8, 50.3, 49.7, 50.2, 60.0, 70.0].iter().enumerate() {
            n += a
                .update(&[person(7, *x, 90.0)], &[], i as i64 * 100, 100, 100)
                .iter()
                .filter(|o| matches!(o.kind, FrameEventKind::LineIn | FrameEventKind::LineOut))
                .count();
        }
        assert_eq!(n, 1);
    }

    #[test]
    fn heatmap_is_a_png_and_resets() {
        let mut a = PeopleAnalytics::new(cfg()).unwrap();
        assert!(a.take_heatmap_png(4).unwrap().is_none());
        a.update(&[person(1, 20.0, 90.0)], &[], 0, 100, 100);
        let png = a.take_heatmap_png(4).unwrap().unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!((img.width(), img.height()), (40, 40));
        assert!(a.take_heatmap_png(4).unwrap().is_none());
    }

    #[test]
    fn bad_zones_name_the_field() {
        let bad: ZonesConfig = serde_json::from_str(r#"{"zones":[{"name":"a","polygon":[[0,0],[1,0]]}]}"#).unwrap();
        assert!(bad.validate().unwrap_err().to_string().contains("zones[0].polygon"));
        let dup: ZonesConfig = serde_json::from_str(
            r#"{"zones":[{"name":"a","polygon":[[0,0],[1,0],[1,1]]}],"lines":[{"name":"a","from":[0,0],"to":[1,1]}]}"#,
        )
        .unwrap();
        assert!(dup.validate().unwrap_err().to_string().contains("lines[0].name"));
        assert!(serde_json::from_str::<ZonesConfig>(r#"{"zone":[]}"#).is_err());
    }
}
