//! The robot's simulated camera: headless offscreen rendering of the MuJoCo scene through OSMesa
//! (Mesa's software OpenGL, Debian `libosmesa6`), loaded at run time so the binary starts on a
//! machine without it. It renders the RGB frames the vision region sees and per-pixel
//! segmentation (which geom, hence which object, each pixel shows) for grounding training data.
//!
//! A camera holds an OpenGL context that is current on the thread that made it: create, use and
//! drop it on one thread (it is deliberately not `Send`).

use crate::sim::mjcf::CAMERA;
use crate::sim::mujoco::MujocoBody;
use mujoco_rs::prelude::*;
use std::ffi::c_void;
use std::marker::PhantomData;

/// Errors setting up the camera.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CameraError {
    /// OSMesa is not installed.
    #[error("offscreen rendering needs OSMesa (libOSMesa.so.8): run `scripts/bootstrap.sh` (installs libosmesa6) or run without the camera: {0}")]
    NoOsMesa(String),
    /// The GL context could not be made.
    #[error("OSMesa could not create a {0}x{1} context")]
    Context(u32, u32),
    /// The model has no camera.
    #[error("the model has no camera `{CAMERA}`")]
    NoCamera,
    /// Reading pixels failed.
    #[error("reading pixels failed: {0}")]
    Read(String),
}

/// An RGB8 frame, rows top to bottom.
#[derive(Debug, Clone, PartialEq)]
pub struct RgbFrame {
    /// Width, px.
    pub width: u32,
    /// Height, px.
    pub height: u32,
    /// Capture time (simulated), ns.
    pub stamp_ns: u64,
    /// `width * height * 3` bytes.
    pub data: Vec<u8>,
}

/// A segmentation frame: per pixel, the MuJoCo geom id it shows (-1: nothing), rows top to bottom.
#[derive(Debug, Clone, PartialEq)]
pub struct SegFrame {
    /// Width, px.
    pub width: u32,
    /// Height, px.
    pub height: u32,
    /// Capture time (simulated), ns.
    pub stamp_ns: u64,
    /// `width * height` geom ids.
    pub geom: Vec<i32>,
}

type CreateCtx = unsafe extern "C" fn(u32, i32, i32, i32, *mut c_void) -> *mut c_void;
type MakeCurrent = unsafe extern "C" fn(*mut c_void, *mut c_void, u32, i32, i32) -> u8;
type DestroyCtx = unsafe extern "C" fn(*mut c_void);

const OSMESA_RGBA: u32 = 0x1908;
const GL_UNSIGNED_BYTE: u32 = 0x1401;

/// An OSMesa OpenGL context current on this thread.
struct OsMesa {
    ctx: *mut c_void,
    destroy: DestroyCtx,
    _buffer: Vec<u8>,
}

impl OsMesa {
    fn new(width: u32, height: u32) -> Result<Self, CameraError> {
        // SAFETY: dlopen/dlsym with valid C strings; the symbols have the documented OSMesa
        // signatures; the buffer outlives the context (both owned here).
        unsafe {
            let mut handle = std::ptr::null_mut();
            for name in [c"libOSMesa.so.8", c"libOSMesa.so.6", c"libOSMesa.so"] {
                handle = libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL);
                if !handle.is_null() {
                    break;
                }
            }
            if handle.is_null() {
                let err = libc::dlerror();
                let msg = if err.is_null() {
                    "not found".to_string()
                } else {
                    std::ffi::CStr::from_ptr(err).to_string_lossy().into_owned()
                };
                return Err(CameraError::NoOsMesa(msg));
            }
            let sym = |n: &std::ffi::CStr| libc::dlsym(handle, n.as_ptr());
            let (c, m, d) = (
                sym(c"OSMesaCreateContextExt"),
                sym(c"OSMesaMakeCurrent"),
                sym(c"OSMesaDestroyContext"),
            );
            if c.is_null() || m.is_null() || d.is_null() {
                return Err(CameraError::NoOsMesa("symbols missing".into()));
            }
            let create: CreateCtx = std::mem::transmute::<*mut c_void, CreateCtx>(c);
            let make_current: MakeCurrent = std::mem::transmute::<*mut c_void, MakeCurrent>(m);
            let destroy: DestroyCtx = std::mem::transmute::<*mut c_void, DestroyCtx>(d);
            let ctx = create(OSMESA_RGBA, 24, 8, 0, std::ptr::null_mut());
            if ctx.is_null() {
                return Err(CameraError::Context(width, height));
            }
            let mut buffer = vec![0u8; (width * height * 4) as usize];
            if make_current(
                ctx,
                buffer.as_mut_ptr().cast(),
                GL_UNSIGNED_BYTE,
                width as i32,
                height as i32,
            ) == 0
            {
                destroy(ctx);
                return Err(CameraError::Context(width, height));
            }
            Ok(Self {
                ctx,
                destroy,
                _buffer: buffer,
            })
        }
    }
}

impl Drop for OsMesa {
    fn drop(&mut self) {
        // SAFETY: the context was created by us and is destroyed once.
        unsafe { (self.destroy)(self.ctx) }
    }
}

/// The robot's front camera.
pub struct SimCamera {
    // Field order matters: the MuJoCo render context must go before the GL context.
    context: MjrContext,
    scene: MjvScene,
    option: MjvOption,
    perturb: MjvPerturb,
    camera: MjvCamera,
    width: u32,
    height: u32,
    rgb: Vec<u8>,
    _gl: OsMesa,
    _not_send: PhantomData<*mut ()>,
}

impl SimCamera {
    /// A camera for `body`'s model, `width` x `height` pixels (at most the model's offscreen size).
    pub fn new(body: &MujocoBody, width: u32, height: u32) -> Result<Self, CameraError> {
        let model = body.model();
        let cam = model
            .name_to_id(MjtObjBase::mjOBJ_CAMERA, CAMERA)
            .ok_or(CameraError::NoCamera)?;
        let gl = OsMesa::new(width.max(64), height.max(64))?;
        // SAFETY: the OSMesa context just made current on this thread lives as long as `self`
        // and is dropped after the MjrContext (field order).
        let mut context = unsafe { MjrContext::new(model) };
        context.offscreen();
        Ok(Self {
            context,
            scene: MjvScene::new(model, 2000),
            option: MjvOption::default(),
            perturb: MjvPerturb::default(),
            camera: MjvCamera::new_fixed(cam),
            width,
            height,
            rgb: vec![0; (width * height * 3) as usize],
            _gl: gl,
            _not_send: PhantomData,
        })
    }

    fn viewport(&self) -> MjrRectangle {
        MjrRectangle {
            left: 0,
            bottom: 0,
            width: self.width as i32,
            height: self.height as i32,
        }
    }

    fn draw(&mut self, body: &mut MujocoBody, segment: bool) -> Result<(), CameraError> {
        let flags = self.scene.flags_mut();
        flags[MjtRndFlag::mjRND_SEGMENT as usize] = segment as u8;
        flags[MjtRndFlag::mjRND_IDCOLOR as usize] = segment as u8;
        self.scene.update(
            body.data_mut(),
            &self.option,
            &self.perturb,
            &mut self.camera,
        );
        let vp = self.viewport();
        self.scene.render(&vp, &self.context);
        self.context
            .read_pixels(Some(&mut self.rgb), None, &vp)
            .map_err(|e| CameraError::Read(e.to_string()))
    }

    /// Render the RGB image the robot's camera sees now.
    pub fn render_rgb(&mut self, body: &mut MujocoBody) -> Result<RgbFrame, CameraError> {
        self.draw(body, false)?;
        let stamp_ns = (body.time() * 1e9).round() as u64;
        let row = (self.width * 3) as usize;
        let mut data = Vec::with_capacity(self.rgb.len());
        for r in self.rgb.chunks_exact(row).rev() {
            data.extend_from_slice(r);
        }
        Ok(RgbFrame {
            width: self.width,
            height: self.height,
            stamp_ns,
            data,
        })
    }

    /// Render per-pixel geom ids (-1 where nothing is drawn). Map a geom to a layout object with
    /// [`MujocoBody::object_of_geom`].
    pub fn render_segmentation(&mut self, body: &mut MujocoBody) -> Result<SegFrame, CameraError> {
        self.draw(body, true)?;
        let stamp_ns = (body.time() * 1e9).round() as u64;
        let scn = self.scene.ffi();
        // SAFETY: `geoms` holds `ngeom` initialised entries after mjv_updateScene.
        let geoms = unsafe { std::slice::from_raw_parts(scn.geoms, scn.ngeom.max(0) as usize) };
        let row = (self.width * 3) as usize;
        let mut ids = Vec::with_capacity((self.width * self.height) as usize);
        for r in self.rgb.chunks_exact(row).rev() {
            for px in r.chunks_exact(3) {
                let seg = px[0] as i32 + ((px[1] as i32) << 8) + ((px[2] as i32) << 16) - 1;
                let id = geoms
                    .get(seg.max(0) as usize)
                    .filter(|g| seg >= 0 && g.objtype == MjtObjBase::mjOBJ_GEOM as i32)
                    .map(|g| g.objid)
                    .unwrap_or(-1);
                ids.push(id);
            }
        }
        Ok(SegFrame {
            width: self.width,
            height: self.height,
            stamp_ns,
            geom: ids,
        })
    }
}
