//! Parsing the main files of several revisions at once, sharing the unchanged parts.
//!
//! In: the texts of inventory files (in a plan, the main file of both revisions). Out: for each,
//! exactly what [`yaml::parse`] gives (the same value, or the same error at the same place).
//! A file whose `all.children` entries are simple block-style lines is split into one chunk per
//! entry plus a skeleton (the file with the children's lines replaced by one line, so files
//! whose children differ, even in length, share it);
//! every distinct chunk of all files is parsed once, on two threads, and the parts are joined.
//! Whenever a part fails or the join could differ from a whole parse (a duplicate child, aliases
//! that could cross parts, too many alias expansions), that file is parsed whole instead, so
//! errors always come from the whole parse. The variable mappings of each parsed part (a chunk's,
//! and a skeleton's `all.vars` and top-level groups) are lifted into `Arc`s ([`Lifted`]) once, so
//! revisions that share a part share its values (and `reuse` can tell them by address), and the
//! copy of a part for a second revision is only its skeleton of markers. Pure:
//! no IO.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde_yaml_ng::{Mapping, Value};

pub use super::lifted::Lifted;
use super::lifted::{lift, lifted, Layer};
use super::yaml::{self, ParseError, Piece, MAX_ALIAS_VALUES};
use super::{Origin, Seg};

/// A file cut at the entries of `all.children`.
#[derive(Debug, PartialEq)]
pub struct Split<'a> {
    /// The file with the lines of `all.children`'s entries replaced by one sentinel line.
    /// Positions inside a part never reach a user: a part that fails is parsed whole again, and
    /// diagnostics are located in the file's own text (`diag::locate`).
    pub skeleton: String,
    /// One entry each (`name:` and its lines), in file order.
    pub chunks: Vec<&'a str>,
}

/// Nesting of a chunk in the document: the root mapping and `all`'s mapping (the chunk's own
/// top-level mapping stands for `children`'s).
const CHUNK_DEPTH: usize = 2;

/// The only entry of `all.children` in a skeleton (a file holding this text is not split).
const SENTINEL: &str = "__pgitops_split_children__";

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Blank, or only a comment.
fn is_filler(line: &str) -> bool {
    let t = line.trim_start_matches(' ');
    t.is_empty() || t.starts_with('#')
}

/// Exactly `key:` (after `indent` spaces), optionally followed by spaces and a comment.
fn is_bare_key(line: &str, key: &str) -> bool {
    let Some(rest) = line.trim_start_matches(' ').strip_prefix(key) else {
        return false;
    };
    let Some(rest) = rest.strip_prefix(':') else {
        return false;
    };
    rest.trim_start_matches(' ').is_empty()
        || (rest.starts_with(' ') && rest.trim_start_matches(' ').starts_with('#'))
}

/// Cuts `text` at the entries of `all.children`, or `None` when the file is not plainly laid
/// out (then it is parsed whole).
pub fn split(text: &str) -> Option<Split<'_>> {
    // Directives, tabs and carriage returns: not worth reasoning about.
    if text.contains('\t') || text.contains('\r') || text.starts_with('%') {
        return None;
    }
    if text.contains("\n%") || text.contains(SENTINEL) {
        return None;
    }
    // Byte offset of the start of every line.
    let mut starts = vec![0];
    starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
    if starts.last() == Some(&text.len()) {
        starts.pop();
    }
    let line = |i: usize| {
        let end = starts.get(i + 1).map_or(text.len(), |e| e - 1);
        &text[starts[i]..end]
    };
    let n = starts.len();
    let mut all = (0..n).find(|&i| !is_filler(line(i)))?;
    // A document start marker alone on its line may come first.
    if line(all).trim_end_matches(' ') == "---" {
        all = (all + 1..n).find(|&i| !is_filler(line(i)))?;
    }
    if indent(line(all)) != 0 || !is_bare_key(line(all), "all") {
        return None;
    }
    // `all`'s keys: the first non-filler line sets their indentation.
    let first = (all + 1..n).find(|&i| !is_filler(line(i)))?;
    let key_indent = indent(line(first));
    if key_indent == 0 {
        return None;
    }
    let mut children = None;
    for i in first..n {
        let l = line(i);
        if is_filler(l) {
            continue;
        }
        let ind = indent(l);
        if ind == 0 {
            break;
        }
        if ind == key_indent && is_bare_key(l, "children") {
            children = Some(i);
            break;
        }
    }
    let children = children?;
    let entry = (children + 1..n).find(|&i| !is_filler(line(i)))?;
    let entry_indent = indent(line(entry));
    if entry_indent <= key_indent {
        return None;
    }
    // Chunk starts (line numbers) and the line after the last chunk.
    let mut cuts = Vec::new();
    let mut end = n;
    for i in entry..n {
        let l = line(i);
        if is_filler(l) {
            continue;
        }
        let ind = indent(l);
        if ind <= key_indent {
            end = i;
            break;
        }
        if ind < entry_indent {
            return None;
        }
        if ind == entry_indent {
            let c = l.as_bytes()[ind];
            if !(c.is_ascii_alphanumeric() || matches!(c, b'_' | b'"' | b'\'')) {
                return None;
            }
            cuts.push(i);
        }
    }
    // Fillers just before `end` stay with the last chunk; they are comments or blank.
    let byte = |i: usize| starts.get(i).copied().unwrap_or(text.len());
    let chunks = cuts
        .iter()
        .enumerate()
        .map(|(k, &c)| &text[byte(c)..byte(cuts.get(k + 1).copied().unwrap_or(end))])
        .collect();
    let mut skeleton = String::with_capacity(byte(entry) + 64 + text.len() - byte(end));
    skeleton.push_str(&text[..byte(entry)]);
    // The sentinel pins where `children` is: joined only if the skeleton reads it there.
    skeleton.push_str(&" ".repeat(entry_indent));
    skeleton.push_str(SENTINEL);
    skeleton.push_str(": 0\n");
    skeleton.push_str(&text[byte(end)..]);
    Some(Split { skeleton, chunks })
}

/// A part to parse, and how many joins still need its value.
struct Part<'a> {
    /// The file it is in (a part is shared only by files of the same path).
    file: &'a str,
    text: &'a str,
    depth: usize,
    parsed: Mutex<Option<Result<Piece, ParseError>>>,
    uses: AtomicUsize,
    /// The variable mappings lifted out of the part.
    lifted: OnceLock<Vec<Arc<Layer>>>,
}

/// What [`parse_all`] gives.
pub struct Parsed {
    /// Each file's value (with markers of `shared`), or its error.
    pub files: Vec<Result<Value, ParseError>>,
    pub shared: Arc<Lifted>,
    /// How many files were joined from parts (the others were parsed whole).
    pub joined: usize,
}

/// Parses every `(path, text)` as [`yaml::parse`] would, sharing the chunks they have in common.
pub fn parse_all(files: &[(&str, &str)]) -> Parsed {
    let t = std::time::Instant::now();
    // Two files (a plan's): one split on each thread.
    let splits: Vec<Option<Split>> = match files {
        [(_, a), (_, b)] => std::thread::scope(|s| {
            let first = s.spawn(|| split(a));
            let second = split(b);
            vec![first.join().expect("splitting thread panicked"), second]
        }),
        _ => files.iter().map(|(_, t)| split(t)).collect(),
    };
    let mut index: HashMap<(&str, &str, usize), usize> = HashMap::new();
    let mut parts: Vec<Part> = Vec::new();
    // Part indices per file: the skeleton first, then the chunks.
    let plans: Vec<Option<Vec<usize>>> = splits
        .iter()
        .zip(files)
        .map(|(s, (file, _))| {
            let s = s.as_ref()?;
            let mut ids = Vec::with_capacity(1 + s.chunks.len());
            for (text, depth) in std::iter::once((s.skeleton.as_str(), 0))
                .chain(s.chunks.iter().map(|c| (*c, CHUNK_DEPTH)))
            {
                let id = *index.entry((file, text, depth)).or_insert_with(|| {
                    parts.push(Part {
                        file,
                        text,
                        depth,
                        parsed: Mutex::new(None),
                        uses: AtomicUsize::new(0),
                        lifted: OnceLock::new(),
                    });
                    parts.len() - 1
                });
                parts[id].uses.fetch_add(1, Ordering::Relaxed);
                ids.push(id);
            }
            Some(ids)
        })
        .collect();
    let lap = |stage: &str| {
        tracing::debug!(
            stage,
            ms = t.elapsed().as_secs_f64() * 1e3,
            parts = parts.len(),
            "split parsing"
        )
    };
    lap("split");
    let next = AtomicUsize::new(0);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(p) = parts.get(i) else { break };
        let mut parsed = yaml::parse_piece("", p.text, p.depth);
        // A chunk is a mapping of groups; a skeleton's root is one too (`all` and any other
        // top-level groups), its `children` only the sentinel.
        if let Ok(piece) = &mut parsed {
            let mut out = Vec::new();
            // A chunk's groups sit under `all.children`; a skeleton's at the top.
            let path = match p.depth {
                CHUNK_DEPTH => vec![Seg::Key("all".into()), Seg::Key("children".into())],
                _ => vec![],
            };
            let at = Origin {
                file: p.file.to_string(),
                path,
            };
            lift(&mut piece.value, i, &at, &mut out);
            let _ = p.lifted.set(out);
        }
        *p.parsed.lock().unwrap_or_else(|e| e.into_inner()) = Some(parsed);
    };
    std::thread::scope(|s| {
        s.spawn(work);
        work();
    });
    // Join: each file on its own thread (the first here), the second walking its parts backwards
    // so that the two rarely wait on the same part.
    lap("parsed");
    let joined = AtomicUsize::new(0);
    let assemble = |k: usize, backwards: bool| -> Result<Value, ParseError> {
        let (path, text) = files[k];
        match plans[k]
            .as_ref()
            .and_then(|ids| join(&parts, ids, backwards))
        {
            Some(v) => {
                joined.fetch_add(1, Ordering::Relaxed);
                Ok(v)
            }
            None => yaml::parse(path, text),
        }
    };
    let mut out: Vec<Option<Result<Value, ParseError>>> = (0..files.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let (first, rest) = out.split_at_mut(files.len().min(1));
        let handle = s.spawn(|| {
            for (k, slot) in rest.iter_mut().enumerate() {
                *slot = Some(assemble(k + 1, true));
            }
        });
        if let Some(slot) = first.first_mut() {
            *slot = Some(assemble(0, false));
        }
        handle.join().expect("joining thread panicked");
    });
    lap("joined");
    let shared = lifted(
        parts
            .into_iter()
            .map(|p| p.lifted.into_inner().unwrap_or_default())
            .collect(),
    );
    Parsed {
        files: out.into_iter().map(|r| r.expect("assembled")).collect(),
        shared: Arc::new(shared),
        joined: joined.into_inner(),
    }
}

/// The value of one part for one of its users: the last user takes it, others copy it.
fn take(part: &Part) -> Option<Piece> {
    let mut slot = part.parsed.lock().unwrap_or_else(|e| e.into_inner());
    let last = part.uses.fetch_sub(1, Ordering::AcqRel) == 1;
    match slot.as_ref()? {
        Err(_) => None,
        Ok(p) if !last => Some(Piece {
            value: p.value.clone(),
            expanded: p.expanded,
            anchors: p.anchors,
            aliases: p.aliases,
        }),
        Ok(_) => slot.take()?.ok(),
    }
}

/// The whole file's value from its parts, or `None` when it must be parsed whole.
fn join(parts: &[Part], ids: &[usize], backwards: bool) -> Option<Value> {
    let (skeleton, chunks) = ids.split_first()?;
    let n = chunks.len();
    let mut got: Vec<Option<Piece>> = (0..n).map(|_| None).collect();
    for k in 0..n {
        let k = if backwards { n - 1 - k } else { k };
        got[k] = Some(take(&parts[chunks[k]])?);
    }
    let Piece {
        value: mut root,
        expanded,
        aliases,
        ..
    } = take(&parts[*skeleton])?;
    let mut total = expanded;
    let mut children = Mapping::with_capacity(n);
    for piece in got.into_iter().flatten() {
        // An anchor in a chunk could shadow one the skeleton's aliases mean.
        if aliases && piece.anchors {
            return None;
        }
        total += piece.expanded;
        let Value::Mapping(entry) = piece.value else {
            return None;
        };
        if entry.len() != 1 {
            return None;
        }
        let (k, v) = entry.into_iter().next()?;
        if children.insert(k, v).is_some() {
            return None;
        }
    }
    if total > MAX_ALIAS_VALUES {
        return None;
    }
    let slot = root.get_mut("all")?.as_mapping_mut()?.get_mut("children")?;
    let sentinel = slot.as_mapping()?;
    if sentinel.len() != 1 || sentinel.get(SENTINEL) != Some(&Value::from(0)) {
        return None;
    }
    *slot = Value::Mapping(children);
    Some(root)
}

#[cfg(test)]
#[path = "chunks_tests.rs"]
mod tests;
