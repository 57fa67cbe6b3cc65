//! Reading digests back: the alert ids a digest names, its ranges spelled out. Shared by the storm
//! stories (one process) and the replicas' failover test (three).

/// The alert ids a digest names, its ranges (`ALT-0004–ALT-0007`) spelled out, in order.
pub fn named_in(text: &str) -> Vec<u64> {
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
    ids
}

#[test]
fn ranges_are_spelled_out() {
    assert_eq!(
        named_in("🚨 firing: ALT-0002–ALT-0005, ALT-0007"),
        [2, 3, 4, 5, 7]
    );
}
