//! The one error type of the runtime.
//!
//! Every variant names what is at fault — the site, the distribution parameter, the shapes, the
//! file and line — because a probabilistic program fails far from where its author can see it.

use std::path::PathBuf;

/// Result alias used throughout ppl.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in ppl.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tensor operation failed inside candle.
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),

    /// A distribution or transform parameter is outside its domain (negative scale, probability
    /// outside [0, 1], NaN, ..).
    #[error("invalid parameter `{param}` of {dist}: {reason}")]
    InvalidParameter {
        /// The distribution or transform, e.g. `Normal`.
        dist: &'static str,
        /// The parameter, e.g. `scale`.
        param: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// Two shapes that must agree do not.
    #[error("shape mismatch in {context}: expected {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// Where the shapes met (a distribution, a transform or a site name).
        context: String,
        /// The shape that was required.
        expected: Vec<usize>,
        /// The shape that was given.
        got: Vec<usize>,
    },

    /// A site's value or distribution does not fit the plates and worlds around it. The frame
    /// table lists every plate and world active at the site, with its dim and size.
    #[error("site `{site}`: {reason}\n{frames}")]
    SiteShape {
        /// The site's full name.
        site: String,
        /// What does not fit.
        reason: String,
        /// The frame table (plates and worlds with their dims and sizes).
        frames: String,
    },

    /// A handler was given site names that the run never reached.
    #[error("{handler}: site(s) {names:?} were never reached by the model; reached: {reached:?}")]
    UnknownSite {
        /// The handler that was given the names (`condition`, `do`, `replay`, ..).
        handler: &'static str,
        /// The names that were not reached.
        names: Vec<String>,
        /// The sample sites that the run did reach, in order.
        reached: Vec<String>,
    },

    /// The same site address was used twice in one run.
    #[error("duplicate site `{name}`: a site address may appear only once per run (use a plate or an indexed name)")]
    DuplicateSite {
        /// The repeated address.
        name: String,
    },

    /// A value given for a site does not fit it (wrong shape, wrong dtype, outside the support).
    #[error("site `{site}`: {reason}")]
    InvalidValue {
        /// The site's full name.
        site: String,
        /// What is wrong.
        reason: String,
    },

    /// `rsample` was asked of a distribution that cannot be reparameterised.
    #[error("{dist} has no reparameterised sampler (rsample); use sample, or a score-function estimator")]
    NotReparameterizable {
        /// The distribution.
        dist: &'static str,
    },

    /// A plate was misused (size zero, subsample larger than the plate, a dim already taken, ..).
    #[error("plate `{name}`: {reason}")]
    Plate {
        /// The plate's name.
        name: String,
        /// What is wrong.
        reason: String,
    },

    /// A log-density or loss became NaN or infinite.
    #[error("non-finite value at `{site}`: {what}")]
    NonFinite {
        /// The site (or parameter) whose value went non-finite.
        site: String,
        /// What went non-finite.
        what: String,
    },

    /// An error raised while handling a site, wrapped so that it names the site.
    #[error("at site `{site}`: {source}")]
    AtSite {
        /// The site's full name.
        site: String,
        /// What went wrong there.
        #[source]
        source: Box<Error>,
    },

    /// A handler or primitive was used where it has no meaning.
    #[error("{0}")]
    Usage(String),

    /// An operation that the distribution, transform or device does not support.
    #[error("{what} is not supported: {why}")]
    Unsupported {
        /// The operation.
        what: String,
        /// Why not.
        why: String,
    },

    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A file's contents are malformed.
    #[error("{path}:{line}: {reason}")]
    Parse {
        /// The file at fault.
        path: PathBuf,
        /// The 1-based line (or record) at fault; 0 when the file as a whole is at fault.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    /// An [`Error::InvalidParameter`].
    pub fn param(dist: &'static str, param: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidParameter {
            dist,
            param,
            reason: reason.into(),
        }
    }

    /// An [`Error::ShapeMismatch`].
    pub fn shape(context: impl Into<String>, expected: &[usize], got: &[usize]) -> Self {
        Error::ShapeMismatch {
            context: context.into(),
            expected: expected.to_vec(),
            got: got.to_vec(),
        }
    }

    /// An [`Error::Usage`].
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    /// An [`Error::InvalidValue`] for `site`.
    pub fn value(site: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidValue {
            site: site.into(),
            reason: reason.into(),
        }
    }

    /// Wraps `self` so that it names `site` (once: an error already naming a site is kept).
    pub fn at_site(self, site: &str) -> Self {
        match self {
            e @ (Error::AtSite { .. }
            | Error::SiteShape { .. }
            | Error::InvalidValue { .. }
            | Error::DuplicateSite { .. }
            | Error::UnknownSite { .. }
            | Error::NonFinite { .. }) => e,
            e => Error::AtSite {
                site: site.to_string(),
                source: Box::new(e),
            },
        }
    }

    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Parse`] at `path:line`.
    pub fn parse(path: impl Into<PathBuf>, line: usize, reason: impl Into<String>) -> Self {
        Error::Parse {
            path: path.into(),
            line,
            reason: reason.into(),
        }
    }
}
