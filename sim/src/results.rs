//! A run's results on disk, safe from interruption and failure.
//!
//! A run told to write its results to `out.json` writes two files:
//!
//! - `out.json.partial.jsonl` ([`partial_path`]) while it runs: a header
//!   line naming the run, then one line `{"episode": i, "result": {…}}` per
//!   finished episode, in the order they finish, each written whole and
//!   flushed at once ([`EpisodeLog`]);
//! - `out.json` at the end: the whole document, written to a new file in the
//!   same folder and renamed over `out.json` ([`write_atomic`]), so that a
//!   reader finds the old document or the new one, never a mix.
//!
//! A run that completes then removes the partial file. One that is
//! interrupted, or whose episode fails, still writes `out.json` over the
//! episodes that finished (marked as such) and keeps the partial file, from
//! which a later run can [`EpisodeLog::resume`]. Nothing is created,
//! truncated or replaced before the run's first episode: [`check_output`]
//! checks a path without touching it.

use crate::episode::EpisodeResult;
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Value of the header's `format` key.
pub const LOG_FORMAT: &str = "telic.run.episodes";

/// Why a run's results could not be written or read back.
#[derive(Debug, Error)]
pub enum OutputError {
    /// The operating system refused a read or write.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The path cannot take the results (not a regular file, say).
    #[error("{path}: {message}")]
    Refused {
        /// The path.
        path: String,
        /// Why, and what to do instead.
        message: String,
    },
    /// A partial file is not one this program wrote.
    #[error("{path} line {line}: {message}")]
    Corrupt {
        /// The partial file.
        path: String,
        /// The line (from 1).
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A partial file holds the episodes of a run with other settings.
    #[error(
        "{path} holds episodes of another run: its `{key}` is {found}, this run's is {expected}"
    )]
    OtherRun {
        /// The partial file.
        path: String,
        /// The setting that differs.
        key: String,
        /// Its value in the file.
        found: String,
        /// Its value in this run.
        expected: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The partial file of the run writing `path`: `path` with
/// `.partial.jsonl` appended to its name.
#[must_use]
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial.jsonl");
    path.with_file_name(name)
}

/// The folder a file at `path` is created in.
fn folder(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A new, empty file in the folder of `path`, named after it.
fn create_sibling(path: &Path) -> Result<(PathBuf, File), OutputError> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let dir = folder(path);
    let mut last = None;
    for attempt in 0..100u32 {
        let tmp = dir.join(format!(".{name}.{}.{attempt}.tmp", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(io_err(dir)(e)),
        }
    }
    Err(io_err(dir)(last.unwrap_or_else(|| {
        std::io::Error::other("no free temporary file name")
    })))
}

/// Checks that results can be written to `path` without creating,
/// truncating or replacing it: `path` is absent or a regular file, and its
/// folder takes a new file (one is created there and removed).
pub fn check_output(path: &Path) -> Result<(), OutputError> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => {
            return Err(OutputError::Refused {
                path: path.display().to_string(),
                message: "is not a regular file; give the path of a file (it is written \
                          whole at the end, by renaming a new file over it)"
                    .into(),
            });
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(path)(e)),
    }
    let (tmp, file) = create_sibling(path)?;
    drop(file);
    std::fs::remove_file(&tmp).map_err(io_err(&tmp))
}

/// Writes `bytes` to `path` atomically: into a new file in the same folder,
/// synced, then renamed over `path`. On failure `path` is left as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    check_output(path)?;
    let (tmp, mut file) = create_sibling(path)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_err(path));
    drop(file);
    let renamed = written.and_then(|()| std::fs::rename(&tmp, path).map_err(io_err(path)));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
}

/// The partial file of a run: a header line, then a line per finished
/// episode, each written whole and flushed.
#[derive(Debug)]
pub struct EpisodeLog {
    path: PathBuf,
    file: File,
}

/// One episode line of the partial file. `f64_bits` holds the bit pattern
/// of every floating-point number of `result`, in the order a walk of its
/// JSON meets them: serde_json's parser may miss a float's last bit, and a
/// resumed run must give back the very results an uninterrupted run gives.
#[derive(serde::Serialize, serde::Deserialize)]
struct Line {
    episode: usize,
    result: Value,
    #[serde(default)]
    f64_bits: Vec<u64>,
}

/// Calls `f` on every floating-point number of `v`, in a fixed order.
fn walk_floats(v: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    match v {
        Value::Number(n) if n.is_f64() => f(v),
        Value::Array(items) => items.iter_mut().for_each(|x| walk_floats(x, f)),
        Value::Object(map) => map.values_mut().for_each(|x| walk_floats(x, f)),
        _ => {}
    }
}

impl Line {
    fn of(episode: usize, result: &EpisodeResult) -> Result<Self, serde_json::Error> {
        let mut result = serde_json::to_value(result)?;
        let mut f64_bits = Vec::new();
        walk_floats(&mut result, &mut |x| {
            f64_bits.push(x.as_f64().unwrap_or(f64::NAN).to_bits());
        });
        Ok(Self {
            episode,
            result,
            f64_bits,
        })
    }

    fn into_result(mut self) -> Result<(usize, EpisodeResult), String> {
        let mut bits = self.f64_bits.iter();
        let mut missing = false;
        walk_floats(&mut self.result, &mut |x| match bits.next() {
            Some(b) => {
                if let Some(n) = serde_json::Number::from_f64(f64::from_bits(*b)) {
                    *x = Value::Number(n);
                }
            }
            None => missing = true,
        });
        if missing || bits.next().is_some() {
            return Err("its f64_bits do not match its result".into());
        }
        let result = serde_json::from_value(self.result).map_err(|e| e.to_string())?;
        Ok((self.episode, result))
    }
}

impl EpisodeLog {
    /// Starts the partial file at `path` with the run's `header` (its
    /// settings, an object; `format` is added). Refuses to replace an
    /// existing file: it holds an unfinished run's episodes.
    pub fn create(path: &Path, header: &Value) -> Result<Self, OutputError> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    OutputError::Refused {
                        path: path.display().to_string(),
                        message: "exists: it holds the finished episodes of an unfinished \
                                  run; finish that run with --resume, or remove the file"
                            .into(),
                    }
                } else {
                    io_err(path)(e)
                }
            })?;
        let mut log = Self {
            path: path.to_path_buf(),
            file,
        };
        let mut header = header.clone();
        if let Some(h) = header.as_object_mut() {
            h.insert("format".into(), LOG_FORMAT.into());
        }
        log.write_line(&header)?;
        Ok(log)
    }

    /// Opens the partial file at `path` of an unfinished run to add episodes
    /// to it, and returns the episodes it holds (in file order). Its header
    /// must match `header` on every key but those in `free` (settings that do
    /// not change an episode's result, such as the number of episodes). A
    /// last line cut short (a run killed while writing it) is dropped.
    pub fn resume(
        path: &Path,
        header: &Value,
        free: &[&str],
    ) -> Result<(Self, Vec<(usize, EpisodeResult)>), OutputError> {
        let shown = path.display().to_string();
        let corrupt = |line: usize, message: String| OutputError::Corrupt {
            path: shown.clone(),
            line,
            message,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    OutputError::Refused {
                        path: shown.clone(),
                        message: "does not exist: there is no unfinished run to resume \
                                  (leave out --resume to start one)"
                            .into(),
                    }
                } else {
                    io_err(path)(e)
                }
            })?;
        let mut episodes = Vec::new();
        let mut whole = 0u64; // bytes of whole lines
        let mut reader = BufReader::new(&mut file);
        let mut text = String::new();
        for n in 1.. {
            text.clear();
            let read = reader.read_line(&mut text).map_err(io_err(path))?;
            if read == 0 || !text.ends_with('\n') {
                break;
            }
            whole += read as u64;
            if n == 1 {
                let found: Value = serde_json::from_str(&text)
                    .map_err(|e| corrupt(n, format!("not a header line: {e}")))?;
                check_header(&shown, &found, header, free)?;
                continue;
            }
            let line: Line = serde_json::from_str(&text)
                .map_err(|e| corrupt(n, format!("not an episode line: {e}")))?;
            episodes.push(
                line.into_result()
                    .map_err(|e| corrupt(n, format!("not an episode line: {e}")))?,
            );
        }
        if whole == 0 {
            return Err(corrupt(1, "no header line".into()));
        }
        drop(reader);
        file.set_len(whole).map_err(io_err(path))?;
        file.seek(SeekFrom::End(0)).map_err(io_err(path))?;
        Ok((
            Self {
                path: path.to_path_buf(),
                file,
            },
            episodes,
        ))
    }

    /// Appends episode `index`'s `result` and flushes it to the file.
    pub fn append(&mut self, index: usize, result: &EpisodeResult) -> Result<(), OutputError> {
        let line = Line::of(index, result).map_err(|e| OutputError::Io {
            path: self.path.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        self.write_line(&line)
    }

    fn write_line(&mut self, value: &impl serde::Serialize) -> Result<(), OutputError> {
        let mut bytes = serde_json::to_vec(value).map_err(|e| OutputError::Io {
            path: self.path.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        bytes.push(b'\n');
        // One write of the whole line: a reader never sees half of it unless
        // the process dies inside this call.
        self.file
            .write_all(&bytes)
            .and_then(|()| self.file.flush())
            .map_err(io_err(&self.path))
    }

    /// The partial file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the partial file (its run completed).
    pub fn remove(self) -> Result<(), OutputError> {
        drop(self.file);
        std::fs::remove_file(&self.path).map_err(io_err(&self.path))
    }
}

/// Compares a partial file's header with this run's, key by key.
fn check_header(
    path: &str,
    found: &Value,
    expected: &Value,
    free: &[&str],
) -> Result<(), OutputError> {
    let format = found.get("format").and_then(Value::as_str);
    if format != Some(LOG_FORMAT) {
        return Err(OutputError::Corrupt {
            path: path.to_string(),
            line: 1,
            message: format!("its format is {format:?}, not \"{LOG_FORMAT}\""),
        });
    }
    let Some(expected) = expected.as_object() else {
        return Ok(());
    };
    for (key, want) in expected {
        if free.contains(&key.as_str()) {
            continue;
        }
        let got = found.get(key).unwrap_or(&Value::Null);
        if got != want {
            let short = |v: &Value| {
                let s = v.to_string();
                if s.chars().count() > 80 {
                    format!("{}…", s.chars().take(80).collect::<String>())
                } else {
                    s
                }
            };
            return Err(OutputError::OtherRun {
                path: path.to_string(),
                key: key.clone(),
                found: short(got),
                expected: short(want),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn dir(test: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("telic-results-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn result(seed: u64) -> EpisodeResult {
        let mut r = EpisodeResult::start(seed);
        r.worst_margin = 0.25;
        // Floats whose shortest decimal serde_json's default parser misreads.
        r.task_cost = 20.203227864161057 + seed as f64 * 1e-9;
        r.plan_latency_ms = vec![18.893428374624726, 0.1 + 0.2];
        r
    }

    #[test]
    fn checking_a_path_leaves_an_existing_file_alone() {
        let d = dir("check");
        let keep = d.join("keep.json");
        std::fs::write(&keep, "{\"x\":1}\n").unwrap();
        check_output(&keep).unwrap();
        assert_eq!(std::fs::read_to_string(&keep).unwrap(), "{\"x\":1}\n");
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            1,
            "no file left behind"
        );
        let e = check_output(&d).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        assert!(check_output(&d.join("no/such/folder/x.json")).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_log_resumes_with_its_episodes_and_drops_a_cut_line() {
        let d = dir("resume");
        let path = d.join("out.json.partial.jsonl");
        let header = serde_json::json!({"seed": 3, "episodes": 10});
        let mut log = EpisodeLog::create(&path, &header).unwrap();
        log.append(4, &result(40)).unwrap();
        log.append(1, &result(10)).unwrap();
        drop(log);
        let e = EpisodeLog::create(&path, &header).unwrap_err().to_string();
        assert!(e.contains("--resume"), "{e}");
        // A run killed in the middle of a line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"episode\": 7, \"res").unwrap();
        drop(f);
        let more = serde_json::json!({"seed": 3, "episodes": 20});
        let (mut log, done) = EpisodeLog::resume(&path, &more, &["episodes"]).unwrap();
        let seeds: Vec<(usize, u64)> = done.iter().map(|(i, r)| (*i, r.seed)).collect();
        assert_eq!(seeds, [(4, 40), (1, 10)]);
        assert_eq!(done[0].1, result(40), "bit for bit");
        log.append(7, &result(70)).unwrap();
        drop(log);
        let (_, done) = EpisodeLog::resume(&path, &more, &["episodes"]).unwrap();
        assert_eq!(done.len(), 3);
        let other = serde_json::json!({"seed": 4, "episodes": 10});
        let e = EpisodeLog::resume(&path, &other, &["episodes"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`seed` is 3, this run's is 4"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_atomic_write_replaces_the_whole_file() {
        let d = dir("atomic");
        let path = d.join("out.json");
        std::fs::write(&path, "old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
