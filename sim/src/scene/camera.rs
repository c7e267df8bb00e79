//! Scene cameras: an RGB image of a world's current state, from a fixed
//! top-down orthographic camera, rasterised on the CPU with tiny-skia.
//!
//! Each scene names what its camera sees ([`World::camera_view`]: a
//! rectangle of the ground plane, x to the right and y up in the image) and
//! its keep-out zones and obstacles ([`World::hazards`]); the moving parts
//! come from [`World::visuals`]. Heights are dropped: `push` and `navigate`
//! are planar, and `reach` is seen from above (its arm links, keep-out
//! boxes and base). The goal is **not** drawn (a goal image is rendered
//! separately, from the goal state), nor is the table (it is the
//! background). Colours:
//!
//! | what | colour |
//! |---|---|
//! | background (table, floor) | light grey |
//! | keep-out zones, obstacles | red, and outlined in red over the moving parts |
//! | robot (pusher, wheeled robot, arm links) | blue, its heading marker white |
//! | push box | brown, its +x face yellow (so its yaw is visible modulo 2π, not π) |
//!
//! The outline drawn last keeps a hazard in view when a moving part covers
//! it: keep-out regions are not physical, and a box pushed over one hid it
//! from the camera (the push pixel model's clearance was then off by up to
//! 17 cm, against at most 3.3 cm with the region in view; models/README.md).
//!
//! An image is `u8` RGB in **C×H×W** order (three planes R, G, B, each
//! row-major from the top-left pixel), the `[C, H, W]` layout of an image
//! input; `H×W×3` is `image[c * H * W + row * W + col]` read in the other
//! order. The same state always gives the same bytes: the rasteriser has no
//! threads, no SIMD feature and no clock, and rendering only reads the
//! world (it touches neither physics nor random draws).
//!
//! A [`Camera`] owns its pixel buffer, unit paths and shape lists, reused
//! from frame to frame; the caller owns the image it writes. What a frame
//! still allocates is small and transient: the shape names of
//! [`World::visuals`] and tiny-skia's per-fill scratch.

use super::World;
use crate::SimError;
use crate::limits::{self, MAX_CAMERA_SIZE};
use telic::Real;
use telic::objective::Shape;
use tiny_skia::{Color, FillRule, Paint, Path, PathBuilder, Pixmap, Rect, Stroke, Transform};

/// Default image width and height in pixels.
pub const DEFAULT_SIZE: usize = 64;

/// What a scene's fixed camera sees: the rectangle of the ground plane
/// `center ± half_extents` (metres, world x and y), seen from above.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct View {
    /// Centre of the seen rectangle, world `[x, y]`.
    center: [Real; 2],
    /// Half width (x) and half height (y) of the seen rectangle, `> 0`.
    half_extents: [Real; 2],
}

impl View {
    /// The rectangle `center ± half_extents` of the ground plane (a view
    /// whose half extents are not positive and finite fails to render).
    #[must_use]
    pub fn new(center: [Real; 2], half_extents: [Real; 2]) -> Self {
        Self {
            center,
            half_extents,
        }
    }

    /// Centre of the seen rectangle, world `[x, y]`.
    #[must_use]
    pub fn center(&self) -> [Real; 2] {
        self.center
    }

    /// Half width (x) and half height (y) of the seen rectangle.
    #[must_use]
    pub fn half_extents(&self) -> [Real; 2] {
        self.half_extents
    }
}

/// Image size in pixels, each side in `1..=`[`MAX_CAMERA_SIZE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageSize {
    /// Width in pixels.
    width: usize,
    /// Height in pixels.
    height: usize,
}

impl Default for ImageSize {
    fn default() -> Self {
        Self {
            width: DEFAULT_SIZE,
            height: DEFAULT_SIZE,
        }
    }
}

impl ImageSize {
    /// An image of `width` × `height` pixels (checked by [`Camera::new`]).
    #[must_use]
    pub fn new(width: usize, height: usize) -> Self {
        Self { width, height }
    }

    /// Width in pixels.
    #[must_use]
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    #[must_use]
    pub fn height(&self) -> usize {
        self.height
    }

    /// Bytes of one RGB image of this size (`3 · width · height`).
    #[must_use]
    pub fn bytes(&self) -> usize {
        3 * self.width * self.height
    }
}

const BACKGROUND: [u8; 3] = [220, 220, 220];
const HAZARD: [u8; 3] = [200, 40, 40];
const ROBOT: [u8; 3] = [40, 80, 200];
const MARKER: [u8; 3] = [255, 255, 255];
const BOX: [u8; 3] = [140, 90, 40];
const BOX_FACE: [u8; 3] = [250, 210, 30];
/// Fraction of the push box's length (x) painted as its marked +x face.
const FACE_FRACTION: Real = 0.3;

/// A reusable renderer of scene images of one size.
pub struct Camera {
    size: ImageSize,
    pixmap: Pixmap,
    square: Path,
    circle: Path,
    hazards: Vec<Shape>,
    visuals: Vec<(String, Shape)>,
}

impl std::fmt::Debug for Camera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Camera").field("size", &self.size).finish()
    }
}

impl Camera {
    /// A camera rendering images of `size`; a side of 0 or above
    /// [`MAX_CAMERA_SIZE`] is an error naming it.
    pub fn new(size: ImageSize) -> Result<Self, SimError> {
        for (key, side) in [("camera.width", size.width), ("camera.height", size.height)] {
            limits::check("camera", key, side, MAX_CAMERA_SIZE)?;
            if side == 0 {
                return Err(camera_err(format!("{key} must be at least 1")));
            }
        }
        let pixmap = Pixmap::new(size.width as u32, size.height as u32)
            .ok_or_else(|| camera_err("cannot allocate the pixel buffer".into()))?;
        let square = Rect::from_ltrb(-1.0, -1.0, 1.0, 1.0).map(PathBuilder::from_rect);
        let circle = PathBuilder::from_circle(0.0, 0.0, 1.0);
        let (Some(square), Some(circle)) = (square, circle) else {
            return Err(camera_err("cannot build the unit shapes".into()));
        };
        Ok(Self {
            size,
            pixmap,
            square,
            circle,
            hazards: Vec::new(),
            visuals: Vec::new(),
        })
    }

    /// The image size.
    #[must_use]
    pub fn size(&self) -> ImageSize {
        self.size
    }

    /// Renders `world`'s current state into `image` (C×H×W RGB, exactly
    /// [`ImageSize::bytes`] long). A scene without a camera, or not yet
    /// reset, is an error.
    pub fn render<W: World + ?Sized>(
        &mut self,
        world: &W,
        image: &mut [u8],
    ) -> Result<(), SimError> {
        self.render_with(world, |_| {}, image)
    }

    /// Renders `world` as [`Camera::render`] does, but with the moving
    /// parts that `visuals` writes (in the form of [`World::visuals`])
    /// instead of the world's own: a scene renders its goal configuration
    /// ([`World::render_goal`]) this way, over its current view and hazards.
    pub fn render_posed<W: World + ?Sized>(
        &mut self,
        world: &W,
        visuals: impl FnOnce(&mut Vec<(String, Shape)>),
        image: &mut [u8],
    ) -> Result<(), SimError> {
        self.render_with(world, visuals, image)
    }

    /// The last rendered frame as a PNG file at `path`.
    pub fn save_png(&self, path: &std::path::Path) -> Result<(), SimError> {
        self.pixmap
            .save_png(path)
            .map_err(|e| camera_err(format!("cannot write {}: {e}", path.display())))
    }

    /// Draws `world` (its own moving parts unless `posed` writes some) and
    /// copies the frame into `image`.
    fn render_with<W: World + ?Sized>(
        &mut self,
        world: &W,
        posed: impl FnOnce(&mut Vec<(String, Shape)>),
        image: &mut [u8],
    ) -> Result<(), SimError> {
        let view = world.camera_view().ok_or_else(|| {
            camera_err(format!(
                "scene '{}' has no camera view (not reset?)",
                world.name()
            ))
        })?;
        let base = self.ground_to_pixels(&view)?;
        self.hazards.clear();
        world.hazards(&mut self.hazards);
        self.visuals.clear();
        posed(&mut self.visuals);
        if self.visuals.is_empty() {
            world.visuals(&mut self.visuals);
        }
        self.draw(base);
        self.write_rgb(image)
    }

    /// Draws the background, the hazards and the moving parts held in
    /// `self.hazards` and `self.visuals` into the pixel buffer.
    fn draw(&mut self, base: Transform) {
        let [r, g, b] = BACKGROUND;
        self.pixmap.fill(Color::from_rgba8(r, g, b, 255));
        let hazards = std::mem::take(&mut self.hazards);
        for shape in &hazards {
            self.fill_shape(base, shape, HAZARD);
        }
        let visuals = std::mem::take(&mut self.visuals);
        for (name, shape) in &visuals {
            match name.as_str() {
                "box" => self.fill_marked_box(base, shape),
                "heading" => self.fill_shape(base, shape, MARKER),
                _ => self.fill_shape(base, shape, ROBOT),
            }
        }
        self.visuals = visuals;
        for shape in &hazards {
            self.outline_shape(base, shape, HAZARD);
        }
        self.hazards = hazards;
    }

    /// Strokes `shape`'s footprint outline, one pixel wide, in `rgb` (boxes,
    /// spheres and cylinders; capsules are only filled).
    fn outline_shape(&mut self, base: Transform, shape: &Shape, rgb: [u8; 3]) {
        // In pixels, so that the stroke is one pixel wide whatever the shape's size.
        let path = match *shape {
            Shape::Box {
                center,
                half_extents: [hx, hy, _],
                rpy,
            } => {
                let local = rect_transform([center[0], center[1]], [hx, hy], rpy[2]);
                self.square.clone().transform(base.pre_concat(local))
            }
            Shape::Sphere { center, radius } | Shape::Cylinder { center, radius, .. } => {
                // A circle drawn at its pixel size: the unit circle scaled up
                // is a coarser curve.
                let mut c = tiny_skia::Point::from_xy(center[0] as f32, center[1] as f32);
                base.map_points(std::slice::from_mut(&mut c));
                PathBuilder::from_circle(c.x, c.y, radius as f32 * base.sx.abs())
            }
            Shape::Capsule { .. } => None,
        };
        let Some(path) = path else {
            return;
        };
        let stroke = Stroke {
            width: 1.0,
            ..Stroke::default()
        };
        self.pixmap
            .stroke_path(&path, &paint(rgb), &stroke, Transform::identity(), None);
    }

    /// The transform from ground coordinates to pixels: `view` scaled
    /// uniformly to fit the image, centred, y up.
    fn ground_to_pixels(&self, view: &View) -> Result<Transform, SimError> {
        let [hx, hy] = view.half_extents;
        if !(hx > 0.0 && hy > 0.0 && hx.is_finite() && hy.is_finite()) {
            return Err(camera_err(format!("bad view half extents [{hx}, {hy}]")));
        }
        let (w, h) = (self.size.width as Real, self.size.height as Real);
        let scale = (w / (2.0 * hx)).min(h / (2.0 * hy));
        let [cx, cy] = view.center;
        Ok(Transform::from_row(
            scale as f32,
            0.0,
            0.0,
            -scale as f32,
            (w / 2.0 - scale * cx) as f32,
            (h / 2.0 + scale * cy) as f32,
        ))
    }

    /// Fills `shape`'s footprint on the ground in `rgb`.
    fn fill_shape(&mut self, base: Transform, shape: &Shape, rgb: [u8; 3]) {
        match *shape {
            Shape::Box {
                center,
                half_extents,
                rpy,
            } => {
                let yaw = rpy[2];
                let [hx, hy, _] = half_extents;
                self.fill_rect(base, [center[0], center[1]], [hx, hy], yaw, rgb);
            }
            Shape::Sphere { center, radius } | Shape::Cylinder { center, radius, .. } => {
                self.fill_disc(base, [center[0], center[1]], radius, rgb);
            }
            Shape::Capsule { a, b, radius } => {
                self.fill_disc(base, [a[0], a[1]], radius, rgb);
                self.fill_disc(base, [b[0], b[1]], radius, rgb);
                let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
                let half_length = 0.5 * dx.hypot(dy);
                if half_length > 0.0 {
                    let mid = [0.5 * (a[0] + b[0]), 0.5 * (a[1] + b[1])];
                    self.fill_rect(base, mid, [half_length, radius], dy.atan2(dx), rgb);
                }
            }
        }
    }

    /// Fills the push box with its +x face marked, so that its yaw shows.
    fn fill_marked_box(&mut self, base: Transform, shape: &Shape) {
        self.fill_shape(base, shape, BOX);
        if let Shape::Box {
            center,
            half_extents: [hx, hy, _],
            rpy,
        } = *shape
        {
            let (s, c) = rpy[2].sin_cos();
            let offset = (1.0 - FACE_FRACTION) * hx;
            let face = [center[0] + offset * c, center[1] + offset * s];
            self.fill_rect(base, face, [FACE_FRACTION * hx, hy], rpy[2], BOX_FACE);
        }
    }

    /// Fills the rectangle `center ± half` turned by `yaw` about its centre.
    fn fill_rect(
        &mut self,
        base: Transform,
        center: [Real; 2],
        half: [Real; 2],
        yaw: Real,
        rgb: [u8; 3],
    ) {
        let local = rect_transform(center, half, yaw);
        fill(&mut self.pixmap, &self.square, base.pre_concat(local), rgb);
    }

    /// Fills the disc of `radius` around `center`.
    fn fill_disc(&mut self, base: Transform, center: [Real; 2], radius: Real, rgb: [u8; 3]) {
        let local = disc_transform(center, radius);
        fill(&mut self.pixmap, &self.circle, base.pre_concat(local), rgb);
    }

    /// Copies the pixel buffer into `image` as C×H×W RGB (demultiplied;
    /// every pixel is opaque, so this is exact).
    fn write_rgb(&self, image: &mut [u8]) -> Result<(), SimError> {
        let plane = self.size.width * self.size.height;
        if image.len() != 3 * plane {
            return Err(camera_err(format!(
                "image buffer holds {} bytes, a {}x{} RGB image needs {}",
                image.len(),
                self.size.width,
                self.size.height,
                3 * plane
            )));
        }
        let (red, rest) = image.split_at_mut(plane);
        let (green, blue) = rest.split_at_mut(plane);
        for (k, p) in self.pixmap.pixels().iter().enumerate() {
            let p = p.demultiply();
            red[k] = p.red();
            green[k] = p.green();
            blue[k] = p.blue();
        }
        Ok(())
    }
}

/// Fills `path` placed by `transform` in the opaque colour `rgb`, anti-aliased.
fn fill(pixmap: &mut Pixmap, path: &Path, transform: Transform, rgb: [u8; 3]) {
    pixmap.fill_path(path, &paint(rgb), FillRule::Winding, transform, None);
}

/// Opaque anti-aliased paint in `rgb`.
fn paint([r, g, b]: [u8; 3]) -> Paint<'static> {
    let mut paint = Paint::default();
    paint.set_color_rgba8(r, g, b, 255);
    paint.anti_alias = true;
    paint
}

/// The unit square `[-1, 1]²` to the rectangle `center ± half` turned by
/// `yaw` about its centre.
fn rect_transform(center: [Real; 2], half: [Real; 2], yaw: Real) -> Transform {
    let (s, c) = yaw.sin_cos();
    Transform::from_row(
        (half[0] * c) as f32,
        (half[0] * s) as f32,
        (-half[1] * s) as f32,
        (half[1] * c) as f32,
        center[0] as f32,
        center[1] as f32,
    )
}

/// The unit disc to the disc of `radius` around `center`.
fn disc_transform(center: [Real; 2], radius: Real) -> Transform {
    Transform::from_row(
        radius as f32,
        0.0,
        0.0,
        radius as f32,
        center[0] as f32,
        center[1] as f32,
    )
}

/// A camera error (bad size, buffer or view).
fn camera_err(message: String) -> SimError {
    SimError::Scene {
        scene: "camera".into(),
        message,
    }
}

#[cfg(test)]
mod tests;
