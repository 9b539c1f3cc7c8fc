//! Box arithmetic shared by the detectors and the tracker: IoU, non-maximum suppression.

use crow_core::ports::BoundingBox;

/// Intersection over union of two boxes (0 when either is empty).
pub fn iou(a: &BoundingBox, b: &BoundingBox) -> f32 {
    let x0 = a.x.max(b.x);
    let y0 = a.y.max(b.y);
    let x1 = (a.x + a.w).min(b.x + b.w);
    let y1 = (a.y + a.h).min(b.y + b.h);
    let inter = (x1 - x0).max(0.0) * (y1 - y0).max(0.0);
    let union = a.w.max(0.0) * a.h.max(0.0) + b.w.max(0.0) * b.h.max(0.0) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Greedy non-maximum suppression: keeps boxes best score first, dropping any box whose IoU
/// with a kept one exceeds `threshold`. Returns the kept boxes, best first.
pub fn nms(mut boxes: Vec<BoundingBox>, threshold: f32) -> Vec<BoundingBox> {
    boxes.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<BoundingBox> = Vec::with_capacity(boxes.len());
    for b in boxes {
        if kept.iter().all(|k| iou(k, &b) <= threshold) {
            kept.push(b);
        }
    }
    kept
}

/// A point in normalized frame coordinates: `(0, 0)` is the top-left corner, `(1, 1)` the
/// bottom-right one, so zones and masks do not depend on the stream's resolution.
pub type Point = [f32; 2];

/// A closed polygon in normalized frame coordinates (at least three points).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Polygon(pub Vec<Point>);

impl Polygon {
    /// True when the point is inside (even-odd rule; points on an edge may go either way).
    pub fn contains(&self, p: Point) -> bool {
        let pts = &self.0;
        let mut inside = false;
        let mut j = pts.len().wrapping_sub(1);
        for i in 0..pts.len() {
            let (a, b) = (pts[i], pts[j]);
            if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0] {
                inside = !inside;
            }
            j = i;
        }
        inside
    }

    /// Checks the polygon: three points or more, every coordinate in [0, 1]. `field` names it in
    /// the error.
    pub fn validate(&self, field: &str) -> crate::Result<()> {
        if self.0.len() < 3 {
            return Err(crate::VisionError::config(field, "a polygon needs at least 3 points"));
        }
        check_points(&self.0, field)
    }
}

/// Checks that every coordinate is a number in [0, 1].
pub fn check_points(points: &[Point], field: &str) -> crate::Result<()> {
    for (i, p) in points.iter().enumerate() {
        if !p.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)) {
            return Err(crate::VisionError::config(
                format!("{field}[{i}]"),
                format!("{p:?} is outside [0, 1] (coordinates are fractions of the frame's width and height)"),
            ));
        }
    }
    Ok(())
}

/// Which side of the directed line `a → b` the point is on: positive on the left (as drawn on
/// the image, y pointing down, "left" of walking from `a` to `b`), negative on the right. The
/// magnitude is the distance to the line in normalized units.
pub fn side(a: Point, b: Point, p: Point) -> f32 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len = (dx * dx + dy * dy).sqrt();
    if len == 0.0 {
        return 0.0;
    }
    // y points down on images, so the usual cross product is negated for "left".
    -((dx * (p[1] - a[1]) - dy * (p[0] - a[0])) / len)
}

/// True when segment `p0 → p1` crosses the line segment `a → b`.
pub fn segments_cross(a: Point, b: Point, p0: Point, p1: Point) -> bool {
    let d = |p: Point, q: Point, r: Point| (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]);
    let (d1, d2) = (d(a, b, p0), d(a, b, p1));
    let (d3, d4) = (d(p0, p1, a), d(p0, p1, b));
    (d1 > 0.0) != (d2 > 0.0) && (d3 > 0.0) != (d4 > 0.0)
}

/// The box's centre.
pub fn center(b: &BoundingBox) -> (f32, f32) {
    (b.x + b.w / 2.0, b.y + b.h / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(x: f32, y: f32, w: f32, h: f32, score: f32) -> BoundingBox {
        BoundingBox { x, y, w, h, score }
    }

    #[test]
    fn iou_of_known_boxes() {
        assert_eq!(iou(&bx(0.0, 0.0, 10.0, 10.0, 1.0), &bx(0.0, 0.0, 10.0, 10.0, 1.0)), 1.0);
        assert_eq!(
            iou(&bx(0.0, 0.0, 10.0, 10.0, 1.0), &bx(20.0, 0.0, 10.0, 10.0, 1.0)),
            0.0
        );
        let v = iou(&bx(0.0, 0.0, 10.0, 10.0, 1.0), &bx(5.0, 0.0, 10.0, 10.0, 1.0));
        assert!((v - 50.0 / 150.0).abs() < 1e-6);
        assert_eq!(iou(&bx(0.0, 0.0, 0.0, 0.0, 1.0), &bx(0.0, 0.0, 0.0, 0.0, 1.0)), 0.0);
    }

    #[test]
    fn polygons_and_sides() {
        let sq = Polygon(vec![[0.2, 0.2], [0.6, 0.2], [0.6, 0.6], [0.2, 0.6]]);
        assert!(sq.contains([0.4, 0.4]));
        assert!(!sq.contains([0.7, 0.4]));
        assert!(sq.validate("zones[0].polygon").is_ok());
        let err = Polygon(vec![[0.0, 0.0], [1.5, 0.0], [0.0, 1.0]])
            .validate("zones[0].polygon")
            .unwrap_err();
        assert!(err.to_string().contains("zones[0].polygon[1]"), "{err}");
        // A vertical line drawn downwards: left of it (as seen on screen) is x > line when walking
        // down with y pointing down.
        let (a, b) = ([0.5, 0.0], [0.5, 1.0]);
        assert!(side(a, b, [0.7, 0.5]) > 0.0);
        assert!(side(a, b, [0.3, 0.5]) < 0.0);
        assert!(segments_cross(a, b, [0.3, 0.5], [0.7, 0.5]));
        assert!(!segments_cross(a, b, [0.3, 0.5], [0.4, 0.5]));
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes() {
        let kept = nms(
            vec![
                bx(0.0, 0.0, 10.0, 10.0, 0.6),
                bx(1.0, 1.0, 10.0, 10.0, 0.9),
                bx(50.0, 50.0, 10.0, 10.0, 0.7),
            ],
            0.4,
        );
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.9);
        assert_eq!(kept[1].score, 0.7);
    }
}
