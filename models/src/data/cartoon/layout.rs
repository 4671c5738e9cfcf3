//! Where every part of the face is drawn, in face units.
//!
//! Face units are pixels of a face at nominal size, relative to the face centre (x right, y
//! down). A face with style `(dx, dy, scale)` maps face point `(u, v)` to pixel
//! `(32 + dx + scale * u, 34 + dy + scale * v)`. The renderer and the attribute oracle read the
//! same constants, so the oracle knows where each attribute shows.

use super::noise::Style;

/// Width and height of a face image in pixels.
pub const SIZE: usize = 64;
/// Nominal face centre in pixels.
pub const CENTRE: (f64, f64) = (32.0, 34.0);

/// Face ellipse radii.
pub(crate) const FACE_R: (f64, f64) = (16.0, 20.0);
/// The square jaw of a male face: a rounded rectangle centred at `(0, JAW_CY)` with half sizes
/// `JAW_HALF` and corner radius `JAW_CORNER`, reaching the chin at `v = FACE_R.1`.
pub(crate) const JAW_CY: f64 = 13.0;
pub(crate) const JAW_HALF: (f64, f64) = (11.5, 7.0);
pub(crate) const JAW_CORNER: f64 = 5.5;

pub(crate) const EYE_X: f64 = 6.5;
pub(crate) const EYE_Y: f64 = -2.5;
pub(crate) const EYE_OPEN: (f64, f64) = (3.5, 3.0);
pub(crate) const EYE_NARROW: (f64, f64) = (3.7, 1.4);
pub(crate) const IRIS_R: f64 = 2.3;
pub(crate) const PUPIL_R: f64 = 1.0;
pub(crate) const EYE_LINE: f64 = 0.9;

pub(crate) const BROW_Y: f64 = -8.3;
pub(crate) const BROW_HALF: f64 = 3.8;

pub(crate) const LENS_R: (f64, f64) = (5.0, 4.4);
pub(crate) const FRAME: f64 = 1.2;
pub(crate) const BRIDGE_Y: f64 = -3.3;

pub(crate) const MOUSTACHE: (f64, f64) = (2.9, 6.8);
pub(crate) const MOUSTACHE_R: (f64, f64) = (3.1, 1.25);
/// How far each half of the moustache droops, in radians.
pub(crate) const MOUSTACHE_DROOP: f64 = 0.15;

pub(crate) const MOUTH_Y: f64 = 11.5;
pub(crate) const MOUTH_W: f64 = 6.0;

/// Hair cap: ellipse centred at `(0, HAIR_CY)`.
pub(crate) const HAIR_CY: f64 = -3.0;
pub(crate) const HAIR_R: (f64, f64) = (19.0, 21.5);
/// Where long hair ends below the face centre.
pub(crate) const LONG_HAIR_END: f64 = 16.0;

/// The age lines: polyline on the right cheek (mirrored on the left).
pub(crate) const AGE_LINE: [(f64, f64); 3] = [(8.2, 3.5), (9.3, 8.0), (9.5, 12.8)];

/// The lower edge of the fringe at `u`.
pub(crate) fn fringe_edge(u: f64) -> f64 {
    -10.9 + 0.9 * (0.8 * u).cos()
}

/// The centre line of a closed mouth at `u`.
pub(crate) fn closed_mouth(u: f64, smiling: bool) -> f64 {
    let t = u / MOUTH_W;
    if smiling {
        MOUTH_Y + 1.5 - 5.0 * t * t
    } else {
        MOUTH_Y + 0.3 * t * t
    }
}

/// Upper and lower edges of an open smiling mouth at `u`.
pub(crate) fn open_smile(u: f64) -> (f64, f64) {
    let q = 1.0 - (u / MOUTH_W).powi(2);
    (MOUTH_Y - 3.5 + 2.3 * q, MOUTH_Y - 3.5 + 6.5 * q)
}

/// An open neutral mouth: ellipse centre and radii.
pub(crate) const OPEN_MOUTH: (f64, f64, f64) = (MOUTH_Y + 0.3, 4.0, 2.4);

/// The map from face units to pixels of one face.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// Face centre, pixels.
    pub cx: f64,
    /// Face centre, pixels.
    pub cy: f64,
    /// Pixels per face unit.
    pub s: f64,
}

impl Frame {
    /// The frame of a face drawn with `style`.
    pub fn of(style: &Style) -> Frame {
        Frame {
            cx: CENTRE.0 + style.dx,
            cy: CENTRE.1 + style.dy,
            s: style.scale,
        }
    }

    /// The pixel position of face point `(u, v)`.
    pub fn to_px(&self, u: f64, v: f64) -> (f64, f64) {
        (self.cx + self.s * u, self.cy + self.s * v)
    }

    /// The face point at pixel position `(x, y)`.
    pub fn to_face(&self, x: f64, y: f64) -> (f64, f64) {
        ((x - self.cx) / self.s, (y - self.cy) / self.s)
    }

    /// The pixel box `[x0, y0, x1, y1]` of the face box `[u0, v0, u1, v1]`.
    pub fn px_box(&self, b: [f64; 4]) -> [f64; 4] {
        let (x0, y0) = self.to_px(b[0], b[1]);
        let (x1, y1) = self.to_px(b[2], b[3]);
        [x0, y0, x1, y1]
    }
}
