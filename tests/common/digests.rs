//! Reading digests back: the alert ids a digest names, its ranges spelled out. Shared by the storm
//! stories (one process), the replicas' failover test (three) and the load generator's storm and
//! failover scenarios (`benches/aof-load/main.rs` includes this file).

use std::collections::BTreeSet;

/// The alert ids a digest names, its ranges (`ALT-0004–ALT-0007`) spelled out, each once (a
/// digest also names its first alert in its ACK hint).
pub fn named_in(text: &str) -> BTreeSet<u64> {
    let parts: Vec<&str> = text.split("ALT-").collect();
    let mut ids = Vec::new();
    for i in 1..parts.len() {
        let digits: String = parts[i].chars().take_while(char::is_ascii_digit).collect();
        let Ok(n) = digits.parse::<u64>() else {
            continue;
        };
        match ids.last() {
            Some(&from) if parts[i - 1].ends_with('–') => ids.extend(from + 1..=n),
            _ => ids.push(n),
        }
    }
    ids.into_iter().collect()
}

#[test]
fn ranges_are_spelled_out() {
    let ids: Vec<u64> = named_in("🚨 firing: ALT-0002–ALT-0005, ALT-0007 … ACK ALT-0002")
        .into_iter()
        .collect();
    assert_eq!(ids, [2, 3, 4, 5, 7]);
}
