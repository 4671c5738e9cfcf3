//! The layered renderer: attributes and style in, a 64×64 RGB face out.
//!
//! Layers, back to front: background, hair behind the head (unless bald; long for women),
//! face (square jaw for men), age lines, nose, brows, eyes (open or narrow, coloured iris),
//! mouth (smile curve, open mouth, lipstick), moustache, fringe (unless bald), glasses.

use super::layout::*;
use super::noise::Style;
use super::palette::Rgb;
use super::raster::{curve, ellipse, polyline, rotated_ellipse, round_rect, Canvas};
use super::sample::Attributes;
use super::scm::Attr;
use crate::data::image::Image;

const SCLERA: Rgb = [248.0, 248.0, 248.0];
const EYE_OUTLINE: Rgb = [45.0, 35.0, 35.0];
const FRAME_COLOUR: Rgb = [35.0, 35.0, 45.0];
const LIPSTICK: Rgb = [205.0, 35.0, 85.0];
const MOUTH_INSIDE: Rgb = [80.0, 25.0, 35.0];
const TEETH: Rgb = [245.0, 245.0, 240.0];
const BACKGROUND_BLUE: Rgb = [200.0, 220.0, 240.0];
const BACKGROUND_GREEN: Rgb = [200.0, 232.0, 205.0];

fn scale(c: Rgb, k: f64) -> Rgb {
    c.map(|v| (v * k).min(255.0))
}

/// The background colour of `style`.
pub(crate) fn background(style: &Style) -> Rgb {
    let m = style.background_mix;
    let mut c = [0.0; 3];
    for (k, v) in c.iter_mut().enumerate() {
        *v = BACKGROUND_BLUE[k] * (1.0 - m) + BACKGROUND_GREEN[k] * m;
    }
    scale(c, style.background_shade)
}

/// The skin colour of a face (tone times shade).
pub(crate) fn skin_colour(attrs: &Attributes, style: &Style) -> Rgb {
    scale(attrs.skin.rgb(), style.skin_shade)
}

/// The hair colour of a face (colour times shade).
pub(crate) fn hair_colour(attrs: &Attributes, style: &Style) -> Rgb {
    scale(attrs.hair.rgb(), style.hair_shade)
}

/// The signed distance to the face outline, in face units.
pub(crate) fn face_sdf(u: f64, v: f64, male: bool) -> f64 {
    let oval = ellipse(u, v, FACE_R.0, FACE_R.1);
    if male {
        oval.min(round_rect(
            u,
            v - JAW_CY,
            JAW_HALF.0,
            JAW_HALF.1,
            JAW_CORNER,
        ))
    } else {
        oval
    }
}

fn cap_sdf(u: f64, v: f64) -> f64 {
    ellipse(u, v - HAIR_CY, HAIR_R.0, HAIR_R.1)
}

/// Draws shapes given in face units onto the canvas.
struct Painter<'a> {
    canvas: &'a mut Canvas,
    frame: Frame,
}

impl Painter<'_> {
    fn fill(&mut self, face_box: [f64; 4], colour: Rgb, sdf: impl Fn(f64, f64) -> f64) {
        let f = self.frame;
        self.canvas.paint(f.px_box(face_box), colour, |x, y| {
            let (u, v) = f.to_face(x, y);
            sdf(u, v) * f.s
        });
    }

    fn stroke(&mut self, pts: &[(f64, f64)], width: f64, colour: Rgb) {
        let pad = width;
        let (mut u0, mut v0, mut u1, mut v1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for &(u, v) in pts {
            u0 = u0.min(u - pad);
            v0 = v0.min(v - pad);
            u1 = u1.max(u + pad);
            v1 = v1.max(v + pad);
        }
        self.fill([u0, v0, u1, v1], colour, |u, v| {
            polyline(u, v, pts) - width / 2.0
        });
    }
}

/// Renders the face with attributes `attrs` in style `style`.
pub fn render(attrs: &Attributes, style: &Style) -> Image {
    let frame = Frame::of(style);
    let mut canvas = Canvas::new(SIZE, SIZE, background(style));
    let mut p = Painter {
        canvas: &mut canvas,
        frame,
    };
    let a = |x: Attr| attrs.get(x);
    let skin = skin_colour(attrs, style);
    let hair = hair_colour(attrs, style);
    let male = a(Attr::Male);

    if !a(Attr::Bald) {
        let (r0, r1) = HAIR_R;
        if male {
            // Short hair: the cap stops at the temples.
            p.fill([-r0, HAIR_CY - r1, r0, -2.0], hair, |u, v| {
                cap_sdf(u, v).max(v + 2.0)
            });
        } else {
            p.fill(
                [-r0 - 0.5, HAIR_CY - r1, r0 + 0.5, LONG_HAIR_END],
                hair,
                |u, v| {
                    let half = (LONG_HAIR_END - HAIR_CY) / 2.0;
                    cap_sdf(u, v).min(round_rect(u, v - HAIR_CY - half, r0 + 0.5, half, 5.0))
                },
            );
        }
    }

    p.fill(
        [-JAW_HALF.0.max(FACE_R.0), -FACE_R.1, FACE_R.0, FACE_R.1],
        skin,
        |u, v| face_sdf(u, v, male),
    );

    if !a(Attr::Young) {
        let crease = scale(skin, 0.7);
        for v in [-13.0, -15.3] {
            let pts = curve(-6.0, 6.0, 12, |u| v + 0.04 * u * u);
            p.stroke(&pts, 0.9, crease);
        }
        let line = scale(skin, 0.5);
        for side in [-1.0, 1.0] {
            let pts: Vec<_> = AGE_LINE.iter().map(|&(u, v)| (side * u, v)).collect();
            p.stroke(&pts, 1.3, line);
        }
    }

    let nose = curve(-1.3, 1.3, 8, |u| 3.3 + 0.6 * (1.0 - (u / 1.3).powi(2)));
    p.stroke(&nose, 0.9, scale(skin, 0.7));

    let brow = scale(hair, 0.75);
    let (arch, width) = if male { (0.6, 2.0) } else { (1.3, 1.0) };
    for side in [-1.0, 1.0] {
        let pts = curve(-BROW_HALF, BROW_HALF, 10, |t| {
            BROW_Y - arch * (1.0 - (t / BROW_HALF).powi(2)) + 0.12 * side * t
        });
        let pts: Vec<_> = pts
            .into_iter()
            .map(|(t, v)| (side * EYE_X + t, v))
            .collect();
        p.stroke(&pts, width, brow);
    }

    let (ea, eb) = if a(Attr::NarrowEyes) {
        EYE_NARROW
    } else {
        EYE_OPEN
    };
    let iris = attrs.eye.rgb();
    for side in [-1.0, 1.0] {
        let ex = side * EYE_X;
        let eye = move |u: f64, v: f64| ellipse(u - ex, v - EYE_Y, ea, eb);
        let bx = [
            ex - ea - 1.0,
            EYE_Y - eb - 1.0,
            ex + ea + 1.0,
            EYE_Y + eb + 1.0,
        ];
        p.fill(bx, SCLERA, eye);
        p.fill(bx, iris, |u, v| {
            eye(u, v).max(ellipse(u - ex, v - EYE_Y, IRIS_R, IRIS_R))
        });
        p.fill(bx, scale(iris, 0.3), |u, v| {
            eye(u, v).max(ellipse(u - ex, v - EYE_Y, PUPIL_R, PUPIL_R))
        });
        p.fill(bx, EYE_OUTLINE, |u, v| eye(u, v).abs() - EYE_LINE / 2.0);
    }

    draw_mouth(&mut p, attrs, skin);

    if a(Attr::Mustache) {
        let tache = scale(hair, 0.65);
        let (mu, mv) = MOUSTACHE;
        let (ra, rb) = MOUSTACHE_R;
        p.fill(
            [-mu - ra - 1.0, mv - 2.5, mu + ra + 1.0, mv + 2.5],
            tache,
            |u, v| {
                let left = rotated_ellipse(u + mu, v - mv, ra, rb, -MOUSTACHE_DROOP);
                left.min(rotated_ellipse(u - mu, v - mv, ra, rb, MOUSTACHE_DROOP))
            },
        );
    }

    if !a(Attr::Bald) {
        let (r0, r1) = HAIR_R;
        p.fill([-r0, HAIR_CY - r1, r0, -9.0], hair, |u, v| {
            cap_sdf(u, v).max(v - fringe_edge(u))
        });
    }

    if a(Attr::Eyeglasses) {
        for side in [-1.0, 1.0] {
            let ex = side * EYE_X;
            let (la, lb) = LENS_R;
            p.fill(
                [
                    ex - la - 1.0,
                    EYE_Y - lb - 1.0,
                    ex + la + 1.0,
                    EYE_Y + lb + 1.0,
                ],
                FRAME_COLOUR,
                |u, v| ellipse(u - ex, v - EYE_Y, la, lb).abs() - FRAME / 2.0,
            );
            let arm = [(side * 11.4, -3.7), (side * 16.4, -4.5)];
            p.stroke(&arm, 1.0, FRAME_COLOUR);
        }
        let bridge = [
            (-1.7, BRIDGE_Y + 0.4),
            (0.0, BRIDGE_Y - 0.2),
            (1.7, BRIDGE_Y + 0.4),
        ];
        p.stroke(&bridge, 1.1, FRAME_COLOUR);
    }

    canvas.to_image()
}

fn draw_mouth(p: &mut Painter<'_>, attrs: &Attributes, skin: Rgb) {
    let lipstick = attrs.get(Attr::WearingLipstick);
    let lip = if lipstick {
        LIPSTICK
    } else {
        scale(skin, 0.55)
    };
    let smiling = attrs.get(Attr::Smiling);
    let bx = [-MOUTH_W - 1.5, MOUTH_Y - 5.0, MOUTH_W + 1.5, MOUTH_Y + 4.5];
    if !attrs.get(Attr::MouthSlightlyOpen) {
        let pts = curve(-MOUTH_W, MOUTH_W, 16, |u| closed_mouth(u, smiling));
        p.stroke(&pts, if lipstick { 1.9 } else { 1.4 }, lip);
        return;
    }
    let outline = if lipstick { 1.6 } else { 1.2 };
    if smiling {
        let shape = |u: f64, v: f64| {
            let (top, bottom) = open_smile(u);
            let k = 2.0 * u / (MOUTH_W * MOUTH_W);
            let dt = (top - v) / (1.0 + (2.3 * k).powi(2)).sqrt();
            let db = (v - bottom) / (1.0 + (6.5 * k).powi(2)).sqrt();
            dt.max(db).max(u.abs() - MOUTH_W)
        };
        p.fill(bx, MOUTH_INSIDE, shape);
        p.fill(bx, TEETH, |u, v| {
            // The teeth stop short of the corners, leaving the mouth dark there.
            let (top, _) = open_smile(u);
            let q = 1.0 - (u / (0.6 * MOUTH_W)).powi(2);
            shape(u, v).max(v - top - 1.3 * q)
        });
        p.fill(bx, lip, |u, v| shape(u, v).abs() - outline / 2.0);
    } else {
        let (my, ra, rb) = OPEN_MOUTH;
        let shape = move |u: f64, v: f64| ellipse(u, v - my, ra, rb);
        p.fill(bx, MOUTH_INSIDE, shape);
        p.fill(bx, lip, |u, v| shape(u, v).abs() - outline / 2.0);
    }
}

/// The face boxes `[u0, v0, u1, v1]` of every part of the image that the value of `attr` can
/// change: outside them, two faces of equal style that differ only in `attr` are identical.
pub(crate) fn attr_boxes(attr: Attr) -> Vec<[f64; 4]> {
    let (hr0, hr1) = HAIR_R;
    let hair = [-hr0 - 0.6, HAIR_CY - hr1, hr0 + 0.6, LONG_HAIR_END + 0.2];
    let mouth = [-MOUTH_W - 1.5, MOUTH_Y - 5.0, MOUTH_W + 1.5, MOUTH_Y + 4.5];
    let eyes = [-EYE_X - 4.4, EYE_Y - 3.9, EYE_X + 4.4, EYE_Y + 3.9];
    match attr {
        Attr::Young => vec![[-6.6, -16.5, 6.6, -10.5], [-10.5, 2.5, 10.5, 13.8]],
        Attr::Male => vec![
            [-FACE_R.0, 5.5, FACE_R.0, FACE_R.1 + 0.5],
            [
                -EYE_X - BROW_HALF - 1.5,
                BROW_Y - 3.0,
                EYE_X + BROW_HALF + 1.5,
                BROW_Y + 2.0,
            ],
            hair,
        ],
        Attr::Eyeglasses => vec![[-17.0, EYE_Y - LENS_R.1 - 1.0, 17.0, EYE_Y + LENS_R.1 + 1.0]],
        Attr::Bald => vec![hair],
        Attr::Mustache => vec![[-6.6, MOUSTACHE.1 - 2.5, 6.6, MOUSTACHE.1 + 2.5]],
        Attr::Smiling | Attr::WearingLipstick | Attr::MouthSlightlyOpen => vec![mouth],
        Attr::NarrowEyes => vec![eyes],
    }
}

/// Pixel boxes `[x0, y0, x1, y1]` (half-open, clipped to the image) of every part of the
/// image of a face in `style` that the value of `attr` can change.
pub fn attribute_regions(attr: Attr, style: &Style) -> Vec<[usize; 4]> {
    let f = Frame::of(style);
    attr_boxes(attr)
        .into_iter()
        .map(|b| {
            let [x0, y0, x1, y1] = f.px_box(b);
            let lo = |v: f64| (v.floor() - 1.0).clamp(0.0, SIZE as f64) as usize;
            let hi = |v: f64| (v.ceil() + 1.0).clamp(0.0, SIZE as f64) as usize;
            [lo(x0), lo(y0), hi(x1), hi(y1)]
        })
        .collect()
}
