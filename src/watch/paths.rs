//! Which paths are candidates: the `[watch]` include and exclude globs, hidden
//! files and the names of files still being written ([`PathFilter`]).

use std::path::Path;

use globset::{Glob, GlobSet, GlobSetBuilder};

/// Which paths are candidates.
#[derive(Debug, Clone)]
pub struct PathFilter {
    include: Option<GlobSet>,
    exclude: GlobSet,
}

impl PathFilter {
    /// Builds the filter from `[watch]` globs.
    pub fn new(include: &[String], exclude: &[String]) -> Result<PathFilter, globset::Error> {
        let build = |globs: &[String]| -> Result<GlobSet, globset::Error> {
            let mut b = GlobSetBuilder::new();
            for g in globs {
                b.add(Glob::new(g)?);
            }
            b.build()
        };
        Ok(PathFilter {
            include: if include.is_empty() {
                None
            } else {
                Some(build(include)?)
            },
            exclude: build(exclude)?,
        })
    }

    /// True when `rel` (a path relative to the watched folder) should be read.
    pub fn accepts(&self, rel: &Path) -> bool {
        let hidden = rel
            .components()
            .any(|c| c.as_os_str().as_encoded_bytes().first() == Some(&b'.'));
        if hidden {
            return false;
        }
        let name = rel
            .file_name()
            .map(|n| n.as_encoded_bytes())
            .unwrap_or_default();
        let scratch = [&b".tmp"[..], b".part", b".swp", b"~"]
            .iter()
            .any(|s| name.len() >= s.len() && name[name.len() - s.len()..].eq_ignore_ascii_case(s));
        if scratch {
            return false;
        }
        if let Some(inc) = &self.include {
            if !inc.is_match(rel) {
                return false;
            }
        }
        !self.exclude.is_match(rel)
    }
}

/// True for a directory that is named like an article (`*.txt`): reported, not entered.
pub(super) fn article_named(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("txt"))
}
