//! Where a key path is in a YAML text: `routing.keywords[1].pattern` → line 42, column 7. serde's
//! tree has no positions, so `aofctl validate` reads the text a second time with yaml-rust2's event
//! parser, which marks each key and each sequence item with its line and column.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A position: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// The positions of every key and sequence item of one YAML document, by key path.
#[derive(Debug, Default)]
pub struct Locations {
    at: HashMap<String, Position>,
}

enum Frame {
    Map { key: Option<String> },
    Seq { index: usize },
}

#[derive(Default)]
struct Walker {
    stack: Vec<Frame>,
    at: HashMap<String, Position>,
}

/// The key path that `frames` lead to.
fn path_of(frames: &[Frame]) -> String {
    let mut path = String::new();
    for frame in frames {
        match frame {
            Frame::Map { key: Some(key) } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Map { key: None } => {}
            Frame::Seq { index } => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

impl Walker {
    /// The path of the node the next event starts, or `None` when that node is a mapping key.
    fn next_path(&self) -> Option<String> {
        match self.stack.last() {
            Some(Frame::Map { key: None }) => None,
            _ => Some(path_of(&self.stack)),
        }
    }

    /// A node (scalar or container) at `path` is complete: its parent moves on.
    fn finished_value(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Map { key }) => *key = None,
            Some(Frame::Seq { index }) => *index += 1,
            None => {}
        }
    }

    fn mark(&mut self, path: String, mark: Marker) {
        let position = Position {
            line: mark.line(),
            column: mark.col() + 1,
        };
        self.at.entry(path).or_insert(position);
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(value, ..) => match self.next_path() {
                None => {
                    // A key: remember where it is, and that the next node is its value.
                    let mut path = path_of(&self.stack);
                    // A mapping's own start mark lies after its first key: its first key is where
                    // it begins (kept only if nothing was marked there before).
                    self.mark(path.clone(), mark);
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(&value);
                    self.mark(path, mark);
                    if let Some(Frame::Map { key }) = self.stack.last_mut() {
                        *key = Some(value);
                    }
                }
                Some(path) => {
                    if matches!(self.stack.last(), Some(Frame::Seq { .. })) {
                        self.mark(path, mark);
                    }
                    self.finished_value();
                }
            },
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if let (Some(path), Event::SequenceStart(..)) = (self.next_path(), &event) {
                    if matches!(self.stack.last(), Some(Frame::Seq { .. })) {
                        self.mark(path, mark);
                    }
                }
                self.stack
                    .push(if matches!(event, Event::MappingStart(..)) {
                        Frame::Map { key: None }
                    } else {
                        Frame::Seq { index: 0 }
                    });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.finished_value();
            }
            Event::Alias(_) => self.finished_value(),
            _ => {}
        }
    }
}

impl Locations {
    /// Reads `text`; a text that is not YAML yields no positions (its syntax error has its own).
    pub fn of(text: &str) -> Locations {
        let mut walker = Walker::default();
        let _ = Parser::new_from_str(text).load(&mut walker, false);
        Locations { at: walker.at }
    }

    /// Where `key` is, or else its nearest ancestor that is in the text (an unknown key inside a
    /// mapping is found; a missing one points at its parent).
    pub fn find(&self, key: &str) -> Option<Position> {
        let mut key = key.trim();
        loop {
            if let Some(position) = self.at.get(key) {
                return Some(*position);
            }
            let cut = key.rfind(['.', '['])?;
            key = &key[..cut];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "server:\n  port: 8080\nrouting:\n  keywords:\n    - pattern: \"(?i)down\"\n      flow: incident\n    - pattern: x\n  commands:\n    ACK: ack-flow\nlist: [a, b]\n";

    #[test]
    fn keys_and_sequence_items_have_their_line_and_column() {
        let at = Locations::of(TEXT);
        let find = |k: &str| at.find(k).map(|p| (p.line, p.column));
        assert_eq!(find("server"), Some((1, 1)));
        assert_eq!(find("server.port"), Some((2, 3)));
        assert_eq!(find("routing.keywords[0]"), Some((5, 7)));
        assert_eq!(find("routing.keywords[0].pattern"), Some((5, 7)));
        assert_eq!(find("routing.keywords[0].flow"), Some((6, 7)));
        assert_eq!(find("routing.keywords[1].pattern"), Some((7, 7)));
        assert_eq!(find("routing.commands.ACK"), Some((9, 5)));
        assert_eq!(find("list[1]"), Some((10, 11)));
    }

    #[test]
    fn a_key_not_in_the_text_points_at_its_nearest_ancestor() {
        let at = Locations::of(TEXT);
        assert_eq!(at.find("server.host").map(|p| p.line), Some(1));
        assert_eq!(at.find("routing.keywords[5].flow").map(|p| p.line), Some(4));
        assert_eq!(at.find("(top level)"), None);
    }
}
